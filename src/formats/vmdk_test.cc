// VMDK reader against qemu-img's vmdk driver, plus one hostile image per safety rule.
#include <gtest/gtest.h>

#include <thread>

#include "formats/driver.h"
#include "formats/image_test_support.h"
#include "formats/mapped_image.h"

namespace ingot::formats {
namespace {

using testing::ExpectMatchesQemu;
using testing::InspectBytes;
using testing::PutLe64;
using testing::PutLe32;
using testing::MakePatternedRaw;
using testing::MustRun;
using testing::ReadWholeFile;
using testing::Shell;
using testing::TempDir;
using testing::WriteWholeFile;

constexpr uint64_t kSize = 12 << 20;
constexpr uint64_t kHole = 8 << 20;

uint64_t GdOffset(const std::vector<uint8_t>& b) { return mapped::Le64(b.data() + 56) * 512; }
uint64_t Gt0Offset(const std::vector<uint8_t>& b) {
  return uint64_t(mapped::Le32(b.data() + GdOffset(b))) * 512;
}

// Replaces the embedded descriptor's text (NUL-padding the rest of its area).
void SetDescriptor(std::vector<uint8_t>& b, const std::string& text) {
  const uint64_t off = mapped::Le64(b.data() + 28) * 512, len = mapped::Le64(b.data() + 36) * 512;
  ASSERT_LT(text.size(), len);
  std::fill(b.begin() + off, b.begin() + off + len, 0);
  std::copy(text.begin(), text.end(), b.begin() + off);
}

std::string Descriptor(const std::string& create_type, const std::string& extents,
                       const std::string& extra = "") {
  return "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"" +
         create_type + "\"\n" + extra + "# Extent description\n" + extents +
         "\n#DDB\nddb.adapterType = \"ide\"\n";
}

void Expect(const Status& s, Code code, const std::string& rule) {
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(rule), std::string::npos) << s.message();
}

class VmdkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    raw_ = dir_.File("disk.raw");
    ASSERT_TRUE(MakePatternedRaw(raw_, kSize));
  }
  std::string Convert(const std::string& subformat, const std::string& extra = "") {
    const std::string p = dir_.File(subformat + ".vmdk");
    EXPECT_TRUE(MustRun("qemu-img convert -O vmdk -o subformat=" + subformat + extra + " '" + raw_ +
                        "' '" + p + "'"));
    return p;
  }
  std::vector<uint8_t> Sparse() { return ReadWholeFile(Convert("monolithicSparse")); }
  TempDir dir_;
  std::string raw_;
};

TEST_F(VmdkTest, MonolithicSparseMatchesQemu) {
  const std::string p = Convert("monolithicSparse", ",adapter_type=lsilogic");
  ImageInfo info = ExpectMatchesQemu(VmdkDriver(), "vmdk", p, kHole);
  EXPECT_EQ(info.format_specific["create-type"], "monolithicSparse");
  EXPECT_EQ(info.format_specific["adapter-type"], "lsilogic");
  EXPECT_EQ(info.format_specific["parent-cid"], "4294967295");
  EXPECT_EQ(info.cluster_size, 65536u);
  EXPECT_EQ(info.compression, "");
  const std::string json = Shell("qemu-img info --output=json '" + p + "'");
  EXPECT_NE(json.find("\"cid\": " + info.format_specific["cid"] + ","), std::string::npos) << json;
}

TEST_F(VmdkTest, StreamOptimizedMatchesQemu) {
  ImageInfo info = ExpectMatchesQemu(VmdkDriver(), "vmdk", Convert("streamOptimized"), kHole);
  EXPECT_EQ(info.format_specific["create-type"], "streamOptimized");
  EXPECT_EQ(info.format_specific["adapter-type"], "ide");
  EXPECT_EQ(info.compression, "deflate");
}

TEST_F(VmdkTest, StreamOptimizedWithDirectoryAtEnd) {
  // Rewrite qemu's stream image the way streaming writers lay it out: header gdOffset = GD_AT_END
  // and the real header in a footer (footer marker, footer, end-of-stream marker) at the end.
  std::vector<uint8_t> b = ReadWholeFile(Convert("streamOptimized"));
  std::vector<uint8_t> footer(b.begin(), b.begin() + 512);
  PutLe64(b, 56, ~0ull);
  std::vector<uint8_t> marker(512, 0);
  PutLe64(marker, 0, 1);
  PutLe32(marker, 12, 3);  // MARKER_FOOTER
  b.insert(b.end(), marker.begin(), marker.end());
  b.insert(b.end(), footer.begin(), footer.end());
  b.insert(b.end(), 512, 0);  // end-of-stream marker
  const std::string p = dir_.File("at-end.vmdk");
  WriteWholeFile(p, b);
  ImageInfo info = ExpectMatchesQemu(VmdkDriver(), "vmdk", p, kHole);
  EXPECT_EQ(info.compression, "deflate");
  // And the bytes are the raw disk's, not merely what qemu thinks.
  auto file = io::FileSource::Open(p);
  ASSERT_TRUE(file.ok());
  auto image = VmdkDriver().open(**file);
  ASSERT_TRUE(image.ok());
  EXPECT_EQ(testing::ReadAll(**image, 4096), ReadWholeFile(raw_));
}

