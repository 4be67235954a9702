#include "exe/ingotd_deploy.h"

#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <map>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "api/streamer/bundles.h"
#include "api/streamer/streamer.h"
#include "catalog/sqlite/database.h"
#include "common/log.h"
#include "common/uuid.h"
#include "deploy/guestfish/engine.h"
#include "io/adapters.h"
#include "io/file.h"
#include "iscsi/wire.h"

namespace ingot {
namespace {

std::string VolumesDir(const config::Config& c) {
  return c.volumes_dir.empty() ? c.data_dir + "/volumes" : c.volumes_dir;
}

constexpr const char* kVolumeUsage = R"(Usage: ingotd volume [--data-dir DIR | --config FILE] COMMAND ...

Manages the OS volumes of this node (copy-on-write clones of golden images, served over NBD on
[deploy] nbd_listen and iSCSI on [deploy] iscsi_listen while attached). The daemon may be running.

Commands:
  create NAME --from IMAGE_FILE [--format FMT] [--size BYTES] [--cluster-size BYTES]
                          clone a golden image (raw, qcow2, vmdk, vhd, vhdx, vdi); constant time
  list                    every volume: name, size, base format, attached, allowed addresses
  info NAME               one volume's facts
  attach NAME --allow ADDR[,ADDR...] [--initiator IQN[,IQN...]]
                          serve it over NBD (export name = NAME) and iSCSI (target
                          <iscsi_iqn>:NAME, LUN 0) to these addresses or prefixes (10.0.0.5,
                          10.0.0.0/24, fd00::/8); --initiator: only these iSCSI initiator names
  detach NAME             stop serving it (open connections are closed; its writes are kept)
  delete NAME             remove it (refused while a client is connected)
  personalise NAME --script FILE [--engine auto|native|guestfish] [--name SCRIPT_NAME]
                          run a plan script (guestfish commands, @attributes@ already
                          substituted) against the volume and print its log; `auto` does it
                          natively unless the script needs the real guestfish
)";

int VolumeFail(const Status& s) {
  std::fprintf(stderr, "ingotd volume: %s\n", s.ToString().c_str());
  return 1;
}

void PrintVolume(const deploy::VolumeInfo& v, const std::string& extra = "") {
  std::string allow;
  for (size_t i = 0; i < v.rule.allow.size(); ++i) allow += (i ? "," : "") + v.rule.allow[i];
  // Initiators only when restricted, so the line reads as before for rules without them.
  std::string initiators;
  for (size_t i = 0; i < v.rule.initiators.size(); ++i) {
    initiators += (i ? "," : "") + v.rule.initiators[i];
  }
  if (!initiators.empty()) initiators = "\tinitiators=" + initiators;
  std::printf("%s\tsize=%llu\tbase_format=%s\tcluster_size=%u\tattached=%s\tallow=%s%s%s\n",
              v.name.c_str(), static_cast<unsigned long long>(v.meta.size),
              v.meta.base_format.c_str(), v.meta.cluster_size, v.rule.attached ? "true" : "false",
              allow.empty() ? "-" : allow.c_str(), initiators.c_str(), extra.c_str());
}

bool ParseSize(const std::string& s, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != '\0') return false;
  out = v;
  return true;
}

}  // namespace

Result<std::unique_ptr<DeployWiring>> DeployWiring::Start(const config::Config& config) {
  std::unique_ptr<DeployWiring> w(new DeployWiring());
  INGOT_ASSIGN_OR_RETURN(w->store_, deploy::VolumeStore::Open(VolumesDir(config)));
  if (config.nbd_listen.empty() && config.iscsi_listen.empty()) return w;
  // One resolver for both protocols, so NBD and iSCSI clients of a volume share its open copy.
  w->exports_ = std::make_unique<deploy::VolumeExports>(*w->store_);
  auto address = [](const std::string& host, uint16_t port) {
    return host.find(':') != std::string::npos ? "[" + host + "]:" + std::to_string(port)
                                               : host + ":" + std::to_string(port);
  };
  if (!config.nbd_listen.empty()) {
    INGOT_ASSIGN_OR_RETURN(auto at, config::ParseListen(config.nbd_listen));
    w->server_ = std::make_unique<nbd::Server>(
        nbd::ServerOptions{.host = at.first, .port = at.second, .writers = &w->writers_},
        *w->exports_);
    INGOT_RETURN_IF_ERROR(w->server_->Start().WithContext("[deploy] nbd_listen"));
    log::Info("nbd.serving", {{"address", address(at.first, w->server_->port())},
                              {"volumes", w->store_->root()}});
  }
  if (!config.iscsi_listen.empty()) {
    INGOT_ASSIGN_OR_RETURN(auto at, config::ParseListen(config.iscsi_listen));
    w->iscsi_ = std::make_unique<iscsi::Server>(
        iscsi::ServerOptions{.host = at.first,
                             .port = at.second,
                             .iqn_prefix = config.iscsi_iqn,
                             .writers = &w->writers_},
        *w->exports_);
    INGOT_RETURN_IF_ERROR(w->iscsi_->Start().WithContext("[deploy] iscsi_listen"));
    log::Info("iscsi.serving", {{"address", address(at.first, w->iscsi_->port())},
                                {"iqn", config.iscsi_iqn},
                                {"volumes", w->store_->root()}});
  }
  w->watcher_ = std::thread([p = w.get()] { p->Watch(); });
  return w;
}

