#include "exe/ingotd_build.h"

#include "api/ims/ims.h"
#include "catalog/sql/sql_repository.h"
#include "store/store_set.h"
#include "common/log.h"

namespace ingot::exe {

Result<std::unique_ptr<BuildWiring>> BuildWiring::Start(const config::Config& config,
                                                        const std::string& files_dir,
                                                        service::ImageService& images,
                                                        catalog::SqlRepository& catalog,
                                                        const store::StoreSet& stores, bool shared,
                                                        const std::string& node) {
  auto w = std::make_unique<BuildWiring>();
  INGOT_ASSIGN_OR_RETURN(w->repo, build::OpenBuildRepository(catalog.shared_backend()));
  build::BuilderOptions options;
  options.dir = config.build_dir.empty() ? config.data_dir + "/build" : config.build_dir;
  options.mirror = config.build_mirror;
  options.max_jobs = std::max(1, config.build_max_jobs);
  options.job_timeout = std::chrono::seconds(std::max(60, config.build_job_timeout_s));
  options.files_dir = files_dir;
  options.ssh_listen = config.build_ssh_listen;
  options.ssh_host = config.build_ssh_host;
  if (shared) {
    options.leases = &catalog;
    options.node = node;
    options.job_lease = std::chrono::seconds(config.build_job_lease_s);
  }
  if (!config.build_store.empty()) {
    options.shelf_store = stores.Find(config.build_store);
    if (options.shelf_store == nullptr) {
      return InvalidArgument("config build.store: no store \"" + config.build_store + "\"");
    }
  }
  w->builder = std::make_unique<build::BuildService>(*w->repo, options, &images);
  INGOT_ASSIGN_OR_RETURN(int interrupted, w->builder->Recover());
  w->builder->StartKeeper();
  log::Info("build.ready", {{"dir", options.dir},
                            {"interrupted_jobs", interrupted},
                            {"shared", shared ? "true" : "false"},
                            {"store", config.build_store}});
  return w;
}

std::function<void(api::ApiRouter&)> BuildWiring::ApiRoutes(const api::ApiOptions& options) {
  build::BuildService* b = builder.get();
  size_t max_json = options.max_json_body;
  return [b, max_json](api::ApiRouter& r) { api::RegisterImsRoutes(r, *b, max_json); };
}

}  // namespace ingot::exe
