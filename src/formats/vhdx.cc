// VHDX reader.
//
// Spec: Microsoft "VHDX Format Specification" version 1.00 (August 2012), [MS-VHDX]:
//   - File type identifier at 0 ("vhdxfile"); two 4 KiB headers at 64 KiB and 128 KiB ("head",
//     CRC-32C over the 4 KiB with the checksum field zero, sequence number, log GUID, version 1,
//     log offset/length); the current header is the valid one with the higher sequence number.
//   - Two region tables at 192 KiB and 256 KiB ("regi", CRC-32C over 64 KiB): entries locate the
//   BAT
//     region and the metadata region by GUID; an unknown region marked required cannot be read.
//   - Metadata region: a table ("metadata") of items by GUID: File Parameters (block size, flags
//   bit 1
//     HasParent), Virtual Disk Size, Logical Sector Size, Physical Sector Size, Virtual Disk ID,
//     and for differencing disks the Parent Locator. An unknown required item cannot be read.
//   - BAT: uint64 entries; bits 0-2 state, bits 20-63 file offset in MiB. Payload block entries and
//     sector bitmap entries are interleaved: after every `chunk ratio` payload entries comes one
//     sector bitmap entry, chunk ratio = 2^23 * logical sector size / block size. Payload states: 0
//     not present, 1 undefined, 2 zero, 3 unmapped (all read as zeros on a disk without a parent),
//     6 fully present, 7 partially present (differencing only).
// Safety: a log that needs replay (non-zero LogGuid) is refused (replaying it would mean writing,
// and a hostile log can describe any write); differencing disks (HasParent, a Parent Locator) are
// refused; regions must be MiB-aligned inside the file, past the first MiB and apart from each
// other; every payload block must lie inside the file and clear of the headers, log and regions;
// the BAT is bounded.
#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "formats/driver.h"
#include "formats/mapped_image.h"

