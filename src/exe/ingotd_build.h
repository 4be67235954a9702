// ingotd's wiring of the image builder: its records on the catalog file (component "build"), the
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

namespace ingot::exe {

struct BuildWiring {
  std::unique_ptr<build::BuildRepository> repo;
  std::unique_ptr<build::BuildService> builder;

  // Opens the records, recovers interrupted jobs. `files_dir`: the boot service's root (DRP
  // tarballs are published under it), "" for none. `images`: where bootable disks are registered.
  static Result<std::unique_ptr<BuildWiring>> Start(const config::Config& config,
                                                    const std::string& files_dir,
                                                    service::ImageService& images);
  std::function<void(api::ApiRouter&)> ApiRoutes(const api::ApiOptions& options);
  void Stop() { builder->Stop(); }
};

}  // namespace ingot::exe
