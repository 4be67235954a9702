// VHD (qemu "vpc", Glance "vhd") reader.
//
// Spec: Microsoft "Virtual Hard Disk Image Format Specification", version 1.0 (October 2006):
//   - Hard disk footer (512 bytes, big-endian) at the end of every VHD; dynamic disks also keep a
//   copy
//     at offset 0. Disk type 2 = fixed, 3 = dynamic, 4 = differencing.
//   - Dynamic disk header ("cxsparse", 1024 bytes) at the footer's Data Offset.
//   - Block Allocation Table: big-endian uint32 sector offsets, 0xFFFFFFFF = unallocated.
//   - Each data block starts with a sector bitmap (1 bit per sector, padded to a 512-byte
//   boundary);
//     a clear bit means the sector holds no data, which on a dynamic disk reads as zeros.
// Safety (Glance format_inspector, CVE-2024-32498 family): differencing disks name a parent file
// and are refused; the BAT and every block must lie inside the file and clear of the footer copy,
// the dynamic header and the BAT itself; all arithmetic on header values is checked.
//
// Virtual size: the spec defines Current Size, but Virtual PC and the tools that copied it size the
// disk from the CHS geometry instead, and images carry the creator in the footer. Like qemu (so
// `qemu-img info` and we agree), we use the geometry unless the creator is one known to use Current
// Size (Hyper-V "win ", qemu "qem2", Disk2vhd "d2v ", XenServer "tap\0", XenConverter "CTXS") or
// the geometry is the maximum (which means "too big for CHS").
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "formats/driver.h"
#include "formats/mapped_image.h"

namespace ingot::formats {
namespace {

using mapped::Be16;
using mapped::Be32;
using mapped::Be64;
using mapped::Run;

constexpr uint64_t kSector = 512;
constexpr uint32_t kTypeFixed = 2;
constexpr uint32_t kTypeDynamic = 3;
constexpr uint32_t kTypeDifferencing = 4;
constexpr uint32_t kUnallocated = 0xFFFFFFFFu;
constexpr uint64_t kMaxGeometrySectors = 65535ull * 16 * 255;
// The spec limits VHDs to 2040 GiB; we allow some slack for tools that exceed it but still bound
// it.
constexpr uint64_t kMaxVirtualSize = 2ull << 40;

bool HasCookie(const uint8_t* p, const char* cookie) { return std::memcmp(p, cookie, 8) == 0; }

// One's complement of the byte sum, with the checksum field itself counted as zero.
uint32_t Checksum(const uint8_t* p, size_t n, size_t checksum_at) {
  uint32_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i >= checksum_at && i < checksum_at + 4) continue;
    sum += p[i];
  }
  return ~sum;
}

struct Layout {
  uint32_t disk_type = 0;
  uint64_t virtual_size = 0;
  // Dynamic only.
  uint64_t header_offset = 0;
  uint64_t bat_offset = 0;
  uint32_t bat_entries = 0;
  uint32_t block_size = 0;
  uint32_t bitmap_bytes = 0;  // sector bitmap, padded to a sector
  std::vector<uint32_t> bat;  // sector offsets of blocks
};

bool Probe(io::ByteSource& file) {
  uint8_t b[8];
  if (io::ReadExact(file, 0, b).ok() && HasCookie(b, "conectix")) return true;
  if (file.Size() < kSector) return false;
  return io::ReadExact(file, file.Size() - kSector, b).ok() && HasCookie(b, "conectix");
}

