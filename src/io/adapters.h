// Adapters between the byte interfaces: a ByteSource (or a range of it) read as a sequential
// Reader, and a file descriptor read as a Reader. One of each, shared by the API, the CLI and the
// benchmarks.
#pragma once

#include <memory>

#include "io/byte_source.h"

namespace ingot::io {

// Reads [offset, offset + length) of a source in order. A source that ends before the range does is
// kCorruption ("data ended early"): whoever promised the length promised those bytes.
class SourceReader final : public Reader {
 public:
  SourceReader(std::unique_ptr<ByteSource> source, uint64_t offset, uint64_t length);
  // The whole source.
  explicit SourceReader(std::unique_ptr<ByteSource> source);
  Result<size_t> Read(std::span<uint8_t> buf) override;

 private:
  std::unique_ptr<ByteSource> source_;
  uint64_t offset_;
  uint64_t end_;
};

// Reads a descriptor it does not own (a pipe, standard input or a file) until end of file; EINTR is
// retried. `what` names it in errors ("reading the image data").
class FdReader final : public Reader {
 public:
  FdReader(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  Result<size_t> Read(std::span<uint8_t> buf) override;

 private:
  int fd_;
  std::string what_;
};

}  // namespace ingot::io
