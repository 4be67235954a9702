// Glance's image cache API (Image API 2.14+), admin-only by default (cache_* rules):
//   GET    /v2/cache             the cached and the queued images
//   DELETE /v2/cache             clear the cache, the queue, or both (x-image-cache-clear-target)
//   PUT    /v2/cache/{image_id}  queue an active image for caching (202)
//   DELETE /v2/cache/{image_id}  drop it from the cache and the queue
#pragma once

#include "api/route.h"
#include "service/image_service.h"
#include "store/cache/image_cache.h"

namespace ingot::api {

class CacheResource {
 public:
  CacheResource(store::ImageCache& cache, service::ImageService& images)
      : cache_(cache), images_(images) {}
  void Register(ApiRouter& router);
  // The cache's counters as Prometheus text (for /metrics).
  std::string MetricsText();

 private:
  Result<http::Response> List(Call& call);
  Result<http::Response> Clear(Call& call);
  Result<http::Response> Queue(Call& call);
  Result<http::Response> Remove(Call& call);

  store::ImageCache& cache_;
  service::ImageService& images_;
};

}  // namespace ingot::api
