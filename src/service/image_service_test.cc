#include "service/image_service.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>

#include "catalog/sqlite/sqlite_repository.h"
#include "catalog/testing/faulty_repository.h"
#include "common/time.h"
#include "common/uuid.h"
#include "io/hash.h"
#include "store/file/file_store.h"
#include "store/testing/faulty_store.h"

namespace ingot::service {
namespace {

using catalog::Image;
using catalog::ImageStatus;

// A request body made of a pattern; can fail after `fail_after` bytes like a client that hangs up.
class PatternBody final : public io::Reader {
 public:
  PatternBody(uint64_t size, uint64_t fail_after = UINT64_MAX) : size_(size), fail_after_(fail_after) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    if (pos_ >= fail_after_) return Cancelled("client went away");
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size_ - pos_));
    n = static_cast<size_t>(std::min<uint64_t>(n, fail_after_ - pos_));
    for (size_t i = 0; i < n; ++i) buf[i] = static_cast<uint8_t>((pos_ + i) * 7 + ((pos_ + i) >> 12));
    pos_ += n;
    return n;
  }
  static std::vector<uint8_t> Bytes(uint64_t size) {
    PatternBody b(size);
    std::vector<uint8_t> out(size);
    size_t off = 0;
    while (off < size) off += *b.Read(std::span<uint8_t>(out).subspan(off));
    return out;
  }

 private:
  uint64_t size_, fail_after_, pos_ = 0;
};

class ImageServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-svc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    service_.reset();
    stores_.reset();
    repo_.reset();
    sqlite_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  // The real SQLite catalog and file store, each behind its fault injector.
  void Reopen(uint64_t cap = 1ull << 40) {
    service_.reset();
    stores_.reset();
    repo_.reset();
    sqlite_.reset();
    sqlite_ = std::move(*catalog::SqliteImageRepository::Open(dir_ + "/catalog.db"));
    repo_ = std::make_unique<catalog::FaultyRepository>(*sqlite_);
    auto file = std::move(*store::FileStore::Open({.id = "file", .root = dir_ + "/images"}));
    auto faulty = std::make_unique<store::FaultyStore>(std::move(file));
    store_ = faulty.get();
    stores_ = std::make_unique<store::StoreSet>();
    ASSERT_TRUE(stores_->Add(std::move(faulty), {.driver = "file"}).ok());
    service_ = std::make_unique<ImageService>(*repo_, *stores_,
                                              ImageServiceOptions{.size_cap = cap,
                                                                  .buffer_size = 64 * 1024,
                                                                  .buffer_count = 4});
  }
  Image Get(const std::string& id) { return *repo_->Get(id); }
  Result<Image> Upload(const std::string& id, io::Reader& body, std::optional<uint64_t> length) {
    return service_->Upload(Get(id), body, length);
  }
  std::string NewQueued(bool formats = true) {
    Image im;
    im.id = NewUuid();
    im.owner = "p1";
    if (formats) {
      im.disk_format = "raw";
      im.container_format = "bare";
    }
    im.created_at = im.updated_at = NowMicros();
    EXPECT_TRUE(sqlite_->Add(im).ok());
    return im.id;
  }
  // A node on a shared catalog (upload leases of 60 s) whose time is `clock`.
  std::unique_ptr<ImageService> SharedNode(const std::string& name, const int64_t& clock) {
    return std::make_unique<ImageService>(
        *repo_, *stores_,
        ImageServiceOptions{.buffer_size = 64 * 1024, .buffer_count = 4,
                            .upload_leases = sqlite_.get(), .node = name,
                            .upload_lease = std::chrono::seconds(60),
                            .now = [&clock] { return clock; }});
  }
  int FilesInStore() {
    return std::system(("test -z \"$(ls -A " + dir_ + "/images)\"").c_str()) == 0 ? 0 : 1;
  }

  std::string dir_;
  std::unique_ptr<catalog::SqliteImageRepository> sqlite_;
  std::unique_ptr<catalog::FaultyRepository> repo_;
  store::FaultyStore* store_ = nullptr;  // owned by stores_
  std::unique_ptr<store::StoreSet> stores_;
  std::unique_ptr<ImageService> service_;
};

