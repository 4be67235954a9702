// The byte interfaces everything composes over: format readers, stores, hashing, conversion.
// Models: leveldb's Env files and nbdkit's plugin API (pread / get_size), kept this small on purpose.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/result.h"

namespace ingot::io {

// A random-access readable sequence of bytes of known size.
// Thread safety: ReadAt may be called concurrently from several threads unless an implementation says
// otherwise. Size() is constant for the life of the object.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to buf.size() bytes at `offset`. Returns how many were read: fewer than asked only when the
  // end is reached, 0 at or past the end. Never reads past Size().
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) = 0;
  virtual uint64_t Size() const = 0;
};

// Reads exactly buf.size() bytes at `offset`, or fails with kOutOfRange ("short read at …") when the
// source ends first. The call format parsers use for headers and tables.
Status ReadExact(ByteSource& source, uint64_t offset, std::span<uint8_t> buf);

// A random-access writable destination. Not thread-safe unless an implementation says so.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status WriteAt(uint64_t offset, std::span<const uint8_t> data) = 0;
  // Sets the logical size (extends with a hole or truncates).
  virtual Status Resize(uint64_t size) = 0;
  // Makes everything written so far durable (fdatasync for files).
  virtual Status Flush() = 0;
};

// A sequential stream of bytes, e.g. a request body. Read returns 0 at the end.
class Reader {
 public:
  virtual ~Reader() = default;
  virtual Result<size_t> Read(std::span<uint8_t> buf) = 0;
};

// A sequential destination, e.g. an object being written to a store.
class Writer {
 public:
  virtual ~Writer() = default;
  virtual Status Write(std::span<const uint8_t> data) = 0;
};

}  // namespace ingot::io
