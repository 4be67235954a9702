#include "service/import/import_service.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "catalog/sqlite/sqlite_repository.h"
#include "common/time.h"
#include "common/uuid.h"
#include "io/hash.h"
#include "store/testing/faulty_store.h"
#include "store/testing/memory_store.h"

namespace ingot::service {
namespace {

using catalog::Image;
using catalog::ImageStatus;
using catalog::TaskStatus;

// Bytes from a vector, read in small pieces.
class VectorBody final : public io::Reader {
 public:
  explicit VectorBody(std::vector<uint8_t> data) : data_(std::move(data)) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    size_t n = std::min(buf.size(), data_.size() - pos_);
    std::copy_n(data_.data() + pos_, n, buf.data());
    pos_ += n;
    return n;
  }

 private:
  std::vector<uint8_t> data_;
  size_t pos_ = 0;
};

std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 31 + (i >> 9));
  return v;
}

// A real SQLite catalog (images and tasks), stores "a" and "b" (b can be made to fail) in memory,
// and a staging store.
class ImportServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-import-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    repo_ = std::move(*catalog::SqliteImageRepository::Open(dir_ + "/catalog.db"));
    auto a = std::make_unique<store::MemoryStore>("a");
    a_ = a.get();
    auto b = std::make_unique<store::FaultyStore>(std::make_unique<store::MemoryStore>("b"));
    b_ = b.get();
    ASSERT_TRUE(
        stores_.Add(std::move(a), {.id = "a", .driver = "memory", .is_default = true}).ok());
    ASSERT_TRUE(stores_.Add(std::move(b), {.id = "b", .driver = "memory"}).ok());
    images_ = std::make_unique<ImageService>(*repo_, stores_, ImageServiceOptions{});
    imports_ = std::make_unique<ImportService>(*images_, *repo_, staging_,
                                               ImportOptions{.node = "test-node"});
  }
  void TearDown() override {
    imports_.reset();
    images_.reset();
    repo_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  std::string NewQueued(const std::string& disk_format = "raw",
                        std::optional<std::string> declared_sha512 = std::nullopt) {
    Image im;
    im.id = NewUuid();
    if (declared_sha512) {
      im.os_hash_algo = "sha512";
      im.os_hash_value = std::move(declared_sha512);
    }
    im.owner = "p1";
    im.disk_format = disk_format;
    im.container_format = "bare";
    im.created_at = im.updated_at = NowMicros();
    EXPECT_TRUE(repo_->Add(im).ok());
    return im.id;
  }
  Image Get(const std::string& id) { return *repo_->Get(id); }
  void Stage(const std::string& id, const std::vector<uint8_t>& bytes) {
    VectorBody body(bytes);
    auto staged = imports_->Stage(Get(id), body, bytes.size());
    ASSERT_TRUE(staged.ok()) << staged.status().ToString();
    EXPECT_EQ(staged->status(), ImageStatus::kUploading);
  }
  Result<std::optional<catalog::Task>> Import(const std::string& id, ImportRequest r) {
    return imports_->Import(Get(id), r, Requester{.project = "p1", .request_id = "req-1"});
  }
  // Runs every claimable task.
  void Drain() {
    while (true) {
      auto ran = imports_->RunOnce();
      ASSERT_TRUE(ran.ok()) << ran.status().ToString();
      if (!*ran) return;
    }
  }
  static std::string Md5(const std::vector<uint8_t>& b) { return *io::HexDigestOf("md5", b); }

  std::string dir_;
  std::unique_ptr<catalog::SqliteImageRepository> repo_;
  store::StoreSet stores_;
  store::MemoryStore* a_ = nullptr;
  store::FaultyStore* b_ = nullptr;
  store::MemoryStore staging_{"staging"};
  std::unique_ptr<ImageService> images_;
  std::unique_ptr<ImportService> imports_;
};

