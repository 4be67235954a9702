// The catalog as a TaskRepository, on every engine: the tasks table, the one-live-task-per-image
// rule and claiming by leases (PostgreSQL: FOR UPDATE SKIP LOCKED).
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "catalog/sql/sql_repository.h"
#include "catalog/sql/testing/engines.h"

namespace ingot::catalog {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000'000;  // microseconds
constexpr int64_t kSecond = 1'000'000;

std::string TaskId(int n) {
  char buf[40];
  snprintf(buf, sizeof buf, "10000000-0000-4000-8000-%012d", n);
  return buf;
}

std::string ImageId(int n) {
  char buf[40];
  snprintf(buf, sizeof buf, "20000000-0000-4000-8000-%012d", n);
  return buf;
}

// Task n, created n seconds after kT0.
Task MakeTask(int n, std::optional<std::string> image_id = std::nullopt,
              std::optional<std::string> owner = "p1") {
  Task t;
  t.id = TaskId(n);
  t.input = R"({"image_id": "x", "method": {"name": "glance-direct"}})";
  t.owner = std::move(owner);
  t.image_id = std::move(image_id);
  t.created_at = t.updated_at = kT0 + int64_t{n} * kSecond;
  return t;
}

std::vector<std::string> Ids(const std::vector<Task>& tasks) {
  std::vector<std::string> ids;
  for (const auto& t : tasks) ids.push_back(t.id);
  return ids;
}

class TasksTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto db = testing::EngineDatabase::Create(GetParam());
    if (db.status().code() == Code::kUnsupported) GTEST_SKIP() << db.status().message();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    repo_ = OpenRepo();
    ASSERT_NE(repo_, nullptr);
  }
  void TearDown() override {
    repo_.reset();
    db_.reset();
  }
  std::unique_ptr<SqlRepository> OpenRepo() {
    auto r = db_->Open();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }
  Task MustGet(const std::string& id) {
    auto t = repo_->GetTask(id);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? *t : Task{};
  }
  // Claims one task; fails the test when the call fails or nothing is runnable.
  Task MustClaim(const std::string& node, int64_t now, int64_t lease_until) {
    auto t = repo_->ClaimTask(node, now, lease_until);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (!t.ok() || !t->has_value()) {
      ADD_FAILURE() << "nothing claimed";
      return Task{};
    }
    return **t;
  }
  bool NothingRunnable(int64_t now) {
    auto t = repo_->ClaimTask("probe", now, now + kSecond);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() && !t->has_value();
  }

  std::unique_ptr<testing::EngineDatabase> db_;
  std::unique_ptr<SqlRepository> repo_;
};

// ---- records ----

TEST_P(TasksTest, AddGetRoundTripsEveryField) {
  Task t = MakeTask(1, ImageId(1));
  t.type = "api_image_import";
  t.status = TaskStatus::kProcessing;
  t.result = R"({"image_id": "x"})";
  t.message = "still copying";
  t.request_id = "req-8b1f";
  t.user_id = "u1";
  t.updated_at = t.created_at + 5;
  t.expires_at = t.created_at + 48 * 3600 * kSecond;
  t.lease_owner = "node-a";
  t.lease_until = t.created_at + 30 * kSecond;
  t.version = 17;  // ignored: a new task starts at version 1
  ASSERT_TRUE(repo_->AddTask(t).ok());

  Task got = MustGet(t.id);
  EXPECT_EQ(got.id, t.id);
  EXPECT_EQ(got.type, t.type);
  EXPECT_EQ(got.status, TaskStatus::kProcessing);
  EXPECT_EQ(got.input, t.input);
  EXPECT_EQ(got.result, t.result);
  EXPECT_EQ(got.message, t.message);
  EXPECT_EQ(got.owner, t.owner);
  EXPECT_EQ(got.image_id, t.image_id);
  EXPECT_EQ(got.request_id, t.request_id);
  EXPECT_EQ(got.user_id, t.user_id);
  EXPECT_EQ(got.created_at, t.created_at);
  EXPECT_EQ(got.updated_at, t.updated_at);
  EXPECT_EQ(got.expires_at, t.expires_at);
  EXPECT_EQ(got.lease_owner, t.lease_owner);
  EXPECT_EQ(got.lease_until, t.lease_until);
  EXPECT_EQ(got.version, 1);
}

