// An optional capability of a DiskImage: saying where its bytes live in the image file. Private to
// formats/. The readers implement it (qcow2 builds its ReadAt on it). It is meant for
// copy offload (copy_file_range / reflink of stored-verbatim runs); conversion does not use it yet,
// because with O_DIRECT output the copy is disk-bound and zero detection needs the bytes anyway.
#pragma once

#include <cstdint>

#include "formats/format.h"

namespace ingot::formats {

struct HostRun {
  enum class Kind {
    kZero,   // reads as zeros
    kFile,   // stored verbatim in host_file() at file_offset
    kOther,  // only ReadAt can produce it (compressed, ...)
  };
  Kind kind = Kind::kZero;
  uint64_t length = 0;  // >= 1; clipped to max_length
  uint64_t file_offset = 0;
};

class HostMapped {
 public:
  virtual ~HostMapped() = default;
  // Describes the virtual range starting at `offset` (< Size()), at most max_length (>= 1) long.
  // Thread-safe as the image's ReadAt is.
  virtual Result<HostRun> MapToHost(uint64_t offset, uint64_t max_length) = 0;
  virtual io::ByteSource& host_file() = 0;
};

}  // namespace ingot::formats
