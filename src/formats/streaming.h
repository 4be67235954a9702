// Streaming inspection: inspect an image while it is being uploaded, without a second pass.
//
// The inspector is fed the upload's bytes in order (it is an io::Writer, so it can sit beside the
// store writer and the hasher in one pass) and keeps only the regions format detection and the
// header checks need: the head of the stream, a rolling tail (VHD and streamOptimized-VMDK
// footers), and, once the head shows an MBR or GPT, the first bytes of every partition (the "raw
// image hiding a qcow2 at a partition start" rule). Memory is bounded by Options, never by the
// upload's size.
//
// Finish() runs the same Detect/Inspect as for a stored file, over those regions. Checks that need
// bytes outside them (e.g. every qcow2 L2 entry) are left to Open(), which runs them before any
// byte of the image is read; a driver that cannot decide from the kept regions makes Finish() fail
// with kUnavailable, meaning "inspect the stored image instead". kRefused is a final verdict.
//
// Thread safety: none; one inspector per upload, fed from one thread at a time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "formats/format.h"
#include "io/byte_source.h"

namespace ingot::formats {

class StreamingInspector final : public io::Writer {
 public:
  struct Options {
    uint64_t head_bytes =
        4ull << 20;  // qcow2/VMDK/VDI headers, VHDX headers and region tables, ISO
    uint64_t tail_bytes = 1ull << 20;     // footers
    uint64_t partition_bytes = 64 << 10;  // kept at each partition start found in the head
  };
  StreamingInspector() : StreamingInspector(Options{}) {}
  explicit StreamingInspector(Options options);

  // Takes the next bytes of the stream. Never fails.
  Status Write(std::span<const uint8_t> data) override;
  uint64_t bytes_seen() const { return seen_; }

  // Detects and inspects what was fed. Call once, after the last Write.
  Result<ImageInfo> Finish();

 private:
  struct Window {
    uint64_t offset;
    std::vector<uint8_t> bytes;  // filled as the stream passes
    uint64_t want;
  };
  void OnHeadComplete();

  Options opts_;
  uint64_t seen_ = 0;
  std::vector<uint8_t> head_;
  std::vector<uint8_t> tail_;  // ring buffer
  uint64_t tail_pos_ = 0;      // next write index in tail_
  bool head_done_ = false;
  std::vector<Window> windows_;
};

}  // namespace ingot::formats
