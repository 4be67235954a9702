// The ISO indexes the southbound listener serves files from: each ISO file in the served tree is
// indexed once (formats::iso9660::Tree) and kept while it is unchanged, so a file inside an ISO
// costs a lookup in memory, then sendfile over the ISO's extents.
//
// An index is keyed by the ISO's path beneath the root, its device and inode, its size and its
// modification time (ns): an ISO replaced or rewritten in place is indexed again. A file that is
// not an ISO, or a hostile one, is remembered as such too (its Status), so it is not re-read on
// every request. The cache holds at most `max_isos` indexes, and at most `max_index_entries` tree
// entries over all of them; the least recently used go first.
//
// Thread-safe. Indexing runs outside the lock; two threads asking for the same new ISO at once both
// wait for the one indexing it.
#pragma once

#include <sys/stat.h>

#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "formats/iso9660.h"

namespace ingot::api::boot {

struct IsoIndexOptions {
  size_t max_isos = 64;
  uint64_t max_index_entries = 2'000'000;
  formats::iso9660::Options tree;  // the reader's own bounds, per ISO
};

class IsoIndexCache {
 public:
  explicit IsoIndexCache(IsoIndexOptions options) : options_(std::move(options)) {}

  // The index of the ISO open as `fd` (a regular file, described by `st`), read from `fd` if it is
  // not cached. `path` is its path beneath the root (part of the key, and for logs). Fails with the
  // reader's Status when the file is not an ISO 9660/UDF volume or is refused.
  Result<std::shared_ptr<const formats::iso9660::Tree>> Get(const std::string& path, int fd,
                                                            const struct stat& st);
  // The same answer as Get when it is held now; nullptr when the ISO is not indexed yet (or is
  // being indexed). Never reads the ISO and never waits for an indexing: for the I/O thread.
  Result<std::shared_ptr<const formats::iso9660::Tree>> Find(const std::string& path,
                                                             const struct stat& st);

  // How many indexes (or remembered failures) are held now, and how many indexings have run.
  size_t size() const;
  uint64_t indexings() const;

 private:
  struct Key {
    std::string path;
    uint64_t dev, ino, size;
    int64_t mtime_ns;
    auto operator<=>(const Key&) const = default;
  };
  struct Slot {
    bool ready = false;
    Status status;                                       // when ready and not OK
    std::shared_ptr<const formats::iso9660::Tree> tree;  // when ready and OK
    uint64_t entries = 0;
    std::list<Key>::iterator lru;  // position in lru_ (front: most recent)
  };
  static Key KeyOf(const std::string& path, const struct stat& st);
  void EvictLocked();

  const IsoIndexOptions options_;
  mutable std::mutex mu_;
  std::condition_variable indexed_;
  std::map<Key, Slot> slots_;
  std::list<Key> lru_;
  uint64_t entries_ = 0;
  uint64_t indexings_ = 0;
};

}  // namespace ingot::api::boot
