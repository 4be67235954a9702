// Detection from the bytes alone: names, partition tables on raw, and the "two formats at once"
// rule.
#include <gtest/gtest.h>

#include <cstring>

#include "formats/driver.h"
#include "formats/testing/image_fixtures.h"
#include "io/file.h"
#include "io/memory.h"

namespace ingot::formats {
namespace {

using testing::RunCommand;
using testing::ScratchDir;

void PutLe32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = uint8_t(v >> (8 * i));
}
void PutLe64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = uint8_t(v >> (8 * i));
}

// The first 64 KiB of a real qcow2 (its header cluster).
std::vector<uint8_t> QcowHeaderCluster(ScratchDir& dir) {
  const std::string img = dir.File("hdr.qcow2");
  EXPECT_EQ(RunCommand("qemu-img create -q -f qcow2 " + img + " 1M").exit_code, 0);
  std::vector<uint8_t> b = testing::ReadAll(img);
  b.resize(65536);
  return b;
}

// A raw disk of `size` bytes with one MBR partition (type 0x83) at `start_sector`.
std::vector<uint8_t> MbrDisk(uint64_t size, uint32_t start_sector, uint32_t sectors) {
  std::vector<uint8_t> d(size, 0);
  d[446] = 0x80;
  d[446 + 4] = 0x83;
  PutLe32(d, 446 + 8, start_sector);
  PutLe32(d, 446 + 12, sectors);
  d[510] = 0x55;
  d[511] = 0xAA;
  return d;
}

// A raw disk with a protective MBR and a GPT holding one partition [first_lba, last_lba].
std::vector<uint8_t> GptDisk(uint64_t size, uint64_t first_lba, uint64_t last_lba) {
  std::vector<uint8_t> d(size, 0);
  d[446 + 4] = 0xEE;
  PutLe32(d, 446 + 8, 1);
  PutLe32(d, 446 + 12, uint32_t(size / 512 - 1));
  d[510] = 0x55;
  d[511] = 0xAA;
  std::memcpy(&d[512], "EFI PART", 8);
  PutLe64(d, 512 + 72, 2);    // partition entries at LBA 2
  PutLe32(d, 512 + 80, 128);  // 128 entries
  PutLe32(d, 512 + 84, 128);  // of 128 bytes
  const size_t e = 1024;
  for (int i = 0; i < 16; ++i) d[e + i] = uint8_t(0xA0 + i);  // a non-zero type GUID
  PutLe64(d, e + 32, first_lba);
  PutLe64(d, e + 40, last_lba);
  return d;
}

TEST(FormatNames, QemuAndGlanceNamesRoundTrip) {
  EXPECT_EQ(FormatName(Format::kVhd), "vpc");
  EXPECT_EQ(GlanceDiskFormatName(Format::kVhd), "vhd");
  EXPECT_EQ(GlanceDiskFormatName(Format::kQcow2), "qcow2");
  EXPECT_EQ(ParseFormatName("vhd"), Format::kVhd);
  EXPECT_EQ(ParseFormatName("vpc"), Format::kVhd);
  EXPECT_EQ(ParseFormatName("vhdx"), Format::kVhdx);
  EXPECT_EQ(ParseFormatName("iso"), Format::kIso);
  EXPECT_EQ(ParseFormatName("raw"), Format::kRaw);
  EXPECT_FALSE(ParseFormatName("qcow3").has_value());
}

TEST(Detect, UnknownBytesAreRaw) {
  io::MemorySource src(std::vector<uint8_t>(1 << 20, 0x42));
  auto f = Detect(src);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f, Format::kRaw);
  auto info = Inspect(src);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->virtual_size, 1u << 20);
  EXPECT_FALSE(info->partition_table.has_value());
}

TEST(Detect, EmptyAndTinyInputsAreRaw) {
  for (size_t n : {0, 1, 4, 511}) {
    io::MemorySource src(std::vector<uint8_t>(n, 'Q'));
    auto f = Detect(src);
    ASSERT_TRUE(f.ok()) << n;
    EXPECT_EQ(*f, Format::kRaw);
  }
}

TEST(Detect, RawWithMbrReportsIt) {
  io::MemorySource src(MbrDisk(4 << 20, 2048, 4096));
  auto info = Inspect(src);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->format, Format::kRaw);
  EXPECT_EQ(info->partition_table, "mbr");
}

TEST(Detect, RawWithGptReportsIt) {
  io::MemorySource src(GptDisk(4 << 20, 2048, 4095));
  auto info = Inspect(src);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->partition_table, "gpt");
}

