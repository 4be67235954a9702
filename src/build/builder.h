// The image builder (Cray IMS's and Digital Rebar image-builder's job): recipes, jobs that build a
// root file system from a recipe, and the records of what they produced.
//
// A `create` job goes fetching_recipe -> waiting_for_repos -> building_image -> packaging_artifacts
// -> success (or error, with a reason). Its work is a chain of stages, each run as one sandboxed
// process (common/process.h: own mount and PID namespaces, clean environment, limits):
//   bootstrap   mmdebstrap --mode=root of the recipe's suite, variant and packages
//   pre steps   each recipe step of stage "pre", chrooted in the root (/proc, /sys, /dev bound)
//   files       the recipe's files written into the root
//   post steps  each step of stage "post"
//   packaging   SquashFS, kernel, initrd, kernel parameters, package list, DRP tarballs, disk
// Each stage's result is kept in the step cache under the hash of its inputs (the previous stage's
// hash, the stage's own definition, the archive's InRelease hash for the bootstrap): the bootstrap
// as a directory, every later stage as an overlayfs upper layer over the ones before. A rebuild
// whose inputs did not change reuses every stage and the outputs; a build that failed at stage N
// resumes at N. Every file's mtime is clamped to SOURCE_DATE_EPOCH (the suite's InRelease Date)
// after each stage, and archives are written sorted with fixed owners: the same recipe over the
// same package versions gives bit-identical outputs.
//
// `customize` jobs and enable_debug's SSH access to a failed build's root run on the same job
// threads (build/customize.h, build/jail.h).
//
// Downloaded packages are cached across builds (mmdebstrap's sync-in/sync-out of apt's archive
// directory), moved into the cache with rename(2), so concurrent builds never see a torn .deb.
//
// Several nodes (a PostgreSQL catalog shared by every ingotd): the records are shared, and each
// running job holds the catalog lease "build-job:<id>", renewed by the node's keeper thread. A job
// whose lease runs out — its node died or was stopped — is taken over by the first node whose
// keeper claims the lease, and built again from the start there (at most kMaxAttempts times; a
// customize job, which is a person's SSH session, ends in error instead). A node that loses a
// job's lease, or finds the job cancelled or deleted through another node, kills its run and
// leaves the record to whoever changed it. Recipe archives, artifacts and finished logs go to the
// shared store (build/shelf.h) so every node can read them.
//
// Threads: every public method is thread-safe. Each job runs on its own thread; at most
// `max_jobs` build at once, the others wait in `creating`.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "build/records.h"
#include "build/shelf.h"
#include "common/process.h"
#include "common/result.h"
#include "io/byte_source.h"

namespace ingot::service {
class ImageService;
}
namespace ingot::catalog {
class JobLeaseRepository;
}
namespace ingot::store {
class Store;
}

namespace ingot::build {

struct BuilderOptions {
  std::string dir;  // DATA_DIR/build: recipes/, jobs/, artifacts/, cache/
  std::string mirror = "http://deb.debian.org/debian";
  int max_jobs = 2;
  std::chrono::seconds job_timeout{3600};
  uint64_t max_recipe_archive = 64ull << 20;
  // Digital Rebar's files space: the DRP tarballs and their MANIFEST are published here
  // (the boot service's root, so booting machines fetch them); empty: not published.
  std::string files_dir;
  std::string files_subdir = "images/builder";
  // The UEFI boot loader put into bootable disks (Debian's systemd-boot-efi).
  std::string efi_loader = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
  // The SSH access of customize and enable_debug jobs (build/jail.h): Debian's openssh-server,
  // listening on `ssh_listen` (a free port per job); `ssh_host` is the name connection_info gives
  // users (empty: ssh_listen).
  std::string sshd = "/usr/sbin/sshd";
  std::string ssh_listen = "127.0.0.1";
  std::string ssh_host;
  // ---- Several nodes (see above). `leases` null: one node; unfinished jobs found at start are
  // marked interrupted instead of taken over.
  catalog::JobLeaseRepository* leases = nullptr;
  std::string node;                    // this node's name in the leases
  std::chrono::seconds job_lease{60};  // renewed every third of it
  store::Store* shelf_store = nullptr;  // where shared files go (build/shelf.h); null: dir only
};

class BuildService {
 public:
  // `images` (may be null): bootable disks are registered there as Image API images.
  BuildService(BuildRepository& repo, BuilderOptions options, service::ImageService* images);
  ~BuildService();

