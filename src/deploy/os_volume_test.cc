#include "deploy/os_volume.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "deploy/volume_store.h"

namespace ingot::deploy {
namespace {

constexpr uint32_t kCluster = 65536;

class VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nbd-volume-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  // A raw golden image: a pattern in its first `data` bytes, a hole after it up to `size`.
  std::string MakeBase(const std::string& name, uint64_t size, size_t data, uint8_t seed = 1) {
    std::string path = dir_ + "/" + name;
    base_bytes_.assign(data, 0);
    for (size_t i = 0; i < data; ++i) base_bytes_[i] = uint8_t(seed + i * 7 + i / 4096);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::pwrite(fd, base_bytes_.data(), data, 0), ssize_t(data));
    EXPECT_EQ(::ftruncate(fd, off_t(size)), 0);
    ::close(fd);
    return path;
  }

  std::vector<uint8_t> ReadFile(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
  }

  std::unique_ptr<VolumeStore> Store() {
    auto s = VolumeStore::Open(dir_ + "/volumes");
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }

  std::vector<uint8_t> Read(OsVolume& v, uint64_t off, size_t n) {
    std::vector<uint8_t> b(n, 0xee);
    Status s = v.Read(off, b);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return b;
  }

  std::string dir_;
  std::vector<uint8_t> base_bytes_;
};

TEST_F(VolumeTest, CloneReadsTheGoldenImage) {
  auto base = MakeBase("golden.raw", 4 << 20, 1 << 20);
  auto store = Store();
  auto info = store->Create({.name = "vol1", .base_path = base});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->meta.size, 4u << 20);
  EXPECT_EQ(info->meta.base_format, "raw");
  EXPECT_EQ(info->meta.base, "base");  // hard link: same file system
  EXPECT_FALSE(info->rule.attached);
  auto v = store->OpenVolume("vol1");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(Read(**v, 0, 1 << 20), base_bytes_);
  EXPECT_EQ(Read(**v, 1 << 20, 4096), std::vector<uint8_t>(4096, 0));
  EXPECT_EQ((*v)->overlay_bytes(), 0u);
}

TEST_F(VolumeTest, WritesCopyOnWriteAndLeaveTheBaseAlone) {
  auto base = MakeBase("golden.raw", 4 << 20, 2 << 20);
  const auto golden = ReadFile(base);
  auto store = Store();
  ASSERT_TRUE(store->Create({.name = "vol1", .base_path = base}).ok());
  auto v = std::move(*store->OpenVolume("vol1"));
  std::vector<uint8_t> expect = golden;
  // A partial cluster (copy-on-write), a write across a cluster edge, whole clusters, and a write
  // past the golden data into the hole.
  auto write = [&](uint64_t off, size_t n, uint8_t val) {
    std::vector<uint8_t> d(n, val);
    ASSERT_TRUE(v->Write(off, d).ok());
    std::memset(expect.data() + off, val, n);
  };
  write(100, 512, 0xa1);
  write(kCluster - 1000, 3000, 0xa2);
  write(4 * kCluster, 3 * kCluster, 0xa3);
  write((3 << 20) + 5, 77, 0xa4);
  EXPECT_EQ(Read(*v, 0, 4 << 20), expect);
  EXPECT_EQ(v->overlay_bytes(), uint64_t(2 + 3 + 1) * kCluster);
  ASSERT_TRUE(v->Flush().ok());
  EXPECT_EQ(ReadFile(base), golden);
  v.reset();
  auto again = std::move(*store->OpenVolume("vol1"));
  EXPECT_EQ(Read(*again, 0, 4 << 20), expect);
  EXPECT_EQ(ReadFile(base), golden);
}

