// The boot content domain against the real SQLite repository and ISOs made by xorriso: naming
// rules, the layouts detected, the ISO/tree/file/publication use cases and crash repair.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "boot/content_service.h"
#include "boot/layouts.h"
#include "boot/sqlite_content.h"
#include "io/file.h"
#include "io/memory.h"

namespace ingot::boot {
namespace {

bool Sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }
void Write(const std::string& path, const std::string& text) {
  Sh("mkdir -p \"$(dirname '" + path + "')\"");
  std::ofstream(path) << text;
}
std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class ContentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-bootcontent-XXXXXX";
    dir_ = mkdtemp(tmpl);
    if (!Sh("command -v xorriso > /dev/null")) GTEST_SKIP() << "xorriso is not installed";
    Reopen();
  }
  void TearDown() override {
    service_.reset();
    repo_.reset();
    Sh("rm -rf " + dir_);
  }
  void Reopen() {
    service_.reset();
    repo_.reset();
    db_ = *catalog::sqlite::Database::Open(dir_ + "/catalog.db");
    repo_ = *SqliteContentRepository::Open(db_);
    ContentOptions o{.dir = dir_ + "/content", .local_dirs = {dir_ + "/local"}};
    o.check_image = [](const std::string& id) {
      return id == "11111111-2222-3333-4444-555555555555" ? Status::Ok()
                                                          : NotFound("No image " + id);
    };
    service_ = *ContentService::Open(*repo_, o);
    ASSERT_TRUE(service_->Repair().ok());
  }
  // An ISO of the tree `src` (Rock Ridge + Joliet).
  std::string MakeIso(const std::string& src, const std::string& name) {
    std::string iso = dir_ + "/" + name;
    EXPECT_TRUE(Sh("xorriso -as mkisofs -quiet -R -J -o '" + iso + "' '" + src + "' 2>/dev/null"));
    return iso;
  }
  Result<Iso> Upload(const std::string& name, const std::string& path) {
    std::string bytes = ReadAll(path);
    io::StringReader r(bytes);
    return service_->UploadIso(name, r, bytes.size());
  }

  std::string dir_;
  std::shared_ptr<catalog::sqlite::Database> db_;
  std::unique_ptr<SqliteContentRepository> repo_;
  std::unique_ptr<ContentService> service_;
};

TEST(ContentRules, Names) {
  EXPECT_TRUE(CheckIsoName("debian-12.iso").ok());
  EXPECT_TRUE(CheckIsoName("UBUNTU.ISO").ok());
  EXPECT_FALSE(CheckIsoName("debian").ok());
  EXPECT_FALSE(CheckIsoName("../x.iso").ok());
  EXPECT_FALSE(CheckIsoName(".partial-x.iso").ok());
  EXPECT_FALSE(CheckIsoName("a\\b.iso").ok());
  EXPECT_FALSE(CheckTreeName("iso").ok());
  EXPECT_FALSE(CheckTreeName("images").ok());
  EXPECT_TRUE(CheckTreeName("ubuntu").ok());
  EXPECT_TRUE(CheckFilePath(FileSpace::kFiles, "a/b/c.txt").ok());
  EXPECT_FALSE(CheckFilePath(FileSpace::kFiles, "a/../c").ok());
  EXPECT_FALSE(CheckFilePath(FileSpace::kFiles, "a//c").ok());
  EXPECT_FALSE(CheckFilePath(FileSpace::kMicrokernel, "a/c").ok());
  EXPECT_FALSE(CheckPublicationName("11111111-2222-3333-4444-555555555555").ok());
  EXPECT_TRUE(CheckPublicationName("ubuntu-golden").ok());
}

