// qcow2 reader: every variant qemu-img makes reads byte-identical to `qemu-img convert -O raw`, and
// every safety rule refuses a hand-crafted hostile image, naming the rule.
#include <gtest/gtest.h>

#include "formats/driver.h"
#include "formats/image_test_support.h"
#include "formats/mapped_image.h"
#include "formats/qcow2_format.h"
#include "formats/testing/image_fixtures.h"
#include "io/file.h"
#include "io/memory.h"

namespace ingot::formats {
namespace {

using testing::CommandResult;
using testing::RunCommand;
using testing::ScratchDir;

constexpr uint64_t kSize = 64ull << 20;

struct Variant {
  const char* name;
  const char* options;  // qemu-img -o
  bool compress;
  const char* compression;  // expected ImageInfo::compression
};

class Qcow2Variants : public ::testing::TestWithParam<Variant> {};

TEST_P(Qcow2Variants, ReadsLikeQemu) {
  const Variant& v = GetParam();
  ScratchDir dir;
  const std::string raw = dir.File("src.raw"), img = dir.File("img.qcow2");
  testing::MakeRaw(raw, kSize, testing::ScatteredWrites(kSize));
  testing::QemuConvert(raw, img, "qcow2", v.options, v.compress);
  ImageInfo info = testing::ExpectMatchesQemu(Qcow2Driver(), "qcow2", img, 16ull << 20);
  EXPECT_EQ(info.compression, v.compression);
  EXPECT_EQ(info.virtual_size, kSize);
  EXPECT_TRUE(info.cluster_size.has_value());
}

INSTANTIATE_TEST_SUITE_P(
    All, Qcow2Variants,
    ::testing::Values(Variant{"v3", "", false, ""}, Variant{"v2", "compat=0.10", false, ""},
                      Variant{"v2zlib", "compat=0.10", true, "zlib"},
                      Variant{"zlib", "", true, "zlib"},
                      Variant{"zstd", "compression_type=zstd", true, "zstd"},
                      Variant{"extl2", "extended_l2=on,cluster_size=128k", false, ""},
                      Variant{"extl2zstd", "extended_l2=on,compression_type=zstd", true, "zstd"},
                      Variant{"small_clusters", "cluster_size=512", false, ""},
                      Variant{"big_clusters", "cluster_size=2M", false, ""},
                      Variant{"big_clusters_zlib", "cluster_size=2M", true, "zlib"},
                      Variant{"lazy", "lazy_refcounts=on", false, ""}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Qcow2, ExtendedL2SubclusterWritesReadLikeQemu) {
  ScratchDir dir;
  const std::string img = dir.File("sub.qcow2");
  ASSERT_EQ(RunCommand("qemu-img create -q -f qcow2 -o extended_l2=on " + img + " 8M").exit_code,
            0);
  // Single subclusters (2 KiB each at 64 KiB clusters), one zeroed subcluster inside data.
  CommandResult r = RunCommand(
      "qemu-io -f qcow2 -c 'write -P 7 2048 2048' -c 'write -P 9 1M 64k' "
      "-c 'write -z 1M 2048' -c 'write -P 3 6144 1024' " +
      img);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ImageInfo info = testing::ExpectMatchesQemu(Qcow2Driver(), "qcow2", img, 4ull << 20);
  EXPECT_EQ(info.format_specific["extended-l2"], "true");
}

TEST(Qcow2, ListsSnapshotsAndReadsTheActiveLayer) {
  ScratchDir dir;
  const std::string img = dir.File("snap.qcow2");
  ASSERT_EQ(RunCommand("qemu-img create -q -f qcow2 " + img + " 8M").exit_code, 0);
  ASSERT_EQ(RunCommand("qemu-io -f qcow2 -c 'write -P 1 0 64k' " + img).exit_code, 0);
  ASSERT_EQ(RunCommand("qemu-img snapshot -c first " + img).exit_code, 0);
  ASSERT_EQ(RunCommand("qemu-io -f qcow2 -c 'write -P 2 0 64k' " + img).exit_code, 0);
  ASSERT_EQ(RunCommand("qemu-img snapshot -c second " + img).exit_code, 0);
  ImageInfo info = testing::ExpectMatchesQemu(Qcow2Driver(), "qcow2", img, 4ull << 20);
  ASSERT_EQ(info.snapshots.size(), 2u);
  EXPECT_EQ(info.snapshots[0].name, "first");
  EXPECT_EQ(info.snapshots[1].name, "second");
  EXPECT_EQ(info.snapshots[0].id, "1");
  EXPECT_EQ(info.snapshots[0].virtual_size, 8ull << 20);
}

TEST(Qcow2, FormatSpecificMatchesQemuKeys) {
  ScratchDir dir;
  const std::string img = dir.File("a.qcow2");
  ASSERT_EQ(
      RunCommand("qemu-img create -q -f qcow2 -o compression_type=zstd " + img + " 1M").exit_code,
      0);
  auto file = io::FileSource::Open(img);
  ASSERT_TRUE(file.ok());
  auto info = Inspect(**file);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->format, Format::kQcow2);
  EXPECT_EQ(info->format_specific.at("compat"), "1.1");
  EXPECT_EQ(info->format_specific.at("compression-type"), "zstd");
  EXPECT_EQ(info->format_specific.at("refcount-bits"), "16");
  EXPECT_EQ(info->format_specific.at("lazy-refcounts"), "false");
  EXPECT_EQ(info->format_specific.at("corrupt"), "false");
  EXPECT_EQ(*info->cluster_size, 65536u);
}

// ---- hostile images ----

// A small valid qcow2 (4 MiB virtual, one data cluster at 0) made by qemu-img, as bytes to tamper
// with. qemu lays it out as: header 0, refcount table 0x10000, refcount block 0x20000, L1 0x30000,
// L2 0x40000, data 0x50000.
class Qcow2Hostile : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string img = dir_.File("base.qcow2");
    ASSERT_EQ(RunCommand("qemu-img create -q -f qcow2 " + img + " 4M").exit_code, 0);
    ASSERT_EQ(RunCommand("qemu-io -f qcow2 -c 'write -P 5 0 64k' " + img).exit_code, 0);
    bytes_ = testing::ReadAll(img);
    ASSERT_GE(bytes_.size(), 0x60000u);
    ASSERT_EQ(mapped::Be64(&bytes_[qcow2::kL1TableOffsetOff]), 0x30000u);
    l2_ = mapped::Be64(&bytes_[0x30000]) & qcow2::kOffsetMask;
    ASSERT_NE(l2_, 0u);
  }
  void Put32(uint64_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes_[at + i] = uint8_t(v >> (24 - 8 * i));
  }
  void Put64(uint64_t at, uint64_t v) {
    for (int i = 0; i < 8; ++i) bytes_[at + i] = uint8_t(v >> (56 - 8 * i));
  }
  // Inspect and Open must both refuse, naming `rule`.
  void ExpectRefused(const std::string& rule) {
    io::MemorySource src(bytes_);
    auto info = Inspect(src);
    ASSERT_FALSE(info.ok()) << "accepted an image breaking " << rule;
    EXPECT_EQ(info.status().code(), Code::kRefused) << info.status().ToString();
    EXPECT_NE(info.status().message().find(rule), std::string::npos) << info.status().ToString();
    auto image = Open(src);
    ASSERT_FALSE(image.ok());
    EXPECT_EQ(image.status().message(), info.status().message());
  }