TEST_F(ImportServiceTest, StageThenGlanceDirectActivatesAndUnstages) {
  const auto bytes = Pattern(300000);
  std::string id = NewQueued();
  Stage(id, bytes);
  EXPECT_TRUE(staging_.SizeOf(id).ok());
  auto task = Import(id, {.method = "glance-direct"});
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  ASSERT_TRUE(task->has_value());
  EXPECT_EQ(Get(id).status(), ImageStatus::kImporting);
  EXPECT_EQ(Get(id).properties["os_glance_importing_to_stores"], "a");
  Drain();
  Image im = Get(id);
  EXPECT_EQ(im.status(), ImageStatus::kActive);
  EXPECT_EQ(im.size, bytes.size());
  EXPECT_EQ(im.checksum, Md5(bytes));
  ASSERT_EQ(im.locations.size(), 1u);
  EXPECT_EQ(im.locations[0].store, "a");
  EXPECT_EQ(im.properties["os_glance_importing_to_stores"], "");
  EXPECT_EQ(*a_->SizeOf(id), bytes.size());
  EXPECT_FALSE(staging_.SizeOf(id).ok()) << "staged bytes are removed once imported";
  auto t = repo_->GetTask((*task)->id);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->status, TaskStatus::kSuccess);
  EXPECT_TRUE(t->expires_at.has_value());
  auto listed = imports_->ListImageTasks(im);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

// Deleting an image removes its staged bytes at once, not at the next start.
TEST_F(ImportServiceTest, DeletingAStagedImageRemovesItsStagedBytes) {
  images_->set_staging(&staging_);
  std::string id = NewQueued();
  Stage(id, Pattern(100000));
  ASSERT_TRUE(staging_.Open(id).ok());
  ASSERT_TRUE(images_->Delete(Get(id)).ok());
  EXPECT_EQ(staging_.Open(id).status().code(), Code::kNotFound);
}

// A checksum declared at create (os_hash_value) is the one the image must end with: other bytes
// leave it queued with nothing stored and a task message naming both digests; the right ones
// activate it.
TEST_F(ImportServiceTest, ADeclaredHashRefusesOtherBytes) {
  std::vector<uint8_t> good = Pattern(300000), bad = Pattern(300001);
  std::string id = NewQueued("raw", *io::HexDigestOf("sha512", good));
  Stage(id, bad);
  ASSERT_TRUE(Import(id, {.method = "glance-direct", .stores = {"a"}}).ok());
  Drain();
  EXPECT_EQ(Get(id).status(), ImageStatus::kQueued);
  EXPECT_FALSE(a_->Open(id).ok());
  auto tasks = repo_->ListTasksForImage(id);
  ASSERT_TRUE(tasks.ok());
  bool named = false;
  for (const auto& t : *tasks) {
    named |= t.message.find("declared when the image was created") != std::string::npos;
  }
  EXPECT_TRUE(named);

  Stage(id, good);
  ASSERT_TRUE(Import(id, {.method = "glance-direct", .stores = {"a"}}).ok());
  Drain();
  EXPECT_EQ(Get(id).status(), ImageStatus::kActive);
  EXPECT_EQ(Get(id).os_hash_value, *io::HexDigestOf("sha512", good));
}

TEST_F(ImportServiceTest, GlanceChecksBeforeATaskIsMade) {
  std::string id = NewQueued();
  auto r = Import(id, {.method = "glance-direct"});
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_EQ(r.status().message(),
            "Image needs to be staged before 'glance-direct' method can be used");
  r = Import(id, {.method = "copy-image"});
  EXPECT_EQ(r.status().message(), "Only images with status active can be targeted for copying");
  r = Import(id, {.method = "web-download", .uri = "gopher://example.com/x"});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  r = Import(id, {.method = "teleport"});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  r = Import(id, {.method = "web-download", .uri = "http://example.com/x", .stores = {"nope"}});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  auto tasks = repo_->ListTasksForImage(id);
  ASSERT_TRUE(tasks.ok());
  EXPECT_TRUE(tasks->empty()) << "a refused request leaves no task";
}

