// ingotd: the Ingot daemon. The composition root: reads configuration, opens the catalog and the
// store, repairs what a crash left, and serves the API until SIGINT/SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "api/app.h"
#include "api/boot/southbound.h"
#include "auth/authenticator.h"
#include "auth/policy.h"
#include "catalog/sqlite/sqlite_repository.h"
#include "exe/boot_content.h"
#include "exe/boot_machines.h"
#include "exe/catalog_open.h"
#include "common/log.h"
#include "common/uuid.h"
#include "config/config.h"
#include "exe/ingotd_auth.h"
#include "exe/ingotd_deploy.h"
#include "api/streamer/streamer.h"
#include "exe/ingotd_cache.h"
#include "exe/ingotd_extras.h"
#include "exe/ingotd_build.h"
#include "http/server.h"
#include "io/file.h"
#include "service/image_service.h"
#include "service/import/import_service.h"
#include "service/locations.h"
#include "service/scrubber.h"
#include "store/file/file_store.h"
#include "store/http/http_store.h"
#include "store/s3/s3_store.h"
#include "store/swift/swift_store.h"
#include "store/registry.h"
#include "tftp/server.h"

namespace ingot {
namespace {

constexpr const char* kUsage = R"(Usage: ingotd [options]

Serves the OpenStack Image API v2 (and the rest of Ingot) on its embedded defaults:
SQLite metadata and a file store under the data directory (more stores: [[stores]] in --config).

Options:
  --listen HOST:PORT     address to serve on (default 127.0.0.1:9292; port 0 picks a free one)
  --data-dir DIR         where the catalog and image files live (default ./ingot-data)
  --auth MODE            noauth (every request is admin of one project), tokens, or keystone
                         ([keystone_authtoken] in --config)
  --tokens-file FILE     TOML file of static tokens for --auth tokens
  --boot-listen HOST:PORT
                         the boot service's southbound file listener (default 127.0.0.1:9090,
                         "" turns it off); it serves [boot] root (default DATA_DIR/boot)
  --tftp-listen HOST:PORT
                         the same tree over TFTP (off unless given; e.g. 0.0.0.0:69)
  --config FILE          TOML configuration; flags given here override it
  --policy-file FILE     oslo.policy rules over the defaults (re-read when it changes)
  --print-default-policy print the default policy as a policy.yaml and exit
  --log-level LEVEL      debug, info, warn or error
  --help                 this text

  ingotd volume --help   the OS volume commands (create, list, attach, detach, delete)
)";

int Fail(const Status& s) {
  std::fprintf(stderr, "ingotd: %s\n", s.ToString().c_str());
  return 1;
}

Status ParseFlags(int argc, char** argv, config::Config& config) {
  // --config first, so flags override the file regardless of their order.
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0) {
      if (i + 1 >= argc) return InvalidArgument("--config needs a file");
      INGOT_RETURN_IF_ERROR(config::LoadConfigFile(argv[i + 1], config));
    }
  }
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    auto eq = flag.find('=');
    if (eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (flag != "--help" && flag != "-h" && flag != "--print-default-policy") {
      if (i + 1 >= argc) return InvalidArgument(flag + " needs a value");
      value = argv[++i];
    }
    if (flag == "--print-default-policy") {
      std::fputs(auth::Policy::DefaultsYaml().c_str(), stdout);
      std::exit(0);
    }
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--listen") {
      config.listen = value;
    } else if (flag == "--data-dir") {
      config.data_dir = value;
    } else if (flag == "--auth") {
      config.auth = value;
    } else if (flag == "--policy-file") {
      config.auth_sections.policy.policy_file = value;
    } else if (flag == "--tokens-file") {
      config.tokens_file = value;
    } else if (flag == "--boot-listen") {
      config.boot_listen = value;
    } else if (flag == "--tftp-listen") {
      config.tftp_listen = value;
    } else if (flag == "--log-level") {
      config.log_level = value;
    } else if (flag == "--config") {
      // already loaded
    } else {
      return InvalidArgument("unknown option " + flag + " (see --help)");
    }
  }
  return Status::Ok();
}

