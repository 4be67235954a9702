// libFuzzer target: the decompressing reader the import path puts in front of a downloaded or
// staged image. Any bytes — a gzip, zstd, xz or bzip2 stream or something that only starts like
// one — are read through it in uneven small reads until the end, an error, or 64 MiB of output
// (the ingest cap bounds a bomb in the service; here the bound keeps runs short).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "io/decompress.h"

namespace {

class BytesReader final : public ingot::io::Reader {
 public:
  BytesReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  ingot::Result<size_t> Read(std::span<uint8_t> buf) override {
    // Uneven pieces, so every decoder sees input split at odd places.
    size_t n = std::min({buf.size(), size_ - pos_, size_t{1} + (pos_ % 997)});
    std::memcpy(buf.data(), data_ + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ingot::io::Compression found;
  auto reader = ingot::io::Decompressing(std::make_unique<BytesReader>(data, size), &found);
  if (!reader.ok()) return 0;
  std::vector<uint8_t> buf(4099);
  uint64_t total = 0;
  while (total < (64u << 20)) {
    auto n = (*reader)->Read(buf);
    if (!n.ok() || *n == 0) break;
    if (*n > buf.size()) __builtin_trap();
    total += *n;
  }
  return 0;
}
