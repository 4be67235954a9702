// In-memory sources and sinks, for tests and for small buffers already in memory.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "io/byte_source.h"

namespace ingot::io {

// Reads from a buffer it owns.
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::vector<uint8_t> data) : data_(std::move(data)) {}
  explicit MemorySource(std::string_view data) : data_(data.begin(), data.end()) {}
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override;
  uint64_t Size() const override { return data_.size(); }

 private:
  std::vector<uint8_t> data_;
};

// Writes into a growable buffer it owns; data() shows the result.
class MemorySink final : public ByteSink {
 public:
  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override;
  Status Resize(uint64_t size) override;
  Status Flush() override { return Status::Ok(); }
  const std::vector<uint8_t>& data() const { return data_; }

 private:
  std::vector<uint8_t> data_;
};

// Reads a buffer it does not own, front to back.
class StringReader final : public Reader {
 public:
  explicit StringReader(std::string_view data) : data_(data) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    size_t n = std::min(buf.size(), data_.size());
    if (n > 0) std::memcpy(buf.data(), data_.data(), n);
    data_.remove_prefix(n);
    return n;
  }

 private:
  std::string_view data_;
};

}  // namespace ingot::io