namespace {

const catalog::Viewer kAdmin{std::nullopt, /*is_admin=*/true};

// A golden image made from a catalog image reads that image's bytes.
deploy::artifacts::CatalogImageOpener OpenerOf(service::ImageService& images) {
  return [&images](const std::string& id) -> Result<deploy::artifacts::CatalogImage> {
    INGOT_ASSIGN_OR_RETURN(catalog::Image image, images.Get(id, kAdmin));
    INGOT_ASSIGN_OR_RETURN(service::OpenedData data, images.OpenData(image));
    // A file store hands out a descriptor, the others a source.
    if (data.fd) {
      data.source = std::make_unique<io::FileSource>(std::move(data.fd), data.size, "image " + id);
    }
    if (data.source == nullptr) return Unavailable("image " + id + " has no readable bytes");
    return deploy::artifacts::CatalogImage{image.name.value_or(id), std::move(data.source)};
  };
}

// The other golden images become private images holding the same bytes, in the default store,
// marked with the golden image's id.
deploy::artifacts::CatalogPublisher PublisherOf(service::ImageService& images) {
  return {
      .publish = [&images](const deploy::artifacts::GoldenImageFile& g) -> Result<std::string> {
        catalog::Image draft;
        draft.id = NewUuid();
        draft.name = g.name;
        draft.visibility = catalog::Visibility::kPrivate;
        draft.disk_format = g.disk_format;
        draft.container_format = "bare";
        draft.properties["ingot_golden_image_id"] = g.golden_id;
        INGOT_ASSIGN_OR_RETURN(catalog::Image image, images.Create(std::move(draft)));
        INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(g.path, O_RDONLY | O_CLOEXEC));
        io::FdReader reader(fd.get(), g.path);
        auto uploaded = images.Upload(image, reader, g.size);
        if (!uploaded.ok()) {
          (void)images.Delete(image);
          return uploaded.status();
        }
        return image.id;
      },
      .remove = [&images](const std::string& image_id) -> Status {
        auto image = images.Get(image_id, kAdmin);
        if (!image.ok()) return image.status().code() == Code::kNotFound ? Status::Ok() : image.status();
        return images.Delete(*image);
      }};
}

}  // namespace

Status DeployWiring::StartArtifacts(const config::Config& config, service::ImageService& images) {
  INGOT_ASSIGN_OR_RETURN(auto db, catalog::sqlite::Database::Open(config.data_dir + "/catalog.db"));
  INGOT_ASSIGN_OR_RETURN(repo_, deploy::artifacts::OpenSqliteDeployRepository(std::move(db)));
  artifacts_ = std::make_unique<deploy::artifacts::ArtifactService>(
      *repo_, *store_, deploy::artifacts::ArtifactOptions{.dir = config.data_dir + "/deploy"},
      OpenerOf(images));
  artifacts_->SetCatalogPublisher(PublisherOf(images));
  INGOT_ASSIGN_OR_RETURN(auto report, artifacts_->Repair());
  bundles_ = std::make_unique<deploy::artifacts::BundleService>(
      *repo_, *store_, deploy::artifacts::ArtifactOptions{.dir = config.data_dir + "/deploy"},
      deploy::artifacts::BundleOptions{
          .dir = config.data_dir + "/deploy",
          .golden_images_added =
              [a = artifacts_.get()](const std::vector<std::string>& ids) {
                for (const std::string& id : ids) a->PublishToCatalog(id);
              }});
  INGOT_RETURN_IF_ERROR(bundles_->Repair().status());
  bundles_->Start();
  log::Info("deploy.ready", {{"deployments_undone", report.deployments_undone},
                             {"files_removed", report.files_removed}});
  artifacts_->Start();
  return Status::Ok();
}

