#include "api/streamer/query.h"

#include <gtest/gtest.h>

namespace ingot::api::streamer {
namespace {
namespace json = boost::json;

std::vector<json::object> Docs() {
  std::vector<json::object> out;
  for (auto [name, n] : std::vector<std::pair<const char*, int>>{{"web", 3}, {"db", 1}, {"Web-2", 2}}) {
    out.push_back(json::object{{"name", name}, {"n", n}, {"nested", json::object{{"k", name}}}});
  }
  return out;
}

TEST(Query, FiltersAsTheSdksSendThem) {
  auto q = ParseListQuery({{"filter", "\"name='web'\""}});
  ASSERT_TRUE(q.ok());
  auto page = Page(Docs(), *q, "/rest/x", "XCollection");
  EXPECT_EQ(page.at("total").as_int64(), 1);
  q = ParseListQuery({{"filter", "name matches 'WEB%'"}});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(Page(Docs(), *q, "/rest/x", "X").at("total").as_int64(), 2);
  q = ParseListQuery({{"filter", "n >= 2 AND nested.k != 'web'"}});
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  auto p = Page(Docs(), *q, "/rest/x", "X");
  ASSERT_EQ(p.at("total").as_int64(), 1);
  EXPECT_EQ(p.at("members").as_array()[0].as_object().at("name").as_string(), "Web-2");
}

TEST(Query, SortAndPages) {
  auto q = ParseListQuery({{"sort", "n:desc"}, {"start", "1"}, {"count", "1"}});
  ASSERT_TRUE(q.ok());
  auto p = Page(Docs(), *q, "/rest/x", "X");
  EXPECT_EQ(p.at("total").as_int64(), 3);
  EXPECT_EQ(p.at("count").as_int64(), 1);
  EXPECT_EQ(p.at("members").as_array()[0].as_object().at("name").as_string(), "Web-2");
  EXPECT_EQ(p.at("nextPageUri").as_string(), "/rest/x?start=2&count=1");
  EXPECT_EQ(p.at("prevPageUri").as_string(), "/rest/x?start=0&count=1");
}

TEST(Query, Refusals) {
  EXPECT_FALSE(ParseListQuery({{"start", "-1"}}).ok());
  EXPECT_FALSE(ParseListQuery({{"count", "x"}}).ok());
  EXPECT_FALSE(ParseListQuery({{"sort", "name:up"}}).ok());
  EXPECT_FALSE(ParseListQuery({{"filter", "name 'x'"}}).ok());
  EXPECT_FALSE(ParseListQuery({{"filter", "name = 'x"}}).ok());
  EXPECT_FALSE(ParseListQuery({{"filter", "a=1 OR b=2"}}).ok());
}

}  // namespace
}  // namespace ingot::api::streamer
