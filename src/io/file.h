// Files as byte sources and sinks, and the few file-system operations durability needs.
// All errno handling goes through FromErrno().
#pragma once

#include <memory>
#include <string>

#include "io/byte_source.h"

namespace ingot::io {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

Result<UniqueFd> OpenFile(const std::string& path, int flags, int mode = 0644);

// A read-only file; ReadAt is pread and thread-safe.
class FileSource final : public ByteSource {
 public:
  static Result<std::unique_ptr<FileSource>> Open(const std::string& path);
  FileSource(UniqueFd fd, uint64_t size, std::string path)
      : fd_(std::move(fd)), size_(size), path_(std::move(path)) {}
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override;
  uint64_t Size() const override { return size_; }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  uint64_t size_;
  std::string path_;
};

// A writable file; Flush is fdatasync.
class FileSink final : public ByteSink {
 public:
  // Creates or truncates `path`.
  static Result<std::unique_ptr<FileSink>> Create(const std::string& path);
  FileSink(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override;
  Status Resize(uint64_t size) override;
  Status Flush() override;
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::string path_;
};

// Writes all of `data` to fd at its current position (handles short writes and EINTR).
Status WriteAll(int fd, std::span<const uint8_t> data, std::string_view what);
// fsyncs the directory holding `path`, so a rename or unlink in it is durable.
Status SyncParentDir(const std::string& path);
// Creates `dir` and its parents (mode 0750) if missing.
Status MakeDirs(const std::string& dir);

}  // namespace ingot::io