TEST_P(TasksTest, NullsStayNull) {
  Task t;
  t.id = TaskId(1);
  t.created_at = t.updated_at = kT0;
  ASSERT_TRUE(repo_->AddTask(t).ok());
  Task got = MustGet(t.id);
  EXPECT_EQ(got.type, "api_image_import");
  EXPECT_EQ(got.status, TaskStatus::kPending);
  EXPECT_EQ(got.input, "");
  EXPECT_EQ(got.message, "");
  EXPECT_FALSE(got.result.has_value());
  EXPECT_FALSE(got.owner.has_value());
  EXPECT_FALSE(got.image_id.has_value());
  EXPECT_FALSE(got.request_id.has_value());
  EXPECT_FALSE(got.user_id.has_value());
  EXPECT_FALSE(got.expires_at.has_value());
  EXPECT_FALSE(got.lease_owner.has_value());
  EXPECT_FALSE(got.lease_until.has_value());
}

TEST_P(TasksTest, GetMissingIsNotFound) {
  EXPECT_EQ(repo_->GetTask(TaskId(9)).status().code(), Code::kNotFound);
}

TEST_P(TasksTest, EmptyIdIsInvalid) {
  Task t = MakeTask(1);
  t.id.clear();
  EXPECT_EQ(repo_->AddTask(t).code(), Code::kInvalidArgument);
}

TEST_P(TasksTest, DuplicateIdIsAlreadyExists) {
  ASSERT_TRUE(repo_->AddTask(MakeTask(1)).ok());
  EXPECT_EQ(repo_->AddTask(MakeTask(1)).code(), Code::kAlreadyExists);
  // The same id for a live task of an image breaks both unique indexes; the id decides.
  ASSERT_TRUE(repo_->AddTask(MakeTask(2, ImageId(1))).ok());
  EXPECT_EQ(repo_->AddTask(MakeTask(2, ImageId(1))).code(), Code::kAlreadyExists);
}

TEST_P(TasksTest, SaveReplacesFieldsAndBumpsVersion) {
  Task t = MakeTask(1, ImageId(1));
  ASSERT_TRUE(repo_->AddTask(t).ok());
  Task v1 = MustGet(t.id);
  Task changed = v1;
  changed.type = "api_image_import";
  changed.status = TaskStatus::kFailure;
  changed.input = "{}";
  changed.result = R"({"image_id": "y"})";
  changed.message = "the source answered 404; check the URL";
  changed.owner = "p2";
  changed.image_id = ImageId(2);
  changed.request_id = "req-2";
  changed.user_id = "u2";
  changed.updated_at = v1.updated_at + 9;
  changed.expires_at = v1.updated_at + 100;
  changed.lease_owner = "node-b";
  changed.lease_until = v1.updated_at + 50;
  changed.created_at = 1;  // not a mutable column
  ASSERT_TRUE(repo_->SaveTask(changed).ok());

  Task got = MustGet(t.id);
  EXPECT_EQ(got.version, 2);
  EXPECT_EQ(got.created_at, t.created_at);
  EXPECT_EQ(got.type, changed.type);
  EXPECT_EQ(got.status, TaskStatus::kFailure);
  EXPECT_EQ(got.input, changed.input);
  EXPECT_EQ(got.result, changed.result);
  EXPECT_EQ(got.message, changed.message);
  EXPECT_EQ(got.owner, changed.owner);
  EXPECT_EQ(got.image_id, changed.image_id);
  EXPECT_EQ(got.request_id, changed.request_id);
  EXPECT_EQ(got.user_id, changed.user_id);
  EXPECT_EQ(got.updated_at, changed.updated_at);
  EXPECT_EQ(got.expires_at, changed.expires_at);
  EXPECT_EQ(got.lease_owner, changed.lease_owner);
  EXPECT_EQ(got.lease_until, changed.lease_until);

  // Optional fields can be cleared again.
  got.result.reset();
  got.owner.reset();
  got.image_id.reset();
  got.expires_at.reset();
  got.lease_owner.reset();
  got.lease_until.reset();
  ASSERT_TRUE(repo_->SaveTask(got).ok());
  Task cleared = MustGet(t.id);
  EXPECT_EQ(cleared.version, 3);
  EXPECT_FALSE(cleared.result || cleared.owner || cleared.image_id || cleared.expires_at ||
               cleared.lease_owner || cleared.lease_until);
}

