// ingotd's wiring of the boot content (boot/content_service.h): its SQLite repository on the
// catalog file, the service and its crash repair, its paths and routes on the southbound listener,
// the /boot/v1 routes of the API, and RackHD's image-service listener ([boot] rackhd_listen).
#pragma once

#include <functional>
#include <memory>

#include "api/boot/content_southbound.h"
#include "api/boot/rackhd.h"
#include "api/boot/southbound.h"
#include "api/route.h"
#include "boot/sqlite_content.h"
#include "config/config.h"
#include "http/server.h"
#include "service/image_service.h"

namespace ingot::exe {

struct BootContent {
  std::unique_ptr<boot::SqliteContentRepository> repo;
  std::unique_ptr<boot::ContentService> service;
  std::unique_ptr<api::boot::ContentSouthbound> routes;
  std::unique_ptr<api::boot::RackHdApi> rackhd;
  std::unique_ptr<http::Server> rackhd_server;

  // Adds /boot/v1 to the API's router (AppDeps::route_sets).
  std::function<void(api::ApiRouter&)> ApiRoutes();
  void Stop();
};

// Opens and repairs the content, hooks it into `southbound` (may be null: no southbound listener)
// before that listener starts, and starts the RackHD listener when configured (with `base` as its
// server options).
Result<std::unique_ptr<BootContent>> StartBootContent(const config::Config& config,
                                                      service::ImageService& images,
                                                      api::boot::Southbound* southbound,
                                                      const http::ServerOptions& base);

}  // namespace ingot::exe
