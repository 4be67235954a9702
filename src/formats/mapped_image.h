// Private to formats/: what the readers (and the qcow2 writer and partition tables) share.
//
//  - Little/big-endian loads from header bytes (every on-disk field is fixed-width and
//    explicit-endian).
//  - Checked arithmetic for every offset or size that comes from the image's own bytes.
//  - MappedImage, a DiskImage whose reader only answers "where do the bytes at virtual offset X
//    live, and for how long" (a Run). Reading, zero-filling and BlockStatus are written once, here,
//    so each format's code is its header parsing, its safety checks and its Locate().
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "formats/format.h"
#include "formats/host_map.h"
#include "io/byte_source.h"

namespace ingot::formats::mapped {

inline uint16_t Le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t Le32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline uint64_t Le64(const uint8_t* p) { return uint64_t(Le32(p)) | (uint64_t(Le32(p + 4)) << 32); }
inline uint16_t Be16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }
inline uint32_t Be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
inline uint64_t Be64(const uint8_t* p) { return (uint64_t(Be32(p)) << 32) | uint64_t(Be32(p + 4)); }

// a + b and a * b, or nullopt-like failure: returns false when the result does not fit in 64 bits.
[[nodiscard]] inline bool Add(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}
[[nodiscard]] inline bool Mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
// True when [offset, offset + length) lies inside [0, limit), computed without overflow.
inline bool Within(uint64_t offset, uint64_t length, uint64_t limit) {
  return offset <= limit && length <= limit - offset;
}
// True when [a, a + alen) and [b, b + blen) share a byte; exact even where a + alen would wrap.
inline bool Overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
  if (alen == 0 || blen == 0) return false;
  return a >= b ? a - b < blen : b - a < alen;
}
inline bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// The most memory a reader may spend on a table whose size comes from header values. Tables are
// also checked against the file's length before they are read, so a small hostile file cannot make
// us allocate more than it holds.
inline constexpr uint64_t kMaxTableBytes = 64ull << 20;

// Where a run of virtual-disk bytes lives.
struct Run {
  enum class Where {
    kZero,   // reads as zeros (hole, unallocated, zero block)
    kFile,   // stored verbatim in the image file at file_offset
    kOther,  // stored in a reader-specific way (e.g. a compressed grain): ReadOther() produces it
  };
  Where where = Where::kZero;
  uint64_t length = 0;       // >= 1
  uint64_t file_offset = 0;  // kFile only
};

// A DiskImage over `file` whose layout the subclass describes through Locate().
// Thread safety: ReadAt/BlockStatus are as thread-safe as the subclass's Locate/ReadOther (all
// readers here keep their tables immutable after open, or guard caches with a mutex). It also says
// where its runs live in the file (HostMapped), so conversion can copy stored-verbatim runs file to
// file and only asks ReadAt for the rest.
class MappedImage : public DiskImage, public HostMapped {
 public:
  MappedImage(io::ByteSource& file, uint64_t virtual_size) : file_(file), size_(virtual_size) {}

