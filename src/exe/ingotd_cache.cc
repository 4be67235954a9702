#include "exe/ingotd_cache.h"

#include "common/log.h"
#include "io/file.h"
#include "store/cache/caching_store.h"

namespace ingot::exe {

Result<std::unique_ptr<CacheWiring>> CacheWiring::Open(const config::Config& config) {
  const config::CacheSection& section = config.image_extras.cache;
  if (!section.enabled) return std::unique_ptr<CacheWiring>();
  auto w = std::make_unique<CacheWiring>();
  std::string dir = section.dir.empty() ? config.data_dir + "/cache" : section.dir;
  INGOT_ASSIGN_OR_RETURN(w->cache_,
                         store::ImageCache::Open(
                             {.dir = dir,
                              .max_size = section.max_size,
                              .prefetch_delay = std::chrono::milliseconds(section.prefetch_delay_ms)}));
  w->cache_local_stores_ = section.cache_local_stores;
  w->sweep_interval_ = std::chrono::milliseconds(section.sweep_interval_ms);
  auto c = w->cache_->counters();
  log::Info("cache.open", {{"dir", dir}, {"max_size", section.max_size}, {"images", c.entries},
                           {"bytes", c.size}});
  return w;
}

store::DriverRegistry CacheWiring::Wrap(const store::DriverRegistry& drivers) {
  store::DriverRegistry wrapped;
  for (const std::string& name : drivers.drivers()) {
    (void)wrapped.Register(name, [this, &drivers](const store::StoreConfig& config)
                                     -> Result<std::unique_ptr<store::Store>> {
      INGOT_ASSIGN_OR_RETURN(auto inner, drivers.Build(config));
      // A local file store is as fast as the cache: its reads go straight to it.
      bool read_through = cache_local_stores_ || !inner->capabilities().local_file;
      return std::unique_ptr<store::Store>(new store::CachingStore(
          std::move(inner), *cache_, [this](const std::string& key) { return Servable(key); },
          read_through));
    });
  }
  return wrapped;
}

bool CacheWiring::Servable(const std::string& key) {
  service::ImageService* images = images_.load();
  if (images == nullptr) return false;
  auto image = images->Get(key, catalog::Viewer{.project = std::nullopt, .is_admin = true});
  return image.ok() && image->status() == catalog::ImageStatus::kActive;
}

void CacheWiring::Start(service::ImageService& images) {
  images_.store(&images);
  resource_ = std::make_unique<api::CacheResource>(*cache_, images);
  worker_ = std::thread([this] { Prefetch(); });
  if (sweep_interval_.count() > 0) sweeper_ = std::thread([this] { SweepLoop(); });
}

// Each node's cache is its own, the catalog is shared: an image deleted or deactivated through
// another node is never served from here (every cached read asks Servable first), and this sweep
// gives its space back. Only a definite answer drops an entry — the image is gone or not active; a
// catalog that cannot be reached right now (503) keeps everything until the next sweep.
void CacheWiring::SweepLoop() {
  std::unique_lock lock(sweep_mu_);
  while (!stop_.load()) {
    sweep_cv_.wait_for(lock, sweep_interval_, [this] { return stop_.load(); });
    if (stop_.load()) break;
    lock.unlock();
    service::ImageService* images = images_.load();
    int removed = cache_->Sweep([&](const std::string& key) {
      auto image = images->Get(key, catalog::Viewer{.project = std::nullopt, .is_admin = true});
      if (image.ok()) return image->status() == catalog::ImageStatus::kActive;
      return image.status().code() != Code::kNotFound;
    });
    if (removed > 0) log::Info("cache.swept", {{"removed", removed}});
    lock.lock();
  }
}

// The pre-cache queue: each queued image read whole from its store into the cache, one at a time
// (Glance's cache prefetcher, without its periodic delay).
void CacheWiring::Prefetch() {
  while (auto key = cache_->NextQueued(stop_)) {
    service::ImageService* images = images_.load();
    auto image = images->Get(*key, catalog::Viewer{.project = std::nullopt, .is_admin = true});
    Status s = Status::Ok();
    if (image.ok() && image->status() == catalog::ImageStatus::kActive) {
      auto data = images->OpenData(*image, {});
      if (!data.ok()) {
        s = data.status();
      } else if (data->source) {
        s = cache_->FillFrom(*key, *data->source);
      } else {
        io::FileSource file(std::move(data->fd), data->size, "");
        s = cache_->FillFrom(*key, file);
      }
    }
    if (!s.ok()) log::Warn("cache.prefetch_failed", {{"image", *key}, {"error", s.ToString()}});
    cache_->Done(*key);
  }
}

void CacheWiring::Stop() {
  {
    std::lock_guard lock(sweep_mu_);
    stop_.store(true);
  }
  sweep_cv_.notify_all();
  if (cache_) cache_->Shutdown();
  if (worker_.joinable()) worker_.join();
  if (sweeper_.joinable()) sweeper_.join();
}

std::function<void(api::ApiRouter&)> CacheWiring::ApiRoutes() {
  return [r = resource_.get()](api::ApiRouter& router) { r->Register(router); };
}

std::function<std::string()> CacheWiring::Metrics() {
  return [r = resource_.get()] { return r->MetricsText(); };
}

}  // namespace ingot::exe
