// ingotd's wiring of the image builder: its records in the catalog's database (component "build";
// on PostgreSQL shared by every node, with job leases and [build] store for the files), the
// builder under [build] dir, recovery of jobs a previous run left unfinished, and Cray IMS's API
// (/apis/ims/...) on the northbound router (AppDeps::route_sets).
#pragma once

#include <functional>
#include <memory>

#include "api/options.h"
#include "api/route.h"
#include "build/builder.h"
#include "config/config.h"

namespace ingot::service {
class ImageService;
}
namespace ingot::catalog {
class SqlRepository;
}
namespace ingot::store {
class StoreSet;
}

namespace ingot::exe {

struct BuildWiring {
  std::unique_ptr<build::BuildRepository> repo;
  std::unique_ptr<build::BuildService> builder;

  // Opens the records, recovers interrupted jobs. `files_dir`: the boot service's root (DRP
  // tarballs are published under it), "" for none. `images`: where bootable disks are registered.
  // `shared`: the catalog is shared with other nodes (job leases as `node`, [build] store).
  static Result<std::unique_ptr<BuildWiring>> Start(const config::Config& config,
                                                    const std::string& files_dir,
                                                    service::ImageService& images,
                                                    catalog::SqlRepository& catalog,
                                                    const store::StoreSet& stores, bool shared,
                                                    const std::string& node);
  std::function<void(api::ApiRouter&)> ApiRoutes(const api::ApiOptions& options);
  void Stop() { builder->Stop(); }
};

}  // namespace ingot::exe