TEST_F(VmdkTest, SmallUnalignedReadsOfCompressedGrains) {
  auto file = io::FileSource::Open(Convert("streamOptimized"));
  ASSERT_TRUE(file.ok());
  auto image = VmdkDriver().open(**file);
  ASSERT_TRUE(image.ok());
  EXPECT_EQ(testing::ReadAll(**image, 777), ReadWholeFile(raw_));
}

TEST_F(VmdkTest, ConcurrentReadersOfCompressedGrains) {
  auto file = io::FileSource::Open(Convert("streamOptimized"));
  ASSERT_TRUE(file.ok());
  auto image = VmdkDriver().open(**file);
  ASSERT_TRUE(image.ok());
  const std::vector<uint8_t> want = ReadWholeFile(raw_);
  std::vector<std::vector<uint8_t>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] { got[t] = testing::ReadAll(**image, 4096 + 1000 * t); });
  }
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_TRUE(g == want);
}

TEST_F(VmdkTest, CapacityNotAMultipleOfTheGrain) {
  const std::string p = dir_.File("odd.vmdk");
  ASSERT_TRUE(MustRun("qemu-img create -q -f vmdk '" + p + "' 1000K"));
  ASSERT_TRUE(MustRun("qemu-io -f vmdk -c 'write -P 0x3a 1019904 4096' '" + p + "' >/dev/null"));
  ExpectMatchesQemu(VmdkDriver(), "vmdk", p, 0);
}

TEST_F(VmdkTest, ZeroedGrainEntries) {
  const std::string p = dir_.File("zg.vmdk");
  ASSERT_TRUE(MustRun("qemu-img create -q -f vmdk -o zeroed_grain=on '" + p + "' 1M"));
  ASSERT_TRUE(MustRun("qemu-io -f vmdk -c 'write -P 1 0 192k' -c 'write -z 64k 64k' '" + p +
                      "' >/dev/null"));
  std::vector<uint8_t> b = ReadWholeFile(p);
  ASSERT_EQ(mapped::Le32(b.data() + Gt0Offset(b) + 4), 1u);  // grain 1 is a zeroed-grain GTE
  ExpectMatchesQemu(VmdkDriver(), "vmdk", p, 64 << 10);
}

TEST_F(VmdkTest, SplitImageExtentAloneIsInvalid) {
  ASSERT_TRUE(MustRun("qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse '" +
                      dir_.File("split.vmdk") + "' 100M"));
  auto file = io::FileSource::Open(dir_.File("split-s001.vmdk"));
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(VmdkDriver().inspect(**file).status().code(), Code::kInvalidArgument);
}

TEST_F(VmdkTest, RefusesSeparateExtentFiles) {
  const struct {
    const char* subformat;
    const char* extent;
  } cases[] = {{"monolithicFlat", "monolithicFlat-flat.vmdk"},
               {"twoGbMaxExtentFlat", "twoGbMaxExtentFlat-f001.vmdk"},
               {"twoGbMaxExtentSparse", "twoGbMaxExtentSparse-s001.vmdk"}};
  for (const auto& c : cases) {
    const std::string p = Convert(c.subformat);
    auto file = io::FileSource::Open(p);
    ASSERT_TRUE(file.ok());
    EXPECT_TRUE(VmdkDriver().probe(**file)) << c.subformat;
    Status s = VmdkDriver().inspect(**file).status();
    Expect(s, Code::kRefused,
           std::string("vmdk.extent_file: '") + c.extent + "' is not this image");
    EXPECT_FALSE(VmdkDriver().open(**file).ok());
  }
}

TEST_F(VmdkTest, RefusesEmbeddedDescriptorNamingAnotherFile) {
  std::vector<uint8_t> b = Sparse();
  SetDescriptor(b, Descriptor("monolithicSparse", "RW 24576 FLAT \"/etc/passwd\" 0"));
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused,
         "vmdk.extent_file: '/etc/passwd' is not this image");

  b = Sparse();
  SetDescriptor(b, Descriptor("monolithicSparse",
                              "RW 24576 SPARSE \"self.vmdk\"\nRW 2048 FLAT \"other.vmdk\" 0"));
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused,
         "vmdk.extent_file: 'other.vmdk' is not this image");
}

