// The bootable disk of a build: a GPT disk with an EFI system partition (FAT32: systemd-boot, the
// kernel, the initrd) and an ext4 root, made without mounting anything (this host's kernel has no
// vfat, and a build must not need loop devices), and the same bytes every time the same root is
// packaged:
//   * the ext4 file system: fixed UUID and directory-hash seed (-U, -E hash_seed), superblock times
//     from E2FSPROGS_FAKE_TIME, and then every inode's atime, ctime and crtime set to
//     SOURCE_DATE_EPOCH by NormalizeExt4Times (mke2fs -d of e2fsprogs 1.47.0 copies each source
//     file's ctime and atime, which are the build's own and cannot be set from user space);
//   * the FAT file system: --invariant, a fixed volume id, every file copied with its own time and
//     mtools' directory times from SOURCE_DATE_EPOCH;
//   * the partition table: disk and partition GUIDs derived from the build's inputs (sgdisk -U,
//   -u).
//
// Two halves, around the root: kDiskFilesystemsScript is a part of the packaging script (it needs
// the root mounted at $m) and leaves root.ext4 and esp.img in $out; AssembleDisk then normalizes
// the ext4 image and puts both into disk.raw and disk.qcow2.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/process.h"
#include "common/result.h"

namespace ingot::build {

// A shell fragment of the packaging script. Expects: $m the root (read-only), $out the output
// directory holding kernel and initrd, $efi the UEFI boot loader, $fs_uuid, $root_uuid, $cmdline,
// $title, and SOURCE_DATE_EPOCH in the environment. Makes $out/root.ext4 and $out/esp.img (or
// exits 3 with a message when the root has no kernel or initrd).
extern const char* const kDiskFilesystemsScript;

// Sets the atime, ctime and crtime (with their nanoseconds) of every in-use inode of the ext2/3/4
// file system image at `image` to `epoch`, clamps every later mtime to it, and stamps the
// superblock's write, mount, check and creation times with it. The image must be one this build
// just made (it is trusted as well-formed; libext2fs still refuses a corrupt one with an error).
Status NormalizeExt4Times(const std::string& image, int64_t epoch);

// Runs a tool in the job's sandbox (no network): the builder's runner.
using DiskToolRunner = std::function<Result<process::Outcome>(std::vector<std::string> argv)>;

struct DiskIds {
  std::string disk_guid;  // GPT disk GUID
  std::string esp_guid;   // partition 1 unique GUID
  std::string root_guid;  // partition 2 unique GUID (the kernel's root=PARTUUID=)
};

// From $out/root.ext4 and $out/esp.img: normalizes the ext4 image, writes $out/disk.raw (GPT,
// partitions at fixed offsets) and $out/disk.qcow2, and removes the two file system images.
Status AssembleDisk(const std::string& out, const DiskIds& ids, int64_t epoch,
                    const DiskToolRunner& run);

}  // namespace ingot::build