TEST_P(TasksTest, StaleSaveIsConflict) {
  ASSERT_TRUE(repo_->AddTask(MakeTask(1)).ok());
  Task a = MustGet(TaskId(1));
  Task b = a;
  a.message = "first";
  ASSERT_TRUE(repo_->SaveTask(a).ok());
  b.message = "second";
  Status s = repo_->SaveTask(b);
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  EXPECT_EQ(MustGet(TaskId(1)).message, "first");
}

TEST_P(TasksTest, SaveMissingIsNotFound) {
  Task t = MakeTask(1);
  t.version = 1;
  EXPECT_EQ(repo_->SaveTask(t).code(), Code::kNotFound);
}

// ---- one live task per image ----

TEST_P(TasksTest, OneLiveTaskPerImage) {
  ASSERT_TRUE(repo_->AddTask(MakeTask(1, ImageId(1))).ok());
  Status s = repo_->AddTask(MakeTask(2, ImageId(1)));
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(s.message(), "image " + ImageId(1) + " already has an import in progress");
  EXPECT_EQ(repo_->GetTask(TaskId(2)).status().code(), Code::kNotFound);
  // Other images, and tasks of no image, are not affected.
  EXPECT_TRUE(repo_->AddTask(MakeTask(3, ImageId(2))).ok());
  EXPECT_TRUE(repo_->AddTask(MakeTask(4)).ok());
  EXPECT_TRUE(repo_->AddTask(MakeTask(5)).ok());

  // Processing is live too.
  Task first = MustClaim("node-a", kT0 + 100 * kSecond, kT0 + 200 * kSecond);
  ASSERT_EQ(first.id, TaskId(1));
  EXPECT_EQ(repo_->AddTask(MakeTask(6, ImageId(1))).code(), Code::kConflict);

  // Once it ends, the image may have another.
  first.status = TaskStatus::kSuccess;
  ASSERT_TRUE(repo_->SaveTask(first).ok());
  ASSERT_TRUE(repo_->AddTask(MakeTask(7, ImageId(1))).ok());
  EXPECT_EQ(repo_->AddTask(MakeTask(8, ImageId(1))).code(), Code::kConflict);
  Task second = MustGet(TaskId(7));
  second.status = TaskStatus::kFailure;
  ASSERT_TRUE(repo_->SaveTask(second).ok());
  ASSERT_TRUE(repo_->AddTask(MakeTask(9, ImageId(1))).ok());

  // Saving an ended task back to live while another is live breaks the rule as well.
  Task back = MustGet(TaskId(7));
  back.status = TaskStatus::kPending;
  s = repo_->SaveTask(back);
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(s.message(), "image " + ImageId(1) + " already has an import in progress");
  EXPECT_EQ(MustGet(TaskId(7)).status, TaskStatus::kFailure);

  std::vector<std::string> expected = {TaskId(9), TaskId(7), TaskId(1)};
  auto of_image = repo_->ListTasksForImage(ImageId(1));
  ASSERT_TRUE(of_image.ok());
  EXPECT_EQ(Ids(*of_image), expected);
}

// ---- listing ----