std::function<void(api::ApiRouter&)> DeployWiring::ApiRoutes(size_t max_json_body) {
  deploy::artifacts::ArtifactService* s = artifacts_.get();
  deploy::artifacts::BundleService* b = bundles_.get();
  return [s, b, max_json_body](api::ApiRouter& r) {
    if (s != nullptr) api::streamer::RegisterStreamerRoutes(r, *s, max_json_body);
    if (s != nullptr && b != nullptr) api::streamer::RegisterBundleRoutes(r, *b, *s, max_json_body);
  };
}

DeployWiring::~DeployWiring() {
  if (artifacts_) artifacts_->Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  if (server_) server_->Stop();
  if (iscsi_) iscsi_->Stop();
}

// Detaching is a change to the volume's export rule, possibly by another process (`ingotd volume
// detach`); once a second is enough to notice it and end the connections, so the volume's lock is
// released and its writes flushed.
void DeployWiring::Watch() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
    lock.unlock();
    if (server_) {
      for (const std::string& name : server_->ActiveExports()) {
        if (!exports_->StillAttached(name)) {
          size_t n = server_->CloseExport(name);
          log::Info("nbd.detached", {{"export", name}, {"connections", static_cast<uint64_t>(n)}});
        }
      }
    }
    if (iscsi_) {
      for (const std::string& name : iscsi_->ActiveVolumes()) {
        if (!exports_->StillAttached(name)) {
          size_t n = iscsi_->CloseVolume(name);
          log::Info("iscsi.detached", {{"volume", name}, {"sessions", static_cast<uint64_t>(n)}});
        }
      }
    }
    lock.lock();
  }
}

