#include "catalog/sqlite/database.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <thread>

namespace ingot::catalog::sqlite {
namespace {

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-db-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/catalog.db";
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_, path_;
};

constexpr std::array<const char*, 2> kSteps = {
    "CREATE TABLE things (id TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL)",
    "ALTER TABLE things ADD COLUMN label TEXT",
};

TEST_F(DatabaseTest, ComponentsMigrateIndependentlyAndOnce) {
  auto db = Database::Open(path_);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Migrate("things", std::span(kSteps).first(1)).ok());
  EXPECT_EQ(*(*db)->ComponentVersion("things"), 1);
  EXPECT_EQ(*(*db)->ComponentVersion("other"), 0);
  ASSERT_TRUE((*db)->Migrate("things", kSteps).ok());
  ASSERT_TRUE((*db)->Migrate("things", kSteps).ok());  // already there: nothing runs twice
  EXPECT_EQ(*(*db)->ComponentVersion("things"), 2);
  // A build that knows fewer steps refuses the newer file.
  Status older = (*db)->Migrate("things", std::span(kSteps).first(1));
  EXPECT_EQ(older.code(), Code::kCorruption);
}

TEST_F(DatabaseTest, ConcurrentOpenersApplyEachStepOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto db = Database::Open(path_);
      Status s = db.ok() ? (*db)->Migrate("things", kSteps) : db.status();
      if (!s.ok()) {
        ++failures;
        ADD_FAILURE() << s.ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto db = Database::Open(path_);
  EXPECT_EQ(*(*db)->ComponentVersion("things"), 2);
}

TEST_F(DatabaseTest, WriteRollsBackOnError) {
  auto db = *Database::Open(path_);
  ASSERT_TRUE(db->Migrate("things", kSteps).ok());
  Status s = db->Write([](Connection& c) -> Status {
    INGOT_RETURN_IF_ERROR(c.Exec("INSERT INTO things (id, n) VALUES ('a', 1)"));
    return InvalidArgument("no");
  });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  int64_t count = -1;
  ASSERT_TRUE(db->Read([&](Connection& c) -> Status {
                  INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("SELECT count(*) FROM things"));
                  INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
                  if (row) count = st.Int(0);
                  return Status::Ok();
                }).ok());
  EXPECT_EQ(count, 0);
}

}  // namespace
}  // namespace ingot::catalog::sqlite