TEST_F(VmdkTest, RefusesOtherCreateTypes) {
  std::vector<uint8_t> b = Sparse();
  SetDescriptor(b, Descriptor("vmfsSparse", "RW 24576 SPARSE \"self.vmdk\""));
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.create_type: 'vmfsSparse'");
}

TEST_F(VmdkTest, RefusesParents) {
  std::vector<uint8_t> b = Sparse();
  SetDescriptor(b, Descriptor("monolithicSparse", "RW 24576 SPARSE \"self.vmdk\"",
                              "parentFileNameHint=\"base.vmdk\"\n"));
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused,
         "vmdk.parent: parentFileNameHint 'base.vmdk'");
  b = Sparse();
  std::string d = Descriptor("monolithicSparse", "RW 24576 SPARSE \"self.vmdk\"");
  d.replace(d.find("parentCID=ffffffff"), 18, "parentCID=0badf00d");
  SetDescriptor(b, d);
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.parent: parentCID 0badf00d");
}

TEST_F(VmdkTest, RefusesTablesPastEndOrOverHeaders) {
  std::vector<uint8_t> b = Sparse();
  PutLe64(b, 56, 1ull << 40);  // grain directory far past the end
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.gd_offset");

  b = Sparse();
  PutLe64(b, 56, 1);  // grain directory over the descriptor
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.gd_offset");

  b = Sparse();
  PutLe32(b, GdOffset(b), 0x00ffffff);
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.gt_offset: grain table 0");

  b = Sparse();
  PutLe32(b, GdOffset(b), 2);  // grain table inside the descriptor
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.gt_offset: grain table 0");

  b = Sparse();
  PutLe32(b, Gt0Offset(b), 0x00ffffff);
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.grain_offset: grain 0");

  b = Sparse();
  PutLe32(b, Gt0Offset(b) + 4, 2);  // grain 1 over the descriptor
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.grain_offset: grain 1");
}

TEST_F(VmdkTest, RefusesOverlappingGrainTables) {
  const std::string p = dir_.File("big.vmdk");
  ASSERT_TRUE(MustRun("qemu-img create -q -f vmdk '" + p + "' 100M"));
  ASSERT_TRUE(MustRun("qemu-io -f vmdk -c 'write -P 1 0 4k' -c 'write -P 2 64M 4k' '" + p +
                      "' >/dev/null"));
  std::vector<uint8_t> b = ReadWholeFile(p);
  ASSERT_TRUE(InspectBytes(VmdkDriver(), b).ok());
  PutLe32(b, GdOffset(b) + 8, mapped::Le32(b.data() + GdOffset(b)));  // GD[2] = GD[0]
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.gt_overlap");
}

TEST_F(VmdkTest, RefusesOverflowingAndAbsurdSizes) {
  std::vector<uint8_t> b = Sparse();
  PutLe64(b, 12, 1ull << 62);  // capacity * 512 overflows
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.capacity");

  b = Sparse();
  PutLe64(b, 12, 1ull << 52);  // 2 EiB: a 4 GiB grain directory
  SetDescriptor(b, Descriptor("monolithicSparse", "RW 4503599627370496 SPARSE \"self.vmdk\""));
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.gd_size");

  b = Sparse();
  PutLe64(b, 36, 1ull << 60);  // descriptor size overflows
  Expect(InspectBytes(VmdkDriver(), b), Code::kRefused, "vmdk.descriptor_size");
}

TEST_F(VmdkTest, TextModeDamageIsCorruption) {
  std::vector<uint8_t> b = Sparse();
  b[75] = '\n';  // "\r\n" became "\n\n"
  EXPECT_EQ(InspectBytes(VmdkDriver(), b).code(), Code::kCorruption);
}

TEST_F(VmdkTest, CorruptCompressedGrainFailsReadNotOpen) {
  std::vector<uint8_t> b = ReadWholeFile(Convert("streamOptimized"));
  const uint64_t grain0 = uint64_t(mapped::Le32(b.data() + Gt0Offset(b))) * 512;
  b[grain0 + 12 + 4] ^= 0xff;  // damage the deflate stream
  io::MemorySource src(b);
  auto image = VmdkDriver().open(src);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  std::vector<uint8_t> buf(4096);
  auto r = (*image)->ReadAt(0, buf);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
}

TEST(VmdkProbe, SignaturesOnly) {
  io::MemorySource zeros(std::string(4096, '\0'));
  EXPECT_FALSE(VmdkDriver().probe(zeros));
  io::MemorySource text(std::string("# Disk DescriptorFile\nRW 8 FLAT \"x\" 0\n"));
  EXPECT_TRUE(VmdkDriver().probe(text));
  Expect(VmdkDriver().inspect(text).status(), Code::kRefused, "vmdk.extent_file: 'x'");
}

}  // namespace
}  // namespace ingot::formats
