// The catalog as a JobLeaseRepository, on every engine: one holder at a time, due only an interval
// after the last release, taken over once expired, and a race of many nodes won by exactly one.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "catalog/sql/sql_repository.h"
#include "catalog/sql/testing/engines.h"

namespace ingot::catalog {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000'000;  // microseconds
constexpr int64_t kSecond = 1'000'000;

class JobLeasesTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto db = testing::EngineDatabase::Create(GetParam());
    if (db.status().code() == Code::kUnsupported) GTEST_SKIP() << db.status().message();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    auto r = db_->Open();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    repo_ = std::move(*r);
  }
  void TearDown() override {
    repo_.reset();
    db_.reset();
  }
  // Takes "job" for `holder` at `now` for 10 s, due when released at or before `now`.
  std::optional<std::string> Acquire(const std::string& holder, int64_t now) {
    auto l = repo_->AcquireJobLease("job", holder, now, now + 10 * kSecond, now);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? l->holder : std::nullopt;
  }

  std::unique_ptr<testing::EngineDatabase> db_;
  std::unique_ptr<SqlRepository> repo_;
};

TEST_P(JobLeasesTest, NeverTakenIsNotFoundThenOneHolderAtATime) {
  EXPECT_EQ(repo_->GetJobLease("job").status().code(), Code::kNotFound);
  EXPECT_EQ(Acquire("a", kT0), "a");
  EXPECT_EQ(Acquire("b", kT0 + kSecond), "a");  // a holds it: b does not get it
  EXPECT_EQ(Acquire("a", kT0 + kSecond), "a");  // re-acquiring one's own lease extends it
  auto l = repo_->GetJobLease("job");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->until, kT0 + 11 * kSecond);
  EXPECT_TRUE(repo_->RenewJobLease("job", "a", kT0 + 20 * kSecond).ok());
  EXPECT_EQ(Acquire("b", kT0 + 15 * kSecond), "a");  // renewed past 15 s
  EXPECT_EQ(Acquire("b", kT0 + 21 * kSecond), "b");  // expired: taken over
  EXPECT_EQ(repo_->RenewJobLease("job", "a", kT0 + 30 * kSecond).code(), Code::kConflict);
  EXPECT_EQ(repo_->ReleaseJobLease("job", "a", kT0, "x").code(), Code::kConflict);
}

TEST_P(JobLeasesTest, ReleaseRecordsDoneAndCursorAndTheJobIsDueOnlyAfterTheInterval) {
  ASSERT_EQ(Acquire("a", kT0), "a");
  ASSERT_TRUE(repo_->ReleaseJobLease("job", "a", kT0 + kSecond, "cursor-1").ok());
  auto l = repo_->GetJobLease("job");
  ASSERT_TRUE(l.ok());
  EXPECT_FALSE(l->holder.has_value());
  EXPECT_EQ(l->done_at, kT0 + kSecond);
  EXPECT_EQ(l->cursor, "cursor-1");
  // Interval 60 s: not due before done_at + 60 s.
  auto early = repo_->AcquireJobLease("job", "b", kT0 + 30 * kSecond, kT0 + 40 * kSecond,
                                      kT0 + 30 * kSecond - 60 * kSecond);
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->holder.has_value());
  auto due = repo_->AcquireJobLease("job", "b", kT0 + 61 * kSecond, kT0 + 70 * kSecond,
                                    kT0 + 61 * kSecond - 60 * kSecond);
  ASSERT_TRUE(due.ok());
  EXPECT_EQ(due->holder, "b");
  EXPECT_EQ(due->cursor, "cursor-1");  // the next holder starts where the last one stopped
}

TEST_P(JobLeasesTest, ManyNodesRacingOneWins) {
  constexpr int kNodes = 8;
  std::vector<std::unique_ptr<SqlRepository>> repos;
  for (int i = 0; i < kNodes; ++i) {
    auto r = db_->Open(2);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    repos.push_back(std::move(*r));
  }
  for (int round = 0; round < 5; ++round) {
    const int64_t now = kT0 + round * 100 * kSecond;
    std::atomic<int> winners{0}, failures{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kNodes; ++i) {
      threads.emplace_back([&, i] {
        const std::string me = "node" + std::to_string(i);
        auto l = repos[i]->AcquireJobLease("job", me, now, now + 10 * kSecond, now);
        if (!l.ok()) {
          ++failures;
          return;
        }
        if (l->holder == me) {
          ++winners;
          if (!repos[i]->ReleaseJobLease("job", me, now + kSecond, "").ok()) ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0) << "round " << round;
    EXPECT_EQ(winners.load(), 1) << "round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, JobLeasesTest, ::testing::ValuesIn(testing::Engines()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ingot::catalog