TEST_F(ContentTest, LayoutsAreDetected) {
  struct Case {
    std::vector<std::string> files;
    std::string layout, kernel;
  } cases[] = {
      {{"install.amd/vmlinuz", "install.amd/initrd.gz"}, "debian-installer", "install.amd/vmlinuz"},
      {{"casper/vmlinuz", "casper/initrd"}, "casper", "casper/vmlinuz"},
      {{"images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"}, "rhel", "images/pxeboot/vmlinuz"},
      {{"boot.cfg", "b.b00", "mboot.c32"}, "esxi", "mboot.c32"},
      {{"isolinux/vmlinuz", "isolinux/initrd.img"}, "photon", "isolinux/vmlinuz"},
      {{"bootmgr", "boot/bcd", "boot/boot.sdi", "sources/boot.wim"}, "windows-pe",
       "/files/wimboot"},
      {{"README"}, "", ""},
  };
  int n = 0;
  for (const Case& c : cases) {
    std::string src = dir_ + "/layout" + std::to_string(n);
    for (const std::string& f : c.files) Write(src + "/" + f, "x");
    std::string iso = MakeIso(src, "layout" + std::to_string(n) + ".iso");
    auto stored = Upload("l" + std::to_string(n) + ".iso", iso);
    ASSERT_TRUE(stored.ok()) << stored.status().ToString();
    auto tree = service_->AddTree("os" + std::to_string(n), "1", stored->name);
    ASSERT_TRUE(tree.ok()) << tree.status().ToString();
    EXPECT_EQ(tree->status, TreeStatus::kOk);
    EXPECT_EQ(tree->boot.layout, c.layout) << n;
    EXPECT_EQ(tree->boot.kernel, c.kernel) << n;
    std::string script = RenderIpxe(*tree, "http://h/os/1/", "http://h/iso/x.iso");
    if (c.layout.empty()) {
      EXPECT_EQ(script, "");
    } else {
      EXPECT_EQ(script.rfind("#!ipxe\n", 0), 0u);
      EXPECT_NE(script.find("kernel http://h/"), std::string::npos) << script;
    }
    ++n;
  }
  auto rhel = *service_->GetTree("os2", "1");
  std::string script = RenderIpxe(rhel, "http://h/os2/1/", "");
  EXPECT_NE(script.find("inst.repo=http://h/os2/1/"), std::string::npos) << script;
  EXPECT_NE(script.find("initrd http://h/os2/1/images/pxeboot/initrd.img"), std::string::npos);
}