TEST_F(VolumeTest, ZeroesTrimAndBlockStatus) {
  auto base = MakeBase("golden.raw", 8 * kCluster, 4 * kCluster);
  auto store = Store();
  ASSERT_TRUE(store->Create({.name = "v", .base_path = base}).ok());
  auto v = std::move(*store->OpenVolume("v"));
  // Base data, then the base's hole.
  auto e = v->BlockStatus(0, 8 * kCluster);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->length, 4u * kCluster);
  EXPECT_TRUE(e->allocated);
  EXPECT_FALSE(e->zero);
  e = v->BlockStatus(4 * kCluster, 4 * kCluster);
  EXPECT_EQ(e->length, 4u * kCluster);
  EXPECT_FALSE(e->allocated);
  EXPECT_TRUE(e->zero);
  // Zero one and a half clusters of base data: the whole cluster becomes a hole, the half is written.
  ASSERT_TRUE(v->WriteZeroes(kCluster, kCluster + kCluster / 2, true).ok());
  EXPECT_EQ(Read(*v, kCluster, kCluster + kCluster / 2),
            std::vector<uint8_t>(kCluster + kCluster / 2, 0));
  auto tail = Read(*v, 2 * kCluster + kCluster / 2, kCluster / 2);
  EXPECT_EQ(tail, std::vector<uint8_t>(base_bytes_.begin() + 2 * kCluster + kCluster / 2,
                                       base_bytes_.begin() + 3 * kCluster));
  e = v->BlockStatus(kCluster, 8 * kCluster);
  EXPECT_EQ(e->length, uint64_t(kCluster));
  EXPECT_TRUE(e->zero);
  EXPECT_FALSE(e->allocated);
  e = v->BlockStatus(2 * kCluster, kCluster);
  EXPECT_TRUE(e->allocated);  // the copied-on-write cluster
  // Trim: whole clusters read as zeros, partial ones are untouched.
  ASSERT_TRUE(v->Trim(3 * kCluster - 10, kCluster + 20).ok());
  EXPECT_EQ(Read(*v, 3 * kCluster, kCluster), std::vector<uint8_t>(kCluster, 0));
  EXPECT_EQ(Read(*v, 3 * kCluster - 10, 10),
            std::vector<uint8_t>(base_bytes_.begin() + 3 * kCluster - 10,
                                 base_bytes_.begin() + 3 * kCluster));
  // NO_HOLE zeroes: allocated zeros.
  ASSERT_TRUE(v->WriteZeroes(0, kCluster, false).ok());
  EXPECT_EQ(Read(*v, 0, kCluster), std::vector<uint8_t>(kCluster, 0));
  EXPECT_TRUE(v->BlockStatus(0, kCluster)->allocated);
  // Data written over a zero cluster.
  std::vector<uint8_t> d(100, 0x5a);
  ASSERT_TRUE(v->Write(kCluster + 50, d).ok());
  auto got = Read(*v, kCluster, kCluster);
  EXPECT_EQ(got[49], 0);
  EXPECT_EQ(got[50], 0x5a);
  EXPECT_EQ(got[150], 0);
  // Out of range.
  std::vector<uint8_t> big(10);
  EXPECT_EQ(v->Read(8 * kCluster - 5, big).code(), Code::kOutOfRange);
  EXPECT_EQ(v->Write(8 * kCluster - 5, big).code(), Code::kOutOfRange);
}

