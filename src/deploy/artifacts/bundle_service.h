// HPE Image Streamer's artifact bundles: the use cases behind /rest/artifact-bundles
// (api/streamer/bundles.cc). The bundle format is bundle.h; zips are read and written with libzip.
//
//  - Upload: the zip is written to `<dir>/bundles/.tmp-<id>` while it arrives, then checked whole
//    (every entry's name, its SHA-256 against SHA256SUM, sizes bounded by what the entry declares
//    and by `max_payload_bytes`, documents parsed, references resolvable), then renamed to
//    `<dir>/bundles/<id>.zip` and recorded (Kind::kArtifactBundle). A bundle that fails any check
//    is refused (kInvalidArgument) and nothing is kept.
//  - Extract: imports what a recorded bundle holds, all or nothing. As Image Streamer, what is
//    already there is not extracted again: an artifact whose name is taken by an identical one
//    (a plan script's type and content, a build plan's type and steps, a deployment plan's build
//    plan and golden image, a golden image's bytes) is reused. A name taken by a different
//    artifact is refused before anything is committed (kConflict naming each: rename or delete
//    the existing one; Image Streamer's UI offers to rename them instead). Documents are checked by
//    the ArtifactService's own rules through a staging repository that holds the new records in
//    memory; golden image payloads are streamed out of the zip (and out of the inner zip Image
//    Streamer wraps them in), checksummed and checked through formats/, and renamed into
//    `<dir>/golden/` before the records are written in one transaction. Any failure removes the
//    files it placed. A crash before the transaction leaves golden files without records, which
//    ArtifactService::Repair removes; a crash after it leaves the import complete. Imported
//    artifacts get new ids; golden images record `importedFromBundle`, `bundleName`, `bundleURI`; a
//    read-only bundle's artifacts are read-only.
//  - Create (export): the named artifacts plus what they depend on (a deployment plan's build plan
//    and golden image, a build plan's scripts) written as a bundle in Image Streamer's layout,
//    readable back by Extract (and by Image Streamer).
//  - Backups: a bundle of every artifact (Kind::kBackup); Restore replaces every artifact by a
//    backup's in one transaction (refused while a deployment runs; OS volumes keep their clones,
//    their records keep the old URIs).
//
// Extract, Create, CreateBackup and Restore are tasks (Kind::kTask, Image Streamer's shape) that
// end Completed or Error. With `background` (and Start() called) they are checked, recorded Running
// and returned at once while the worker does the work; otherwise they run on the caller's thread
// and return the ended task or the error. A task a crash interrupted is ended by
// ArtifactService::Repair. One bundle operation at a time. Threads: every method may be called from
// any thread.
#pragma once

#include <boost/json.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "deploy/artifacts/artifact_service.h"
#include "deploy/artifacts/bundle.h"
#include "deploy/artifacts/repository.h"
#include "io/byte_source.h"

namespace ingot::deploy::artifacts {

struct BundleOptions {
  std::string dir;  // the ArtifactService's dir: bundles/ and backups/ beside golden/
  uint64_t max_payload_bytes = uint64_t(1) << 40;  // one golden image, uncompressed
  uint64_t max_bundle_bytes = uint64_t(1) << 40;   // one upload
  // Told the ids of the golden images an extraction added, once they are recorded (the composition
  // root registers them as catalog images: ArtifactService::PublishToCatalog).
  std::function<void(const std::vector<std::string>& golden_ids)> golden_images_added;
};

class BundleService {
 public:
  // All must outlive this; `artifacts` shares `repo`, `volumes` and the ArtifactOptions.
  BundleService(DeployRepository& repo, VolumeStore& volumes, ArtifactOptions artifact_options,
                BundleOptions options);
  ~BundleService();  // Stop()
  void Start();      // the worker of background operations
  void Stop();  // waits for the operation under way; queued ones end at the next start's repair
  bool Idle();  // nothing queued or running (tests)

  // Removes unfinished uploads and bundle files without a record. Call before serving.
  Result<int> Repair();

  // Stores and checks an uploaded bundle; `name` empty = the manifest's. Returns the record.
  Result<boost::json::object> Upload(const std::string& name, io::Reader& zip, bool backup = false);
  // A task that ended Completed with `resource` (an upload, answered as Image Streamer does).
  Result<boost::json::object> RecordTask(const std::string& name, const std::string& owner,
                                         const boost::json::object& resource);
  // Imports a recorded bundle (see the top). Returns the task (Completed) or the error; the error
  // is also kept in a task, whose id is in `task_id` when one was made.
  Result<boost::json::object> Extract(const std::string& id, const std::string& owner,
                                      bool background = false);
  // Exports: {name, description, readOnly, planScripts|buildPlans|deploymentPlans|goldenImages:
  // [{resourceUri, readOnly}]} -> the task (its associatedResource the new bundle).
  Result<boost::json::object> Create(const boost::json::object& body, const std::string& owner,
                                     bool background = false);
  Result<boost::json::object> Rename(const std::string& id, const boost::json::object& body);
  Status Delete(const std::string& id, Kind kind = Kind::kArtifactBundle);
  // The zip of a bundle or backup.
  Result<std::string> PathOf(Kind kind, const std::string& id);

  // A backup of every artifact -> the task (its associatedResource the backup).
  Result<boost::json::object> CreateBackup(const std::string& owner, bool background = false);
  // Replaces every artifact by the backup's (the newest when `id` is empty).
  Result<boost::json::object> Restore(const std::string& id, const std::string& owner,
                                      bool background = false);

 private:
  struct Written {
    boost::json::object doc;
    std::string path;
  };
  using Operation = std::function<Result<boost::json::object>(const boost::json::object& task)>;
  Result<boost::json::object> Launch(boost::json::object task, bool background, Operation op);
  void Work();
  Result<boost::json::object> ExtractNow(const std::string& id, const boost::json::object& task);
  Result<boost::json::object> RestoreNow(const std::string& id, const boost::json::object& task);
  Result<boost::json::object> Finish(Kind kind, const boost::json::object& task, const Written& w);
  Result<Written> WriteBundle(Kind kind, const std::string& name, const std::string& description,
                              bool read_only, const std::vector<boost::json::object>& ps,
                              const std::vector<boost::json::object>& bp,
                              const std::vector<boost::json::object>& dp,
                              const std::vector<boost::json::object>& gi);
  boost::json::object NewTask(const std::string& name, const std::string& owner);
  Result<boost::json::object> EndTask(boost::json::object task, const Status& result,
                                      const boost::json::object& resource);

  DeployRepository& repo_;
  VolumeStore& volumes_;
  ArtifactOptions artifact_options_;
  BundleOptions options_;
  std::mutex mu_;  // one bundle operation at a time
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::function<void()>> queue_;
  bool running_ = false;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace ingot::deploy::artifacts
