#include "deploy/artifacts/attributes.h"

#include <gtest/gtest.h>

namespace ingot::deploy::artifacts {
namespace {
namespace json = boost::json;

TEST(AttributeRefs, PlainDefaultsAndNicFields) {
  auto refs = ParseAttributeRefs("echo @HostName@\nset @Domain:example.org@ x\nip @Nic1.ipaddress@\n");
  ASSERT_EQ(refs.size(), 3u);
  EXPECT_EQ(refs[0].name, "HostName");
  EXPECT_FALSE(refs[0].default_value);
  EXPECT_EQ(refs[0].line, 1);
  EXPECT_EQ(refs[1].name, "Domain");
  EXPECT_EQ(*refs[1].default_value, "example.org");
  EXPECT_EQ(refs[1].line, 2);
  EXPECT_EQ(refs[2].Key(), "Nic1.ipaddress");
  EXPECT_EQ(refs[2].line, 3);
}

TEST(AttributeRefs, LiteralAtSignsAreText) {
  // An e-mail address, a lone '@', an unknown NIC field, a default cut by a newline.
  EXPECT_TRUE(ParseAttributeRefs("mail root@example.com now").empty());
  EXPECT_TRUE(ParseAttributeRefs("a @ b @@ c").empty());
  EXPECT_TRUE(ParseAttributeRefs("@Nic1.bogus@").empty());
  EXPECT_TRUE(ParseAttributeRefs("@Name:def\nault@").empty());
  EXPECT_TRUE(ParseAttributeRefs("@9name@").empty());
  // The empty default is a default.
  auto r = ParseAttributeRefs("x@Name:@y");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(*r[0].default_value, "");
}

TEST(AttributeRefs, ScriptAttributesFirstDefaultAndNics) {
  auto a = ScriptAttributes("@A@ @A:one@ @A:two@ @N.mac@ @N.ipaddress@ @B:b@");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].name, "A");
  EXPECT_EQ(*a[0].default_value, "one");
  EXPECT_TRUE(a[1].nic);
  EXPECT_EQ(a[2].name, "B");
}

TEST(Substitute, ValuesDefaultsAndMissing) {
  auto out = Substitute("h=@H@ d=@D:dflt@ ip=@N.ipaddress@ mail a@b.c", {{"H", "web1"}, {"N.ipaddress", "10.0.0.5"}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "h=web1 d=dflt ip=10.0.0.5 mail a@b.c");
  auto missing = Substitute("@H@", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("H"), std::string::npos);
}

AttributeSpec Spec(const char* text) {
  auto s = ParseAttributeSpec(json::parse(text));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : AttributeSpec{};
}

TEST(AttributeSpec, TypesAndConstraints) {
  AttributeSpec n = Spec(R"({"name":"Size","type":"number","value":"64",
      "constraints":"{\"minimum\":8,\"maximum\":\"1024\",\"increment\":8,\"unit\":\"MiB\"}"})");
  EXPECT_EQ(n.type, AttributeType::kNumber);
  EXPECT_TRUE(CheckValue(n, "Size", "16").ok());
  EXPECT_FALSE(CheckValue(n, "Size", "4").ok());
  EXPECT_FALSE(CheckValue(n, "Size", "2048").ok());
  EXPECT_FALSE(CheckValue(n, "Size", "12").ok());
  EXPECT_FALSE(CheckValue(n, "Size", "ten").ok());

  AttributeSpec o = Spec(R"({"name":"Role","type":"option","constraints":{"options":["web","db"]}})");
  EXPECT_TRUE(CheckValue(o, "Role", "db").ok());
  Status bad = CheckValue(o, "Role", "cache");
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_NE(bad.message().find("attribute Role"), std::string::npos);

  // A teamed NIC, as HPE's published bundles declare it.
  AttributeSpec team = Spec(R"({"name":"Team","type":"nic","value":null,"constraints":
      "{\"ipv4static\":true,\"parameters\":[\"ipaddress1\",\"ipaddress2\",\"mac1\",\"mac2\"],\"ipv4noteaming\":false}"})");
  EXPECT_TRUE(CheckValue(team, "Team.ipaddress2", "10.0.0.2").ok());
  EXPECT_FALSE(CheckValue(team, "Team.mac1", "nope").ok());

  AttributeSpec h = Spec(R"({"name":"HostName","type":"hostname","constraints":"{\"maxlen\":\"8\"}"})");
  EXPECT_TRUE(CheckValue(h, "HostName", "web-01").ok());
  EXPECT_FALSE(CheckValue(h, "HostName", "-web").ok());
  EXPECT_FALSE(CheckValue(h, "HostName", "web.example").ok());
  EXPECT_FALSE(CheckValue(h, "HostName", "webserver01").ok());  // maxlen

  AttributeSpec f = Spec(R"({"name":"F","type":"fqdn"})");
  EXPECT_TRUE(CheckValue(f, "F", "a.example.org").ok());
  EXPECT_FALSE(CheckValue(f, "F", "localhost").ok());

  AttributeSpec ip = Spec(R"({"name":"IP","type":"ipv4"})");
  EXPECT_TRUE(CheckValue(ip, "IP", "192.0.2.1").ok());
  EXPECT_FALSE(CheckValue(ip, "IP", "192.0.2.256").ok());

  AttributeSpec re = Spec(R"({"name":"Tag","type":"string","constraints":{"regex":"[a-z]+[0-9]*"}})");
  EXPECT_TRUE(CheckValue(re, "Tag", "abc12").ok());
  EXPECT_FALSE(CheckValue(re, "Tag", "12abc").ok());
}

