#include "service/quota.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "catalog/sqlite/sqlite_repository.h"
#include "common/uuid.h"

namespace ingot::service {
namespace {

class QuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/tmp/ingot-quota-test-" + std::to_string(getpid()) + ".db";
    auto repo = catalog::SqliteImageRepository::Open(path_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(*repo);
  }
  void TearDown() override {
    repo_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }
  // An image of `owner` holding `bytes` in `copies` stores (0: no data yet), in `status`.
  void Add(const std::string& owner, uint64_t bytes, int copies,
           catalog::ImageStatus status = catalog::ImageStatus::kActive) {
    catalog::Image im;
    im.id = NewUuid();
    im.owner = owner;
    if (bytes > 0) im.size = bytes;
    for (int i = 0; i < copies; ++i) im.locations.push_back({"store" + std::to_string(i), im.id});
    catalog::StoredStatus::Restore(im, status);
    ASSERT_TRUE(repo_->Add(im).ok());
  }

  std::string path_;
  std::unique_ptr<catalog::SqliteImageRepository> repo_;
};

constexpr uint64_t kMiB = 1 << 20;

TEST_F(QuotaTest, CountsWhatGlanceCounts) {
  auto limits = MakeConfiguredLimits({{kImageCountTotal, 3}}, {});
  Quotas q(*repo_, *limits);
  Add("p1", 3 * kMiB, 2);                                  // two copies: 6 MiB stored
  Add("p1", kMiB / 2, 0, catalog::ImageStatus::kUploading);  // staged
  Add("p1", 0, 0, catalog::ImageStatus::kSaving);
  Add("p2", 9 * kMiB, 1);
  auto u = q.Count("p1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->images, 3);
  EXPECT_EQ(u->uploading, 2);
  EXPECT_EQ(u->stored_bytes, 6 * kMiB);
  EXPECT_EQ(u->staged_bytes, kMiB / 2);
  auto usage = q.Usage("p1");
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->at(kImageSizeTotal).usage, 6);
  EXPECT_EQ(usage->at(kImageStageTotal).usage, 1);  // rounded up, as a MiB limit sees it
  EXPECT_EQ(usage->at(kImageCountTotal).limit, 3);
  EXPECT_EQ(usage->at(kImageSizeTotal).limit, -1);
  // Count limit: the fourth image of p1 is over; p2 is far from it.
  Status s = q.CheckCreate("p1");
  EXPECT_EQ(s.code(), Code::kTooLarge);
  EXPECT_EQ(s.message(),
            "Project p1 is over a limit for [Resource image_count_total is over limit of 3 due to "
            "current usage 3 and delta 1]");
  EXPECT_TRUE(q.CheckCreate("p2").ok());
  EXPECT_TRUE(q.CheckCreate(std::nullopt).ok());
}

TEST_F(QuotaTest, AllowanceRefusesDeclaredBytesAndCapsUndeclaredOnes) {
  auto limits = MakeConfiguredLimits({{kImageSizeTotal, 10}, {kImageStageTotal, 1}},
                                     {{"big", {{kImageSizeTotal, -1}}}});
  Quotas q(*repo_, *limits);
  Add("p1", 4 * kMiB, 1);
  auto left = q.Allowance("p1", std::nullopt, false);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(**left, 6 * kMiB);
  EXPECT_TRUE(q.Allowance("p1", 6 * kMiB, false).ok());
  EXPECT_EQ(q.Allowance("p1", 6 * kMiB + 1, false).status().code(), Code::kTooLarge);
  EXPECT_EQ(**q.Allowance("p1", std::nullopt, true), kMiB);  // staging has its own limit
  auto unlimited = q.Allowance("big", 1ull << 40, false);
  ASSERT_TRUE(unlimited.ok());
  EXPECT_FALSE(unlimited->has_value());
  Add("p1", 6 * kMiB, 1);  // exactly at the limit: nothing more fits
  EXPECT_EQ(q.Allowance("p1", std::nullopt, false).status().code(), Code::kTooLarge);
}

TEST_F(QuotaTest, UploadingCount) {
  auto limits = MakeConfiguredLimits({{kImageCountUploading, 1}}, {});
  Quotas q(*repo_, *limits);
  EXPECT_TRUE(q.Allowance("p1", kMiB, false).ok());
  Add("p1", 0, 0, catalog::ImageStatus::kSaving);
  EXPECT_EQ(q.Allowance("p1", kMiB, false).status().code(), Code::kTooLarge);
}

}  // namespace
}  // namespace ingot::service
