#include "api/boot/open_files.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <vector>

namespace ingot::api::boot {
namespace {

bool SameTime(const struct statx_timestamp& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == static_cast<uint32_t>(b.tv_nsec);
}

// Whether the statx of a path describes the file `st` was taken of, unchanged.
bool Unchanged(const struct statx& sx, const struct stat& st) {
  return makedev(sx.stx_dev_major, sx.stx_dev_minor) == st.st_dev && sx.stx_ino == st.st_ino &&
         sx.stx_mode == st.st_mode && sx.stx_size == static_cast<uint64_t>(st.st_size) &&
         SameTime(sx.stx_mtime, st.st_mtim) && SameTime(sx.stx_ctime, st.st_ctim);
}

size_t WithinFileLimit(size_t capacity) {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return capacity;
  return std::min<size_t>(capacity, static_cast<size_t>(rl.rlim_cur / 8));
}

}  // namespace

OpenFiles::OpenFiles(OpenFilesOptions options)
    : options_(options), capacity_(WithinFileLimit(options.capacity)) {
  if (capacity_ > 0) sweeper_ = std::thread([this] { Sweep(); });
}

OpenFiles::~OpenFiles() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

std::string OpenFiles::KeyOf(int root, const std::string& rel) {
  std::string key = std::to_string(root);
  key += ':';
  key += rel;
  return key;
}

std::shared_ptr<const io::UniqueFd> OpenFiles::Find(int root, const std::string& rel,
                                                    struct stat* st) {
  if (capacity_ == 0) return nullptr;
  const std::string key = KeyOf(root, rel);
  std::shared_ptr<const io::UniqueFd> fd;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return nullptr;
    fd = it->second.fd;
    *st = it->second.st;
    it->second.used = now;
    if (now - it->second.checked < options_.recheck_after) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return fd;
    }
  }
  struct statx sx;
  const bool same =
      ::statx(root, rel.c_str(), AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, &sx) == 0 &&
      (sx.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS && Unchanged(sx, *st);
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (same) {
    hits_.fetch_add(1, std::memory_order_relaxed);
    if (it != entries_.end() && it->second.fd == fd) it->second.checked = now;
    return fd;
  }
  if (it != entries_.end() && it->second.fd == fd) entries_.erase(it);
  return nullptr;  // `fd` closes here unless a request still sends from it
}

void OpenFiles::Keep(int root, const std::string& rel, std::shared_ptr<const io::UniqueFd> fd,
                     const struct stat& st) {
  if (capacity_ == 0 || !S_ISREG(st.st_mode)) return;
  std::string key = KeyOf(root, rel);
  std::lock_guard lock(mu_);
  if (entries_.size() >= capacity_ && entries_.find(key) == entries_.end()) {
    // Full: the least recently used goes (a linear pass; only on a miss with a full cache).
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.used < oldest->second.used) oldest = it;
    }
    entries_.erase(oldest);
  }
  const auto now = std::chrono::steady_clock::now();
  entries_[std::move(key)] = Entry{std::move(fd), st, now, now};
}

void OpenFiles::Sweep() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, options_.sweep, [&] { return stopping_; });
    if (stopping_) break;
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<const io::UniqueFd>> closing;  // closed outside the lock
    for (auto it = entries_.begin(); it != entries_.end();) {
      struct stat now_st;
      bool unlinked = ::fstat(it->second.fd->get(), &now_st) != 0 || now_st.st_nlink == 0;
      if (unlinked || now - it->second.used >= options_.idle) {
        closing.push_back(std::move(it->second.fd));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    lock.unlock();
    closing.clear();
    lock.lock();
  }
}

size_t OpenFiles::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

uint64_t OpenFiles::hits() const { return hits_.load(std::memory_order_relaxed); }

}  // namespace ingot::api::boot
