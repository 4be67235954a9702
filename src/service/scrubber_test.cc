#include "service/scrubber.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "catalog/sqlite/sqlite_repository.h"
#include "common/time.h"
#include "common/uuid.h"
#include "io/hash.h"
#include "store/file/file_store.h"
#include "store/testing/faulty_store.h"
#include "store/testing/memory_store.h"

namespace ingot::service {
namespace {

using catalog::Image;
using catalog::ImageEvent;

constexpr int64_t kHour = 3600LL * 1000000;

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

class ScrubberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-scrubber-test.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    repo_ = std::move(*catalog::SqliteImageRepository::Open(dir_ + "/catalog.db"));
    auto fast = std::make_unique<store::MemoryStore>("fast");
    auto cold = std::make_unique<store::MemoryStore>("cold");
    auto ro = std::make_unique<store::MemoryStore>("archive");
    fast->set_clock([this] { return store_clock_; });
    cold->set_clock([this] { return store_clock_; });
    ro->set_clock([this] { return store_clock_; });
    fast_ = fast.get();
    archive_ = ro.get();
    auto faulty = std::make_unique<store::FaultyStore>(std::move(cold));
    cold_ = faulty.get();
    ASSERT_TRUE(stores_.Add(std::move(fast), {.id = "fast", .is_default = true}).ok());
    ASSERT_TRUE(stores_.Add(std::move(faulty), {.id = "cold"}).ok());
    ASSERT_TRUE(stores_.Add(std::move(ro), {.id = "archive", .read_only = true}).ok());
  }
  void TearDown() override {
    repo_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  std::unique_ptr<Scrubber> MakeScrubber(const std::string& node, ScrubberOptions o = {}) {
    o.node = node;
    if (!o.now) o.now = [this] { return now_; };
    return std::make_unique<Scrubber>(*repo_, *repo_, stores_, std::move(o));
  }
  // Writes `bytes` as object `key` of `store`, dated by the store clock.
  static void Put(store::Store& store, const std::string& key, const std::string& bytes) {
    auto w = store.Create(key);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    auto b = Bytes(bytes);
    ASSERT_TRUE((*w)->Write(b).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  // An active image whose copies are in `stores`, with the checksums of `bytes`.
  std::string ActiveImage(const std::string& bytes, const std::vector<std::string>& stores) {
    Image im;
    im.id = NewUuid();
    im.owner = "p1";
    im.disk_format = "raw";
    im.container_format = "bare";
    im.created_at = im.updated_at = NowMicros();
    EXPECT_TRUE(Transition(im, ImageEvent::kStartUpload).ok());
    EXPECT_TRUE(Transition(im, ImageEvent::kFinishUpload).ok());
    auto b = Bytes(bytes);
    im.size = b.size();
    im.checksum = *io::HexDigestOf("md5", b);
    im.os_hash_algo = "sha512";
    im.os_hash_value = *io::HexDigestOf("sha512", b);
    for (const auto& s : stores) {
      im.locations.push_back({s, im.id});
      Put(*stores_.Find(s), im.id, bytes);
    }
    EXPECT_TRUE(repo_->Add(im).ok());
    return im.id;
  }
  std::vector<std::string> Keys(store::Store& s) { return *s.ListKeys(); }
  bool Has(store::Store& s, const std::string& key) { return s.SizeOf(key).ok(); }

  std::string dir_;
  std::unique_ptr<catalog::SqliteImageRepository> repo_;
  store::StoreSet stores_;
  store::MemoryStore* fast_ = nullptr;
  store::MemoryStore* archive_ = nullptr;
  store::FaultyStore* cold_ = nullptr;
  int64_t store_clock_ = 1000 * kHour;  // when the stores say objects were written
  int64_t now_ = 1000 * kHour;          // the scrubber's clock
};

TEST_F(ScrubberTest, RemovesOldOrphansKeepsOwnedAndYoungObjects) {
  std::string owned = ActiveImage("owned bytes", {"fast", "cold"});
  Put(*fast_, "orphan-old", "left by a crashed delete");
  Put(cold_->inner(), "orphan-old-cold", "left by a crashed copy");
  store_clock_ += 90 * 60 * 1000000LL;  // 1.5 h later
  Put(*fast_, "orphan-young", "committed, not yet recorded");
  now_ = store_clock_ + 10 * 60 * 1000000LL;  // 2 h after the old ones, 10 min after the young one

  auto scrubber = MakeScrubber("a", {.grace = std::chrono::hours(1), .rehash_bytes = 0});
  auto report = scrubber->RunOnce();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ran);
  EXPECT_EQ(report->orphans_removed, 2);
  EXPECT_EQ(report->young_kept, 1);
  EXPECT_EQ(report->errors, 0);
  EXPECT_FALSE(Has(*fast_, "orphan-old"));
  EXPECT_FALSE(Has(*cold_, "orphan-old-cold"));
  EXPECT_TRUE(Has(*fast_, "orphan-young"));
  EXPECT_TRUE(Has(*fast_, owned));
  EXPECT_TRUE(Has(*cold_, owned));
  EXPECT_NE(scrubber->Metrics().find("ingot_scrubber_orphans_removed_total 2\n"),
            std::string::npos);
}

TEST_F(ScrubberTest, AbandonedIncompleteWritesGoLiveOnesStay) {
  auto abandoned = fast_->Create("crashed-upload");
  ASSERT_TRUE(abandoned.ok());
  auto b = Bytes("first segment");
  ASSERT_TRUE((*abandoned)->Write(b).ok());
  now_ = store_clock_ + 2 * kHour;
  store_clock_ = now_ - 60 * 1000000LL;  // the live one wrote a minute ago
  auto live = fast_->Create("live-upload");
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE((*live)->Write(b).ok());

  auto report = MakeScrubber("a", {.grace = std::chrono::hours(1), .rehash_bytes = 0})->RunOnce();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->incomplete_removed, 1);
  EXPECT_EQ(report->young_kept, 1);
  // The abandoned writer, should it wake up, cannot commit what is gone; the live one can.
  EXPECT_FALSE((*abandoned)->Commit().ok());
  EXPECT_TRUE((*live)->Commit().ok());
  EXPECT_TRUE(Has(*fast_, "live-upload"));
  EXPECT_FALSE(Has(*fast_, "crashed-upload"));
}

TEST_F(ScrubberTest, ReadOnlyStoresAreReportedNeverChanged) {
  Put(*archive_, "someone-elses", "operator's object");
  now_ = store_clock_ + 5 * kHour;
  auto report = MakeScrubber("a", {.grace = std::chrono::hours(1), .rehash_bytes = 0})->RunOnce();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->read_only_orphans, 1);
  EXPECT_EQ(report->orphans_removed, 0);
  EXPECT_TRUE(Has(*archive_, "someone-elses"));
}

