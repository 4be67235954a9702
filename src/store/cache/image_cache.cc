#include "store/cache/image_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/log.h"
#include "common/time.h"
#include "io/file.h"

namespace ingot::store {

namespace {
constexpr std::string_view kPartSuffix = ".part";
}  // namespace

bool ImageCache::CacheableKey(const std::string& key) {
  if (key.empty() || key.size() > 128 || key.front() == '.') return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
  });
}

Result<std::unique_ptr<ImageCache>> ImageCache::Open(Options options) {
  INGOT_RETURN_IF_ERROR(io::MakeDirs(options.dir));
  std::unique_ptr<ImageCache> cache(new ImageCache(std::move(options)));
  std::error_code ec;
  std::vector<std::pair<int64_t, std::string>> found;
  for (const auto& entry : std::filesystem::directory_iterator(cache->options_.dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.ends_with(kPartSuffix) || !CacheableKey(name) || !entry.is_regular_file()) {
      // A fill that did not finish (the process stopped mid-way): never served.
      if (name.ends_with(kPartSuffix)) std::filesystem::remove(entry.path(), ec);
      continue;
    }
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) != 0) continue;
    Record r;
    r.size = static_cast<uint64_t>(st.st_size);
    r.last_accessed_us = static_cast<int64_t>(st.st_atim.tv_sec) * 1000000;
    r.last_modified_us = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000;
    cache->entries_[name] = r;
    cache->total_ += r.size;
  }
  if (ec) return IoError("image cache " + cache->options_.dir + ": " + ec.message());
  std::lock_guard lock(cache->mu_);
  cache->MakeRoomLocked(0);  // a smaller max_size than last time
  return cache;
}

std::unique_ptr<io::ByteSource> ImageCache::Lookup(const std::string& key) {
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      ++counters_.misses;
      return nullptr;
    }
    ++it->second.hits;
    ++counters_.hits;
    it->second.last_accessed_us = NowMicros();
    it->second.last_use = ++uses_;
  }
  auto source = io::FileSource::Open(PathOf(key));
  if (!source.ok()) {
    // Removed underneath (an operator, a full disk): forget it, serve from the store.
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(key); it != entries_.end()) {
      total_ -= it->second.size;
      entries_.erase(it);
    }
    --counters_.hits;
    ++counters_.misses;
    return nullptr;
  }
  return std::move(*source);
}

// Appends to "<key>.part"; Commit renames it into place.
class ImageCache::FileFill final : public ImageCache::Fill {
 public:
  FileFill(ImageCache* cache, std::string key, uint64_t size, io::UniqueFd fd, std::string path)
      : cache_(cache), key_(std::move(key)), size_(size), fd_(std::move(fd)),
        path_(std::move(path)) {}
  ~FileFill() override {
    if (!committed_) {
      fd_ = io::UniqueFd();
      ::unlink(path_.c_str());
    }
    std::lock_guard lock(cache_->mu_);
    cache_->filling_.erase(key_);
    cache_->cancelled_.erase(key_);
  }
  Status Append(std::span<const uint8_t> data) override {
    if (written_ + data.size() > size_) return InvalidArgument("cache fill past the object's size");
    INGOT_RETURN_IF_ERROR(io::WriteAll(fd_.get(), data, "cache " + path_));
    written_ += data.size();
    return Status::Ok();
  }
  Status Commit() override {
    if (written_ != size_) return InvalidArgument("cache fill incomplete");
    fd_ = io::UniqueFd();
    INGOT_RETURN_IF_ERROR(cache_->Adopt(key_, path_, size_));
    committed_ = true;
    return Status::Ok();
  }

 private:
  ImageCache* cache_;
  std::string key_;
  uint64_t size_;
  io::UniqueFd fd_;
  std::string path_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

std::unique_ptr<ImageCache::Fill> ImageCache::BeginFill(const std::string& key, uint64_t size) {
  if (!CacheableKey(key) || size > options_.max_size) return nullptr;
  {
    std::lock_guard lock(mu_);
    if (entries_.count(key) != 0 || !filling_.insert(key).second) return nullptr;
  }
  std::string path = PathOf(key) + std::string(kPartSuffix);
  auto fd = io::OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (!fd.ok()) {
    log::Warn("cache.fill_failed", {{"key", key}, {"error", fd.status().ToString()}});
    std::lock_guard lock(mu_);
    filling_.erase(key);
    return nullptr;
  }
  return std::make_unique<FileFill>(this, key, size, std::move(*fd), std::move(path));
}

Status ImageCache::Adopt(const std::string& key, const std::string& part_path, uint64_t size) {
  std::lock_guard lock(mu_);
  if (cancelled_.erase(key) != 0) {
    // Removed while it was being filled: the bytes may be of an image deleted meanwhile.
    ::unlink(part_path.c_str());
    return Status::Ok();
  }
  MakeRoomLocked(size);
  if (::rename(part_path.c_str(), PathOf(key).c_str()) != 0) {
    return IoError("cache rename " + part_path);
  }
  int64_t now = NowMicros();
  entries_[key] = Record{.size = size,
                         .hits = 0,
                         .last_accessed_us = now,
                         .last_modified_us = now,
                         .last_use = ++uses_};
  total_ += size;
  ++counters_.fills;
  return Status::Ok();
}

void ImageCache::MakeRoomLocked(uint64_t incoming) {
  while (!entries_.empty() && total_ + incoming > options_.max_size) {
    auto lru = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
      return a.second.last_use < b.second.last_use ||
             (a.second.last_use == b.second.last_use &&
              a.second.last_accessed_us < b.second.last_accessed_us);
    });
    // Open readers keep their file (unlinked, still readable) until they finish.
    ::unlink(PathOf(lru->first).c_str());
    total_ -= lru->second.size;
    log::Info("cache.evicted", {{"key", lru->first}, {"bytes", lru->second.size}});
    entries_.erase(lru);
    ++counters_.evictions;
  }
}