TEST(Detect, QcowHiddenAtAnMbrPartitionStartIsRefused) {
  ScratchDir dir;
  std::vector<uint8_t> disk = MbrDisk(4 << 20, 2048, 4096);
  std::vector<uint8_t> q = QcowHeaderCluster(dir);
  std::memcpy(&disk[2048 * 512], q.data(), q.size());
  io::MemorySource src(disk);
  auto f = Detect(src);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Code::kRefused);
  EXPECT_EQ(f.status().message(),
            "detect.partition_hides_format: mbr partition 1 at offset 1048576 starts with a qcow2 "
            "header");
  EXPECT_FALSE(Open(src, Format::kRaw).ok());
}

TEST(Detect, QcowHiddenAtAGptPartitionStartIsRefused) {
  ScratchDir dir;
  std::vector<uint8_t> disk = GptDisk(4 << 20, 2048, 4095);
  std::vector<uint8_t> q = QcowHeaderCluster(dir);
  std::memcpy(&disk[2048 * 512], q.data(), q.size());
  io::MemorySource src(disk);
  auto info = Inspect(src);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kRefused);
  EXPECT_NE(info.status().message().find("detect.partition_hides_format: gpt partition 1"),
            std::string::npos)
      << info.status().ToString();
}

TEST(Detect, QcowThatIsAlsoAVhdIsRefused) {
  ScratchDir dir;
  const std::string vhd = dir.File("fixed.vhd");
  ASSERT_EQ(RunCommand("qemu-img create -q -f vpc -o subformat=fixed " + vhd + " 4M").exit_code, 0);
  {
    auto plain = io::FileSource::Open(vhd);
    ASSERT_TRUE(plain.ok());
    if (!VhdDriver().probe(**plain)) GTEST_SKIP() << "VHD reader not available yet";
  }
  std::vector<uint8_t> b = testing::ReadAll(vhd);
  std::vector<uint8_t> q = QcowHeaderCluster(dir);
  std::memcpy(b.data(), q.data(), 512);
  io::MemorySource src(b);
  auto f = Detect(src);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Code::kRefused);
  EXPECT_EQ(f.status().message(), "detect.multiple_formats: the bytes are both qcow2 and vpc");
}

TEST(Detect, IsoThatIsAlsoAQcowIsRefused) {
  ScratchDir dir;
  ASSERT_EQ(RunCommand("mkdir -p " + dir.File("tree") + " && echo hi > " + dir.File("tree/a.txt"))
                .exit_code,
            0);
  const std::string iso = dir.File("a.iso");
  ASSERT_EQ(RunCommand("genisoimage -quiet -o " + iso + " " + dir.File("tree")).exit_code, 0);
  {
    auto plain = io::FileSource::Open(iso);
    ASSERT_TRUE(plain.ok());
    if (!IsoDriver().probe(**plain)) GTEST_SKIP() << "ISO reader not available yet";
    auto f = Detect(**plain);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ(*f, Format::kIso);
  }
  // The ISO's first 32 KiB (its system area) is free for anything, e.g. a qcow2 header.
  std::vector<uint8_t> b = testing::ReadAll(iso);
  std::vector<uint8_t> q = QcowHeaderCluster(dir);
  std::memcpy(b.data(), q.data(), 4096);
  io::MemorySource src(b);
  auto f = Detect(src);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Code::kRefused);
  EXPECT_EQ(f.status().message(), "detect.multiple_formats: the bytes are both qcow2 and iso");
}

TEST(Open, DeclaredFormatMustMatchTheBytes) {
  ScratchDir dir;
  ASSERT_EQ(RunCommand("qemu-img create -q -f qcow2 " + dir.File("w.qcow2") + " 1M").exit_code, 0);
  io::MemorySource src(testing::ReadAll(dir.File("w.qcow2")));
  auto as_raw = Open(src, Format::kRaw);
  ASSERT_FALSE(as_raw.ok());
  EXPECT_EQ(as_raw.status().code(), Code::kRefused);
  EXPECT_EQ(as_raw.status().message(),
            "detect.format_mismatch: declared raw but the bytes are qcow2");
  EXPECT_TRUE(Open(src, Format::kQcow2).ok());
  EXPECT_TRUE(Open(src).ok());
}

TEST(Open, RawImageReadsThroughAndReportsHoles) {
  ScratchDir dir;
  const std::string raw = dir.File("r.raw");
  testing::MakeRaw(raw, 64 << 20, testing::ScatteredWrites(64 << 20));
  auto file = io::FileSource::Open(raw);
  ASSERT_TRUE(file.ok());
  auto image = Open(**file);
  ASSERT_TRUE(image.ok());
  auto e = (*image)->BlockStatus(8 << 20, 1 << 20);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->zero);  // a hole of the sparse file
  e = (*image)->BlockStatus(0, 1 << 20);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->zero);
  std::vector<uint8_t> buf(16);
  ASSERT_TRUE((*image)->ReadAt(0, buf).ok());
  EXPECT_EQ(buf[0], 0x11);
}

}  // namespace
}  // namespace ingot::formats