TEST(AttributeSpec, Refusals) {
  for (const char* bad : {
           R"({"name":"1bad"})",
           R"({"name":"X","type":"color"})",
           R"({"name":"X","type":"option"})",
           R"({"name":"X","type":"string","constraints":{"regex":"(unclosed"}})",
           R"({"name":"X","type":"number","constraints":{"minimum":5,"maximum":1}})",
           R"({"name":"X","type":"number","value":"abc"})",
           R"({"name":"X","type":"password","value":"secret"})",
           R"({"name":"X","type":"nic","constraints":{"ipv4static":false,"ipv4dhcp":false}})",
           R"({"name":"X","constraints":"not json"})",
       }) {
    auto s = ParseAttributeSpec(json::parse(bad));
    EXPECT_FALSE(s.ok()) << bad;
    if (!s.ok()) EXPECT_EQ(s.status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(AttributeSpec, PasswordNeverRendered) {
  AttributeSpec p = Spec(R"({"name":"RootPassword","type":"password","value":""})");
  EXPECT_EQ(AttributeSpecJson(p).at("value").as_string(), "");
  EXPECT_TRUE(CheckValue(p, "RootPassword", "s3cret!").ok());
}

TEST(AttributeSpec, NicFields) {
  AttributeSpec nic = Spec(R"({"name":"Nic1","type":"nic",
      "constraints":"{\"ipv4static\":true,\"ipv4dhcp\":false,\"parameters\":[\"ipaddress\",\"netmask\",\"dhcp\",\"mac\"]}"})");
  EXPECT_TRUE(CheckValue(nic, "Nic1.ipaddress", "10.1.2.3").ok());
  EXPECT_FALSE(CheckValue(nic, "Nic1.ipaddress", "10.1.2").ok());
  EXPECT_TRUE(CheckValue(nic, "Nic1.mac", "52:54:00:12:34:56").ok());
  EXPECT_FALSE(CheckValue(nic, "Nic1.mac", "52:54:00:12:34").ok());
  EXPECT_FALSE(CheckValue(nic, "Nic1.gateway", "10.1.2.1").ok());  // not among its parameters
  EXPECT_FALSE(CheckValue(nic, "Nic1", "x").ok());
}

TEST(StepParameters, Parse) {
  auto p = ParseStepParameters("Path=/etc/motd; Text = hello world \nNic1.dhcp=true");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->at("Path"), "/etc/motd");
  EXPECT_EQ(p->at("Text"), " hello world");
  EXPECT_EQ(p->at("Nic1.dhcp"), "true");
  EXPECT_FALSE(ParseStepParameters("novalue").ok());
  EXPECT_FALSE(ParseStepParameters("1x=2").ok());
}

class Resolve : public ::testing::Test {
 protected:
  std::vector<StepAttributes> Steps(std::vector<std::string> texts) {
    std::vector<StepAttributes> out;
    for (size_t i = 0; i < texts.size(); ++i) {
      out.push_back({"script" + std::to_string(i + 1), ParseAttributeRefs(texts[i]), {}});
    }
    return out;
  }
};

TEST_F(Resolve, LayersInOrder) {
  auto steps = Steps({"@A:script@ @B:script@ @C:script@ @D:script@"});
  std::vector<AttributeSpec> specs = {Spec(R"({"name":"B","value":"build"})"),
                                      Spec(R"({"name":"C","value":"build"})"),
                                      Spec(R"({"name":"D","value":"build"})")};
  std::vector<AttributeOverride> plan = {{"C", "plan", true, true, true},
                                         {"D", "plan", true, true, true}};
  auto v = ResolveValues(steps, specs, plan, {{"D", "deploy"}});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)[0].at("A"), "script");
  EXPECT_EQ((*v)[0].at("B"), "build");
  EXPECT_EQ((*v)[0].at("C"), "plan");
  EXPECT_EQ((*v)[0].at("D"), "deploy");
}

