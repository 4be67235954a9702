// What a TFTP server serves: a FileSource maps a root-relative path to the bytes of one file. The
// boot service implements it over its own tree (files inside ISOs, per-node scripts);
// DirectorySource is the ready implementation over a directory.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "io/byte_source.h"
#include "io/file.h"

namespace ingot::tftp {

// Thread safety: Open may be called from the server's event-loop thread while other threads use the
// source; implementations must allow that. The returned ByteSource is used by that one thread only
// and released when the transfer ends.
class FileSource {
 public:
  virtual ~FileSource() = default;
  // `path` is already normalised (tftp/path.h: no "..", no leading '/', '/'-separated). Returns the
  // file's bytes (Size() is sent as tsize). Failures the server maps to TFTP errors:
  //   kNotFound -> 1 "File not found"; kRefused / kPermissionDenied -> 2 "Access violation";
  //   anything else -> 0 (the message is logged, never sent).
  virtual Result<std::unique_ptr<io::ByteSource>> Open(std::string_view path) = 0;
};

// How DirectorySource resolves a path beneath its root.
enum class Resolution {
  // openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): the kernel follows symlinks that stay inside
  // the root and refuses any that leads out of it (absolute, or through ".."). Falls back to
  // kNoSymlinks on kernels without openat2 (< 5.6) or where a seccomp filter hides it.
  kBeneath,
  // Every component opened with O_NOFOLLOW: no symlink is followed at all.
  kNoSymlinks,
};

// Serves the regular files under a directory; directories, devices, FIFOs and sockets are refused.
// Thread-safe.
class DirectorySource final : public FileSource {
 public:
  // Opens `root` (which must be a directory) once; later renames of the root do not matter.
  static Result<std::unique_ptr<DirectorySource>> Create(
      const std::string& root, Resolution resolution = Resolution::kBeneath);
  DirectorySource(io::UniqueFd root, Resolution resolution)
      : root_(std::move(root)), resolution_(resolution) {}
  Result<std::unique_ptr<io::ByteSource>> Open(std::string_view path) override;

 private:
  io::UniqueFd root_;
  Resolution resolution_;
};

}  // namespace ingot::tftp