int Run(int argc, char** argv) {
  // `ingotd volume ...`: the OS volume commands (exe/ingotd_deploy.h), not the daemon.
  if (argc > 1 && std::strcmp(argv[1], "volume") == 0) return RunVolumeCommand(argc - 1, argv + 1);
  config::Config config;
  if (Status s = ParseFlags(argc, argv, config); !s.ok()) return Fail(s);
  if (config.log_level == "debug")
    log::SetMinLevel(log::Level::kDebug);
  else if (config.log_level == "warn")
    log::SetMinLevel(log::Level::kWarn);
  else if (config.log_level == "error")
    log::SetMinLevel(log::Level::kError);

  auto listen = config::ParseListen(config.listen);
  if (!listen.ok()) return Fail(listen.status());
  std::optional<std::pair<std::string, uint16_t>> boot_listen;
  if (!config.boot_listen.empty()) {
    auto parsed = config::ParseListen(config.boot_listen);
    if (!parsed.ok()) return Fail(parsed.status().WithContext("--boot-listen"));
    boot_listen = *parsed;
  }

  // Authentication (--auth), the policy and its file, Keystone's session (exe/ingotd_auth.h).
  auto auth_wiring = WireAuth(config);
  if (!auth_wiring.ok()) return Fail(auth_wiring.status());

  if (Status s = io::MakeDirs(config.data_dir); !s.ok()) return Fail(s);
  // [catalog]: SQLite under the data directory (default) or PostgreSQL (exe/catalog_open.h).
  auto repo = exe::OpenCatalog(config);
  if (!repo.ok()) return Fail(repo.status());

  // The store drivers this binary can talk to; [[stores]] picks among them.
  store::DriverRegistry drivers;
  if (Status s = drivers.Register("file", store::MakeFileStore); !s.ok()) return Fail(s);
  if (Status s = drivers.Register("swift", store::MakeSwiftStore); !s.ok()) return Fail(s);
  if (Status s = drivers.Register("s3", store::MakeS3Store); !s.ok()) return Fail(s);
  // Glance's read-only http store: bytes other servers serve, fetched under the same SSRF rules as
  // web-download ([import_filtering_opts]).
  fetch::FetchOptions http_fetch;
  http_fetch.filter = {.allowed_schemes = config.allowed_schemes,
                       .disallowed_schemes = config.disallowed_schemes,
                       .allowed_hosts = config.allowed_hosts,
                       .disallowed_hosts = config.disallowed_hosts,
                       .allowed_ports = config.allowed_ports,
                       .disallowed_ports = config.disallowed_ports,
                       .allowed_networks = config.allowed_networks};
  http_fetch.max_redirects = config.import_max_redirects;
  http_fetch.max_bytes = config.size_cap;
  http_fetch.connect_timeout = std::chrono::milliseconds(config.import_connect_timeout_ms);
  http_fetch.stall_timeout = std::chrono::milliseconds(config.import_stall_timeout_ms);
  if (Status s = drivers.Register("http",
                                  [http_fetch](const store::StoreConfig& c) {
                                    return store::MakeHttpStore(c, http_fetch);
                                  });
      !s.ok()) {
    return Fail(s);
  }
  // [cache] (exe/ingotd_cache.h): every store built wrapped in the image cache.
  auto cache = exe::CacheWiring::Open(config);
  if (!cache.ok()) return Fail(cache.status());
  store::DriverRegistry cached_drivers;
  if (*cache) cached_drivers = (*cache)->Wrap(drivers);
  auto stores = store::BuildStoreSet(*cache ? cached_drivers : drivers, config.Stores());
  if (!stores.ok()) return Fail(stores.status());

  // This node's name in the catalog's leases (import tasks, uploads, the scrubber).
  const std::string node =
      config.node_name.empty() ? "ingotd-" + NewUuid() : config.node_name;
  // On a catalog other nodes share, uploads hold a lease so a restart repairs only its own.
  const bool shared_catalog = config.catalog.driver == "postgres";
  service::ImageService images(**repo, **stores,
                               {.hash_algo = config.hash_algo,
                                .size_cap = config.size_cap,
                                .property_quota = config.property_quota,
                                .tag_quota = config.tag_quota,
                                .member_quota = config.member_quota,
                                .upload_leases = shared_catalog ? &**repo : nullptr,
                                .node = node,
                                .upload_lease = std::chrono::seconds(config.upload_lease_s)});
  if (*cache) (*cache)->Start(images);
  // Per-project quotas ([quotas]: configured or Keystone's unified limits; exe/ingotd_auth.h).
  auto limits = WireLimits(config, *auth_wiring);
  if (!limits.ok()) return Fail(limits.status());
  std::unique_ptr<service::Quotas> quotas;
  if (*limits) {
    quotas = std::make_unique<service::Quotas>(**repo, **limits);
    images.set_quotas(quotas.get());
  }
  // A store or catalog that is briefly unreachable (Swift restarting, say) must not keep the node
  // down: what this repair would have done waits for the next start or the scrubber.
  if (auto report = images.Repair(); !report.ok()) {
    log::Error("repair.failed", {{"error", report.status().ToString()}});
  } else {
    log::Info("repair", {{"saving_reset", report->saving_reset},
                         {"saving_other_node", report->saving_other_node},
                         {"incomplete_removed", report->incomplete_removed},
                         {"orphans_removed", report->orphans_removed},
                         {"missing_data", static_cast<uint64_t>(report->missing_data.size())}});
  }
  // A shared catalog: uploads of nodes that died and never came back are put back to queued once
  // their lease runs out ([images] upload_lease_s).
  images.StartReclaimingUploads();

  // Import: staged bytes live in a file store of their own, outside the image stores.
  auto staging = store::FileStore::Open(
      {.id = "staging",
       .root = config.staging_dir.empty() ? config.data_dir + "/staging" : config.staging_dir});
  if (!staging.ok()) return Fail(staging.status());
  images.set_staging(staging->get());
  service::ImportOptions import_options{
      .methods = config.import_methods,
      .staging_cap = config.staging_cap,
      .workers = config.import_workers,
      .node = node,
      .lease = std::chrono::milliseconds(config.task_lease_ms),
      .task_ttl = std::chrono::hours(config.task_ttl_hours),
      .require_image_format_match = config.require_image_format_match,
      .convert_to = config.convert_to,
      .keep_original = config.keep_original,
      .decompress = config.decompress,
      .glance_regions = config.glance_regions,  // plus Keystone's catalog, below
      .glance_download_properties = config.glance_download_properties,
      .inject = config.inject,
      .inject_ignore_roles = config.inject_ignore_roles};
  // glance-download finds other regions' image endpoints in Keystone's catalog, as Glance does.
  for (auto& [region, url] : KeystoneImageRegions(*auth_wiring)) {
    import_options.glance_regions.emplace(region, url);
  }
  import_options.fetch.filter = {.allowed_schemes = config.allowed_schemes,
                                 .disallowed_schemes = config.disallowed_schemes,
                                 .allowed_hosts = config.allowed_hosts,
                                 .disallowed_hosts = config.disallowed_hosts,
                                 .allowed_ports = config.allowed_ports,
                                 .disallowed_ports = config.disallowed_ports,
                                 .allowed_networks = config.allowed_networks};
  import_options.fetch.max_redirects = config.import_max_redirects;
  import_options.fetch.max_bytes = std::min(config.size_cap, config.staging_cap);
  import_options.fetch.connect_timeout =
      std::chrono::milliseconds(config.import_connect_timeout_ms);
  import_options.fetch.stall_timeout = std::chrono::milliseconds(config.import_stall_timeout_ms);
  service::ImportService imports(images, **repo, **staging, import_options);
  auto unstaged = imports.RepairStaging();
  if (!unstaged.ok()) return Fail(unstaged.status());
  if (*unstaged > 0) log::Info("repair.staging", {{"removed", *unstaged}});

  // The locations API: bytes already in a store adopted as an image's data, read and checked as an
  // upload's are.
  // With [images] show_multiple_locations, Glance's PATCH /locations API and `locations` in image
  // documents too.
  // [scrubber] (service/scrubber.h): orphans and abandoned writes swept from every store, images
  // re-hashed; one node at a time through the catalog's job lease.
  std::unique_ptr<service::Scrubber> scrubber;
  std::unique_ptr<build::BuildRepository> build_records;  // the builder's files in the stores
  if (config.scrubber.enabled) {
    auto records = build::OpenBuildRepository((*repo)->shared_backend());
    if (!records.ok()) return Fail(records.status());
    build_records = std::move(*records);
    scrubber = std::make_unique<service::Scrubber>(
        **repo, **repo, **stores,
        service::ScrubberOptions{
            .node = imports.options().node,
            .interval = std::chrono::seconds(config.scrubber.interval_s),
            .grace = std::chrono::seconds(config.scrubber.grace_s),
            .rehash_bytes = static_cast<uint64_t>(config.scrubber.rehash_mib) << 20,
            .lease = std::chrono::seconds(config.scrubber.lease_s),
            .kept_elsewhere = [records = build_records.get()](const std::string&,
                                                              const std::string& key) {
              return build::Shelf::StillWanted(*records, key);
            }});
  }

  service::LocationService locations(
      images, {.require_image_format_match = config.require_image_format_match,
               .show_multiple_locations = config.show_multiple_locations});

  // Block the stop signals before any thread starts, so only sigwait below sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  http::ServerOptions options;
  options.host = listen->first;
  options.port = listen->second;
  options.io_threads = config.io_threads;
  options.worker_threads = config.worker_threads;
  options.header_timeout = std::chrono::milliseconds(config.header_timeout_ms);
  options.idle_timeout = std::chrono::milliseconds(config.idle_timeout_ms);
  options.io_timeout = std::chrono::milliseconds(config.io_timeout_ms);
  options.request_id_header = "x-openstack-request-id";
  options.min_data_rate = static_cast<uint64_t>(std::max<int64_t>(0, config.min_data_rate));
  options.min_rate_grace = std::chrono::milliseconds(config.min_rate_grace_ms);
  options.buffered_body_deadline = std::chrono::milliseconds(config.buffered_body_deadline_ms);
  options.streamed_body_deadline = std::chrono::milliseconds(config.streamed_body_deadline_ms);
  options.max_streamed_bodies = config.max_streamed_bodies;
  options.max_connections = config.max_connections;
  options.max_connections_per_client = config.max_connections_per_client;
  options.max_requests_in_flight = config.max_requests_in_flight;
  options.max_requests_in_flight_per_client = config.max_requests_in_flight_per_client;
  options.retry_after_seconds = config.retry_after_seconds;
  options.unlimited_paths = {"/healthcheck", "/metrics"};

  // The boot service's southbound listener: a server of its own with its own handler, read-only and
  // without auth, so nothing of the API above can ever answer there. Started first, so a port that
  // cannot be bound stops the daemon before the API answers anyone.
  std::unique_ptr<api::boot::Southbound> southbound;
  std::unique_ptr<http::Server> boot_server;
  std::string boot_root = config.boot_root;
  if (boot_listen || !config.tftp_listen.empty()) {
    if (boot_root.empty()) {
      boot_root = config.data_dir + "/boot";
      if (Status s = io::MakeDirs(boot_root); !s.ok()) return Fail(s);
    }
    auto sb = api::boot::Southbound::Open(
        {.root = boot_root, .firmware_dir = config.boot_firmware_dir});
    if (!sb.ok()) return Fail(sb.status());
    southbound = std::move(*sb);
  }
  // Per-machine boot (exe/boot_machines.h): its southbound routes go first (/boot.ipxe, *.sig).
  auto boot_machines = exe::StartBootMachines(config, southbound.get());
  if (!boot_machines.ok()) return Fail(boot_machines.status());
  // The boot content (ISOs, OS trees, files, publications; exe/boot_content.h): repaired, and its
  // paths and routes added to the southbound listener before it starts.
  auto boot_content = exe::StartBootContent(config, images, southbound.get(), options);
  if (!boot_content.ok()) return Fail(boot_content.status());
  (*boot_machines)->os_trees = exe::OsTreeLookup(**boot_content);
  if (boot_listen) {
    http::ServerOptions boot_options = options;
    boot_options.host = boot_listen->first;
    boot_options.port = boot_listen->second;
    boot_options.request_id_header.clear();
    boot_options.unlimited_paths.clear();
    api::boot::Southbound* handler = southbound.get();
    // Files of the tree are answered on the I/O thread (HandleInline), the rest on workers.
    auto started = http::Server::Start(
        boot_options, [handler](http::Request& req) { return handler->Handle(req); },
        [handler](const http::Exchange& e) { handler->Observe(e); },
        [handler](http::Request& req) { return handler->HandleInline(req); });
    if (!started.ok()) return Fail(started.status().WithContext("--boot-listen"));
    boot_server = std::move(*started);
    std::string boot_address =
        boot_options.host.find(':') != std::string::npos
            ? "[" + boot_options.host + "]:" + std::to_string(boot_server->port())
            : boot_options.host + ":" + std::to_string(boot_server->port());
    // Not named "...listening": scripts take the API's address from the first such line.
    log::Info("boot.serving", {{"address", boot_address}, {"root", boot_root}});
    // proxyDHCP ([proxydhcp], off by default) hands out this listener's URLs.
    if (Status s = exe::OnBootListening(**boot_machines, config, boot_server->port()); !s.ok()) {
      return Fail(s.WithContext("proxydhcp"));
    }
  }
  // The same tree over TFTP, for firmware that fetches only its first stage that way.
  std::unique_ptr<api::boot::TftpFiles> tftp_files;
  std::unique_ptr<tftp::Server> tftp_server;
  if (!config.tftp_listen.empty()) {
    auto at = config::ParseListen(config.tftp_listen);
    if (!at.ok()) return Fail(at.status().WithContext("--tftp-listen"));
    tftp_files = std::make_unique<api::boot::TftpFiles>(*southbound);
    tftp_server = std::make_unique<tftp::Server>(
        tftp::ServerOptions{.host = at->first, .port = at->second}, *tftp_files);
    if (Status s = tftp_server->Start(); !s.ok()) return Fail(s.WithContext("--tftp-listen"));
    log::Info("boot.tftp", {{"address", at->first + ":" + std::to_string(tftp_server->port())},
                            {"root", boot_root}});
  }
  // OS volumes and, with [deploy] nbd_listen, their NBD exports (exe/ingotd_deploy.h).
  auto deploy = DeployWiring::Start(config);
  if (!deploy.ok()) return Fail(deploy.status());
  // Image Streamer's artifacts and deployments over those volumes; golden images are catalog
  // images too (exe/ingotd_deploy.h).
  if (Status s = (*deploy)->StartArtifacts(config, images); !s.ok()) {
    return Fail(s.WithContext("[deploy]"));
  }
  // Image Streamer's clients send their token in an `Auth` header (api/streamer/streamer.h).
  api::streamer::AuthHeaderAuthenticator streamer_auth(*auth_wiring->authenticator);

  // public_url is needed by the API before the port is known only when the port is fixed; with port
  // 0 it is filled after binding.
  const auth::Policy& policy = *auth_wiring->policy;
  api::AppDeps deps{.images = images,
                    .authenticator = streamer_auth,
                    .policy = policy,
                    .options = {.formats = {config.disk_formats, config.container_formats},
                                .max_image_size = config.size_cap,
                                .show_image_direct_url = config.show_image_direct_url,
                                .inline_reads = !shared_catalog},
                    .imports = config.import_methods.empty() ? nullptr : &imports,
                    .locations = &locations};
  deps.route_sets.push_back((*boot_content)->ApiRoutes());
  deps.route_sets.push_back((*deploy)->ApiRoutes(deps.options.max_json_body));
  deps.route_sets.push_back((*boot_machines)->ApiRoutes());
  // Metadata definitions (exe/ingotd_extras.h): shipped definitions loaded once, /v2/metadefs.
  auto metadefs = exe::MetadefsWiring::Start(config);
  if (!metadefs.ok()) return Fail(metadefs.status());
  deps.route_sets.push_back((*metadefs)->ApiRoutes(deps.options));
  if (*cache) {
    deps.route_sets.push_back((*cache)->ApiRoutes());
    deps.metrics.push_back((*cache)->Metrics());
    deps.options.image_cache = true;
  }
  if (scrubber) deps.metrics.push_back([&scrubber] { return scrubber->Metrics(); });

  // [images] property_protection_file (exe/ingotd_extras.h).
  auto protections = exe::LoadPropertyProtections(config, policy);
  if (!protections.ok()) return Fail(protections.status());
  deps.options.property_protections = protections->get();
  // The image builder and its IMS API (exe/ingotd_build.h).
  std::unique_ptr<exe::BuildWiring> build_wiring;
  if (config.build_enabled) {
    auto started = exe::BuildWiring::Start(config, boot_root, images, **repo, **stores,
                                           shared_catalog, node);
    if (!started.ok()) return Fail(started.status().WithContext("[build]"));
    build_wiring = std::move(*started);
    deps.route_sets.push_back(build_wiring->ApiRoutes(deps.options));
  }
  // The application needs the bound port (for Location headers), so it is built after binding; the
  // few requests that could arrive in between are told to retry.
  std::unique_ptr<api::Application> app;
  std::atomic<api::Application*> ready{nullptr};
  auto server = http::Server::Start(
      options,
      [&ready](http::Request& req) -> http::HeadResult {
        if (api::Application* a = ready.load()) return a->Handle(req);
        http::Response r;
        r.status = 503;
        r.headers.Set("Retry-After", "1");
        return r;
      },
      [&ready](const http::Exchange& e) {
        if (api::Application* a = ready.load()) a->Observe(e);
      },
      [&ready](http::Request& req) -> std::optional<http::Response> {
        if (api::Application* a = ready.load()) return a->HandleInline(req);
        return std::nullopt;
      });
  if (!server.ok()) return Fail(server.status());
  std::string address = options.host.find(':') != std::string::npos
                            ? "[" + options.host + "]:" + std::to_string((*server)->port())
                            : options.host + ":" + std::to_string((*server)->port());
  if (config.public_url.empty()) config.public_url = "http://" + address;
  deps.options.public_url = config.public_url;
  app = std::make_unique<api::Application>(deps);
  ready.store(app.get());
  log::Info("listening",
            {{"address", address}, {"data_dir", config.data_dir}, {"auth", config.auth}});

  imports.Start();
  if (scrubber) scrubber->Start();

  int sig = 0;
  sigwait(&stop, &sig);
  log::Info("stopping", {{"signal", sig}});
  (*server)->Stop();
  if (boot_server) boot_server->Stop();
  (*boot_content)->Stop();
  (*boot_machines)->Stop();
  if (tftp_server) tftp_server->Stop();
  deploy->reset();
  if (build_wiring) build_wiring->Stop();
  if (scrubber) scrubber->Stop();
  imports.Stop();
  if (*cache) (*cache)->Stop();
  return 0;
}

}  // namespace
}  // namespace ingot

int main(int argc, char** argv) { return ingot::Run(argc, argv); }
