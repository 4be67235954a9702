#include "boot/machines.h"

#include <gtest/gtest.h>

namespace ingot::boot {
namespace {

Machine M(std::string mac, std::map<std::string, std::string, std::less<>> labels = {}) {
  Machine m;
  m.id = "id-" + mac;
  m.mac = *NormalizeMac(mac);
  m.labels = std::move(labels);
  return m;
}

Profile P(std::string name, std::string selector, bool is_default = false) {
  Profile p;
  p.name = std::move(name);
  p.selector = std::move(selector);
  p.is_default = is_default;
  p.kernel = "k";
  return p;
}

TEST(NormalizeTest, MacsAndUuids) {
  EXPECT_EQ(*NormalizeMac("52-54-00-AB-cd-01"), "52:54:00:ab:cd:01");
  EXPECT_EQ(*NormalizeMac("5254.00ab.cd01"), "52:54:00:ab:cd:01");
  EXPECT_FALSE(NormalizeMac("52:54:00:ab:cd"));
  EXPECT_FALSE(NormalizeMac("52:54:00:ab:cd:0g"));
  EXPECT_EQ(*NormalizeUuid("8C9AB0E2-1D4F-4E3B-9A1B-0123456789AB"),
            "8c9ab0e2-1d4f-4e3b-9a1b-0123456789ab");
  EXPECT_FALSE(NormalizeUuid("not-a-uuid"));
}

TEST(SelectorTest, ParsesOrInAndParentheses) {
  auto s = Selector::Parse("mac in (52:54:00:00:00:01, 52-54-00-00-00-02) or rack = r1 and role=db");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->Match(FactsOf(M("52:54:00:00:00:02"))));
  EXPECT_FALSE(s->Match(FactsOf(M("52:54:00:00:00:03", {{"rack", "r1"}}))));
  EXPECT_TRUE(s->Match(FactsOf(M("52:54:00:00:00:03", {{"rack", "r1"}, {"role", "db"}}))));
  auto t = Selector::Parse("(label.rack = r1 || rack = r2) && role != db");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->Match(FactsOf(M("52:54:00:00:00:03", {{"rack", "r2"}}))));
  EXPECT_FALSE(t->Match(FactsOf(M("52:54:00:00:00:03", {{"rack", "r2"}, {"role", "db"}}))));
  EXPECT_TRUE(Selector::Parse("hostname = \"node 1\"").ok());
  EXPECT_TRUE(Selector::Parse("MAC = 52:54:00:00:00:01 OR uuid IN (8c9ab0e2-1d4f-4e3b-9a1b-0123456789ab)").ok());
}

TEST(SelectorTest, ErrorsSayWhere) {
  for (const char* bad : {"", "mac", "mac = ", "mac = zz", "rack in (a, b", "(rack = a",
                          "rack = a or", "uuid = 12", "rack = a b", "label. = x"}) {
    auto s = Selector::Parse(bad);
    EXPECT_FALSE(s.ok()) << bad;
    if (!s.ok()) {
      EXPECT_NE(s.status().message().find("selector"), std::string::npos);
    }
  }
}

TEST(SelectorTest, SpecificityCountsIdentityFirst) {
  auto s = Selector::Parse("(mac = 52:54:00:00:00:01 and rack = r1) or rack = r1");
  Facts f = FactsOf(M("52:54:00:00:00:01", {{"rack", "r1"}}));
  EXPECT_EQ(*s->Match(f), (Specificity{1, 1}));
  Facts g = FactsOf(M("52:54:00:00:00:09", {{"rack", "r1"}}));
  EXPECT_EQ(*s->Match(g), (Specificity{0, 1}));
  EXPECT_LT((Specificity{0, 5}), (Specificity{1, 0}));
}

TEST(MatchTest, MostSpecificThenDefaultThenNothing) {
  std::vector<Profile> profiles = {
      P("rack", "rack = r1"),
      P("rack-db", "rack = r1 and role = db"),
      P("one", "mac in (52:54:00:00:00:01, 52:54:00:00:00:05)"),
      P("fallback", "", /*is_default=*/true),
  };
  auto pick = [&](const Machine& m) {
    MatchResult r = Match(m, profiles);
    return r.profile ? r.profile->name : std::string("<holding>");
  };
  EXPECT_EQ(pick(M("52:54:00:00:00:01", {{"rack", "r1"}, {"role", "db"}})), "one");
  EXPECT_EQ(pick(M("52:54:00:00:00:02", {{"rack", "r1"}, {"role", "db"}})), "rack-db");
  EXPECT_EQ(pick(M("52:54:00:00:00:02", {{"rack", "r1"}})), "rack");
  EXPECT_EQ(pick(M("52:54:00:00:00:03")), "fallback");
  EXPECT_EQ(Match(M("52:54:00:00:00:03"), profiles).why, MatchResult::Why::kDefault);
  // An operator's assignment wins over every selector.
  Machine assigned = M("52:54:00:00:00:01");
  assigned.profile = "rack";
  EXPECT_EQ(pick(assigned), "rack");
  EXPECT_EQ(Match(assigned, profiles).why, MatchResult::Why::kAssigned);
  // Without a default, nothing: the holding script.
  profiles.pop_back();
  EXPECT_EQ(pick(M("52:54:00:00:00:03")), "<holding>");
  EXPECT_EQ(Match(M("52:54:00:00:00:03"), profiles).why, MatchResult::Why::kNone);
}

TEST(MatchTest, TiesGoToTheFirstNameWhateverTheOrder) {
  std::vector<Profile> a = {P("b", "rack = r1"), P("a", "role = db")};
  std::vector<Profile> b = {P("a", "role = db"), P("b", "rack = r1")};
  Machine m = M("52:54:00:00:00:01", {{"rack", "r1"}, {"role", "db"}});
  EXPECT_EQ(Match(m, a).profile->name, "a");
  EXPECT_EQ(Match(m, b).profile->name, "a");
}

TEST(ValidateTest, RefusesBrokenProfilesWhenSaved) {
  Profile p = P("ok", "rack = r1");
  EXPECT_TRUE(ValidateProfile(p).ok());
  Profile bad_name = P("no spaces", "");
  EXPECT_FALSE(ValidateProfile(bad_name).ok());
  Profile bad_sel = P("x", "rack ==");
  EXPECT_FALSE(ValidateProfile(bad_sel).ok());
  Profile bad_tpl = P("x", "");
  bad_tpl.args = "console={{.tty";
  Status s = ValidateProfile(bad_tpl);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("args"), std::string::npos) << s.message();
  Profile nothing;
  nothing.name = "empty";
  EXPECT_FALSE(ValidateProfile(nothing).ok());
  Profile os;
  os.name = "tree";
  os.os = OsTreeRef{"debian", "12"};
  EXPECT_TRUE(ValidateProfile(os).ok());
}

TEST(ValidateTest, MachinesNeedAnIdentity) {
  Machine m;
  EXPECT_FALSE(NormalizeMachine(m).ok());
  m.mac = "52-54-00-00-00-0A";
  ASSERT_TRUE(NormalizeMachine(m).ok());
  EXPECT_EQ(m.mac, "52:54:00:00:00:0a");
  m.labels["bad label"] = "x";
  EXPECT_FALSE(NormalizeMachine(m).ok());
}

}  // namespace
}  // namespace ingot::boot
