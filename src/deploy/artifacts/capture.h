// Capture: an OS volume back to a golden image (HPE Image Streamer's "create golden image from an
// OS volume with a capture build plan"). The use case itself is ArtifactService::CaptureGoldenImage
// (artifact_service.h, implemented in capture.cc); this header holds the volume-level steps it is
// made of, usable and tested on their own:
//
//   1. FlattenVolume: the source volume's flushed state (its golden image under its overlay) copied
//      into a sparse raw file. Holes and zero ranges are not written, so the cost is the volume's
//      data, not its size. The source is only read: its overlay, map and base are untouched.
//   2. OpenWorkVolume: a fresh copy-on-write OsVolume over that file, in a private directory,
//      for the capture plan's scripts (guestfish/engine.h, either engine) to generalise.
//   3. WriteGoldenQcow2: the work volume as a qcow2 v3 file through formats/'s writer; ranges that
//      read as zeros are left unallocated, so the file holds only the data.
// A capture plan without steps ("capture as is") skips 1 and 2: the source is written directly.
// The SHA-256 is then taken from the file as stored (the writer fills its tables out of order, so
// it cannot be hashed as a stream), which also proves what reached the disk.
//
// Consistency: the caller opens the source through VolumeStore::OpenVolume, whose exclusive lock
// means no NBD client has it open (VolumeExports closes, and so flushes, a volume when its last
// connection ends) and none can open it until the copy is done.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "deploy/os_volume.h"
#include "formats/format.h"

namespace ingot::deploy::artifacts {

// An OsVolume seen as a virtual disk, for formats/'s converters. Holes (unallocated anywhere) and
// ranges reading as zeros are reported as zero extents. The volume must outlive this.
class VolumeDisk final : public formats::DiskImage {
 public:
  explicit VolumeDisk(OsVolume& volume) : volume_(volume) {}
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override;
  uint64_t Size() const override { return volume_.Size(); }
  Result<formats::Extent> BlockStatus(uint64_t offset, uint64_t max_length) override;

 private:
  OsVolume& volume_;
};

// Writes `source`'s contents into a new sparse raw file `raw_path` (created; not fsynced: it is
// scratch). Reads through OsVolume only.
Status FlattenVolume(OsVolume& source, const std::string& raw_path);

// Makes `dir` (created, must not exist) a copy-on-write volume over the raw file `raw_path` and
// opens it. Writes land in `dir`'s overlay, never in `raw_path`.
Result<std::unique_ptr<OsVolume>> OpenWorkVolume(const std::string& dir,
                                                 const std::string& raw_path);

// Writes `volume` as qcow2 v3 into the new file `path` (created or truncated), fdatasync'd.
// Zero ranges are not stored. Returns the file's size.
Result<uint64_t> WriteGoldenQcow2(OsVolume& volume, const std::string& path);

}  // namespace ingot::deploy::artifacts