TEST_F(ImportServiceTest, CopyImageAddsACopyAndASecondCopyWaitsItsTurn) {
  const auto bytes = Pattern(100000);
  std::string id = NewQueued();
  Stage(id, bytes);
  ASSERT_TRUE(Import(id, {.method = "glance-direct"}).ok());
  Drain();
  ASSERT_EQ(Get(id).status(), ImageStatus::kActive);

  auto first = Import(id, {.method = "copy-image", .stores = {"b"}});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // One import or copy of an image at a time, decided by the catalog.
  auto second = Import(id, {.method = "copy-image", .stores = {"b"}});
  EXPECT_EQ(second.status().code(), Code::kConflict);
  EXPECT_EQ(Get(id).status(), ImageStatus::kActive) << "copy-image leaves the image active";
  Drain();
  Image im = Get(id);
  ASSERT_EQ(im.locations.size(), 2u);
  EXPECT_EQ(im.locations[1].store, "b");
  EXPECT_EQ(*b_->inner().SizeOf(id), bytes.size());
  // Now that the copy exists, asking for it again is Glance's 400, and all_stores has nothing to
  // do.
  EXPECT_EQ(Import(id, {.method = "copy-image", .stores = {"b"}}).status().code(),
            Code::kInvalidArgument);
  auto nothing = Import(id, {.method = "copy-image", .all_stores = true});
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->has_value());
}

TEST_F(ImportServiceTest, AllStoresMustSucceedLeavesNoCopyAnywhere) {
  const auto bytes = Pattern(200000);
  std::string id = NewQueued();
  Stage(id, bytes);
  b_->Arm({.commit = IoError("fdatasync: Input/output error")});
  ASSERT_TRUE(Import(id, {.method = "glance-direct", .stores = {"a", "b"}}).ok());
  Drain();
  Image im = Get(id);
  EXPECT_EQ(im.status(), ImageStatus::kQueued);
  EXPECT_TRUE(im.locations.empty());
  EXPECT_EQ(im.properties["os_glance_failed_import"], "b");
  EXPECT_FALSE(a_->SizeOf(id).ok()) << "the store that succeeded gives its copy back";
  EXPECT_FALSE(b_->inner().SizeOf(id).ok());
  EXPECT_TRUE(staging_.SizeOf(id).ok()) << "staged bytes are kept after a failure, as Glance does";
  auto tasks = repo_->ListTasksForImage(id);
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ(tasks->front().status, TaskStatus::kFailure);
  EXPECT_NE(tasks->front().message.find("server"), std::string::npos)
      << "a server fault is told in general words: " << tasks->front().message;
}

TEST_F(ImportServiceTest, AllowedFailureActivatesWithTheStoresThatWorked) {
  const auto bytes = Pattern(200000);
  std::string id = NewQueued();
  Stage(id, bytes);
  b_->Arm({.write_fails_after = 1000});
  ASSERT_TRUE(
      Import(id,
             {.method = "glance-direct", .stores = {"a", "b"}, .all_stores_must_succeed = false})
          .ok());
  Drain();
  Image im = Get(id);
  EXPECT_EQ(im.status(), ImageStatus::kActive);
  ASSERT_EQ(im.locations.size(), 1u);
  EXPECT_EQ(im.locations[0].store, "a");
  EXPECT_EQ(im.properties["os_glance_failed_import"], "b");
  EXPECT_EQ(im.properties["os_glance_importing_to_stores"], "");
  EXPECT_FALSE(b_->inner().SizeOf(id).ok());
}

TEST_F(ImportServiceTest, ContentThatIsNotItsDiskFormatIsRefusedAndUnstaged) {
  std::string id = NewQueued("qcow2");  // raw bytes declared qcow2
  Stage(id, Pattern(70000));
  ASSERT_TRUE(Import(id, {.method = "glance-direct"}).ok());
  Drain();
  Image im = Get(id);
  EXPECT_EQ(im.status(), ImageStatus::kQueued);
  EXPECT_FALSE(a_->SizeOf(id).ok());
  EXPECT_FALSE(staging_.SizeOf(id).ok()) << "a refused image's staged bytes are removed";
  auto tasks = repo_->ListTasksForImage(id);
  EXPECT_NE(tasks->front().message.find("require_image_format_match"), std::string::npos)
      << tasks->front().message;
}

