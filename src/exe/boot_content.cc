#include "exe/boot_content.h"

#include "api/boot/content_api.h"
#include "common/log.h"
#include "io/file.h"

namespace ingot::exe {

std::function<void(api::ApiRouter&)> BootContent::ApiRoutes() {
  boot::ContentService* content = service.get();
  return [content](api::ApiRouter& router) { api::boot::RegisterContentRoutes(router, *content); };
}

void BootContent::Stop() {
  if (rackhd_server) rackhd_server->Stop();
}

Result<std::unique_ptr<BootContent>> StartBootContent(const config::Config& config,
                                                      service::ImageService& images,
                                                      api::boot::Southbound* southbound,
                                                      const http::ServerOptions& base) {
  auto out = std::make_unique<BootContent>();
  // The boot content's tables live in the embedded catalog file beside the images' (component
  // "boot_content"); a PostgreSQL repository can follow behind the same interface.
  INGOT_ASSIGN_OR_RETURN(auto db, catalog::sqlite::Database::Open(config.data_dir + "/catalog.db"));
  INGOT_ASSIGN_OR_RETURN(out->repo, boot::SqliteContentRepository::Open(db));

  boot::ContentOptions options;
  options.dir = config.boot_content_dir.empty() ? config.data_dir + "/boot-content"
                                                : config.boot_content_dir;
  options.local_dirs = config.boot_local_dirs;
  options.max_file_size = config.size_cap;
  // ISOs fetched from a URL obey the import's SSRF rules ([import_filtering_opts]).
  options.fetch.filter = {.allowed_schemes = config.allowed_schemes,
                          .disallowed_schemes = config.disallowed_schemes,
                          .allowed_hosts = config.allowed_hosts,
                          .disallowed_hosts = config.disallowed_hosts,
                          .allowed_ports = config.allowed_ports,
                          .disallowed_ports = config.disallowed_ports,
                          .allowed_networks = config.allowed_networks};
  options.fetch.max_redirects = config.import_max_redirects;
  options.fetch.max_bytes = config.size_cap;
  options.fetch.connect_timeout = std::chrono::milliseconds(config.import_connect_timeout_ms);
  options.fetch.stall_timeout = std::chrono::milliseconds(config.import_stall_timeout_ms);
  options.check_image = [&images](const std::string& id) -> Status {
    INGOT_ASSIGN_OR_RETURN(catalog::Image image,
                           images.Get(id, catalog::Viewer{std::nullopt, /*is_admin=*/true}));
    if (image.status() != catalog::ImageStatus::kActive) {
      return Conflict("Only an active image can be published.");
    }
    return Status::Ok();
  };
  INGOT_ASSIGN_OR_RETURN(out->service, boot::ContentService::Open(*out->repo, options));
  INGOT_ASSIGN_OR_RETURN(boot::ContentRepairReport report, out->service->Repair());
  log::Info("boot.content.repair", {{"partial_removed", report.partial_removed},
                                    {"isos_removed", report.isos_removed},
                                    {"trees_prepared", report.trees_prepared},
                                    {"trees_failed", report.trees_failed},
                                    {"files_removed", report.files_removed}});

  if (southbound != nullptr) {
    boot::ContentService* content = out->service.get();
    INGOT_RETURN_IF_ERROR(southbound->SetContent(
        options.dir, [content](const std::vector<std::string>& c) { return content->Map(c); }));
    out->routes = std::make_unique<api::boot::ContentSouthbound>(*out->service, images);
    api::boot::ContentSouthbound* routes = out->routes.get();
    southbound->AddRoute(
        [routes](const http::Request& req, const api::boot::BootPath& path) {
          return routes->Handle(req, path);
        },
        &api::boot::ContentSouthbound::Blocks);
  }

  if (!config.boot_rackhd_listen.empty()) {
    INGOT_ASSIGN_OR_RETURN(auto at, config::ParseListen(config.boot_rackhd_listen));
    out->rackhd = std::make_unique<api::boot::RackHdApi>(
        *out->service, api::boot::RackHdApi::Options{.max_upload = config.size_cap});
    http::ServerOptions o = base;
    o.host = at.first;
    o.port = at.second;
    o.request_id_header.clear();
    o.unlimited_paths.clear();
    api::boot::RackHdApi* handler = out->rackhd.get();
    auto started = http::Server::Start(
        o, [handler](http::Request& req) { return handler->Handle(req); },
        [handler](const http::Exchange& e) { handler->Observe(e); });
    if (!started.ok()) return started.status().WithContext("[boot] rackhd_listen");
    out->rackhd_server = std::move(*started);
    std::string address = o.host.find(':') != std::string::npos
                              ? "[" + o.host + "]:" + std::to_string(out->rackhd_server->port())
                              : o.host + ":" + std::to_string(out->rackhd_server->port());
    log::Info("boot.rackhd", {{"address", address}});
  }
  return out;
}

}  // namespace ingot::exe
