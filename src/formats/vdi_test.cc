// VDI reader against qemu-img's vdi driver, plus one hostile image per safety rule.
#include <gtest/gtest.h>

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


class VdiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    raw_ = dir_.File("disk.raw");
    ASSERT_TRUE(MakePatternedRaw(raw_, kSize));
  }
  std::string Convert(const std::string& opts) {
    const std::string p = dir_.File("disk.vdi");
    EXPECT_TRUE(MustRun("qemu-img convert -O vdi -o " + opts + " '" + raw_ + "' '" + p + "'"));
    return p;
  }
  std::vector<uint8_t> Dynamic() { return ReadWholeFile(Convert("static=off")); }
  TempDir dir_;
  std::string raw_;
};

TEST_F(VdiTest, DynamicMatchesQemu) {
  ImageInfo info = ExpectMatchesQemu(VdiDriver(), "vdi", Convert("static=off"), kHole);
  EXPECT_EQ(info.format_specific["image-type"], "normal");
  EXPECT_EQ(info.cluster_size, 1u << 20);
}

TEST_F(VdiTest, StaticMatchesQemu) {
  ImageInfo info = ExpectMatchesQemu(VdiDriver(), "vdi", Convert("static=on"), kNoHole);
  EXPECT_EQ(info.format_specific["image-type"], "fixed");
}

TEST_F(VdiTest, DiscardedBlockReadsAsZero) {
  std::vector<uint8_t> b = Dynamic();
  const uint32_t map = mapped::Le32(b.data() + 340);
  PutLe32(b, map, 0xfffffffe);  // block 0 (which held 0xab) discarded
  io::MemorySource src(b);
  auto image = VdiDriver().open(src);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  std::vector<uint8_t> buf(4096, 1);
  ASSERT_TRUE((*image)->ReadAt(0, buf).ok());
  EXPECT_EQ(buf, std::vector<uint8_t>(4096, 0));
  EXPECT_TRUE((*image)->BlockStatus(0, 4096)->zero);
}

TEST_F(VdiTest, RefusesDifferencingAndUndo) {
  for (uint32_t type : {3u, 4u}) {
    std::vector<uint8_t> b = Dynamic();
    PutLe32(b, 76, type);
    Status s = InspectBytes(VdiDriver(), b);
    EXPECT_EQ(s.code(), Code::kRefused);
    EXPECT_NE(s.message().find("vdi.differencing"), std::string::npos) << s.message();
  }
}

TEST_F(VdiTest, RefusesBlockPastEnd) {
  std::vector<uint8_t> b = Dynamic();
  PutLe32(b, mapped::Le32(b.data() + 340), 0x00ffffff);
  Status s = InspectBytes(VdiDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused);
  EXPECT_NE(s.message().find("vdi.block_offset: block 0"), std::string::npos) << s.message();
}

TEST_F(VdiTest, RefusesDataOverlappingMap) {
  std::vector<uint8_t> b = Dynamic();
  PutLe32(b, 344, mapped::Le32(b.data() + 340));  // data area starts at the block map
  Status s = InspectBytes(VdiDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused);
  EXPECT_NE(s.message().find("vdi.data_offset"), std::string::npos) << s.message();
}

TEST_F(VdiTest, RefusesMapOverlappingHeader) {
  std::vector<uint8_t> b = Dynamic();
  PutLe32(b, 340, 64);
  Status s = InspectBytes(VdiDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused);
  EXPECT_NE(s.message().find("vdi.block_map_offset"), std::string::npos) << s.message();
}

TEST_F(VdiTest, RefusesAbsurdBlockMap) {
  std::vector<uint8_t> b = Dynamic();
  PutLe32(b, 384, 0xfffffff0);           // ~4 Gi blocks: a 16 GiB map
  PutLe64(b, 368, 0xfffffff0ull << 20);  // a disk size that the blocks cover
  Status s = InspectBytes(VdiDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused);
  EXPECT_NE(s.message().find("vdi.block_map_size"), std::string::npos) << s.message();
}

TEST_F(VdiTest, RefusesMapPastEnd) {
  std::vector<uint8_t> b = Dynamic();
  PutLe32(b, 384, 2 << 20);  // 8 MiB map in a 4 MiB file
  PutLe64(b, 368, 1ull << 40);
  PutLe32(b, 344, 16 << 20);
  Status s = InspectBytes(VdiDriver(), b);
  EXPECT_EQ(s.code(), Code::kRefused);
  EXPECT_NE(s.message().find("vdi.block_map_offset"), std::string::npos) << s.message();
}

TEST_F(VdiTest, DiskLargerThanBlocksIsInvalid) {
  std::vector<uint8_t> b = Dynamic();
  PutLe64(b, 368, 1ull << 50);
  Status s = InspectBytes(VdiDriver(), b);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
}

TEST(VdiProbe, NeedsSignature) {
  io::MemorySource zeros(std::string(1024, '\0'));
  EXPECT_FALSE(VdiDriver().probe(zeros));
  EXPECT_EQ(VdiDriver().inspect(zeros).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace ingot::formats
