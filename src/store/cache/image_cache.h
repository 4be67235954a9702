// A local, size-bounded cache of image objects, for nodes whose image bytes live in an object store
// (Swift, S3, ...): Glance's image cache. Objects are files under one directory, named by their
// key (an image id); the total is kept under `max_size` by evicting the least recently used ones.
// A queue of keys to fetch ahead of any download (Glance's pre-cache queue, PUT /v2/cache/{id})
// is drained by a worker the composition root runs (see NextQueued).
//
// The cache is expendable: it is rebuilt from its directory at start (entries whose fill did not
// finish are removed) and may lose entries at any time; a miss always falls back to the store.
//
// Threads: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "io/byte_source.h"

namespace ingot::store {

class ImageCache {
 public:
  struct Options {
    std::string dir;
    uint64_t max_size = 10ull << 30;
    // How long a queued image waits before the worker takes it: queue requests made together are
    // fetched in one pass, and a client that queues an image sees it queued (Glance's prefetcher
    // runs periodically; tempest's cache test lists the queue right after queueing).
    std::chrono::milliseconds prefetch_delay{1000};
  };
  // What GET /v2/cache shows of an entry (Glance's fields: times are seconds since the epoch).
  struct Entry {
    std::string key;
    uint64_t size = 0;
    uint64_t hits = 0;
    double last_accessed = 0;
    double last_modified = 0;
  };
  struct Counters {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t fills = 0;      // entries written
    uint64_t evictions = 0;  // entries removed to stay under max_size
    uint64_t size = 0;       // bytes held now
    uint64_t entries = 0;
  };

  // Creates the directory if needed; adopts complete entries found there, removes partial ones.
  static Result<std::unique_ptr<ImageCache>> Open(Options options);

  // Keys a cache entry may have: an image id's characters, so a key can never name a path outside
  // the directory.
  static bool CacheableKey(const std::string& key);

  // The cached object (a hit: counted, and the entry becomes the most recently used), or nullptr
  // (a miss, counted).
  std::unique_ptr<io::ByteSource> Lookup(const std::string& key);

  // A fill in progress: bytes appended in order, made an entry by Commit once all `size` bytes are
  // in. Destroyed without Commit: nothing is left.
  class Fill {
   public:
    virtual ~Fill() = default;
    virtual Status Append(std::span<const uint8_t> data) = 0;
    virtual Status Commit() = 0;
  };
  // nullptr when the key is not cacheable, already cached or being filled, or `size` alone is over
  // max_size.
  std::unique_ptr<Fill> BeginFill(const std::string& key, uint64_t size);
  // Reads `source` whole, in order, copying it into the cache (the pre-cache worker); a source that
  // fills the cache itself (CachingStore's read-through) is read the same way.
  Status FillFrom(const std::string& key, io::ByteSource& source);

  bool Contains(const std::string& key);
  // Removes the entry; OK if there was none. A fill of `key` under way is cancelled: its Commit
  // leaves no entry (the object was deleted or rewritten while it was being read).
  Status Remove(const std::string& key);
  // Removes every entry, and cancels every fill, whose key `keep` refuses: the sweep that drops
  // images deleted or deactivated by another node sharing the catalog. `keep` is called without
  // the cache's lock held (it may ask a database); entries added meanwhile wait for the next sweep.
  // Returns how many entries were removed.
  int Sweep(const std::function<bool(const std::string& key)>& keep);
  // Removes every entry; returns how many.
  int Clear();
  std::vector<Entry> List();
  Counters counters();

  // ---- The pre-cache queue ----
  // Queues `key` (once); false when it is cached already.
  bool Queue(const std::string& key);
  bool Dequeue(const std::string& key);
  int ClearQueue();
  std::vector<std::string> Queued();
  // Blocks until a key has been queued for prefetch_delay (and returns it, leaving it listed as
  // queued until Done) or `stop` is set (nullopt). Wake waiters with Shutdown.
  std::optional<std::string> NextQueued(const std::atomic<bool>& stop);
  void Done(const std::string& key);
  void Shutdown();

 private:
  explicit ImageCache(Options options) : options_(std::move(options)) {}
  class FileFill;
  std::string PathOf(const std::string& key) const { return options_.dir + "/" + key; }
  // Evicts least recently used entries until `incoming` more bytes fit. Holds mu_.
  void MakeRoomLocked(uint64_t incoming);
  Status Adopt(const std::string& key, const std::string& part_path, uint64_t size);

  struct Record {
    uint64_t size = 0;
    uint64_t hits = 0;
    int64_t last_accessed_us = 0;
    int64_t last_modified_us = 0;
    uint64_t last_use = 0;  // LRU order: a counter, since clock readings can tie or step back
  };
  const Options options_;
  std::mutex mu_;
  std::map<std::string, Record> entries_;
  std::set<std::string> filling_;
  std::set<std::string> cancelled_;  // fills whose Commit must not make an entry
  uint64_t total_ = 0;
  uint64_t uses_ = 0;
  Counters counters_;
  std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> queue_;
  std::set<std::string> in_progress_;
  std::condition_variable queue_cv_;
  bool shutdown_ = false;
};

}  // namespace ingot::store