  uint64_t Size() const final { return size_; }

  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) final {
    if (offset >= size_) return size_t{0};
    const uint64_t want = std::min<uint64_t>(buf.size(), size_ - offset);
    uint64_t done = 0;
    while (done < want) {
      INGOT_ASSIGN_OR_RETURN(Run run, Locate(offset + done, want - done));
      if (run.length == 0)
        return Internal("reader described an empty run at " + std::to_string(offset + done));
      const uint64_t n = std::min<uint64_t>(run.length, want - done);
      std::span<uint8_t> out = buf.subspan(done, n);
      switch (run.where) {
        case Run::Where::kZero:
          std::memset(out.data(), 0, out.size());
          break;
        case Run::Where::kFile:
          INGOT_RETURN_IF_ERROR(ReadFileExact(run.file_offset, out));
          break;
        case Run::Where::kOther:
          INGOT_RETURN_IF_ERROR(ReadOther(offset + done, out));
          break;
      }
      done += n;
    }
    return size_t(want);
  }

  Result<Extent> BlockStatus(uint64_t offset, uint64_t max_length) final {
    if (offset >= size_ || max_length == 0) {
      return OutOfRange("block status at " + std::to_string(offset) + " outside virtual size " +
                        std::to_string(size_));
    }
    const uint64_t want = std::min<uint64_t>(max_length, size_ - offset);
    Extent e{offset, 0, false};
    // Merge neighbouring runs of the same kind so callers (conversion) see long extents; the cap on
    // iterations keeps one call cheap whatever the table looks like.
    for (int i = 0; i < 4096 && e.length < want; ++i) {
      INGOT_ASSIGN_OR_RETURN(Run run, Locate(offset + e.length, want - e.length));
      if (run.length == 0)
        return Internal("reader described an empty run at " + std::to_string(offset + e.length));
      const bool zero = run.where == Run::Where::kZero;
      if (e.length == 0) {
        e.zero = zero;
      } else if (zero != e.zero) {
        break;
      }
      e.length += std::min<uint64_t>(run.length, want - e.length);
    }
    return e;
  }

  Result<HostRun> MapToHost(uint64_t offset, uint64_t max_length) final {
    if (offset >= size_ || max_length == 0) {
      return OutOfRange("map at " + std::to_string(offset) + " outside virtual size " +
                        std::to_string(size_));
    }
    const uint64_t want = std::min<uint64_t>(max_length, size_ - offset);
    INGOT_ASSIGN_OR_RETURN(Run run, Locate(offset, want));
    if (run.length == 0)
      return Internal("reader described an empty run at " + std::to_string(offset));
    HostRun h;
    h.kind = run.where == Run::Where::kZero   ? HostRun::Kind::kZero
             : run.where == Run::Where::kFile ? HostRun::Kind::kFile
                                              : HostRun::Kind::kOther;
    h.length = std::min<uint64_t>(run.length, want);
    h.file_offset = run.file_offset;
    return h;
  }
  io::ByteSource& host_file() final { return file_; }

 protected:
  // Describes the bytes at virtual `offset` (< Size()), looking at most `max_length` (>= 1, within
  // Size()) ahead. The returned run may be longer than max_length; callers clip it.
  virtual Result<Run> Locate(uint64_t offset, uint64_t max_length) = 0;
  // Produces the bytes of a kOther run: `out` covers virtual [offset, offset + out.size()), which
  // lies inside one run Locate() described as kOther.
  virtual Status ReadOther(uint64_t offset, std::span<uint8_t> out) {
    return Internal("reader described a run it cannot read");
  }

  Status ReadFileExact(uint64_t file_offset, std::span<uint8_t> out) {
    Status s = io::ReadExact(file_, file_offset, out);
    // A table entry pointing past the end was refused at open; a short read now means the file
    // changed under us or lied about its size.
    if (!s.ok() && s.code() == Code::kOutOfRange) return Corruption(s.message());
    return s;
  }

  io::ByteSource& file_;

 private:
  uint64_t size_;
};

// Reads a whole table of `bytes` at `offset` after checking it lies inside the file and under the
// memory bound. `what` names the rule for refusals, e.g. "vhd.bat".
inline Result<std::vector<uint8_t>> ReadTable(io::ByteSource& file, uint64_t offset, uint64_t bytes,
                                              const std::string& what) {
  if (bytes > kMaxTableBytes) {
    return Refused(what + "_size: " + std::to_string(bytes) + " bytes exceeds the " +
                   std::to_string(kMaxTableBytes) + "-byte bound");
  }
  if (!Within(offset, bytes, file.Size())) {
    return Refused(what + "_offset: table at " + std::to_string(offset) + " of " +
                   std::to_string(bytes) + " bytes runs past the end of the file (" +
                   std::to_string(file.Size()) + " bytes)");
  }
  std::vector<uint8_t> table(bytes);
  INGOT_RETURN_IF_ERROR(io::ReadExact(file, offset, table));
  return table;
}

}  // namespace ingot::formats::mapped
