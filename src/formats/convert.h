// Conversion: copy a virtual disk (any reader's DiskImage) into raw or qcow2 bytes.
//
// Memory is bounded whatever the image size: the disk is cut into chunks; a few worker threads read
// (and decompress, and for compressed qcow2 output, compress) chunks in parallel while the calling
// thread writes finished chunks in order. At most `2 * threads + 2` chunks are in flight.
// Ranges the source reports as zero, and 4 KiB blocks that read as all zeros, are never written:
// raw output keeps them as holes, qcow2 output leaves their clusters unallocated.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "formats/format.h"
#include "io/byte_source.h"

namespace ingot::formats {

struct ConvertOptions {
  // Worker threads reading/decoding the source; 0 means one per core (at most 4).
  unsigned threads = 0;
  // Called on the calling thread after each chunk is written, with bytes of virtual disk done and
  // the total. Returning false cancels the conversion (kCancelled).
  std::function<bool(uint64_t done, uint64_t total)> progress;
  // Make the output durable (fdatasync / ByteSink::Flush) before returning.
  bool flush = true;
  // ConvertToRawFile only: write with O_DIRECT when the file system allows (falls back silently).
  bool direct_io = true;
  // ConvertToRawFile through the page cache (direct_io false or refused): start write-back of each
  // chunk as soon as it is written (sync_file_range SYNC_FILE_RANGE_WRITE), so the disk is busy
  // from the first chunk and a final flush only waits for the tail. Without it the kernel keeps
  // the data dirty until its own thresholds, and a flush writes it in one burst at the end.
  bool early_writeback = true;
  // ConvertToRawFile through the page cache: runs the image stores verbatim (raw, uncompressed
  // qcow2) are written from a read-only mapping of the image file, one copy instead of two.
  // When the output is on a tmpfs, all workers but one write through a shared mapping of the
  // output instead of pwrite, so they allocate its pages in parallel (tmpfs writes hold the inode
  // lock). Not used with a progress callback.
  bool write_from_mapping = true;
  // qcow2 output only.
  enum class Compression { kNone, kZlib, kZstd };
  Compression compression = Compression::kNone;
  uint32_t cluster_bits = 16;  // 64 KiB clusters, qemu's default
};

// Raw into `sink`, which must read as zeros wherever nothing is written (a new file, a new object).
// The sink is resized to the virtual size first. Calls to `sink` come from the calling thread only.
Status ConvertToRaw(DiskImage& src, io::ByteSink& sink, const ConvertOptions& options = {});

// Raw into the file at `path`, created or truncated. A regular file gets holes for zero ranges; any
// other file (a block device) gets them written (or discarded) explicitly so they read as zeros.
Status ConvertToRawFile(DiskImage& src, const std::string& path,
                        const ConvertOptions& options = {});

// Raw as a sequential stream (e.g. to an object store without random writes): zeros are written.
Status ConvertToRawStream(DiskImage& src, io::Writer& out, const ConvertOptions& options = {});

// qcow2 version 3 into `sink` (a new, empty destination), optionally with compressed clusters. The
// result passes `qemu-img check`. Calls to `sink` come from the calling thread only.
Status ConvertToQcow2(DiskImage& src, io::ByteSink& sink, const ConvertOptions& options = {});

}  // namespace ingot::formats