Result<Layout> Parse(io::ByteSource& file) {
  const uint64_t file_size = file.Size();
  if (file_size < kSector) {
    return InvalidArgument("vhd: file of " + std::to_string(file_size) +
                           " bytes is shorter than a footer");
  }
  uint8_t footer[kSector];
  Layout l;
  // A dynamic disk stores its footer twice: qemu 7.2 reads the copy at offset 0 and falls back to
  // the end; we prefer the end. So the two must agree exactly, and neither may carry a bad
  // checksum (qemu only warns about one): otherwise qemu and we would read different disks.
  uint8_t head[kSector];
  INGOT_RETURN_IF_ERROR(io::ReadExact(file, file_size - kSector, footer));
  INGOT_RETURN_IF_ERROR(io::ReadExact(file, 0, head));
  const bool end_cookie = HasCookie(footer, "conectix");
  const bool head_cookie = HasCookie(head, "conectix");
  if (!end_cookie && !head_cookie) return InvalidArgument("vhd: no 'conectix' footer");
  auto check_sum = [](const uint8_t* f, const char* where) -> Status {
    const uint32_t computed = Checksum(f, kSector, 64);
    if (computed == Be32(f + 64)) return Status::Ok();
    return Refused(std::string("vhd.footer_checksum: the footer ") + where +
                   " stores checksum " + std::to_string(Be32(f + 64)) + ", computed " +
                   std::to_string(computed));
  };
  if (end_cookie) INGOT_RETURN_IF_ERROR(check_sum(footer, "at the end"));
  if (head_cookie) INGOT_RETURN_IF_ERROR(check_sum(head, "at offset 0"));
  if (end_cookie && head_cookie && file_size > kSector && std::memcmp(head, footer, kSector) != 0) {
    size_t at = 0;
    while (head[at] == footer[at]) ++at;
    return Refused("vhd.footer_copies: the footer copies at offset 0 and at the end differ (first "
                   "at byte " + std::to_string(at) + ")");
  }
  const bool from_copy = !end_cookie;
  if (from_copy) std::memcpy(footer, head, kSector);
  // A dynamic disk always carries its copy at offset 0, and qemu's probe looks only there: without
  // it qemu takes the file for raw and would read the VHD's metadata as the guest's disk.
  if (end_cookie && !head_cookie && Be32(footer + 60) == kTypeDynamic) {
    return Refused("vhd.footer_copies: a dynamic disk without its footer copy at offset 0 (qemu "
                   "would read the file as raw)");
  }
  l.disk_type = Be32(footer + 60);
  if (l.disk_type == kTypeDifferencing) {
    return Refused("vhd.differencing: disk type 4 (differencing) names a parent image");
  }
  if (l.disk_type != kTypeFixed && l.disk_type != kTypeDynamic) {
    return InvalidArgument("vhd: unknown disk type " + std::to_string(l.disk_type));
  }

  const uint64_t geometry_sectors =
      uint64_t(Be16(footer + 56)) * uint64_t(footer[58]) * uint64_t(footer[59]);
  const uint64_t current_size = Be64(footer + 48);
  const uint8_t* creator = footer + 28;
  const bool creator_uses_current_size =
      std::memcmp(creator, "win ", 4) == 0 || std::memcmp(creator, "qem2", 4) == 0 ||
      std::memcmp(creator, "d2v ", 4) == 0 || std::memcmp(creator, "CTXS", 4) == 0 ||
      std::memcmp(creator, "tap\0", 4) == 0;
  if (creator_uses_current_size || geometry_sectors == kMaxGeometrySectors) {
    l.virtual_size = current_size;
  } else {
    l.virtual_size = geometry_sectors * kSector;  // < 2^40, cannot overflow
  }
  if (l.virtual_size > kMaxVirtualSize) {
    return Refused("vhd.virtual_size: " + std::to_string(l.virtual_size) + " exceeds " +
                   std::to_string(kMaxVirtualSize));
  }
  if (l.virtual_size % kSector != 0) {
    return InvalidArgument("vhd: virtual size " + std::to_string(l.virtual_size) +
                           " is not a multiple of 512");
  }

  if (l.disk_type == kTypeFixed) {
    if (from_copy) return Corruption("vhd: fixed disk without a valid footer at its end");
    if (l.virtual_size > file_size - kSector) {
      return Refused("vhd.fixed_size: virtual size " + std::to_string(l.virtual_size) +
                     " exceeds the " + std::to_string(file_size - kSector) +
                     " data bytes in the file");
    }
    return l;
  }

  // Dynamic disk header.
  l.header_offset = Be64(footer + 16);
  if (!mapped::Within(l.header_offset, 1024, file_size) || l.header_offset < kSector) {
    return Refused("vhd.header_offset: dynamic header at " + std::to_string(l.header_offset) +
                   " is outside the file or overlaps the footer copy");
  }
  uint8_t hdr[1024];
  INGOT_RETURN_IF_ERROR(io::ReadExact(file, l.header_offset, hdr));
  if (!HasCookie(hdr, "cxsparse")) return InvalidArgument("vhd: no 'cxsparse' dynamic header");
  if (Checksum(hdr, sizeof hdr, 36) != Be32(hdr + 36)) {
    return Corruption("vhd: dynamic header checksum mismatch");
  }
  l.bat_offset = Be64(hdr + 16);
  l.bat_entries = Be32(hdr + 28);
  l.block_size = Be32(hdr + 32);
  if (!mapped::IsPowerOfTwo(l.block_size) || l.block_size < kSector ||
      l.block_size > (256u << 20)) {
    return InvalidArgument("vhd: block size " + std::to_string(l.block_size) +
                           " is not a power of two in [512, 256 MiB]");
  }
  const uint64_t sectors_per_block = l.block_size / kSector;
  l.bitmap_bytes = uint32_t((sectors_per_block / 8 + kSector - 1) / kSector * kSector);
  if (l.bitmap_bytes == 0) l.bitmap_bytes = kSector;
  uint64_t coverable;
  if (!mapped::Mul(l.bat_entries, l.block_size, &coverable) || coverable < l.virtual_size) {
    return InvalidArgument("vhd: " + std::to_string(l.bat_entries) + " BAT entries of " +
                           std::to_string(l.block_size) + " bytes do not cover virtual size " +
                           std::to_string(l.virtual_size));
  }
  const uint64_t bat_bytes = uint64_t(l.bat_entries) * 4;
  if (l.bat_offset < kSector || mapped::Overlaps(l.bat_offset, bat_bytes, l.header_offset, 1024)) {
    return Refused("vhd.bat_offset: BAT at " + std::to_string(l.bat_offset) +
                   " overlaps the footer copy or the dynamic header");
  }
  INGOT_ASSIGN_OR_RETURN(std::vector<uint8_t> raw,
                         mapped::ReadTable(file, l.bat_offset, bat_bytes, "vhd.bat"));
  l.bat.resize(l.bat_entries);
  // Blocks must sit clear of the metadata; the footer copy at the end is excluded too.
  const uint64_t data_end = file_size - kSector;
  const uint64_t block_span = uint64_t(l.bitmap_bytes) + l.block_size;
  // Blocks past the virtual size are never read; only entries that map the disk are checked.
  const uint64_t used_entries = (l.virtual_size + l.block_size - 1) / l.block_size;
  for (uint32_t i = 0; i < l.bat_entries; ++i) {
    const uint32_t e = Be32(raw.data() + 4ull * i);
    l.bat[i] = e;
    if (e == kUnallocated || i >= used_entries) continue;
    const uint64_t start = uint64_t(e) * kSector;
    if (!mapped::Within(start, block_span, data_end)) {
      return Refused("vhd.block_offset: block " + std::to_string(i) + " at " +
                     std::to_string(start) + " runs past the end of the file");
    }
    if (start < kSector || mapped::Overlaps(start, block_span, l.header_offset, 1024) ||
        mapped::Overlaps(start, block_span, l.bat_offset, bat_bytes)) {
      return Refused("vhd.block_offset: block " + std::to_string(i) + " at " +
                     std::to_string(start) + " overlaps the footer, dynamic header or BAT");
    }
  }
  return l;
}

