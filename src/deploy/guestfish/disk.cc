#include "deploy/guestfish/disk.h"

#include <cstring>
#include <set>

namespace ingot::deploy::guestfish {

namespace {

uint32_t Le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | uint32_t(p[3]) << 24; }
uint64_t Le64(const uint8_t* p) { return Le32(p) | uint64_t(Le32(p + 4)) << 32; }
uint16_t Le16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }

bool Within(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

constexpr uint32_t kMaxGptEntries = 4096;
constexpr int kMaxLogical = 128;

Result<bool> ReadGpt(const DiskReader& read, uint64_t size, uint64_t sector, DiskLayout* out) {
  uint8_t hdr[92];
  if (!Within(sector, sizeof hdr, size)) return false;
  INGOT_RETURN_IF_ERROR(read(sector, hdr, sizeof hdr));
  if (std::memcmp(hdr, "EFI PART", 8) != 0) return false;
  out->table = "gpt";
  const uint64_t lba = Le64(hdr + 72);
  const uint32_t count = Le32(hdr + 80), esize = Le32(hdr + 84);
  if (count == 0 || count > kMaxGptEntries || esize < 128 || esize > 4096) return true;
  if (lba > size / sector) return true;
  const uint64_t off = lba * sector, bytes = uint64_t(count) * esize;
  if (!Within(off, bytes, size)) return true;
  std::vector<uint8_t> entries(bytes);
  INGOT_RETURN_IF_ERROR(read(off, entries.data(), entries.size()));
  static const uint8_t kUnused[16] = {};
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* e = entries.data() + uint64_t(i) * esize;
    if (std::memcmp(e, kUnused, 16) == 0) continue;
    const uint64_t first = Le64(e + 32), last = Le64(e + 40);
    if (last < first || last >= size / sector) continue;
    out->partitions.push_back({int(i + 1), first * sector, (last - first + 1) * sector});
  }
  return true;
}

}  // namespace

Result<DiskLayout> ReadDiskLayout(const DiskReader& read, uint64_t size) {
  DiskLayout layout;
  uint8_t mbr[512];
  if (size < sizeof mbr) return layout;
  INGOT_RETURN_IF_ERROR(read(0, mbr, sizeof mbr));
  if (mbr[510] != 0x55 || mbr[511] != 0xAA) return layout;
  struct Entry {
    uint8_t type;
    uint64_t start, sectors;
  };
  Entry primaries[4];
  bool protective = false;
  for (int i = 0; i < 4; ++i) {
    const uint8_t* e = mbr + 446 + 16 * i;
    if (e[0] != 0x00 && e[0] != 0x80) return layout;  // a boot sector, not a partition table
    primaries[i] = {e[4], Le32(e + 8), Le32(e + 12)};
    if (e[4] == 0xEE) protective = true;
  }
  if (protective) {
    for (uint64_t sector : {uint64_t{512}, uint64_t{4096}}) {
      DiskLayout gpt;
      INGOT_ASSIGN_OR_RETURN(bool found, ReadGpt(read, size, sector, &gpt));
      if (found) return gpt;
    }
  }
  layout.table = "mbr";
  for (int i = 0; i < 4; ++i) {
    const Entry& p = primaries[i];
    if (p.type == 0 || p.sectors == 0) continue;
    const uint64_t off = p.start * 512, len = p.sectors * 512;
    if (!Within(off, len, size)) continue;
    const bool extended = p.type == 0x05 || p.type == 0x0F || p.type == 0x85;
    if (!extended) {
      layout.partitions.push_back({i + 1, off, len});
      continue;
    }
    // Logical partitions: a chain of EBRs, each relative to the extended partition's start.
    int number = 5;
    uint64_t ebr = p.start;
    std::set<uint64_t> seen;
    while (number < 5 + kMaxLogical && seen.insert(ebr).second) {
      uint8_t b[512];
      if (!Within(ebr * 512, 512, size)) break;
      INGOT_RETURN_IF_ERROR(read(ebr * 512, b, sizeof b));
      if (b[510] != 0x55 || b[511] != 0xAA) break;
      const uint8_t* l = b + 446;
      const uint64_t lstart = ebr + Le32(l + 8), lsectors = Le32(l + 12);
      if (l[4] != 0 && lsectors != 0 && Within(lstart * 512, lsectors * 512, size)) {
        layout.partitions.push_back({number, lstart * 512, lsectors * 512});
      }
      ++number;
      const uint8_t* next = b + 446 + 16;
      if (next[4] == 0 || Le32(next + 8) == 0) break;
      ebr = p.start + Le32(next + 8);
    }
  }
  return layout;
}

