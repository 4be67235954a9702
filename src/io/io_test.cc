#include <gtest/gtest.h>
#include <unistd.h>

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
