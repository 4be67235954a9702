#include "api/boot/iso_index.h"

#include <unistd.h>

#include "common/log.h"
#include "io/file.h"

namespace ingot::api::boot {

IsoIndexCache::Key IsoIndexCache::KeyOf(const std::string& path, const struct stat& st) {
  return Key{path, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
             static_cast<uint64_t>(st.st_size),
             static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

Result<std::shared_ptr<const formats::iso9660::Tree>> IsoIndexCache::Find(const std::string& path,
                                                                          const struct stat& st) {
  Key key = KeyOf(path, st);
  std::lock_guard lock(mu_);
  auto it = slots_.find(key);
  if (it == slots_.end() || !it->second.ready) {
    return std::shared_ptr<const formats::iso9660::Tree>();
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  if (!it->second.status.ok()) return it->second.status;
  return it->second.tree;
}

Result<std::shared_ptr<const formats::iso9660::Tree>> IsoIndexCache::Get(const std::string& path,
                                                                         int fd,
                                                                         const struct stat& st) {
  Key key = KeyOf(path, st);
  std::unique_lock lock(mu_);
  for (;;) {
    auto it = slots_.find(key);
    if (it == slots_.end()) break;
    if (it->second.ready) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      if (!it->second.status.ok()) return it->second.status;
      return it->second.tree;
    }
    indexed_.wait(lock);  // someone else is indexing it; then look again (it may have been evicted)
  }
  lru_.push_front(key);
  Slot& placeholder = slots_[key];
  placeholder.lru = lru_.begin();
  ++indexings_;
  lock.unlock();

  // The reader gets its own descriptor, so the caller's stays the caller's.
  Status status;
  std::shared_ptr<const formats::iso9660::Tree> tree;
  int copy = ::dup(fd);
  if (copy < 0) {
    status = FromErrno(errno, "dup " + path);
  } else {
    io::FileSource source(io::UniqueFd(copy), static_cast<uint64_t>(st.st_size), path);
    auto opened = formats::iso9660::Tree::Open(source, options_.tree);
    if (opened.ok()) {
      tree = std::shared_ptr<const formats::iso9660::Tree>(std::move(*opened));
      log::Info("boot.iso_indexed", {{"path", path},
                                     {"entries", static_cast<uint64_t>(tree->entry_count())},
                                     {"names", formats::iso9660::NameSourceName(tree->names())}});
    } else {
      status = opened.status();
      log::Warn("boot.iso_refused", {{"path", path}, {"error", status.ToString()}});
    }
  }

  lock.lock();
  Slot& slot = slots_[key];  // still there: only ready slots are evicted
  slot.ready = true;
  slot.status = status;
  slot.tree = tree;
  slot.entries = tree ? tree->entry_count() : 1;
  entries_ += slot.entries;
  EvictLocked();
  indexed_.notify_all();
  if (!status.ok()) return status;
  return tree;
}

void IsoIndexCache::EvictLocked() {
  // From the least recently used end; the slot just filled is at the front and is kept even when
  // it alone is over the entry bound (the reader's own max_entries bounds it).
  auto it = lru_.end();
  while ((slots_.size() > options_.max_isos || entries_ > options_.max_index_entries) &&
         it != lru_.begin()) {
    --it;
    if (it == lru_.begin()) break;
    auto slot = slots_.find(*it);
    if (!slot->second.ready) continue;
    entries_ -= slot->second.entries;
    slots_.erase(slot);
    it = lru_.erase(it);
  }
}

size_t IsoIndexCache::size() const {
  std::lock_guard lock(mu_);
  return slots_.size();
}

uint64_t IsoIndexCache::indexings() const {
  std::lock_guard lock(mu_);
  return indexings_;
}

}  // namespace ingot::api::boot
