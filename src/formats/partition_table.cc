#include "formats/partition_table.h"

#include <cstring>

#include "formats/mapped_image.h"

namespace ingot::formats {

namespace {

using mapped::Le32;
using mapped::Le64;

// A GPT of more entries than this is not one we believe (the spec's minimum is 16 KiB of entries;
// real tables hold 128).
constexpr uint32_t kMaxGptEntries = 4096;

Result<bool> ReadIfPresent(io::ByteSource& disk, uint64_t offset, std::span<uint8_t> buf) {
  if (!mapped::Within(offset, buf.size(), disk.Size())) return false;
  INGOT_RETURN_IF_ERROR(io::ReadExact(disk, offset, buf));
  return true;
}

Result<bool> ReadGpt(io::ByteSource& disk, uint64_t sector, PartitionTable* out) {
  uint8_t hdr[92];
  INGOT_ASSIGN_OR_RETURN(bool have, ReadIfPresent(disk, sector, hdr));
  if (!have || std::memcmp(hdr, "EFI PART", 8) != 0) return false;
  const uint64_t entries_lba = Le64(hdr + 72);
  const uint32_t count = Le32(hdr + 80);
  const uint32_t entry_size = Le32(hdr + 84);
  out->kind = "gpt";
  if (count == 0 || count > kMaxGptEntries || entry_size < 128 || entry_size > 4096) return true;
  uint64_t entries_off;
  if (!mapped::Mul(entries_lba, sector, &entries_off)) return true;
  if (!mapped::Within(entries_off, uint64_t(count) * entry_size, disk.Size())) return true;
  std::vector<uint8_t> entries(uint64_t(count) * entry_size);
  INGOT_RETURN_IF_ERROR(io::ReadExact(disk, entries_off, entries));
  static const uint8_t kUnused[16] = {};
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* e = entries.data() + uint64_t(i) * entry_size;
    if (std::memcmp(e, kUnused, 16) == 0) continue;  // partition type GUID zero: unused entry
    const uint64_t first = Le64(e + 32), last = Le64(e + 40);
    uint64_t off, end;
    if (last < first || !mapped::Mul(first, sector, &off) || !mapped::Mul(last + 1, sector, &end)) {
      continue;
    }
    out->partitions.push_back({off, end - off});
  }
  return true;
}

}  // namespace

Result<PartitionTable> ReadPartitionTable(io::ByteSource& disk) {
  PartitionTable table;
  uint8_t mbr[512];
  INGOT_ASSIGN_OR_RETURN(bool have, ReadIfPresent(disk, 0, mbr));
  if (!have || mbr[510] != 0x55 || mbr[511] != 0xAA) return table;
  // A boot sector of a partitionless file system also ends in 55 AA; the status bytes of a real
  // table are 0x00 or 0x80.
  bool protective = false;
  std::vector<Partition> primaries;
  for (int i = 0; i < 4; ++i) {
    const uint8_t* e = mbr + 446 + 16 * i;
    if (e[0] != 0x00 && e[0] != 0x80) return table;
    const uint8_t type = e[4];
    const uint32_t start = Le32(e + 8), sectors = Le32(e + 12);
    if (type == 0 || sectors == 0) continue;
    if (type == 0xEE) protective = true;
    primaries.push_back({uint64_t(start) * 512, uint64_t(sectors) * 512});
  }
  if (protective) {
    for (uint64_t sector : {uint64_t{512}, uint64_t{4096}}) {
      PartitionTable gpt;
      INGOT_ASSIGN_OR_RETURN(bool found, ReadGpt(disk, sector, &gpt));
      if (found) return gpt;
    }
  }
  if (primaries.empty()) return table;
  table.kind = "mbr";
  table.partitions = std::move(primaries);
  return table;
}

}  // namespace ingot::formats
