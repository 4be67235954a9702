// VHDX reader against qemu-img's vhdx driver, plus one hostile image per safety rule.
#include <gtest/gtest.h>

#include <array>

#include "formats/driver.h"
#include "formats/image_test_support.h"
#include "formats/mapped_image.h"

namespace ingot::formats {
namespace {

using testing::ExpectMatchesQemu;
using testing::InspectBytes;
using testing::PutLe64;
using testing::PutLe32;
using testing::kNoHole;
using testing::MakePatternedRaw;
using testing::MustRun;
using testing::ReadWholeFile;
using testing::TempDir;

constexpr uint64_t kSize = 12 << 20;
constexpr uint64_t kHole = 8 << 20;
constexpr size_t kHeaders[2] = {64 << 10, 128 << 10};
constexpr size_t kRegionTables[2] = {192 << 10, 256 << 10};

// An independent CRC-32C (bitwise) to reseal what the tests edit.
uint32_t Crc32c(const uint8_t* p, size_t n) {
  uint32_t c = ~0u;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
  }
  return ~c;
}
void Reseal(std::vector<uint8_t>& b, size_t at, size_t n) {
  PutLe32(b, at + 4, 0);
  PutLe32(b, at + 4, Crc32c(b.data() + at, n));
}

struct Region {
  uint64_t offset;
  uint32_t length;
};
// Region `index` (0 = BAT, 1 = metadata, in qemu's order) from the first region table.
Region RegionAt(const std::vector<uint8_t>& b, int index) {
  const uint8_t* e = b.data() + kRegionTables[0] + 16 + 32 * index;
  return {mapped::Le64(e + 16), mapped::Le32(e + 24)};
}
// File offset of the value of the metadata item whose GUID starts with `first_field`.
size_t MetadataItem(const std::vector<uint8_t>& b, uint32_t first_field) {
  const Region meta = RegionAt(b, 1);
  const uint16_t n = mapped::Le16(b.data() + meta.offset + 10);
  for (uint16_t i = 0; i < n; ++i) {
    const uint8_t* e = b.data() + meta.offset + 32 + 32 * i;
    if (mapped::Le32(e) == first_field) return meta.offset + mapped::Le32(e + 16);
  }
  ADD_FAILURE() << "no metadata item " << std::hex << first_field;
  return 0;
}

void Expect(const Status& s, Code code, const std::string& rule) {
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(rule), std::string::npos) << s.message();
}

class VhdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    raw_ = dir_.File("disk.raw");
    ASSERT_TRUE(MakePatternedRaw(raw_, kSize));
  }
  std::string Convert(const std::string& opts) {
    const std::string p = dir_.File("disk.vhdx");
    EXPECT_TRUE(MustRun("qemu-img convert -O vhdx " + opts + " '" + raw_ + "' '" + p + "'"));
    return p;
  }
  std::vector<uint8_t> Image() { return ReadWholeFile(Convert("-o block_size=1M")); }
  TempDir dir_;
  std::string raw_;
};

TEST_F(VhdxTest, SmallBlocksMatchQemu) {
  ImageInfo info = ExpectMatchesQemu(VhdxDriver(), "vhdx", Convert("-o block_size=1M"), kHole);
  EXPECT_EQ(info.cluster_size, 1u << 20);
  EXPECT_EQ(info.format_specific["logical-sector-size"], "512");
}

TEST_F(VhdxTest, DefaultBlocksMatchQemu) {
  ExpectMatchesQemu(VhdxDriver(), "vhdx", Convert(""), kNoHole);
}

TEST_F(VhdxTest, FixedMatchesQemu) {
  ExpectMatchesQemu(VhdxDriver(), "vhdx", Convert("-o subformat=fixed,block_size=1M"), kNoHole);
}

TEST_F(VhdxTest, BlocksAfterASectorBitmapEntry) {
  // 16 MiB blocks with 512-byte sectors give a chunk ratio of 256 (4 GiB per chunk), so in a 5 GiB
  // disk the BAT holds a sector bitmap entry between payload blocks 255 and 256.
  const std::string p = dir_.File("big.vhdx");
  ASSERT_TRUE(MustRun("qemu-img create -q -f vhdx -o block_size=16M '" + p + "' 5G"));
  ASSERT_TRUE(
      MustRun("qemu-io -f vhdx -c 'write -P 0x77 0 4k' -c 'write -P 0x99 4294967296 1M'"
              " -c 'write -P 0x55 5368705024 4096' '" +
              p + "' >/dev/null"));
  auto file = io::FileSource::Open(p);
  ASSERT_TRUE(file.ok());
  auto image = VhdxDriver().open(**file);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ((*image)->Size(), 5ull << 30);
  for (auto [off, byte] : {std::pair<uint64_t, uint8_t>{0, 0x77},
                           {4294967296, 0x99},
                           {4294967296 + (1 << 20) - 1, 0x99},
                           {5368705024, 0x55},
                           {1 << 30, 0}}) {
    uint8_t b = 0xff;
    ASSERT_TRUE((*image)->ReadAt(off, std::span(&b, 1)).ok());
    EXPECT_EQ(b, byte) << "at " << off;
  }
  EXPECT_TRUE((*image)->BlockStatus(1ull << 30, 1 << 20)->zero);
  EXPECT_FALSE((*image)->BlockStatus(4294967296, 1 << 20)->zero);
}

