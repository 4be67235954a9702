#include "exe/ingotd_build.h"

#include "api/ims/ims.h"
#include "catalog/sqlite/database.h"
#include "common/log.h"

namespace ingot::exe {

Result<std::unique_ptr<BuildWiring>> BuildWiring::Start(const config::Config& config,
                                                        const std::string& files_dir,
                                                        service::ImageService& images) {
  auto w = std::make_unique<BuildWiring>();
  INGOT_ASSIGN_OR_RETURN(auto db, catalog::sqlite::Database::Open(config.data_dir + "/catalog.db"));
  INGOT_ASSIGN_OR_RETURN(w->repo, build::OpenSqliteBuildRepository(std::move(db)));
  build::BuilderOptions options;
  options.dir = config.build_dir.empty() ? config.data_dir + "/build" : config.build_dir;
  options.mirror = config.build_mirror;
  options.max_jobs = std::max(1, config.build_max_jobs);
  options.job_timeout = std::chrono::seconds(std::max(60, config.build_job_timeout_s));
  options.files_dir = files_dir;
  options.ssh_listen = config.build_ssh_listen;
  options.ssh_host = config.build_ssh_host;
  w->builder = std::make_unique<build::BuildService>(*w->repo, options, &images);
  INGOT_ASSIGN_OR_RETURN(int interrupted, w->builder->Recover());
  log::Info("build.ready", {{"dir", options.dir}, {"interrupted_jobs", interrupted}});
  return w;
}

std::function<void(api::ApiRouter&)> BuildWiring::ApiRoutes(const api::ApiOptions& options) {
  build::BuildService* b = builder.get();
  size_t max_json = options.max_json_body;
  return [b, max_json](api::ApiRouter& r) { api::RegisterImsRoutes(r, *b, max_json); };
}

}  // namespace ingot::exe