TEST_F(Resolve, Refusals) {
  auto steps = Steps({"@HostName@ @Role:web@"});
  std::vector<AttributeSpec> specs = {Spec(R"({"name":"HostName","type":"hostname"})"),
                                      Spec(R"({"name":"Role","type":"option","constraints":{"options":["web","db"]}})")};
  // Missing value.
  auto missing = ResolveValues(steps, specs, {}, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("HostName"), std::string::npos);
  // Bad value names the attribute.
  auto bad = ResolveValues(steps, specs, {}, {{"HostName", "bad_name"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("attribute HostName"), std::string::npos);
  // Unknown attribute.
  EXPECT_FALSE(ResolveValues(steps, specs, {}, {{"HostName", "a"}, {"Nope", "x"}}).ok());
  // Not editable.
  std::vector<AttributeOverride> locked = {{"Role", "db", true, false, true}};
  auto ro = ResolveValues(steps, specs, locked, {{"HostName", "a"}, {"Role", "web"}});
  ASSERT_FALSE(ro.ok());
  EXPECT_NE(ro.status().message().find("Role"), std::string::npos);
  // A script default that breaks the constraints is refused too.
  auto bad_default = ResolveValues(Steps({"@Role:cache@"}), specs, {}, {});
  EXPECT_FALSE(bad_default.ok());
  // A deployment plan's "" (HPE's "the deployment gives it") is no obstacle to the value given,
  // and is refused only when it is what would be used.
  std::vector<AttributeOverride> blank = {{"HostName", "", true, true, true}};
  auto given = ResolveValues(steps, specs, blank, {{"HostName", "web7"}});
  ASSERT_TRUE(given.ok()) << given.status().ToString();
  EXPECT_EQ((*given)[0].at("HostName"), "web7");
  EXPECT_FALSE(ResolveValues(steps, specs, blank, {}).ok());
}

TEST_F(Resolve, StepParametersAreFixedPerStep) {
  auto steps = Steps({"@Text@", "@Text@"});
  steps[1].parameters = {{"Text", "second"}};
  auto v = ResolveValues(steps, {}, {}, {{"Text", "given"}});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)[0].at("Text"), "given");
  EXPECT_EQ((*v)[1].at("Text"), "second");
}

TEST_F(Resolve, NicModes) {
  auto steps = Steps({"@Nic1.ipaddress@ @Nic1.dhcp@"});
  std::vector<AttributeSpec> specs = {
      Spec(R"({"name":"Nic1","type":"nic","constraints":{"ipv4static":true,"ipv4dhcp":false}})")};
  EXPECT_TRUE(ResolveValues(steps, specs, {}, {{"Nic1.ipaddress", "10.0.0.2"}, {"Nic1.dhcp", "false"}}).ok());
  EXPECT_FALSE(ResolveValues(steps, specs, {}, {{"Nic1.ipaddress", ""}, {"Nic1.dhcp", "true"}}).ok());
  EXPECT_FALSE(ResolveValues(steps, specs, {}, {{"Nic1.ipaddress", ""}, {"Nic1.dhcp", "false"}}).ok());
}

TEST(Scrub, ReplacesEverySecret) {
  EXPECT_EQ(Scrub("pw=hunter2 again hunter2", {"hunter2", ""}), "pw=******** again ********");
  AttributeSpec p = Spec(R"({"name":"Pw","type":"password"})");
  auto secrets = PasswordValues({p}, {{"Pw", "x1"}, {"Other", "y"}});
  ASSERT_EQ(secrets.size(), 1u);
  EXPECT_EQ(secrets[0], "x1");
}

}  // namespace
}  // namespace ingot::deploy::artifacts