TEST_F(ImageServiceTest, UploadActivatesWithChecksumsAndDurableBytes) {
  std::string id = NewQueued();
  const uint64_t size = 3 * 1000 * 1000 + 5;
  PatternBody body(size);
  auto image = Upload(id, body, size);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  auto expected = PatternBody::Bytes(size);
  EXPECT_EQ(image->status(), ImageStatus::kActive);
  EXPECT_EQ(*image->size, size);
  EXPECT_EQ(*image->virtual_size, size);  // pattern bytes are a raw disk
  EXPECT_EQ(*image->checksum, *io::HexDigestOf("md5", expected));
  EXPECT_EQ(*image->os_hash_algo, "sha512");
  EXPECT_EQ(*image->os_hash_value, *io::HexDigestOf("sha512", expected));

  auto stored = repo_->Get(id);
  EXPECT_EQ(stored->status(), ImageStatus::kActive);
  auto data = service_->OpenData(*stored);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->size, size);
}

// A qcow2 header that names a backing file: the classic trap (CVE-2022-47951 family).
class HostileQcow2 final : public io::Reader {
 public:
  HostileQcow2() : data_(4 * 65536, 0) {
    auto be32 = [&](size_t off, uint32_t v) {
      for (int i = 0; i < 4; ++i) data_[off + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
    };
    auto be64 = [&](size_t off, uint64_t v) {
      for (int i = 0; i < 8; ++i) data_[off + i] = static_cast<uint8_t>(v >> (56 - 8 * i));
    };
    be32(0, 0x514649fb);   // "QFI\xfb"
    be32(4, 3);            // version
    be64(8, 512);          // backing_file_offset
    be32(16, 11);          // backing_file_size
    be32(20, 16);          // cluster_bits
    be64(24, 1 << 20);     // size
    be32(36, 1);           // l1_size
    be64(40, 3 * 65536);   // l1_table_offset
    be64(48, 65536);       // refcount_table_offset
    be32(56, 1);           // refcount_table_clusters
    be32(96, 4);           // refcount_order
    be32(100, 104);        // header_length
    std::memcpy(&data_[512], "/etc/shadow", 11);
  }
  Result<size_t> Read(std::span<uint8_t> buf) override {
    size_t n = std::min(buf.size(), data_.size() - pos_);
    std::memcpy(buf.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  size_t size() const { return data_.size(); }

 private:
  std::vector<uint8_t> data_;
  size_t pos_ = 0;
};

TEST_F(ImageServiceTest, HostileImageIsRefusedAndNothingStored) {
  std::string id = NewQueued();
  HostileQcow2 body;
  auto r = Upload(id, body, body.size());
  ASSERT_EQ(r.status().code(), Code::kRefused) << r.status().ToString();
  EXPECT_NE(r.status().message().find("backing"), std::string::npos) << r.status().message();
  EXPECT_EQ(repo_->Get(id)->status(), ImageStatus::kQueued);
  EXPECT_EQ(FilesInStore(), 0);
}

TEST_F(ImageServiceTest, SecondUploadConflicts) {
  std::string id = NewQueued();
  PatternBody a(10), b(10);
  ASSERT_TRUE(Upload(id, a, 10).ok());
  auto again = Upload(id, b, 10);
  EXPECT_EQ(again.status().code(), Code::kConflict);
  EXPECT_EQ(again.status().message(), "Image status transition from active to saving is not allowed");
}

TEST_F(ImageServiceTest, UploadNeedsFormats) {
  std::string id = NewQueued(false);
  PatternBody body(10);
  EXPECT_EQ(Upload(id, body, 10).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(repo_->Get(id)->status(), ImageStatus::kQueued);
}

TEST_F(ImageServiceTest, ClientDisconnectLeavesQueuedAndNoBytes) {
  std::string id = NewQueued();
  PatternBody body(1 << 20, 300000);
  auto r = Upload(id, body, 1 << 20);
  EXPECT_EQ(r.status().code(), Code::kCancelled);
  auto image = repo_->Get(id);
  EXPECT_EQ(image->status(), ImageStatus::kQueued);
  EXPECT_FALSE(image->size.has_value());
  EXPECT_FALSE(image->checksum.has_value());
  EXPECT_EQ(FilesInStore(), 0);
  // And the image can be uploaded again.
  PatternBody retry(1000);
  EXPECT_TRUE(Upload(id, retry, 1000).ok());
}

TEST_F(ImageServiceTest, SizeCapRefusesDeclaredAndActualOversize) {
  Reopen(/*cap=*/1000);
  std::string id = NewQueued();
  PatternBody declared(2000);
  EXPECT_EQ(Upload(id, declared, 2000).status().code(), Code::kTooLarge);
  PatternBody chunked(2000);  // no Content-Length: the cap trips mid-stream
  EXPECT_EQ(Upload(id, chunked, std::nullopt).status().code(), Code::kTooLarge);
  EXPECT_EQ(repo_->Get(id)->status(), ImageStatus::kQueued);
  EXPECT_EQ(FilesInStore(), 0);
}

TEST_F(ImageServiceTest, ShortBodyIsRefused) {
  std::string id = NewQueued();
  PatternBody body(500);
  EXPECT_EQ(Upload(id, body, 1000).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(repo_->Get(id)->status(), ImageStatus::kQueued);
}

// A client that declares its checksum (Content-MD5) gets other bytes refused before anything is
// stored; the right checksum activates.
TEST_F(ImageServiceTest, DeclaredChecksumIsCheckedInTheSamePass) {
  std::string id = NewQueued();
  PatternBody wrong(4096);
  auto refused = service_->Upload(Get(id), wrong, 4096, "", nullptr,
                                  std::string("00000000000000000000000000000000"));
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(repo_->Get(id)->status(), ImageStatus::kQueued);
  EXPECT_EQ(FilesInStore(), 0);
  const std::string md5 = *io::HexDigestOf("md5", PatternBody::Bytes(4096));
  PatternBody right(4096);
  auto done = service_->Upload(Get(id), right, 4096, "", nullptr, md5);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->checksum, md5);
}

TEST_F(ImageServiceTest, DeleteRemovesBytesAndRespectsProtected) {
  std::string id = NewQueued();
  PatternBody body(100);
  auto image = Upload(id, body, 100);
  ASSERT_TRUE(image.ok());
  image->is_protected = true;
  EXPECT_EQ(service_->Delete(*image).code(), Code::kPermissionDenied);
  image->is_protected = false;
  EXPECT_TRUE(service_->Delete(*image).ok());
  EXPECT_EQ(repo_->Get(id).status().code(), Code::kNotFound);
  EXPECT_EQ(FilesInStore(), 0);
}

TEST_F(ImageServiceTest, RepairResetsSavingRemovesOrphansAndReportsMissing) {
  std::string good = NewQueued();
  PatternBody body(100);
  ASSERT_TRUE(Upload(good, body, 100).ok());
  std::string lost = NewQueued();
  PatternBody body2(100);
  ASSERT_TRUE(Upload(lost, body2, 100).ok());
  // A crash mid-upload: the image is saving, a temp file and an orphan committed object exist.
  std::string stuck = NewQueued();
  auto im = *repo_->Get(stuck);
  ASSERT_TRUE(catalog::Transition(im, catalog::ImageEvent::kStartUpload).ok());
  ASSERT_TRUE(repo_->Save(im).ok());
  {
    auto pending = store_->Create(stuck);
    uint8_t x[3] = {1, 2, 3};
    ASSERT_TRUE((*pending)->Write(x).ok());
    ASSERT_TRUE((*pending)->Commit().ok());
  }
  std::system(("touch " + dir_ + "/images/.tmp-" + stuck + "-abcd").c_str());
  std::system(("rm " + dir_ + "/images/" + lost).c_str());

  Reopen();
  auto report = service_->Repair();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->saving_reset, 1);
  EXPECT_EQ(report->incomplete_removed, 1);
  EXPECT_EQ(report->orphans_removed, 1);
  ASSERT_EQ(report->missing_data.size(), 1u);
  EXPECT_EQ(report->missing_data[0], lost);
  EXPECT_EQ(repo_->Get(stuck)->status(), ImageStatus::kQueued);
  EXPECT_TRUE(service_->OpenData(*repo_->Get(good)).ok());
  EXPECT_EQ(service_->OpenData(*repo_->Get(lost)).status().code(), Code::kCorruption);
  EXPECT_EQ(service_->missing_data_count(), 2);  // once from Repair, once from OpenData
}

// On a catalog several nodes share, a node's restart puts back only the uploads it held, leaves
// another node's live upload and every store object alone (the scrubber's job), and an upload
// holds its lease only while it runs.
TEST_F(ImageServiceTest, RepairOnASharedCatalogTouchesOnlyThisNodesUploads) {
  auto shared = [&](const std::string& node) {
    return std::make_unique<ImageService>(
        *repo_, *stores_,
        ImageServiceOptions{.upload_leases = sqlite_.get(), .node = node});
  };
  auto a = shared("node-a");
  std::string done = NewQueued();
  PatternBody body(100);
  ASSERT_TRUE(a->Upload(Get(done), body, 100).ok());
  auto lease = sqlite_->GetJobLease("upload/" + done);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_FALSE(lease->holder.has_value());  // released when the upload ended

  auto saving_held_by = [&](const std::string& node) {
    std::string id = NewQueued();
    auto im = *repo_->Get(id);
    EXPECT_TRUE(catalog::Transition(im, catalog::ImageEvent::kStartUpload).ok());
    EXPECT_TRUE(repo_->Save(im).ok());
    EXPECT_TRUE(sqlite_->AcquireJobLease("upload/" + id, node, NowMicros(), NowMicros() + 3600'000'000,
                                         NowMicros()).ok());
    return id;
  };
  std::string mine = saving_held_by("node-a");
  std::string theirs = saving_held_by("node-b");
  std::system(("touch " + dir_ + "/images/.tmp-" + theirs + "-abcd").c_str());
  {
    auto pending = store_->Create("orphan-or-in-flight");
    uint8_t x[3] = {1, 2, 3};
    ASSERT_TRUE((*pending)->Write(x).ok());
    ASSERT_TRUE((*pending)->Commit().ok());
  }
  auto report = a->Repair();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->saving_reset, 1);
  EXPECT_EQ(report->saving_other_node, 1);
  EXPECT_EQ(report->incomplete_removed, 0);
  EXPECT_EQ(report->orphans_removed, 0);
  EXPECT_EQ(repo_->Get(mine)->status(), ImageStatus::kQueued);
  EXPECT_EQ(repo_->Get(theirs)->status(), ImageStatus::kSaving);
  EXPECT_FALSE(sqlite_->GetJobLease("upload/" + mine)->holder.has_value());
  EXPECT_EQ(sqlite_->GetJobLease("upload/" + theirs)->holder, "node-b");
  EXPECT_EQ(std::system(("test -e " + dir_ + "/images/.tmp-" + theirs + "-abcd").c_str()), 0);
  EXPECT_TRUE(store_->SizeOf("orphan-or-in-flight").ok());
  // node-b's own restart puts its upload back.
  auto b = shared("node-b");
  ASSERT_TRUE(b->Repair().ok());
  EXPECT_EQ(repo_->Get(theirs)->status(), ImageStatus::kQueued);
}

// A node that died mid-upload and never came back: once its lease has run out another node puts
// the image back to queued, and the image can be uploaded again.
TEST_F(ImageServiceTest, AnUploadWhoseNodeNeverReturnedIsReclaimedAfterItsLease) {
  int64_t clock = NowMicros();
  auto node = [&](const std::string& name) { return SharedNode(name, clock); };
  auto b = node("node-b");
  auto saving = [&](std::optional<std::string> holder) {
    std::string id = NewQueued();
    auto im = *repo_->Get(id);
    EXPECT_TRUE(catalog::Transition(im, catalog::ImageEvent::kStartUpload).ok());
    im.updated_at = clock;
    EXPECT_TRUE(repo_->Save(im).ok());
    if (holder) {
      EXPECT_TRUE(sqlite_->AcquireJobLease("upload/" + id, *holder, clock, clock + 60'000'000,
                                           clock).ok());
    }
    return id;
  };
  std::string dead = saving("node-a");
  std::string unleased = saving(std::nullopt);  // claimed, its lease not yet taken
  EXPECT_EQ(*b->ReclaimAbandonedUploads(), 0);
  clock += 30'000'000;
  EXPECT_EQ(*b->ReclaimAbandonedUploads(), 0);  // node-a may only be slow
  EXPECT_EQ(repo_->Get(dead)->status(), ImageStatus::kSaving);

  clock += 31'000'000;
  EXPECT_EQ(*b->ReclaimAbandonedUploads(), 2);
  EXPECT_EQ(repo_->Get(dead)->status(), ImageStatus::kQueued);
  EXPECT_EQ(repo_->Get(unleased)->status(), ImageStatus::kQueued);
  EXPECT_FALSE(sqlite_->GetJobLease("upload/" + dead)->holder.has_value());
  PatternBody body(3000);
  auto again = b->Upload(Get(dead), body, 3000);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->status(), ImageStatus::kActive);
  EXPECT_EQ(*b->ReclaimAbandonedUploads(), 0);
}

// The other side: an upload that stalled past its lease and was taken over stores nothing and
// leaves the image to whoever owns it now, even when another upload has already claimed it.
TEST_F(ImageServiceTest, AnUploadThatLostItsLeaseCommitsNothingAndLeavesTheImageAlone) {
  int64_t clock = NowMicros();
  auto node = [&](const std::string& name) { return SharedNode(name, clock); };
  auto a = node("node-a");
  auto b = node("node-b");
  std::string id = NewQueued();

  // Half-way through node-a's upload the client stalls for 61 s; node-b reclaims the image and
  // node-c starts a new upload of it.
  class StallingBody final : public io::Reader {
   public:
    explicit StallingBody(std::function<void()> stall) : stall_(std::move(stall)) {}
    Result<size_t> Read(std::span<uint8_t> buf) override {
      if (read_ >= (512u << 10) && stall_) std::exchange(stall_, nullptr)();
      auto n = inner_.Read(buf);
      if (n.ok()) read_ += *n;
      return n;
    }

   private:
    PatternBody inner_{1 << 20};
    uint64_t read_ = 0;
    std::function<void()> stall_;
  };
  StallingBody body([&] {
    clock += 61'000'000;
    EXPECT_EQ(*b->ReclaimAbandonedUploads(), 1);
    auto im = *repo_->Get(id);
    EXPECT_EQ(im.status(), ImageStatus::kQueued);
    EXPECT_TRUE(catalog::Transition(im, catalog::ImageEvent::kStartUpload).ok());
    EXPECT_TRUE(repo_->Save(im).ok());
    EXPECT_TRUE(sqlite_->AcquireJobLease("upload/" + id, "node-c", clock, clock + 60'000'000,
                                         clock).ok());
  });
  auto lost = a->Upload(Get(id), body, 1 << 20);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), Code::kConflict) << lost.status().ToString();
  EXPECT_NE(lost.status().message().find("taken over by another node"), std::string::npos);
  EXPECT_EQ(repo_->Get(id)->status(), ImageStatus::kSaving);  // node-c's, untouched
  EXPECT_EQ(sqlite_->GetJobLease("upload/" + id)->holder, "node-c");
  EXPECT_EQ(FilesInStore(), 0);
}

