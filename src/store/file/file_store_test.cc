#include "store/file/file_store.h"

#include <dirent.h>
#include <sys/stat.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace ingot::store {
namespace {

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-store-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    auto s = FileStore::Open({.id = "file", .root = root_ + "/images", .writeback_chunk = 4});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override { std::system(("rm -rf " + root_).c_str()); }

  std::vector<std::string> Files() {
    std::vector<std::string> out;
    DIR* d = opendir((root_ + "/images").c_str());
    while (auto* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(n);
    }
    closedir(d);
    return out;
  }

  std::string root_;
  std::unique_ptr<FileStore> store_;
};

TEST_F(FileStoreTest, CommittedObjectReadsBack) {
  auto p = store_->Create("img1");
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->Write(Bytes("hello ")).ok());
  ASSERT_TRUE((*p)->Write(Bytes("world")).ok());
  EXPECT_EQ((*p)->bytes_written(), 11u);
  // Not visible before commit.
  EXPECT_EQ(store_->SizeOf("img1").status().code(), Code::kNotFound);
  ASSERT_TRUE((*p)->Commit().ok());
  EXPECT_EQ(*store_->SizeOf("img1"), 11u);
  auto src = store_->Open("img1");
  ASSERT_TRUE(src.ok());
  uint8_t buf[5];
  ASSERT_TRUE(io::ReadExact(**src, 6, buf).ok());
  EXPECT_EQ(std::string(buf, buf + 5), "world");
  EXPECT_TRUE(store_->OpenFd("img1").ok());
  EXPECT_EQ(*store_->ListKeys(), std::vector<std::string>{"img1"});
}

// Whole zero blocks stay holes (a raw disk is mostly zeros), in the middle and at the end, and the
// object reads back byte for byte at its full length.
TEST_F(FileStoreTest, ZeroBlocksStayHoles) {
  std::vector<uint8_t> all(8 << 20, 0);
  for (size_t i = 0; i < 5000; ++i) all[i] = static_cast<uint8_t>(i * 7 + 1);       // head
  for (size_t i = 0; i < 3; ++i) all[(4 << 20) + 4093 + i] = 0xAB;              // across a block
  auto p = store_->Create("sparse");
  ASSERT_TRUE(p.ok());
  // Uneven pieces, so blocks straddle writes.
  for (size_t off = 0; off < all.size();) {
    size_t n = std::min<size_t>(all.size() - off, 100003);
    ASSERT_TRUE((*p)->Write(std::span<const uint8_t>(all.data() + off, n)).ok());
    off += n;
  }
  ASSERT_TRUE((*p)->Commit().ok());
  EXPECT_EQ(*store_->SizeOf("sparse"), all.size());
  struct stat st;
  ASSERT_EQ(::stat((root_ + "/images/sparse").c_str(), &st), 0);
  EXPECT_LT(uint64_t(st.st_blocks) * 512, uint64_t{1} << 20) << "8 MiB of mostly zeros took "
                                                             << st.st_blocks * 512 << " bytes";
  auto src = store_->Open("sparse");
  ASSERT_TRUE(src.ok());
  std::vector<uint8_t> back(all.size());
  ASSERT_TRUE(io::ReadExact(**src, 0, back).ok());
  EXPECT_TRUE(back == all);
}

// O_DIRECT (the default, gathered into an aligned buffer) and the page cache store the same bytes,
// holes included, whatever the lengths of the pieces and of the whole; on tmpfs, which refuses
// O_DIRECT, the store falls back to the page cache.
TEST_F(FileStoreTest, DirectAndCachedWritesStoreTheSameBytes) {
  std::vector<uint8_t> all((9 << 20) + 4097, 0);
  for (size_t i = 0; i < 3 << 20; ++i) all[i] = static_cast<uint8_t>(i * 13 + (i >> 12));
  for (size_t i = 0; i < 4000; ++i) all[(6 << 20) + 100 + i] = 0x5A;  // data between holes
  all[all.size() - 1] = 1;                                             // a last partial block
  char shm[] = "/dev/shm/ingot-store-XXXXXX";
  const bool have_shm = mkdtemp(shm) != nullptr;
  std::vector<std::pair<std::string, bool>> roots = {{root_ + "/direct", true},
                                                     {root_ + "/cached", false}};
  if (have_shm) roots.push_back({std::string(shm) + "/tmpfs", true});
  for (const auto& [root, direct] : roots) {
    auto s = FileStore::Open({.id = "x", .root = root, .direct_io = direct});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    for (size_t piece : {size_t{1}, size_t{4096}, size_t{777777}, size_t{5} << 20}) {
      const std::string key = "k" + std::to_string(piece);
      auto p = (*s)->Create(key);
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      const size_t limit = piece == 1 ? 10000 : all.size();  // byte by byte: a short object
      for (size_t off = 0; off < limit;) {
        size_t n = std::min(limit - off, piece);
        ASSERT_TRUE((*p)->Write(std::span<const uint8_t>(all.data() + off, n)).ok()) << root;
        off += n;
      }
      ASSERT_TRUE((*p)->Commit().ok()) << root;
      auto src = (*s)->Open(key);
      ASSERT_TRUE(src.ok());
      ASSERT_EQ((*src)->Size(), limit) << root << " " << piece;
      std::vector<uint8_t> back(limit);
      ASSERT_TRUE(io::ReadExact(**src, 0, back).ok());
      EXPECT_TRUE(std::equal(back.begin(), back.end(), all.begin())) << root << " " << piece;
    }
  }
  if (have_shm) std::system(("rm -rf " + std::string(shm)).c_str());
}

