#include "build/disk.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ingot::build {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kEpoch = 1700000000;

class DiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v mke2fs >/dev/null 2>&1 && command -v debugfs >/dev/null 2>&1") !=
        0) {
      GTEST_SKIP() << "mke2fs/debugfs (e2fsprogs) not installed";
    }
    dir_ = fs::temp_directory_path() /
           ("ingot-disk-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "root/etc/sub");
    std::ofstream(dir_ / "root/etc/hostname") << "ingot\n";
    std::ofstream(dir_ / "root/etc/sub/a") << std::string(10000, 'a');
    fs::create_symlink("hostname", dir_ / "root/etc/link");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Every file of the tree gets atime `atime` (and, by that change, a fresh ctime).
  void SetAtimes(int64_t atime) {
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "root")) {
      struct timespec times[2] = {{static_cast<time_t>(atime), 123}, {kEpoch - 10, 0}};
      ASSERT_EQ(utimensat(AT_FDCWD, e.path().c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
    }
  }
  // mke2fs -d the tree into `name` the way the packaging script does.
  std::string Make(const std::string& name) {
    std::string image = (dir_ / name).string();
    std::string cmd = "E2FSPROGS_FAKE_TIME=" + std::to_string(kEpoch) +
                      " mke2fs -q -F -t ext4 -b 4096 -U 6c1d1e4e-5a0b-4d5f-9f1e-0123456789ab"
                      " -E hash_seed=6c1d1e4e-5a0b-4d5f-9f1e-0123456789ab,root_owner=0:0 -d '" +
                      (dir_ / "root").string() + "' '" + image + "' 16M >/dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return image;
  }
  static std::string Bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::string Debugfs(const std::string& image, const std::string& request) {
    std::string out = (dir_ / "debugfs.out").string();
    std::string cmd = "debugfs -R '" + request + "' '" + image + "' > '" + out + "' 2>/dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    return Bytes(out);
  }
  fs::path dir_;
};

TEST_F(DiskTest, TwoImagesOfTheSameTreeAreIdenticalOnceNormalized) {
  SetAtimes(kEpoch + 1000);
  std::string a = Make("a.ext4");
  SetAtimes(kEpoch + 2000);  // what reading the tree between two builds does
  std::string b = Make("b.ext4");
  // The test can fail: without the normalization the two differ (atimes, and ctimes).
  ASSERT_NE(Bytes(a), Bytes(b));
  ASSERT_TRUE(NormalizeExt4Times(a, kEpoch).ok());
  ASSERT_TRUE(NormalizeExt4Times(b, kEpoch).ok());
  EXPECT_TRUE(Bytes(a) == Bytes(b)) << "the normalized images differ";
  // Every time of a file is the epoch now (mtime was older and is kept); the fs is still clean.
  std::string stat = Debugfs(a, "stat /etc/hostname");
  EXPECT_NE(stat.find("ctime: 0x6553f100:00000000"), std::string::npos) << stat;
  EXPECT_NE(stat.find("atime: 0x6553f100:00000000"), std::string::npos) << stat;
  EXPECT_NE(stat.find("crtime: 0x6553f100:00000000"), std::string::npos) << stat;
  EXPECT_NE(stat.find("mtime: 0x6553f0f6"), std::string::npos) << stat;
  EXPECT_EQ(Debugfs(a, "cat /etc/sub/a"), std::string(10000, 'a'));
  std::string fsck = "e2fsck -fn '" + a + "' >/dev/null 2>&1";
  EXPECT_EQ(std::system(fsck.c_str()), 0) << "e2fsck finds the normalized image inconsistent";
}

TEST_F(DiskTest, RefusesWhatIsNotAnExtFileSystem) {
  std::string junk = (dir_ / "junk").string();
  std::ofstream(junk) << std::string(1 << 20, 'x');
  Status s = NormalizeExt4Times(junk, kEpoch);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("opening the root file system image"), std::string::npos);
  EXPECT_FALSE(NormalizeExt4Times((dir_ / "missing").string(), kEpoch).ok());
}

}  // namespace
}  // namespace ingot::build
