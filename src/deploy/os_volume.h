// An OS volume: a server's own disk, a copy-on-write clone of a golden image. Reads of blocks the
// server never wrote come from the golden image (any format formats/ reads: raw, qcow2, vmdk, …,
// through its virtual disk); writes land in an overlay file beside it. Cloning writes a few small
// files whatever the image's size (volume_store.h), and the golden image is never written.
//
// On disk (a directory; volume_store.h creates and names it):
//   volume.meta  the volume's facts (text, key=value): size, cluster size, the base and its identity
//   base         a hard link to the golden image file when it is on the same file system (so the
//                image cannot vanish under the volume), else volume.meta names it by absolute path
//   overlay      sparse file of the volume's size; cluster i lives at offset i × cluster_size
//   map          one byte per cluster: 0 = read from the base, 1 = data in the overlay,
//                2 = reads as zeros (written zeros or trimmed; the overlay holds a hole)
//   export.meta  attachment and access list (volume_store.h)
//
// Durability: writes go to the overlay at once; the map of newly written clusters is persisted by
// Flush, after the overlay's data is fdatasync'd, so a crash can never leave the map claiming data
// the overlay does not hold. A crash loses at most the writes since the last Flush — which is what
// a disk promises (NBD FLUSH/FUA, a guest's cache flush). Each map byte is written whole, so a torn
// map page can only mix old and new states of clusters whose data is durable either way.
//
// Thread safety: Read and BlockStatus may run concurrently with each other and with the writer
// calls; Write, WriteZeroes, Trim and Flush serialise among themselves. A cluster's state flips only
// after its data is in the overlay, so a reader sees either the old or the new bytes of a cluster.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>

#include "common/result.h"
#include "formats/format.h"
#include "io/file.h"

namespace ingot::deploy {

// volume.meta, parsed. Pure data; ParseVolumeMeta/FormatVolumeMeta are its text form.
struct VolumeMeta {
  uint64_t size = 0;             // the volume's virtual size (≥ the base's; past it reads zeros)
  uint32_t cluster_size = 65536; // copy-on-write granularity, a power of two in [4 KiB, 2 MiB]
  std::string base;              // "base" (the hard link in the volume's directory) or an absolute path
  std::string base_format;       // formats::FormatName of the golden image
  uint64_t base_file_size = 0;   // identity of the golden image file, checked on every open
  int64_t base_mtime_ns = 0;
  int64_t created_unix = 0;
};
Result<VolumeMeta> ParseVolumeMeta(std::string_view text);
std::string FormatVolumeMeta(const VolumeMeta& meta);

// What a range of a volume holds.
struct VolumeExtent {
  uint64_t length = 0;
  bool allocated = false;  // data in the overlay or in the base image (false: a hole anywhere)
  bool zero = false;       // reads as zeros
};

class OsVolume {
 public:
  enum ClusterState : uint8_t { kBase = 0, kData = 1, kZero = 2 };

  // Writes a new volume's files (overlay, map, volume.meta) into the existing directory `dir`.
  // Cost independent of the volume's size: the overlay and map are sparse. fsyncs what it writes;
  // the caller fsyncs `dir` itself and publishes it (volume_store.h).
  static Status Format(const std::string& dir, const VolumeMeta& meta);

  // Opens the volume in `dir`. Fails with kConflict when another process has it open, with
  // kCorruption when the golden image changed since the clone or the map is damaged, and with the
  // formats/ refusal when the base no longer passes its safety checks.
  static Result<std::unique_ptr<OsVolume>> Open(const std::string& dir);
  ~OsVolume();  // Flush()es; errors are logged

  uint64_t Size() const { return meta_.size; }
  const VolumeMeta& meta() const { return meta_; }

  // Fills all of buf. kOutOfRange past the end.
  Status Read(uint64_t offset, std::span<uint8_t> buf);
  Status Write(uint64_t offset, std::span<const uint8_t> data);
  // The range reads as zeros. Whole clusters become kZero and their overlay space is freed when
  // `may_punch`, else they are written as allocated zeros; partial clusters are written.
  Status WriteZeroes(uint64_t offset, uint64_t length, bool may_punch);
  // Whole clusters inside the range read as zeros afterwards and their space is freed; partial
  // clusters are left as they are (a discard promises nothing about the contents).
  Status Trim(uint64_t offset, uint64_t length);
  // Makes every completed write durable (see the top of this file).
  Status Flush();
  // Describes the range from `offset` (< Size()): one extent of length in [1, max_length].
  Result<VolumeExtent> BlockStatus(uint64_t offset, uint64_t max_length);

  // Where the bytes from `offset` live verbatim (the overlay, or a raw golden image), for
  // sendfile: fd, file offset, length in [1, max_length]; nullopt for zeros and for golden images
  // in other formats (read those with Read). The descriptor lives as long as the volume.
  struct FileRange {
    int fd = -1;
    uint64_t file_offset = 0;
    uint64_t length = 0;
  };
  std::optional<FileRange> MapToFile(uint64_t offset, uint64_t max_length) const;

  // Bytes of clusters held in the overlay.
  uint64_t overlay_bytes() const;

 private:
  OsVolume() = default;
  ClusterState State(uint64_t cluster) const {
    return ClusterState(states_[cluster].load(std::memory_order_acquire));
  }
  void SetState(uint64_t cluster, ClusterState s);  // writer mutex held
  uint64_t ClusterEnd(uint64_t cluster) const;
  Status ReadBase(uint64_t offset, std::span<uint8_t> buf);
  Status WriteOverlay(uint64_t offset, std::span<const uint8_t> data);
  Status CopyOnWrite(uint64_t cluster, uint64_t offset, std::span<const uint8_t> data);
  Status ZeroWholeClusters(uint64_t first, uint64_t last, bool punch);

  std::string dir_;
  VolumeMeta meta_;
  io::UniqueFd dir_fd_;  // holds the flock that makes this process the volume's only user
  io::UniqueFd overlay_fd_;
  // The overlay again, opened O_DIRECT (when the file system allows it) for aligned writes: on
  // this machine kind, copying into the page cache costs four times the disk write itself.
  io::UniqueFd direct_fd_;
  io::UniqueFd map_fd_;
  std::unique_ptr<io::FileSource> base_file_;
  std::unique_ptr<formats::DiskImage> base_;
  bool base_is_raw_ = false;  // the golden image's virtual disk is its file, byte for byte
  uint64_t clusters_ = 0;
  std::unique_ptr<std::atomic<uint8_t>[]> states_;

  std::mutex writer_;
  bool data_dirty_ = false;        // overlay written since the last fdatasync
  std::set<uint64_t> dirty_pages_; // 4 KiB pages of the map changed since the last Flush
};

}  // namespace ingot::deploy
