// SQLite-only behaviour of the embedded catalog; everything the engines share is tested against both
// in catalog/sql/sql_repository_test.cc and sql_tasks_test.cc.
#include "catalog/sqlite/sqlite_repository.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>

namespace ingot::catalog {
namespace {

class SqliteRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-catalog-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/catalog.db";
    auto r = SqliteImageRepository::Open(path_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    repo_ = std::move(*r);
  }
  void TearDown() override {
    repo_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  std::string path_;
  std::unique_ptr<SqliteImageRepository> repo_;
};

TEST_F(SqliteRepositoryTest, SchemaVersionIsOneRow) {
  for (int i = 0; i < 3; ++i) {
    repo_.reset();
    auto r = SqliteImageRepository::Open(path_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    repo_ = std::move(*r);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*), max(version) FROM schema_version", -1, &st,
                               nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 1);
  EXPECT_EQ(sqlite3_column_int(st, 1), SqliteImageRepository::LatestSchemaVersion());
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_F(SqliteRepositoryTest, NotADatabaseIsRefused) {
  repo_.reset();
  std::string junk = dir_ + "/junk.db";
  FILE* f = fopen(junk.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("this is not an SQLite database, not even close; just some text that is long enough", f);
  fclose(f);
  auto r = SqliteImageRepository::Open(junk);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().ToString();
}

}  // namespace
}  // namespace ingot::catalog
