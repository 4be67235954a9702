// Regular files of the southbound tree kept open between requests: boot clients ask for the same few
// files (iPXE, kernels, initrds, the ISOs they sit in) again and again, and opening one costs an
// openat2, an fstat and a close — a visible part of a small request.
//
// What is served is the file at the path now, never a remembered one:
//   - a hit costs one statx of the path, and counts only when it names the very same file,
//     unchanged: device, inode, type, size, modification and change times (a rewrite in place
//     moves ctime; a replacement or a rename is another inode). Anything else is a miss.
//   - a file checked that way less than `recheck_after` ago (1 ms) is used without another statx:
//     under load, requests for one file share one check. So a change is seen by every request that
//     starts 1 ms after it; the file system's own clock, which the validators (ETag, Last-Modified)
//     are made of, is coarser than that (a tick is 1 to 10 ms).
//   - a miss opens the path again with the walk's confinement (southbound.cc OpenBeneath) and keeps
//     that descriptor. A statx that leaves the tree (a symlink since pointed elsewhere) names
//     another inode than the one opened under confinement, so it can never produce a hit.
//   - as for the ETag (made of the same fields), a rewrite in place that keeps the size within one
//     tick of the file system's clock is not told apart.
//
// Bounds: at most `capacity` descriptors, and never more than an eighth of the process's open-file
// limit (RLIMIT_NOFILE), so that connections are never refused for want of descriptors. A sweeper
// thread closes the ones not asked for in `idle`, and those of files since deleted, so a removed
// file's space is not held for long.
//
// Thread-safe: every I/O thread uses it at once.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "io/file.h"

namespace ingot::api::boot {

struct OpenFilesOptions {
  size_t capacity = 1024;                 // 0: keep nothing
  std::chrono::milliseconds idle{10'000};  // unused this long: closed
  std::chrono::milliseconds sweep{2'000};  // how often the sweeper looks
  std::chrono::microseconds recheck_after{1'000};  // 0: a statx for every request
};

class OpenFiles {
 public:
  explicit OpenFiles(OpenFilesOptions options = {});
  ~OpenFiles();
  OpenFiles(const OpenFiles&) = delete;
  OpenFiles& operator=(const OpenFiles&) = delete;

  // The descriptor kept for `rel` beneath `root` (an O_PATH directory descriptor) when the path
  // still names that file, unchanged; its stat in `*st`. nullptr on a miss.
  std::shared_ptr<const io::UniqueFd> Find(int root, const std::string& rel, struct stat* st);
  // Keeps `fd`, the regular file `rel` beneath `root` opened under confinement and described by
  // `st` (an fstat of `fd`).
  void Keep(int root, const std::string& rel, std::shared_ptr<const io::UniqueFd> fd,
            const struct stat& st);

  size_t size() const;
  uint64_t hits() const;

 private:
  struct Entry {
    std::shared_ptr<const io::UniqueFd> fd;
    struct stat st;
    std::chrono::steady_clock::time_point used;     // last asked for
    std::chrono::steady_clock::time_point checked;  // last found unchanged (or opened)
  };
  void Sweep();
  static std::string KeyOf(int root, const std::string& rel);

  const OpenFilesOptions options_;
  const size_t capacity_;  // options_.capacity within the open-file limit
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::atomic<uint64_t> hits_{0};
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread sweeper_;
};

}  // namespace ingot::api::boot
