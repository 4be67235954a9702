// Detection by qemu 7.2's probe rules (and oslo.utils' inspector where it is stricter): every
// format qemu can open is known by name and never raw; those Ingot does not read are refused as
// `format.unsupported: <name>` naming any other file they reference; polyglots (a partition table
// beside another header, a format hiding in an ISO's system area) are refused by the two-formats
// rule. Each case is checked through the three entry points that must agree: Inspect over the
// file, the streaming inspector fed the same bytes, and `ingot-img check` / `ingot-img info`.
//
// Every case here was called raw (or "safe") before this file existed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "formats/format.h"
#include "formats/image_test_support.h"
#include "formats/streaming.h"
#include "formats/testing/image_fixtures.h"
#include "io/file.h"
#include "io/memory.h"

namespace ingot::formats {
namespace {

using testing::PutBe32;
using testing::PutBe64;
using testing::PutLe32;
using testing::PutLe64;
using testing::ReadWholeFile;
using testing::RunCommand;
using testing::ScratchDir;
using testing::WriteWholeFile;

const std::string kImg = INGOT_IMG_PATH;

struct Verdict {
  Code code = Code::kOk;
  std::string message;
  std::string format;  // when ok
};

// Inspect, the streaming inspector and ingot-img check/info on the same bytes: the three must give
// the same verdict (for streaming, kUnavailable means "decide on the stored file" and defers).
Verdict VerdictEverywhere(const std::vector<uint8_t>& bytes, const std::string& label) {
  io::MemorySource mem{std::vector<uint8_t>(bytes)};
  Result<ImageInfo> direct = Inspect(mem);
  Verdict v;
  if (direct.ok()) {
    v.format = std::string(FormatName(direct->format));
  } else {
    v.code = direct.status().code();
    v.message = direct.status().message();
  }

  StreamingInspector streaming;
  for (size_t at = 0; at < bytes.size(); at += 65536) {
    const size_t n = std::min<size_t>(65536, bytes.size() - at);
    EXPECT_TRUE(streaming.Write(std::span(bytes.data() + at, n)).ok());
  }
  Result<ImageInfo> streamed = streaming.Finish();
  if (!(streamed.status().code() == Code::kUnavailable)) {
    EXPECT_EQ(streamed.status().code(), v.code) << label << ": " << streamed.status().message();
    if (streamed.ok() && direct.ok()) {
      EXPECT_EQ(streamed->format, direct->format) << label;
    } else if (!streamed.ok() && !direct.ok()) {
      EXPECT_EQ(streamed.status().message(), v.message) << label;
    }
  }

  ScratchDir dir;
  const std::string path = dir.File("image");
  WriteWholeFile(path, bytes);
  const testing::CommandResult check = RunCommand(kImg + " check " + path + " 2>&1");
  const testing::CommandResult info = RunCommand(kImg + " info --output json " + path + " 2>&1");
  const int want_exit = v.code == Code::kOk ? 0 : v.code == Code::kRefused ? 2 : 3;
  EXPECT_EQ(check.exit_code, want_exit) << label << ": " << check.output;
  EXPECT_EQ(info.exit_code, want_exit) << label << ": " << info.output;
  if (v.code != Code::kOk) {
    EXPECT_NE(check.output.find(v.message), std::string::npos) << label << ": " << check.output;
    EXPECT_NE(info.output.find(v.message), std::string::npos) << label << ": " << info.output;
  } else {
    EXPECT_NE(info.output.find("\"format\": \"" + v.format + "\""), std::string::npos)
        << label << ": " << info.output;
  }
  return v;
}

void ExpectRefused(const std::vector<uint8_t>& bytes, const std::string& label,
                   const std::vector<std::string>& needles) {
  const Verdict v = VerdictEverywhere(bytes, label);
  ASSERT_EQ(v.code, Code::kRefused) << label << ": " << v.message << " format " << v.format;
  for (const std::string& n : needles) {
    EXPECT_NE(v.message.find(n), std::string::npos) << label << ": " << v.message;
  }
}

std::vector<uint8_t> Bytes(const std::string& s, size_t pad_to = 0) {
  std::vector<uint8_t> b(s.begin(), s.end());
  if (b.size() < pad_to) b.resize(pad_to, 0);
  return b;
}

bool Qemu(const std::string& cmd) { return RunCommand(cmd + " >/dev/null 2>&1").exit_code == 0; }

// --- formats qemu opens and we do not read ---------------------------------------------------------

TEST(QemuProbe, QedWithBackingFileIsRefusedNamingIt) {
  ScratchDir dir;
  const std::string f = dir.File("a.qed");
  ASSERT_TRUE(Qemu("qemu-img create -f raw " + dir.File("base") + " 1M"));
  ASSERT_TRUE(Qemu("qemu-img create -f qed -b " + dir.File("base") + " -F raw " + f + " 1M"));
  ExpectRefused(ReadWholeFile(f), "qed", {"format.unsupported: qed", "backing file", "base"});
  ASSERT_TRUE(Qemu("qemu-img create -f qed " + f + " 1M"));
  ExpectRefused(ReadWholeFile(f), "qed plain", {"format.unsupported: qed"});
}

TEST(QemuProbe, QcowV1WithBackingFileIsRefusedNamingIt) {
  ScratchDir dir;
  const std::string f = dir.File("a.qcow");
  ASSERT_TRUE(Qemu("qemu-img create -f raw " + dir.File("base") + " 1M"));
  ASSERT_TRUE(Qemu("qemu-img create -f qcow -b " + dir.File("base") + " -F raw " + f + " 1M"));
  ExpectRefused(ReadWholeFile(f), "qcow", {"format.unsupported: qcow ", "backing file", "base"});
}

TEST(QemuProbe, ParallelsIsRefused) {
  ScratchDir dir;
  const std::string f = dir.File("a.hdd");
  ASSERT_TRUE(Qemu("qemu-img create -f parallels " + f + " 4M"));
  ExpectRefused(ReadWholeFile(f), "parallels", {"format.unsupported: parallels", "4194304"});
}

TEST(QemuProbe, LuksV1AndV2AreRefused) {
  ScratchDir dir;
  const std::string f = dir.File("a.luks");
  // qemu times its key derivation against the clock (iter-time) and fails when the iterations it
  // measured fall under its minimum, which a machine busy with the rest of the suite makes happen
  // with short times: a longer time and several attempts.
  bool made = false;
  for (int attempt = 0; attempt < 5 && !made; ++attempt) {
    made = Qemu("qemu-img create --object secret,id=s0,data=x -f luks -o key-secret=s0,"
                "iter-time=" + std::to_string(250 * (attempt + 1)) + " " + f + " 4M");
  }
  ASSERT_TRUE(made);
  ExpectRefused(ReadWholeFile(f), "luks1", {"format.unsupported: luks", "version 1"});
  std::vector<uint8_t> v2 = Bytes("LUKS\xba\xbe", 16384);
  v2[6] = 0;
  v2[7] = 2;
  ExpectRefused(v2, "luks2", {"format.unsupported: luks", "version 2", "detached"});
}

TEST(QemuProbe, ReadOnlyFormatsOfQemuAreRefused) {
  // bochs: magic, type, subtype, version 2, disk size at 88.
  std::vector<uint8_t> bochs = Bytes("Bochs Virtual HD Image", 1 << 16);
  std::memcpy(bochs.data() + 32, "Redolog", 8);
  std::memcpy(bochs.data() + 48, "Growing", 8);
  PutLe32(bochs, 64, 0x00020000);
  PutLe32(bochs, 68, 512);
  PutLe64(bochs, 88, 1 << 20);
  ExpectRefused(bochs, "bochs", {"format.unsupported: bochs", "1048576"});

  std::vector<uint8_t> cloop = Bytes(
      "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n", 4096);
  PutBe32(cloop, 128, 65536);
  PutBe32(cloop, 132, 16);
  ExpectRefused(cloop, "cloop", {"format.unsupported: cloop", "1048576"});

  std::vector<uint8_t> dmg(1 << 16, 0);
  std::memcpy(dmg.data() + dmg.size() - 512, "koly", 4);
  PutBe32(dmg, dmg.size() - 508, 4);
  PutBe32(dmg, dmg.size() - 504, 512);
  ExpectRefused(dmg, "dmg", {"format.unsupported: dmg", "koly"});
}

TEST(QemuProbe, QcowMagicWithAnyOtherVersionIsNeverRaw) {
  // qemu takes "QFI\xfb" version 0 (or a file too short for a version) as raw; it is no disk.
  for (uint32_t version : {0u, 4u, 0xffffffffu}) {
    std::vector<uint8_t> b = Bytes("QFI\xfb", 1 << 16);
    PutBe32(b, 4, version);
    const Verdict v = VerdictEverywhere(b, "qcow2 v" + std::to_string(version));
    EXPECT_NE(v.code, Code::kOk) << version << " read as " << v.format;
  }
  const Verdict tiny = VerdictEverywhere(Bytes("QFI\xfb"), "4-byte qcow2 magic");
  EXPECT_NE(tiny.code, Code::kOk) << tiny.format;
}

// --- VMDK: every spelling qemu's or oslo's probe takes -------------------------------------------

TEST(QemuProbe, VmdkDescriptorSpellingsAreRefused) {
  const std::string extent = "RW 2048 FLAT \"/etc/passwd\" 0\n";
  const std::vector<std::string> spellings = {
      "# any comment\nversion=1\n" + extent,
      "#Disk descriptorFILE\r\nversion=2\r\nRW 2048 FLAT \"/etc/passwd\" 0\r\n",
      "   \n  \r\n# x\nversion=3\n" + extent,
      "version=1\n" + extent,
      "garbage first\ncreateType=\"monolithicFlat\"\n" + extent,  // oslo's rule
  };
  for (const std::string& s : spellings) {
    ExpectRefused(Bytes(s), s.substr(0, 20), {"vmdk."});
  }
  // Padded out to a raw-looking size, the descriptor is still no raw disk.
  ExpectRefused(Bytes("# c\nversion=1\n" + extent, 2 << 20), "padded", {"vmdk."});
}

TEST(QemuProbe, VmdkWithoutVersionLineStaysRaw) {
  // qemu: a bare "\n" line or any other first line means "not a descriptor"; oslo agrees.
  const Verdict v = VerdictEverywhere(Bytes("\nversion=1\n", 4096), "blank then version");
  EXPECT_EQ(v.code, Code::kOk);
  EXPECT_EQ(v.format, "raw");
}

TEST(QemuProbe, Vmdk3CowdIsRefusedNamingItsParentHint) {
  std::vector<uint8_t> b = Bytes("COWD", 1 << 16);
  PutLe32(b, 4, 1);         // version
  PutLe32(b, 8, 0);         // flags: not a root disk
  PutLe32(b, 12, 2048);     // sectors
  const std::string parent = "/var/lib/secret.vmdk";
  std::memcpy(b.data() + 32, parent.data(), parent.size());
  ExpectRefused(b, "cowd", {"format.unsupported: vmdk", "COWD", parent});
}

// --- polyglots -----------------------------------------------------------------------------------

std::vector<uint8_t> SmallImage(const std::string& format, const std::string& opts = "") {
  ScratchDir dir;
  const std::string f = dir.File("img");
  EXPECT_TRUE(Qemu("qemu-img create -f " + format + (opts.empty() ? "" : " -o " + opts) + " " + f +
                   " 16M"));
  return ReadWholeFile(f);
}

void AddMbrEntry(std::vector<uint8_t>& b) {
  b[446 + 4] = 0x83;  // Linux
  PutLe32(b, 446 + 8, 2048);
  PutLe32(b, 446 + 12, 2048);
  b[510] = 0x55;
  b[511] = 0xaa;
}

TEST(Polyglot, PartitionTableBesideAnotherHeaderIsRefused) {
  for (const std::string fmt : {"qcow2", "vmdk", "vdi", "vhdx", "qed"}) {
    std::vector<uint8_t> mbr = SmallImage(fmt);
    ASSERT_GE(mbr.size(), 1024u) << fmt;
    AddMbrEntry(mbr);
    ExpectRefused(mbr, fmt + "+mbr", {"detect.polyglot", "MBR", "0x83"});
    std::vector<uint8_t> gpt = SmallImage(fmt);
    std::memcpy(gpt.data() + 512, "EFI PART", 8);
    ExpectRefused(gpt, fmt + "+gpt", {"detect.polyglot", "GPT", "offset 512"});
  }
  // A dynamic VHD: its footer copy at offset 0 is a header.
  std::vector<uint8_t> vhd = SmallImage("vpc", "subformat=dynamic");
  AddMbrEntry(vhd);
  ExpectRefused(vhd, "vpc+mbr", {"detect.polyglot"});
}

TEST(Polyglot, FixedVhdHoldingAPartitionedDiskIsFine) {
  std::vector<uint8_t> vhd = SmallImage("vpc", "subformat=fixed");
  AddMbrEntry(vhd);
  const Verdict v = VerdictEverywhere(vhd, "fixed vhd with mbr");
  EXPECT_EQ(v.code, Code::kOk) << v.message;
  EXPECT_EQ(v.format, "vpc");
}

TEST(Polyglot, IsoSystemAreaHoldingAnotherFormatIsRefused) {
  ScratchDir dir;
  RunCommand("mkdir -p " + dir.File("t") + " && echo hi > " + dir.File("t/a"));
  ASSERT_TRUE(Qemu("genisoimage -quiet -o " + dir.File("iso") + " " + dir.File("t")));
  const std::vector<uint8_t> iso = ReadWholeFile(dir.File("iso"));
  EXPECT_EQ(VerdictEverywhere(iso, "plain iso").format, "iso");
  std::vector<uint8_t> hybrid = iso;
  AddMbrEntry(hybrid);
  EXPECT_EQ(VerdictEverywhere(hybrid, "isohybrid").format, "iso");

  const std::vector<uint8_t> qcow2 = SmallImage("qcow2");
  std::vector<uint8_t> poly = iso;
  std::memcpy(poly.data() + 4096, qcow2.data(), 512);
  ExpectRefused(poly, "iso+qcow2@4096", {"iso.system_area", "qcow2", "4096"});
  std::vector<uint8_t> at0 = iso;
  std::memcpy(at0.data(), qcow2.data(), 512);
  ExpectRefused(at0, "iso+qcow2@0", {"detect.multiple_formats"});
}

// --- found by the differential harness's seeded mutations: qemu reads these differently ----------

TEST(QemuReadsDifferently, VdiLinkOrParentUuid) {
  for (size_t at : {size_t{0x1a8}, size_t{0x1b8}}) {
    std::vector<uint8_t> b = SmallImage("vdi");
    b[at + 5] = 0x42;
    ExpectRefused(b, "vdi uuid", {at == 0x1a8 ? "vdi.link_uuid" : "vdi.parent_uuid"});
  }
}

TEST(QemuReadsDifferently, DynamicVhdWithoutItsHeadCopy) {
  std::vector<uint8_t> b = SmallImage("vpc", "subformat=dynamic");
  std::memset(b.data(), 0, 8);  // qemu's probe now says raw
  ExpectRefused(b, "vhd head", {"vhd.footer_copies"});
}

TEST(QemuReadsDifferently, VmdkOverheadPastTheEnd) {
  std::vector<uint8_t> b = SmallImage("vmdk");
  PutLe64(b, 64, 1ull << 40);
  ExpectRefused(b, "vmdk overhead", {"vmdk.grain_offset: overhead"});
}

}  // namespace
}  // namespace ingot::formats
