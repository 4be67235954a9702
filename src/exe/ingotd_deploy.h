// ingotd's wiring of the deploy engine's foundation: the OS volume store under [deploy] volumes_dir,
// its volumes served over NBD on [deploy] nbd_listen and over iSCSI on [deploy] iscsi_listen, and the
// `ingotd volume …` commands that manage volumes until the deploy engine's REST API arrives.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "api/route.h"
#include "config/config.h"
#include "deploy/artifacts/artifact_service.h"
#include "deploy/artifacts/bundle_service.h"
#include "deploy/volume_exports.h"
#include "deploy/volume_store.h"
#include "iscsi/server.h"
#include "nbd/server.h"
#include "service/image_service.h"

namespace ingot {

class DeployWiring {
 public:
  // Opens the volume store (removing what a crash left) and, when nbd_listen / iscsi_listen is set,
  // starts the NBD server / iSCSI target and the watcher that ends the connections of volumes
  // detached meanwhile.
  static Result<std::unique_ptr<DeployWiring>> Start(const config::Config& config);
  ~DeployWiring();  // stops the server (connections closed, volumes flushed)

  deploy::VolumeStore& store() { return *store_; }
  nbd::Server* nbd_server() { return server_.get(); }
  iscsi::Server* iscsi_server() { return iscsi_.get(); }

  // HPE Image Streamer's artifacts (deploy/artifacts/): records in the catalog file (component
  // "deploy"), golden images and deploy logs under <data_dir>/deploy, crash repair, the deployment
  // worker. `images`: where golden images made from catalog images are read, and where the others
  // are registered as images too (read and written as an administrator: the /rest API is an
  // operators' API by policy).
  Status StartArtifacts(const config::Config& config, service::ImageService& images);
  // The /rest/... routes (api/streamer/), for AppDeps::route_sets.
  std::function<void(api::ApiRouter&)> ApiRoutes(size_t max_json_body);

 private:
  DeployWiring() = default;
  void Watch();

  std::unique_ptr<deploy::VolumeStore> store_;
  std::unique_ptr<deploy::artifacts::DeployRepository> repo_;
  std::unique_ptr<deploy::artifacts::ArtifactService> artifacts_;
  std::unique_ptr<deploy::artifacts::BundleService> bundles_;  // /rest/artifact-bundles
  std::unique_ptr<deploy::VolumeExports> exports_;
  // One writer per volume across NBD and iSCSI: both servers claim here.
  nbd::WriterClaims writers_;
  std::unique_ptr<nbd::Server> server_;
  std::unique_ptr<iscsi::Server> iscsi_;
  std::thread watcher_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

// `ingotd volume SUBCOMMAND …` (argv[0] is "volume"): create, list, info, delete, attach, detach.
// Works on the store directly (the daemon may be running: every change is an atomic file operation).
// Returns the process exit status.
int RunVolumeCommand(int argc, char** argv);

}  // namespace ingot
