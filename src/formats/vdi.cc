// VDI (VirtualBox Disk Image) reader.
//
// Spec: VirtualBox has no separate specification document; the format is defined by its own source,
// src/VBox/Storage/VDICore.h (VDIPREHEADER, VDIHEADER1PLUS; format version 1.1), which is what we
// follow:
//   - 64-byte text banner, then (little-endian) signature 0xbeda107f, version (major.minor, 1.1
//   read),
//     header size, image type (1 normal/dynamic, 2 fixed, 3 undo, 4 differencing), flags, comment,
//     offset of the block map, offset of the data, legacy geometry, disk size, block size,
//     extra bytes per block, blocks in image, blocks allocated, image/snapshot/link/parent UUIDs.
//   - Block map: uint32 per block, the index of the block in the data area; 0xffffffff = never
//     allocated, 0xfffffffe = discarded (both read as zeros).
// Safety: differencing and undo images depend on a parent and are refused; the block map and every
// block must lie inside the file and clear of the header and the map; all arithmetic is checked.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "formats/driver.h"
#include "formats/mapped_image.h"

namespace ingot::formats {
namespace {

using mapped::Le32;
using mapped::Le64;
using mapped::Run;

constexpr uint32_t kSignature = 0xbeda107f;
constexpr uint32_t kTypeNormal = 1;
constexpr uint32_t kTypeFixed = 2;
constexpr uint32_t kTypeUndo = 3;
constexpr uint32_t kTypeDiff = 4;
constexpr uint32_t kBlockFree = 0xffffffffu;
constexpr uint32_t kBlockZero = 0xfffffffeu;
constexpr size_t kHeaderBytes = 512;  // banner + version 1.1 header, padded as VirtualBox writes it

struct Layout {
  uint32_t image_type = 0;
  uint64_t disk_size = 0;
  uint32_t block_size = 0;
  uint64_t data_offset = 0;
  std::vector<uint32_t> block_map;
};

bool Probe(io::ByteSource& file) {
  uint8_t b[4];
  return io::ReadExact(file, 64, b).ok() && Le32(b) == kSignature;
}

Result<Layout> Parse(io::ByteSource& file) {
  const uint64_t file_size = file.Size();
  if (file_size < kHeaderBytes) {
    return InvalidArgument("vdi: file of " + std::to_string(file_size) +
                           " bytes is shorter than a header");
  }
  uint8_t h[kHeaderBytes];
  INGOT_RETURN_IF_ERROR(io::ReadExact(file, 0, h));
  if (Le32(h + 64) != kSignature) {
    return InvalidArgument("vdi: no signature 0xbeda107f at offset 64");
  }
  const uint32_t version = Le32(h + 68);
  if (version >> 16 != 1) {
    return Unsupported("vdi: version " + std::to_string(version >> 16) + "." +
                       std::to_string(version & 0xffff) + " (only 1.x is read)");
  }
  const uint32_t header_size = Le32(h + 72);
  if (header_size < 384 || header_size > kHeaderBytes - 64) {
    return InvalidArgument("vdi: header size " + std::to_string(header_size) +
                           " is not a 1.1 header");
  }
  Layout l;
  l.image_type = Le32(h + 76);
  if (l.image_type == kTypeDiff) {
    return Refused("vdi.differencing: image type 4 (differencing) depends on a parent image");
  }
  if (l.image_type == kTypeUndo) {
    return Refused("vdi.differencing: image type 3 (undo) depends on a parent image");
  }
  // qemu 7.2 refuses a non-null link or parent UUID ("unsupported VDI image"): either ties the
  // image to another one, whatever its type says.
  for (auto [at, name] : {std::pair<size_t, const char*>{0x1a8, "link"}, {0x1b8, "parent"}}) {
    bool zero = true;
    for (size_t i = 0; i < 16; ++i) zero = zero && h[at + i] == 0;
    if (!zero) {
      char hex[40];
      for (size_t i = 0; i < 16; ++i) std::snprintf(hex + 2 * i, 3, "%02x", h[at + i]);
      return Refused(std::string("vdi.") + name + "_uuid: " + hex +
                     " names another image (a differencing chain)");
    }
  }
  if (l.image_type != kTypeNormal && l.image_type != kTypeFixed) {
    return InvalidArgument("vdi: unknown image type " + std::to_string(l.image_type));
  }
  const uint64_t map_offset = Le32(h + 340);
  l.data_offset = Le32(h + 344);
  const uint32_t sector_size = Le32(h + 360);
  l.disk_size = Le64(h + 368);
  l.block_size = Le32(h + 376);
  const uint32_t block_extra = Le32(h + 380);
  const uint32_t blocks = Le32(h + 384);
  if (sector_size != 512) {
    return Unsupported("vdi: sector size " + std::to_string(sector_size) + " (only 512 is read)");
  }
  if (!mapped::IsPowerOfTwo(l.block_size) || l.block_size < 512 || l.block_size > (64u << 20)) {
    return InvalidArgument("vdi: block size " + std::to_string(l.block_size) +
                           " is not a power of two in [512, 64 MiB]");
  }
  if (block_extra != 0) {
    return Unsupported("vdi: " + std::to_string(block_extra) + " extra bytes per block");
  }
  if (l.disk_size % 512 != 0) {
    return InvalidArgument("vdi: disk size " + std::to_string(l.disk_size) +
                           " is not a multiple of 512");
  }
  uint64_t coverable;
  if (!mapped::Mul(blocks, l.block_size, &coverable) || coverable < l.disk_size) {
    return InvalidArgument("vdi: " + std::to_string(blocks) + " blocks of " +
                           std::to_string(l.block_size) + " bytes do not cover disk size " +
                           std::to_string(l.disk_size));
  }
  const uint64_t map_bytes = uint64_t(blocks) * 4;
  if (map_offset < kHeaderBytes) {
    return Refused("vdi.block_map_offset: block map at " + std::to_string(map_offset) +
                   " overlaps the header");
  }
  uint64_t map_end;
  if (!mapped::Add(map_offset, map_bytes, &map_end)) {
    return Refused("vdi.block_map_offset: " + std::to_string(map_offset) + " overflows");
  }
  INGOT_ASSIGN_OR_RETURN(std::vector<uint8_t> raw,
                         mapped::ReadTable(file, map_offset, map_bytes, "vdi.block_map"));
  // VirtualBox lays out header, map, data in that order; data before or inside the map would let a
  // block alias the table that maps it.
  if (l.data_offset < map_end) {
    return Refused("vdi.data_offset: data area at " + std::to_string(l.data_offset) +
                   " overlaps the header or the block map ending at " + std::to_string(map_end));
  }
  l.block_map.resize(blocks);
  const uint64_t used_blocks = (l.disk_size + l.block_size - 1) / l.block_size;
  for (uint32_t i = 0; i < blocks; ++i) {
    const uint32_t e = Le32(raw.data() + 4ull * i);
    l.block_map[i] = e;
    if (e == kBlockFree || e == kBlockZero || i >= used_blocks) continue;
    // data_offset + e * block_size < 2^32 + 2^32 * 2^26: cannot overflow.
    const uint64_t start = l.data_offset + uint64_t(e) * l.block_size;
    if (!mapped::Within(start, l.block_size, file_size)) {
      return Refused("vdi.block_offset: block " + std::to_string(i) + " at " +
                     std::to_string(start) + " runs past the end of the file (" +
                     std::to_string(file_size) + " bytes)");
    }
  }
  return l;
}

class VdiImage final : public mapped::MappedImage {
 public:
  VdiImage(io::ByteSource& file, Layout l) : MappedImage(file, l.disk_size), l_(std::move(l)) {}

