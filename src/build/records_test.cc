// The builder's records on every catalog engine (SQLite and PostgreSQL): put, replace in place,
// soft delete, undelete, purge, and two repositories on one database seeing each other's writes
// (two nodes sharing a PostgreSQL catalog).
#include "build/records.h"

#include <gtest/gtest.h>

#include "catalog/sql/testing/engines.h"

namespace ingot::build {
namespace {

class RecordsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto db = catalog::testing::EngineDatabase::Create(GetParam());
    if (db.status().code() == Code::kUnsupported) GTEST_SKIP() << db.status().message();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
  }
  std::unique_ptr<BuildRepository> Open() {
    auto catalog = db_->Open();
    EXPECT_TRUE(catalog.ok()) << catalog.status().ToString();
    if (!catalog.ok()) return nullptr;
    auto repo = OpenBuildRepository((*catalog)->shared_backend());
    EXPECT_TRUE(repo.ok()) << repo.status().ToString();
    return repo.ok() ? std::move(*repo) : nullptr;
  }
  std::unique_ptr<catalog::testing::EngineDatabase> db_;
};

TEST_P(RecordsTest, PutGetListSoftDeleteUndeletePurge) {
  auto repo = Open();
  ASSERT_TRUE(repo);
  auto& r = *repo;
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
}

TEST_P(RecordsTest, TwoNodesOnOneDatabaseShareRecordsAndMigrateOnce) {
  auto a = Open();
  auto b = Open();  // the second opener finds the schema already there
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Put(Kind::kJob, "j", {{"id", "j"}, {"status", "creating"}}).ok());
  auto seen = b->Get(Kind::kJob, "j");
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->at("status").as_string(), "creating");
  ASSERT_TRUE(b->Put(Kind::kJob, "j", {{"id", "j"}, {"status", "success"}}).ok());
  EXPECT_EQ(a->Get(Kind::kJob, "j")->at("status").as_string(), "success");
  EXPECT_EQ(a->List(Kind::kJob)->size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Engines, RecordsTest, ::testing::ValuesIn(catalog::testing::Engines()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ingot::build