TEST_F(ScrubberTest, AStoreThatCannotBeListedIsLeftAloneOthersAreSwept) {
  Put(*fast_, "orphan-fast", "x");
  Put(cold_->inner(), "orphan-cold", "y");
  now_ = store_clock_ + 5 * kHour;
  cold_->Arm({.enumerate = IoError("listing timed out")});
  auto scrubber = MakeScrubber("a", {.grace = std::chrono::hours(1), .rehash_bytes = 0});
  auto report = scrubber->RunOnce();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->errors, 1);
  EXPECT_EQ(report->orphans_removed, 1);
  EXPECT_TRUE(Has(*cold_, "orphan-cold"));
  EXPECT_NE(scrubber->Metrics().find("ingot_scrubber_errors_total 1\n"), std::string::npos);
}

TEST_F(ScrubberTest, RehashReportsMismatchesAndMissingCopiesWithoutDeleting) {
  std::string good = ActiveImage("good bytes", {"fast"});
  std::string bad = ActiveImage("right bytes", {"fast", "cold"});
  std::string gone = ActiveImage("vanished", {"cold"});
  // Same size, other bytes (a flipped bit on disk); and a copy lost outright.
  ASSERT_TRUE(cold_->Delete(bad).ok());
  Put(*cold_, bad, "wrong bytes");
  ASSERT_TRUE(cold_->Delete(gone).ok());

  auto scrubber = MakeScrubber("a", {.grace = std::chrono::hours(1)});
  auto report = scrubber->RunOnce();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->images_rehashed, 3);  // good@fast, bad@fast, bad@cold
  EXPECT_EQ(report->mismatched, std::vector<std::string>{bad + "@cold"});
  EXPECT_EQ(report->missing, std::vector<std::string>{gone + "@cold"});
  EXPECT_TRUE(Has(*cold_, bad));  // reported, never deleted
  EXPECT_TRUE(Has(*fast_, good));
  std::string m = scrubber->Metrics();
  EXPECT_NE(m.find("ingot_scrubber_checksum_mismatch_total 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ingot_scrubber_data_missing_total 1\n"), std::string::npos) << m;
}

TEST_F(ScrubberTest, RehashBudgetResumesWhereTheLastPassStoppedOnAnyNode) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(ActiveImage(std::string(100, 'a' + i), {"fast"}));
  std::sort(ids.begin(), ids.end());
  // 150 bytes per pass: two 100-byte images (the second one is finished past the budget).
  ScrubberOptions o{.interval = std::chrono::seconds(0), .rehash_bytes = 150};
  auto a = MakeScrubber("a", o);
  auto b = MakeScrubber("b", o);
  auto r1 = a->RunOnce();
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->images_rehashed, 2);
  EXPECT_EQ(repo_->GetJobLease(Scrubber::kLeaseName)->cursor, ids[1]);
  now_ += 1000000;
  auto r2 = b->RunOnce();  // the other node goes on from there
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->ran);
  EXPECT_EQ(r2->images_rehashed, 2);
  EXPECT_EQ(repo_->GetJobLease(Scrubber::kLeaseName)->cursor, "");  // the end: start over next
  now_ += 1000000;
  auto r3 = a->RunOnce();
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->images_rehashed, 2);
  EXPECT_EQ(repo_->GetJobLease(Scrubber::kLeaseName)->cursor, ids[1]);
}

