// VHD reader against qemu-img's vpc driver, plus one hostile image per safety rule.
#include <gtest/gtest.h>

#include "formats/driver.h"
#include "formats/image_test_support.h"
#include "formats/mapped_image.h"

namespace ingot::formats {
namespace {

using testing::ExpectMatchesQemu;
using testing::InspectBytes;
using testing::PutBe64;
using testing::PutBe32;
using testing::kNoHole;
using testing::MakePatternedRaw;
using testing::MustRun;
using testing::ReadWholeFile;
using testing::TempDir;

constexpr uint64_t kSize = 12 << 20;
constexpr uint64_t kHole = 8 << 20;  // never written by MakePatternedRaw

// Recomputes the checksum of the structure of `n` bytes at `at` whose checksum field is at `field`.
void Reseal(std::vector<uint8_t>& b, size_t at, size_t n, size_t field) {
  uint32_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i < field || i >= field + 4) sum += b[at + i];
  }
  PutBe32(b, at + field, ~sum);
}
// Applies `edit` to both footers of a dynamic VHD (copy at 0 and at the end) and reseals them.
template <typename F>
void EditFooters(std::vector<uint8_t>& b, F edit) {
  for (size_t at : {size_t{0}, b.size() - 512}) {
    edit(at);
    Reseal(b, at, 512, 64);
  }
}

class VhdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    raw_ = dir_.File("disk.raw");
    ASSERT_TRUE(MakePatternedRaw(raw_, kSize));
  }
  std::vector<uint8_t> Dynamic() {
    const std::string p = dir_.File("d.vhd");
    EXPECT_TRUE(MustRun("qemu-img convert -O vpc -o subformat=dynamic '" + raw_ + "' '" + p + "'"));
    return ReadWholeFile(p);
  }
  TempDir dir_;
  std::string raw_;
};

TEST_F(VhdTest, DynamicMatchesQemu) {
  const std::string p = dir_.File("d.vhd");
  ASSERT_TRUE(MustRun("qemu-img convert -O vpc -o subformat=dynamic '" + raw_ + "' '" + p + "'"));
  ImageInfo info = ExpectMatchesQemu(VhdDriver(), "vpc", p, kHole);
  EXPECT_EQ(info.format_specific["subformat"], "dynamic");
  EXPECT_EQ(info.cluster_size, 2u << 20);
}

TEST_F(VhdTest, FixedMatchesQemu) {
  const std::string p = dir_.File("f.vhd");
  ASSERT_TRUE(MustRun("qemu-img convert -O vpc -o subformat=fixed '" + raw_ + "' '" + p + "'"));
  ImageInfo info = ExpectMatchesQemu(VhdDriver(), "vpc", p, kNoHole);
  EXPECT_EQ(info.format_specific["subformat"], "fixed");
}

TEST_F(VhdTest, CurrentSizeCreatorAndOddSize) {
  // force_size makes qemu write creator "qem2" and size from Current Size, not the CHS geometry.
  const std::string p = dir_.File("force.vhd");
  ASSERT_TRUE(
      MustRun("qemu-img create -q -f vpc -o subformat=dynamic,force_size=on '" + p + "' 40000000"));
  ASSERT_TRUE(MustRun("qemu-io -f vpc -c 'write -P 0x42 39990000 4096' '" + p + "' >/dev/null"));
  ImageInfo info = ExpectMatchesQemu(VhdDriver(), "vpc", p, 0);
  EXPECT_EQ(info.virtual_size, 40000000u);
}

TEST_F(VhdTest, SectorBitmapClearBitsReadAsZero) {
  std::vector<uint8_t> b = Dynamic();
  // Block 0 holds 0xab in its first 64 KiB. Clearing the bitmap bit of sector 1 must hide its data.
  const uint64_t bat = mapped::Be64(b.data() + 512 + 16);
  const uint64_t block0 = uint64_t(mapped::Be32(b.data() + bat)) * 512;
  b[block0] &= ~0x40;  // sector 1 is the second most significant bit of the first byte
  io::MemorySource src(b);
  auto image = VhdDriver().open(src);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  std::vector<uint8_t> buf(1536);
  ASSERT_TRUE((*image)->ReadAt(0, buf).ok());
  EXPECT_EQ(buf[0], 0xab);
  EXPECT_EQ(buf[512], 0);
  EXPECT_EQ(buf[1023], 0);
  EXPECT_EQ(buf[1024], 0xab);
  auto e = (*image)->BlockStatus(512, 4096);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->zero);
  EXPECT_EQ(e->length, 512u);
}

TEST_F(VhdTest, RefusesDifferencing) {
  std::vector<uint8_t> b = Dynamic();
  EditFooters(b, [&](size_t at) { PutBe32(b, at + 60, 4); });
  Status s = InspectBytes(VhdDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused);
  EXPECT_NE(s.message().find("vhd.differencing"), std::string::npos) << s.message();
}