TEST_F(VhdxTest, FallsBackToOlderValidHeader) {
  std::vector<uint8_t> b = Image();
  // Damage whichever header is newer; the other one still describes the same disk.
  const int newer =
      mapped::Le64(b.data() + kHeaders[1] + 8) > mapped::Le64(b.data() + kHeaders[0] + 8);
  b[kHeaders[newer] + 100] ^= 1;
  EXPECT_TRUE(InspectBytes(VhdxDriver(), b).ok());
  b[kHeaders[1 - newer] + 100] ^= 1;
  EXPECT_EQ(InspectBytes(VhdxDriver(), b).code(), Code::kCorruption);
}

TEST_F(VhdxTest, RefusesLogReplay) {
  std::vector<uint8_t> b = Image();
  for (size_t h : kHeaders) {
    b[h + 48] = 0x42;  // a non-zero LogGuid
    Reseal(b, h, 4096);
  }
  Expect(InspectBytes(VhdxDriver(), b), Code::kRefused, "vhdx.log_replay");
}

TEST_F(VhdxTest, RefusesParent) {
  std::vector<uint8_t> b = Image();
  const size_t params = MetadataItem(b, 0xCAA16737);
  PutLe32(b, params + 4, mapped::Le32(b.data() + params + 4) | 2);
  Expect(InspectBytes(VhdxDriver(), b), Code::kRefused, "vhdx.has_parent");
}

TEST_F(VhdxTest, RefusesBlocksPastEndOrOverMetadata) {
  const std::vector<uint8_t> good = Image();
  const Region bat = RegionAt(good, 0), meta = RegionAt(good, 1);
  struct {
    uint64_t entry;
    const char* want;
  } cases[] = {
      {(uint64_t(1) << 40) | 6, "past the end"},          // block 0 at 1 TiB
      {(uint64_t(0) << 20) | 6, "overlaps the headers"},  // block 0 over the file's first MiB
      {(meta.offset / (1 << 20)) << 20 | 6, "overlaps the metadata"},
      {(bat.offset / (1 << 20)) << 20 | 6, "overlaps the BAT"},
  };
  for (const auto& c : cases) {
    std::vector<uint8_t> b = good;
    PutLe64(b, bat.offset, c.entry);
    Status s = InspectBytes(VhdxDriver(), b);
    Expect(s, Code::kRefused, "vhdx.block_offset: block 0");
    Expect(s, Code::kRefused, c.want);
  }
}

TEST_F(VhdxTest, RefusesRegionsOutsideTheFile) {
  std::vector<uint8_t> b = Image();
  for (size_t t : kRegionTables) {
    PutLe64(b, t + 16 + 16, 1ull << 50);  // BAT region far past the end
    Reseal(b, t, 64 << 10);
  }
  Expect(InspectBytes(VhdxDriver(), b), Code::kRefused, "vhdx.region_offset: BAT region");
  b = Image();
  for (size_t t : kRegionTables) {
    PutLe64(b, t + 16 + 16, 0);  // BAT region over the headers
    Reseal(b, t, 64 << 10);
  }
  Expect(InspectBytes(VhdxDriver(), b), Code::kRefused, "vhdx.region_offset: BAT region");
}

TEST_F(VhdxTest, TwoCurrentHeadersAreRefused) {
  std::vector<uint8_t> b = Image();
  PutLe64(b, kHeaders[1] + 8, mapped::Le64(b.data() + kHeaders[0] + 8));
  Reseal(b, kHeaders[1], 4 << 10);
  Expect(InspectBytes(VhdxDriver(), b), Code::kRefused, "vhdx.header_sequence");
}

// qemu reads only the region table at 192 KiB: we may not fall back to the copy at 256 KiB.
TEST_F(VhdxTest, RegionTablesAsQemuReadsThem) {
  std::vector<uint8_t> b = Image();
  b[kRegionTables[0] + 40] ^= 1;  // first copy's checksum now wrong
  Expect(InspectBytes(VhdxDriver(), b), Code::kRefused, "vhdx.region_table: the region table at");
  b = Image();
  PutLe64(b, kRegionTables[1] + 16 + 16, 1ull << 40);  // second copy: BAT elsewhere
  Reseal(b, kRegionTables[1], 64 << 10);
  Expect(InspectBytes(VhdxDriver(), b), Code::kRefused, "vhdx.region_table: the valid region");
}

TEST_F(VhdxTest, RefusesAbsurdSizes) {
  std::vector<uint8_t> b = Image();
  const size_t size_item = MetadataItem(b, 0x2FA54224);
  PutLe64(b, size_item, 1ull << 62);
  Expect(InspectBytes(VhdxDriver(), b), Code::kRefused, "vhdx.virtual_size");
  PutLe64(b, size_item, 64ull << 40);  // 64 TiB of 1 MiB blocks: a 512 MiB BAT in a 1 MiB region
  Expect(InspectBytes(VhdxDriver(), b), Code::kRefused, "vhdx.bat_size");
}

TEST(VhdxProbe, NeedsIdentifier) {
  io::MemorySource zeros(std::string(2 << 20, '\0'));
  EXPECT_FALSE(VhdxDriver().probe(zeros));
  EXPECT_EQ(VhdxDriver().inspect(zeros).status().code(), Code::kInvalidArgument);
  io::MemorySource tiny(std::string("vhdxfile"));
  EXPECT_TRUE(VhdxDriver().probe(tiny));
  EXPECT_FALSE(VhdxDriver().open(tiny).ok());
}

}  // namespace
}  // namespace ingot::formats
