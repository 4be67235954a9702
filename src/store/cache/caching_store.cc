#include "store/cache/caching_store.h"

namespace ingot::store {

namespace {

// Reads through to the store's object; while the reads run in order from offset 0 it copies them
// into a cache fill, committed when the last byte went by. Any other read pattern (a range request)
// abandons the fill: the cache only ever holds whole objects.
class TeeSource final : public io::ByteSource {
 public:
  TeeSource(std::unique_ptr<io::ByteSource> inner, std::unique_ptr<ImageCache::Fill> fill)
      : inner_(std::move(inner)), fill_(std::move(fill)) {}
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override {
    INGOT_ASSIGN_OR_RETURN(size_t n, inner_->ReadAt(offset, buf));
    if (fill_ != nullptr) {
      if (offset != next_ || !fill_->Append(std::span<const uint8_t>(buf.data(), n)).ok()) {
        fill_.reset();
      } else {
        next_ += n;
        if (next_ == inner_->Size()) {
          (void)fill_->Commit();  // a failed commit leaves no entry: the next read misses again
          fill_.reset();
        }
      }
    }
    return n;
  }
  uint64_t Size() const override { return inner_->Size(); }

 private:
  std::unique_ptr<io::ByteSource> inner_;
  std::unique_ptr<ImageCache::Fill> fill_;
  uint64_t next_ = 0;
};

}  // namespace

Result<std::unique_ptr<io::ByteSource>> CachingStore::Open(const std::string& key) {
  if (!read_through_) return inner_->Open(key);
  if (!servable_(key)) {
    // Deleted or deactivated since it was cached: never from the cache.
    (void)cache_.Remove(key);
    return inner_->Open(key);
  }
  if (auto hit = cache_.Lookup(key)) return hit;
  INGOT_ASSIGN_OR_RETURN(auto source, inner_->Open(key));
  auto fill = cache_.BeginFill(key, source->Size());
  if (fill == nullptr) return source;
  return std::unique_ptr<io::ByteSource>(new TeeSource(std::move(source), std::move(fill)));
}

}  // namespace ingot::store
