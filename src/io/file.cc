#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/file.h"

namespace ingot::io {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<UniqueFd> OpenFile(const std::string& path, int flags, int mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return FromErrno(errno, "open " + path);
  return UniqueFd(fd);
}

Result<std::unique_ptr<FileSource>> FileSource::Open(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return FromErrno(errno, "stat " + path);
  return std::make_unique<FileSource>(std::move(fd), static_cast<uint64_t>(st.st_size), path);
}

Result<size_t> FileSource::ReadAt(uint64_t offset, std::span<uint8_t> buf) {
  if (offset >= size_) return size_t{0};
  size_t want = std::min<uint64_t>(buf.size(), size_ - offset);
  size_t done = 0;
  while (done < want) {
    ssize_t n = ::pread(fd_.get(), buf.data() + done, want - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "read " + path_);
    }
    if (n == 0) break;  // the file shrank under us
    done += static_cast<size_t>(n);
  }
  return done;
}

Result<std::unique_ptr<FileSink>> FileSink::Create(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC, 0640));
  return std::make_unique<FileSink>(std::move(fd), path);
}

Status FileSink::WriteAt(uint64_t offset, std::span<const uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd_.get(), data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "write " + path_);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FileSink::Resize(uint64_t size) {
  if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
    return FromErrno(errno, "truncate " + path_);
  }
  return Status::Ok();
}

Status FileSink::Flush() {
  if (::fdatasync(fd_.get()) != 0) return FromErrno(errno, "fdatasync " + path_);
  return Status::Ok();
}

Status WriteAll(int fd, std::span<const uint8_t> data, std::string_view what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, what);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status SyncParentDir(const std::string& path) {
  auto slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  INGOT_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(dir, O_RDONLY | O_DIRECTORY));
  if (::fsync(fd.get()) != 0) return FromErrno(errno, "fsync " + dir);
  return Status::Ok();
}

Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return Status::Ok();
  for (size_t pos = 1;; ++pos) {
    pos = dir.find('/', pos);
    std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0750) != 0 && errno != EEXIST) return FromErrno(errno, "mkdir " + part);
    if (pos == std::string::npos) break;
  }
  return Status::Ok();
}

}  // namespace ingot::io
