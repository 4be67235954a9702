// ingotd's wiring of the Glance features beside the image API proper:
//  - metadata definitions: the SQLite repository on the catalog file (component "metadefs"), the
//    shipped definitions loaded on first start ([metadefs]), the /v2/metadefs routes
//    (AppDeps::route_sets);
//  - property protections ([images] property_protection_file).
#pragma once

#include <functional>
#include <memory>

#include "api/route.h"
#include "api/v2/metadefs.h"
#include "config/config.h"
#include "metadefs/metadef_service.h"
#include "metadefs/sqlite/sqlite_repository.h"
#include "service/property_protections.h"

namespace ingot::exe {

struct MetadefsWiring {
  std::unique_ptr<metadefs::SqliteRepository> repo;
  std::unique_ptr<metadefs::MetadefService> service;
  std::unique_ptr<api::MetadefsResource> resource;

  // Opens the repository and loads the definitions not loaded before.
  static Result<std::unique_ptr<MetadefsWiring>> Start(const config::Config& config);
  // Adds /v2/metadefs/... to the API's router.
  std::function<void(api::ApiRouter&)> ApiRoutes(const api::ApiOptions& options);
};

// The configured property protections; null when [images] property_protection_file is unset.
// kInvalidArgument for a file Glance would refuse (the daemon does not start).
Result<std::unique_ptr<service::PropertyProtections>> LoadPropertyProtections(
    const config::Config& config, const auth::Policy& policy);

}  // namespace ingot::exe
