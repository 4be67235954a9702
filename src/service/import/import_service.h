// Glance's interoperable image import: stage bytes, then import them (glance-direct), or have the
// server pull them (web-download, glance-download), or copy an active image to more stores
// (copy-image). Every import is a task (catalog/task.h) that worker threads claim from the catalog
// and run through the one ingest pipeline (service/ingest.h): the bytes stream from their source
// into every target store at once, hashed and inspected on the way.
//
// Statuses (catalog::Transition): stage moves queued -> uploading; an import moves queued|uploading
// -> importing -> active, or back to queued when it fails (staged bytes are kept, as Glance keeps
// them, unless the image was refused: then they are removed). copy-image leaves the image active.
// Progress is shown as Glance shows it, in the image properties os_glance_importing_to_stores and
// os_glance_failed_import.
//
// One import or copy of an image at a time: the catalog refuses a second live task for the image
// (kConflict), so two requests — or two nodes — cannot race. A node that dies mid-import loses
// its lease; the task is claimed again once the lease runs out and runs from the start.
//
// Thread safety: every public method may be called concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "catalog/tasks.h"
#include "fetch/fetch.h"
#include "service/image_service.h"

namespace ingot::service {

struct ImportOptions {
  // The methods offered (GET /v2/info/import), in Glance's order.
  std::vector<std::string> methods = {"glance-direct", "web-download", "copy-image",
                                      "glance-download"};
  uint64_t staging_cap = 1ull << 40;  // bytes one image may stage
  int workers = 2;                    // imports run at once on this node
  std::string node;                   // this node's name in task leases
  std::chrono::milliseconds lease{30000};
  std::chrono::milliseconds poll{1000};  // how often idle workers look for other nodes' tasks
  std::chrono::hours task_ttl{48};       // Glance's task_time_to_live
  // The content must be what disk_format says (Glance's require_image_format_match).
  bool require_image_format_match = true;
  // "raw": glance-direct imports of qcow2, VMDK, VHD(X) and VDI images are stored as raw disks
  // (disk_format becomes raw; os_glance_converted_from says what it was). "": stored as they came.
  std::string convert_to;
  // A converted image's original bytes kept as an image of their own (same owner and name, its
  // own disk_format, property ingot_original_of = the converted image's id; the converted image
  // gets ingot_original_image = its id), in the first store the import wrote to.
  bool keep_original = false;
  // Images that arrive gzip, zstd, xz or bzip2 compressed are stored decompressed (not when the
  // image's container_format is "compressed": that one is kept as it came).
  bool decompress = true;
  // web-download and glance-download fetches ([import_filtering_opts] and limits).
  fetch::FetchOptions fetch;
  // glance-download: region name -> Image API endpoint ("http://host:9292").
  std::map<std::string, std::string> glance_regions;
  // glance-download: the remote's properties whose names start with one of these are copied onto the
  // image, over its own values (Glance's [glance_download_properties] extra_properties).
  std::vector<std::string> glance_download_properties = {"hw_", "trait:", "os_distro",
                                                         "os_secure_boot", "os_type"};
  // Glance's inject_image_metadata plugin: properties set on every imported image, unless the
  // requester holds one of `inject_ignore_roles` (Glance's ignore_user_roles, default admin).
  std::map<std::string, std::string> inject;
  std::vector<std::string> inject_ignore_roles = {"admin"};
};

// The body of POST /v2/images/{id}/import, parsed.
struct ImportRequest {
  std::string method;
  std::optional<std::string> uri;  // web-download
  std::optional<std::string> glance_region, glance_image_id, glance_service_interface;
  std::vector<std::string> stores;  // named targets (or X-Image-Meta-Store); empty: default store
  bool all_stores = false;
  bool all_stores_must_succeed = true;
};

// Who asked, recorded in the task.
struct Requester {
  std::optional<std::string> project;
  std::optional<std::string> user;
  std::vector<std::string> roles;
  std::string request_id;
  // Passed on to glance-download's remote endpoint. Kept in memory only, never in the catalog: a
  // task another node takes over runs without it.
  std::string token;
};

class ImportService {
 public:
  // `staging` holds staged bytes under the image id; it is not one of the image stores.
  ImportService(ImageService& images, catalog::TaskRepository& tasks, store::Store& staging,
                ImportOptions options);
  ~ImportService();  // stops the workers (running imports are abandoned to their leases)

  // Starts the worker threads. Call once, after ImageService::Repair.
  void Start();
  void Stop();

  const ImportOptions& options() const { return options_; }

  // PUT /v2/images/{id}/stage: queued -> uploading, the bytes into the staging area (inspected on
  // the way: a hostile image is refused at once and nothing is kept). On failure the image goes
  // back to queued. kConflict unless queued; kTooLarge past staging_cap.
  Result<catalog::Image> Stage(const catalog::Image& image, io::Reader& body,
                               std::optional<uint64_t> content_length,
                               std::optional<std::string> expected_md5 = std::nullopt);

  // POST /v2/images/{id}/import: checks the request as Glance does (400/409 with Glance's
  // messages), records the task and moves the image to importing (copy-image: it stays active).
  // nullopt when there is nothing to do (copy-image with all_stores and every store has a copy).
  Result<std::optional<catalog::Task>> Import(const catalog::Image& image,
                                              const ImportRequest& request,
                                              const Requester& requester);

  // Tasks: kNotFound "Task with identifier x not found" (also for a task the viewer may not see).
  Result<catalog::Task> GetTask(const std::string& id, const catalog::Viewer& viewer);
  Result<std::vector<catalog::Task>> ListTasks(const catalog::Viewer& viewer, int limit);
  Result<std::vector<catalog::Task>> ListImageTasks(const catalog::Image& image);

  // Start-up repair of the staging area: staged bytes of images that are no longer uploading or
  // importing are removed, as are temporary files. Returns how many objects were removed.
  Result<int> RepairStaging();

  // Runs one claimable task on the caller's thread, if there is one; for tests. True if it ran one.
  Result<bool> RunOnce();

 private:
  void WorkerLoop();
  void Wake();
  // Runs a claimed task to its end and records the outcome.
  void Execute(catalog::Task task);
  Status RunImport(catalog::Task& task, std::string* result_json);
  void KeepOriginal(const catalog::Image& converted, const std::string& format,
                    const std::string& store_id);
  Status DecompressIfAsked(const catalog::Image& image, std::unique_ptr<io::Reader>& source,
                           std::optional<uint64_t>& length) const;
  Status FinishTask(catalog::Task task, const Status& outcome, const std::string& result_json);
  Result<std::vector<store::Store*>> TargetStores(const catalog::Image& image,
                                                  const ImportRequest& request) const;

  ImageService& images_;
  catalog::TaskRepository& tasks_;
  store::Store& staging_;
  ImportOptions options_;

  // Renews the leases of the tasks this node runs, every lease/3, whatever their bytes are doing
  // (a slow source must not lose its task); marks a task whose lease was taken over as lost.
  void HeartbeatLoop();

  std::mutex mu_;
  std::map<std::string, std::string> tokens_;  // task id -> the requester's token
  // Tasks running here -> "the lease was lost": the worker stops at its next progress check.
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> running_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint64_t wakeups_ = 0;
  std::vector<std::thread> workers_;
  std::thread heartbeat_;
  std::atomic<int64_t> last_purge_{0};
};

// The import request as stored in a task's input, and back.
std::string ImportInputJson(const std::string& image_id, const ImportRequest& request,
                            const std::vector<std::string>& stores);
Result<ImportRequest> ParseImportInput(const std::string& json, std::string* image_id);

}  // namespace ingot::service
