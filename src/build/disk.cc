#include "build/disk.h"

#include <ext2fs/ext2fs.h>

#include <cstddef>
#include <vector>

namespace ingot::build {

const char* const kDiskFilesystemsScript = R"sh(
echo "== bootable disk"
if [ -z "$kver" ] || [ ! -f "$out/initrd" ]; then
  echo "a bootable disk needs a kernel and an initrd in /boot (add linux-image-amd64 to packages)"
  exit 3
fi
used_kb=$(du -skx "$m" | cut -f1)
# 30% and 256 MiB of room, rounded up to 64 MiB: a few blocks of difference in the host's
# accounting of the same tree never change the file system's size.
root_mb=$(( (used_kb * 13 / 10 / 1024 + 256 + 63) / 64 * 64 ))
esp_mb=128
# E2FSPROGS_FAKE_TIME: the superblock's and the new directories' times; -U and hash_seed: no
# random UUID or directory-hash seed. Inode ctimes and atimes are fixed afterwards (AssembleDisk).
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mke2fs -q -F -t ext4 -b 4096 -L root -U "$fs_uuid" \
    -E "hash_seed=$fs_uuid,root_owner=0:0" -d "$m" "$out/root.ext4" "${root_mb}M"
mkfs.vfat -C --invariant -i 1D0E5EA1 -n ESP -F 32 "$out/esp.img" $((esp_mb * 1024)) >/dev/null
mkdir -p "$out/esp.d"
printf 'default ingot.conf\ntimeout 0\n' > "$out/esp.d/loader.conf"
printf 'title %s\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=PARTUUID=%s rw %s\n' \
    "$title" "$root_uuid" "$cmdline" > "$out/esp.d/entry.conf"
cp "$efi" "$out/esp.d/BOOTX64.EFI"
touch --date="@$SOURCE_DATE_EPOCH" "$out/esp.d/loader.conf" "$out/esp.d/entry.conf" "$out/esp.d/BOOTX64.EFI"
export MTOOLS_SKIP_CHECK=1
# mtools stamps new directories with SOURCE_DATE_EPOCH; -m keeps each file's (clamped) time.
mmd -i "$out/esp.img" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -m -i "$out/esp.img" "$out/esp.d/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy -m -i "$out/esp.img" "$out/kernel" ::/vmlinuz
mcopy -m -i "$out/esp.img" "$out/initrd" ::/initrd.img
mcopy -m -i "$out/esp.img" "$out/esp.d/loader.conf" ::/loader/loader.conf
mcopy -m -i "$out/esp.img" "$out/esp.d/entry.conf" ::/loader/entries/ingot.conf
rm -rf "$out/esp.d"
)sh";

namespace {

// The second half: both file systems into a GPT disk at fixed offsets, then the qcow2.
constexpr const char* kAssembleScript = R"sh(set -eu
out=$1 disk_uuid=$2 esp_uuid=$3 root_uuid=$4
esp_mb=$(( $(stat -c %s "$out/esp.img") / 1048576 ))
root_mb=$(( $(stat -c %s "$out/root.ext4") / 1048576 ))
rm -f "$out/disk.raw" "$out/disk.qcow2"
truncate -s "$((1 + esp_mb + root_mb + 1))M" "$out/disk.raw"
# sgdisk applies its options in order: the disk GUID last, once the table exists.
sgdisk -o -n "1:2048:+${esp_mb}M" -t 1:ef00 -c 1:ESP -u "1:$esp_uuid" \
    -n 2:0:0 -t 2:8304 -c 2:root -u "2:$root_uuid" -U "$disk_uuid" "$out/disk.raw" >/dev/null
sgdisk -v "$out/disk.raw" | grep -q 'No problems found'
[ "$(sgdisk -p "$out/disk.raw" | grep -c '^ *[12] ')" = 2 ]
dd if="$out/esp.img" of="$out/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$out/root.ext4" of="$out/disk.raw" bs=1M seek=$((1 + esp_mb)) conv=notrunc,sparse status=none
rm -f "$out/esp.img" "$out/root.ext4"
qemu-img convert -f raw -O qcow2 "$out/disk.raw" "$out/disk.qcow2"
)sh";

std::string Ext2Error(errcode_t err) { return error_message(err); }

}  // namespace