Result<std::string> ProbeFilesystem(const DiskReader& read, uint64_t offset, uint64_t length) {
  auto at = [&](uint64_t rel, uint8_t* buf, size_t n) -> Result<bool> {
    if (!Within(rel, n, length)) return false;
    INGOT_RETURN_IF_ERROR(read(offset + rel, buf, n));
    return true;
  };
  uint8_t sb[1024];
  INGOT_ASSIGN_OR_RETURN(bool have, at(1024, sb, sizeof sb));
  if (have && Le16(sb + 56) == 0xEF53) {
    const uint32_t compat = Le32(sb + 92), incompat = Le32(sb + 96), ro_compat = Le32(sb + 100);
    if (incompat & 0x0008) return std::string("jbd");  // an external journal device
    // As blkid tells them apart: ext4's own features, else a journal makes ext3.
    const bool ext4 = (incompat & ~uint32_t(0x0002 | 0x0004 | 0x0010)) != 0 ||
                      (ro_compat & ~uint32_t(0x0001 | 0x0002 | 0x0004)) != 0;
    if (ext4) return std::string("ext4");
    return std::string(compat & 0x0004 ? "ext3" : "ext2");
  }
  uint8_t b[512];
  INGOT_ASSIGN_OR_RETURN(have, at(0, b, sizeof b));
  if (have) {
    if (std::memcmp(b, "XFSB", 4) == 0) return std::string("xfs");
    if (std::memcmp(b + 3, "NTFS    ", 8) == 0) return std::string("ntfs");
    if (b[510] == 0x55 && b[511] == 0xAA &&
        (std::memcmp(b + 82, "FAT32   ", 8) == 0 || std::memcmp(b + 54, "FAT16   ", 8) == 0 ||
         std::memcmp(b + 54, "FAT12   ", 8) == 0 || std::memcmp(b + 54, "FAT     ", 8) == 0)) {
      return std::string("vfat");
    }
  }
  INGOT_ASSIGN_OR_RETURN(have, at(512, b, sizeof b));
  if (have && std::memcmp(b, "LABELONE", 8) == 0 && std::memcmp(b + 24, "LVM2 001", 8) == 0) {
    return std::string("LVM2_member");
  }
  uint8_t sw[10];
  INGOT_ASSIGN_OR_RETURN(have, at(4086, sw, sizeof sw));
  if (have && (std::memcmp(sw, "SWAPSPACE2", 10) == 0 || std::memcmp(sw, "SWAP-SPACE", 10) == 0)) {
    return std::string("swap");
  }
  uint8_t bt[8];
  INGOT_ASSIGN_OR_RETURN(have, at(65536 + 64, bt, sizeof bt));
  if (have && std::memcmp(bt, "_BHRfS_M", 8) == 0) return std::string("btrfs");
  return std::string("unknown");
}

std::string DeviceName(int number) {
  return number == 0 ? "/dev/sda" : "/dev/sda" + std::to_string(number);
}

int ParseDeviceName(const std::string& device) {
  std::string rest;
  for (const char* prefix : {"/dev/sda", "/dev/vda", "/dev/hda", "/dev/xvda"}) {
    if (device.rfind(prefix, 0) == 0) {
      rest = device.substr(std::strlen(prefix));
      if (rest.empty()) return 0;
      if (rest.size() > 3 || rest[0] == '0') return -1;
      for (char c : rest) {
        if (c < '0' || c > '9') return -1;
      }
      return std::stoi(rest);
    }
  }
  return -1;
}

}  // namespace ingot::deploy::guestfish