TEST_F(FileStoreTest, AbandonedObjectLeavesNothing) {
  {
    auto p = store_->Create("img2");
    ASSERT_TRUE((*p)->Write(Bytes("partial")).ok());
  }
  EXPECT_TRUE(Files().empty());
  EXPECT_EQ(store_->Open("img2").status().code(), Code::kNotFound);
}

TEST_F(FileStoreTest, RemoveIncompleteDeletesCrashLeftovers) {
  auto p = store_->Create("img3");
  ASSERT_TRUE((*p)->Write(Bytes("x")).ok());
  // Simulate a crash: the temp file stays while the object is alive; a new store instance repairs.
  auto again = FileStore::Open({.id = "file", .root = root_ + "/images"});
  EXPECT_EQ(*(*again)->RemoveIncomplete(), 1);
  EXPECT_TRUE(Files().empty());
}

TEST_F(FileStoreTest, RefusesOverwriteAndBadKeys) {
  auto p = store_->Create("img4");
  ASSERT_TRUE((*p)->Commit().ok());
  EXPECT_EQ(store_->Create("img4").status().code(), Code::kAlreadyExists);
  EXPECT_EQ(store_->Create("../etc").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Create(".tmp-x").status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(store_->Delete("img4").ok());
  EXPECT_TRUE(store_->Delete("img4").ok());  // idempotent
  EXPECT_EQ(store_->SizeOf("img4").status().code(), Code::kNotFound);
}

// Location URLs: an object directly in the store's directory is adopted by its name; anything else
// is not this store's (nullopt) or refused (kInvalidArgument, kNotFound). UrlOf is the inverse.
TEST_F(FileStoreTest, LocationUrlsMapToKeysOnlyInsideTheStore) {
  auto obj = store_->Create("golden.raw");
  ASSERT_TRUE((*obj)->Write(Bytes("data")).ok());
  ASSERT_TRUE((*obj)->Commit().ok());
  char* real = ::realpath((root_ + "/images").c_str(), nullptr);
  const std::string dir(real);
  std::free(real);
  EXPECT_EQ(store_->UrlOf("golden.raw"), "file://" + dir + "/golden.raw");
  auto key = store_->KeyOfUrl(store_->UrlOf("golden.raw"));
  ASSERT_TRUE(key.ok() && key->has_value()) << key.status().ToString();
  EXPECT_EQ(**key, "golden.raw");
  EXPECT_EQ(**store_->KeyOfUrl("FILE://localhost" + root_ + "/images/golden.raw"), "golden.raw");

  for (const std::string& elsewhere :
       {std::string("http://h/x"), std::string("file:///etc/passwd"), "file://" + root_ + "/x",
        std::string("file:relative/golden.raw")}) {
    auto k = store_->KeyOfUrl(elsewhere);
    EXPECT_TRUE(k.ok() && !k->has_value()) << elsewhere;
  }
  ASSERT_EQ(::symlink("/etc/hostname", (root_ + "/images/link").c_str()), 0);
  ASSERT_EQ(::mkdir((root_ + "/images/dir").c_str(), 0755), 0);
  for (const std::string& bad :
       {"file://" + root_ + "/images/../images/golden.raw", "file://" + root_ + "/images/./golden.raw",
        "file://" + root_ + "//images/golden.raw", "file://" + root_ + "/images/golden%2eraw",
        "file://" + root_ + "/images/link", "file://" + root_ + "/images/dir",
        "file://" + root_ + "/images/.tmp-x", std::string("file://relative/golden.raw")}) {
    EXPECT_EQ(store_->KeyOfUrl(bad).status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(store_->KeyOfUrl("file://" + root_ + "/images/missing").status().code(),
            Code::kNotFound);
}

}  // namespace
}  // namespace ingot::store
