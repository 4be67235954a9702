// The native engine against a real disk: a GPT image with an EFI (vfat) partition and an ext4
// root made by sgdisk, mkfs.vfat and mke2fs -d, cloned as an OS volume; results read back with
// debugfs and checked with e2fsck from the volume's bytes.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "deploy/guestfish/engine.h"
#include "deploy/volume_store.h"

namespace ingot::deploy::guestfish {
namespace {

std::string Sh(const std::string& cmd, int* rc = nullptr, bool with_stderr = true) {
  std::string out;
  FILE* p = ::popen((with_stderr ? cmd + " 2>&1" : cmd).c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = ::pclose(p);
  if (rc) *rc = WEXITSTATUS(status);
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool Have(const char* tool) { return Sh(std::string("command -v ") + tool).size() > 0; }

class NativeEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* t : {"sgdisk", "mke2fs", "debugfs", "e2fsck", "mkfs.vfat"}) {
      if (!Have(t)) GTEST_SKIP() << t << " is not installed";
    }
    char tmpl[] = "/tmp/guestfish-native-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // The golden image's root tree.
    std::string root = dir_ + "/tree";
    int rc = 0;
    Sh("mkdir -p " + root + "/etc/sysconfig/network-scripts " + root + "/var/lib/app/data " + root +
           "/boot/efi && echo golden > " + root + "/etc/hostname && echo old > " + root +
           "/etc/motd && printf 'ID=rhel\\nVERSION_ID=\"8.6\"\\nPRETTY_NAME=\"Red Hat Enterprise "
           "Linux 8.6\"\\n' > " +
           root + "/etc/os-release && for i in $(seq 1 40); do echo $i > " + root +
           "/var/lib/app/data/f$i; done",
       &rc);
    ASSERT_EQ(rc, 0);
    golden_ = dir_ + "/golden.img";
    std::string out = Sh("truncate -s 64M " + golden_ + " && sgdisk -n 1:2048:+8M -t 1:ef00 " +
                             "-n 2:0:0 -t 2:8300 " + golden_,
                         &rc);
    ASSERT_EQ(rc, 0) << out;
    root_offset_ = 18432ull * 512;
    root_length_ = (131038ull - 18432 + 1) * 512;
    out = Sh("mke2fs -q -t ext4 -F -E offset=" + std::to_string(root_offset_) + " -d " + root +
                 " " + golden_ + " " + std::to_string(root_length_ / 1024) + "k",
             &rc);
    ASSERT_EQ(rc, 0) << out;
    out = Sh("mkfs.vfat --offset 2048 " + golden_ + " 8192", &rc);
    ASSERT_EQ(rc, 0) << out;
    golden_bytes_ = ReadAll(golden_);
    auto store = VolumeStore::Open(dir_ + "/volumes");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    CloneRequest req;
    req.name = "node1";
    req.base_path = golden_;
    auto info = store_->Create(req);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    auto vol = store_->OpenVolume("node1");
    ASSERT_TRUE(vol.ok()) << vol.status().ToString();
    volume_ = std::move(*vol);
  }
  void TearDown() override {
    volume_.reset();
    store_.reset();
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  Result<RunReport> RunNative(const std::string& text) {
    return guestfish::Run(*volume_, Script{"plan", text}, Engine::kNative);
  }

  // The root file system as the volume now holds it, in a file of its own.
  std::string DumpRoot() {
    std::string path = dir_ + "/root.img";
    std::string bytes(root_length_, '\0');
    Status s =
        volume_->Read(root_offset_, {reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()});
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return path;
  }
  std::string Debugfs(const std::string& image, const std::string& request) {
    return Sh("debugfs -R '" + request + "' " + image + " 2>&1 | grep -av '^debugfs [0-9]'",
              nullptr, false);
  }
  void ExpectClean(const std::string& image) {
    int rc = 0;
    std::string out = Sh("e2fsck -fn " + image, &rc);
    EXPECT_EQ(rc, 0) << out;
  }

  std::string dir_, golden_, golden_bytes_;
  uint64_t root_offset_ = 0, root_length_ = 0;
  std::unique_ptr<VolumeStore> store_;
  std::unique_ptr<OsVolume> volume_;
};

TEST_F(NativeEngineTest, PersonalisesTheRootFileSystem) {
  auto report = RunNative(
      "# personalise\n"
      "list-filesystems\n"
      "mount /dev/sda2 /\n"
      "write /etc/hostname \"node1.example.com\\n\"\n"
      "upload -<<END /etc/sysconfig/network-scripts/ifcfg-eth0\n"
      "DEVICE=eth0\n"
      "IPADDR=10.0.0.5\n"
      "END\n"
      "mkdir-p /opt/isdeploy/scripts\n"
      "ln-s /etc/hostname /opt/isdeploy/host-link\n"
      "ln-s ../../../etc /opt/isdeploy/scripts\n"
      "chmod 0600 /etc/sysconfig/network-scripts/ifcfg-eth0\n"
      "chown 1000 1001 /opt/isdeploy\n"
      "write /etc/shadow-extra \"root:s3cret-hash\"\n"
      "write-append /etc/motd \"new\\n\"\n"
      "rm /etc/os-release\n"
      "rm-rf /var/lib/app\n"
      "-rm /does/not/exist\n"
      "touch /etc/empty\n"
      "cp /etc/motd /opt/motd.copy\n"
      "mv /opt/motd.copy /opt/isdeploy/motd\n"
      "cat /etc/hostname\n"
      "exists /etc/os-release\n"
      "is-dir /opt/isdeploy/scripts/etc followsymlinks:true\n"
      "is-dir /opt/isdeploy/scripts/etc\n"
      "umount /\n");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->used, Engine::kNative);
  const std::string& log = report->log;
  EXPECT_NE(log.find("/dev/sda1: vfat\n/dev/sda2: ext4\n"), std::string::npos) << log;
  EXPECT_NE(log.find("node1.example.com\n"), std::string::npos) << log;
  EXPECT_NE(log.find("> exists /etc/os-release\nfalse\n"), std::string::npos) << log;
  EXPECT_NE(log.find("> is-dir /opt/isdeploy/scripts/etc followsymlinks:true\ntrue\n"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("> is-dir /opt/isdeploy/scripts/etc\nfalse\n"), std::string::npos) << log;
  EXPECT_NE(log.find("No such file or directory"), std::string::npos) << log;  // the "-rm"
  EXPECT_EQ(log.find("s3cret"), std::string::npos) << log;
  EXPECT_EQ(log.find("IPADDR"), std::string::npos) << log;

  std::string img = DumpRoot();
  ExpectClean(img);
  EXPECT_EQ(Debugfs(img, "cat /etc/hostname"), "node1.example.com\n");
  EXPECT_EQ(Debugfs(img, "cat /etc/sysconfig/network-scripts/ifcfg-eth0"),
            "DEVICE=eth0\nIPADDR=10.0.0.5\n");
  EXPECT_EQ(Debugfs(img, "cat /etc/motd"), "old\nnew\n");
  EXPECT_EQ(Debugfs(img, "cat /opt/isdeploy/motd"), "old\nnew\n");
  std::string st = Debugfs(img, "stat /etc/sysconfig/network-scripts/ifcfg-eth0");
  EXPECT_NE(st.find("Mode:  0600"), std::string::npos) << st;
  st = Debugfs(img, "stat /opt/isdeploy");
  EXPECT_NE(st.find("User:  1000   Group:  1001"), std::string::npos) << st;
  EXPECT_NE(st.find("Mode:  0755"), std::string::npos) << st;
  st = Debugfs(img, "stat /etc/empty");
  EXPECT_NE(st.find("Mode:  0644"), std::string::npos) << st;
  EXPECT_NE(st.find("Size: 0"), std::string::npos) << st;
  st = Debugfs(img, "stat /opt/isdeploy/host-link");
  EXPECT_NE(st.find("Fast link dest: \"/etc/hostname\""), std::string::npos) << st;
  // ln -s into an existing directory puts the link inside it, named after the target.
  st = Debugfs(img, "stat /opt/isdeploy/scripts/etc");
  EXPECT_NE(st.find("Fast link dest: \"../../../etc\""), std::string::npos) << st;
  EXPECT_NE(Debugfs(img, "stat /etc/os-release").find("File not found"), std::string::npos);
  EXPECT_NE(Debugfs(img, "stat /var/lib/app").find("File not found"), std::string::npos);
  EXPECT_NE(Debugfs(img, "stat /opt/motd.copy").find("File not found"), std::string::npos);

  // The golden image is untouched: every write went to the volume's overlay.
  EXPECT_TRUE(ReadAll(golden_) == golden_bytes_);
  EXPECT_GT(volume_->overlay_bytes(), 0u);
}

TEST_F(NativeEngineTest, AFatalErrorNamesTheLineAndKeepsEarlierWork) {
  auto report = RunNative(
      "mount /dev/sda2 /\n"
      "write /etc/hostname \"first\\n\"\n"
      "mkdir /nonexistent/dir\n"
      "write /etc/hostname \"never\\n\"\n");
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(report.status().message(),
            "plan line 3: mkdir: /nonexistent/dir: No such file or directory");
  std::string img = DumpRoot();
  ExpectClean(img);
  EXPECT_EQ(Debugfs(img, "cat /etc/hostname"), "first\n");
}

TEST_F(NativeEngineTest, WhatNeedsGuestfishLeavesTheVolumeUntouched) {
  // A command that runs in the guest.
  auto r = RunNative("mount /dev/sda2 /\nwrite /etc/hostname x\nsh \"hostnamectl\"\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnsupported);
  EXPECT_NE(r.status().message().find("plan line 3: sh"), std::string::npos)
      << r.status().message();
  // A file system the native engine does not write: found while running, after a write.
  r = RunNative("mount /dev/sda2 /\nwrite /etc/hostname x\nmount /dev/sda1 /boot/efi\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnsupported);
  EXPECT_NE(r.status().message().find("vfat"), std::string::npos) << r.status().message();
  EXPECT_EQ(volume_->overlay_bytes(), 0u);
  std::string img = DumpRoot();
  EXPECT_EQ(Debugfs(img, "cat /etc/hostname"), "golden\n");
}

TEST_F(NativeEngineTest, InspectionAndRefusals) {
  auto r = RunNative(
      "inspect-os\ninspect-get-distro /dev/sda2\ninspect-get-major-version /dev/sda2\n"
      "inspect-get-minor-version /dev/sda2\ninspect-get-hostname /dev/sda2\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->log.find("> inspect-os\n/dev/sda2\n"), std::string::npos) << r->log;
  EXPECT_NE(r->log.find("rhel\n"), std::string::npos) << r->log;
  EXPECT_NE(r->log.find("\n8\n"), std::string::npos) << r->log;
  EXPECT_NE(r->log.find("\n6\n"), std::string::npos) << r->log;
  EXPECT_NE(r->log.find("golden\n"), std::string::npos) << r->log;
  // Commands made up by a local command's output are never run.
  r = RunNative("mount /dev/sda2 /\n<!echo touch /x\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kRefused);
  EXPECT_EQ(r.status().message().rfind("plan line 2: ", 0), 0u) << r.status().message();
  // Paths escaping nothing: symlinks resolve inside the guest, so ".." stops at its root.
  r = RunNative("mount /dev/sda2 /\nln-s ../../../../etc /up\nwrite /up/x y\ncat /up/x\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string img = DumpRoot();
  EXPECT_EQ(Debugfs(img, "cat /etc/x"), "y\n");  // debugfs ends its output with a newline
  ExpectClean(img);
}

// HPE's ESXi scripts: download a file, change it with a local command, upload it back. The
// command runs in the jail (local_command.h): nobody, no host files, a private /tmp.
TEST_F(NativeEngineTest, LocalCommandsRunInTheJail) {
  if (::geteuid() != 0) GTEST_SKIP() << "the jail needs root";
  const std::string marker = dir_ + "/touched-by-the-jail";
  auto r = RunNative("mount /dev/sda2 /\ndownload /etc/hostname h\n!sed -i s/golden/edited/ h\n"
                     "!id -u; touch " + marker + " /tmp/x; ls /tmp; ls /\n"
                     "upload h /etc/hostname2\ncat /etc/hostname | tr a-z A-Z\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->log.find("\n65534\n"), std::string::npos) << r->log;
  EXPECT_NE(r->log.find("GOLDEN\n"), std::string::npos) << r->log;
  EXPECT_NE(r->log.find("\nx\n"), std::string::npos) << r->log;  // its own /tmp
  EXPECT_EQ(r->log.find("home"), std::string::npos) << r->log;   // no host root
  EXPECT_NE(::access(marker.c_str(), F_OK), 0);                  // nothing of the host written
  EXPECT_EQ(Debugfs(DumpRoot(), "cat /etc/hostname2"), "edited\n");

  // Host files are not there; a failing command stops the script with its line.
  r = RunNative("mount /dev/sda2 /\n!cat /etc/shadow\nwrite /after x\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "plan line 2: local command: the command ended with exit code 1");
  // A symlink the command leaves is removed (a later upload, run as root, cannot follow it).
  r = RunNative("mount /dev/sda2 /\n-!ln -s /etc/passwd p\nupload p /leak\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 3: upload: p:"), std::string::npos)
      << r.status().message();
  r = RunNative("!ln -s /etc/passwd p\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "plan line 1: local command: the command left what is not a "
                                  "regular file or directory (removed): p");
  // No network.
  r = RunNative("!grep -c : /proc/net/dev\n");  // one interface: lo
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->log.find("\n1\n"), std::string::npos) << r->log;
}

TEST_F(NativeEngineTest, ManyFilesGrowDirectoriesCleanly) {
  std::string text = "mount /dev/sda2 /\nmkdir /many\n";
  for (int i = 0; i < 300; ++i) {
    text += "write /many/file-with-a-long-name-" + std::to_string(i) + " \"" + std::to_string(i) +
            "\"\n";
  }
  text += "rm /many/file-with-a-long-name-7\nupload -<<E /big\n";
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + "\n";
  text += "E\n";
  auto r = RunNative(text);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string img = DumpRoot();
  ExpectClean(img);
  EXPECT_EQ(Debugfs(img, "cat /many/file-with-a-long-name-299"), "299\n");
  EXPECT_NE(Debugfs(img, "stat /many/file-with-a-long-name-7").find("File not found"),
            std::string::npos);
  EXPECT_EQ(Debugfs(img, "cat /big").size(), 208890u);
}

// The same script through the real guestfish on a second clone: both root file systems must read
// back alike. Slow (the libguestfs appliance boots, under TCG without KVM: 20-80 s), so it runs
// only with INGOT_TEST_GUESTFISH=1; tests/integration/guestfish_engines.sh covers it end to end.
TEST_F(NativeEngineTest, GuestfishEngineAgrees) {
  if (!std::getenv("INGOT_TEST_GUESTFISH")) GTEST_SKIP() << "set INGOT_TEST_GUESTFISH=1";
  if (!Have("guestfish")) GTEST_SKIP() << "guestfish is not installed";
  const std::string text =
      "mount /dev/sda2 /\n"
      "write /etc/hostname \"node1\\n\"\n"
      "upload -<<END /etc/sysconfig/network-scripts/ifcfg-eth0\nDEVICE=eth0\nEND\n"
      "mkdir-p /opt/a/b\n"
      "ln-s ../../etc /opt/a/b\n"
      "chmod 0640 /etc/sysconfig/network-scripts/ifcfg-eth0\n"
      "touch /opt/t\n"
      "rm /etc/motd\n"
      "echo done\n";
  auto native = guestfish::Run(*volume_, Script{"plan", text}, Engine::kNative);
  ASSERT_TRUE(native.ok()) << native.status().ToString();
  std::string native_img = DumpRoot();
  std::rename(native_img.c_str(), (dir_ + "/native.img").c_str());
  CloneRequest req;
  req.name = "node2";
  req.base_path = golden_;
  ASSERT_TRUE(store_->Create(req).ok());
  auto other = store_->OpenVolume("node2");
  ASSERT_TRUE(other.ok());
  volume_ = std::move(*other);
  auto gf = guestfish::Run(*volume_, Script{"plan", text}, Engine::kGuestfish);
  ASSERT_TRUE(gf.ok()) << gf.status().ToString();
  EXPECT_EQ(gf->used, Engine::kGuestfish);
  EXPECT_NE(gf->log.find("> echo done\ndone\n"), std::string::npos) << gf->log;
  std::string gf_img = DumpRoot();
  ExpectClean(gf_img);
  for (const char* path : {"/etc/hostname", "/etc/sysconfig/network-scripts/ifcfg-eth0", "/opt/a",
                           "/opt/a/b", "/opt/a/b/etc", "/opt/t", "/etc/motd"}) {
    std::string req_stat = std::string("stat ") + path;
    auto facts = [&](const std::string& img) {
      std::string st = Debugfs(img, req_stat), out;
      for (const char* key : {"Type: ", "Mode: ", "User: ", "Size: ", "Fast link dest: "}) {
        size_t at = st.find(key);
        if (at != std::string::npos)
          out += st.substr(at, st.find_first_of("\n ", at + std::strlen(key) + 1) - at) + ";";
      }
      return out + Debugfs(img, std::string("cat ") + path);
    };
    EXPECT_EQ(facts(dir_ + "/native.img"), facts(gf_img)) << path;
  }
  // A failing command in guestfish gets the same message shape.
  auto bad = guestfish::Run(*volume_, Script{"bad", "mount /dev/sda2 /\nmkdir /x/y\n"},
                            Engine::kGuestfish);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "bad line 2: mkdir: /x/y: No such file or directory");
}

}  // namespace
}  // namespace ingot::deploy::guestfish