namespace ingot::formats {
namespace {

using mapped::Le16;
using mapped::Le32;
using mapped::Le64;
using mapped::Run;

using Guid = std::array<uint8_t, 16>;

// A GUID in its on-disk form: the first three fields little-endian, the last eight bytes as
// written.
constexpr Guid MakeGuid(uint32_t a, uint16_t b, uint16_t c, uint64_t d) {
  Guid g{};
  for (int i = 0; i < 4; ++i) g[i] = uint8_t(a >> (8 * i));
  for (int i = 0; i < 2; ++i) g[4 + i] = uint8_t(b >> (8 * i));
  for (int i = 0; i < 2; ++i) g[6 + i] = uint8_t(c >> (8 * i));
  for (int i = 0; i < 8; ++i) g[8 + i] = uint8_t(d >> (56 - 8 * i));
  return g;
}

constexpr Guid kBatRegion = MakeGuid(0x2DC27766, 0xF623, 0x4200, 0x9D64115E9BFD4A08);
constexpr Guid kMetadataRegion = MakeGuid(0x8B7CA206, 0x4790, 0x4B9A, 0xB8FE575F050F886E);
constexpr Guid kFileParameters = MakeGuid(0xCAA16737, 0xFA36, 0x4D43, 0xB3B633F0AA44E76B);
constexpr Guid kVirtualDiskSize = MakeGuid(0x2FA54224, 0xCD1B, 0x4876, 0xB2115DBED83BF4B8);
constexpr Guid kVirtualDiskId = MakeGuid(0xBECA12AB, 0xB2E6, 0x4523, 0x93EFC309E000C746);
constexpr Guid kLogicalSectorSize = MakeGuid(0x8141BF1D, 0xA96F, 0x4709, 0xBA47F233A8FAAB5F);
constexpr Guid kPhysicalSectorSize = MakeGuid(0xCDA348C7, 0x445D, 0x4471, 0x9CC9E9885251C556);
constexpr Guid kParentLocator = MakeGuid(0xA8D35F2D, 0xB30B, 0x454D, 0xABF7D3D84834AB0C);

constexpr uint64_t kKiB = 1024, kMiB = 1024 * 1024;
constexpr uint64_t kHeaderAt[2] = {64 * kKiB, 128 * kKiB};
constexpr uint64_t kRegionTableAt[2] = {192 * kKiB, 256 * kKiB};
constexpr uint64_t kMaxVirtualSize = 64ull << 40;  // the spec's limit: 64 TiB

Guid GuidAt(const uint8_t* p) {
  Guid g;
  std::memcpy(g.data(), p, 16);
  return g;
}
bool IsZero(const Guid& g) {
  for (uint8_t b : g) {
    if (b) return false;
  }
  return true;
}
std::string GuidString(const Guid& g) {
  char s[37];
  std::snprintf(s, sizeof s, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", Le32(g.data()),
                Le16(g.data() + 4), Le16(g.data() + 6), g[8], g[9], g[10], g[11], g[12], g[13],
                g[14], g[15]);
  return s;
}

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as the spec requires for headers and
// regions.
uint32_t Crc32c(const uint8_t* p, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = ~0u;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

// True when the structure's CRC-32C (field at byte 4) matches, computed with the field zeroed.
bool ChecksumOk(std::vector<uint8_t> buf) {
  const uint32_t stored = Le32(buf.data() + 4);
  std::memset(buf.data() + 4, 0, 4);
  return Crc32c(buf.data(), buf.size()) == stored;
}

struct Range {
  uint64_t offset, length;
  const char* what;
};

struct Layout {
  uint64_t virtual_size = 0;
  uint32_t block_size = 0;
  uint32_t logical_sector = 0;
  uint32_t physical_sector = 0;
  uint64_t chunk_ratio = 0;
  std::vector<uint64_t> bat;
};

bool Probe(io::ByteSource& file) {
  uint8_t b[8];
  return io::ReadExact(file, 0, b).ok() && std::memcmp(b, "vhdxfile", 8) == 0;
}

Result<std::vector<uint8_t>> ReadBlock(io::ByteSource& file, uint64_t offset, uint64_t length) {
  std::vector<uint8_t> buf(length);
  INGOT_RETURN_IF_ERROR(io::ReadExact(file, offset, buf));
  return buf;
}

Result<Layout> Parse(io::ByteSource& file) {
  const uint64_t file_size = file.Size();
  if (file_size < kMiB) {
    return InvalidArgument("vhdx: file of " + std::to_string(file_size) +
                           " bytes is shorter than its headers");
  }
  if (!Probe(file)) return InvalidArgument("vhdx: no 'vhdxfile' identifier");

  // Current header: the valid one with the greater sequence number.
  std::vector<uint8_t> header;
  uint64_t best_seq = 0;
  for (uint64_t at : kHeaderAt) {
    INGOT_ASSIGN_OR_RETURN(std::vector<uint8_t> h, ReadBlock(file, at, 4 * kKiB));
    if (std::memcmp(h.data(), "head", 4) != 0 || !ChecksumOk(h)) continue;
    const uint64_t seq = Le64(h.data() + 8);
    // qemu 7.2 (vhdx_parse_header) refuses two valid headers with the same sequence number: which
    // one is current is then undefined, and another reader may pick the other.
    if (!header.empty() && seq == best_seq) {
      return Refused("vhdx.header_sequence: both headers are valid with sequence number " +
                     std::to_string(seq));
    }
    if (header.empty() || seq > best_seq) {
      header = std::move(h);
      best_seq = seq;
    }
  }
  if (header.empty()) return Corruption("vhdx: neither header has a valid signature and CRC-32C");
  const Guid log_guid = GuidAt(header.data() + 48);
  if (!IsZero(log_guid)) {
    return Refused("vhdx.log_replay: log " + GuidString(log_guid) +
                   " must be replayed before reading");
  }
  const uint16_t version = Le16(header.data() + 66);
  if (version != 1) return Unsupported("vhdx: header version " + std::to_string(version));
  const uint32_t log_length = Le32(header.data() + 68);
  const uint64_t log_offset = Le64(header.data() + 72);

  // Region table: qemu 7.2 (vhdx_open_region_tables) reads only the copy at 192 KiB. Falling back
  // to the second copy would read regions qemu never sees, so an invalid first copy is refused,
  // and a valid second copy that differs from it too.
  std::vector<uint8_t> regions;
  {
    INGOT_ASSIGN_OR_RETURN(std::vector<uint8_t> r, ReadBlock(file, kRegionTableAt[0], 64 * kKiB));
    if (std::memcmp(r.data(), "regi", 4) != 0 || !ChecksumOk(r)) {
      return Refused("vhdx.region_table: the region table at offset " +
                     std::to_string(kRegionTableAt[0]) +
                     " has no valid signature and CRC-32C (qemu reads no other copy)");
    }
    regions = std::move(r);
    INGOT_ASSIGN_OR_RETURN(std::vector<uint8_t> r2, ReadBlock(file, kRegionTableAt[1], 64 * kKiB));
    const size_t used = 16 + 32 * std::min<size_t>(Le32(regions.data() + 8), 2047);
    if (std::memcmp(r2.data(), "regi", 4) == 0 && ChecksumOk(r2) &&
        std::memcmp(r2.data(), regions.data(), used) != 0) {
      return Refused("vhdx.region_table: the valid region tables at offsets " +
                     std::to_string(kRegionTableAt[0]) + " and " +
                     std::to_string(kRegionTableAt[1]) + " differ");
    }
  }
  const uint32_t region_count = Le32(regions.data() + 8);
  if (region_count > 2047) {
    return InvalidArgument("vhdx: " + std::to_string(region_count) + " regions");
  }
  std::vector<Range> taken = {{0, kMiB, "headers"}};
  // The log is empty (LogGuid zero) but its area is still not for data; one outside the file holds
  // nothing to protect.
  if (log_length != 0 && mapped::Within(log_offset, log_length, file_size)) {
    taken.push_back({log_offset, log_length, "log"});
  }
  std::optional<Range> bat_region, meta_region;
  for (uint32_t i = 0; i < region_count; ++i) {
    const uint8_t* e = regions.data() + 16 + 32 * i;
    const Guid id = GuidAt(e);
    const uint64_t off = Le64(e + 16);
    const uint32_t len = Le32(e + 24);
    const bool required = Le32(e + 28) & 1;
    const bool is_bat = id == kBatRegion, is_meta = id == kMetadataRegion;
    if (!is_bat && !is_meta) {
      if (required) return Unsupported("vhdx: unknown required region " + GuidString(id));
      continue;
    }
    const char* what = is_bat ? "BAT" : "metadata";
    if (off < kMiB || off % kMiB != 0 || len == 0 || !mapped::Within(off, len, file_size)) {
      return Refused(std::string("vhdx.region_offset: ") + what + " region at " +
                     std::to_string(off) + " of " + std::to_string(len) +
                     " bytes is not MiB-aligned inside the file (" + std::to_string(file_size) +
                     " bytes)");
    }
    for (const Range& t : taken) {
      if (mapped::Overlaps(off, len, t.offset, t.length)) {
        return Refused(std::string("vhdx.region_offset: ") + what + " region at " +
                       std::to_string(off) + " overlaps the " + t.what);
      }
    }
    taken.push_back({off, len, what});
    (is_bat ? bat_region : meta_region) = Range{off, len, what};
  }
  if (!bat_region || !meta_region) return InvalidArgument("vhdx: BAT or metadata region missing");

  // Metadata table and the items we need; item values are read one by one (the region may be
  // large).
  if (meta_region->length < 64 * kKiB) return InvalidArgument("vhdx: metadata region under 64 KiB");
  INGOT_ASSIGN_OR_RETURN(std::vector<uint8_t> meta,
                         ReadBlock(file, meta_region->offset, 64 * kKiB));
  if (std::memcmp(meta.data(), "metadata", 8) != 0) {
    return InvalidArgument("vhdx: no 'metadata' table at the metadata region");
  }
  const uint16_t item_count = Le16(meta.data() + 10);
  if (item_count > 2047) {
    return InvalidArgument("vhdx: " + std::to_string(item_count) + " metadata items");
  }
  Layout l;
  bool have_params = false, have_size = false, have_sector = false;
  uint32_t param_flags = 0;
  for (uint32_t i = 0; i < item_count; ++i) {
    const uint8_t* e = meta.data() + 32 + 32 * i;
    const Guid id = GuidAt(e);
    const uint32_t off = Le32(e + 16), len = Le32(e + 20), flags = Le32(e + 24);
    const bool required = flags & 4;
    if (len != 0 && (off < 64 * kKiB || !mapped::Within(off, len, meta_region->length))) {
      return InvalidArgument("vhdx: metadata item " + GuidString(id) + " at " +
                             std::to_string(off) + " outside its region");
    }
    uint8_t value[8] = {};
    if (len != 0) {
      INGOT_RETURN_IF_ERROR(io::ReadExact(file, meta_region->offset + off,
                                          std::span(value, std::min<size_t>(len, sizeof value))));
    }
    const uint8_t* v = value;
    if (id == kParentLocator) {
      return Refused("vhdx.has_parent: parent locator present (differencing disk)");
    } else if (id == kFileParameters && len >= 8) {
      l.block_size = Le32(v);
      param_flags = Le32(v + 4);
      have_params = true;
    } else if (id == kVirtualDiskSize && len >= 8) {
      l.virtual_size = Le64(v);
      have_size = true;
    } else if (id == kLogicalSectorSize && len >= 4) {
      l.logical_sector = Le32(v);
      have_sector = true;
    } else if (id == kPhysicalSectorSize && len >= 4) {
      l.physical_sector = Le32(v);
    } else if (id == kVirtualDiskId) {
      // identity only; nothing to check
    } else if (required) {
      return Unsupported("vhdx: unknown required metadata item " + GuidString(id));
    }
  }
  if (!have_params || !have_size || !have_sector) {
    return InvalidArgument(
        "vhdx: file parameters, virtual disk size or logical sector size missing");
  }
  if (param_flags & 2) {
    return Refused("vhdx.has_parent: file parameters flag HasParent set (differencing disk)");
  }
  if (!mapped::IsPowerOfTwo(l.block_size) || l.block_size < kMiB || l.block_size > 256 * kMiB) {
    return InvalidArgument("vhdx: block size " + std::to_string(l.block_size) +
                           " is not a power of two in [1 MiB, 256 MiB]");
  }
  if (l.logical_sector != 512 && l.logical_sector != 4096) {
    return InvalidArgument("vhdx: logical sector size " + std::to_string(l.logical_sector));
  }
  if (l.virtual_size == 0 || l.virtual_size > kMaxVirtualSize) {
    return Refused("vhdx.virtual_size: " + std::to_string(l.virtual_size) +
                   " is outside (0, 64 TiB]");
  }
  if (l.virtual_size % l.logical_sector != 0) {
    return InvalidArgument("vhdx: virtual size " + std::to_string(l.virtual_size) +
                           " is not a multiple of the logical sector size");
  }

  // BAT: payload entries interleaved with one sector bitmap entry per chunk.
  l.chunk_ratio =
      (uint64_t(1) << 23) * l.logical_sector / l.block_size;  // >= 16 by the bounds above
  const uint64_t data_blocks = (l.virtual_size + l.block_size - 1) / l.block_size;
  const uint64_t entries = data_blocks + (data_blocks - 1) / l.chunk_ratio;
  const uint64_t bat_bytes = entries * 8;  // <= 2^46 / 2^20 * 8: cannot overflow
  if (bat_bytes > bat_region->length) {
    return Refused("vhdx.bat_size: " + std::to_string(entries) + " entries do not fit the " +
                   std::to_string(bat_region->length) + "-byte BAT region");
  }
  INGOT_ASSIGN_OR_RETURN(std::vector<uint8_t> raw,
                         mapped::ReadTable(file, bat_region->offset, bat_bytes, "vhdx.bat"));
  l.bat.resize(entries);
  for (uint64_t i = 0; i < entries; ++i) l.bat[i] = Le64(raw.data() + 8 * i);

  for (uint64_t b = 0; b < data_blocks; ++b) {
    const uint64_t e = l.bat[b + b / l.chunk_ratio];
    const unsigned state = e & 7;
    if (state <= 3) continue;
    if (state == 7) {
      return InvalidArgument("vhdx: block " + std::to_string(b) +
                             " partially present in a disk without a parent");
    }
    if (state != 6) {
      return InvalidArgument("vhdx: block " + std::to_string(b) + " in unknown state " +
                             std::to_string(state));
    }
    const uint64_t off = (e >> 20) * kMiB;  // < 2^44 * 2^20: cannot overflow
    // Only the part of the last block inside the virtual size must be present.
    const uint64_t need = std::min<uint64_t>(l.block_size, l.virtual_size - b * l.block_size);
    if (!mapped::Within(off, need, file_size)) {
      return Refused("vhdx.block_offset: block " + std::to_string(b) + " at " +
                     std::to_string(off) + " runs past the end of the file (" +
                     std::to_string(file_size) + " bytes)");
    }
    for (const Range& t : taken) {
      if (mapped::Overlaps(off, need, t.offset, t.length)) {
        return Refused("vhdx.block_offset: block " + std::to_string(b) + " at " +
                       std::to_string(off) + " overlaps the " + t.what);
      }
    }
  }
  return l;
}

class VhdxImage final : public mapped::MappedImage {
 public:
  VhdxImage(io::ByteSource& file, Layout l) : MappedImage(file, l.virtual_size), l_(std::move(l)) {}

 protected:
  Result<Run> Locate(uint64_t offset, uint64_t max_length) override {
    const uint64_t block = offset / l_.block_size;
    const uint64_t in_block = offset % l_.block_size;
    const uint64_t e = l_.bat[block + block / l_.chunk_ratio];
    if ((e & 7) != 6) return Run{Run::Where::kZero, l_.block_size - in_block, 0};
    return Run{Run::Where::kFile, l_.block_size - in_block, (e >> 20) * kMiB + in_block};
  }

 private:
  Layout l_;
};

Result<ImageInfo> InspectVhdx(io::ByteSource& file) {
  INGOT_ASSIGN_OR_RETURN(Layout l, Parse(file));
  ImageInfo info;
  info.format = Format::kVhdx;
  info.virtual_size = l.virtual_size;
  info.actual_size = file.Size();
  info.cluster_size = l.block_size;
  info.format_specific["logical-sector-size"] = std::to_string(l.logical_sector);
  if (l.physical_sector) {
    info.format_specific["physical-sector-size"] = std::to_string(l.physical_sector);
  }
  return info;
}

Result<std::unique_ptr<DiskImage>> OpenVhdx(io::ByteSource& file) {
  INGOT_ASSIGN_OR_RETURN(Layout l, Parse(file));
  return std::unique_ptr<DiskImage>(std::make_unique<VhdxImage>(file, std::move(l)));
}

}  // namespace

const Driver& VhdxDriver() {
  static const Driver d{Format::kVhdx, Probe, InspectVhdx, OpenVhdx};
  return d;
}

}  // namespace ingot::formats
