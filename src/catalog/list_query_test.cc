#include "catalog/list_query.h"

#include <gtest/gtest.h>

#include "common/time.h"

namespace ingot::catalog {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

ListQuery MustParse(const Params& p) {
  auto q = ParseListQuery(p);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return q.ok() ? *q : ListQuery{};
}

// The error message for `p`, or "" when it parses.
std::string ErrorOf(const Params& p) {
  auto q = ParseListQuery(p);
  if (q.ok()) return "";
  EXPECT_EQ(q.status().code(), Code::kInvalidArgument);
  return q.status().message();
}

std::vector<SortTerm> Sort(std::initializer_list<SortTerm> t) { return t; }
constexpr auto kAsc = SortDir::kAsc;
constexpr auto kDesc = SortDir::kDesc;

TEST(ParseListQueryTest, Defaults) {
  ListQuery q = MustParse({});
  EXPECT_EQ(q.limit, 25);
  EXPECT_FALSE(q.marker.has_value());
  EXPECT_EQ(q.sort, Sort({{SortKey::kCreatedAt, kDesc}, {SortKey::kId, kDesc}}));
  EXPECT_FALSE(q.visibility.all);
  EXPECT_FALSE(q.visibility.only.has_value());
  EXPECT_EQ(q.member_status, MemberStatus::kAccepted);
  EXPECT_FALSE(q.os_hidden);
  EXPECT_FALSE(q.is_protected.has_value());
  EXPECT_TRUE(q.fields.empty());
  EXPECT_TRUE(q.tags.empty());
  EXPECT_TRUE(q.properties.empty());
}

TEST(ParseListQueryTest, Limit) {
  EXPECT_EQ(MustParse({{"limit", "2"}}).limit, 2);
  EXPECT_EQ(MustParse({{"limit", "0"}}).limit, 0);
  EXPECT_EQ(MustParse({{"limit", " 7 "}}).limit, 7);
  EXPECT_EQ(MustParse({{"limit", "+3"}}).limit, 3);
  EXPECT_EQ(MustParse({{"limit", "5000"}}).limit, 1000);
  EXPECT_EQ(MustParse({{"limit", "99999999999999999999999"}}).limit, 1000);
  EXPECT_EQ(ErrorOf({{"limit", "ten"}}), "limit param must be an integer");
  EXPECT_EQ(ErrorOf({{"limit", ""}}), "limit param must be an integer");
  EXPECT_EQ(ErrorOf({{"limit", "1.5"}}), "limit param must be an integer");
  EXPECT_EQ(ErrorOf({{"limit", "-1"}}), "limit param must be positive");
}

TEST(ParseListQueryTest, Marker) { EXPECT_EQ(MustParse({{"marker", "abc"}}).marker, "abc"); }

TEST(ParseListQueryTest, SortKeyAndDirClassic) {
  EXPECT_EQ(MustParse({{"sort_key", "name"}}).sort,
            Sort({{SortKey::kName, kDesc}, {SortKey::kCreatedAt, kDesc}, {SortKey::kId, kDesc}}));
  // One direction applies to every key, the appended tiebreakers included.
  EXPECT_EQ(MustParse({{"sort_key", "name"}, {"sort_key", "size"}, {"sort_dir", "asc"}}).sort,
            Sort({{SortKey::kName, kAsc},
                  {SortKey::kSize, kAsc},
                  {SortKey::kCreatedAt, kAsc},
                  {SortKey::kId, kAsc}}));
  EXPECT_EQ(
      MustParse(
          {{"sort_key", "name"}, {"sort_dir", "asc"}, {"sort_key", "status"}, {"sort_dir", "desc"}})
          .sort,
      Sort({{SortKey::kName, kAsc},
            {SortKey::kStatus, kDesc},
            {SortKey::kCreatedAt, kDesc},
            {SortKey::kId, kDesc}}));
  EXPECT_EQ(MustParse({{"sort_key", "created_at"}, {"sort_dir", "asc"}}).sort,
            Sort({{SortKey::kCreatedAt, kAsc}, {SortKey::kId, kAsc}}));
  EXPECT_EQ(MustParse({{"sort_key", "id"}, {"sort_dir", "asc"}}).sort,
            Sort({{SortKey::kId, kAsc}, {SortKey::kCreatedAt, kAsc}}));
  EXPECT_EQ(MustParse({{"sort_dir", "asc"}}).sort,
            Sort({{SortKey::kCreatedAt, kAsc}, {SortKey::kId, kAsc}}));
}

TEST(ParseListQueryTest, SortNewSyntax) {
  EXPECT_EQ(MustParse({{"sort", "name:asc,created_at:desc"}}).sort,
            Sort({{SortKey::kName, kAsc}, {SortKey::kCreatedAt, kDesc}, {SortKey::kId, kDesc}}));
  EXPECT_EQ(MustParse({{"sort", " disk_format , container_format:asc "}}).sort,
            Sort({{SortKey::kDiskFormat, kDesc},
                  {SortKey::kContainerFormat, kAsc},
                  {SortKey::kCreatedAt, kDesc},
                  {SortKey::kId, kDesc}}));
  EXPECT_EQ(MustParse({{"sort", "updated_at:asc"}}).sort,
            Sort({{SortKey::kUpdatedAt, kAsc}, {SortKey::kCreatedAt, kAsc}, {SortKey::kId, kAsc}}));
}

TEST(ParseListQueryTest, SortErrors) {
  EXPECT_EQ(ErrorOf({{"sort_key", "bogus"}}),
            "Invalid sort key: bogus. It must be one of the following: name, status, "
            "container_format, disk_format, size, id, created_at, updated_at.");
  EXPECT_EQ(ErrorOf({{"sort", "name:up"}}), "Invalid sort direction: up");
  EXPECT_EQ(ErrorOf({{"sort_dir", "up"}}), "Invalid sort direction: up");
  EXPECT_EQ(ErrorOf({{"sort", "owner:asc"}}).substr(0, 23), "Invalid sort key: owner");
  EXPECT_EQ(ErrorOf({{"sort", "name"}, {"sort_key", "size"}}),
            "Old and new sorting syntax cannot be combined");
  EXPECT_EQ(ErrorOf({{"sort", "name"}, {"sort_dir", "asc"}}),
            "Old and new sorting syntax cannot be combined");
  EXPECT_EQ(ErrorOf({{"sort_key", "name"}, {"sort_dir", "asc"}, {"sort_dir", "desc"}}),
            "Number of sort dirs does not match the number of sort keys");
  EXPECT_EQ(ErrorOf({{"sort", ""}}).substr(0, 19), "Invalid sort key: .");
}

TEST(ParseListQueryTest, Visibility) {
  EXPECT_EQ(MustParse({{"visibility", "public"}}).visibility.only, Visibility::kPublic);
  EXPECT_EQ(MustParse({{"visibility", "community"}}).visibility.only, Visibility::kCommunity);
  EXPECT_EQ(MustParse({{"visibility", "shared"}}).visibility.only, Visibility::kShared);
  EXPECT_EQ(MustParse({{"visibility", "private"}}).visibility.only, Visibility::kPrivate);
  EXPECT_TRUE(MustParse({{"visibility", "all"}}).visibility.all);
  EXPECT_EQ(ErrorOf({{"visibility", "everyone"}}), "Invalid visibility value: everyone");
}

TEST(ParseListQueryTest, MemberStatus) {
  EXPECT_EQ(MustParse({{"member_status", "pending"}}).member_status, MemberStatus::kPending);
  EXPECT_EQ(MustParse({{"member_status", "rejected"}}).member_status, MemberStatus::kRejected);
  EXPECT_FALSE(MustParse({{"member_status", "all"}}).member_status.has_value());
  EXPECT_EQ(ErrorOf({{"member_status", "maybe"}}), "Invalid status: maybe");
}

TEST(ParseListQueryTest, HiddenAndProtected) {
  EXPECT_TRUE(MustParse({{"os_hidden", "true"}}).os_hidden);
  EXPECT_TRUE(MustParse({{"os_hidden", "TRUE"}}).os_hidden);
  EXPECT_FALSE(MustParse({{"os_hidden", "False"}}).os_hidden);
  EXPECT_EQ(ErrorOf({{"os_hidden", "Yes"}}),
            "Invalid value 'yes' for 'os_hidden' filter. Valid values are 'true' or 'false'.");
  EXPECT_EQ(MustParse({{"protected", "true"}}).is_protected, true);
  EXPECT_EQ(MustParse({{"protected", "false"}}).is_protected, false);
  EXPECT_EQ(ErrorOf({{"protected", "True"}}),
            "Invalid value 'True' for 'protected' filter. Valid values are 'true' or 'false'.");
}

TEST(ParseListQueryTest, TagsRepeatAndAllMustMatch) {
  ListQuery q = MustParse({{"tag", "x86"}, {"tag", " 64bit "}});
  EXPECT_EQ(q.tags, (std::vector<std::string>{"x86", "64bit"}));
}

TEST(ParseListQueryTest, OperatorFields) {
  ListQuery q = MustParse({{"name", "cirros"},
                           {"status", "in:active,queued"},
                           {"disk_format", "eq:qcow2"},
                           {"container_format", "in:bare"},
                           {"id", "in:a,\"b,c\""}});
  ASSERT_EQ(q.fields.size(), 5u);
  EXPECT_EQ(q.fields[0].field, Field::kName);
  EXPECT_EQ(q.fields[0].values, (std::vector<std::string>{"cirros"}));
  EXPECT_EQ(q.fields[1].field, Field::kStatus);
  EXPECT_EQ(q.fields[1].values, (std::vector<std::string>{"active", "queued"}));
  EXPECT_EQ(q.fields[2].field, Field::kDiskFormat);
  EXPECT_EQ(q.fields[2].values, (std::vector<std::string>{"qcow2"}));
  EXPECT_EQ(q.fields[3].values, (std::vector<std::string>{"bare"}));
  EXPECT_EQ(q.fields[4].field, Field::kId);
  EXPECT_EQ(q.fields[4].values, (std::vector<std::string>{"a", "b,c"}));
  // A name with a colon needs the eq: prefix, as in Glance.
  EXPECT_EQ(MustParse({{"name", "eq:a:b"}}).fields[0].values, (std::vector<std::string>{"a:b"}));
  EXPECT_EQ(ErrorOf({{"name", "a:b"}}), "Unable to filter by unknown operator 'a'.");
  EXPECT_EQ(ErrorOf({{"status", "gt:active"}}), "Unable to filter by unknown operator 'gt'.");
}

TEST(ParseListQueryTest, InListSplitting) {
  EXPECT_EQ(*SplitInList("a,b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*SplitInList("a,,b"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(*SplitInList(",a"), (std::vector<std::string>{"", "a"}));
  EXPECT_EQ(*SplitInList("a,"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(*SplitInList("\"x,y\",z"), (std::vector<std::string>{"x,y", "z"}));
  EXPECT_EQ(*SplitInList("\"x\\\"y\""), (std::vector<std::string>{"x\\\"y"}));
  EXPECT_TRUE(SplitInList("")->empty());
  EXPECT_EQ(SplitInList("a\"b\"").status().message(),
            "Invalid filter value a\"b\". There is no comma before opening quotation mark.");
  EXPECT_EQ(SplitInList("\"a\"b").status().message(),
            "Invalid filter value \"a\"b. There is no comma after closing quotation mark.");
  EXPECT_EQ(SplitInList("\"ab").status().message(),
            "Invalid filter value \"ab. The quote is not closed.");
  EXPECT_EQ(ErrorOf({{"name", "in:\"ab"}}), "Invalid filter value \"ab. The quote is not closed.");
}

TEST(ParseListQueryTest, EqualityFields) {
  ListQuery q = MustParse(
      {{"owner", "in:a,b"}, {"checksum", "abc"}, {"min_ram", "512"}, {"os_hash_value", "f00"}});
  ASSERT_EQ(q.fields.size(), 4u);
  EXPECT_EQ(q.fields[0].field, Field::kOwner);
  EXPECT_EQ(q.fields[0].values, (std::vector<std::string>{"in:a,b"}));  // no operators on owner
  EXPECT_EQ(q.fields[1].field, Field::kChecksum);
  EXPECT_EQ(q.fields[2].field, Field::kMinRam);
  EXPECT_EQ(q.fields[3].field, Field::kOsHashValue);
}

TEST(ParseListQueryTest, Ranges) {
  ListQuery q = MustParse({{"size_min", "10"}, {"size_max", "20"}, {"virtual_size_max", "5"}});
  ASSERT_EQ(q.ranges.size(), 2u);
  EXPECT_EQ(q.ranges[0].field, Field::kSize);
  EXPECT_EQ(q.ranges[0].min, 10);
  EXPECT_EQ(q.ranges[0].max, 20);
  EXPECT_EQ(q.ranges[1].field, Field::kVirtualSize);
  EXPECT_FALSE(q.ranges[1].min.has_value());
  EXPECT_EQ(q.ranges[1].max, 5);
  EXPECT_EQ(ErrorOf({{"size_min", "big"}}),
            "Unable to filter on a range with a non-numeric value.");
  EXPECT_EQ(ErrorOf({{"size_max", ""}}), "Unable to filter on a range with a non-numeric value.");
  EXPECT_NE(ErrorOf({{"colour_min", "3"}}), "");
}

TEST(ParseListQueryTest, Times) {
  const int64_t t = *ParseIso8601("2026-11-23T10:00:00Z") / 1000000;
  ListQuery q = MustParse(
      {{"created_at", "gte:2026-11-23T10:00:00Z"}, {"updated_at", "2026-11-23T10:00:00.75Z"}});
  ASSERT_EQ(q.times.size(), 2u);
  EXPECT_EQ(q.times[0].field, TimeField::kCreatedAt);
  EXPECT_EQ(q.times[0].op, CompareOp::kGte);
  EXPECT_EQ(q.times[0].seconds, t);
  // A bare ISO time (colons and all) is equality, at whole seconds.
  EXPECT_EQ(q.times[1].field, TimeField::kUpdatedAt);
  EXPECT_EQ(q.times[1].op, CompareOp::kEq);
  EXPECT_EQ(q.times[1].seconds, t);
  for (auto [op, want] : std::vector<std::pair<std::string, CompareOp>>{{"eq", CompareOp::kEq},
                                                                        {"neq", CompareOp::kNeq},
                                                                        {"gt", CompareOp::kGt},
                                                                        {"gte", CompareOp::kGte},
                                                                        {"lt", CompareOp::kLt},
                                                                        {"lte", CompareOp::kLte}}) {
    EXPECT_EQ(MustParse({{"created_at", op + ":2026-11-23T10:00:00+01:00"}}).times[0].op, want);
  }
  EXPECT_EQ(MustParse({{"created_at", "lt:2026-11-23T10:00:00+01:00"}}).times[0].seconds, t - 3600);
  EXPECT_EQ(ErrorOf({{"created_at", "gt:yesterday"}}),
            "Bad \"created_at\" query filter format. Use ISO 8601 DateTime notation.");
  EXPECT_EQ(ErrorOf({{"updated_at", "soon"}}),
            "Bad \"updated_at\" query filter format. Use ISO 8601 DateTime notation.");
  EXPECT_EQ(ErrorOf({{"created_at", "after:2026-11-23T10:00:00Z"}}),
            "Unable to filter on a unknown operator.");
}

TEST(ParseListQueryTest, ExtraPropertiesAndIgnoredKeys) {
  ListQuery q =
      MustParse({{"os_distro", "debian"}, {"hw_disk_bus", "virtio"}, {"deleted", "true"}});
  EXPECT_EQ(q.properties, (std::vector<std::pair<std::string, std::string>>{
                              {"os_distro", "debian"}, {"hw_disk_bus", "virtio"}}));
  EXPECT_TRUE(q.fields.empty());
}

TEST(ParseListQueryTest, RepeatedFilterKeepsFirst) {
  ListQuery q = MustParse({{"name", "a"}, {"name", "b"}, {"limit", "3"}, {"limit", "9"}});
  ASSERT_EQ(q.fields.size(), 1u);
  EXPECT_EQ(q.fields[0].values, (std::vector<std::string>{"a"}));
  EXPECT_EQ(q.limit, 3);
}

TEST(ParseListQueryTest, ChangesSinceRefused) {
  EXPECT_EQ(ErrorOf({{"changes-since", "2026-01-01"}}),
            "The \"changes-since\" filter is no longer available on v2.");
}

TEST(SortKeyTest, NamesRoundTrip) {
  for (SortKey k :
       {SortKey::kName, SortKey::kStatus, SortKey::kContainerFormat, SortKey::kDiskFormat,
        SortKey::kSize, SortKey::kId, SortKey::kCreatedAt, SortKey::kUpdatedAt}) {
    EXPECT_EQ(ParseSortKey(SortKeyName(k)), k);
  }
}

// A query cannot grow without bound: each bound is named in the refusal (a 400, never the database's
// "Expression tree is too large").
TEST(ListQueryBoundsTest, RefusesQueriesPastTheBoundsNamingThem) {
  std::vector<std::pair<std::string, std::string>> many;
  for (size_t i = 0; i <= kMaxListFilters; ++i) many.emplace_back("p" + std::to_string(i), "v");
  auto r = ParseListQuery(many);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("at most 64"), std::string::npos) << r.status().message();
  many.pop_back();
  EXPECT_TRUE(ParseListQuery(many).ok());

  std::vector<std::pair<std::string, std::string>> tags(kMaxListTags + 1, {"tag", "t"});
  EXPECT_NE(ParseListQuery(tags).status().message().find("tag"), std::string::npos);

  std::string sort;
  for (size_t i = 0; i <= kMaxSortKeys; ++i) sort += (i ? "," : "") + std::string("name:asc");
  EXPECT_NE(ParseListQuery({{"sort", sort}}).status().message().find("sort keys"),
            std::string::npos);
  std::vector<std::pair<std::string, std::string>> keys(kMaxSortKeys + 1, {"sort_key", "name"});
  EXPECT_EQ(ParseListQuery(keys).status().code(), Code::kInvalidArgument);

  std::string in = "in:";
  for (size_t i = 0; i <= kMaxInValues; ++i) in += (i ? "," : "") + std::to_string(i);
  EXPECT_NE(ParseListQuery({{"name", in}}).status().message().find("name filter"),
            std::string::npos);
}

}  // namespace
}  // namespace ingot::catalog
