// HPE Image Streamer's artifacts over Ingot's OS volumes: the use cases behind /rest/plan-scripts,
// /rest/build-plans, /rest/golden-images, /rest/deployment-plans, /rest/os-volumes and
// /rest/tasks (api/streamer/). The only writer of the deploy records (repository.h).
//
//  - Plan scripts: guestfish text of type deploy, capture or general; custom attributes
//    (attributes.h) only in deploy scripts. hpProvided or readOnly ones are not changed or deleted
//    (409) unless forced.
//  - Build plans: ordered steps naming plan scripts (deploy plans take deploy and general scripts,
//    capture plans capture and general ones) and the declarations of their attributes.
//  - Golden images: a file under `<dir>/golden/`, from a catalog image, an upload or a capture of
//    an OS volume through a capture build plan (capture.h), with size,
//    SHA-256 checksum and format; checked through formats/ before it is accepted.
//  - Deployment plans: a deploy build plan, optionally a golden image, attribute overrides.
//  - OS volumes: POST validates everything (values against types and constraints, 400 naming the
//    attribute) before anything is cloned, records the volume "Deploying" with a task, and a worker
//    clones the golden image (VolumeStore::Create; an empty volume of VolumeSize MiB without one),
//    runs the build plan's scripts in order (guestfish/engine.h), then attaches it. A failed
//    script deletes the clone, so no half-made volume is ever served; the task says which script,
//    line and why. Passwords exist only in memory between the request and the volume: they are
//    not stored in records or tasks, and logs and errors are scrubbed of them.
//
// Delete rules, as Image Streamer's: a read-only artifact, a plan script a build plan uses, a
// build plan or golden image a deployment plan uses, a deployment plan an OS volume uses: 409
// naming the user.
//
// Crash safety: records are written in single transactions; a golden image's file is renamed into
// place before its record is written (Repair removes files without a record). A deployment a
// crash interrupted is undone by Repair: its clone is deleted and its task ends in Error ("ended
// by a restart"): the passwords it needed are gone, so it cannot be resumed.
//
// Threads: every method may be called from any thread.
#pragma once

#include <boost/json.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "deploy/artifacts/repository.h"
#include "deploy/guestfish/engine.h"
#include "deploy/volume_store.h"
#include "io/byte_source.h"

namespace ingot::deploy::artifacts {

// A catalog image's bytes, for golden images made from one (the composition root opens them
// through the image service, which lives above the deploy engine).
struct CatalogImage {
  std::string name;
  std::unique_ptr<io::ByteSource> bytes;
};
using CatalogImageOpener = std::function<Result<CatalogImage>(const std::string& image_id)>;

// Golden images are Image API images too, so one catalog holds them. One made from a catalog image
// keeps that image's id; any other (an upload, a capture, a bundle's) is registered as a new image
// holding the same bytes through `publish` (the composition root: the image service), which
// answers the new image's id; its record keeps it as `imageId`, and deleting the golden image
// deletes that image through `remove`. A failed or interrupted registration is logged and leaves
// the golden image without an `imageId`; it is never refused for it.
struct GoldenImageFile {
  std::string golden_id;
  std::string name;
  std::string path;
  std::string disk_format;  // Glance's name: raw, qcow2, vmdk, vhd, vhdx, vdi
  uint64_t size = 0;
};
struct CatalogPublisher {
  std::function<Result<std::string>(const GoldenImageFile&)> publish;
  std::function<Status(const std::string& image_id)> remove;
};

struct ArtifactOptions {
  std::string dir;  // golden images (golden/) and deploy logs (logs/)
  guestfish::Engine engine = guestfish::Engine::kAuto;
  // Who may reach a freshly deployed volume over NBD when the request names nobody.
  std::vector<std::string> default_allow = {"0.0.0.0/0", "::/0"};
};

class ArtifactService {
 public:
  // `repo` and `volumes` must outlive this. `catalog` may be null (no golden images from images).
  ArtifactService(DeployRepository& repo, VolumeStore& volumes, ArtifactOptions options,
                  CatalogImageOpener catalog);
  ~ArtifactService();  // Stop()

