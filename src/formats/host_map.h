// An optional capability of a DiskImage: saying where its bytes live in the image file. Private to
// formats/. Conversion asks for it (dynamic_cast) so that stored-verbatim runs are copied file to file
// (copy_file_range: no trip through user space) and only compressed runs are decoded by the reader.
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
