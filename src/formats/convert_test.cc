// Conversion at the library level: raw to a sink, a stream and a file; qcow2 output in every mode,
// checked by the real `qemu-img check` and read back by qemu; progress and cancellation.
#include "formats/convert.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "formats/testing/image_fixtures.h"
#include "io/file.h"
#include "io/memory.h"

namespace ingot::formats {
namespace {

using testing::CommandResult;
using testing::RunCommand;
using testing::ScratchDir;

// A raw disk image in memory: zeros with a few data runs, one of random (incompressible) bytes, and
// a virtual size that is not a multiple of any cluster size.
std::vector<uint8_t> SampleDisk() {
  std::vector<uint8_t> d((5ull << 20) + 1234, 0);
  std::mt19937 rng(7);
  for (size_t i = 0; i < 200000; ++i) d[100000 + i] = uint8_t(i % 251);
  for (size_t i = 0; i < 300000; ++i) d[(2 << 20) + i] = uint8_t(rng());
  d[(4 << 20) + 17] = 0x5a;  // a lone byte in an otherwise empty cluster
  for (size_t i = d.size() - 700; i < d.size(); ++i) d[i] = 0xee;  // the partial last cluster
  return d;
}

class Collector final : public io::Writer {
 public:
  Status Write(std::span<const uint8_t> b) override {
    bytes.insert(bytes.end(), b.begin(), b.end());
    return Status::Ok();
  }
  std::vector<uint8_t> bytes;
};

TEST(ConvertToRaw, SinkStreamAndFileAllHoldTheSameBytes) {
  const std::vector<uint8_t> disk = SampleDisk();
  io::MemorySource src(disk);
  auto image = Open(src);
  ASSERT_TRUE(image.ok());
  for (unsigned threads : {1u, 2u, 3u}) {
    ConvertOptions o;
    o.threads = threads;
    io::MemorySink sink;
    ASSERT_TRUE(ConvertToRaw(**image, sink, o).ok());
    EXPECT_TRUE(sink.data() == disk) << threads;
    Collector out;
    ASSERT_TRUE(ConvertToRawStream(**image, out, o).ok());
    EXPECT_TRUE(out.bytes == disk) << threads;
  }
  ScratchDir dir;
  ASSERT_TRUE(ConvertToRawFile(**image, dir.File("o.raw")).ok());
  EXPECT_TRUE(testing::ReadAll(dir.File("o.raw")) == disk);
}

TEST(ConvertToRaw, OutputOfAMostlyEmptyImageIsSparse) {
  ScratchDir dir;
  const uint64_t size = 256ull << 20;
  testing::MakeRaw(dir.File("s.raw"), size, testing::ScatteredWrites(size));
  testing::QemuConvert(dir.File("s.raw"), dir.File("s.qcow2"), "qcow2");
  auto file = io::FileSource::Open(dir.File("s.qcow2"));
  ASSERT_TRUE(file.ok());
  auto image = Open(**file);
  ASSERT_TRUE(image.ok());
  ASSERT_TRUE(ConvertToRawFile(**image, dir.File("o.raw")).ok());
  struct stat st;
  ASSERT_EQ(::stat(dir.File("o.raw").c_str(), &st), 0);
  EXPECT_EQ(uint64_t(st.st_size), size);
  EXPECT_LT(uint64_t(st.st_blocks) * 512, 8ull << 20);  // ~2.3 MiB of data, the rest holes
  EXPECT_EQ(RunCommand("cmp " + dir.File("o.raw") + " " + dir.File("s.raw")).exit_code, 0);
}

// On a tmpfs, one worker writes with pwrite and the others through a shared mapping of the output
// (convert.cc, TmpfsOutputMap). 512-byte qcow2 clusters put runs of different workers in the same
// page; compressed clusters take the read-and-write path; the output must still be the disk, byte
// for byte, with its all-zero 4 KiB blocks left as holes.
TEST(ConvertToRaw, OnTmpfsEveryWorkerCountWritesTheSameSparseBytes) {
  struct statfs fs;
  if (::statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC) GTEST_SKIP() << "no tmpfs";
  char tmpl[] = "/dev/shm/ingot-convert-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::vector<uint8_t> disk = SampleDisk();
  {
    std::ofstream f(dir + "/d.raw", std::ios::binary);
    f.write(reinterpret_cast<const char*>(disk.data()), std::streamsize(disk.size()));
  }
  testing::QemuConvert(dir + "/d.raw", dir + "/small.qcow2", "qcow2", "cluster_size=512");
  testing::QemuConvert(dir + "/d.raw", dir + "/z.qcow2", "qcow2", "", /*compress=*/true);
  for (const char* name : {"d.raw", "small.qcow2", "z.qcow2"}) {
    auto file = io::FileSource::Open(dir + "/" + name);
    ASSERT_TRUE(file.ok()) << name;
    auto image = Open(**file);
    ASSERT_TRUE(image.ok()) << name;
    std::vector<uint8_t> want = disk;  // qcow2 pads the disk with zeros to whole sectors
    want.resize((*image)->Size(), 0);
    for (unsigned threads : {1u, 2u, 4u}) {
      ConvertOptions o;
      o.threads = threads;
      o.flush = false;
      const std::string out = dir + "/o.raw";
      ASSERT_TRUE(ConvertToRawFile(**image, out, o).ok()) << name << " " << threads;
      EXPECT_TRUE(testing::ReadAll(out) == want) << name << " " << threads;
      struct stat st;
      ASSERT_EQ(::stat(out.c_str(), &st), 0);
      // ~0.5 MiB of data in 5 MiB: the zero blocks between the runs stay holes.
      EXPECT_LT(uint64_t(st.st_blocks) * 512, 1ull << 20) << name << " " << threads;
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(ConvertToRaw, ReportsProgressAndCanBeCancelled) {
  const std::vector<uint8_t> disk = SampleDisk();
  io::MemorySource src(disk);
  auto image = Open(src);
  ASSERT_TRUE(image.ok());
  std::vector<uint64_t> seen;
  ConvertOptions o;
  o.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, disk.size());
    seen.push_back(done);
    return true;
  };
  io::MemorySink sink;
  ASSERT_TRUE(ConvertToRaw(**image, sink, o).ok());
  ASSERT_FALSE(seen.empty());
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.back(), disk.size());

  o.progress = [](uint64_t done, uint64_t) { return done < (2ull << 20); };
  io::MemorySink cancelled;
  Status s = ConvertToRaw(**image, cancelled, o);
  EXPECT_EQ(s.code(), Code::kCancelled) << s.ToString();
}

struct Qcow2Mode {
  const char* name;
  ConvertOptions::Compression compression;
  uint32_t cluster_bits;
};

class ConvertToQcow2Modes : public ::testing::TestWithParam<Qcow2Mode> {};

TEST_P(ConvertToQcow2Modes, PassesQemuCheckAndReadsBackTheSame) {
  const Qcow2Mode& m = GetParam();
  const std::vector<uint8_t> disk = SampleDisk();
  io::MemorySource src(disk);
  auto image = Open(src);
  ASSERT_TRUE(image.ok());
  ScratchDir dir;
  const std::string out = dir.File("o.qcow2");
  {
    auto sink = io::FileSink::Create(out);
    ASSERT_TRUE(sink.ok());
    ConvertOptions o;
    o.compression = m.compression;
    o.cluster_bits = m.cluster_bits;
    Status s = ConvertToQcow2(**image, **sink, o);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  CommandResult check = RunCommand("qemu-img check " + out);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  ASSERT_EQ(
      RunCommand("qemu-img convert -f qcow2 -O raw " + out + " " + dir.File("b.raw")).exit_code, 0);
  // qcow2 holds whole sectors: the disk comes back padded with zeros to the next 512 bytes.
  std::vector<uint8_t> padded = disk;
  padded.resize((disk.size() + 511) / 512 * 512, 0);
  EXPECT_TRUE(testing::ReadAll(dir.File("b.raw")) == padded);
  EXPECT_EQ(testing::QemuInfoVirtualSize(out), padded.size());
  // And our own reader agrees.
  auto file = io::FileSource::Open(out);
  ASSERT_TRUE(file.ok());
  auto back = Open(**file);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  io::MemorySink again;
  ASSERT_TRUE(ConvertToRaw(**back, again).ok());
  EXPECT_TRUE(again.data() == padded);
}

INSTANTIATE_TEST_SUITE_P(
    All, ConvertToQcow2Modes,
    ::testing::Values(Qcow2Mode{"plain", ConvertOptions::Compression::kNone, 16},
                      Qcow2Mode{"zlib", ConvertOptions::Compression::kZlib, 16},
                      Qcow2Mode{"zstd", ConvertOptions::Compression::kZstd, 16},
                      Qcow2Mode{"small_clusters", ConvertOptions::Compression::kNone, 9},
                      Qcow2Mode{"small_clusters_zlib", ConvertOptions::Compression::kZlib, 12},
                      Qcow2Mode{"big_clusters", ConvertOptions::Compression::kNone, 21},
                      Qcow2Mode{"big_clusters_zstd", ConvertOptions::Compression::kZstd, 21}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ConvertToQcow2, EmptyAndZeroSizedDisks) {
  ScratchDir dir;
  for (uint64_t size : {uint64_t{0}, uint64_t{1} << 30}) {
    std::vector<uint8_t> none;
    ASSERT_EQ(RunCommand("truncate -s " + std::to_string(size) + " " + dir.File("e.raw")).exit_code,
              0);
    auto file = io::FileSource::Open(dir.File("e.raw"));
    ASSERT_TRUE(file.ok());
    auto image = Open(**file);
    ASSERT_TRUE(image.ok());
    auto sink = io::FileSink::Create(dir.File("e.qcow2"));
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE(ConvertToQcow2(**image, **sink).ok());
    CommandResult check = RunCommand("qemu-img check " + dir.File("e.qcow2"));
    EXPECT_EQ(check.exit_code, 0) << size << ": " << check.output;
    EXPECT_EQ(testing::QemuInfoVirtualSize(dir.File("e.qcow2")), size);
  }
}

}  // namespace
}  // namespace ingot::formats