TEST_F(VolumeTest, UnalignedSizeAndGrowth) {
  // A golden image whose size is not a multiple of the cluster, cloned into a larger volume.
  auto base = MakeBase("odd.raw", 3 * kCluster + 1234, 3 * kCluster + 1234);
  auto store = Store();
  ASSERT_EQ(store->Create({.name = "small", .base_path = base, .size = 100}).status().code(),
            Code::kInvalidArgument);
  auto info = store->Create({.name = "grown", .base_path = base, .size = 8 * kCluster});
  ASSERT_TRUE(info.ok());
  auto v = std::move(*store->OpenVolume("grown"));
  EXPECT_EQ(Read(*v, 0, base_bytes_.size()), base_bytes_);
  EXPECT_EQ(Read(*v, base_bytes_.size(), 100), std::vector<uint8_t>(100, 0));
  // A write straddling the base's end.
  std::vector<uint8_t> d(2000, 0x77);
  ASSERT_TRUE(v->Write(3 * kCluster + 1000, d).ok());
  auto got = Read(*v, 3 * kCluster, 4000);
  EXPECT_EQ(got[999], base_bytes_[3 * kCluster + 999]);
  EXPECT_EQ(got[1000], 0x77);
  EXPECT_EQ(got[2999], 0x77);
  EXPECT_EQ(got[3000], 0);
  // Zeroing to the very end of the volume.
  ASSERT_TRUE(v->WriteZeroes(kCluster / 2, 8 * kCluster - kCluster / 2, true).ok());
  EXPECT_EQ(Read(*v, kCluster / 2, 8 * kCluster - kCluster / 2),
            std::vector<uint8_t>(8 * kCluster - kCluster / 2, 0));
}

// A crash: a child writes, flushes, writes more and dies without flushing. The flushed writes are
// there; the unflushed ones either are or are not, but never half (whole clusters of base or new).
TEST_F(VolumeTest, CrashKeepsWhatWasFlushed) {
  auto base = MakeBase("golden.raw", 16 * kCluster, 16 * kCluster);
  const auto golden = ReadFile(base);
  auto store = Store();
  ASSERT_TRUE(store->Create({.name = "v", .base_path = base}).ok());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto v = VolumeStore::Open(dir_ + "/volumes");
    auto vol = (*v)->OpenVolume("v");
    if (!vol.ok()) ::_exit(2);
    std::vector<uint8_t> a(1000, 0xaa), b(1000, 0xbb);
    if (!(*vol)->Write(10, a).ok() || !(*vol)->Flush().ok()) ::_exit(3);
    if (!(*vol)->Write(5 * kCluster + 10, b).ok()) ::_exit(4);
    ::_exit(0);  // no destructor, no flush: as if the process died here
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  auto v = store->OpenVolume("v");
  ASSERT_TRUE(v.ok()) << v.status().ToString();  // the child's lock died with it
  auto got = Read(**v, 0, 16 * kCluster);
  EXPECT_EQ(got[10], 0xaa);
  EXPECT_EQ(got[1009], 0xaa);
  EXPECT_EQ(got[1010], golden[1010]);
  // The unflushed cluster: its map entry was never persisted, so it reads as the base, whole.
  EXPECT_TRUE(std::equal(got.begin() + 5 * kCluster, got.begin() + 6 * kCluster,
                         golden.begin() + 5 * kCluster));
  EXPECT_EQ(ReadFile(base), golden);
}

TEST_F(VolumeTest, StoreIsCrashSafeAndNamesAreChecked) {
  auto base = MakeBase("golden.raw", 1 << 20, 1 << 20);
  {
    auto store = Store();
    ASSERT_TRUE(store->Create({.name = "a", .base_path = base}).ok());
    EXPECT_EQ(store->Create({.name = "a", .base_path = base}).status().code(), Code::kAlreadyExists);
    for (const char* bad : {"", ".hidden", "a/b", "..", "x y", "new\n"}) {
      EXPECT_EQ(store->Create({.name = bad, .base_path = base}).status().code(),
                Code::kInvalidArgument)
          << bad;
    }
    EXPECT_EQ(store->Create({.name = "c", .base_path = base, .cluster_size = 1000}).status().code(),
              Code::kInvalidArgument);
    EXPECT_EQ(store->Create({.name = "m", .base_path = dir_ + "/missing"}).status().code(),
              Code::kNotFound);
  }
  // What a crash mid-create and mid-delete leaves: hidden directories, never listed, swept on open.
  ASSERT_EQ(::mkdir((dir_ + "/volumes/.new-b-1234").c_str(), 0750), 0);
  std::ofstream(dir_ + "/volumes/.new-b-1234/overlay") << "x";
  ASSERT_EQ(::mkdir((dir_ + "/volumes/.del-z-5678").c_str(), 0750), 0);
  auto store = Store();
  struct stat st{};
  EXPECT_NE(::stat((dir_ + "/volumes/.new-b-1234").c_str(), &st), 0);
  EXPECT_NE(::stat((dir_ + "/volumes/.del-z-5678").c_str(), &st), 0);
  auto list = store->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "a");
  // Delete refuses while the volume is open, then works.
  {
    auto v = store->OpenVolume("a");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(store->OpenVolume("a").status().code(), Code::kConflict);
    EXPECT_EQ(store->Delete("a").code(), Code::kConflict);
  }
  EXPECT_TRUE(store->Delete("a").ok());
  EXPECT_EQ(store->Delete("a").code(), Code::kNotFound);
  EXPECT_EQ(store->Get("a").status().code(), Code::kNotFound);
  EXPECT_TRUE(store->List()->empty());
}

