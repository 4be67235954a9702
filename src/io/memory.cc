#include <algorithm>
#include <cstring>

#include "io/memory.h"

namespace ingot::io {

Result<size_t> MemorySource::ReadAt(uint64_t offset, std::span<uint8_t> buf) {
  if (offset >= data_.size()) return size_t{0};
  size_t n = std::min<uint64_t>(buf.size(), data_.size() - offset);
  std::memcpy(buf.data(), data_.data() + offset, n);
  return n;
}

Status MemorySink::WriteAt(uint64_t offset, std::span<const uint8_t> data) {
  if (offset + data.size() < offset) return InvalidArgument("write offset overflows");
  if (offset + data.size() > data_.size()) data_.resize(offset + data.size());
  if (!data.empty()) std::memcpy(data_.data() + offset, data.data(), data.size());
  return Status::Ok();
}

Status MemorySink::Resize(uint64_t size) {
  data_.resize(size);
  return Status::Ok();
}

}  // namespace ingot::io
