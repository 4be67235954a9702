// Disk-image formats: detect what bytes really are, refuse the hostile, and read any format as a plain
// virtual disk. Pure library: depends on io/ and common/ only, never on the server.
//
// Every reader is a layer over an io::ByteSource (the image file) that exposes the guest's virtual disk as
// a DiskImage (itself a ByteSource), so conversion is copying from the top of the stack.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/byte_source.h"

namespace ingot::formats {

enum class Format {
  kRaw, kQcow2, kVmdk, kVhd, kVhdx, kVdi, kIso,
  // Detected by qemu's probe rules and always refused (`format.unsupported: <name>`): never raw.
  kQcow, kQed, kParallels, kBochs, kCloop, kDmg, kLuks,
};

// qemu's names ("raw", "qcow2", "vmdk", "vpc", "vhdx", "vdi", "qcow", "qed", "parallels", "bochs",
// "cloop", "dmg", "luks") and "iso"; Glance's disk_format names
// differ only for VHD ("vhd"); see GlanceDiskFormatName.
std::string_view FormatName(Format format);
std::string_view GlanceDiskFormatName(Format format);
std::optional<Format> ParseFormatName(std::string_view name);  // accepts qemu and Glance names

// What a range of the virtual disk holds.
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool zero = false;  // reads as zeros (hole, zero cluster, unallocated); no need to copy
};

// The guest's virtual disk. ReadAt/Size are the virtual disk's bytes and virtual size.
// Thread safety: as io::ByteSource (concurrent ReadAt allowed) unless a reader says otherwise.
class DiskImage : public io::ByteSource {
 public:
  // Describes the range starting at `offset` (< Size()): returns one extent that starts at `offset`,
  // has length in [1, max_length], and is uniformly data or zero.
  virtual Result<Extent> BlockStatus(uint64_t offset, uint64_t max_length) = 0;
};

struct Snapshot {
  std::string id;
  std::string name;
  uint64_t vm_state_size = 0;
  uint64_t virtual_size = 0;
  int64_t date_sec = 0;
};

// What inspection learns; keys of format_specific follow `qemu-img info --output=json`'s
// "format-specific"."data" for that format (e.g. qcow2: compat, compression-type, lazy-refcounts,
// refcount-bits, corrupt, extended-l2; vmdk: create-type, cid, parent-cid, adapter-type (Glance's
// vmdk_adapter_type), extents).
struct ImageInfo {
  Format format = Format::kRaw;
  uint64_t virtual_size = 0;
  uint64_t actual_size = 0;   // bytes the image file occupies (its length for streams)
  std::optional<uint32_t> cluster_size;
  std::string compression;    // "", "zlib", "zstd", "deflate" (streamOptimized VMDK)
  std::vector<Snapshot> snapshots;
  std::map<std::string, std::string> format_specific;
  // Facts about raw images: "gpt" / "mbr" partition table found, "iso" primary volume descriptor.
  std::optional<std::string> partition_table;
};

// Detects the format from the bytes alone. An image that matches no format is raw. Fails with
// kRefused when the bytes match two formats at once (e.g. an ISO that is also a qcow2).
Result<Format> Detect(io::ByteSource& file);

// Detects, then parses the headers and runs every safety check of the detected format.
// Fails with kRefused naming the rule and the offending value ("qcow2.backing_file: 'x'") for a hostile
// image, kInvalidArgument/kOutOfRange/kCorruption for a malformed one.
Result<ImageInfo> Inspect(io::ByteSource& file);

// Opens the image as a virtual disk. `format` nullopt means Detect(). The safety checks of Inspect run
// first; a refused image is never opened. `file` must outlive the DiskImage.
Result<std::unique_ptr<DiskImage>> Open(io::ByteSource& file, std::optional<Format> format = {});

}  // namespace ingot::formats
