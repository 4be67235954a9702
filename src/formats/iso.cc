// ISO 9660 detection. An ISO is a raw disk; this reader only recognises one and reports its size.
//
// Spec: ECMA-119 (ISO 9660), 4th edition (2019):
//   - The volume descriptor set starts at logical sector 16 (byte 32768 with 2048-byte sectors);
//   the
//     Primary Volume Descriptor has type 1, standard identifier "CD001", version 1 (section 8.4).
//   - Volume Space Size: both-byte-order uint32 at bytes 80-87 (LE then BE); Logical Block Size:
//     both-byte-order uint16 at bytes 128-131 (section 7.2.3 / 7.3.3). Block size is a power of
//     two, 512 to 2048 (section 6.1.2).
// Size: like Glance's format inspector, the virtual size is Logical Block Size * Volume Space Size.
// The DiskImage, though, is the whole file, as it is raw: hybrid images append partitions (e.g. an
// EFI system partition) past the ISO 9660 volume, and dropping them would break booting.
#include <cstring>
#include <memory>
#include <string>

#include "formats/driver.h"
#include "formats/mapped_image.h"

namespace ingot::formats {
namespace {

using mapped::Be16;
using mapped::Be32;
using mapped::Le16;
using mapped::Le32;
using mapped::Run;

constexpr uint64_t kPvdAt = 16 * 2048;

bool Probe(io::ByteSource& file) {
  uint8_t b[7];
  return io::ReadExact(file, kPvdAt, b).ok() && b[0] == 1 && std::memcmp(b + 1, "CD001", 5) == 0;
}

// A d-character/a-character field, trailing spaces trimmed.
std::string Field(const uint8_t* p, size_t n) {
  std::string s(reinterpret_cast<const char*>(p), n);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return s;
}

struct Volume {
  uint64_t size = 0;
  uint16_t block_size = 0;
  uint32_t blocks = 0;
  std::string volume_id, system_id;
};

Result<Volume> Parse(io::ByteSource& file) {
  uint8_t d[2048];
  Status s = io::ReadExact(file, kPvdAt, d);
  if (s.code() == Code::kOutOfRange) {
    return InvalidArgument("iso: no volume descriptor at 32 KiB: " + s.message());
  }
  INGOT_RETURN_IF_ERROR(s);
  if (d[0] != 1 || std::memcmp(d + 1, "CD001", 5) != 0) {
    return InvalidArgument("iso: no primary volume descriptor (type 1, 'CD001') at 32 KiB");
  }
  if (d[6] != 1) return InvalidArgument("iso: volume descriptor version " + std::to_string(d[6]));
  Volume v;
  v.blocks = Le32(d + 80);
  v.block_size = Le16(d + 128);
  if (v.blocks != Be32(d + 84) || v.block_size != Be16(d + 130)) {
    return InvalidArgument("iso: little- and big-endian copies of the volume size disagree");
  }
  if (v.block_size != 512 && v.block_size != 1024 && v.block_size != 2048) {
    return InvalidArgument("iso: logical block size " + std::to_string(v.block_size));
  }
  v.size = uint64_t(v.blocks) * v.block_size;  // < 2^32 * 2^11: cannot overflow
  if (v.size < kPvdAt + 2048) {
    return InvalidArgument("iso: volume of " + std::to_string(v.size) +
                           " bytes ends before its own volume descriptor");
  }
  if (v.size > file.Size()) {
    return Corruption("iso: volume of " + std::to_string(v.size) + " bytes but the file holds " +
                      std::to_string(file.Size()) + " (truncated?)");
  }
  v.system_id = Field(d + 8, 32);
  v.volume_id = Field(d + 40, 32);
  return v;
}

// The file as it is: every byte is data (an ISO has no holes to report).
class IsoImage final : public mapped::MappedImage {
 public:
  explicit IsoImage(io::ByteSource& file) : MappedImage(file, file.Size()) {}

 protected:
  Result<Run> Locate(uint64_t offset, uint64_t max_length) override {
    return Run{Run::Where::kFile, Size() - offset, offset};
  }
};

Result<ImageInfo> InspectIso(io::ByteSource& file) {
  INGOT_ASSIGN_OR_RETURN(Volume v, Parse(file));
  ImageInfo info;
  info.format = Format::kIso;
  info.virtual_size = v.size;
  info.actual_size = file.Size();
  info.partition_table = "iso";
  info.format_specific["volume-id"] = v.volume_id;
  info.format_specific["system-id"] = v.system_id;
  info.format_specific["logical-block-size"] = std::to_string(v.block_size);
  info.format_specific["volume-space-size"] = std::to_string(v.blocks);
  return info;
}

Result<std::unique_ptr<DiskImage>> OpenIso(io::ByteSource& file) {
  INGOT_RETURN_IF_ERROR(Parse(file).status());
  return std::unique_ptr<DiskImage>(std::make_unique<IsoImage>(file));
}

}  // namespace

const Driver& IsoDriver() {
  static const Driver d{Format::kIso, Probe, InspectIso, OpenIso};
  return d;
}

}  // namespace ingot::formats