class VhdImage final : public mapped::MappedImage {
 public:
  VhdImage(io::ByteSource& file, Layout l) : MappedImage(file, l.virtual_size), l_(std::move(l)) {}

 protected:
  Result<Run> Locate(uint64_t offset, uint64_t max_length) override {
    if (l_.disk_type == kTypeFixed) return Run{Run::Where::kFile, Size() - offset, offset};
    const uint64_t block = offset / l_.block_size;
    const uint64_t in_block = offset % l_.block_size;
    const uint64_t to_block_end = l_.block_size - in_block;
    const uint32_t e = l_.bat[block];
    if (e == kUnallocated) return Run{Run::Where::kZero, to_block_end, 0};
    const uint64_t block_start = uint64_t(e) * kSector;
    // The sector bitmap says which sectors of the block hold data; a run ends where the bit flips.
    const uint64_t first = in_block / kSector;
    const uint64_t last = std::min<uint64_t>(
        l_.block_size / kSector, first + (max_length + in_block % kSector + kSector - 1) / kSector);
    std::vector<uint8_t> bitmap(last / 8 - first / 8 + 1);
    const uint64_t bitmap_bytes_in_block = (l_.block_size / kSector + 7) / 8;
    const uint64_t read = std::min<uint64_t>(bitmap.size(), bitmap_bytes_in_block - first / 8);
    INGOT_RETURN_IF_ERROR(ReadFileExact(block_start + first / 8, std::span(bitmap).first(read)));
    auto bit = [&](uint64_t sector) {
      const uint64_t rel = sector - (first / 8) * 8;
      return (bitmap[rel / 8] >> (7 - rel % 8)) &
             1;  // the spec's bitmap is most-significant-bit first
    };
    const int present = bit(first);
    uint64_t s = first + 1;
    while (s < last && bit(s) == present) ++s;
    const uint64_t length = s * kSector - in_block;
    if (!present) return Run{Run::Where::kZero, length, 0};
    return Run{Run::Where::kFile, length, block_start + l_.bitmap_bytes + in_block};
  }

 private:
  Layout l_;
};

Result<ImageInfo> InspectVhd(io::ByteSource& file) {
  INGOT_ASSIGN_OR_RETURN(Layout l, Parse(file));
  ImageInfo info;
  info.format = Format::kVhd;
  info.virtual_size = l.virtual_size;
  info.actual_size = file.Size();
  if (l.disk_type == kTypeDynamic) info.cluster_size = l.block_size;
  info.format_specific["subformat"] = l.disk_type == kTypeFixed ? "fixed" : "dynamic";
  return info;
}

Result<std::unique_ptr<DiskImage>> OpenVhd(io::ByteSource& file) {
  INGOT_ASSIGN_OR_RETURN(Layout l, Parse(file));
  return std::unique_ptr<DiskImage>(std::make_unique<VhdImage>(file, std::move(l)));
}

}  // namespace

const Driver& VhdDriver() {
  static const Driver d{Format::kVhd, Probe, InspectVhd, OpenVhd};
  return d;
}

}  // namespace ingot::formats
