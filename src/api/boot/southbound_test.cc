// The southbound listener in process: requests built as the server builds them, answered by
// Southbound::Handle, file bodies read back from the descriptor and ranges the response holds.
// ISOs are made with xorriso (Debian's), as the boot service's users make them.
#include "api/boot/southbound.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <sys/socket.h>

#include "api/boot/access_log.h"
#include "api/boot/paths.h"
#include "api/boot/validators.h"

namespace ingot::api::boot {
namespace {

namespace fs = std::filesystem;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

void WriteFile(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The body a response would send: its string, or the bytes of its file ranges.
std::string BodyOf(const http::Response& r) {
  if (!r.file) return r.body;
  std::vector<http::FileSegment> segs{{r.file->offset, r.file->length}};
  segs.insert(segs.end(), r.file->more.begin(), r.file->more.end());
  std::string out;
  for (const auto& s : segs) {
    std::string part(s.length, '\0');
    ssize_t n = ::pread(r.file->descriptor(), part.data(), s.length, static_cast<off_t>(s.offset));
    EXPECT_EQ(n, static_cast<ssize_t>(s.length));
    out += part;
  }
  return out;
}

class SouthboundTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    base_ = fs::path(::testing::TempDir()) / ("southbound_test." + std::to_string(::getpid()));
    fs::remove_all(base_);
    const fs::path root = base_ / "root", src = base_ / "isosrc";
    WriteFile(root / "a.txt", "hello boot\n");
    WriteFile(root / "sub" / "b.bin", RandomBytes(100'000, 1));
    WriteFile(root / "sub" / "deeper" / "c.efi", RandomBytes(5000, 2));
    WriteFile(root / "we<i>rd &name\".txt", "odd\n");
    WriteFile(root / "empty.img", "");
    WriteFile(root / "bad.iso", RandomBytes(70'000, 3));
    WriteFile(root / "dir.iso" / "inner.txt", "a directory named like an ISO\n");
    WriteFile(base_ / "outside" / "secret.txt", "secret\n");
    fs::create_symlink("sub/b.bin", root / "inside-link");
    fs::create_symlink("../outside/secret.txt", root / "outside-link");
    fs::create_symlink(base_ / "outside", root / "outside-dir");
    ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0644), 0);

    WriteFile(src / "install.amd" / "vmlinuz", RandomBytes(300'000, 4));
    WriteFile(src / "install.amd" / "initrd.gz", RandomBytes(1'000'001, 5));
    WriteFile(src / "boot" / "grub" / "grub.cfg", "menuentry x {}\n");
    WriteFile(src / "empty", "");
    fs::create_symlink("install.amd", src / "current");
    fs::create_symlink("/etc/passwd", src / "abs-link");
    fs::create_symlink("../../../outside/secret.txt", src / "boot" / "up-link");
    std::string cmd = "xorriso -as mkisofs -quiet -R -J -V BOOTTEST -o '" +
                      (root / "os" / "debian.iso").string() + "' '" + src.string() + "' 2>&1";
    fs::create_directories(root / "os");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() { fs::remove_all(base_); }

  void SetUp() override {
    auto sb = Southbound::Open({.root = (base_ / "root").string()});
    ASSERT_TRUE(sb.ok()) << sb.status().ToString();
    sb_ = std::move(*sb);
  }

  // A request as the server hands it over: the target as sent, the path decoded once.
  http::Response Call(const std::string& method, const std::string& target,
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::Request req;
    req.method = method;
    req.target = target;
    auto decoded = http::PercentDecode(target.substr(0, target.find('?')));
    EXPECT_TRUE(decoded) << target;
    req.path = decoded.value_or("/");
    for (auto& [k, v] : headers) req.headers.Add(k, v);
    // Every request also through the I/O thread's first look: it answers as Handle does, or not
    // at all.
    http::Request copy = req;
    std::optional<http::Response> quick = sb_->HandleInline(copy);
    http::Response r = http::Resolve(sb_->Handle(req), req);
    if (quick) {
      ++inline_answers_;
      EXPECT_EQ(quick->status, r.status) << method << " " << target;
      EXPECT_EQ(BodyOf(*quick), BodyOf(r)) << method << " " << target;
      for (const char* h : {"ETag", "Last-Modified", "Content-Type", "Content-Range", "Location"}) {
        EXPECT_EQ(quick->headers.Get(h), r.headers.Get(h)) << h << " of " << method << " " << target;
      }
    }
    return r;
  }
  std::optional<http::Response> Inline(const std::string& method, const std::string& target) {
    http::Request req;
    req.method = method;
    req.target = target;
    req.path = http::PercentDecode(target.substr(0, target.find('?'))).value_or("/");
    return sb_->HandleInline(req);
  }
  std::string Get(const std::string& target) {
    http::Response r = Call("GET", target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    return BodyOf(r);
  }
  static std::string Source(const fs::path& rel) {
    std::ifstream in(base_ / rel, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  static fs::path base_;
  std::unique_ptr<Southbound> sb_;
  int inline_answers_ = 0;
};
fs::path SouthboundTest::base_;

TEST_F(SouthboundTest, ServesFilesWithTheirTypeAndValidators) {
  http::Response r = Call("GET", "/sub/b.bin");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(BodyOf(r), Source("root/sub/b.bin"));
  EXPECT_EQ(r.headers.Get("Content-Type"), "application/octet-stream");
  EXPECT_EQ(r.headers.Get("Accept-Ranges"), "bytes");
  ASSERT_TRUE(r.headers.Get("ETag"));
  EXPECT_TRUE(r.headers.Get("ETag")->starts_with("\""));
  ASSERT_TRUE(r.headers.Get("Last-Modified"));
  EXPECT_TRUE(ParseHttpDate(*r.headers.Get("Last-Modified")));
  EXPECT_EQ(Call("GET", "/a.txt").headers.Get("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(Call("GET", "/sub/deeper/c.efi").headers.Get("Content-Type"), "application/efi");
  http::Response empty = Call("GET", "/empty.img", {{"Range", "bytes=0-10"}});
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(BodyOf(empty), "");
  // HEAD: the same head (the server leaves the body out).
  http::Response head = Call("HEAD", "/sub/b.bin");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers.Get("ETag"), r.headers.Get("ETag"));
  ASSERT_TRUE(head.file);
  EXPECT_EQ(head.file->total(), 100'000u);
  // Names are percent-decoded once.
  EXPECT_EQ(Get("/we%3Ci%3Erd%20%26name%22.txt"), "odd\n");
  // A symlink that stays inside the root is followed.
  EXPECT_EQ(Get("/inside-link"), Source("root/sub/b.bin"));
}

TEST_F(SouthboundTest, OnlyGetAndHead) {
  for (const char* m : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    http::Response r = Call(m, "/a.txt");
    EXPECT_EQ(r.status, 405) << m;
    EXPECT_EQ(r.headers.Get("Allow"), "GET, HEAD");
  }
}

TEST_F(SouthboundTest, RangesAndIfRange) {
  const std::string whole = Source("root/sub/b.bin");
  http::Response r = Call("GET", "/sub/b.bin", {{"Range", "bytes=100-199"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.headers.Get("Content-Range"), "bytes 100-199/100000");
  EXPECT_EQ(BodyOf(r), whole.substr(100, 100));
  r = Call("GET", "/sub/b.bin", {{"Range", "bytes=-10"}});
  EXPECT_EQ(BodyOf(r), whole.substr(whole.size() - 10));
  r = Call("GET", "/sub/b.bin", {{"Range", "bytes=99990-"}});
  EXPECT_EQ(r.headers.Get("Content-Range"), "bytes 99990-99999/100000");
  r = Call("GET", "/sub/b.bin", {{"Range", "bytes=100000-"}});
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.headers.Get("Content-Range"), "bytes */100000");
  EXPECT_EQ(Call("GET", "/sub/b.bin", {{"Range", "bytes=0-1,5-6"}}).status, 416);

  std::string etag(*Call("HEAD", "/sub/b.bin").headers.Get("ETag"));
  std::string modified(*Call("HEAD", "/sub/b.bin").headers.Get("Last-Modified"));
  EXPECT_EQ(Call("GET", "/sub/b.bin", {{"Range", "bytes=0-9"}, {"If-Range", etag}}).status, 206);
  EXPECT_EQ(Call("GET", "/sub/b.bin", {{"Range", "bytes=0-9"}, {"If-Range", modified}}).status,
            206);
  r = Call("GET", "/sub/b.bin", {{"Range", "bytes=0-9"}, {"If-Range", "\"other\""}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(BodyOf(r), whole);
  EXPECT_EQ(Call("GET", "/sub/b.bin", {{"Range", "bytes=0-9"}, {"If-Range", "W/" + etag}}).status,
            200);  // If-Range needs a strong match
}

TEST_F(SouthboundTest, ConditionalRequests) {
  http::Response first = Call("GET", "/a.txt");
  std::string etag(*first.headers.Get("ETag"));
  std::string modified(*first.headers.Get("Last-Modified"));
  http::Response r = Call("GET", "/a.txt", {{"If-None-Match", etag}});
  EXPECT_EQ(r.status, 304);
  EXPECT_EQ(r.headers.Get("ETag"), etag);
  EXPECT_FALSE(r.file);
  EXPECT_EQ(Call("HEAD", "/a.txt", {{"If-None-Match", "\"x\", " + etag}}).status, 304);
  EXPECT_EQ(Call("GET", "/a.txt", {{"If-None-Match", "W/" + etag}}).status, 304);
  EXPECT_EQ(Call("GET", "/a.txt", {{"If-None-Match", "*"}}).status, 304);
  EXPECT_EQ(Call("GET", "/a.txt", {{"If-None-Match", "\"x\""}}).status, 200);
  EXPECT_EQ(Call("GET", "/a.txt", {{"If-Modified-Since", modified}}).status, 304);
  EXPECT_EQ(Call("GET", "/a.txt", {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}).status,
            200);
  EXPECT_EQ(Call("GET", "/a.txt", {{"If-Modified-Since", "yesterday"}}).status, 200);
  // If-None-Match wins over If-Modified-Since.
  EXPECT_EQ(
      Call("GET", "/a.txt", {{"If-None-Match", "\"x\""}, {"If-Modified-Since", modified}}).status,
      200);
  EXPECT_EQ(Call("GET", "/a.txt", {{"If-Match", "\"x\""}}).status, 412);
  EXPECT_EQ(Call("GET", "/a.txt", {{"If-Match", etag}}).status, 200);
  EXPECT_EQ(
      Call("GET", "/a.txt", {{"If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}).status,
      412);
}

TEST_F(SouthboundTest, DirectoryListings) {
  http::Response r = Call("GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.Get("Content-Type"), "text/html; charset=utf-8");
  const std::string& html = r.body;
  EXPECT_NE(html.find("<a href=\"a.txt\">a.txt</a>"), std::string::npos) << html;
  EXPECT_NE(html.find("<a href=\"sub/\">sub/</a>"), std::string::npos);
  EXPECT_NE(html.find("we&lt;i&gt;rd &amp;name&quot;.txt"), std::string::npos);
  EXPECT_NE(html.find("href=\"we%3Ci%3Erd%20%26name%22.txt\""), std::string::npos);
  EXPECT_NE(html.find("<td>11</td>"), std::string::npos);  // a.txt's size
  EXPECT_NE(html.find("href=\"inside-link\""), std::string::npos);
  EXPECT_EQ(html.find("debian.iso"), std::string::npos);  // in os/, not here
  // What leads out of the root, and what is not a file or directory, is not listed.
  EXPECT_EQ(html.find("outside-link"), std::string::npos);
  EXPECT_EQ(html.find("outside-dir"), std::string::npos);
  EXPECT_EQ(html.find("fifo"), std::string::npos);
  EXPECT_EQ(html.find("href=\"../\""), std::string::npos);  // the root has no parent

  r = Call("GET", "/sub");
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.headers.Get("Location"), "/sub/");
  r = Call("GET", "/sub/deeper?x=1");
  EXPECT_EQ(r.headers.Get("Location"), "/sub/deeper/?x=1");
  // A Location is built from the components, never from the raw target ("//host" stays a path).
  r = Call("GET", "//sub");
  EXPECT_EQ(r.headers.Get("Location"), "/sub/");
  r = Call("GET", "/sub/");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("href=\"../\""), std::string::npos);
  EXPECT_NE(r.body.find("href=\"deeper/\""), std::string::npos);
  EXPECT_EQ(Call("GET", "/a.txt/").status, 404);
  EXPECT_EQ(Get("/dir.iso/inner.txt"), "a directory named like an ISO\n");
  EXPECT_EQ(Call("GET", "/dir.iso").status, 301);
  r = Call("GET", "/os/");
  EXPECT_NE(r.body.find("href=\"debian.iso/\">[browse]"), std::string::npos) << r.body;
}

TEST_F(SouthboundTest, NoPathLeavesTheRoot) {
  struct Case {
    const char* target;
    int want;
  };
  const Case cases[] = {
      {"/../outside/secret.txt", 400},
      {"/%2e%2e/outside/secret.txt", 400},
      {"/%2E%2E/outside/secret.txt", 400},
      {"/sub/%2e%2e/%2e%2e/outside/secret.txt", 400},
      {"/sub/..", 400},
      {"/./a.txt", 400},
      {"/%252e%252e/outside/secret.txt", 404},  // double encoding: a name, looked up as such
      {"/sub%2f..%2f..%2foutside/secret.txt", 400},
      {"/sub\\..\\..\\outside\\secret.txt", 400},
      {"/sub%5c..%5c..%5coutside%5csecret.txt", 400},
      {"/a.txt%00.png", 400},
      {"/a.txt%0a", 400},
      {"/outside-link", 404},
      {"/outside-dir/secret.txt", 404},
      {"/outside-dir/", 404},
      {"/fifo", 404},
      {"/os/debian.iso/abs-link", 404},
      {"/os/debian.iso/boot/up-link", 404},
      {"/os/debian.iso/%2e%2e/%2e%2e/a.txt", 400},
      {"/nothing-here", 404},
      {"/v2/images", 404},
      {"/healthcheck", 404},
  };
  for (const Case& c : cases) {
    http::Response r = Call("GET", c.target);
    EXPECT_EQ(r.status, c.want) << c.target;
    EXPECT_EQ(BodyOf(r).find("secret"), std::string::npos) << c.target;
  }
  std::string longest = "/" + std::string(kMaxTargetBytes, 'a');
  EXPECT_EQ(Call("GET", longest).status, 400);
  std::string deep;
  while (deep.size() < kMaxTargetBytes + 10) deep += "/sub";
  EXPECT_EQ(Call("GET", deep).status, 400);
}

TEST_F(SouthboundTest, FilesInsideAnIso) {
  const std::string iso = "/os/debian.iso";
  // The ISO itself is a file like any other.
  http::Response whole = Call("GET", iso);
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.headers.Get("Content-Type"), "application/x-iso9660-image");
  EXPECT_EQ(BodyOf(whole), Source("root/os/debian.iso"));

  EXPECT_EQ(Get(iso + "/install.amd/vmlinuz"), Source("isosrc/install.amd/vmlinuz"));
  EXPECT_EQ(Get(iso + "/install.amd/initrd.gz"), Source("isosrc/install.amd/initrd.gz"));
  EXPECT_EQ(Get(iso + "/boot/grub/grub.cfg"), "menuentry x {}\n");
  EXPECT_EQ(Get(iso + "/empty"), "");
  EXPECT_EQ(Call("GET", iso + "/install.amd/initrd.gz").headers.Get("Content-Type"),
            "application/gzip");
  // A relative symlink inside the ISO is followed, in the middle of a path too.
  EXPECT_EQ(Get(iso + "/current/vmlinuz"), Source("isosrc/install.amd/vmlinuz"));

  http::Response r = Call("GET", iso + "/install.amd/vmlinuz", {{"Range", "bytes=1000-299999"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(BodyOf(r), Source("isosrc/install.amd/vmlinuz").substr(1000));
  std::string etag(*r.headers.Get("ETag"));
  EXPECT_EQ(Call("GET", iso + "/install.amd/vmlinuz", {{"If-None-Match", etag}}).status, 304);
  EXPECT_NE(Call("GET", iso + "/install.amd/initrd.gz").headers.Get("ETag"), etag);

  r = Call("GET", iso + "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("href=\"install.amd/\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("href=\"../\""), std::string::npos);
  r = Call("GET", iso + "/install.amd");
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.headers.Get("Location"), iso + "/install.amd/");
  r = Call("GET", iso + "/install.amd/");
  EXPECT_NE(r.body.find("<td>300000</td>"), std::string::npos) << r.body;
  EXPECT_EQ(Call("GET", iso + "/install.amd/vmlinuz/").status, 404);
  EXPECT_EQ(Call("GET", iso + "/no/such/file").status, 404);
  EXPECT_EQ(Call("POST", iso + "/install.amd/vmlinuz").status, 405);
  // Not an ISO: nothing inside.
  EXPECT_EQ(Call("GET", "/bad.iso/x").status, 404);
  EXPECT_EQ(Call("GET", "/bad.iso/").status, 404);
  EXPECT_EQ(Call("GET", "/bad.iso").status, 200);

  // Indexed once (and the refusal remembered once), whatever the number of requests.
  EXPECT_EQ(sb_->isos().indexings(), 2u);
}

TEST_F(SouthboundTest, ARewrittenIsoIsIndexedAgain) {
  const fs::path root = base_ / "root";
  fs::copy_file(root / "os" / "debian.iso", root / "copy.iso");
  EXPECT_EQ(Get("/copy.iso/boot/grub/grub.cfg"), "menuentry x {}\n");
  EXPECT_EQ(Get("/copy.iso/boot/grub/grub.cfg"), "menuentry x {}\n");
  EXPECT_EQ(sb_->isos().indexings(), 1u);
  std::string old_etag(*Call("GET", "/copy.iso/empty").headers.Get("ETag"));
  // A change is seen by the requests that start 1 ms after it (open_files.h).
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  struct timespec times[2] = {{0, UTIME_OMIT}, {1'000'000'000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (root / "copy.iso").c_str(), times, 0), 0);
  EXPECT_EQ(Get("/copy.iso/boot/grub/grub.cfg"), "menuentry x {}\n");
  EXPECT_EQ(sb_->isos().indexings(), 2u);
  EXPECT_NE(Call("GET", "/copy.iso/empty").headers.Get("ETag"), old_etag);
  fs::remove(root / "copy.iso");
}

TEST_F(SouthboundTest, FilesAnswerInlineAndWhatMayBlockGoesToAWorker) {
  // A file of the tree, its redirects and refusals: answered on the I/O thread.
  ASSERT_TRUE(Inline("GET", "/sub/b.bin"));
  EXPECT_EQ(Inline("GET", "/sub/b.bin")->status, 200);
  EXPECT_EQ(BodyOf(*Inline("HEAD", "/a.txt")), "hello boot\n");
  EXPECT_EQ(Inline("GET", "/sub")->status, 301);
  EXPECT_EQ(Inline("GET", "/fifo")->status, 404);  // opened without waiting, never read
  EXPECT_EQ(Inline("GET", "/outside-link")->status, 404);
  EXPECT_EQ(Inline("GET", "/a/../a.txt")->status, 400);
  // Listings, other methods: a worker.
  EXPECT_FALSE(Inline("GET", "/"));
  EXPECT_FALSE(Inline("GET", "/sub/"));
  EXPECT_FALSE(Inline("POST", "/a.txt"));
  // An ISO not indexed yet is never read inline; once a worker has indexed it, its files are.
  const std::string vmlinuz = "/os/debian.iso/install.amd/vmlinuz";
  EXPECT_FALSE(Inline("GET", vmlinuz));
  EXPECT_EQ(sb_->isos().indexings(), 0u);
  EXPECT_EQ(Get(vmlinuz), Source("isosrc/install.amd/vmlinuz"));
  ASSERT_TRUE(Inline("GET", vmlinuz));
  EXPECT_EQ(BodyOf(*Inline("GET", vmlinuz)), Source("isosrc/install.amd/vmlinuz"));
  EXPECT_EQ(BodyOf(*Inline("GET", "/os/debian.iso/current/vmlinuz")),
            Source("isosrc/install.amd/vmlinuz"));  // through a symlink inside the ISO
  EXPECT_FALSE(Inline("GET", "/os/debian.iso/install.amd/"));  // a listing
  EXPECT_EQ(Inline("GET", "/os/debian.iso/abs-link")->status, 404);
  EXPECT_EQ(Inline("GET", "/bad.iso/x"), std::nullopt);  // not indexed (nor refused) yet
  EXPECT_EQ(Call("GET", "/bad.iso/x").status, 404);
  EXPECT_EQ(Inline("GET", "/bad.iso/x")->status, 404);  // the refusal is remembered
  EXPECT_EQ(sb_->isos().indexings(), 2u);
}

TEST_F(SouthboundTest, RoutesDecideWhatRunsInline) {
  // A route that does not say when it blocks: nothing is answered inline.
  sb_->AddRoute(
      [](const http::Request&, const BootPath&) { return std::optional<http::Response>(); });
  EXPECT_FALSE(Inline("GET", "/a.txt"));
  EXPECT_EQ(Get("/a.txt"), "hello boot\n");

  auto sb = Southbound::Open({.root = (base_ / "root").string()});
  ASSERT_TRUE(sb.ok());
  sb_ = std::move(*sb);
  int answered = 0;
  sb_->AddRoute(
      [&](const http::Request& req, const BootPath&) -> std::optional<http::Response> {
        if (req.path != "/a.txt" && req.path != "/slow") return std::nullopt;
        ++answered;
        http::Response r;
        r.body = "from the route";
        return r;
      },
      [](const http::Request& req, const BootPath&) { return req.path == "/slow"; });
  EXPECT_FALSE(Inline("GET", "/slow"));  // the route may block there
  ASSERT_TRUE(Inline("GET", "/a.txt"));  // the route answers at once, before the tree
  EXPECT_EQ(Inline("GET", "/a.txt")->body, "from the route");
  EXPECT_EQ(BodyOf(*Inline("GET", "/sub/b.bin")), Source("root/sub/b.bin"));
  EXPECT_EQ(Call("GET", "/slow").body, "from the route");  // on a worker: once
  EXPECT_EQ(answered, 3);
  EXPECT_EQ(Call("GET", "/a.txt").body, "from the route");  // inline and Handle, compared
  EXPECT_EQ(answered, 5);
  EXPECT_GT(inline_answers_, 0);
}

// A hand-made ISO 9660 volume (2048-byte blocks: PVD at 16, terminator at 17, root directory at 20)
// whose one file, MULTI.BIN, is two sections that do not follow each other on disk: 4096 bytes at
// block 40, then 1000 bytes at block 30 (ECMA-119 6.5.1, flag bit 7 on every section but the last).
std::string MultiExtentIso() {
  std::string b(64 * 2048, '\0');
  auto le32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
  };
  auto be32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (8 * (3 - i)));
  };
  auto record = [&](size_t at, uint32_t block, uint32_t length, uint8_t flags,
                    const std::string& id) {
    size_t len = 33 + id.size() + (id.size() % 2 == 0 ? 1 : 0);
    b[at] = static_cast<char>(len);
    le32(at + 2, block);
    be32(at + 6, block);
    le32(at + 10, length);
    be32(at + 14, length);
    b[at + 18] = 120;  // 2020-01-02
    b[at + 19] = 1;
    b[at + 20] = 2;
    b[at + 25] = static_cast<char>(flags);
    b[at + 28] = 1;
    b[at + 31] = 1;
    b[at + 32] = static_cast<char>(id.size());
    b.replace(at + 33, id.size(), id);
    return at + len;
  };
  size_t pvd = 16 * 2048;
  b[pvd] = 1;
  b.replace(pvd + 1, 5, "CD001");
  b[pvd + 6] = 1;
  le32(pvd + 80, 64);
  be32(pvd + 84, 64);
  b[pvd + 129] = 0x08;  // block size 2048, both byte orders
  b[pvd + 130] = 0x08;
  record(pvd + 156, 20, 2048, 2, std::string(1, '\0'));
  b[17 * 2048] = static_cast<char>(255);
  b.replace(17 * 2048 + 1, 5, "CD001");
  b[17 * 2048 + 6] = 1;
  size_t at = 20 * 2048;
  at = record(at, 20, 2048, 2, std::string(1, '\0'));
  at = record(at, 20, 2048, 2, std::string(1, '\1'));
  at = record(at, 40, 4096, 0x80, "MULTI.BIN;1");
  record(at, 30, 1000, 0, "MULTI.BIN;1");
  for (size_t i = 0; i < 4096; ++i) b[40 * 2048 + i] = static_cast<char>('a' + i % 26);
  for (size_t i = 0; i < 1000; ++i) b[30 * 2048 + i] = static_cast<char>('0' + i % 10);
  return b;
}

TEST_F(SouthboundTest, AFileOfSeveralExtentsIsOneBody) {
  const fs::path iso = base_ / "root" / "multi.iso";
  const std::string bytes = MultiExtentIso();
  WriteFile(iso, bytes);
  const std::string want = bytes.substr(40 * 2048, 4096) + bytes.substr(30 * 2048, 1000);
  http::Response r = Call("GET", "/multi.iso/MULTI.BIN");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(r.file);
  EXPECT_EQ(r.file->offset, 40u * 2048);
  ASSERT_EQ(r.file->more.size(), 1u);  // the second section, sent after the first
  EXPECT_EQ(r.file->total(), 5096u);
  EXPECT_EQ(BodyOf(r), want);
  // Ranges across the boundary, inside the second section, and the last byte.
  for (auto [first, last] : std::vector<std::pair<uint64_t, uint64_t>>{
           {4000, 4199}, {4095, 4096}, {0, 5095}, {4500, 4600}, {5095, 5095}}) {
    r = Call("GET", "/multi.iso/MULTI.BIN",
             {{"Range", "bytes=" + std::to_string(first) + "-" + std::to_string(last)}});
    EXPECT_EQ(r.status, 206);
    EXPECT_EQ(BodyOf(r), want.substr(first, last - first + 1)) << first << "-" << last;
  }
  fs::remove(iso);
}

// Each write of the access log is a message here, so its size and its line boundaries show.
TEST(AccessLog, WholeLinesInOrderInWritesOfAtMostAPipeBuffer) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  std::vector<std::string> writes;
  std::thread reader([&] {
    std::string buf(1 << 17, '\0');
    ssize_t n;
    while ((n = ::read(sv[0], buf.data(), buf.size())) > 0) writes.emplace_back(buf.data(), n);
  });
  const std::string long_line = "long " + std::string(10'000, 'y') + "\n";
  {
    AccessLog log({.fd = sv[1],
                   .linger = std::chrono::milliseconds(5),
                   .batch_bytes = 8192,
                   .max_held_bytes = 16384});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < 500; ++i) {
          log.Add("t" + std::to_string(t) + " " + std::to_string(i) + " " + std::string(50, 'x') +
                  "\n");
        }
      });
    }
    for (auto& th : threads) th.join();
    log.Add(long_line);
    log.Add("last\n");
  }  // the destructor writes what is held
  ::close(sv[1]);
  reader.join();
  ::close(sv[0]);

  std::vector<int> next(4, 0);
  int lines = 0;
  bool saw_long = false;
  for (const std::string& w : writes) {
    ASSERT_FALSE(w.empty());
    EXPECT_EQ(w.back(), '\n');
    if (w.size() > AccessLog::kAtomicBytes) {
      EXPECT_EQ(w, long_line);  // only a line longer than the bound goes alone
      saw_long = true;
      ++lines;
      continue;
    }
    std::istringstream in(w);
    std::string line;
    while (std::getline(in, line)) {
      ++lines;
      if (line == "last") continue;
      int t = -1, i = -1;
      ASSERT_EQ(std::sscanf(line.c_str(), "t%d %d", &t, &i), 2) << line;
      ASSERT_GE(t, 0);
      ASSERT_LT(t, 4);
      EXPECT_EQ(i, next[t]) << "thread " << t << " out of order";
      next[t] = i + 1;
    }
  }
  EXPECT_TRUE(saw_long);
  EXPECT_EQ(lines, 2002);
  EXPECT_EQ(writes.back(), "last\n");
  EXPECT_LT(writes.size(), 2002u / 4);  // batched
}

TEST(AccessLog, FlushWritesWhatIsHeld) {
  char name[] = "/tmp/access_log_test.XXXXXX";
  int fd = ::mkstemp(name);
  ASSERT_GE(fd, 0);
  ::unlink(name);
  AccessLog log({.fd = fd, .linger = std::chrono::milliseconds(60'000)});
  log.Add("one\n");
  log.Add("two\n");
  log.Flush();  // without it the lines would wait for a minute
  char buf[16] = {};
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), 8);
  EXPECT_EQ(std::string(buf), "one\ntwo\n");
  ::close(fd);
}

TEST(IsoIndexCache, StaysWithinItsBound) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("iso_cache." + std::to_string(::getpid()));
  fs::create_directories(dir / "src");
  WriteFile(dir / "src" / "f", "x");
  ASSERT_EQ(std::system(("xorriso -as mkisofs -quiet -R -o '" + (dir / "a.iso").string() + "' '" +
                         (dir / "src").string() + "' 2>&1")
                            .c_str()),
            0);
  IsoIndexCache cache({.max_isos = 2});
  for (int i = 0; i < 5; ++i) {
    int fd = ::open((dir / "a.iso").c_str(), O_RDONLY);
    struct stat st;
    ASSERT_EQ(::fstat(fd, &st), 0);
    auto tree = cache.Get("a" + std::to_string(i) + ".iso", fd, st);  // five keys, one file
    ::close(fd);
    ASSERT_TRUE(tree.ok());
    EXPECT_TRUE((*tree)->Lookup("f").ok());
    EXPECT_LE(cache.size(), 2u);
  }
  EXPECT_EQ(cache.indexings(), 5u);
  fs::remove_all(dir);
}

TEST(SegmentsOf, MapsRangesAcrossExtents) {
  using E = formats::iso9660::Extent;
  const std::vector<E> extents{{10'000, 100}, {50'000, 50}, {2'000, 10}};  // 160 bytes in all
  auto segs = SegmentsOf(extents, 0, 160);
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_EQ(segs[0].offset, 10'000u);
  EXPECT_EQ(segs[2].length, 10u);
  segs = SegmentsOf(extents, 90, 20);  // across the first boundary
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0].offset, 10'090u);
  EXPECT_EQ(segs[0].length, 10u);
  EXPECT_EQ(segs[1].offset, 50'000u);
  EXPECT_EQ(segs[1].length, 10u);
  segs = SegmentsOf(extents, 95, 60);  // across two boundaries
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_EQ(segs[0].length, 5u);
  EXPECT_EQ(segs[1].length, 50u);
  EXPECT_EQ(segs[2].offset, 2'000u);
  EXPECT_EQ(segs[2].length, 5u);
  segs = SegmentsOf(extents, 100, 50);  // exactly the second
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].offset, 50'000u);
  EXPECT_EQ(segs[0].length, 50u);
  segs = SegmentsOf(extents, 159, 1);
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].offset, 2'009u);
  EXPECT_TRUE(SegmentsOf(extents, 0, 0).empty());
  EXPECT_TRUE(SegmentsOf({}, 0, 0).empty());
}

TEST(BootPaths, ParseEncodeEscape) {
  auto p = ParseBootPath("/a//b/", "/a//b/");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->components, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(p->trailing_slash);
  p = ParseBootPath("/", "/");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->components.empty());
  for (const char* bad : {"/..", "/a/../b", "/a/./b", "/a\\b", "relative", ""}) {
    EXPECT_FALSE(ParseBootPath(bad, bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseBootPath("/a", std::string_view("/a\0b", 4)).ok());
  EXPECT_EQ(EncodePath({"a b", "c:d", "é"}, false), "/a%20b/c%3Ad/%C3%A9");
  EXPECT_EQ(EncodePath({}, false), "/");
  EXPECT_EQ(EncodePath({"x"}, true), "/x/");
  EXPECT_EQ(EscapeHtml("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
}

TEST(BootValidators, DatesAndTypes) {
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), std::nullopt);
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 UTC"), std::nullopt);
  EXPECT_EQ(ParseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT"), std::nullopt);
  EXPECT_EQ(ContentTypeFor("vmlinuz"), "application/octet-stream");
  EXPECT_EQ(ContentTypeFor("initrd"), "application/octet-stream");
  EXPECT_EQ(ContentTypeFor("BOOTX64.EFI"), "application/efi");
  EXPECT_EQ(ContentTypeFor("boot.ipxe"), "text/plain; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("filesystem.squashfs"), "application/octet-stream");
  EXPECT_EQ(ContentTypeFor("initrd.xz"), "application/x-xz");
  EXPECT_EQ(ContentTypeFor("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("debian.ISO"), "application/x-iso9660-image");
}

}  // namespace
// Files kept open between requests (open_files.h) are served only while the path still names that
// very file, unchanged: a rewrite in place, a replacement, a removal and a symlink swapped in are
// all seen by the next request.
TEST_F(SouthboundTest, KeptFilesNeverOutliveTheirPath) {
  const fs::path root = base_ / "changing";
  fs::create_directories(root);
  WriteFile(root / "f.txt", "version one\n");
  auto sb = Southbound::Open({.root = root.string()});
  ASSERT_TRUE(sb.ok());
  sb_ = std::move(*sb);

  EXPECT_EQ(Get("/f.txt"), "version one\n");
  EXPECT_EQ(Get("/f.txt"), "version one\n");
  EXPECT_EQ(sb_->open_files().size(), 1u);
  const uint64_t hits = sb_->open_files().hits();
  EXPECT_GE(hits, 1u);
  const std::string etag(Call("GET", "/f.txt").headers.Get("ETag").value_or(""));

  // Rewritten in place, same size: the same inode, a new ctime (one tick of the file system's
  // clock later: what the ETag tells apart, too).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  WriteFile(root / "f.txt", "version two\n");
  EXPECT_EQ(Get("/f.txt"), "version two\n");
  EXPECT_NE(std::string(Call("GET", "/f.txt").headers.Get("ETag").value_or("")), etag);

  // Replaced by a rename: another inode. (Each change here comes more than `recheck_after` after
  // the request before it: what every request starting 1 ms after a change is promised.)
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  WriteFile(root / "f.txt.new", "version three\n");
  fs::rename(root / "f.txt.new", root / "f.txt");
  EXPECT_EQ(Get("/f.txt"), "version three\n");

  // Swapped for a symlink leading out of the tree: refused as any such link is.
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  fs::remove(root / "f.txt");
  fs::create_symlink(base_ / "outside" / "secret.txt", root / "f.txt");
  EXPECT_EQ(Call("GET", "/f.txt").status, 404);

  // Removed.
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  fs::remove(root / "f.txt");
  EXPECT_EQ(Call("GET", "/f.txt").status, 404);
  EXPECT_EQ(sb_->open_files().size(), 0u);
  fs::remove_all(root);
}

// iPXE's first stages come from firmware_dir when the root has none of its own: by their names, at
// '/' only, over HTTP and TFTP; the root's own file wins.
TEST_F(SouthboundTest, FirstStagesOutOfTheBox) {
  const fs::path root = base_ / "fw-root", fw = base_ / "fw";
  fs::create_directories(root / "sub");
  WriteFile(fw / "undionly.kpxe", "undionly from the package\n");
  WriteFile(fw / "real-ipxe.efi", "ipxe.efi from the package\n");
  fs::create_symlink(fw / "real-ipxe.efi", fw / "ipxe.efi");  // as Debian links it
  WriteFile(fw / "other.bin", "not a first stage\n");
  auto sb = Southbound::Open({.root = root.string(), .firmware_dir = fw.string()});
  ASSERT_TRUE(sb.ok());
  sb_ = std::move(*sb);

  EXPECT_EQ(Get("/undionly.kpxe"), "undionly from the package\n");
  EXPECT_EQ(Get("/ipxe.efi"), "ipxe.efi from the package\n");
  EXPECT_EQ(Call("GET", "/other.bin").status, 404);          // not a first stage
  EXPECT_EQ(Call("GET", "/sub/undionly.kpxe").status, 404);  // only at '/'
  EXPECT_EQ(Call("GET", "/real-ipxe.efi").status, 404);
  TftpFiles tftp(*sb_);
  auto src = tftp.Open("undionly.kpxe");
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  EXPECT_EQ((*src)->Size(), 26u);

  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  WriteFile(root / "undionly.kpxe", "the operator's own\n");
  EXPECT_EQ(Get("/undionly.kpxe"), "the operator's own\n");

  // Without the directory: nothing but the root's own.
  auto none =
      Southbound::Open({.root = root.string(), .firmware_dir = (base_ / "nowhere").string()});
  ASSERT_TRUE(none.ok());
  sb_ = std::move(*none);
  EXPECT_EQ(Call("GET", "/ipxe.efi").status, 404);
  fs::remove_all(root);
  fs::remove_all(fw);
}

// The sweeper closes what nobody asked for lately, and what was deleted.
TEST(OpenFilesTest, SweepsIdleAndDeletedFiles) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("open_files." + std::to_string(::getpid()));
  fs::create_directories(dir);
  WriteFile(dir / "a", "a");
  WriteFile(dir / "b", "b");
  io::UniqueFd root(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(root);
  OpenFiles files({.capacity = 1, .idle = std::chrono::milliseconds(300),
                   .sweep = std::chrono::milliseconds(50)});
  auto keep = [&](const std::string& name) {
    auto fd = std::make_shared<const io::UniqueFd>(::openat(root.get(), name.c_str(), O_RDONLY));
    struct stat st;
    ASSERT_EQ(::fstat(fd->get(), &st), 0);
    files.Keep(root.get(), name, fd, st);
  };
  keep("a");
  struct stat st;
  EXPECT_NE(files.Find(root.get(), "a", &st), nullptr);
  keep("b");  // over capacity: "a" goes
  EXPECT_EQ(files.size(), 1u);
  EXPECT_EQ(files.Find(root.get(), "a", &st), nullptr);
  EXPECT_NE(files.Find(root.get(), "b", &st), nullptr);
  fs::remove(dir / "b");  // deleted: swept without waiting for `idle`
  for (int i = 0; i < 100 && files.size() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(files.size(), 0u);
  keep("a");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // idle past 300 ms
  EXPECT_EQ(files.size(), 0u);
  fs::remove_all(dir);
}

}  // namespace ingot::api::boot
