// The streaming inspector reaches the verdict Inspect reaches on the whole file, for every format,
// whatever the chunking, while keeping only bounded regions.
#include "formats/streaming.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "formats/testing/image_fixtures.h"
#include "io/file.h"
#include "io/memory.h"

namespace ingot::formats {
namespace {

using testing::RunCommand;
using testing::ScratchDir;

// Feeds `bytes` in pseudo-random chunk sizes (1 byte to 300 KiB).
Result<ImageInfo> Stream(const std::vector<uint8_t>& bytes, StreamingInspector::Options o = {}) {
  StreamingInspector in(o);
  std::mt19937 rng(42);
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t n = std::min<size_t>(bytes.size() - pos, 1 + rng() % (300 * 1024));
    if (rng() % 8 == 0) n = std::min<size_t>(n, 1 + rng() % 7);
    EXPECT_TRUE(in.Write(std::span<const uint8_t>(bytes.data() + pos, n)).ok());
    pos += n;
  }
  EXPECT_EQ(in.bytes_seen(), bytes.size());
  return in.Finish();
}

struct Case {
  const char* name;
  const char* format;
  const char* options;
  bool compress;
};

class StreamEveryFormat : public ::testing::TestWithParam<Case> {};

TEST_P(StreamEveryFormat, SameVerdictAsInspectingTheFile) {
  const Case& c = GetParam();
  ScratchDir dir;
  const uint64_t size = 32ull << 20;
  const std::string raw = dir.File("src.raw"), img = dir.File("img");
  testing::MakeRaw(raw, size, testing::ScatteredWrites(size));
  if (std::string(c.format) == "raw") {
    ASSERT_EQ(RunCommand("cp " + raw + " " + img).exit_code, 0);
  } else {
    testing::QemuConvert(raw, img, c.format, c.options, c.compress);
  }
  auto file = io::FileSource::Open(img);
  ASSERT_TRUE(file.ok());
  auto whole = Inspect(**file);
  if (!whole.ok() && whole.status().message().find("not readable yet") != std::string::npos) {
    GTEST_SKIP() << c.format << " reader not available yet";
  }
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  auto streamed = Stream(testing::ReadAll(img));
  ASSERT_TRUE(streamed.ok()) << streamed.status().ToString();
  EXPECT_EQ(streamed->format, whole->format);
  EXPECT_EQ(streamed->virtual_size, whole->virtual_size);
  EXPECT_EQ(streamed->cluster_size, whole->cluster_size);
  EXPECT_EQ(streamed->format_specific, whole->format_specific);
}

INSTANTIATE_TEST_SUITE_P(
    All, StreamEveryFormat,
    ::testing::Values(Case{"raw", "raw", "", false}, Case{"qcow2", "qcow2", "", false},
                      Case{"qcow2_zstd", "qcow2", "compression_type=zstd", true},
                      Case{"qcow2_v2", "qcow2", "compat=0.10", false},
                      Case{"vmdk", "vmdk", "", false},
                      Case{"vmdk_stream", "vmdk", "subformat=streamOptimized", false},
                      Case{"vpc", "vpc", "", false},
                      Case{"vpc_fixed", "vpc", "subformat=fixed", false},
                      Case{"vhdx", "vhdx", "", false}, Case{"vdi", "vdi", "", false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Streaming, RefusesABackingFileFromTheHeadAlone) {
  ScratchDir dir;
  const std::string img = dir.File("c.qcow2");
  ASSERT_EQ(
      RunCommand("qemu-img create -q -f qcow2 -b /srv/base.img -F raw -u " + img + " 1G").exit_code,
      0);
  auto r = Stream(testing::ReadAll(img));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kRefused);
  EXPECT_NE(r.status().message().find("qcow2.backing_file: '/srv/base.img'"), std::string::npos);
}

TEST(Streaming, RefusesAQcowHiddenAtAPartitionBeyondTheHead) {
  ScratchDir dir;
  ASSERT_EQ(RunCommand("qemu-img create -q -f qcow2 " + dir.File("q") + " 1M").exit_code, 0);
  std::vector<uint8_t> q = testing::ReadAll(dir.File("q"));
  std::vector<uint8_t> disk(16 << 20, 0);
  disk[446] = 0x80;
  disk[446 + 4] = 0x83;
  const uint32_t start = (8 << 20) / 512, sectors = (8 << 20) / 512;
  std::memcpy(&disk[446 + 8], &start, 4);  // little-endian host
  std::memcpy(&disk[446 + 12], &sectors, 4);
  disk[510] = 0x55;
  disk[511] = 0xAA;
  std::memcpy(&disk[8 << 20], q.data(), 4096);
  StreamingInspector::Options o;
  o.head_bytes = 1 << 20;
  o.tail_bytes = 64 << 10;
  auto r = Stream(disk, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kRefused);
  EXPECT_NE(r.status().message().find("detect.partition_hides_format"), std::string::npos)
      << r.status().ToString();
  // Without the hidden header it is a plain raw disk with an MBR.
  std::memset(&disk[8 << 20], 0, 4096);
  auto ok = Stream(disk, o);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->format, Format::kRaw);
  EXPECT_EQ(ok->partition_table, "mbr");
}

TEST(Streaming, LargeQcowWhoseTablesLieBeyondTheHeadIsInspectedFromItsHeader) {
  ScratchDir dir;
  const std::string img = dir.File("big.qcow2");
  ASSERT_EQ(RunCommand("qemu-img create -q -f qcow2 " + img + " 4G").exit_code, 0);
  ASSERT_EQ(
      RunCommand("qemu-io -f qcow2 -c 'write -P 1 0 8M' -c 'write -P 2 3G 1M' " + img).exit_code,
      0);
  StreamingInspector::Options o;
  o.head_bytes = 256 << 10;  // the L2 table of the data at 3 GiB lies far beyond
  o.tail_bytes = 64 << 10;
  auto r = Stream(testing::ReadAll(img), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->format, Format::kQcow2);
  EXPECT_EQ(r->virtual_size, 4ull << 30);
}

TEST(Streaming, UndecidableFromTheKeptRegionsMeansInspectTheStoredImage) {
  ScratchDir dir;
  const std::string img = dir.File("big_clusters.qcow2");
  ASSERT_EQ(RunCommand("qemu-img create -q -f qcow2 -o cluster_size=2M " + img + " 64M").exit_code,
            0);
  StreamingInspector::Options o;
  o.head_bytes = 64 << 10;  // less than the 2 MiB header cluster the extensions may fill
  o.tail_bytes = 4096;
  auto r = Stream(testing::ReadAll(img), o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("inspect the stored image"), std::string::npos);
}

TEST(Streaming, EmptyStreamIsAnEmptyRawImage) {
  StreamingInspector in;
  auto r = in.Finish();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->format, Format::kRaw);
  EXPECT_EQ(r->virtual_size, 0u);
}

}  // namespace
}  // namespace ingot::formats
