// A Store in front of another (any driver) that serves reads from an ImageCache: a hit is a local
// file; a miss reads the store and, when the object is read whole from its start (a download),
// fills the cache on the way. Writes, deletes and listings go to the store; a delete also drops the
// cached copy. Like an nbdkit filter, most operations are one line.
//
// `servable(key)` is asked before every cached read: the composition root answers whether the
// object's image may be served from cache now (it exists and is active), so a deleted or
// deactivated image is never served from cache — its entry is dropped and the store answers.
#pragma once

#include <functional>
#include <memory>

#include "store/cache/image_cache.h"
#include "store/store.h"

namespace ingot::store {

class CachingStore final : public Store {
 public:
  using Servable = std::function<bool(const std::string& key)>;
  // `read_through` false: reads go straight to the store (a local file store, as fast as the
  // cache); deletes and rewrites still drop the cached copy.
  CachingStore(std::unique_ptr<Store> inner, ImageCache& cache, Servable servable,
               bool read_through = true)
      : inner_(std::move(inner)), cache_(cache), servable_(std::move(servable)),
        read_through_(read_through) {}

  const std::string& id() const override { return inner_->id(); }
  // A read-through store hands out byte sources only (no file descriptors), so that every read
  // passes the cache; a local file store cached this way (cache_local_stores) loses sendfile.
  Capabilities capabilities() const override {
    Capabilities c = inner_->capabilities();
    if (read_through_) c.local_file = false;
    return c;
  }
  Result<std::unique_ptr<PendingObject>> Create(const std::string& key) override {
    (void)cache_.Remove(key);
    return inner_->Create(key);
  }
  Result<std::unique_ptr<io::ByteSource>> Open(const std::string& key) override;
  Result<io::UniqueFd> OpenFd(const std::string& key) override { return inner_->OpenFd(key); }
  Result<uint64_t> SizeOf(const std::string& key) override { return inner_->SizeOf(key); }
  Status Delete(const std::string& key) override {
    INGOT_RETURN_IF_ERROR(cache_.Remove(key));
    (void)cache_.Dequeue(key);
    return inner_->Delete(key);
  }
  Result<int> RemoveIncomplete() override { return inner_->RemoveIncomplete(); }
  Result<std::vector<std::string>> ListKeys() override { return inner_->ListKeys(); }
  Result<std::vector<StoredObject>> Enumerate() override { return inner_->Enumerate(); }
  Status RemoveIncompleteWrite(const StoredObject& object) override {
    return inner_->RemoveIncompleteWrite(object);
  }
  std::string UrlOf(const std::string& key) const override { return inner_->UrlOf(key); }
  Result<std::optional<std::string>> KeyOfUrl(std::string_view url) override {
    return inner_->KeyOfUrl(url);
  }

  Store& inner() { return *inner_; }

 private:
  std::unique_ptr<Store> inner_;
  ImageCache& cache_;
  Servable servable_;
  bool read_through_;
};

}  // namespace ingot::store