TEST_P(TasksTest, ListNewestFirstByOwnerAndLimit) {
  // Added out of order; two share a created_at, so id breaks the tie.
  for (int n : {3, 1, 4, 2}) ASSERT_TRUE(repo_->AddTask(MakeTask(n, std::nullopt, "p1")).ok());
  Task same_time = MakeTask(5, std::nullopt, "p2");
  same_time.created_at = MakeTask(4).created_at;
  ASSERT_TRUE(repo_->AddTask(same_time).ok());
  ASSERT_TRUE(repo_->AddTask(MakeTask(6, std::nullopt, std::nullopt)).ok());

  auto all = repo_->ListTasks(std::nullopt, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> expected = {TaskId(6), TaskId(5), TaskId(4),
                                       TaskId(3), TaskId(2), TaskId(1)};
  EXPECT_EQ(Ids(*all), expected);

  auto p1 = repo_->ListTasks("p1", 100);
  ASSERT_TRUE(p1.ok());
  expected = {TaskId(4), TaskId(3), TaskId(2), TaskId(1)};
  EXPECT_EQ(Ids(*p1), expected);

  auto two = repo_->ListTasks("p1", 2);
  ASSERT_TRUE(two.ok());
  expected = {TaskId(4), TaskId(3)};
  EXPECT_EQ(Ids(*two), expected);

  auto none = repo_->ListTasks("p3", 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto zero = repo_->ListTasks(std::nullopt, 0);
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->empty());
  EXPECT_EQ(repo_->ListTasks(std::nullopt, -1).status().code(), Code::kInvalidArgument);
}

TEST_P(TasksTest, ListForImageNewestFirst) {
  ASSERT_TRUE(repo_->AddTask(MakeTask(1, ImageId(1))).ok());
  Task done = MustGet(TaskId(1));
  done.status = TaskStatus::kSuccess;
  ASSERT_TRUE(repo_->SaveTask(done).ok());
  ASSERT_TRUE(repo_->AddTask(MakeTask(2, ImageId(2))).ok());
  ASSERT_TRUE(repo_->AddTask(MakeTask(3, ImageId(1))).ok());
  auto tasks = repo_->ListTasksForImage(ImageId(1));
  ASSERT_TRUE(tasks.ok());
  std::vector<std::string> expected = {TaskId(3), TaskId(1)};
  EXPECT_EQ(Ids(*tasks), expected);
  EXPECT_EQ((*tasks)[1].status, TaskStatus::kSuccess);
  auto none = repo_->ListTasksForImage(ImageId(9));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// ---- claiming ----

TEST_P(TasksTest, ClaimsOldestFirstAndSetsTheLease) {
  for (int n : {3, 1, 2}) ASSERT_TRUE(repo_->AddTask(MakeTask(n)).ok());
  Task tie = MakeTask(0);  // same created_at as task 1, lower id: claimed before it
  tie.created_at = MakeTask(1).created_at;
  ASSERT_TRUE(repo_->AddTask(tie).ok());
  Task failed = MakeTask(100);
  failed.created_at = kT0 - 1000 * kSecond;  // oldest of all, but final: never claimed
  failed.status = TaskStatus::kFailure;
  ASSERT_TRUE(repo_->AddTask(failed).ok());

  int64_t now = kT0 + 10 * kSecond;
  int64_t until = now + 30 * kSecond;
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    Task t = MustClaim("node-a", now, until);
    order.push_back(t.id);
    EXPECT_EQ(t.status, TaskStatus::kProcessing);
    EXPECT_EQ(t.lease_owner, "node-a");
    EXPECT_EQ(t.lease_until, until);
    EXPECT_EQ(t.updated_at, now);
    EXPECT_EQ(t.version, 2);
    // What ClaimTask returns is what is stored.
    Task stored = MustGet(t.id);
    EXPECT_EQ(stored.status, TaskStatus::kProcessing);
    EXPECT_EQ(stored.lease_owner, "node-a");
    EXPECT_EQ(stored.lease_until, until);
    EXPECT_EQ(stored.updated_at, now);
    EXPECT_EQ(stored.version, 2);
    EXPECT_EQ(stored.input, t.input);
  }
  std::vector<std::string> expected = {TaskId(0), TaskId(1), TaskId(2), TaskId(3)};
  EXPECT_EQ(order, expected);
  // Every lease is still valid: nothing is runnable, up to the instant the leases run out.
  EXPECT_TRUE(NothingRunnable(now));
  EXPECT_TRUE(NothingRunnable(until - 1));
  EXPECT_TRUE(NothingRunnable(until));
  EXPECT_EQ(MustGet(TaskId(100)).status, TaskStatus::kFailure);
}

TEST_P(TasksTest, NothingToClaimInAnEmptyCatalog) { EXPECT_TRUE(NothingRunnable(kT0)); }

TEST_P(TasksTest, ExpiredLeaseIsTakenOverAndFencesTheOldHolder) {
  ASSERT_TRUE(repo_->AddTask(MakeTask(1, ImageId(1))).ok());
  int64_t now = kT0 + 10 * kSecond;
  Task held_by_a = MustClaim("node-a", now, now + 30 * kSecond);
  EXPECT_TRUE(NothingRunnable(now + 29 * kSecond));

  // node-a died; after its lease ran out node-b takes the task over.
  int64_t later = now + 31 * kSecond;
  Task held_by_b = MustClaim("node-b", later, later + 30 * kSecond);
  EXPECT_EQ(held_by_b.id, held_by_a.id);
  EXPECT_EQ(held_by_b.lease_owner, "node-b");
  EXPECT_EQ(held_by_b.status, TaskStatus::kProcessing);
  EXPECT_EQ(held_by_b.version, held_by_a.version + 1);
  EXPECT_TRUE(NothingRunnable(later));

  // node-a comes back: it can neither renew nor save over node-b's work.
  EXPECT_EQ(repo_->RenewLease(held_by_a.id, "node-a", later + 60 * kSecond).code(),
            Code::kConflict);
  held_by_a.status = TaskStatus::kSuccess;
  EXPECT_EQ(repo_->SaveTask(held_by_a).code(), Code::kConflict);

  // node-b renews (its copy stays current) and finishes.
  ASSERT_TRUE(repo_->RenewLease(held_by_b.id, "node-b", later + 60 * kSecond).ok());
  EXPECT_EQ(MustGet(held_by_b.id).lease_until, later + 60 * kSecond);
  held_by_b.status = TaskStatus::kSuccess;
  held_by_b.lease_owner.reset();
  held_by_b.lease_until.reset();
  ASSERT_TRUE(repo_->SaveTask(held_by_b).ok());
  EXPECT_TRUE(NothingRunnable(later + 1000 * kSecond));
}

TEST_P(TasksTest, RenewLease) {
  ASSERT_TRUE(repo_->AddTask(MakeTask(1)).ok());
  // Not claimed yet: nobody holds it.
  EXPECT_EQ(repo_->RenewLease(TaskId(1), "node-a", kT0).code(), Code::kConflict);
  EXPECT_EQ(repo_->RenewLease(TaskId(9), "node-a", kT0).code(), Code::kNotFound);

  int64_t now = kT0 + 10 * kSecond;
  Task t = MustClaim("node-a", now, now + 30 * kSecond);
  Status s = repo_->RenewLease(t.id, "node-b", now + 90 * kSecond);
  EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
  EXPECT_EQ(MustGet(t.id).lease_until, now + 30 * kSecond);

  // A renewed lease keeps the task from being taken over past the original expiry.
  ASSERT_TRUE(repo_->RenewLease(t.id, "node-a", now + 90 * kSecond).ok());
  Task stored = MustGet(t.id);
  EXPECT_EQ(stored.lease_until, now + 90 * kSecond);
  EXPECT_EQ(stored.version, t.version);
  EXPECT_EQ(stored.updated_at, t.updated_at);
  EXPECT_TRUE(NothingRunnable(now + 60 * kSecond));

  // An ended task holds no lease any more, even if the fields were left set.
  t.status = TaskStatus::kSuccess;
  ASSERT_TRUE(repo_->SaveTask(t).ok());
  EXPECT_EQ(repo_->RenewLease(t.id, "node-a", now + 120 * kSecond).code(), Code::kConflict);
}

// ---- purge ----

TEST_P(TasksTest, PurgeRemovesOnlyExpired) {
  int64_t now = kT0 + 1000 * kSecond;
  Task old1 = MakeTask(1);
  old1.status = TaskStatus::kSuccess;
  old1.expires_at = now - 1;
  Task old2 = MakeTask(2);
  old2.status = TaskStatus::kFailure;
  old2.expires_at = now - 500 * kSecond;
  Task at_now = MakeTask(3);
  at_now.status = TaskStatus::kSuccess;
  at_now.expires_at = now;  // not before now: kept
  Task future = MakeTask(4);
  future.status = TaskStatus::kSuccess;
  future.expires_at = now + 1;
  Task live = MakeTask(5);  // no expiry
  for (const Task& t : {old1, old2, at_now, future, live}) ASSERT_TRUE(repo_->AddTask(t).ok());

  auto purged = repo_->PurgeExpiredTasks(now);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 2);
  EXPECT_EQ(repo_->GetTask(old1.id).status().code(), Code::kNotFound);
  EXPECT_EQ(repo_->GetTask(old2.id).status().code(), Code::kNotFound);
  for (const Task& t : {at_now, future, live}) EXPECT_TRUE(repo_->GetTask(t.id).ok());
  auto again = repo_->PurgeExpiredTasks(now);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  auto later = repo_->PurgeExpiredTasks(now + 2);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(*later, 2);
  auto left = repo_->ListTasks(std::nullopt, 100);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(Ids(*left), std::vector<std::string>{live.id});
}