// ---- Faults: whatever fails, the image is not active, no bytes are left, the error says what
// happened, and the next upload succeeds. ----

TEST_F(ImageServiceTest, FsyncFailureAtCommitLeavesQueuedAndNoBytes) {
  std::string id = NewQueued();
  store_->Arm({.commit = IoError("fdatasync " + dir_ + "/images/.tmp-" + id + ": Input/output error")});
  PatternBody body(200000);
  auto r = Upload(id, body, 200000);
  EXPECT_EQ(r.status().code(), Code::kIoError);
  EXPECT_NE(r.status().message().find("fdatasync"), std::string::npos);
  EXPECT_EQ(store_->fired(), 1);
  auto image = Get(id);
  EXPECT_EQ(image.status(), ImageStatus::kQueued);
  EXPECT_TRUE(image.locations.empty());
  EXPECT_FALSE(image.checksum.has_value());
  EXPECT_EQ(FilesInStore(), 0);
  PatternBody retry(1000);
  EXPECT_TRUE(Upload(id, retry, 1000).ok());
}

TEST_F(ImageServiceTest, RenameFailureAtCommitLeavesQueuedAndNoBytes) {
  std::string id = NewQueued();
  store_->Arm({.commit = FromErrno(EXDEV, "renameat2 .tmp-x -> x")});
  PatternBody body(1000);
  EXPECT_EQ(Upload(id, body, 1000).status().code(), Code::kIoError);
  EXPECT_EQ(Get(id).status(), ImageStatus::kQueued);
  EXPECT_EQ(FilesInStore(), 0);
  PatternBody retry(1000);
  EXPECT_TRUE(Upload(id, retry, 1000).ok());
}

