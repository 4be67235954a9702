#include "tftp/file_source.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

namespace ingot::tftp {
namespace {

// A kernel fact, learnt once: openat2(2) is missing (Linux < 5.6 or a seccomp filter).
std::atomic<bool> no_openat2{false};

// Component by component, no symlink followed. Returns an fd or -1 with errno set.
int OpenNoSymlinks(int root, const std::string& path) {
  int dir = root;
  io::UniqueFd held;  // the directory being walked, once below the root
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string component =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    // NormalizePath leaves none of these; refuse them here too rather than trust the caller.
    if (component.empty() || component == "." || component == "..") {
      errno = EXDEV;
      return -1;
    }
    if (slash == std::string::npos) {
      int fd =
          openat(dir, component.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW);
      const int err = errno;
      held = io::UniqueFd();
      errno = err;
      return fd;
    }
    int next = openat(dir, component.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (next < 0) return -1;
    held = io::UniqueFd(next);
    dir = next;
    start = slash + 1;
  }
}

int OpenResolved(int root, const std::string& path, Resolution resolution) {
#ifdef SYS_openat2
  if (resolution == Resolution::kBeneath && !no_openat2.load()) {
    struct open_how how = {};
    how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    int fd;
    do {
      fd = static_cast<int>(syscall(SYS_openat2, root, path.c_str(), &how, sizeof how));
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
    if (fd >= 0 || errno != ENOSYS) return fd;
    no_openat2.store(true);
  }
#endif
  return OpenNoSymlinks(root, path);
}

}  // namespace

Result<std::unique_ptr<DirectorySource>> DirectorySource::Create(const std::string& root,
                                                                 Resolution resolution) {
  int fd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FromErrno(errno, "open TFTP root " + root);
  return std::make_unique<DirectorySource>(io::UniqueFd(fd), resolution);
}

Result<std::unique_ptr<io::ByteSource>> DirectorySource::Open(std::string_view path) {
  const std::string p(path);
  // The server hands normalised paths (tftp/path.h); a caller that does not is refused, not
  // trusted.
  if (p.empty() || p.front() == '/') return Refused("not a root-relative path");
  for (size_t start = 0; start <= p.size();) {
    const size_t slash = std::min(p.find('/', start), p.size());
    const std::string_view c = std::string_view(p).substr(start, slash - start);
    if (c.empty() || c == "." || c == ".." || c.find('\0') != std::string_view::npos) {
      return Refused("not a normalised path");
    }
    start = slash + 1;
  }
  int fd = OpenResolved(root_.get(), p, resolution_);
  if (fd < 0) {
    const int err = errno;
    switch (err) {
      case ENOENT:
      case ENOTDIR:  // a file used as a directory
        return NotFound("no such file");
      case EXDEV:  // resolution would leave the root
      case ELOOP:  // a symlink where none may be, or a loop
      case EACCES:
      case EPERM:
        return Refused("path refused: " + FromErrno(err, "open").message());
      default:
        return FromErrno(err, "open " + p);
    }
  }
  io::UniqueFd owned(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) return FromErrno(errno, "fstat " + p);
  if (!S_ISREG(st.st_mode)) return Refused("not a regular file");
  // Regular files ignore O_NONBLOCK; it only kept a FIFO from blocking the open.
  return std::unique_ptr<io::ByteSource>(
      std::make_unique<io::FileSource>(std::move(owned), static_cast<uint64_t>(st.st_size), p));
}

}  // namespace ingot::tftp
