// In-memory sources and sinks, for tests and for small buffers already in memory.
#pragma once

#include <string>
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

}  // namespace ingot::io