TEST_F(ScrubberTest, OnePassPerIntervalAcrossNodesAndATakeOverAfterALostLease) {
  ScrubberOptions o{.interval = std::chrono::seconds(600), .rehash_bytes = 0};
  auto a = MakeScrubber("a", o);
  auto b = MakeScrubber("b", o);
  ASSERT_TRUE(a->RunOnce()->ran);
  now_ += 60 * 1000000LL;
  EXPECT_FALSE(b->RunOnce()->ran);  // done a minute ago: not due
  EXPECT_FALSE(a->RunOnce()->ran);
  now_ += 600 * 1000000LL;
  // Node c takes the lease and dies holding it.
  auto held = repo_->AcquireJobLease(Scrubber::kLeaseName, "c", now_, now_ + 60 * 1000000LL, now_);
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->holder, "c");
  EXPECT_FALSE(b->RunOnce()->ran);  // c's lease is still running
  now_ += 61 * 1000000LL;
  EXPECT_TRUE(b->RunOnce()->ran);  // ran out: b takes over
  // c comes back and cannot renew or release what b took.
  EXPECT_EQ(repo_->RenewJobLease(Scrubber::kLeaseName, "c", now_ + 1).code(), Code::kConflict);
  EXPECT_EQ(repo_->ReleaseJobLease(Scrubber::kLeaseName, "c", now_, "").code(), Code::kConflict);
  EXPECT_FALSE(repo_->GetJobLease(Scrubber::kLeaseName)->holder.has_value());
}

TEST_F(ScrubberTest, StartAndStopRunPassesInTheBackground) {
  Put(*fast_, "orphan", "x");
  now_ = store_clock_ + 5 * kHour;
  auto scrubber = MakeScrubber("a", {.interval = std::chrono::seconds(3600),
                                     .grace = std::chrono::hours(1),
                                     .rehash_bytes = 0,
                                     .poll = std::chrono::milliseconds(10)});
  scrubber->Start();
  for (int i = 0; i < 500 && Has(*fast_, "orphan"); ++i) ::usleep(10000);
  scrubber->Stop();
  EXPECT_FALSE(Has(*fast_, "orphan"));
}

// The file driver's side of it: temporary files are incomplete writes of their key, dated by
// their mtime, and only they can be removed that way.
TEST(FileStoreEnumerate, TemporaryFilesAreIncompleteWritesOfTheirKey) {
  char tmpl[] = "/tmp/ingot-scrubber-file.XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto store = std::move(*store::FileStore::Open({.id = "file", .root = dir}));
  auto done = store->Create("img-1");
  ASSERT_TRUE(done.ok());
  auto b = Bytes("committed");
  ASSERT_TRUE((*done)->Write(b).ok());
  ASSERT_TRUE((*done)->Commit().ok());
  auto writing = store->Create("img-2");
  ASSERT_TRUE(writing.ok());
  ASSERT_TRUE((*writing)->Write(b).ok());

  auto objects = store->Enumerate();
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  ASSERT_EQ(objects->size(), 2u);
  const store::StoredObject* committed = nullptr;
  const store::StoredObject* incomplete = nullptr;
  for (const auto& o : *objects) (o.incomplete.empty() ? committed : incomplete) = &o;
  ASSERT_TRUE(committed && incomplete);
  EXPECT_EQ(committed->key, "img-1");
  EXPECT_EQ(committed->bytes, b.size());
  EXPECT_GT(committed->modified, NowMicros() - 60 * 1000000LL);
  EXPECT_EQ(incomplete->key, "img-2");
  EXPECT_TRUE(incomplete->incomplete.starts_with(".tmp-img-2-"));

  // A name that is not a temporary file of that key is refused, never unlinked.
  EXPECT_EQ(store->RemoveIncompleteWrite({.key = "img-1", .incomplete = "img-1"}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(
      store->RemoveIncompleteWrite({.key = "img-1", .incomplete = incomplete->incomplete}).code(),
      Code::kInvalidArgument);
  EXPECT_TRUE(store->RemoveIncompleteWrite(*incomplete).ok());
  EXPECT_TRUE(store->RemoveIncompleteWrite(*incomplete).ok());  // already gone: OK
  objects = store->Enumerate();
  ASSERT_TRUE(objects.ok());
  ASSERT_EQ(objects->size(), 1u);
  EXPECT_EQ((*objects)[0].key, "img-1");
  writing->reset();
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace ingot::service