TEST_F(ImageServiceTest, DiskFullMidUploadLeavesQueuedAndNoBytes) {
  std::string id = NewQueued();
  store_->Arm({.write_fails_after = 300000, .write_error = FromErrno(ENOSPC, "write .tmp-x")});
  PatternBody body(1 << 20);
  auto r = Upload(id, body, 1 << 20);
  EXPECT_EQ(r.status().code(), Code::kStorageFull);
  EXPECT_EQ(Get(id).status(), ImageStatus::kQueued);
  EXPECT_EQ(FilesInStore(), 0);
  PatternBody retry(1 << 20);
  EXPECT_TRUE(Upload(id, retry, 1 << 20).ok());
  EXPECT_EQ(Get(id).status(), ImageStatus::kActive);
}

TEST_F(ImageServiceTest, CatalogWriteFailureAtActivationDiscardsTheBytes) {
  std::string id = NewQueued();
  // The claim (queued -> saving) succeeds; the activation save fails as a database error would.
  repo_->OnSave([](const Image& im) {
    return im.status() == ImageStatus::kActive ? IoError("sqlite: disk I/O error") : Status::Ok();
  });
  PatternBody body(5000);
  auto r = Upload(id, body, 5000);
  EXPECT_EQ(r.status().code(), Code::kIoError);
  repo_->OnSave(nullptr);
  EXPECT_EQ(Get(id).status(), ImageStatus::kQueued);
  EXPECT_EQ(FilesInStore(), 0);
  PatternBody retry(5000);
  EXPECT_TRUE(Upload(id, retry, 5000).ok());
}