int RunVolumeCommand(int argc, char** argv) {
  config::Config config;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kVolumeUsage, stdout);
      return 0;
    }
    if (a == "--config" || a == "--data-dir") {
      if (i + 1 >= argc) return VolumeFail(InvalidArgument(a + " needs a value"));
      std::string v = argv[++i];
      if (a == "--config") {
        if (Status s = config::LoadConfigFile(v, config); !s.ok()) return VolumeFail(s);
      } else {
        config.data_dir = v;
      }
      continue;
    }
    args.push_back(a);
  }
  if (args.empty()) {
    std::fputs(kVolumeUsage, stderr);
    return 2;
  }
  auto store = deploy::VolumeStore::Open(VolumesDir(config));
  if (!store.ok()) return VolumeFail(store.status());
  const std::string cmd = args[0];
  // NAME and --key value pairs after the command.
  std::string name;
  std::map<std::string, std::string> opts;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) == 0) {
      if (i + 1 >= args.size()) return VolumeFail(InvalidArgument(args[i] + " needs a value"));
      opts[args[i]] = args[i + 1];
      ++i;
    } else if (name.empty()) {
      name = args[i];
    } else {
      return VolumeFail(InvalidArgument("unexpected argument '" + args[i] + "'"));
    }
  }
  auto need_name = [&]() -> Status {
    return name.empty() ? InvalidArgument(cmd + " needs a volume NAME") : Status::Ok();
  };
  auto only = [&](std::initializer_list<const char*> allowed) -> Status {
    for (auto& [k, v] : opts) {
      bool ok = false;
      for (const char* a : allowed) ok |= k == a;
      if (!ok) return InvalidArgument("unknown option " + k + " for " + cmd);
    }
    return Status::Ok();
  };

  if (cmd == "create") {
    if (Status s = need_name(); !s.ok()) return VolumeFail(s);
    if (Status s = only({"--from", "--format", "--size", "--cluster-size"}); !s.ok()) {
      return VolumeFail(s);
    }
    deploy::CloneRequest req{.name = name};
    if (!opts.count("--from")) return VolumeFail(InvalidArgument("create needs --from IMAGE_FILE"));
    req.base_path = opts["--from"];
    if (opts.count("--format")) {
      req.format = formats::ParseFormatName(opts["--format"]);
      if (!req.format) return VolumeFail(InvalidArgument("unknown format " + opts["--format"]));
    }
    if (opts.count("--size") && !ParseSize(opts["--size"], req.size)) {
      return VolumeFail(InvalidArgument("--size must be a number of bytes"));
    }
    if (opts.count("--cluster-size")) {
      uint64_t cs = 0;
      if (!ParseSize(opts["--cluster-size"], cs) || cs > (1u << 31)) {
        return VolumeFail(InvalidArgument("--cluster-size must be a number of bytes"));
      }
      req.cluster_size = uint32_t(cs);
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto v = (*store)->Create(req);
    if (!v.ok()) return VolumeFail(v.status());
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    char took[32];
    std::snprintf(took, sizeof took, "\tclone_ms=%.1f", ms);
    PrintVolume(*v, took);
    return 0;
  }
  if (cmd == "list") {
    auto all = (*store)->List();
    if (!all.ok()) return VolumeFail(all.status());
    for (const auto& v : *all) PrintVolume(v);
    return 0;
  }
  if (cmd == "info") {
    if (Status s = need_name(); !s.ok()) return VolumeFail(s);
    auto v = (*store)->Get(name);
    if (!v.ok()) return VolumeFail(v.status());
    PrintVolume(*v);
    return 0;
  }
  if (cmd == "attach") {
    if (Status s = need_name(); !s.ok()) return VolumeFail(s);
    if (Status s = only({"--allow", "--initiator"}); !s.ok()) return VolumeFail(s);
    if (!opts.count("--allow")) {
      return VolumeFail(InvalidArgument("attach needs --allow ADDR[,ADDR...] (0.0.0.0/0 for anyone)"));
    }
    std::string rule_text = "allow=" + opts["--allow"];
    if (opts.count("--initiator")) rule_text += "\ninitiators=" + iscsi::LowerName(opts["--initiator"]);
    auto rule = deploy::ParseExportRule(rule_text);
    if (!rule.ok()) return VolumeFail(rule.status());
    rule->attached = true;
    if (Status s = (*store)->SetExportRule(name, *rule); !s.ok()) return VolumeFail(s);
    return 0;
  }
  if (cmd == "detach") {
    if (Status s = need_name(); !s.ok()) return VolumeFail(s);
    auto rule = (*store)->GetExportRule(name);
    if (!rule.ok()) return VolumeFail(rule.status());
    rule->attached = false;
    if (Status s = (*store)->SetExportRule(name, *rule); !s.ok()) return VolumeFail(s);
    return 0;
  }
  if (cmd == "delete") {
    if (Status s = need_name(); !s.ok()) return VolumeFail(s);
    if (Status s = (*store)->Delete(name); !s.ok()) return VolumeFail(s);
    return 0;
  }
  if (cmd == "personalise") {
    if (Status s = need_name(); !s.ok()) return VolumeFail(s);
    if (Status s = only({"--script", "--engine", "--name"}); !s.ok()) return VolumeFail(s);
    if (!opts.count("--script")) return VolumeFail(InvalidArgument("personalise needs --script FILE"));
    auto engine = deploy::guestfish::ParseEngine(opts.count("--engine") ? opts["--engine"] : "auto");
    if (!engine) return VolumeFail(InvalidArgument("--engine must be auto, native or guestfish"));
    std::FILE* f = std::fopen(opts["--script"].c_str(), "rb");
    if (!f) return VolumeFail(FromErrno(errno, "open " + opts["--script"]));
    std::string text;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
    auto volume = (*store)->OpenVolume(name);
    if (!volume.ok()) return VolumeFail(volume.status());
    const auto t0 = std::chrono::steady_clock::now();
    deploy::guestfish::Script script{opts.count("--name") ? opts["--name"] : opts["--script"], text};
    auto report = deploy::guestfish::Run(**volume, script, *engine);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!report.ok()) return VolumeFail(report.status());
    std::fputs(report->log.c_str(), stdout);
    std::fprintf(stderr, "engine=%s\tpersonalise_ms=%.1f\n",
                 std::string(deploy::guestfish::EngineName(report->used)).c_str(), ms);
    return 0;
  }
  return VolumeFail(InvalidArgument("unknown volume command '" + cmd + "' (see --help)"));
}

}  // namespace ingot
