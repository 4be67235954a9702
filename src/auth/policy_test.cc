#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "auth/policy.h"
#include "auth/policy_file.h"
#include "auth/policy_language.h"

namespace ingot::auth {
namespace {

RequestContext Ctx(std::vector<std::string> roles, std::optional<std::string> project,
                   std::string user = "u") {
  RequestContext c;
  c.authenticated = true;
  c.roles = std::move(roles);
  c.project = std::move(project);
  c.user = std::move(user);
  return c;
}

bool Eval(std::string_view rule, const RequestContext& ctx,
          std::map<std::string, std::string> target = {}) {
  auto e = ParsePolicyRule(rule);
  EXPECT_TRUE(e.ok()) << rule << ": " << e.status().ToString();
  if (!e.ok()) return false;
  PolicyEnv env{.ctx = ctx,
                .target = [&](std::string_view k) -> std::optional<std::string> {
                  auto it = target.find(std::string(k));
                  if (it == target.end()) return std::nullopt;
                  return it->second;
                },
                .rule = [](std::string_view) -> const PolicyExpr* { return nullptr; }};
  return EvaluatePolicy(**e, env);
}

TEST(PolicyLanguageTest, ChecksAndOperators) {
  auto member = Ctx({"member", "reader"}, "p1");
  EXPECT_TRUE(Eval("", member));
  EXPECT_TRUE(Eval("@", member));
  EXPECT_FALSE(Eval("!", member));
  EXPECT_TRUE(Eval("role:member", member));
  EXPECT_TRUE(Eval("role:MEMBER", member));  // roles compare case-insensitively
  EXPECT_FALSE(Eval("role:admin", member));
  EXPECT_TRUE(Eval("role:admin or role:member", member));
  EXPECT_FALSE(Eval("role:admin and role:member", member));
  EXPECT_TRUE(Eval("not role:admin", member));
  EXPECT_FALSE(Eval("not (role:admin or role:member)", member));
  // "and" binds tighter than "or": admin or (reader and p2).
  EXPECT_FALSE(Eval("role:admin or role:reader and project_id:p2", member));
  EXPECT_TRUE(Eval("(role:admin or role:reader) and project_id:p1", member));
  EXPECT_TRUE(Eval("project_id:%(project_id)s", member, {{"project_id", "p1"}}));
  EXPECT_FALSE(Eval("project_id:%(project_id)s", member, {{"project_id", "p2"}}));
  // A target field that is absent fails the check (oslo.policy's KeyError).
  EXPECT_FALSE(Eval("project_id:%(project_id)s", member));
  EXPECT_TRUE(Eval("'public':%(visibility)s", member, {{"visibility", "public"}}));
  EXPECT_TRUE(Eval("\"shared\":%(visibility)s", member, {{"visibility", "shared"}}));
  EXPECT_FALSE(Eval("'public':%(visibility)s", member, {{"visibility", "private"}}));
  EXPECT_TRUE(Eval("user_id:%(target.user_id)s", member, {{"target.user_id", "u"}}));
  EXPECT_TRUE(Eval("project_id:%(target.owner)s", member, {{"owner", "p1"}}));
  EXPECT_TRUE(Eval("is_admin:False", member));
  EXPECT_TRUE(Eval("roles:member", member));
  EXPECT_TRUE(Eval("role:%(role)s", member, {{"role", "reader"}}));
  // Fail closed where oslo.policy would compare "None" with "None".
  auto anonymous = Ctx({}, std::nullopt);
  EXPECT_FALSE(Eval("project_id:%(project_id)s", anonymous, {{"project_id", "None"}}));
}

TEST(PolicyLanguageTest, RefusesWhatDoesNotParse) {
  for (std::string_view bad :
       {"role:admin or", "(role:admin", "role:admin)", "and role:admin", "admin",
        "rule:", "role:", "http://example.com/check", "frob:1", "role:admin role:member",
        "not", "()"}) {
    EXPECT_FALSE(ParsePolicyRule(bad).ok()) << bad;
  }
  auto e = ParsePolicyRule("role:admin or (role:member and project_id:%(project_id)s)");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(FormatPolicyRule(**e), "role:admin or (role:member and project_id:%(project_id)s)");
}

TEST(PolicyTest, EveryDefaultParsesAndRefersOnlyToRulesItHolds) {
  const Policy p = Policy::Defaults();
  for (const std::string& name : p.rules()) {
    auto e = ParsePolicyRule(p.Text(name));
    ASSERT_TRUE(e.ok()) << name;
    std::vector<std::string> refs;
    CollectRuleRefs(**e, refs);
    for (const auto& r : refs) EXPECT_TRUE(p.Has(r)) << name << " refers to " << r;
  }
  // Every compiled-in default is printed, as a commented-out policy.yaml that parses.
  std::string yaml = Policy::DefaultsYaml();
  std::string uncommented;
  for (size_t i = 0; i < yaml.size();) {
    size_t nl = yaml.find('\n', i);
    std::string line = yaml.substr(i, nl - i);
    if (line.rfind("#\"", 0) == 0) uncommented += line.substr(1) + "\n";
    i = nl == std::string::npos ? yaml.size() : nl + 1;
  }
  auto rules = ParsePolicyYaml(uncommented, "defaults");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_EQ(rules->size(), p.rules().size());
}

TEST(PolicyTest, GlanceImageTargets) {
  const Policy p = Policy::Defaults();
  catalog::Image shared;
  shared.owner = "owner";
  shared.visibility = catalog::Visibility::kShared;
  catalog::Image priv = shared;
  priv.visibility = catalog::Visibility::kPrivate;
  auto member_p2 = Ctx({"member", "reader"}, "p2");
  auto reader_p2 = Ctx({"reader"}, "p2");
  EXPECT_TRUE(p.Authorize("get_image", reader_p2, {.image = &shared}).ok());
  EXPECT_TRUE(p.Authorize("download_image", member_p2, {.image = &shared}).ok());
  EXPECT_FALSE(p.Authorize("download_image", reader_p2, {.image = &shared}).ok());
  EXPECT_FALSE(p.Authorize("modify_image", member_p2, {.image = &shared}).ok());
  EXPECT_FALSE(p.Authorize("get_image", reader_p2, {.image = &priv}).ok());
  // Collections and proposed images: the caller's own project.
  EXPECT_TRUE(p.Authorize("get_images", reader_p2).ok());
  EXPECT_FALSE(p.Authorize("get_images", Ctx({"reader"}, std::nullopt)).ok());
  EXPECT_FALSE(p.Authorize("add_image", reader_p2).ok());
  EXPECT_TRUE(p.Authorize("add_image", member_p2).ok());
  // Tasks: the rule and tasks_api_access.
  EXPECT_FALSE(p.Authorize("get_tasks", member_p2).ok());
  EXPECT_TRUE(p.Authorize("get_tasks", Ctx({"admin"}, "p9")).ok());
  // Another resource's fields (a metadata namespace).
  Target ns{.fields = {{"project_id", "p2"}, {"visibility", "private"}}};
  Policy q = p;
  ASSERT_TRUE(q.Set("get_metadef_namespace",
                    "role:admin or (role:reader and (project_id:%(project_id)s or "
                    "'public':%(visibility)s))").ok());
  EXPECT_TRUE(q.Authorize("get_metadef_namespace", reader_p2, ns).ok());
  EXPECT_FALSE(q.Authorize("get_metadef_namespace", Ctx({"reader"}, "p3"), ns).ok());
  ns.fields["visibility"] = "public";
  EXPECT_TRUE(q.Authorize("get_metadef_namespace", Ctx({"reader"}, "p3"), ns).ok());
}

TEST(PolicyFileTest, OverridesDefaultsAndNamesLineOfABadRule) {
  auto rules = ParsePolicyYaml(
      "# operator's file\n"
      "\"get_images\": \"role:admin\"\n"
      "modify_image: 'rule:my_rule'\n"
      "my_rule: role:member and project_id:%(project_id)s\n",
      "policy.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  ASSERT_EQ(rules->size(), 3u);
  EXPECT_EQ((*rules)[2].line, 4);
  Policy p = Policy::Defaults();
  ASSERT_TRUE(p.Override(*rules, "policy.yaml").ok());
  EXPECT_FALSE(p.Authorize("get_images", Ctx({"reader", "member"}, "p1")).ok());
  catalog::Image mine;
  mine.owner = "p1";
  EXPECT_TRUE(p.Authorize("modify_image", Ctx({"member"}, "p1"), {.image = &mine}).ok());
  EXPECT_TRUE(p.Authorize("get_image", Ctx({"reader"}, "p1"), {.image = &mine}).ok());  // default

  auto bad = ParsePolicyYaml("get_images: role:admin\nadd_image: role:admin or\n", "/etc/p.yaml");
  ASSERT_TRUE(bad.ok());
  Status s = p.Override(*bad, "/etc/p.yaml");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("/etc/p.yaml:2: rule \"add_image\""), std::string::npos) << s.message();
  // The rules in force did not change.
  EXPECT_FALSE(p.Authorize("get_images", Ctx({"reader", "member"}, "p1")).ok());

  auto cycle = ParsePolicyYaml("a: rule:b\nb: rule:a\nget_images: rule:a\n", "c.yaml");
  ASSERT_TRUE(cycle.ok());
  EXPECT_NE(p.Override(*cycle, "c.yaml").message().find("cycle"), std::string::npos);

  for (std::string_view text : {"- a\n- b\n", "a: [role:admin]\n", "a: &x b\nc: *x\n",
                                "a: b\na: c\n", "a: {b: c}\n", "just text\n", "a: 'b\n"}) {
    EXPECT_FALSE(ParsePolicyYaml(text, "f").ok()) << text;
  }
  EXPECT_TRUE(ParsePolicyYaml("", "f").ok());
  EXPECT_TRUE(ParsePolicyYaml("# nothing\n", "f").ok());
  EXPECT_TRUE(ParsePolicyYaml("{\"get_images\": \"@\"}", "f").ok());  // JSON is YAML
}

TEST(PolicyFileTest, ReloadsWhenTheFileChanges) {
  std::string path = "/tmp/ingot-policy-test-" + std::to_string(getpid()) + ".yaml";
  std::ofstream(path) << "get_images: role:admin\n";
  Policy p = Policy::Defaults();
  ASSERT_TRUE(LoadPolicyFile(p, path).ok());
  auto reader = Ctx({"reader"}, "p1");
  EXPECT_FALSE(p.Authorize("get_images", reader).ok());
  PolicyFileWatcher watcher(p, path, std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::ofstream(path) << "get_images: role:reader\n# changed\n";
  for (int i = 0; i < 200 && watcher.reloads() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(p.Authorize("get_images", reader).ok());
  // A broken edit keeps the rules in force.
  std::ofstream(path) << "get_images: role:reader or\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(p.Authorize("get_images", reader).ok());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ingot::auth
