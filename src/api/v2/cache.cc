#include "api/v2/cache.h"

#include <boost/json.hpp>

#include "api/v2/documents.h"

namespace ingot::api {

namespace json = boost::json;
using http::Response;

void CacheResource::Register(ApiRouter& r) {
  auto bind = [this](auto fn) { return [this, fn](Call& call) { return (this->*fn)(call); }; };
  r.Add("GET", "/v2/cache", {.rule = "cache_list", .handler = bind(&CacheResource::List)});
  r.Add("DELETE", "/v2/cache", {.rule = "cache_delete", .handler = bind(&CacheResource::Clear)});
  // The image is looked up for the caller first (404 when it cannot see it), as Glance does.
  r.Add("PUT", "/v2/cache/{image_id}",
        {.rule = "cache_image", .handler = bind(&CacheResource::Queue), .image_param = 0});
  r.Add("DELETE", "/v2/cache/{image_id}",
        {.rule = "cache_delete", .handler = bind(&CacheResource::Remove)});
}

Result<Response> CacheResource::List(Call&) {
  json::array cached;
  for (const auto& e : cache_.List()) {
    cached.emplace_back(json::object{{"image_id", e.key},
                                     {"hits", e.hits},
                                     {"last_accessed", e.last_accessed},
                                     {"last_modified", e.last_modified},
                                     {"size", e.size}});
  }
  json::array queued;
  for (const auto& id : cache_.Queued()) queued.emplace_back(id);
  return JsonResponse(200, json::object{{"cached_images", std::move(cached)},
                                        {"queued_images", std::move(queued)}});
}

Result<Response> CacheResource::Clear(Call& call) {
  std::string target(call.request.headers.Get("x-image-cache-clear-target").value_or(""));
  for (char& c : target) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (target != "" && target != "cache" && target != "queue") {
    return InvalidArgument(
        "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.");
  }
  if (target != "queue") cache_.Clear();
  if (target != "cache") cache_.ClearQueue();
  return NoContent();
}

Result<Response> CacheResource::Queue(Call& call) {
  if (call.image->status() != catalog::ImageStatus::kActive) {
    return InvalidArgument("Only images with status active can be targeted for queueing");
  }
  cache_.Queue(call.image->id);
  Response r;
  r.status = 202;
  return r;
}

Result<Response> CacheResource::Remove(Call& call) {
  const std::string& id = call.params[0];
  auto image = images_.Get(id, ViewerOf(call.context));
  if (!image.ok()) {
    // A deleted image's leftovers may still be dropped; otherwise Glance's 404.
    bool known = cache_.Contains(id);
    for (const auto& q : cache_.Queued()) known = known || q == id;
    if (!known) return NotFound("Image " + id + " not found.");
  }
  INGOT_RETURN_IF_ERROR(cache_.Remove(id));
  cache_.Dequeue(id);
  return NoContent();
}

std::string CacheResource::MetricsText() {
  store::ImageCache::Counters c = cache_.counters();
  auto line = [](std::string_view name, std::string_view type, std::string_view help,
                 uint64_t value) {
    return "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " +
           std::string(name) + " " + std::string(type) + "\n" + std::string(name) + " " +
           std::to_string(value) + "\n";
  };
  return line("ingot_image_cache_hits_total", "counter", "Image reads served from the cache.",
              c.hits) +
         line("ingot_image_cache_misses_total", "counter",
              "Image reads the cache could not serve (read from the store).", c.misses) +
         line("ingot_image_cache_fills_total", "counter", "Images written into the cache.",
              c.fills) +
         line("ingot_image_cache_evictions_total", "counter",
              "Images evicted to stay under the size limit.", c.evictions) +
         line("ingot_image_cache_bytes", "gauge", "Bytes held in the cache.", c.size) +
         line("ingot_image_cache_images", "gauge", "Images held in the cache.", c.entries);
}

}  // namespace ingot::api
