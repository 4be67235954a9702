// The OS volume as guestfish names it: the disk /dev/sda, its partitions /dev/sdaN numbered as
// Linux numbers them (GPT: entry index + 1, gaps kept; MBR: slots 1-4, logical partitions from 5
// along the extended chain), and what file system each holds, from its signature. Pure functions
// over bytes; the volume's bytes are untrusted.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"

namespace ingot::deploy::guestfish {

// Reads exactly `length` bytes at `offset` (kOutOfRange past the end).
using DiskReader = std::function<Status(uint64_t offset, uint8_t* buf, size_t length)>;

struct DiskPartition {
  int number = 0;  // N of /dev/sdaN
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct DiskLayout {
  std::string table;  // "gpt", "mbr" or "" (no partition table: the whole disk is one device)
  std::vector<DiskPartition> partitions;
};

Result<DiskLayout> ReadDiskLayout(const DiskReader& read, uint64_t disk_size);

// What `blkid` would call the file system at [offset, offset + length): "ext2", "ext3", "ext4",
// "vfat", "xfs", "btrfs", "ntfs", "swap", "LVM2_member", or "unknown".
Result<std::string> ProbeFilesystem(const DiskReader& read, uint64_t offset, uint64_t length);

// The device name guestfish uses: "/dev/sda" (number 0) or "/dev/sdaN".
std::string DeviceName(int number);
// The partition number named by `device` ("/dev/sda" → 0, "/dev/sda2" → 2, also /dev/vda, /dev/hda
// and /dev/xvda as guestfish accepts them); -1 for anything else.
int ParseDeviceName(const std::string& device);

}  // namespace ingot::deploy::guestfish
