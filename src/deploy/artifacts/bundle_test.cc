#include "deploy/artifacts/bundle.h"

#include <gtest/gtest.h>

namespace ingot::deploy::artifacts {
namespace {

const std::string kHex(64, 'a');

TEST(BundleFormat, ManifestAsImageStreamerWritesIt) {
  auto m = ParseManifest(
      "Artifact Name:HPE-Test-v1\nDescription:Some text: with a colon\nRead Only:true\n"
      "Time Stamp:2017-11-29T19:25:35.874Z\nArtifact Type:USER");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->name, "HPE-Test-v1");
  EXPECT_EQ(m->description, "Some text: with a colon");
  EXPECT_TRUE(m->read_only);
  EXPECT_EQ(m->type, "USER");
  auto again = ParseManifest(WriteManifest(*m));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->name, m->name);
  EXPECT_EQ(again->timestamp, m->timestamp);
  EXPECT_FALSE(ParseManifest("Description:x\n").ok());
  EXPECT_FALSE(ParseManifest("Artifact Name:x\nno colon here\n").ok());
}

TEST(BundleFormat, SumsBothLayouts) {
  auto s =
      ParseSums("a_planscript.json\t" + std::string(64, 'A') + "\n" + kHex + "  MANIFEST.MF\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->entries.size(), 2u);
  EXPECT_EQ(*s->Find("a_planscript.json"), std::string(64, 'a'));
  EXPECT_NE(s->Find("MANIFEST.MF"), nullptr);
  EXPECT_FALSE(ParseSums("x\tnothex\n").ok());
  EXPECT_FALSE(ParseSums("x\t" + kHex + "\nx\t" + kHex + "\n").ok());  // twice
  EXPECT_FALSE(ParseSums("../etc/passwd\t" + kHex + "\n").ok());
  EXPECT_FALSE(ParseSums("SHA256SUM.sha256sum\t" + kHex + "\n").ok());
  auto again = ParseSums(WriteSums(*s));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->entries, s->entries);
}

TEST(BundleFormat, EntryNamesAreOneComponent) {
  EXPECT_TRUE(CheckEntryName("Test Golden 1.0 - UEFI Image - 2026-01-01").ok());
  for (const char* bad :
       {"", ".", "..", "../x", "/etc/passwd", "a/b", "a\\b", " x", "x ", "a\nb"}) {
    EXPECT_FALSE(CheckEntryName(bad).ok()) << bad;
  }
  EXPECT_EQ(ClassifyEntry("1_planscript.json"), EntryKind::kPlanScript);
  EXPECT_EQ(ClassifyEntry("1_deploymentplan.json"), EntryKind::kDeploymentPlan);
  EXPECT_EQ(ClassifyEntry("_planscript.json"), EntryKind::kPayload);
  EXPECT_EQ(ClassifyEntry("gold"), EntryKind::kPayload);
}

BundleIndex Index() {
  BundleIndex i;
  i.names = {"1_planscript.json", "2_goldenimage.json", "gold", "MANIFEST.MF",
             "SHA256SUM.sha256sum"};
  i.texts["1_planscript.json"] = R"({"name":"ps","planType":"general","content":""})";
  i.texts["2_goldenimage.json"] = R"({"name":"gold"})";
  i.texts["MANIFEST.MF"] = "Artifact Name:b\n";
  std::string sums;
  for (const auto& n : i.names) {
    if (n != "SHA256SUM.sha256sum") sums += n + "\t" + kHex + "\n";
  }
  i.texts["SHA256SUM.sha256sum"] = sums;
  return i;
}

TEST(BundleFormat, ParseBundleCrossChecks) {
  auto ok = ParseBundle(Index());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->plan_scripts.size(), 1u);
  EXPECT_EQ(ok->payloads.at("gold"), "gold");

  BundleIndex extra = Index();
  extra.names.push_back("extra");  // not in SHA256SUM
  EXPECT_NE(ParseBundle(extra).status().message().find("'extra' is not listed"), std::string::npos);

  BundleIndex missing = Index();
  missing.names.erase(missing.names.begin());  // listed, absent
  EXPECT_NE(ParseBundle(missing).status().message().find("which the bundle lacks"),
            std::string::npos);

  BundleIndex orphan = Index();
  orphan.names.push_back("stray");
  orphan.texts["SHA256SUM.sha256sum"] += "stray\t" + kHex + "\n";
  EXPECT_NE(ParseBundle(orphan).status().message().find("neither"), std::string::npos);

  BundleIndex no_payload = Index();
  no_payload.names.erase(no_payload.names.begin() + 2);
  std::string sums;
  for (const auto& n : no_payload.names) {
    if (n != "SHA256SUM.sha256sum") sums += n + "\t" + kHex + "\n";
  }
  no_payload.texts["SHA256SUM.sha256sum"] = sums;
  EXPECT_NE(ParseBundle(no_payload).status().message().find("no payload"), std::string::npos);

  BundleIndex bad_json = Index();
  bad_json.texts["1_planscript.json"] = "[1]";
  EXPECT_FALSE(ParseBundle(bad_json).ok());

  BundleIndex dup = Index();
  dup.names.push_back("1_planscript.json");
  EXPECT_FALSE(ParseBundle(dup).ok());

  BundleIndex no_manifest = Index();
  no_manifest.names.erase(no_manifest.names.begin() + 3);
  EXPECT_FALSE(ParseBundle(no_manifest).ok());
}

}  // namespace
}  // namespace ingot::deploy::artifacts
