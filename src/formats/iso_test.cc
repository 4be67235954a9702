// ISO 9660 detection against images made by genisoimage; the disk must read as the raw file.
#include <gtest/gtest.h>

#include "formats/driver.h"
#include "formats/image_test_support.h"
#include "formats/mapped_image.h"

namespace ingot::formats {
namespace {

using testing::ExpectMatchesQemu;
using testing::InspectBytes;
using testing::kNoHole;
using testing::MustRun;
using testing::ReadWholeFile;
using testing::TempDir;

class IsoTest : public ::testing::Test {
 protected:
  std::string MakeIso() {
    const std::string tree = dir_.File("tree");
    const std::string iso = dir_.File("cd.iso");
    EXPECT_TRUE(MustRun("mkdir -p '" + tree + "/boot' && head -c 300000 /dev/urandom > '" + tree +
                        "/boot/kernel' && echo hello > '" + tree + "/README'"));
    EXPECT_TRUE(MustRun("genisoimage -quiet -R -J -V INGOT_TEST -o '" + iso + "' '" + tree + "'"));
    return iso;
  }
  TempDir dir_;
};

TEST_F(IsoTest, DetectsAndReadsAsRaw) {
  const std::string iso = MakeIso();
  ImageInfo info = ExpectMatchesQemu(IsoDriver(), "raw", iso, kNoHole);
  EXPECT_EQ(info.format_specific["volume-id"], "INGOT_TEST");
  EXPECT_EQ(info.format_specific["logical-block-size"], "2048");
  EXPECT_EQ(info.virtual_size, ReadWholeFile(iso).size());
  EXPECT_EQ(info.virtual_size, 2048 * std::stoull(info.format_specific["volume-space-size"]));
}

TEST_F(IsoTest, AppendedBytesStayInTheDiskButNotTheVolumeSize) {
  std::vector<uint8_t> b = ReadWholeFile(MakeIso());
  const uint64_t volume = b.size();
  b.resize(volume + (1 << 20), 0x3c);  // e.g. an appended EFI partition
  io::MemorySource src(b);
  auto info = IsoDriver().inspect(src);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->virtual_size, volume);
  auto image = IsoDriver().open(src);
  ASSERT_TRUE(image.ok());
  EXPECT_EQ((*image)->Size(), b.size());
  EXPECT_EQ(testing::ReadAll(**image), b);
}

TEST_F(IsoTest, MalformedDescriptors) {
  const std::vector<uint8_t> good = ReadWholeFile(MakeIso());
  std::vector<uint8_t> b = good;
  b[32768 + 84] ^= 1;  // big-endian copy of the volume space size
  EXPECT_EQ(InspectBytes(IsoDriver(), b).code(), Code::kInvalidArgument);

  b = good;
  b[32768 + 128] = 0;  // block size 0 in both copies
  b[32768 + 131] = 0;
  b[32768 + 129] = 0;
  b[32768 + 130] = 0;
  EXPECT_EQ(InspectBytes(IsoDriver(), b).code(), Code::kInvalidArgument);

  b = good;
  b.resize(b.size() / 2);  // truncated
  EXPECT_EQ(InspectBytes(IsoDriver(), b).code(), Code::kCorruption);

  b = good;
  b[32768] = 2;  // a supplementary descriptor where the primary should be
  io::MemorySource src(b);
  EXPECT_FALSE(IsoDriver().probe(src));
}

TEST(IsoProbe, ShortAndEmpty) {
  io::MemorySource tiny(std::string(100, 'x'));
  EXPECT_FALSE(IsoDriver().probe(tiny));
  EXPECT_EQ(IsoDriver().inspect(tiny).status().code(), Code::kInvalidArgument);
  io::MemorySource zeros(std::string(64 << 10, '\0'));
  EXPECT_FALSE(IsoDriver().probe(zeros));
}

}  // namespace
}  // namespace ingot::formats
