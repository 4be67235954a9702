// ingotd's wiring of the image cache ([cache]): the cache directory, every configured store wrapped
// in a CachingStore (read-through for stores that are not local files), the pre-cache worker, the
// /v2/cache routes and the cache's /metrics lines.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "api/route.h"
#include "api/v2/cache.h"
#include "config/config.h"
#include "service/image_service.h"
#include "store/cache/image_cache.h"
#include "store/registry.h"

namespace ingot::exe {

class CacheWiring {
 public:
  // Null when [cache] enabled = false.
  static Result<std::unique_ptr<CacheWiring>> Open(const config::Config& config);
  ~CacheWiring() { Stop(); }

  // A registry whose drivers build their stores wrapped in the cache (`drivers` must outlive it).
  store::DriverRegistry Wrap(const store::DriverRegistry& drivers);
  // The catalog the cache asks whether an image may be served from cache; starts the pre-cache
  // worker.
  void Start(service::ImageService& images);
  void Stop();
  std::function<void(api::ApiRouter&)> ApiRoutes();
  std::function<std::string()> Metrics();

 private:
  bool Servable(const std::string& key);
  void Prefetch();
  // Every sweep_interval: drops cached images the catalog no longer allows to serve.
  void SweepLoop();

  std::unique_ptr<store::ImageCache> cache_;
  bool cache_local_stores_ = false;
  std::atomic<service::ImageService*> images_{nullptr};
  std::unique_ptr<api::CacheResource> resource_;
  std::atomic<bool> stop_{false};
  std::thread worker_;
  std::chrono::milliseconds sweep_interval_{0};
  std::mutex sweep_mu_;
  std::condition_variable sweep_cv_;  // wakes the sweeper to stop
  std::thread sweeper_;
};

}  // namespace ingot::exe