  ScratchDir dir_;
  std::vector<uint8_t> bytes_;
  uint64_t l2_ = 0;
};

TEST_F(Qcow2Hostile, UntamperedImageIsAccepted) {
  io::MemorySource src(bytes_);
  auto info = Inspect(src);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->virtual_size, 4u << 20);
}

TEST_F(Qcow2Hostile, BackingFileIsRefusedWithItsName) {
  const std::string img = dir_.File("child.qcow2"), base = dir_.File("secret.raw");
  ASSERT_EQ(RunCommand("truncate -s 1M " + base).exit_code, 0);
  ASSERT_EQ(RunCommand("qemu-img create -q -f qcow2 -b " + base + " -F raw " + img).exit_code, 0);
  bytes_ = testing::ReadAll(img);
  ExpectRefused("qcow2.backing_file: '" + base + "'");
}

TEST_F(Qcow2Hostile, ExternalDataFileIsRefused) {
  const std::string img = dir_.File("ext.qcow2"), data = dir_.File("data.raw");
  ASSERT_EQ(
      RunCommand("qemu-img create -q -f qcow2 -o data_file=" + data + " " + img + " 1M").exit_code,
      0);
  bytes_ = testing::ReadAll(img);
  ExpectRefused("qcow2.data_file");
}

TEST_F(Qcow2Hostile, DataFileExtensionAloneIsRefused) {
  // The extension without the feature bit: a reader that ignores it is fine, but it is a lie.
  const uint64_t hl = mapped::Be32(&bytes_[qcow2::kHeaderLengthOff]);
  Put32(hl, qcow2::kExtDataFile);
  Put32(hl + 4, 8);
  std::memcpy(&bytes_[hl + 8], "/etc/pas", 8);
  Put32(hl + 16, 0);
  Put32(hl + 20, 0);
  ExpectRefused("qcow2.data_file: '/etc/pas'");
}