TEST_F(ImageServiceTest, ConcurrentWritersAreRetriedNotLost) {
  std::string id = NewQueued();
  // Another request renames the image between our read and our save, once: the upload re-reads,
  // keeps their name and still activates.
  bool raced = false;
  repo_->OnSave([&](const Image& im) -> Status {
    if (raced || im.status() != ImageStatus::kActive) return Status::Ok();
    raced = true;
    Image theirs = *sqlite_->Get(im.id);
    theirs.name = "renamed meanwhile";
    return sqlite_->Save(theirs);  // bumps the version: our save then conflicts
  });
  PatternBody body(5000);
  auto r = Upload(id, body, 5000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(raced);
  Image stored = Get(id);
  EXPECT_EQ(stored.status(), ImageStatus::kActive);
  EXPECT_EQ(stored.name, "renamed meanwhile");
}

TEST_F(ImageServiceTest, DeleteDuringUploadLeavesNoBytes) {
  std::string id = NewQueued();
  repo_->OnSave([&](const Image& im) -> Status {
    if (im.status() == ImageStatus::kActive) {
      EXPECT_TRUE(sqlite_->Remove(im.id).ok());
    }
    return Status::Ok();
  });
  PatternBody body(5000);
  auto r = Upload(id, body, 5000);
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("deleted during the upload"), std::string::npos);
  EXPECT_EQ(FilesInStore(), 0);
}