Status ImageCache::FillFrom(const std::string& key, io::ByteSource& source) {
  if (Contains(key)) return Status::Ok();
  // No fill of our own when one is under way: `source` may be a CachingStore's read-through source,
  // which fills the cache itself as it is read whole from the start — so it is read all the same.
  auto fill = BeginFill(key, source.Size());
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t off = 0; off < source.Size();) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), source.Size() - off));
    INGOT_ASSIGN_OR_RETURN(size_t n, source.ReadAt(off, std::span(buf.data(), want)));
    if (n == 0) return IoError("cache fill of " + key + ": the store's object ended early");
    if (fill != nullptr) INGOT_RETURN_IF_ERROR(fill->Append(std::span(buf.data(), n)));
    off += n;
  }
  return fill != nullptr ? fill->Commit() : Status::Ok();
}

bool ImageCache::Contains(const std::string& key) {
  std::lock_guard lock(mu_);
  return entries_.count(key) != 0;
}

Status ImageCache::Remove(const std::string& key) {
  std::lock_guard lock(mu_);
  if (filling_.count(key) != 0) cancelled_.insert(key);
  auto it = entries_.find(key);
  if (it == entries_.end()) return Status::Ok();
  ::unlink(PathOf(key).c_str());
  total_ -= it->second.size;
  entries_.erase(it);
  return Status::Ok();
}

int ImageCache::Sweep(const std::function<bool(const std::string& key)>& keep) {
  std::vector<std::string> keys;
  {
    std::lock_guard lock(mu_);
    keys.reserve(entries_.size() + filling_.size());
    for (const auto& [key, r] : entries_) keys.push_back(key);
    for (const auto& key : filling_) {
      if (entries_.count(key) == 0) keys.push_back(key);
    }
  }
  int removed = 0;
  for (const std::string& key : keys) {
    if (keep(key)) continue;
    std::lock_guard lock(mu_);
    if (filling_.count(key) != 0) cancelled_.insert(key);
    auto it = entries_.find(key);
    if (it == entries_.end()) continue;
    // Open readers keep their file (unlinked, still readable) until they finish.
    ::unlink(PathOf(key).c_str());
    total_ -= it->second.size;
    entries_.erase(it);
    ++removed;
  }
  return removed;
}

int ImageCache::Clear() {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& [key, r] : entries_) {
    ::unlink(PathOf(key).c_str());
    ++n;
  }
  entries_.clear();
  total_ = 0;
  return n;
}

std::vector<ImageCache::Entry> ImageCache::List() {
  std::lock_guard lock(mu_);
  std::vector<Entry> out;
  for (const auto& [key, r] : entries_) {
    out.push_back({.key = key,
                   .size = r.size,
                   .hits = r.hits,
                   .last_accessed = static_cast<double>(r.last_accessed_us) / 1e6,
                   .last_modified = static_cast<double>(r.last_modified_us) / 1e6});
  }
  return out;
}

ImageCache::Counters ImageCache::counters() {
  std::lock_guard lock(mu_);
  Counters c = counters_;
  c.size = total_;
  c.entries = entries_.size();
  return c;
}

bool ImageCache::Queue(const std::string& key) {
  std::lock_guard lock(mu_);
  if (entries_.count(key) != 0) return false;
  bool queued = std::any_of(queue_.begin(), queue_.end(), [&](const auto& q) { return q.first == key; });
  if (!queued && !in_progress_.count(key)) {
    queue_.emplace_back(key, std::chrono::steady_clock::now() + options_.prefetch_delay);
    queue_cv_.notify_one();
  }
  return true;
}

bool ImageCache::Dequeue(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const auto& q) { return q.first == key; });
  if (it == queue_.end()) return false;
  queue_.erase(it);
  return true;
}

int ImageCache::ClearQueue() {
  std::lock_guard lock(mu_);
  int n = static_cast<int>(queue_.size());
  queue_.clear();
  return n;
}

std::vector<std::string> ImageCache::Queued() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& q : queue_) out.push_back(q.first);
  out.insert(out.end(), in_progress_.begin(), in_progress_.end());
  return out;
}

std::optional<std::string> ImageCache::NextQueued(const std::atomic<bool>& stop) {
  std::unique_lock lock(mu_);
  while (true) {
    if (shutdown_ || stop.load()) return std::nullopt;
    if (queue_.empty()) {
      queue_cv_.wait(lock);
      continue;
    }
    auto due = queue_.front().second;
    if (std::chrono::steady_clock::now() >= due) break;
    queue_cv_.wait_until(lock, due);
  }
  std::string key = std::move(queue_.front().first);
  queue_.pop_front();
  in_progress_.insert(key);
  return key;
}

void ImageCache::Done(const std::string& key) {
  std::lock_guard lock(mu_);
  in_progress_.erase(key);
}

void ImageCache::Shutdown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  queue_cv_.notify_all();
}

}  // namespace ingot::store
