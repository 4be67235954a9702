#include "deploy/artifacts/bundle_service.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>
#include <zip.h>

#include <fstream>
#include <sstream>

#include "catalog/sqlite/database.h"
#include "io/adapters.h"
#include "io/file.h"
#include "io/hash.h"

namespace ingot::deploy::artifacts {
namespace {
namespace json = boost::json;

using Entries = std::vector<std::pair<std::string, std::string>>;

std::string Sha(const std::string& s) {
  return *io::HexDigestOf("sha256", {reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A zip of the entries, as given (no checks): hostile bundles are made with it too.
std::string Zip(const std::string& path, const Entries& entries, int method = ZIP_CM_DEFLATE) {
  unlink(path.c_str());
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_EXCL, &err);
  EXPECT_NE(z, nullptr);
  for (const auto& [name, data] : entries) {
    zip_source_t* src = zip_source_buffer(z, data.data(), data.size(), 0);
    zip_int64_t i = zip_file_add(z, name.c_str(), src, ZIP_FL_ENC_UTF_8);
    EXPECT_GE(i, 0) << zip_strerror(z);
    zip_set_file_compression(z, zip_uint64_t(i), method, 0);
  }
  EXPECT_EQ(zip_close(z), 0);
  return ReadFile(path);
}

// Entries plus SHA256SUM over all of them (`sums` may be tampered with by the caller).
Entries WithSums(Entries e) {
  std::string sums;
  for (const auto& [n, d] : e) sums += n + "\t" + Sha(d) + "\n";
  e.emplace_back("SHA256SUM.sha256sum", sums);
  return e;
}

class BundleServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-bundles-XXXXXX";
    dir_ = mkdtemp(tmpl);
    image_ = std::string(1 << 20, '\0');
    for (size_t i = 0; i < image_.size(); i += 4096) image_[i] = char(i / 4096);
    Open(dir_ + "/a");
  }
  void TearDown() override {
    bundles_.reset();
    service_.reset();
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  void Open(const std::string& root, BundleOptions opts = {}) {
    bundles_.reset();
    service_.reset();
    repo_.reset();
    root_ = root;
    ASSERT_TRUE(io::MakeDirs(root).ok());
    auto db = catalog::sqlite::Database::Open(root + "/catalog.db");
    ASSERT_TRUE(db.ok());
    repo_ = std::move(*OpenSqliteDeployRepository(*db));
    store_ = std::move(*VolumeStore::Open(root + "/volumes"));
    ArtifactOptions ao{.dir = root + "/deploy"};
    service_ = std::make_unique<ArtifactService>(*repo_, *store_, ao, nullptr);
    ASSERT_TRUE(service_->Repair().ok());
    opts.dir = ao.dir;
    bundles_ = std::make_unique<BundleService>(*repo_, *store_, ao, opts);
    auto r = bundles_->Repair();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  // A bundle in Image Streamer's layout: two scripts, a build plan naming them by id, a golden
  // image (wrapped in a zip, as Image Streamer does) and a deployment plan naming both by name.
  Entries Good(bool read_only = true) {
    std::string inner = Zip(dir_ + "/inner.zip", {{"image-0001", image_}});
    json::object ps1{{"type", "PlanScript"},
                     {"id", "s-1"},
                     {"name", "hostname"},
                     {"planType", "deploy"},
                     {"content", "mount /dev/sda1 /\nwrite /etc/hostname \"@HostName@\\n\"\n"},
                     {"hpProvided", true},
                     {"customAttributes", nullptr}};
    json::object ps2{{"type", "PlanScript"},
                     {"id", "s-2"},
                     {"name", "unmount"},
                     {"planType", "general"},
                     {"content", "umount /\n"}};
    json::object bp{
        {"type", "OeBuildPlan"},
        {"buildPlanid", "b-1"},
        {"name", "web"},
        {"oeBuildPlanType", "deploy"},
        {"buildStep", json::array{json::object{{"planScriptUri", "/rest/plan-scripts/s-1"},
                                               {"serialNumber", "1"},
                                               {"parameters", nullptr},
                                               {"planScriptName", "hostname"}},
                                  json::object{{"planScriptUri", "/rest/plan-scripts/s-2"},
                                               {"serialNumber", "2"},
                                               {"parameters", nullptr},
                                               {"planScriptName", "unmount"}}}},
        {"customAttributes",
         json::array{json::object{
             {"name", "HostName"}, {"type", "hostname"}, {"value", "h"}, {"constraints", "{}"}}}}};
    json::object gi{{"type", "GoldenImage"},      {"id", "g-1"},
                    {"name", "Gold Image - 1"},   {"size", 0},
                    {"importedFromBundle", true}, {"readOnly", true}};
    json::object dp{{"type", "OEDeploymentPlan"},
                    {"id", "d-1"},
                    {"name", "web-plan"},
                    {"oeBuildPlanURI", "web"},
                    {"goldenImageURI", "Gold Image - 1"},
                    {"customAttributes", json::array{json::object{{"name", "HostName"},
                                                                  {"value", "web"},
                                                                  {"editable", true},
                                                                  {"visible", true},
                                                                  {"type", "hostname"},
                                                                  {"id", "x"}}}}};
    return WithSums(
        {{"s-1_planscript.json", json::serialize(ps1)},
         {"s-2_planscript.json", json::serialize(ps2)},
         {"g-1_goldenimage.json", json::serialize(gi)},
         {"Gold Image - 1", inner},
         {"b-1_buildplan.json", json::serialize(bp)},
         {"d-1_deploymentplan.json", json::serialize(dp)},
         {"MANIFEST.MF", std::string("Artifact Name:test-bundle\nDescription:d\nRead Only:") +
                             (read_only ? "true" : "false") +
                             "\nTime Stamp:2026-01-01T00:00:00.000Z\nArtifact Type:USER"}});
  }
  Result<json::object> Upload(const std::string& bytes, const std::string& name = "") {
    std::string path = dir_ + "/upload.zip";
    { std::ofstream(path, std::ios::binary) << bytes; }
    io::UniqueFd fd = std::move(*io::OpenFile(path, O_RDONLY | O_CLOEXEC));
    io::FdReader r(fd.get(), path);
    return bundles_->Upload(name, r);
  }
  size_t Count(Kind k) { return service_->List(k)->size(); }
  // Files in a directory, hidden ones included.
  std::vector<std::string> Files(const std::string& d) {
    std::vector<std::string> out;
    if (DIR* dir = opendir(d.c_str())) {
      while (dirent* e = readdir(dir)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.push_back(n);
      }
      closedir(dir);
    }
    return out;
  }
  std::string Str(const json::object& o, const char* k) {
    auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : "";
  }

  std::string dir_, root_, image_;
  std::unique_ptr<DeployRepository> repo_;
  std::unique_ptr<VolumeStore> store_;
  std::unique_ptr<ArtifactService> service_;
  std::unique_ptr<BundleService> bundles_;
};

TEST_F(BundleServiceTest, ImportsImageStreamersLayout) {
  auto up = Upload(Zip(dir_ + "/b.zip", Good()));
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(Str(*up, "name"), "test-bundle");
  EXPECT_EQ(up->at("artifactsCount").as_int64(), 5);
  EXPECT_EQ(Count(Kind::kPlanScript), 0u);  // uploaded, not extracted
  auto task = bundles_->Extract(Str(*up, "id"), "admin");
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  EXPECT_EQ(Str(*task, "taskState"), "Completed");
  EXPECT_EQ(Count(Kind::kPlanScript), 2u);
  EXPECT_EQ(Count(Kind::kBuildPlan), 1u);
  auto gi = service_->List(Kind::kGoldenImage)->at(0);
  EXPECT_EQ(Str(gi, "name"), "Gold Image - 1");
  EXPECT_EQ(Str(gi, "checkSum"), Sha(image_));
  EXPECT_TRUE(gi.at("importedFromBundle").as_bool());
  EXPECT_EQ(Str(gi, "bundleName"), "test-bundle");
  EXPECT_TRUE(gi.at("readOnly").as_bool());  // a read-only bundle's artifacts are read-only
  EXPECT_EQ(ReadFile(*service_->GoldenImagePath(Str(gi, "id"))), image_);
  auto dp = service_->List(Kind::kDeploymentPlan)->at(0);
  EXPECT_EQ(Str(dp, "goldenImageURI"), Str(gi, "uri"));
  EXPECT_EQ(Str(dp, "oeBuildPlanName"), "web");
  auto bp = service_->List(Kind::kBuildPlan)->at(0);
  EXPECT_EQ(Str(bp.at("buildStep").as_array()[0].as_object(), "planScriptName"), "hostname");
  auto bundle = *service_->Get(Kind::kArtifactBundle, Str(*up, "id"));
  EXPECT_TRUE(bundle.at("extracted").as_bool());
  EXPECT_EQ(bundle.at("goldenImages").as_array().size(), 1u);

  // Again: everything is there already, identical: nothing is extracted, nothing added.
  auto again = bundles_->Extract(Str(*up, "id"), "admin");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Count(Kind::kPlanScript), 2u);
  EXPECT_EQ(Count(Kind::kGoldenImage), 1u);
  EXPECT_EQ(Files(root_ + "/deploy/golden").size(), 1u);

  // A bundle whose artifacts have the same names but other contents: refused naming them.
  Entries other = Good();
  for (auto& [n, d] : other) {
    if (n == "s-1_planscript.json") {
      auto o = json::parse(d).as_object();
      o["content"] = "mount /dev/sda1 /\n";
      d = json::serialize(o);
    }
    if (n == "Gold Image - 1") d = Zip(dir_ + "/inner3.zip", {{"img", std::string(65536, 'y')}});
  }
  other.pop_back();
  auto up2 = Upload(Zip(dir_ + "/b2.zip", WithSums({other.begin(), other.end()})), "other");
  ASSERT_TRUE(up2.ok()) << up2.status().ToString();
  auto conflict = bundles_->Extract(Str(*up2, "id"), "admin");
  ASSERT_EQ(conflict.status().code(), Code::kConflict);
  EXPECT_NE(conflict.status().message().find("plan script 'hostname'"), std::string::npos);
  EXPECT_EQ(conflict.status().message().find("plan script 'unmount'"), std::string::npos);
  auto script = *service_->List(Kind::kPlanScript);
  EXPECT_EQ(Count(Kind::kPlanScript), 2u);
  // Only the image differs: found when its bytes are read, and nothing is kept either.
  other[0] = Good()[0];
  auto up3 = Upload(Zip(dir_ + "/b3.zip", WithSums({other.begin(), other.end()})), "third");
  ASSERT_TRUE(up3.ok()) << up3.status().ToString();
  conflict = bundles_->Extract(Str(*up3, "id"), "admin");
  ASSERT_EQ(conflict.status().code(), Code::kConflict);
  EXPECT_NE(conflict.status().message().find("golden image 'Gold Image - 1'"), std::string::npos);
  EXPECT_EQ(Count(Kind::kGoldenImage), 1u);
  EXPECT_EQ(Files(root_ + "/deploy/golden").size(), 1u);
}

TEST_F(BundleServiceTest, HostileBundlesAreRefusedAndLeaveNothing) {
  auto expect_refused = [&](const std::string& bytes, const std::string& words) {
    auto r = Upload(bytes);
    ASSERT_FALSE(r.ok()) << words;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().message();
    EXPECT_TRUE(Files(root_ + "/deploy/bundles").empty());
  };
  // A checksum that does not match.
  Entries bad_sum = Good();
  bad_sum.back().second.replace(bad_sum.back().second.find('\t') + 1, 4, "0000");
  expect_refused(Zip(dir_ + "/b.zip", bad_sum), "does not match its SHA-256");
  // A payload changed after the sums were made.
  Entries changed = Good();
  changed[3].second = Zip(dir_ + "/inner2.zip", {{"img", std::string(4096, 'x')}});
  expect_refused(Zip(dir_ + "/b.zip", changed), "'Gold Image - 1' does not match");
  // Paths.
  for (const char* name : {"../evil", "/etc/passwd", "dir/file"}) {
    Entries e = Good();
    e.insert(e.begin(), {name, "x"});
    e.pop_back();
    expect_refused(Zip(dir_ + "/b.zip", WithSums({e.begin(), e.end()})), "entry name");
  }
  // An entry not listed; a listed entry missing.
  Entries extra = Good();
  extra.insert(extra.begin(), {"9_planscript.json", R"({"name":"x"})"});
  expect_refused(Zip(dir_ + "/b.zip", extra), "is not listed");
  Entries missing = Good();
  missing.erase(missing.begin());
  expect_refused(Zip(dir_ + "/b.zip", missing), "which the bundle lacks");
  // Not a zip at all.
  expect_refused("this is not a zip", "not a readable zip");
  // A payload larger than allowed (a zip bomb declares its size; the declaration is bounded).
  Open(dir_ + "/small", BundleOptions{.max_payload_bytes = 64 << 10});
  // A bare payload larger than allowed is refused on upload.
  Entries bare = Good();
  bare[3].second = image_;
  bare.pop_back();
  expect_refused(Zip(dir_ + "/b.zip", WithSums({bare.begin(), bare.end()})),
                 "more than the 65536 allowed");
  // The image inside the payload's zip is checked when it is extracted.
  auto up = Upload(Zip(dir_ + "/b.zip", Good()));
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  auto r = bundles_->Extract(Str(*up, "id"), "admin");
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("more than the 65536 allowed"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(Count(Kind::kPlanScript), 0u);
  EXPECT_TRUE(Files(root_ + "/deploy/golden").empty());
}

TEST_F(BundleServiceTest, SizesThatLieAreCaught) {
  // A stored entry whose declared (central and local) size is smaller than what it holds.
  std::string zip = Zip(dir_ + "/b.zip", Good(), ZIP_CM_STORE);
  auto patch = [&](size_t pos) {  // uncompressed size: little-endian at +22 (local) / +24 (central)
    uint32_t v;
    memcpy(&v, &zip[pos], 4);
    v -= 1;
    memcpy(&zip[pos], &v, 4);
  };
  std::string name = "s-1_planscript.json";
  size_t local = zip.find("PK\3\4");
  size_t central = zip.find("PK\1\2");
  ASSERT_EQ(zip.compare(local + 30, name.size(), name), 0);
  patch(local + 22);
  patch(central + 24);
  auto r = Upload(zip);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
  EXPECT_TRUE(Files(root_ + "/deploy/bundles").empty());
}

TEST_F(BundleServiceTest, AFailingImportImportsNothing) {
  // The deployment plan names a build plan that exists nowhere: the scripts and the golden image
  // staged before it are not kept, nor their files.
  Entries e = Good();
  for (auto& [n, d] : e) {
    if (n == "d-1_deploymentplan.json") {
      auto o = json::parse(d).as_object();
      o["oeBuildPlanURI"] = "no such plan";
      d = json::serialize(o);
    }
  }
  e.pop_back();
  auto up = Upload(Zip(dir_ + "/b.zip", WithSums({e.begin(), e.end()})));
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  auto r = bundles_->Extract(Str(*up, "id"), "admin");
  ASSERT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no build plan named 'no such plan'"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(Count(Kind::kPlanScript), 0u);
  EXPECT_EQ(Count(Kind::kGoldenImage), 0u);
  EXPECT_TRUE(Files(root_ + "/deploy/golden").empty() ||
              Files(root_ + "/deploy/golden") == std::vector<std::string>{"empty.raw"});
  // The task says why.
  bool errored = false;
  auto tasks = *service_->List(Kind::kTask);
  for (const auto& t : tasks) errored |= Str(t, "taskState") == "Error";
  EXPECT_TRUE(errored);
}

TEST_F(BundleServiceTest, ExportReimportsEqual) {
  auto up = Upload(Zip(dir_ + "/b.zip", Good(false)));
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE(bundles_->Extract(Str(*up, "id"), "admin").ok());
  auto dp = service_->List(Kind::kDeploymentPlan)->at(0);
  auto task = bundles_->Create(
      {{"name", "exported"},
       {"deploymentPlans", json::array{json::object{{"resourceUri", dp.at("uri")}}}}},
      "admin");
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  std::string bid = LastSegment(Str(task->at("associatedResource").as_object(), "resourceUri"));
  auto exported = *service_->Get(Kind::kArtifactBundle, bid);
  EXPECT_EQ(exported.at("artifactsCount").as_int64(), 5);  // the plan pulled in its dependencies
  std::string zip = ReadFile(*bundles_->PathOf(Kind::kArtifactBundle, bid));

  Open(dir_ + "/b");
  auto up2 = Upload(zip);
  ASSERT_TRUE(up2.ok()) << up2.status().ToString();
  ASSERT_TRUE(bundles_->Extract(Str(*up2, "id"), "admin").ok());
  EXPECT_EQ(Count(Kind::kPlanScript), 2u);
  auto gi = service_->List(Kind::kGoldenImage)->at(0);
  EXPECT_EQ(Str(gi, "checkSum"), Sha(image_));
  auto dp2 = service_->List(Kind::kDeploymentPlan)->at(0);
  EXPECT_EQ(Str(dp2, "oeBuildPlanName"), "web");
  EXPECT_EQ(Str(dp2, "goldenImageName"), "Gold Image - 1");
  auto scripts = *service_->List(Kind::kPlanScript);
  EXPECT_EQ(Str(scripts[0], "content"),
            "mount /dev/sda1 /\nwrite /etc/hostname \"@HostName@\\n\"\n");
}

TEST_F(BundleServiceTest, BackupAndRestoreReplaceEverything) {
  auto up = Upload(Zip(dir_ + "/b.zip", Good(false)));
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE(bundles_->Extract(Str(*up, "id"), "admin").ok());
  auto old_gi = service_->List(Kind::kGoldenImage)->at(0);
  auto backup = bundles_->CreateBackup("admin");
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  // Changes after the backup: a new script, a deleted plan.
  ASSERT_TRUE(
      service_->CreatePlanScript({{"name", "later"}, {"planType", "general"}, {"content", ""}})
          .ok());
  auto dp = service_->List(Kind::kDeploymentPlan)->at(0);
  ASSERT_TRUE(service_->DeleteDeploymentPlan(Str(dp, "id"), true).ok());
  auto restored = bundles_->Restore("", "admin");
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  auto scripts = *service_->List(Kind::kPlanScript);
  ASSERT_EQ(scripts.size(), 2u);
  for (const auto& s : scripts) EXPECT_NE(Str(s, "name"), "later");
  EXPECT_EQ(Count(Kind::kDeploymentPlan), 1u);
  auto gi = service_->List(Kind::kGoldenImage)->at(0);
  EXPECT_EQ(Str(gi, "checkSum"), Sha(image_));
  // The replaced golden image's file is gone; the new one is there.
  EXPECT_EQ(Files(root_ + "/deploy/golden").size(), 1u);
  EXPECT_NE(Str(gi, "id"), Str(old_gi, "id"));
}

TEST_F(BundleServiceTest, BackgroundOperationsAnswerWithARunningTask) {
  bundles_->Start();
  auto up = Upload(Zip(dir_ + "/b.zip", Good()));
  ASSERT_TRUE(up.ok());
  auto task = bundles_->Extract(Str(*up, "id"), "admin", true);
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  EXPECT_EQ(Str(*task, "taskState"), "Running");
  for (int i = 0; i < 500 && !bundles_->Idle(); ++i) usleep(10000);
  EXPECT_EQ(Str(*service_->Get(Kind::kTask, Str(*task, "id")), "taskState"), "Completed");
  EXPECT_EQ(Count(Kind::kPlanScript), 2u);
  // A failure is the task's: Error, with the reason.
  Entries other = Good();
  auto o = json::parse(other[0].second).as_object();
  o["content"] = "umount /\n";
  other[0].second = json::serialize(o);
  other.pop_back();
  auto up2 = Upload(Zip(dir_ + "/b2.zip", WithSums({other.begin(), other.end()})), "other");
  ASSERT_TRUE(up2.ok());
  auto failing = bundles_->Extract(Str(*up2, "id"), "admin", true);
  ASSERT_TRUE(failing.ok());
  for (int i = 0; i < 500 && !bundles_->Idle(); ++i) usleep(10000);
  auto ended = *service_->Get(Kind::kTask, Str(*failing, "id"));
  EXPECT_EQ(Str(ended, "taskState"), "Error");
  EXPECT_NE(Str(ended.at("taskErrors").as_array()[0].as_object(), "message")
                .find("plan script 'hostname'"),
            std::string::npos);
  auto backup = bundles_->CreateBackup("admin", true);
  ASSERT_TRUE(backup.ok());
  for (int i = 0; i < 500 && !bundles_->Idle(); ++i) usleep(10000);
  EXPECT_EQ(Str(*service_->Get(Kind::kTask, Str(*backup, "id")), "taskState"), "Completed");
  bundles_->Stop();
}

TEST_F(BundleServiceTest, RepairRemovesUnfinishedUploads) {
  { std::ofstream(root_ + "/deploy/bundles/.tmp-x") << "half"; }
  { std::ofstream(root_ + "/deploy/bundles/orphan.zip") << "no record"; }
  auto up = Upload(Zip(dir_ + "/b.zip", Good()));
  ASSERT_TRUE(up.ok());
  Open(root_);
  EXPECT_EQ(Files(root_ + "/deploy/bundles"), std::vector<std::string>{Str(*up, "id") + ".zip"});
}

}  // namespace
}  // namespace ingot::deploy::artifacts
