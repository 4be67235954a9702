#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "io/adapters.h"
#include "io/decompress.h"
#include "io/file.h"
#include "io/hash.h"
#include "io/memory.h"

namespace ingot::io {
namespace {

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(HashTest, KnownDigests) {
  EXPECT_EQ(*HexDigestOf("md5", Bytes("abc")), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(HexDigestOf("sha512", Bytes("abc"))->substr(0, 16), "ddaf35a193617aba");
  EXPECT_FALSE(Hasher::Create("crc32").ok());
}

TEST(HashTest, ContentMd5InBase64OrHex) {
  // md5("") = d41d8cd98f00b204e9800998ecf8427e; base64 of its bytes is 1B2M2Y8AsgTpgAmY7PhCfg==.
  EXPECT_EQ(*Md5HexFromHeader("1B2M2Y8AsgTpgAmY7PhCfg=="), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(*Md5HexFromHeader(" D41D8CD98F00B204E9800998ECF8427E "),
            "d41d8cd98f00b204e9800998ecf8427e");
  for (const char* bad : {"", "abc", "1B2M2Y8AsgTpgAmY7PhCf===", "zz1d8cd98f00b204e9800998ecf8427e",
                          "!B2M2Y8AsgTpgAmY7PhCfg=="}) {
    EXPECT_EQ(Md5HexFromHeader(bad).status().code(), Code::kInvalidArgument) << bad;
  }
}

// Every compression the import path recognises, made by its own command-line tool, reads back as
// the original bytes through small reads; concatenated gzip members are one stream; a truncated
// stream is an error, not a short image; anything else passes through untouched.
TEST(DecompressTest, EveryCompressionStreamsBackTheOriginal) {
  char tmpl[] = "/tmp/ingot-decomp-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::vector<uint8_t> data(3 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((i * 7) ^ (i >> 11));
  {
    auto sink = FileSink::Create(dir + "/d");
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->WriteAt(0, data).ok());
  }
  auto read_all = [](std::unique_ptr<Reader> r) -> Result<std::vector<uint8_t>> {
    std::vector<uint8_t> out;
    uint8_t buf[1000];
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(size_t n, r->Read(buf));
      if (n == 0) return out;
      out.insert(out.end(), buf, buf + n);
    }
  };
  auto open = [&](const std::string& name, Compression* c) {
    auto src = FileSource::Open(dir + "/" + name);
    EXPECT_TRUE(src.ok());
    return Decompressing(std::make_unique<SourceReader>(std::move(*src)), c);
  };
  const std::vector<std::pair<std::string, Compression>> cases = {
      {"gzip -c d > d.gz", Compression::kGzip},
      {"zstd -q -c d > d.zst", Compression::kZstd},
      {"xz -c d > d.xz", Compression::kXz},
      {"bzip2 -c d > d.bz2", Compression::kBzip2}};
  for (const auto& [cmd, want] : cases) {
    ASSERT_EQ(std::system(("cd " + dir + " && " + cmd).c_str()), 0) << cmd;
    const std::string name = cmd.substr(cmd.rfind(' ') + 1);
    Compression found;
    auto r = open(name, &found);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(found, want) << name;
    auto back = read_all(std::move(*r));
    ASSERT_TRUE(back.ok()) << name << ": " << back.status().ToString();
    EXPECT_TRUE(*back == data) << name;
    // Cut in the middle: an error naming the compression.
    ASSERT_EQ(std::system(("cd " + dir + " && head -c $(( $(stat -c %s " + name + ") / 2 )) " + name + " > cut").c_str()), 0);
    auto cut = read_all(*open("cut", &found));
    ASSERT_FALSE(cut.ok()) << name;
    EXPECT_NE(cut.status().message().find(CompressionName(want)), std::string::npos)
        << cut.status().ToString();
  }
  ASSERT_EQ(std::system(("cd " + dir + " && gzip -c d > two.gz && gzip -c d >> two.gz").c_str()), 0);
  Compression found;
  auto two = read_all(*open("two.gz", &found));
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2 * data.size()) << "gzip members one after another are one stream";
  auto plain = read_all(*open("d", &found));
  EXPECT_EQ(found, Compression::kNone);
  EXPECT_TRUE(plain.ok() && *plain == data);
  std::system(("rm -rf " + dir).c_str());
}

TEST(MemoryTest, ReadExactReportsShortRead) {
  MemorySource src(std::string_view("hello"));
  uint8_t buf[4];
  EXPECT_TRUE(ReadExact(src, 1, buf).ok());
  EXPECT_EQ(buf[0], 'e');
  Status s = ReadExact(src, 3, buf);
  EXPECT_EQ(s.code(), Code::kOutOfRange);
}

TEST(FileTest, WriteThenRead) {
  char tmpl[] = "/tmp/ingot-io-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/a/b/f";
  ASSERT_TRUE(MakeDirs(std::string(tmpl) + "/a/b").ok());
  auto sink = FileSink::Create(path);
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->WriteAt(3, Bytes("xyz")).ok());
  ASSERT_TRUE((*sink)->Flush().ok());
  auto src = FileSource::Open(path);
  ASSERT_TRUE(src.ok());
  EXPECT_EQ((*src)->Size(), 6u);
  uint8_t buf[6];
  ASSERT_TRUE(ReadExact(**src, 0, buf).ok());
  EXPECT_EQ(buf[0], 0);
  EXPECT_EQ(buf[5], 'z');
  EXPECT_EQ(FileSource::Open(path + ".missing").status().code(), Code::kNotFound);
  std::system(("rm -rf " + std::string(tmpl)).c_str());
}

}  // namespace
}  // namespace ingot::io

#include "io/digest_pipeline.h"

namespace ingot::io {
namespace {

TEST(DigestPipelineTest, MatchesSequentialDigests) {
  std::vector<uint8_t> data(5 * 1000 * 1000 + 17);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + (i >> 9));
  auto p = DigestPipeline::Start({"md5", "sha512"}, 64 * 1024, 3);
  ASSERT_TRUE(p.ok());
  size_t off = 0;
  while (off < data.size()) {
    auto buf = (*p)->Acquire();
    size_t n = std::min(buf.size() - (off % 7), data.size() - off);  // uneven chunk sizes
    std::memcpy(buf.data(), data.data() + off, n);
    (*p)->Submit(n);
    off += n;
  }
  auto digests = (*p)->Finish();
  ASSERT_EQ(digests.size(), 2u);
  EXPECT_EQ(digests[0], *HexDigestOf("md5", data));
  EXPECT_EQ(digests[1], *HexDigestOf("sha512", data));
}

TEST(DigestPipelineTest, EmptyStreamAndAbandon) {
  auto p = DigestPipeline::Start({"md5"});
  EXPECT_EQ((*p)->Finish()[0], "d41d8cd98f00b204e9800998ecf8427e");
  auto q = DigestPipeline::Start({"md5", "sha256"});
  auto buf = (*q)->Acquire();
  (*q)->Submit(buf.size());
  q->reset();  // destroyed mid-stream: joins cleanly
  EXPECT_FALSE(DigestPipeline::Start({"nope"}).ok());
}

}  // namespace
}  // namespace ingot::io