TEST_F(Qcow2Hostile, UnknownIncompatibleBitIsRefused) {
  Put64(qcow2::kIncompatibleOff, 1ull << 20);
  ExpectRefused("qcow2.incompatible_features: unknown bits 0x100000");
}

TEST_F(Qcow2Hostile, EncryptionIsRefused) {
  Put32(qcow2::kCryptMethodOff, 2);
  ExpectRefused("qcow2.encryption: crypt_method 2");
}

TEST_F(Qcow2Hostile, BadVersionIsRefused) {
  Put32(qcow2::kVersionOff, 4);
  ExpectRefused("qcow2.version: 4");
}

TEST_F(Qcow2Hostile, HugeClusterBitsAreRefused) {
  Put32(qcow2::kClusterBitsOff, 40);
  ExpectRefused("qcow2.cluster_bits: 40");
}

TEST_F(Qcow2Hostile, OverflowingVirtualSizeIsRefused) {
  Put64(qcow2::kSizeOff, ~0ull);
  ExpectRefused("qcow2.size");
}

TEST_F(Qcow2Hostile, VirtualSizeBeyondTheL1TableIsRefused) {
  Put64(qcow2::kSizeOff, 1ull << 50);
  ExpectRefused("qcow2.l1_size");
}

TEST_F(Qcow2Hostile, L1TablePastTheEndIsRefused) {
  Put64(qcow2::kL1TableOffsetOff, 1ull << 40);
  ExpectRefused("qcow2.l1_table: offset 1099511627776");
}

TEST_F(Qcow2Hostile, L1TableOffsetThatOverflowsIsRefused) {
  Put64(qcow2::kL1TableOffsetOff, 0xffffffffffff0000ull);
  ExpectRefused("qcow2.l1_table");
}

TEST_F(Qcow2Hostile, L1TableOverlappingTheHeaderIsRefused) {
  Put64(qcow2::kL1TableOffsetOff, 0);
  ExpectRefused("qcow2.l1_table: offset 0");
}

TEST_F(Qcow2Hostile, RefcountTablePastTheEndIsRefused) {
  Put64(qcow2::kRefcountTableOffsetOff, 1ull << 40);
  ExpectRefused("qcow2.refcount_table");
}

// qemu refuses these at open time; before, an empty refcount table passed (a zero-length range
// lies "inside" any file).
TEST_F(Qcow2Hostile, EmptyRefcountTableIsRefused) {
  Put32(qcow2::kRefcountTableClustersOff, 0);
  ExpectRefused("qcow2.refcount_table_clusters: 0");
}