Status NormalizeExt4Times(const std::string& image, int64_t epoch) {
  if (epoch < 0 || epoch > 0xFFFFFFFFll) {
    return InvalidArgument("SOURCE_DATE_EPOCH out of the ext4 time range");
  }
  const auto t = static_cast<uint32_t>(epoch);
  ext2_filsys fs = nullptr;
  errcode_t err =
      ext2fs_open(image.c_str(), EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
  if (err != 0) return Internal("opening the root file system image: " + Ext2Error(err));
  // The superblock's write time on close comes from fs->now when it is set.
  fs->now = static_cast<time_t>(epoch);
  auto fail = [&](const std::string& what, errcode_t e) {
    ext2fs_free(fs);
    return Internal(what + ": " + Ext2Error(e));
  };
  ext2_inode_scan scan = nullptr;
  err = ext2fs_open_inode_scan(fs, 0, &scan);
  if (err != 0) return fail("scanning inodes", err);
  const int size = EXT2_INODE_SIZE(fs->super);
  std::vector<char> buf(static_cast<size_t>(size) < sizeof(ext2_inode_large)
                            ? sizeof(ext2_inode_large)
                            : static_cast<size_t>(size));
  auto* inode = reinterpret_cast<ext2_inode_large*>(buf.data());
  // Fields past the 128-byte base inode exist when i_extra_isize covers them.
  auto has = [&](size_t end_offset) {
    return size > EXT2_GOOD_OLD_INODE_SIZE &&
           static_cast<size_t>(EXT2_GOOD_OLD_INODE_SIZE + inode->i_extra_isize) >= end_offset;
  };
  for (;;) {
    ext2_ino_t ino = 0;
    err = ext2fs_get_next_inode_full(scan, &ino, reinterpret_cast<ext2_inode*>(inode), size);
    if (err == EXT2_ET_BAD_BLOCK_IN_INODE_TABLE) continue;
    if (err != 0) {
      ext2fs_close_inode_scan(scan);
      return fail("reading inodes", err);
    }
    if (ino == 0) break;
    if (inode->i_links_count == 0) continue;  // free (or never used)
    inode->i_atime = t;
    inode->i_ctime = t;
    if (inode->i_mtime > t) inode->i_mtime = t;
    if (has(offsetof(ext2_inode_large, i_ctime_extra) + 4)) inode->i_ctime_extra = 0;
    if (has(offsetof(ext2_inode_large, i_mtime_extra) + 4) && inode->i_mtime == t) {
      inode->i_mtime_extra = 0;
    }
    if (has(offsetof(ext2_inode_large, i_atime_extra) + 4)) inode->i_atime_extra = 0;
    if (has(offsetof(ext2_inode_large, i_crtime) + 4)) inode->i_crtime = t;
    if (has(offsetof(ext2_inode_large, i_crtime_extra) + 4)) inode->i_crtime_extra = 0;
    err = ext2fs_write_inode_full(fs, ino, reinterpret_cast<ext2_inode*>(inode), size);
    if (err != 0) {
      ext2fs_close_inode_scan(scan);
      return fail("writing inode " + std::to_string(ino), err);
    }
  }
  ext2fs_close_inode_scan(scan);
  fs->super->s_mtime = 0;
  fs->super->s_wtime = t;
  fs->super->s_mkfs_time = t;
  fs->super->s_lastcheck = t;
  ext2fs_mark_super_dirty(fs);
  err = ext2fs_close_free(&fs);
  if (err != 0) return Internal("writing the root file system image: " + Ext2Error(err));
  return Status::Ok();
}

Status AssembleDisk(const std::string& out, const DiskIds& ids, int64_t epoch,
                    const DiskToolRunner& run) {
  INGOT_RETURN_IF_ERROR(NormalizeExt4Times(out + "/root.ext4", epoch));
  INGOT_ASSIGN_OR_RETURN(auto outcome, run({"sh", "-c", kAssembleScript, "sh", out, ids.disk_guid,
                                            ids.esp_guid, ids.root_guid}));
  if (!outcome.ok()) {
    return Internal("assembling the bootable disk failed: " + outcome.Describe() +
                    "; see the job log");
  }
  return Status::Ok();
}

}  // namespace ingot::build