TEST_F(ImportServiceTest, ATaskWhoseNodeDiedIsTakenOverWhenItsLeaseRunsOut) {
  const auto bytes = Pattern(50000);
  std::string id = NewQueued();
  Stage(id, bytes);
  ASSERT_TRUE(Import(id, {.method = "glance-direct"}).ok());
  // Another node claims the task and dies: its lease ran out a moment ago.
  const int64_t now = NowMicros();
  auto claimed = repo_->ClaimTask("dead-node", now - 2000000, now - 1000000);
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  Drain();
  EXPECT_EQ(Get(id).status(), ImageStatus::kActive);
  auto t = repo_->GetTask((*claimed)->id);
  EXPECT_EQ(t->status, TaskStatus::kSuccess);
}

TEST_F(ImportServiceTest, StagingPastTheCapIsRefusedAndTheImageGoesBack) {
  imports_ = std::make_unique<ImportService>(*images_, *repo_, staging_,
                                             ImportOptions{.staging_cap = 1000, .node = "n"});
  std::string id = NewQueued();
  VectorBody body(Pattern(5000));
  auto staged = imports_->Stage(Get(id), body, std::nullopt);
  EXPECT_EQ(staged.status().code(), Code::kTooLarge);
  EXPECT_EQ(Get(id).status(), ImageStatus::kQueued);
  EXPECT_FALSE(staging_.SizeOf(id).ok());
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::vector<uint8_t> out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  uint8_t buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
  std::fclose(f);
  return out;
}

// convert_to = "raw": a staged qcow2 is stored as the raw disk qemu-img would make of it, in the
// one pass that hashes it; disk_format becomes raw.
TEST_F(ImportServiceTest, GlanceDirectConvertsQcow2ToRawAsQemuImgDoes) {
  imports_ = std::make_unique<ImportService>(*images_, *repo_, staging_,
                                             ImportOptions{.node = "n", .convert_to = "raw"});
  // A 3 MiB disk with data in two places and a hole between, as qcow2.
  std::vector<uint8_t> disk(3 << 20, 0);
  auto head = Pattern(200000);
  std::copy(head.begin(), head.end(), disk.begin());
  std::copy(head.begin(), head.begin() + 70000, disk.begin() + (2 << 20) + 12345);
  const std::string raw = dir_ + "/disk.raw", qcow = dir_ + "/disk.qcow2",
                    back = dir_ + "/back.raw";
  FILE* f = std::fopen(raw.c_str(), "wb");
  std::fwrite(disk.data(), 1, disk.size(), f);
  std::fclose(f);
  ASSERT_EQ(std::system(("qemu-img convert -q -f raw -O qcow2 " + raw + " " + qcow).c_str()), 0);
  ASSERT_EQ(std::system(("qemu-img convert -q -f qcow2 -O raw " + qcow + " " + back).c_str()), 0);
  const std::vector<uint8_t> reference = ReadFile(back);

  std::string id = NewQueued("qcow2");
  Stage(id, ReadFile(qcow));
  ASSERT_TRUE(Import(id, {.method = "glance-direct"}).ok());
  Drain();
  Image im = Get(id);
  ASSERT_EQ(im.status(), ImageStatus::kActive);
  EXPECT_EQ(im.disk_format, "raw");
  EXPECT_EQ(im.properties["os_glance_converted_from"], "qcow2");
  EXPECT_EQ(im.size, reference.size());
  EXPECT_EQ(im.virtual_size, reference.size());
  EXPECT_EQ(im.checksum, Md5(reference));
  auto stored = a_->Open(id);
  ASSERT_TRUE(stored.ok());
  std::vector<uint8_t> got((*stored)->Size());
  ASSERT_TRUE(io::ReadExact(**stored, 0, got).ok());
  EXPECT_TRUE(got == reference) << "the stored raw disk is what qemu-img convert makes";
  EXPECT_EQ(im.properties.count("ingot_original_image"), 0u) << "keep_original is off";

  // keep_original: the qcow2 as staged becomes an image of its own, linked both ways.
  imports_ = std::make_unique<ImportService>(
      *images_, *repo_, staging_,
      ImportOptions{.node = "n", .convert_to = "raw", .keep_original = true});
  const std::vector<uint8_t> original = ReadFile(qcow);
  std::string kept = NewQueued("qcow2");
  Stage(kept, original);
  ASSERT_TRUE(Import(kept, {.method = "glance-direct"}).ok());
  Drain();
  Image converted = Get(kept);
  ASSERT_EQ(converted.status(), ImageStatus::kActive);
  EXPECT_EQ(converted.checksum, Md5(reference));
  const std::string orig_id = converted.properties["ingot_original_image"];
  ASSERT_FALSE(orig_id.empty());
  Image orig = Get(orig_id);
  EXPECT_EQ(orig.status(), ImageStatus::kActive);
  EXPECT_EQ(orig.disk_format, "qcow2");
  EXPECT_EQ(orig.owner, converted.owner);
  EXPECT_EQ(orig.properties["ingot_original_of"], kept);
  EXPECT_EQ(orig.checksum, Md5(original));
  EXPECT_EQ(staging_.Open(kept).status().code(), Code::kNotFound) << "unstaged once kept";
}

