#include "io/adapters.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace ingot::io {

SourceReader::SourceReader(std::unique_ptr<ByteSource> source, uint64_t offset, uint64_t length)
    : source_(std::move(source)), offset_(offset), end_(offset + length) {}

SourceReader::SourceReader(std::unique_ptr<ByteSource> source)
    : source_(std::move(source)), offset_(0), end_(source_->Size()) {}

Result<size_t> SourceReader::Read(std::span<uint8_t> buf) {
  if (offset_ >= end_ || buf.empty()) return size_t{0};
  size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end_ - offset_));
  INGOT_ASSIGN_OR_RETURN(size_t n, source_->ReadAt(offset_, buf.first(want)));
  if (n == 0) return Corruption("data ended early at offset " + std::to_string(offset_));
  offset_ += n;
  return n;
}

Result<size_t> FdReader::Read(std::span<uint8_t> buf) {
  for (;;) {
    ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return FromErrno(errno, what_);
  }
}

}  // namespace ingot::io
