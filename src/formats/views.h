// Byte sources that are views of other byte sources. Private to formats/.
//
//  - SliceSource: bytes [offset, offset + length) of another source, as a source of its own (a
//    partition of a raw disk, probed for a hidden header).
//  - PartialSource: a source that holds only some regions of a stream (its head and tail) and knows
//  the
//    stream's full length; reads elsewhere fail with kUnavailable. The streaming inspector runs the
//    drivers over it; a driver that needs bytes it does not hold fails cleanly, and the qcow2
//    reader leaves the checks that need such bytes to open time.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "io/byte_source.h"

namespace ingot::formats {

class SliceSource final : public io::ByteSource {
 public:
  // `base` must outlive the slice; [offset, offset + length) must lie inside base.
  SliceSource(io::ByteSource& base, uint64_t offset, uint64_t length)
      : base_(base), offset_(offset), length_(length) {}
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override {
    if (offset >= length_) return size_t{0};
    const uint64_t n = std::min<uint64_t>(buf.size(), length_ - offset);
    return base_.ReadAt(offset_ + offset, buf.first(n));
  }
  uint64_t Size() const override { return length_; }

 private:
  io::ByteSource& base_;
  uint64_t offset_;
  uint64_t length_;
};

class PartialSource final : public io::ByteSource {
 public:
  struct Region {
    uint64_t offset = 0;
    std::vector<uint8_t> bytes;
  };
  PartialSource(uint64_t size, std::vector<Region> regions)
      : size_(size), regions_(std::move(regions)) {}

  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override {
    if (offset >= size_) return size_t{0};
    const uint64_t want = std::min<uint64_t>(buf.size(), size_ - offset);
    for (const Region& r : regions_) {
      if (offset >= r.offset && offset - r.offset < r.bytes.size()) {
        const uint64_t n = std::min<uint64_t>(want, r.bytes.size() - (offset - r.offset));
        std::memcpy(buf.data(), r.bytes.data() + (offset - r.offset), n);
        if (n == want) return size_t(n);
        // The rest must come from a following region; ask again.
        INGOT_ASSIGN_OR_RETURN(size_t more, ReadAt(offset + n, buf.subspan(n, want - n)));
        return size_t(n + more);
      }
    }
    return Unavailable("streaming inspection holds no bytes at offset " + std::to_string(offset) +
                       " (only the head and tail of the upload are kept)");
  }
  uint64_t Size() const override { return size_; }

 private:
  uint64_t size_;
  std::vector<Region> regions_;
};

}  // namespace ingot::formats