TEST_F(Qcow2Hostile, RefcountTableOverQemusLimitIsRefused) {
  Put32(qcow2::kRefcountTableClustersOff, 1u << 20);
  ExpectRefused("qcow2.refcount_table_clusters: 1048576");
}

TEST_F(Qcow2Hostile, L1TableOnTheRefcountTableIsRefused) {
  Put64(qcow2::kL1TableOffsetOff, mapped::Be64(&bytes_[qcow2::kRefcountTableOffsetOff]));
  ExpectRefused("overlaps the refcount table");
}

TEST_F(Qcow2Hostile, L2TablePastTheEndIsRefused) {
  Put64(0x30000, (1ull << 40) | qcow2::kCopied);
  ExpectRefused("qcow2.l2_table: L1 entry 0 points at 1099511627776");
}

TEST_F(Qcow2Hostile, L2TableInTheHeaderIsRefused) {
  Put64(0x30000, 0x200 | qcow2::kCopied);  // misaligned, inside cluster 0
  ExpectRefused("qcow2.l2_table");
}

TEST_F(Qcow2Hostile, DataClusterPastTheEndIsRefused) {
  Put64(l2_, (1ull << 40) | qcow2::kCopied);
  ExpectRefused("qcow2.cluster: virtual cluster 0");
}

TEST_F(Qcow2Hostile, DataClusterOverlappingTheHeaderIsRefused) {
  Put64(l2_ + 8, qcow2::kCompressed | 100);  // compressed data at byte 100: inside the header
  ExpectRefused("qcow2.cluster: virtual cluster 1");
}

TEST_F(Qcow2Hostile, L2TableOnTheL1TableIsRefused) {
  Put64(0x30000, 0x30000 | qcow2::kCopied);  // the L2 table would be the L1 table itself
  ExpectRefused("qcow2.l2_table: L1 entry 0 points at 196608, inside the L1 table");
}

TEST_F(Qcow2Hostile, DataClusterOnTheRefcountTableIsRefused) {
  Put64(l2_, 0x10000 | qcow2::kCopied);  // guest data would overwrite/read the refcount table
  ExpectRefused(
      "qcow2.cluster: virtual cluster 0 (L2 entry 0x8000000000010000) points at 65536, "
      "inside the refcount table");
}

TEST_F(Qcow2Hostile, SnapshotTablePastTheEndIsRefused) {
  Put32(qcow2::kNbSnapshotsOff, 1);
  Put64(qcow2::kSnapshotsOffsetOff, 1ull << 40);
  ExpectRefused("qcow2.snapshots");
}

TEST_F(Qcow2Hostile, HeaderExtensionPastTheClusterIsRefused) {
  const uint64_t hl = mapped::Be32(&bytes_[qcow2::kHeaderLengthOff]);
  Put32(hl, 0x12345678);
  Put32(hl + 4, 0x00ffffff);
  ExpectRefused("qcow2.header_extension");
}

TEST_F(Qcow2Hostile, TruncatedHeaderIsMalformedNotACrash) {
  bytes_.resize(80);
  io::MemorySource src(bytes_);
  auto info = Qcow2Driver().inspect(src);
  EXPECT_FALSE(info.ok());
}

TEST_F(Qcow2Hostile, ReaderRefusesEntriesItMeetsLate) {
  // Open first, then corrupt nothing: reading must work; a reader opened over bytes whose L2 entry
  // is bad cannot be built at all (open runs inspect's scan).
  io::MemorySource good(bytes_);
  auto image = Qcow2Driver().open(good);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  std::vector<uint8_t> buf(65536);
  ASSERT_TRUE((*image)->ReadAt(0, buf).ok());
  EXPECT_EQ(buf[0], 5);
  EXPECT_EQ(buf[65535], 5);
}

}  // namespace
}  // namespace ingot::formats
