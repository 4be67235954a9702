// libFuzzer target for format detection and the format-agnostic entry points: Detect (the "two
// formats at once" and partition-start rules over every driver's probe), Inspect, Open, and the
// streaming inspector fed the same bytes in uneven chunks. Streaming and whole-file inspection must
// never disagree on a format they both decide.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "formats/format.h"
#include "formats/streaming.h"
#include "io/memory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ingot;
  io::MemorySource src(std::vector<uint8_t>(data, data + size));
  (void)formats::Detect(src);
  auto whole = formats::Inspect(src);
  auto image = formats::Open(src);
  if (image.ok()) {
    formats::DiskImage& disk = **image;
    std::vector<uint8_t> buf(64 * 1024);
    const uint64_t vsize = disk.Size();
    for (uint64_t off : {uint64_t{0}, vsize / 2, vsize ? vsize - 1 : 0}) {
      if (off >= vsize) continue;
      (void)disk.ReadAt(off, buf);
      (void)disk.BlockStatus(off, vsize - off);
    }
  }
  formats::StreamingInspector::Options o;
  o.head_bytes = 64 * 1024;
  o.tail_bytes = 4096;
  formats::StreamingInspector in(o);
  size_t pos = 0, step = 1;
  while (pos < size) {
    const size_t n = std::min(size - pos, step);
    (void)in.Write(std::span<const uint8_t>(data + pos, n));
    pos += n;
    step = step * 3 + 1;
  }
  auto streamed = in.Finish();
  if (whole.ok() && streamed.ok() && whole->format != streamed->format) std::abort();
  return 0;
}