// ---- schema ----

// A catalog created before tasks existed (schema 1) gains the table on open, images intact.
TEST_P(TasksTest, MigratesASchemaOneCatalog) {
  EXPECT_GE(db_->LatestSchemaVersion(), 2);
  Image im;
  im.id = ImageId(1);
  im.created_at = im.updated_at = kT0;
  ASSERT_TRUE(repo_->Add(im).ok());
  repo_.reset();
  // Back to schema 1: without the tasks table (2) and the locations' metadata column (4).
  ASSERT_TRUE(db_->Exec("DROP TABLE tasks; ALTER TABLE image_locations DROP COLUMN metadata; "
                        "UPDATE schema_version SET version = 1")
                  .ok());

  repo_ = OpenRepo();
  ASSERT_NE(repo_, nullptr);
  auto version = repo_->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, db_->LatestSchemaVersion());
  EXPECT_TRUE(repo_->Get(im.id).ok());
  ASSERT_TRUE(repo_->AddTask(MakeTask(1, ImageId(1))).ok());
  EXPECT_EQ(repo_->AddTask(MakeTask(2, ImageId(1))).code(), Code::kConflict);
}

// ---- concurrency ----

// Several nodes (two repositories on one file, as two ingotd processes would have) with several
// threads each claim until nothing is left: every task is handed out exactly once.
TEST_P(TasksTest, ConcurrentClaimsHandOutEachTaskOnce) {
  constexpr int kTasks = 100;
  constexpr int kThreads = 8;
  for (int n = 0; n < kTasks; ++n) ASSERT_TRUE(repo_->AddTask(MakeTask(n, ImageId(n))).ok());
  std::unique_ptr<SqlRepository> other = OpenRepo();
  ASSERT_NE(other, nullptr);

  std::mutex mu;
  std::vector<std::string> claimed;
  std::atomic<int> failures{0};
  int64_t now = kT0 + 1000 * kSecond;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    TaskRepository& repo = i % 2 == 0 ? *repo_ : *other;
    std::string node = "node-" + std::to_string(i);
    threads.emplace_back([&, node] {
      while (true) {
        auto t = repo.ClaimTask(node, now, now + 600 * kSecond);
        if (!t.ok()) {
          ADD_FAILURE() << t.status().ToString();
          ++failures;
          return;
        }
        if (!t->has_value()) return;
        if ((*t)->lease_owner != node) ++failures;
        std::lock_guard lock(mu);
        claimed.push_back((*t)->id);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kTasks));
  std::set<std::string> unique(claimed.begin(), claimed.end());
  EXPECT_EQ(unique.size(), static_cast<size_t>(kTasks));
  for (const std::string& id : claimed) {
    Task t = MustGet(id);
    EXPECT_EQ(t.status, TaskStatus::kProcessing);
    EXPECT_EQ(t.version, 2) << id;
  }
  EXPECT_TRUE(NothingRunnable(now));
}

// PostgreSQL: a claim passes over a task another transaction holds locked (FOR UPDATE SKIP
// LOCKED) and takes the next one at once, instead of waiting for the lock.
TEST_P(TasksTest, ClaimSkipsALockedTaskWithoutWaiting) {
  if (GetParam() != "postgres") GTEST_SKIP() << "SQLite has one writer; nothing to skip";
  ASSERT_TRUE(repo_->AddTask(MakeTask(1)).ok());
  ASSERT_TRUE(repo_->AddTask(MakeTask(2)).ok());
  std::string options = db_->PgOptionsValue();
  const char* keys[] = {"dbname", "options", nullptr};
  const char* values[] = {db_->where().c_str(), options.c_str(), nullptr};
  PGconn* pg = PQconnectdbParams(keys, values, 1);
  ASSERT_EQ(PQstatus(pg), CONNECTION_OK) << PQerrorMessage(pg);
  auto exec = [&](const std::string& sql) {
    PGresult* r = PQexec(pg, sql.c_str());
    ExecStatusType st = PQresultStatus(r);
    EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) << PQresultErrorMessage(r);
    PQclear(r);
  };
  exec("BEGIN");
  exec("SELECT id FROM tasks WHERE id = '" + TaskId(1) + "' FOR UPDATE");
  // Without SKIP LOCKED the claim would wait on task 1's lock until the statement timeout and fail.
  EXPECT_EQ(MustClaim("node-a", kT0 + 100 * kSecond, kT0 + 200 * kSecond).id, TaskId(2));
  exec("ROLLBACK");
  PQfinish(pg);
  // Once released, the oldest task is claimable again.
  EXPECT_EQ(MustClaim("node-b", kT0 + 100 * kSecond, kT0 + 200 * kSecond).id, TaskId(1));
}

INSTANTIATE_TEST_SUITE_P(Engines, TasksTest, ::testing::ValuesIn(testing::Engines()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ingot::catalog
