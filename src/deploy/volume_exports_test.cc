// The store's volumes as NBD exports: access rules, one shared open volume per name, closing on
// the last connection, and qemu-io writing through nbd::Server into a volume.
#include "deploy/volume_exports.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "nbd/server.h"

namespace ingot::deploy {
namespace {

class VolumeExportsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nbd-exports-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    base_ = dir_ + "/golden.raw";
    std::vector<uint8_t> d(1 << 20);
    for (size_t i = 0; i < d.size(); ++i) d[i] = uint8_t(i * 3);
    int fd = ::open(base_.c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_EQ(::write(fd, d.data(), d.size()), ssize_t(d.size()));
    ASSERT_EQ(::ftruncate(fd, 4 << 20), 0);
    ::close(fd);
    store_ = std::move(*VolumeStore::Open(dir_ + "/volumes"));
    ASSERT_TRUE(store_->Create({.name = "vol", .base_path = base_}).ok());
    exports_ = std::make_unique<VolumeExports>(*store_);
  }
  void TearDown() override {
    exports_.reset();
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::string dir_, base_;
  std::unique_ptr<VolumeStore> store_;
  std::unique_ptr<VolumeExports> exports_;
};

TEST_F(VolumeExportsTest, AccessRules) {
  // Detached: even an allowed client is told it is not attached; others learn nothing.
  ASSERT_TRUE(store_->SetExportRule("vol", {.attached = false, .allow = {"127.0.0.1"}}).ok());
  EXPECT_EQ(exports_->Resolve("vol", "127.0.0.1").status().code(), Code::kUnavailable);
  EXPECT_EQ(exports_->Resolve("vol", "10.1.1.1").status().code(), Code::kNotFound);
  EXPECT_EQ(exports_->Resolve("nope", "127.0.0.1").status().code(), Code::kNotFound);
  EXPECT_EQ(exports_->Resolve("../vol", "127.0.0.1").status().code(), Code::kNotFound);
  EXPECT_TRUE(exports_->List("127.0.0.1").empty());
  ASSERT_TRUE(store_->SetExportRule("vol", {.attached = true, .allow = {"127.0.0.0/8"}}).ok());
  auto a = exports_->Resolve("vol", "127.0.0.1");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = exports_->Resolve("vol", "127.0.0.2");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->get(), b->get());  // one open volume, shared
  EXPECT_EQ(exports_->List("127.0.0.1"), std::vector<std::string>{"vol"});
  EXPECT_TRUE(exports_->List("10.0.0.1").empty());
  EXPECT_EQ(store_->Delete("vol").code(), Code::kConflict);  // open
  a->reset();
  b->reset();
  EXPECT_TRUE(store_->Delete("vol").ok());  // closed with its last user
}

TEST_F(VolumeExportsTest, IscsiTargetsCheckInitiatorNames) {
  ASSERT_TRUE(store_->SetExportRule("vol", {.attached = true, .allow = {"127.0.0.1"},
                                            .initiators = {"iqn.2000-01.test:owner"}})
                  .ok());
  EXPECT_EQ(exports_->ResolveTarget("vol", "iqn.2000-01.test:other", "127.0.0.1").status().code(),
            Code::kNotFound);
  EXPECT_EQ(exports_->ResolveTarget("vol", "iqn.2000-01.test:owner", "10.0.0.1").status().code(),
            Code::kNotFound);
  auto t = exports_->ResolveTarget("vol", "iqn.2000-01.test:owner", "127.0.0.1");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto n = exports_->Resolve("vol", "127.0.0.1");  // NBD: no initiator names, the address decides
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(t->get(), n->get());  // one open volume for both protocols
  EXPECT_EQ(exports_->ListTargets("iqn.2000-01.test:owner", "127.0.0.1"),
            std::vector<std::string>{"vol"});
  EXPECT_TRUE(exports_->ListTargets("iqn.2000-01.test:other", "127.0.0.1").empty());
  ASSERT_TRUE(store_->SetExportRule("vol", {.attached = false, .allow = {"127.0.0.1"}}).ok());
  EXPECT_EQ(exports_->ResolveTarget("vol", "iqn.2000-01.test:other", "127.0.0.1").status().code(),
            Code::kUnavailable);
}

TEST_F(VolumeExportsTest, ServedToQemu) {
  if (std::system("command -v qemu-io >/dev/null 2>&1") != 0) GTEST_SKIP() << "no qemu-io";
  ASSERT_TRUE(store_->SetExportRule("vol", {.attached = true, .allow = {"127.0.0.1"}}).ok());
  nbd::Server server({.port = 0}, *exports_);
  ASSERT_TRUE(server.Start().ok());
  const std::string uri = "nbd://127.0.0.1:" + std::to_string(server.port()) + "/vol";
  ASSERT_EQ(std::system(("qemu-io -f raw -c 'write -P 0x61 4096 8192' -c 'write -z 65536 131072' '" +
                         uri + "' >/dev/null")
                            .c_str()),
            0);
  // Read back over NBD: the written clusters come from the overlay and the rest from the golden
  // image, both by sendfile (a raw golden image maps straight to its file).
  ASSERT_EQ(std::system(("qemu-io -f raw -r -c 'read -P 0x61 4096 8192' -c 'read -P 0 65536 131072' '" +
                         uri + "' | grep -c '^read' | grep -qx 2")
                            .c_str()),
            0);
  ASSERT_EQ(std::system(("qemu-img convert -f raw -O raw '" + uri + "' '" + dir_ + "/out.raw'").c_str()),
            0);
  {
    std::vector<uint8_t> out(1 << 20);
    int o = ::open((dir_ + "/out.raw").c_str(), O_RDONLY);
    ASSERT_EQ(::pread(o, out.data(), out.size(), 0), ssize_t(out.size()));
    ::close(o);
    EXPECT_EQ(out[4096], 0x61);
    EXPECT_EQ(out[300000], uint8_t(300000 * 3));
    EXPECT_EQ(out[65536 + 100], 0);
  }
  // The last connection closed the volume, which flushed: it can be reopened from disk.
  for (int i = 0; i < 100; ++i) {
    if (server.stats().active == 0 && store_->OpenVolume("vol").ok()) break;
    usleep(10000);
  }
  server.Stop();
  auto v = store_->OpenVolume("vol");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  std::vector<uint8_t> got(256 * 1024);
  ASSERT_TRUE((*v)->Read(0, got).ok());
  EXPECT_EQ(got[4095], uint8_t(4095 * 3));
  EXPECT_EQ(got[4096], 0x61);
  EXPECT_EQ(got[4096 + 8191], 0x61);
  EXPECT_EQ(got[4096 + 8192], uint8_t((4096 + 8192) * 3));
  EXPECT_EQ(got[65536], 0);
  EXPECT_EQ(got[65536 + 131071], 0);
  EXPECT_EQ(got[65536 + 131072], uint8_t((65536 + 131072) * 3));
  // The golden image is untouched.
  std::vector<uint8_t> g(8192);
  int fd = ::open(base_.c_str(), O_RDONLY);
  ASSERT_EQ(::pread(fd, g.data(), g.size(), 4096), 8192);
  ::close(fd);
  EXPECT_EQ(g[0], uint8_t(4096 * 3));
}

}  // namespace
}  // namespace ingot::deploy