TEST_F(VolumeTest, CloneIsSparseWhateverTheSize) {
  // A 64 GiB golden image (sparse): the clone's files hold no data blocks.
  auto base = MakeBase("huge.raw", 64ull << 30, 4096);
  auto store = Store();
  auto info = store->Create({.name = "huge", .base_path = base});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  struct stat st{};
  for (const char* f : {"overlay", "map"}) {
    ASSERT_EQ(::stat((dir_ + "/volumes/huge/" + f).c_str(), &st), 0);
    EXPECT_EQ(st.st_blocks, 0) << f;
  }
  EXPECT_EQ(info->meta.size, 64ull << 30);
}

TEST_F(VolumeTest, TwoClonesAreIndependent) {
  auto base = MakeBase("golden.raw", 1 << 20, 1 << 20);
  auto store = Store();
  ASSERT_TRUE(store->Create({.name = "one", .base_path = base}).ok());
  ASSERT_TRUE(store->Create({.name = "two", .base_path = base}).ok());
  auto one = std::move(*store->OpenVolume("one"));
  auto two = std::move(*store->OpenVolume("two"));
  std::vector<uint8_t> d(4096, 0x11);
  ASSERT_TRUE(one->Write(8192, d).ok());
  EXPECT_EQ(Read(*one, 8192, 4096), d);
  EXPECT_EQ(Read(*two, 8192, 4096),
            std::vector<uint8_t>(base_bytes_.begin() + 8192, base_bytes_.begin() + 12288));
}

TEST_F(VolumeTest, ChangedGoldenImageIsRefused) {
  auto base = MakeBase("golden.raw", 1 << 20, 1 << 20);
  auto store = Store();
  ASSERT_TRUE(store->Create({.name = "v", .base_path = base}).ok());
  // Someone rewrites the golden image in place (through the hard link's shared inode).
  int fd = ::open(base.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "x", 1, 0), 1);
  struct timespec ts[2] = {{0, UTIME_NOW}, {1, 0}};
  ::futimens(fd, ts);
  ::close(fd);
  EXPECT_EQ(store->OpenVolume("v").status().code(), Code::kCorruption);
}

TEST_F(VolumeTest, Qcow2GoldenImage) {
  if (std::system("command -v qemu-img >/dev/null 2>&1") != 0) GTEST_SKIP() << "no qemu-img";
  auto raw = MakeBase("golden.raw", 2 << 20, 1 << 20, 9);
  const std::string q = dir_ + "/golden.qcow2";
  ASSERT_EQ(std::system(("qemu-img convert -f raw -O qcow2 '" + raw + "' '" + q + "'").c_str()), 0);
  auto store = Store();
  auto info = store->Create({.name = "q", .base_path = q});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->meta.base_format, "qcow2");
  auto v = std::move(*store->OpenVolume("q"));
  EXPECT_EQ(Read(*v, 0, 2 << 20), ReadFile(raw));
  // The qcow2's unallocated clusters show as holes.
  auto e = v->BlockStatus(1 << 20, 1 << 20);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->zero);
}