TEST_F(VhdTest, RefusesBlockPastEnd) {
  std::vector<uint8_t> b = Dynamic();
  const uint64_t bat = mapped::Be64(b.data() + 512 + 16);
  PutBe32(b, bat, 0x7fffff00);
  Status s = InspectBytes(VhdDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused);
  EXPECT_NE(s.message().find("vhd.block_offset"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("past the end"), std::string::npos) << s.message();
}

TEST_F(VhdTest, RefusesBlockOverlappingHeaders) {
  std::vector<uint8_t> b = Dynamic();
  const uint64_t bat = mapped::Be64(b.data() + 512 + 16);
  PutBe32(b, bat, 1);  // the dynamic header's sector
  Status s = InspectBytes(VhdDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused);
  EXPECT_NE(s.message().find("vhd.block_offset"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("overlaps"), std::string::npos) << s.message();
}

TEST_F(VhdTest, RefusesAbsurdBat) {
  std::vector<uint8_t> b = Dynamic();
  PutBe32(b, 512 + 28, 0x40000000);  // 1 Gi entries: a 4 GiB table
  Reseal(b, 512, 1024, 36);
  Status s = InspectBytes(VhdDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused);
  EXPECT_NE(s.message().find("vhd.bat_size"), std::string::npos) << s.message();
}

TEST_F(VhdTest, RefusesBatPastEnd) {
  std::vector<uint8_t> b = Dynamic();
  PutBe64(b, 512 + 16, ~0ull - 8);  // table offset near 2^64: must not wrap
  Reseal(b, 512, 1024, 36);
  Status s = InspectBytes(VhdDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused);
  EXPECT_NE(s.message().find("vhd.bat_offset"), std::string::npos) << s.message();
}

TEST_F(VhdTest, RefusesFixedLargerThanFile) {
  const std::string p = dir_.File("f.vhd");
  ASSERT_TRUE(MustRun("qemu-img convert -O vpc -o subformat=fixed '" + raw_ + "' '" + p + "'"));
  std::vector<uint8_t> b = ReadWholeFile(p);
  const size_t at = b.size() - 512;
  std::memcpy(b.data() + at + 28, "win ", 4);  // size from Current Size
  PutBe64(b, at + 48, 1ull << 40);
  Reseal(b, at, 512, 64);
  Status s = InspectBytes(VhdDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused);
  EXPECT_NE(s.message().find("vhd.fixed_size"), std::string::npos) << s.message();
}

TEST_F(VhdTest, BadChecksumIsRefused) {
  std::vector<uint8_t> b = Dynamic();
  b[40] ^= 1;
  b[b.size() - 512 + 40] ^= 1;
  Status s = InspectBytes(VhdDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused) << s.ToString();
  EXPECT_NE(s.message().find("vhd.footer_checksum"), std::string::npos) << s.message();
}

// qemu reads the copy at offset 0, we the one at the end: a bad checksum on either copy, or copies
// that differ (each resealed), would make the two read different disks.
TEST_F(VhdTest, FooterCopiesMustAgree) {
  {
    std::vector<uint8_t> b = Dynamic();
    b[40] ^= 1;  // copy at 0 only
    Status s = InspectBytes(VhdDriver(), b);
    EXPECT_EQ(s.code(), Code::kRefused) << s.ToString();
    EXPECT_NE(s.message().find("vhd.footer_checksum: the footer at offset 0"), std::string::npos)
        << s.message();
  }
  {
    std::vector<uint8_t> b = Dynamic();
    b[48 + 3] ^= 0x10;  // current size of the copy at 0, resealed
    Reseal(b, 0, 512, 64);
    Status s = InspectBytes(VhdDriver(), b);
    EXPECT_EQ(s.code(), Code::kRefused) << s.ToString();
    EXPECT_NE(s.message().find("vhd.footer_copies"), std::string::npos) << s.message();
  }
}

TEST_F(VhdTest, FixedWithBadFooterChecksumIsRefused) {
  const std::string p = dir_.File("f.vhd");
  ASSERT_TRUE(MustRun("qemu-img convert -O vpc -o subformat=fixed '" + raw_ + "' '" + p + "'"));
  std::vector<uint8_t> b = ReadWholeFile(p);
  b[b.size() - 512 + 40] ^= 1;
  Status s = InspectBytes(VhdDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused) << s.ToString();
  EXPECT_NE(s.message().find("vhd.footer_checksum"), std::string::npos) << s.message();
}

TEST(VhdProbe, IgnoresOtherBytes) {
  io::MemorySource empty(std::string(4096, '\0'));
  EXPECT_FALSE(VhdDriver().probe(empty));
  io::MemorySource tiny(std::string("conect"));
  EXPECT_FALSE(VhdDriver().probe(tiny));
  EXPECT_FALSE(VhdDriver().inspect(tiny).ok());
}

}  // namespace
}  // namespace ingot::formats