  struct RepairReport {
    int deployments_undone = 0;
    int files_removed = 0;
    int captures_undone = 0;
  };
  // Undoes what a crash interrupted (see the top). Call before Start().
  Result<RepairReport> Repair();
  // Golden images not made from a catalog image become catalog images too (see the top). Call
  // before Start(); without it golden images stay in the deploy records only.
  void SetCatalogPublisher(CatalogPublisher publisher) { publisher_ = std::move(publisher); }
  // Registers the recorded golden image `id` as a catalog image if it is not one yet (for golden
  // images recorded by others: bundle extraction). Failures are logged.
  void PublishToCatalog(const std::string& id);
  void Start();  // the deployment worker
  void Stop();   // waits for the deployment under way

  // ---- Reading (documents as the API shows them)
  Result<boost::json::object> Get(Kind kind, const std::string& id);
  Result<std::vector<boost::json::object>> List(Kind kind);

  // ---- Plan scripts
  Result<boost::json::object> CreatePlanScript(const boost::json::object& body);
  Result<boost::json::object> UpdatePlanScript(const std::string& id,
                                               const boost::json::object& body, bool force);
  Status DeletePlanScript(const std::string& id, bool force);
  Result<boost::json::object> CopyPlanScript(const std::string& id, const std::string& name);
  // A line diff of the script's content against `content` (or another script's, "planScriptUri").
  Result<boost::json::object> PlanScriptDifferences(const std::string& id,
                                                    const boost::json::value& body);
  // The build plans that use the script: [{name, uri, readOnly}].
  Result<boost::json::array> PlanScriptUsedBy(const std::string& id);

  // ---- Build plans
  Result<boost::json::object> CreateBuildPlan(const boost::json::object& body);
  Result<boost::json::object> UpdateBuildPlan(const std::string& id,
                                              const boost::json::object& body, bool force);
  Status DeleteBuildPlan(const std::string& id, bool force);

  // ---- Golden images
  // From a catalog image: {"name", "description", "imageId", "readOnly", "bundleName"}.
  Result<boost::json::object> CreateGoldenImage(const boost::json::object& body);
  // From uploaded bytes (any format formats/ reads).
  Result<boost::json::object> UploadGoldenImage(const std::string& name,
                                                const std::string& description,
                                                io::Reader& bytes);
  Result<boost::json::object> UpdateGoldenImage(const std::string& id,
                                                const boost::json::object& body, bool force);
  Status DeleteGoldenImage(const std::string& id, bool force);
  // The file of a golden image (for download).
  Result<std::string> GoldenImagePath(const std::string& id);
  // Image Streamer's /rest/golden-images/archive/{id}: how the golden image came to be, as text —
  // its record's facts and, for a captured one, its capture task's progress and plan script log.
  Result<std::string> GoldenImageArchive(const std::string& id);
  // Capture (capture.cc): {"name", "description", "osVolumeURI", "buildPlanUri"} (a capture build
  // plan; Ingot's "engine" optional). Validates (409 while the volume is in use over NBD), records
  // a task and queues the capture; the golden image's record exists only once it is complete.
  Result<boost::json::object> CaptureGoldenImage(const boost::json::object& body,
                                                 const std::string& owner);

  // ---- Deployment plans
  Result<boost::json::object> CreateDeploymentPlan(const boost::json::object& body);
  Result<boost::json::object> UpdateDeploymentPlan(const std::string& id,
                                                   const boost::json::object& body, bool force);
  Status DeleteDeploymentPlan(const std::string& id, bool force);
  // The OS volumes made from the plan: [{name, uri, state}].
  Result<boost::json::array> DeploymentPlanUsedBy(const std::string& id);