TEST_F(ContentTest, IsoAndTreeLifecycleSurvivesRestart) {
  Write(dir_ + "/src/install.amd/vmlinuz", "kernel");
  Write(dir_ + "/src/install.amd/initrd.gz", "initrd");
  std::string iso = MakeIso(dir_ + "/src", "d.iso");
  ASSERT_TRUE(Upload("debian.iso", iso).ok());
  EXPECT_EQ(Upload("debian.iso", iso).status().code(), Code::kAlreadyExists);
  // Not an ISO: refused, nothing left behind.
  Write(dir_ + "/notiso", "hello");
  EXPECT_EQ(Upload("bad.iso", dir_ + "/notiso").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(service_->GetIso("bad.iso").status().code(), Code::kNotFound);

  auto tree = service_->AddTree("debian", "12", "debian.iso");
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(service_->AddTree("debian", "12", "debian.iso").status().code(),
            Code::kAlreadyExists);
  EXPECT_EQ(service_->AddTree("x", "1", "missing.iso").status().code(), Code::kNotFound);
  auto mapped = service_->Map({"debian", "12", "install.amd", "vmlinuz"});
  ASSERT_TRUE(mapped);
  EXPECT_EQ(*mapped, (std::vector<std::string>{"iso", "debian.iso", "install.amd", "vmlinuz"}));
  EXPECT_FALSE(service_->Map({"debian", "13", "x"}));
  EXPECT_FALSE(service_->Map({"files", ".partial-x"}));

  Status in_use = service_->DeleteIso("debian.iso").status();
  EXPECT_EQ(in_use.code(), Code::kConflict);
  EXPECT_NE(in_use.message().find("debian/12"), std::string::npos);

  // A copy, and a path under local_dirs (outside them: refused).
  ASSERT_TRUE(service_->CopyIso("debian.iso", "copy.iso").ok());
  Sh("mkdir -p " + dir_ + "/local && cp " + iso + " " + dir_ + "/local/l.iso");
  ASSERT_TRUE(service_->AddIsoFromPath("local.iso", dir_ + "/local/l.iso").ok());
  EXPECT_EQ(service_->AddIsoFromPath("other.iso", iso).status().code(), Code::kPermissionDenied);
  EXPECT_EQ(service_->AddIsoFromPath("other.iso", dir_ + "/local/../d.iso").status().code(),
            Code::kPermissionDenied);

  Reopen();
  EXPECT_TRUE(service_->Map({"debian", "12", "install.amd", "vmlinuz"}));
  EXPECT_EQ(service_->ListIsos()->size(), 3u);
  ASSERT_TRUE(service_->DeleteTree("debian", "12").ok());
  EXPECT_FALSE(service_->Map({"debian", "12", "install.amd", "vmlinuz"}));
  ASSERT_TRUE(service_->DeleteIso("debian.iso").ok());
  struct stat st;
  EXPECT_NE(::stat((dir_ + "/content/iso/debian.iso").c_str(), &st), 0);
}

TEST_F(ContentTest, RepairRemovesHalfAddedIsosAndCompletesTrees) {
  Write(dir_ + "/src/casper/vmlinuz", "k");
  Write(dir_ + "/src/casper/initrd", "i");
  std::string iso = MakeIso(dir_ + "/src", "u.iso");
  ASSERT_TRUE(Upload("ubuntu.iso", iso).ok());
  // A crash: an upload half-written, a tree recorded but never prepared, a file without record.
  ASSERT_TRUE(repo_->InsertIso({.name = "half.iso", .status = IsoStatus::kSaving,
                                .source = "upload"}).ok());
  Write(dir_ + "/content/iso/.partial-abc", "half");
  ASSERT_TRUE(repo_->InsertTree({.id = "t1", .name = "ubuntu", .version = "24.04",
                                 .iso = "ubuntu.iso"}).ok());
  Write(dir_ + "/content/files/stray.txt", "x");
  EXPECT_FALSE(service_->Map({"ubuntu", "24.04", "casper", "vmlinuz"}));

  Reopen();
  EXPECT_TRUE(service_->Map({"ubuntu", "24.04", "casper", "vmlinuz"}));
  auto tree = service_->GetTree("ubuntu", "24.04");
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(tree->status, TreeStatus::kOk);
  EXPECT_EQ(tree->boot.layout, "casper");
  EXPECT_EQ(service_->GetIso("half.iso")->status, IsoStatus::kFailed);
  struct stat st;
  EXPECT_NE(::stat((dir_ + "/content/iso/.partial-abc").c_str(), &st), 0);
  EXPECT_NE(::stat((dir_ + "/content/files/stray.txt").c_str(), &st), 0);
  EXPECT_TRUE(service_->DeleteIso("half.iso").ok());
}

TEST_F(ContentTest, FilesAndPublications) {
  io::StringReader body("vmlinuz bytes");
  auto f = service_->PutFile(FileSpace::kMicrokernel, "vmlinuz-3.16", body, 13);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->size, 13u);
  EXPECT_EQ(ReadAll(dir_ + "/content/common/vmlinuz-3.16"), "vmlinuz bytes");
  io::StringReader nested("n");
  ASSERT_TRUE(service_->PutFile(FileSpace::kFiles, "a/b/c.txt", nested, std::nullopt).ok());
  io::StringReader shortbody("abc");
  EXPECT_EQ(service_->PutFile(FileSpace::kFiles, "short", shortbody, 10).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(service_->ListFiles(FileSpace::kFiles)->size(), 1u);
  Reopen();
  EXPECT_EQ(service_->ListFiles(FileSpace::kMicrokernel)->size(), 1u);
  ASSERT_TRUE(service_->DeleteFile(FileSpace::kFiles, "a/b/c.txt").ok());
  struct stat st;
  EXPECT_NE(::stat((dir_ + "/content/files/a").c_str(), &st), 0);  // empty parents pruned
  EXPECT_EQ(service_->DeleteFile(FileSpace::kFiles, "a/b/c.txt").status().code(),
            Code::kNotFound);

  const std::string id = "11111111-2222-3333-4444-555555555555";
  EXPECT_EQ(service_->Publish("golden", "99999999-2222-3333-4444-555555555555", false)
                .status()
                .code(),
            Code::kNotFound);
  ASSERT_TRUE(service_->Publish("golden", id, true).ok());
  EXPECT_EQ(service_->Publish("golden", id, true).status().code(), Code::kAlreadyExists);
  ASSERT_TRUE(service_->FindPublication("golden"));
  ASSERT_TRUE(service_->FindPublication(id));
  EXPECT_TRUE(service_->FindPublication(id)->raw);
  Reopen();
  ASSERT_TRUE(service_->FindPublication(id));
  ASSERT_TRUE(service_->Unpublish("golden").ok());
  EXPECT_FALSE(service_->FindPublication(id));
  EXPECT_FALSE(service_->FindPublication("golden"));
}

}  // namespace
}  // namespace ingot::boot
