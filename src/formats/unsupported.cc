// Formats qemu can open that Ingot does not read: each is detected by qemu 7.2's own probe rule (and
// by oslo.utils' format_inspector where it has one), so that none of them is ever taken for raw,
// and refused as `format.unsupported: <name>`. A refusal names any other file the image would make
// qemu open (a backing file, a parent hint), since that is the danger such an image carries.
//
// Probe rules, as read in qemu 7.2 block/*.c (the probe buffer is the first 512 bytes):
//   qcow (v1)  "QFI\xfb" and big-endian version 1 (qcow.c; version >= 2 is qcow2).
//   qed        "QED\0" (qed.c; oslo: same magic).
//   parallels  "WithoutFreeSpace" or "WithouFreSpacExt" and le32 version 2 at 16 (parallels.c).
//   bochs      "Bochs Virtual HD Image", type "Redolog", subtype Undoable/Volatile/Growing, version
//              0x00010000 or 0x00020000 (bochs.c). We take the magic alone: stricter.
//   cloop      the "#!/bin/sh\n#V2.0 Format\nmodprobe cloop ..." preamble (cloop.c).
//   dmg        qemu probes by file name (".dmg"); bytes alone show the "koly" trailer in the last
//              512 bytes, which is what we detect (a .dmg upload must not pass as raw).
//   luks       "LUKS\xba\xbe" and version 1 (crypto/block-luks.c); we also take version 2, which
//              qemu 7.2 opens with -f luks, and its secondary header magic "SKUL\xba\xbe".
#include <cstring>
#include <string>

#include "formats/driver.h"
#include "formats/mapped_image.h"