TEST_F(ImageServiceTest, StatusMovesOnlyThroughTheTransitionTable) {
  std::string id = NewQueued();
  Status s = service_->Deactivate(Get(id));
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_EQ(s.message(), "Not allowed to deactivate image in status 'queued'");
  PatternBody body(10);
  ASSERT_TRUE(Upload(id, body, 10).ok());
  EXPECT_TRUE(service_->Deactivate(Get(id)).ok());
  EXPECT_EQ(Get(id).status(), ImageStatus::kDeactivated);
  EXPECT_TRUE(service_->Deactivate(Get(id)).ok());
  EXPECT_TRUE(service_->Reactivate(Get(id)).ok());
  EXPECT_EQ(Get(id).status(), ImageStatus::kActive);
  // A change that tries to move the status is refused.
  auto moved = service_->Update(Get(id), [](Image& im) {
    return catalog::Transition(im, catalog::ImageEvent::kDeactivate);
  });
  EXPECT_EQ(moved.status().code(), Code::kInternal);
  EXPECT_EQ(Get(id).status(), ImageStatus::kActive);
}

TEST_F(ImageServiceTest, QuotasAreTheServicesRule) {
  Reopen();
  std::string id = NewQueued();
  auto r = service_->Update(Get(id), [](Image& im) {
    for (int i = 0; i < 129; ++i) im.tags.insert("t" + std::to_string(i));
    return Status::Ok();
  });
  EXPECT_EQ(r.status().code(), Code::kTooLarge);
  EXPECT_EQ(r.status().message(), "Maximum number of tags exceeded (128).");
  EXPECT_TRUE(Get(id).tags.empty());
}

}  // namespace
}  // namespace ingot::service