 protected:
  Result<Run> Locate(uint64_t offset, uint64_t max_length) override {
    const uint64_t block = offset / l_.block_size;
    const uint64_t in_block = offset % l_.block_size;
    const uint32_t e = l_.block_map[block];
    if (e == kBlockFree || e == kBlockZero) {
      return Run{Run::Where::kZero, l_.block_size - in_block, 0};
    }
    return Run{Run::Where::kFile, l_.block_size - in_block,
               l_.data_offset + uint64_t(e) * l_.block_size + in_block};
  }

 private:
  Layout l_;
};

Result<ImageInfo> InspectVdi(io::ByteSource& file) {
  INGOT_ASSIGN_OR_RETURN(Layout l, Parse(file));
  ImageInfo info;
  info.format = Format::kVdi;
  info.virtual_size = l.disk_size;
  info.actual_size = file.Size();
  info.cluster_size = l.block_size;
  info.format_specific["image-type"] = l.image_type == kTypeFixed ? "fixed" : "normal";
  return info;
}

Result<std::unique_ptr<DiskImage>> OpenVdi(io::ByteSource& file) {
  INGOT_ASSIGN_OR_RETURN(Layout l, Parse(file));
  return std::unique_ptr<DiskImage>(std::make_unique<VdiImage>(file, std::move(l)));
}

}  // namespace

const Driver& VdiDriver() {
  static const Driver d{Format::kVdi, Probe, InspectVdi, OpenVdi};
  return d;
}

}  // namespace ingot::formats