TEST(VolumeMetaTest, RoundTripAndDamage) {
  VolumeMeta m{.size = 123456789, .cluster_size = 65536, .base = "base", .base_format = "qcow2",
               .base_file_size = 42, .base_mtime_ns = 7, .created_unix = 9};
  auto back = ParseVolumeMeta(FormatVolumeMeta(m));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->size, m.size);
  EXPECT_EQ(back->base_format, "qcow2");
  EXPECT_EQ(back->base_mtime_ns, 7);
  EXPECT_FALSE(ParseVolumeMeta("size=1\nbase=b\n").ok());  // no format line
  EXPECT_FALSE(ParseVolumeMeta("format=ingot-os-volume-1\nsize=x\nbase=b\n").ok());
  EXPECT_FALSE(ParseVolumeMeta("format=ingot-os-volume-1\nsize=10\nbase=b\ncluster_size=3000\n").ok());
}

TEST(ExportRuleTest, AddressLists) {
  ExportRule r{.attached = true, .allow = {"10.0.0.5", "192.168.1.0/24", "fd00::/8"}};
  EXPECT_TRUE(AddressAllowed(r, "10.0.0.5"));
  EXPECT_FALSE(AddressAllowed(r, "10.0.0.6"));
  EXPECT_TRUE(AddressAllowed(r, "192.168.1.200"));
  EXPECT_FALSE(AddressAllowed(r, "192.168.2.1"));
  EXPECT_TRUE(AddressAllowed(r, "fd12::1"));
  EXPECT_FALSE(AddressAllowed(r, "fe80::1"));
  EXPECT_FALSE(AddressAllowed(r, "not-an-address"));
  EXPECT_FALSE(AddressAllowed(ExportRule{.attached = true}, "127.0.0.1"));  // empty list: nobody
  EXPECT_TRUE(AddressAllowed(ExportRule{.allow = {"0.0.0.0/0"}}, "8.8.8.8"));
  auto back = ParseExportRule(FormatExportRule(r));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->attached);
  EXPECT_EQ(back->allow, r.allow);
  EXPECT_FALSE(CheckAllowList({"10.0.0.0/33"}).ok());
  EXPECT_FALSE(CheckAllowList({"example.com"}).ok());
  EXPECT_TRUE(CheckAllowList({"::1", "127.0.0.1/8"}).ok());
}

TEST(ExportRuleTest, InitiatorLists) {
  // A rule without initiators is written as before, so older versions read it unchanged.
  ExportRule old{.attached = true, .allow = {"10.0.0.5"}};
  EXPECT_EQ(FormatExportRule(old), "attached=true\nallow=10.0.0.5\n");
  EXPECT_TRUE(InitiatorAllowed(old, "iqn.2000-01.any:one"));
  ExportRule r{.attached = true, .allow = {"10.0.0.5"},
               .initiators = {"iqn.2000-01.test:a", "iqn.2000-01.test:b"}};
  EXPECT_TRUE(InitiatorAllowed(r, "iqn.2000-01.test:a"));
  EXPECT_TRUE(InitiatorAllowed(r, "IQN.2000-01.TEST:B"));
  EXPECT_FALSE(InitiatorAllowed(r, "iqn.2000-01.test:c"));
  auto back = ParseExportRule(FormatExportRule(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->initiators, r.initiators);
  EXPECT_EQ(back->allow, r.allow);
  auto legacy = ParseExportRule("attached=false\nallow=10.0.0.0/8\n");
  ASSERT_TRUE(legacy.ok());
  EXPECT_TRUE(legacy->initiators.empty());
  EXPECT_TRUE(CheckInitiatorList({"iqn.1993-08.org.debian:01:abc", "eui.02004567A425678D"}).ok());
  EXPECT_FALSE(CheckInitiatorList({"host1"}).ok());
  EXPECT_FALSE(CheckInitiatorList({"iqn.x y"}).ok());
}

}  // namespace
}  // namespace ingot::deploy