namespace ingot::formats {

namespace {

using mapped::Be16;
using mapped::Be32;
using mapped::Be64;
using mapped::Le32;
using mapped::Le64;

constexpr uint64_t kProbeBytes = 512;

// The first min(512, size) bytes, zero-padded: what qemu's probes see.
bool Head(io::ByteSource& file, uint8_t (&b)[kProbeBytes], uint64_t* got) {
  std::memset(b, 0, sizeof b);
  const uint64_t n = std::min<uint64_t>(file.Size(), kProbeBytes);
  *got = n;
  return n > 0 && io::ReadExact(file, 0, std::span(b, n)).ok();
}

// A name stored in the image, quoted for a message: printable ASCII kept, the rest escaped,
// bounded so a hostile image cannot flood the log.
std::string Quoted(const uint8_t* p, size_t n) {
  std::string out = "'";
  for (size_t i = 0; i < n && i < 256; ++i) {
    const uint8_t c = p[i];
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (n > 256) out += "...";
  return out + "'";
}

// Reads [offset, offset + length) of the file, bounded; empty when out of range.
std::string ReadName(io::ByteSource& file, uint64_t offset, uint64_t length) {
  if (length == 0 || length > 4096 || !mapped::Within(offset, length, file.Size())) return "";
  std::string s(length, '\0');
  if (!io::ReadExact(file, offset, std::span(reinterpret_cast<uint8_t*>(s.data()), s.size())).ok())
    return "";
  return Quoted(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

Status RefuseUnsupported(Format f, const std::string& detail) {
  return Refused("format.unsupported: " + std::string(FormatName(f)) +
                 (detail.empty() ? "" : " (" + detail + ")"));
}

Result<std::unique_ptr<DiskImage>> NeverOpen(Status refusal) { return refusal; }

// --- qcow (version 1) -----------------------------------------------------------------------------

bool ProbeQcow(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  return Head(file, b, &n) && n >= 8 && std::memcmp(b, "QFI\xfb", 4) == 0 && Be32(b + 4) == 1;
}
Status RefuseQcow(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  Head(file, b, &n);
  std::string detail = "virtual size " + std::to_string(Be64(b + 24));
  const uint64_t backing_offset = Be64(b + 8);
  const uint32_t backing_size = Be32(b + 16);
  if (backing_offset != 0 && backing_size != 0) {
    const std::string name = ReadName(file, backing_offset, backing_size);
    detail += "; names a backing file " + (name.empty() ? "at offset " +
                                                              std::to_string(backing_offset)
                                                        : name);
  }
  if (Be32(b + 36) != 0) detail += "; encrypted (crypt_method " + std::to_string(Be32(b + 36)) + ")";
  return RefuseUnsupported(Format::kQcow, detail);
}
Result<ImageInfo> InspectQcow(io::ByteSource& f) { return RefuseQcow(f); }
Result<std::unique_ptr<DiskImage>> OpenQcow(io::ByteSource& f) { return NeverOpen(RefuseQcow(f)); }

// --- QED ------------------------------------------------------------------------------------------

bool ProbeQed(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  return Head(file, b, &n) && n >= 4 && std::memcmp(b, "QED\0", 4) == 0;
}
Status RefuseQed(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  Head(file, b, &n);
  std::string detail = "virtual size " + std::to_string(Le64(b + 48));
  constexpr uint64_t kFeatureBackingFile = 1;
  const uint64_t features = Le64(b + 16);
  const uint32_t name_offset = Le32(b + 56), name_size = Le32(b + 60);
  // qemu follows the name when the feature bit says so; name it whenever either says there is one.
  if ((features & kFeatureBackingFile) || name_size != 0) {
    const std::string name = ReadName(file, name_offset, name_size);
    detail += "; names a backing file " +
              (name.empty() ? "at offset " + std::to_string(name_offset) : name);
  }
  return RefuseUnsupported(Format::kQed, detail);
}
Result<ImageInfo> InspectQed(io::ByteSource& f) { return RefuseQed(f); }
Result<std::unique_ptr<DiskImage>> OpenQed(io::ByteSource& f) { return NeverOpen(RefuseQed(f)); }

// --- Parallels ------------------------------------------------------------------------------------

bool ProbeParallels(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  if (!Head(file, b, &n) || n < 64) return false;
  const bool magic = std::memcmp(b, "WithoutFreeSpace", 16) == 0 ||
                     std::memcmp(b, "WithouFreSpacExt", 16) == 0;
  return magic && Le32(b + 16) == 2;
}
Status RefuseParallels(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  Head(file, b, &n);
  uint64_t sectors = Le64(b + 36);
  if (std::memcmp(b, "WithoutFreeSpace", 16) == 0) sectors &= 0xffffffffu;
  return RefuseUnsupported(Format::kParallels,
                           "virtual size " + std::to_string(sectors * 512));
}
Result<ImageInfo> InspectParallels(io::ByteSource& f) { return RefuseParallels(f); }
Result<std::unique_ptr<DiskImage>> OpenParallels(io::ByteSource& f) {
  return NeverOpen(RefuseParallels(f));
}

// --- Bochs ----------------------------------------------------------------------------------------

bool ProbeBochs(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  static constexpr char kMagic[] = "Bochs Virtual HD Image";
  return Head(file, b, &n) && n >= sizeof kMagic && std::memcmp(b, kMagic, sizeof kMagic) == 0;
}
Status RefuseBochs(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  Head(file, b, &n);
  const uint32_t version = Le32(b + 64);
  const uint64_t disk = version == 0x00010000 ? Le64(b + 84) : Le64(b + 88);
  return RefuseUnsupported(Format::kBochs, "virtual size " + std::to_string(disk));
}
Result<ImageInfo> InspectBochs(io::ByteSource& f) { return RefuseBochs(f); }
Result<std::unique_ptr<DiskImage>> OpenBochs(io::ByteSource& f) { return NeverOpen(RefuseBochs(f)); }

// --- cloop ----------------------------------------------------------------------------------------

constexpr char kCloopMagic[] =
    "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

bool ProbeCloop(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  const size_t len = sizeof kCloopMagic - 1;
  return Head(file, b, &n) && n > len && std::memcmp(b, kCloopMagic, len) == 0;
}
Status RefuseCloop(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  Head(file, b, &n);
  return RefuseUnsupported(Format::kCloop, "virtual size " + std::to_string(uint64_t(Be32(b + 128)) *
                                                                           Be32(b + 132)));
}
Result<ImageInfo> InspectCloop(io::ByteSource& f) { return RefuseCloop(f); }
Result<std::unique_ptr<DiskImage>> OpenCloop(io::ByteSource& f) { return NeverOpen(RefuseCloop(f)); }

// --- DMG ------------------------------------------------------------------------------------------

bool ProbeDmg(io::ByteSource& file) {
  uint8_t b[8];
  if (file.Size() < 512 || !io::ReadExact(file, file.Size() - 512, b).ok()) return false;
  // "koly", then a big-endian version (4) and header size (512).
  return std::memcmp(b, "koly", 4) == 0 && Be32(b + 4) == 4;
}
Status RefuseDmg(io::ByteSource&) {
  return RefuseUnsupported(Format::kDmg, "'koly' trailer in the last 512 bytes");
}
Result<ImageInfo> InspectDmg(io::ByteSource& f) { return RefuseDmg(f); }
Result<std::unique_ptr<DiskImage>> OpenDmg(io::ByteSource& f) { return NeverOpen(RefuseDmg(f)); }

// --- LUKS -----------------------------------------------------------------------------------------

bool ProbeLuks(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  if (!Head(file, b, &n) || n < 8) return false;
  const bool magic = std::memcmp(b, "LUKS\xba\xbe", 6) == 0 || std::memcmp(b, "SKUL\xba\xbe", 6) == 0;
  return magic && (Be16(b + 6) == 1 || Be16(b + 6) == 2);
}
Status RefuseLuks(io::ByteSource& file) {
  uint8_t b[kProbeBytes];
  uint64_t n;
  Head(file, b, &n);
  const uint16_t version = Be16(b + 6);
  std::string detail = "version " + std::to_string(version) + "; encrypted, needs a key";
  // A LUKS header may live apart from its data (cryptsetup --header): this file may be the header
  // of another file's payload, or a payload whose header is elsewhere.
  if (version == 1) {
    const uint32_t payload_sector = Be32(b + 104);
    if (payload_sector == 0) detail += "; payload offset 0: a detached header names no data here";
    else detail += "; payload at sector " + std::to_string(payload_sector);
  } else {
    detail += "; the header may be detached from its data";
  }
  return RefuseUnsupported(Format::kLuks, detail);
}
Result<ImageInfo> InspectLuks(io::ByteSource& f) { return RefuseLuks(f); }
Result<std::unique_ptr<DiskImage>> OpenLuks(io::ByteSource& f) { return NeverOpen(RefuseLuks(f)); }

}  // namespace

const Driver& QcowDriver() {
  static const Driver d{Format::kQcow, ProbeQcow, InspectQcow, OpenQcow};
  return d;
}
const Driver& QedDriver() {
  static const Driver d{Format::kQed, ProbeQed, InspectQed, OpenQed};
  return d;
}
const Driver& ParallelsDriver() {
  static const Driver d{Format::kParallels, ProbeParallels, InspectParallels, OpenParallels};
  return d;
}
const Driver& BochsDriver() {
  static const Driver d{Format::kBochs, ProbeBochs, InspectBochs, OpenBochs};
  return d;
}
const Driver& CloopDriver() {
  static const Driver d{Format::kCloop, ProbeCloop, InspectCloop, OpenCloop};
  return d;
}
const Driver& DmgDriver() {
  static const Driver d{Format::kDmg, ProbeDmg, InspectDmg, OpenDmg};
  return d;
}
const Driver& LuksDriver() {
  static const Driver d{Format::kLuks, ProbeLuks, InspectLuks, OpenLuks};
  return d;
}

}  // namespace ingot::formats
