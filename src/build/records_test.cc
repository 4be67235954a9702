#include "build/records.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "catalog/sqlite/database.h"

namespace ingot::build {
namespace {

TEST(RecordsTest, PutGetListSoftDeleteUndeletePurge) {
  std::string path = "/tmp/ingot-build-records-" + std::to_string(getpid()) + ".db";
  unlink(path.c_str());
  auto db = catalog::sqlite::Database::Open(path);
  ASSERT_TRUE(db.ok());
  auto repo = OpenSqliteBuildRepository(*db);
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  auto& r = **repo;
  ASSERT_TRUE(r.Put(Kind::kRecipe, "a", {{"id", "a"}, {"name", "one"}}).ok());
  ASSERT_TRUE(r.Put(Kind::kRecipe, "b", {{"id", "b"}, {"name", "two"}}).ok());
  ASSERT_TRUE(r.Put(Kind::kImage, "a", {{"id", "a"}, {"name", "image"}}).ok());
  ASSERT_TRUE(r.Put(Kind::kRecipe, "a", {{"id", "a"}, {"name", "one!"}}).ok());  // replace
  auto list = r.List(Kind::kRecipe);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].at("name").as_string(), "one!");  // keeps its place
  EXPECT_EQ(r.Get(Kind::kImage, "a")->at("name").as_string(), "image");

  ASSERT_TRUE(r.SetDeleted(Kind::kRecipe, "a", true).ok());
  EXPECT_EQ(r.Get(Kind::kRecipe, "a").status().code(), Code::kNotFound);
  EXPECT_TRUE(r.Get(Kind::kRecipe, "a", true).ok());
  EXPECT_EQ(r.List(Kind::kRecipe)->size(), 1u);
  EXPECT_EQ(r.List(Kind::kRecipe, true)->size(), 1u);
  EXPECT_EQ(r.SetDeleted(Kind::kRecipe, "a", true).code(), Code::kNotFound);
  ASSERT_TRUE(r.SetDeleted(Kind::kRecipe, "a", false).ok());  // undelete
  EXPECT_TRUE(r.Get(Kind::kRecipe, "a").ok());
  ASSERT_TRUE(r.SetDeleted(Kind::kRecipe, "b", true).ok());
  ASSERT_TRUE(r.Remove(Kind::kRecipe, "b", true).ok());  // purge
  EXPECT_EQ(r.Get(Kind::kRecipe, "b", true).status().code(), Code::kNotFound);
  EXPECT_EQ(r.Remove(Kind::kRecipe, "b", true).code(), Code::kNotFound);
  unlink(path.c_str());
}

}  // namespace
}  // namespace ingot::build