  // ---- OS volumes and tasks
  // Validates, records, queues; returns the task. `owner`: who asked (the task's owner).
  Result<boost::json::object> CreateOsVolume(const boost::json::object& body,
                                             const std::string& owner);
  // Redeploys an OS volume (id or name): its clone is made again from the deployment plan (the
  // volume's own, or body's "deploymentPlanUri") and personalised again with its recorded values
  // overlaid by body's "customAttributes" (passwords, never recorded, must be given again); "allow"
  // and "engine" as for a new one. The volume's old contents are gone; a failure leaves it Failed
  // and unserved. 409 while it is deploying. Returns the task.
  Result<boost::json::object> RedeployOsVolume(const std::string& id, const boost::json::object& body,
                                               const std::string& owner);
  Status DeleteOsVolume(const std::string& id);
  // Attach (serve over NBD and iSCSI to `allow`, or the default list when empty; over iSCSI only to
  // the initiator names in `initiators` when it is not empty) or detach.
  Result<boost::json::object> SetAttached(const std::string& id, bool attached,
                                          const std::vector<std::string>& allow,
                                          const std::vector<std::string>& initiators = {});
  // The deploy log of a volume (id or name).
  Result<std::string> DeployLogPath(const std::string& id_or_name);
  // True when no deployment is queued or running (tests).
  bool Idle();

 private:
  struct Job {
    std::string task_id;
    std::string volume_id;
    std::string volume_name;
    std::string base_path;     // "" for an empty volume
    uint64_t size = 0;         // bytes; 0 = the golden image's
    bool attach = true;
    std::vector<std::string> allow;
    guestfish::Engine engine = guestfish::Engine::kAuto;
    std::vector<guestfish::Script> scripts;  // substituted: may hold passwords
    std::vector<std::string> secrets;        // the passwords among the values, for scrubbing
    std::function<void()> run;               // other work (a capture): run instead of the above
    bool replace = false;                    // a redeploy: detach and delete the old clone first
    std::vector<std::string> initiators;     // iSCSI names it is attached to (a redeploy keeps them)
  };
  // A deployment checked and its scripts substituted, before anything is recorded.
  struct Prepared {
    Job job;
    boost::json::object dp, bp, gi;  // deployment plan, build plan, golden image (may be empty)
    boost::json::array shown;        // the values as records show them (no passwords)
    size_t steps = 0;
  };
  Result<Prepared> PrepareDeployment(const boost::json::object& body, const std::string& name);
  Result<boost::json::object> RecordAndQueue(boost::json::object volume, boost::json::object task,
                                             Job job);
  void Work();
  void RunJob(Job& job);
  Status FinishJob(const Job& job, const Status& failure, const std::string& failed_script);
  Result<std::string> EmptyBase();
  struct CaptureJob;
  void RunCapture(const CaptureJob& job);            // capture.cc
  Status RepairCaptures(RepairReport& report);        // capture.cc
  Result<std::string> InstallGoldenFile(const std::string& tmp, boost::json::object& doc);
  // Registers the stored golden image `id` as a catalog image (CatalogPublisher) and records the
  // image's id in it; returns the document as it then is.
  boost::json::object PublishToCatalog(boost::json::object doc);
  Result<boost::json::object> CheckPlanScript(const boost::json::object& body,
                                              boost::json::object doc);
  Result<boost::json::object> CheckBuildPlan(const boost::json::object& body,
                                             boost::json::object doc);
  Result<boost::json::object> CheckDeploymentPlan(const boost::json::object& body,
                                                  boost::json::object doc);
  // The record a URI or id names ("/rest/plan-scripts/<id>" or "<id>").
  Result<boost::json::object> Resolve(Kind kind, std::string_view uri_or_id);

  DeployRepository& repo_;
  VolumeStore& volumes_;
  ArtifactOptions options_;
  CatalogImageOpener catalog_;
  CatalogPublisher publisher_;
  std::mutex write_mu_;  // one change at a time: delete rules read, then write
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool running_job_ = false;
  bool stop_ = false;
  std::thread worker_;
};

// "/rest/plan-scripts" etc.
std::string_view CollectionUri(Kind kind);

}  // namespace ingot::deploy::artifacts