  // Removes work directories and half-written cache entries a previous run left. One node: marks
  // the jobs it left unfinished as error (with the reason). Several nodes: those are taken over
  // once their leases run out, by the keeper (StartKeeper). Call once before the API answers.
  Result<int> Recover();
  // Several nodes: starts the thread that renews this node's job leases, notices jobs cancelled or
  // deleted through other nodes, and takes over jobs whose lease ran out. A no-op without leases.
  void StartKeeper();
  // Cancels running jobs and waits for their threads. Several nodes: the jobs are not failed but
  // handed over (their leases released at once, so another node builds them).
  void Stop();

  // How many times a job is built before a node's death ends it in error.
  static constexpr int kMaxAttempts = 3;

  BuildRepository& repo() { return repo_; }
  const BuilderOptions& options() const { return options_; }

  // ---- Recipes ----
  Result<boost::json::object> CreateRecipe(const boost::json::object& body);
  Result<boost::json::object> PatchRecipe(const std::string& id, const boost::json::object& body);
  // Stores the recipe archive (a tgz) and checks it against the record's recipe_type and
  // template_dictionary: errors name the file and line. Sets the record's link {path, etag, type}.
  Result<boost::json::object> PutRecipeArchive(const std::string& id, io::Reader& body);
  // The archive's local path (fetched from the shared store when another node received it).
  Result<std::string> RecipeArchivePath(const std::string& id);

  // ---- Public keys ----
  Result<boost::json::object> CreatePublicKey(const boost::json::object& body);

  // ---- Images ----
  Result<boost::json::object> CreateImage(const boost::json::object& body);
  // IMS's PATCH: link, arch, and metadata operations [{operation: set|remove, key, value}].
  Result<boost::json::object> PatchImage(const std::string& id, const boost::json::object& body);
  // An artifact file of an image (rootfs, kernel, initrd, manifest.json, ...): its path.
  Result<std::string> ArtifactPath(const std::string& image_id, const std::string& name);
  // Puts every artifact file of the image into the shared store (after they changed).
  Status PublishArtifacts(const std::string& image_id);

  // ---- Jobs ----
  Result<boost::json::object> CreateJob(const boost::json::object& body);
  // Ends a running job (error, "cancelled"); a finished job is left as it is.
  Status CancelJob(const std::string& id);
  // DELETE: cancels first, then removes the record and its work directory.
  Status DeleteJob(const std::string& id);
  std::string JobLogPath(const std::string& id) const;
  // The log to read: here, or a finished job's from the shared store. kUnavailable while another
  // node runs the job (its log is there until the job ends).
  Result<std::string> JobLog(const std::string& id);
  // Whether the job is still running (its log may grow).
  bool JobRunning(const std::string& id);
  // Blocks until the job is finished or `timeout` passes; its record.
  Result<boost::json::object> WaitJob(const std::string& id, std::chrono::milliseconds timeout);

 private:
  struct Running;
  void RunJob(std::string id);
  // Stores the job and starts its thread; `leased`: this node already holds its lease (takeover).
  Result<boost::json::object> StartJob(boost::json::object job, bool leased = false);
  int64_t LeaseEnd(int64_t now) const;  // when a lease taken or renewed at `now` runs out
  void KeeperLoop();
  void KeepRunningJobs();  // renews leases, notices jobs ended elsewhere
  void TakeOverOrphans();  // claims jobs whose lease ran out
  Status EndJob(const std::string& id, const std::string& reason);
  static void WarnUnshared(const std::string& job, const Status& published);  // logs a failure
  Status Build(const std::string& id, Running& run);
  Status SetJob(const std::string& id, const std::function<void(boost::json::object&)>& change);
  Status SetStatus(const std::string& id, Running& run, const char* status);

  BuildRepository& repo_;
  const BuilderOptions options_;
  service::ImageService* images_;
  Shelf shelf_;
  std::thread keeper_;
  std::mutex mu_;  // guards running_, slots_, and read-modify-write of job records
  std::condition_variable slot_cv_;
  int slots_ = 0;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Running>> running_;
};

}  // namespace ingot::build