// An xz-compressed image is stored decompressed, checksummed as what is stored.
TEST_F(ImportServiceTest, CompressedImagesAreStoredDecompressed) {
  const auto bytes = Pattern(600000);
  const std::string path = dir_ + "/img.raw";
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  ASSERT_EQ(std::system(("xz -k " + path).c_str()), 0);
  std::string id = NewQueued();
  Stage(id, ReadFile(path + ".xz"));
  ASSERT_TRUE(Import(id, {.method = "glance-direct"}).ok());
  Drain();
  Image im = Get(id);
  ASSERT_EQ(im.status(), ImageStatus::kActive);
  EXPECT_EQ(im.size, bytes.size());
  EXPECT_EQ(im.checksum, Md5(bytes));
}

// inject_image_metadata: the operator's properties land on imported images, except for the exempt
// roles.
TEST_F(ImportServiceTest, InjectsTheOperatorsPropertiesUnlessTheRoleIsExempt) {
  imports_ = std::make_unique<ImportService>(
      *images_, *repo_, staging_,
      ImportOptions{.node = "n", .inject = {{"hw_vif_multiqueue_enabled", "true"}}});
  std::string member = NewQueued(), admin = NewQueued();
  Stage(member, Pattern(1000));
  Stage(admin, Pattern(1000));
  ASSERT_TRUE(imports_
                  ->Import(Get(member), {.method = "glance-direct"},
                           Requester{.project = "p1", .roles = {"member", "reader"}})
                  .ok());
  ASSERT_TRUE(imports_
                  ->Import(Get(admin), {.method = "glance-direct"},
                           Requester{.project = "p1", .roles = {"admin", "member"}})
                  .ok());
  Drain();
  EXPECT_EQ(Get(member).properties["hw_vif_multiqueue_enabled"], "true");
  EXPECT_EQ(Get(admin).properties.count("hw_vif_multiqueue_enabled"), 0u);
}

TEST(ImportInput, RoundTrips) {
  ImportRequest r{
      .method = "web-download", .uri = "http://example.com/a", .all_stores_must_succeed = false};
  std::string json = ImportInputJson("img", r, {"a", "b"});
  std::string id;
  auto back = ParseImportInput(json, &id);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(id, "img");
  EXPECT_EQ(back->method, "web-download");
  EXPECT_EQ(back->uri, "http://example.com/a");
  EXPECT_FALSE(back->all_stores_must_succeed);
  EXPECT_EQ(back->stores, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace ingot::service
