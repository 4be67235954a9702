#include "service/image_service.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>

#include "catalog/sqlite/sqlite_repository.h"
#include "common/time.h"
#include "common/uuid.h"
#include "io/hash.h"
#include "store/file/file_store.h"

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
    store_.reset();
    repo_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  void Reopen(uint64_t cap = 1ull << 40) {
    service_.reset();
    store_.reset();
    repo_.reset();
    repo_ = std::move(*catalog::SqliteImageRepository::Open(dir_ + "/catalog.db"));
    store_ = std::move(*store::FileStore::Open({.id = "file", .root = dir_ + "/images"}));
    service_ = std::make_unique<ImageService>(*repo_, *store_,
                                              ImageServiceOptions{.size_cap = cap,
                                                                  .buffer_size = 64 * 1024,
                                                                  .buffer_count = 4});
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
    EXPECT_TRUE(repo_->Add(im).ok());
    return im.id;
  }
  int FilesInStore() {
    return std::system(("test -z \"$(ls -A " + dir_ + "/images)\"").c_str()) == 0 ? 0 : 1;
  }

  std::string dir_;
  std::unique_ptr<catalog::ImageRepository> repo_;
  std::unique_ptr<store::FileStore> store_;
  std::unique_ptr<ImageService> service_;
};

TEST_F(ImageServiceTest, UploadActivatesWithChecksumsAndDurableBytes) {
  std::string id = NewQueued();
  const uint64_t size = 3 * 1000 * 1000 + 5;
  PatternBody body(size);
  auto image = service_->Upload(id, body, size);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  auto expected = PatternBody::Bytes(size);
  EXPECT_EQ(image->status, ImageStatus::kActive);
  EXPECT_EQ(*image->size, size);
  EXPECT_EQ(*image->virtual_size, size);  // pattern bytes are a raw disk
  EXPECT_EQ(*image->checksum, *io::HexDigestOf("md5", expected));
  EXPECT_EQ(*image->os_hash_algo, "sha512");
  EXPECT_EQ(*image->os_hash_value, *io::HexDigestOf("sha512", expected));

  auto stored = repo_->Get(id);
  EXPECT_EQ(stored->status, ImageStatus::kActive);
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
  auto r = service_->Upload(id, body, body.size());
  ASSERT_EQ(r.status().code(), Code::kRefused) << r.status().ToString();
  EXPECT_NE(r.status().message().find("backing"), std::string::npos) << r.status().message();
  EXPECT_EQ(repo_->Get(id)->status, ImageStatus::kQueued);
  EXPECT_EQ(FilesInStore(), 0);
}

TEST_F(ImageServiceTest, SecondUploadConflicts) {
  std::string id = NewQueued();
  PatternBody a(10), b(10);
  ASSERT_TRUE(service_->Upload(id, a, 10).ok());
  auto again = service_->Upload(id, b, 10);
  EXPECT_EQ(again.status().code(), Code::kConflict);
  EXPECT_EQ(again.status().message(), "Image status transition from active to saving is not allowed");
}

TEST_F(ImageServiceTest, UploadNeedsFormats) {
  std::string id = NewQueued(false);
  PatternBody body(10);
  EXPECT_EQ(service_->Upload(id, body, 10).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(repo_->Get(id)->status, ImageStatus::kQueued);
}

TEST_F(ImageServiceTest, ClientDisconnectLeavesQueuedAndNoBytes) {
  std::string id = NewQueued();
  PatternBody body(1 << 20, 300000);
  auto r = service_->Upload(id, body, 1 << 20);
  EXPECT_EQ(r.status().code(), Code::kCancelled);
  auto image = repo_->Get(id);
  EXPECT_EQ(image->status, ImageStatus::kQueued);
  EXPECT_FALSE(image->size.has_value());
  EXPECT_FALSE(image->checksum.has_value());
  EXPECT_EQ(FilesInStore(), 0);
  // And the image can be uploaded again.
  PatternBody retry(1000);
  EXPECT_TRUE(service_->Upload(id, retry, 1000).ok());
}

TEST_F(ImageServiceTest, SizeCapRefusesDeclaredAndActualOversize) {
  Reopen(/*cap=*/1000);
  std::string id = NewQueued();
  PatternBody declared(2000);
  EXPECT_EQ(service_->Upload(id, declared, 2000).status().code(), Code::kTooLarge);
  PatternBody chunked(2000);  // no Content-Length: the cap trips mid-stream
  EXPECT_EQ(service_->Upload(id, chunked, std::nullopt).status().code(), Code::kTooLarge);
  EXPECT_EQ(repo_->Get(id)->status, ImageStatus::kQueued);
  EXPECT_EQ(FilesInStore(), 0);
}

TEST_F(ImageServiceTest, ShortBodyIsRefused) {
  std::string id = NewQueued();
  PatternBody body(500);
  EXPECT_EQ(service_->Upload(id, body, 1000).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(repo_->Get(id)->status, ImageStatus::kQueued);
}

TEST_F(ImageServiceTest, DeleteRemovesBytesAndRespectsProtected) {
  std::string id = NewQueued();
  PatternBody body(100);
  auto image = service_->Upload(id, body, 100);
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
  ASSERT_TRUE(service_->Upload(good, body, 100).ok());
  std::string lost = NewQueued();
  PatternBody body2(100);
  ASSERT_TRUE(service_->Upload(lost, body2, 100).ok());
  // A crash mid-upload: the image is saving, a temp file and an orphan committed object exist.
  std::string stuck = NewQueued();
  auto im = *repo_->Get(stuck);
  im.status = ImageStatus::kSaving;
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
  EXPECT_EQ(repo_->Get(stuck)->status, ImageStatus::kQueued);
  EXPECT_TRUE(service_->OpenData(*repo_->Get(good)).ok());
  EXPECT_EQ(service_->OpenData(*repo_->Get(lost)).status().code(), Code::kCorruption);
  EXPECT_EQ(service_->missing_data_count(), 2);  // once from Repair, once from OpenData
}

}  // namespace
}  // namespace ingot::service
