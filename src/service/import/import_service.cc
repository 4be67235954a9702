#include "service/import/import_service.h"

#include <algorithm>
#include <boost/json.hpp>
#include <set>

#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"
#include "formats/format.h"
#include "io/adapters.h"
#include "io/decompress.h"
#include "service/format_match.h"

namespace ingot::service {

namespace json = boost::json;
using catalog::Image;
using catalog::ImageEvent;
using catalog::ImageStatus;
using catalog::Task;
using catalog::TaskStatus;

namespace {

constexpr const char* kImportingTo = "os_glance_importing_to_stores";
constexpr const char* kFailedImport = "os_glance_failed_import";

int64_t Micros(std::chrono::milliseconds d) { return int64_t{d.count()} * 1000; }

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Adds `stores` to the comma-separated list in property `key`, or removes them.
void ListProperty(Image& im, const char* key, const std::vector<std::string>& stores, bool add) {
  std::vector<std::string> now = Split(im.properties[key]);
  for (const auto& s : stores) {
    auto it = std::find(now.begin(), now.end(), s);
    if (add && it == now.end()) now.push_back(s);
    if (!add && it != now.end()) now.erase(it);
  }
  im.properties[key] = Join(now);
}

bool IsCopy(const ImportRequest& r) { return r.method == "copy-image"; }

// Attributes an Image API document carries that are not the image's own free-form properties:
// glance-download copies only the latter (and never the reserved os_glance_ ones).
bool IsCoreAttribute(std::string_view key) {
  static const std::set<std::string_view> kCore = {"id",
                                                   "name",
                                                   "status",
                                                   "visibility",
                                                   "protected",
                                                   "os_hidden",
                                                   "owner",
                                                   "disk_format",
                                                   "container_format",
                                                   "size",
                                                   "virtual_size",
                                                   "min_disk",
                                                   "min_ram",
                                                   "checksum",
                                                   "os_hash_algo",
                                                   "os_hash_value",
                                                   "created_at",
                                                   "updated_at",
                                                   "tags",
                                                   "self",
                                                   "file",
                                                   "schema",
                                                   "locations",
                                                   "stores",
                                                   "direct_url"};
  return kCore.count(key) != 0 || key.substr(0, 10) == "os_glance_";
}

// A descriptor read to its end, owned for as long as it is read (copy-image from a local store).
class OwnedFdReader final : public io::Reader {
 public:
  explicit OwnedFdReader(io::UniqueFd fd)
      : fd_(std::move(fd)), reader_(fd_.get(), "the image's stored copy") {}
  Result<size_t> Read(std::span<uint8_t> buf) override { return reader_.Read(buf); }

 private:
  io::UniqueFd fd_;
  io::FdReader reader_;
};

}  // namespace

// ---- The task input ----

std::string ImportInputJson(const std::string& image_id, const ImportRequest& r,
                            const std::vector<std::string>& stores) {
  json::object method{{"name", r.method}};
  if (r.uri) method["uri"] = *r.uri;
  if (r.glance_region) method["glance_region"] = *r.glance_region;
  if (r.glance_image_id) method["glance_image_id"] = *r.glance_image_id;
  if (r.glance_service_interface) method["glance_service_interface"] = *r.glance_service_interface;
  json::object req{{"method", std::move(method)},
                   {"all_stores", r.all_stores},
                   {"all_stores_must_succeed", r.all_stores_must_succeed}};
  json::array backend;
  for (const auto& s : stores) backend.emplace_back(s);
  if (!r.stores.empty()) {
    json::array named;
    for (const auto& s : r.stores) named.emplace_back(s);
    req["stores"] = std::move(named);
  }
  // Glance's shape: {"image_id", "import_req", "backend"}.
  return json::serialize(json::object{
      {"image_id", image_id}, {"import_req", std::move(req)}, {"backend", std::move(backend)}});
}

Result<ImportRequest> ParseImportInput(const std::string& text, std::string* image_id) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return Corruption("task input is not a JSON object");
  const json::object& o = v.as_object();
  auto str = [](const json::object& obj, const char* k) -> std::optional<std::string> {
    auto it = obj.find(k);
    if (it == obj.end() || !it->value().is_string()) return std::nullopt;
    return std::string(it->value().as_string());
  };
  auto id = str(o, "image_id");
  const json::value* req = o.if_contains("import_req");
  if (!id || req == nullptr || !req->is_object()) return Corruption("task input lacks fields");
  *image_id = *id;
  const json::object& ro = req->as_object();
  const json::value* m = ro.if_contains("method");
  if (m == nullptr || !m->is_object()) return Corruption("task input lacks the method");
  ImportRequest r;
  r.method = str(m->as_object(), "name").value_or("");
  r.uri = str(m->as_object(), "uri");
  r.glance_region = str(m->as_object(), "glance_region");
  r.glance_image_id = str(m->as_object(), "glance_image_id");
  r.glance_service_interface = str(m->as_object(), "glance_service_interface");
  if (const json::value* b = ro.if_contains("all_stores"); b && b->is_bool()) {
    r.all_stores = b->as_bool();
  }
  if (const json::value* b = ro.if_contains("all_stores_must_succeed"); b && b->is_bool()) {
    r.all_stores_must_succeed = b->as_bool();
  }
  // The stores resolved when the import was accepted are the ones to write.
  if (const json::value* b = o.if_contains("backend"); b && b->is_array()) {
    for (const auto& s : b->as_array()) {
      if (s.is_string()) r.stores.emplace_back(s.as_string());
    }
  }
  return r;
}

// ---- Service ----

ImportService::ImportService(ImageService& images, catalog::TaskRepository& tasks,
                             store::Store& staging, ImportOptions options)
    : images_(images), tasks_(tasks), staging_(staging), options_(std::move(options)) {
  if (options_.node.empty()) options_.node = "ingotd-" + NewUuid();
}

ImportService::~ImportService() { Stop(); }

void ImportService::Start() {
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
}

void ImportService::HeartbeatLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.lease / 3, [&] { return stopping_; });
    if (stopping_) return;
    auto running = running_;
    lock.unlock();
    const int64_t until = NowMicros() + Micros(options_.lease);
    for (const auto& [id, lost] : running) {
      Status s = tasks_.RenewLease(id, options_.node, until);
      if (s.code() == Code::kConflict || s.code() == Code::kNotFound) {
        log::Warn("import.lease_lost", {{"task", id}});
        lost->store(true);
      } else if (!s.ok()) {
        log::Warn("import.lease_renew_failed", {{"task", id}, {"error", s.ToString()}});
      }
    }
    lock.lock();
  }
}

void ImportService::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  if (heartbeat_.joinable()) heartbeat_.join();
}

void ImportService::Wake() {
  {
    std::lock_guard lock(mu_);
    ++wakeups_;
  }
  wake_.notify_all();  // the heartbeat waits on the same variable; an idle worker must see this
}

Result<Image> ImportService::Stage(const Image& image, io::Reader& body,
                                   std::optional<uint64_t> content_length,
                                   std::optional<std::string> expected_md5) {
  if (content_length && *content_length > options_.staging_cap) {
    return TooLarge("Image exceeds the staging limit: the data is " +
                    std::to_string(*content_length) + " bytes, the limit is " +
                    std::to_string(options_.staging_cap) + " bytes.");
  }
  // The project's image_stage_total and image_count_uploading (service/quota.h).
  std::optional<uint64_t> quota_left;
  if (images_.quotas() != nullptr) {
    INGOT_ASSIGN_OR_RETURN(quota_left,
                           images_.quotas()->Allowance(image.owner, content_length, true));
  }
  INGOT_ASSIGN_OR_RETURN(Image staged, images_.Mutate(image, [](Image& im) {
    return Transition(im, ImageEvent::kStage);
  }));
  // Bytes of an earlier stage that failed after its commit are replaced.
  (void)staging_.Delete(staged.id);
  IngestOptions opts = images_.ingest_options();
  opts.size_cap = std::min(opts.size_cap, options_.staging_cap);
  if (quota_left) opts.size_cap = std::min(opts.size_cap, *quota_left);
  opts.expected_md5 = std::move(expected_md5);
  opts.digests = false;
  auto in = Ingest(body, content_length, {&staging_}, staged.id, opts);
  if (!in.ok()) {
    auto reverted =
        images_.Mutate(staged, [](Image& im) { return Transition(im, ImageEvent::kAbortImport); });
    if (!reverted.ok() && reverted.status().code() != Code::kNotFound) {
      log::Warn("stage.revert_failed",
                {{"image", staged.id}, {"error", reverted.status().ToString()}});
    }
    return in.status();
  }
  // Glance shows the staged size; checksums are computed again by the import, from these bytes.
  auto recorded = images_.Mutate(staged, [&](Image& im) -> Status {
    if (im.status() != ImageStatus::kUploading) return Conflict("Image " + im.id + " moved on");
    im.size = in->bytes;
    if (in->info) im.virtual_size = in->info->virtual_size;
    return Status::Ok();
  });
  if (!recorded.ok()) {
    (void)staging_.Delete(staged.id);
    return recorded.status();
  }
  return recorded;
}

Result<std::vector<store::Store*>> ImportService::TargetStores(const Image& image,
                                                               const ImportRequest& r) const {
  const store::StoreSet& set = images_.stores();
  std::vector<store::Store*> out;
  auto has_copy = [&](const std::string& id) {
    return std::any_of(image.locations.begin(), image.locations.end(),
                       [&](const catalog::Location& l) { return l.store == id; });
  };
  if (r.all_stores) {
    for (const auto& d : set.Describe()) {
      if (d.read_only) continue;
      if (IsCopy(r) && has_copy(d.id)) continue;  // Glance skips stores that hold a copy
      out.push_back(set.Find(d.id));
    }
    return out;
  }
  if (r.stores.empty()) {
    if (IsCopy(r)) return InvalidArgument("copy-image needs the stores to copy to.");
    out.push_back(&set.default_store());
    return out;
  }
  for (const auto& id : r.stores) {
    auto store = set.ForWriting(id);
    if (!store.ok()) {
      return store.status().code() == Code::kNotFound ? InvalidArgument(store.status().message())
                                                      : store.status();
    }
    if (IsCopy(r) && has_copy(id)) {
      return InvalidArgument("Image is already present at store '" + id + "'");
    }
    if (std::find(out.begin(), out.end(), *store) == out.end()) out.push_back(*store);
  }
  return out;
}

Result<std::optional<Task>> ImportService::Import(const Image& image, const ImportRequest& r,
                                                  const Requester& who) {
  if (std::find(options_.methods.begin(), options_.methods.end(), r.method) ==
      options_.methods.end()) {
    return InvalidArgument("Import method " + r.method + " is not valid; this cloud offers " +
                           Join(options_.methods) + ".");
  }
  // Glance's checks, in Glance's order and words.
  const ImageStatus st = image.status();
  if (st == ImageStatus::kActive && !IsCopy(r)) {
    return Conflict("Image with status active cannot be target for import");
  }
  if (st != ImageStatus::kActive && IsCopy(r)) {
    return Conflict("Only images with status active can be targeted for copying");
  }
  if (st != ImageStatus::kQueued && (r.method == "web-download" || r.method == "glance-download")) {
    return Conflict("Image needs to be in 'queued' state to use '" + r.method + "' method");
  }
  if (st != ImageStatus::kUploading && r.method == "glance-direct") {
    return Conflict("Image needs to be staged before 'glance-direct' method can be used");
  }
  if (!image.container_format) return Conflict("'container_format' needs to be set before import");
  if (!image.disk_format) return Conflict("'disk_format' needs to be set before import");
  if (r.method == "web-download") {
    if (!r.uri) return InvalidArgument("web-download needs a 'uri' in the method.");
    if (auto checked = fetch::CheckUrl(*r.uri, options_.fetch.filter); !checked.ok()) {
      return InvalidArgument("URI for web-download does not pass filtering: " + *r.uri + " (" +
                             checked.status().message() + ")");
    }
  }
  if (r.method == "glance-download") {
    if (!r.glance_region) {
      return InvalidArgument("'glance_region' needs to be set for glance-download import method");
    }
    if (!r.glance_image_id) {
      return InvalidArgument("'glance_image_id' needs to be set for glance-download import method");
    }
    if (!IsUuid(*r.glance_image_id)) {
      return InvalidArgument("Remote image id does not look like a UUID: " + *r.glance_image_id);
    }
    // An unknown region is not refused here: Glance accepts the request (202) and the task fails
    // (tempest's test_image_glance_download_import_bad_endpoint).
  }
  INGOT_ASSIGN_OR_RETURN(std::vector<store::Store*> targets, TargetStores(image, r));
  if (targets.empty()) return std::optional<Task>();  // copy-image: every store has a copy
  std::vector<std::string> ids;
  for (store::Store* s : targets) ids.push_back(s->id());

  Task task;
  task.id = NewUuid();
  task.input = ImportInputJson(image.id, r, ids);
  task.owner = who.project;
  task.user_id = who.user;
  task.request_id = who.request_id;
  task.image_id = image.id;
  task.created_at = task.updated_at = NowMicros();
  // Born leased to this node, so that no worker runs it before the image has moved (below). A crash
  // in between leaves a lease that runs out; the node taking the task over moves the image then.
  task.status = TaskStatus::kProcessing;
  task.lease_owner = options_.node;
  task.lease_until = task.created_at + Micros(options_.lease);
  Status added = tasks_.AddTask(task);
  if (added.code() == Code::kConflict) {
    return Conflict("New operation on image '" + image.id +
                    "' is not permitted as prior operation is still in progress");
  }
  INGOT_RETURN_IF_ERROR(added);
  task.version = 1;
  // Show the import at once: the image moves to importing (copy-image: stays active) and lists
  // the stores it is going to.
  // inject_image_metadata: the operator's properties, unless the requester is exempt.
  const bool inject =
      !IsCopy(r) &&
      std::none_of(options_.inject_ignore_roles.begin(), options_.inject_ignore_roles.end(),
                   [&](const std::string& role) {
                     return std::find(who.roles.begin(), who.roles.end(), role) != who.roles.end();
                   });
  auto begun = images_.Mutate(image, [&](Image& im) -> Status {
    // Importing already: this task's worker got there first (AddTask bars any other import).
    if (!IsCopy(r) && im.status() != ImageStatus::kImporting) {
      INGOT_RETURN_IF_ERROR(Transition(im, ImageEvent::kStartImport));
    }
    if (inject) {
      for (const auto& [k, v] : options_.inject) im.properties[k] = v;
    }
    im.properties[kImportingTo] = Join(ids);
    im.properties[kFailedImport] = "";
    return Status::Ok();
  });
  if (!begun.ok()) {
    (void)FinishTask(task, begun.status(), "");
    return begun.status();
  }
  if (!who.token.empty()) {
    std::lock_guard lock(mu_);
    tokens_[task.id] = who.token;
  }
  // Handed to the workers (this node's or any other's).
  task.status = TaskStatus::kPending;
  task.lease_owner.reset();
  task.lease_until.reset();
  task.updated_at = NowMicros();
  if (Status released = tasks_.SaveTask(task); !released.ok()) {
    // The task stays leased; once the lease runs out a worker takes it over all the same.
    log::Warn("import.release_failed", {{"task", task.id}, {"error", released.ToString()}});
  } else {
    ++task.version;
  }
  log::Info("import.accepted",
            {{"image", image.id}, {"task", task.id}, {"method", r.method}, {"stores", Join(ids)}});
  Wake();
  return std::optional<Task>(std::move(task));
}

// ---- Tasks ----

Result<Task> ImportService::GetTask(const std::string& id, const catalog::Viewer& viewer) {
  auto t = IsUuid(id) ? tasks_.GetTask(CanonicalUuid(id)) : NotFound("");
  if (!t.ok() || (!viewer.is_admin && t->owner != viewer.project)) {
    if (t.ok() || t.status().code() == Code::kNotFound) {
      return NotFound("Task with identifier " + id + " not found");
    }
    return t.status();
  }
  return t;
}

Result<std::vector<Task>> ImportService::ListTasks(const catalog::Viewer& viewer, int limit) {
  if (viewer.is_admin) return tasks_.ListTasks(std::nullopt, limit);
  return tasks_.ListTasks(viewer.project ? viewer.project : std::optional<std::string>(""), limit);
}

Result<std::vector<Task>> ImportService::ListImageTasks(const Image& image) {
  return tasks_.ListTasksForImage(image.id);
}

Result<int> ImportService::RepairStaging() {
  INGOT_ASSIGN_OR_RETURN(int removed, staging_.RemoveIncomplete());
  INGOT_ASSIGN_OR_RETURN(auto keys, staging_.ListKeys());
  for (const auto& key : keys) {
    auto image = images_.repo_.Get(key);
    bool keep = image.ok() && (image->status() == ImageStatus::kUploading ||
                               image->status() == ImageStatus::kImporting ||
                               image->status() == ImageStatus::kQueued);
    if (!image.ok() && image.status().code() != Code::kNotFound) return image.status();
    if (!keep) {
      INGOT_RETURN_IF_ERROR(staging_.Delete(key));
      ++removed;
    }
  }
  return removed;
}

// ---- Workers ----

void ImportService::WorkerLoop() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    auto ran = RunOnce();
    if (!ran.ok()) log::Warn("import.claim_failed", {{"error", ran.status().ToString()}});
    if (ran.ok() && *ran) continue;  // there may be more
    std::unique_lock lock(mu_);
    const uint64_t seen = wakeups_;
    wake_.wait_for(lock, options_.poll, [&] { return stopping_ || wakeups_ != seen; });
    if (stopping_) return;
  }
}

Result<bool> ImportService::RunOnce() {
  const int64_t now = NowMicros();
  // Ended tasks are purged after task_time_to_live, as Glance does; once a minute is plenty.
  int64_t last = last_purge_.load();
  if (now - last > 60 * 1000000 && last_purge_.compare_exchange_strong(last, now)) {
    if (auto purged = tasks_.PurgeExpiredTasks(now); purged.ok() && *purged > 0) {
      log::Info("import.tasks_purged", {{"count", *purged}});
    }
  }
  INGOT_ASSIGN_OR_RETURN(auto claimed,
                         tasks_.ClaimTask(options_.node, now, now + Micros(options_.lease)));
  if (!claimed) return false;
  Execute(std::move(*claimed));
  return true;
}

void ImportService::Execute(Task task) {
  log::Info("import.started", {{"task", task.id}, {"image", task.image_id.value_or("")}});
  {
    std::lock_guard lock(mu_);
    running_[task.id] = std::make_shared<std::atomic<bool>>(false);
  }
  std::string result_json;
  Status outcome = RunImport(task, &result_json);
  {
    std::lock_guard lock(mu_);
    running_.erase(task.id);
  }
  if (outcome.code() == Code::kConflict && outcome.message() == "lease lost") {
    // Another node took the task over; its outcome is the one that counts.
    log::Warn("import.lease_lost", {{"task", task.id}});
    return;
  }
  Status saved = FinishTask(task, outcome, result_json);
  if (!saved.ok())
    log::Error("import.task_save_failed", {{"task", task.id}, {"error", saved.ToString()}});
  std::lock_guard lock(mu_);
  tokens_.erase(task.id);
}

Status ImportService::FinishTask(Task task, const Status& outcome, const std::string& result) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    task.status = outcome.ok() ? TaskStatus::kSuccess : TaskStatus::kFailure;
    if (!outcome.ok()) {
      // Server faults are told in general words; their cause is in the log.
      const Code c = outcome.code();
      const bool fault = c == Code::kIoError || c == Code::kCorruption || c == Code::kInternal ||
                         c == Code::kStorageFull;
      task.message = fault ? "The import failed on the server (" + task.id +
                                 "); an operator can find the cause in the log."
                           : outcome.message();
    }
    task.result = result.empty() ? std::nullopt : std::optional<std::string>(result);
    task.updated_at = NowMicros();
    task.expires_at = task.updated_at + int64_t{options_.task_ttl.count()} * 3600 * 1000000;
    task.lease_owner.reset();
    task.lease_until.reset();
    Status s = tasks_.SaveTask(task);
    if (s.code() != Code::kConflict) return s;
    INGOT_ASSIGN_OR_RETURN(Task fresh, tasks_.GetTask(task.id));
    // Another node took the task over meanwhile: its outcome is the one that counts.
    if (fresh.lease_owner && *fresh.lease_owner != options_.node) return Conflict("lease lost");
    task = std::move(fresh);
  }
  return Conflict("task " + task.id + " kept changing");
}

// Decompression on the way in (gzip, zstd, xz, bzip2), unless the image says its container is
// compressed: `source` is replaced by the decompressing reader when the bytes are compressed.
Status ImportService::DecompressIfAsked(const Image& image, std::unique_ptr<io::Reader>& source,
                                        std::optional<uint64_t>& length) const {
  if (!options_.decompress || image.container_format == "compressed") return Status::Ok();
  io::Compression found = io::Compression::kNone;
  INGOT_ASSIGN_OR_RETURN(source, io::Decompressing(std::move(source), &found));
  if (found != io::Compression::kNone) {
    length.reset();  // the declared length was the compressed one
    log::Info("import.decompressing",
              {{"image", image.id}, {"compression", io::CompressionName(found)}});
  }
  return Status::Ok();
}

// keep_original: the staged bytes a conversion read become an image of their own, uploaded as any
// image is (hashed, inspected, durable). Best effort: the converted image is already active, so a
// failure here is logged and leaves no half-made original behind.
void ImportService::KeepOriginal(const Image& converted, const std::string& format,
                                 const std::string& store_id) {
  auto fail = [&](const std::string& id, const Status& why) {
    log::Warn("import.keep_original_failed",
              {{"image", converted.id}, {"original", id}, {"error", why.ToString()}});
    if (id.empty()) return;
    if (auto left = images_.repo_.Get(id); left.ok()) (void)images_.Delete(*left);
  };
  Image draft;
  draft.id = NewUuid();
  draft.owner = converted.owner;
  draft.name = converted.name;
  draft.visibility = catalog::Visibility::kPrivate;
  draft.disk_format = format;
  draft.container_format = converted.container_format;
  draft.properties["ingot_original_of"] = converted.id;
  auto created = images_.Create(std::move(draft));
  if (!created.ok()) return fail("", created.status());
  auto staged = staging_.Open(converted.id);
  if (!staged.ok()) return fail(created->id, staged.status());
  const uint64_t size = (*staged)->Size();
  io::SourceReader reader(std::move(*staged));
  auto stored = images_.Upload(*created, reader, size, store_id);
  if (!stored.ok()) return fail(created->id, stored.status());
  auto linked = images_.Mutate(converted, [&](Image& im) {
    im.properties["ingot_original_image"] = created->id;
    return Status::Ok();
  });
  if (!linked.ok()) return fail(created->id, linked.status());
  log::Info("import.original_kept", {{"image", converted.id}, {"original", created->id}});
}

Status ImportService::RunImport(Task& task, std::string* result_json) {
  std::string image_id;
  INGOT_ASSIGN_OR_RETURN(ImportRequest r, ParseImportInput(task.input, &image_id));
  auto loaded = images_.repo_.Get(image_id);
  if (!loaded.ok()) {
    return loaded.status().code() == Code::kNotFound
               ? NotFound("Image " + image_id + " was deleted before its import ran.")
               : loaded.status();
  }
  Image image = std::move(*loaded);
  const bool copy = IsCopy(r);
  // A crash between recording the task and moving the image leaves it queued or uploading. A
  // worker can also claim the task before Accept() has moved the image: Mutate then re-runs this on
  // the image Accept() wrote, already importing, which is no error.
  if (!copy && image.status() != ImageStatus::kImporting) {
    INGOT_ASSIGN_OR_RETURN(image, images_.Mutate(image, [&](Image& im) -> Status {
      if (im.status() == ImageStatus::kImporting) return Status::Ok();
      INGOT_RETURN_IF_ERROR(Transition(im, ImageEvent::kStartImport));
      im.properties[kImportingTo] = Join(r.stores);
      return Status::Ok();
    }));
  }
  // The source of the bytes. glance-direct with conversion reads the staged bytes through the
  // virtual disk, so they must outlive it; converted_from is the format they were in.
  std::unique_ptr<io::ByteSource> staged_source;
  std::unique_ptr<io::Reader> source;
  std::optional<uint64_t> length;
  std::optional<std::string> converted_from;
  bool decompressed = false;     // the source already yields decompressed bytes
  bool staged_download = false;  // a web-download staged for conversion: removed when done

  // What a failed import leaves: the image back to queued (copy-image: still active) with the
  // failed stores listed; staged bytes kept unless the image itself was refused.
  auto fail = [&](const Status& why, const std::vector<std::string>& failed) -> Status {
    auto reverted = images_.Mutate(image, [&](Image& im) -> Status {
      if (!copy && im.status() == ImageStatus::kImporting) {
        INGOT_RETURN_IF_ERROR(Transition(im, ImageEvent::kAbortImport));
        im.size.reset();
        im.virtual_size.reset();
      }
      ListProperty(im, kImportingTo, r.stores, false);
      ListProperty(im, kFailedImport, failed, true);
      return Status::Ok();
    });
    if (!reverted.ok() && reverted.status().code() != Code::kNotFound) {
      log::Warn("import.revert_failed",
                {{"image", image.id}, {"error", reverted.status().ToString()}});
    }
    if (staged_download || (why.code() == Code::kRefused && r.method == "glance-direct")) {
      source.reset();  // may read the staged bytes
      staged_source.reset();
      (void)staging_.Delete(image.id);
    }
    log::Warn("import.failed", {{"image", image.id}, {"task", task.id}, {"error", why.ToString()}});
    return why;
  };
  std::vector<store::Store*> targets;
  for (const auto& id : r.stores) {
    store::Store* s = images_.stores().Find(id);
    if (s == nullptr) return fail(InvalidArgument("Store " + id + " is not configured."), {id});
    targets.push_back(s);
  }
  // The heartbeat keeps the lease; once another node has taken the task over, this one stops at
  // its next progress check, and at the latest just before it would commit anything.
  std::shared_ptr<std::atomic<bool>> lost;
  {
    std::lock_guard lock(mu_);
    lost = running_[task.id];
  }
  auto still_ours = [&](uint64_t) -> Status {
    if (lost && lost->load()) return Conflict("lease lost");
    return Status::Ok();
  };
  auto fence = [&]() -> Status {
    Status s = tasks_.RenewLease(task.id, options_.node, NowMicros() + Micros(options_.lease));
    if (s.code() == Code::kConflict || s.code() == Code::kNotFound) return Conflict("lease lost");
    return s;
  };

  std::string token;
  {
    std::lock_guard lock(mu_);
    if (auto it = tokens_.find(task.id); it != tokens_.end()) token = it->second;
  }
  // glance-download: the remote image's properties named by glance_download_properties, set on this
  // one when it is done.
  std::map<std::string, std::string> remote_properties;
  // ... and its formats, which this image takes (Glance's ImportMetadata does the same).
  std::optional<std::string> remote_disk_format, remote_container_format;
  // The staged bytes as the source: glance-direct's, or a download's that is to be converted.
  // Conversion on the way in (Glance's image_conversion): the staged bytes can be read at any
  // offset, so the reader is the virtual disk itself and the raw bytes stream into the stores in
  // the same one pass that hashes them. The content is judged by its own format first.
  auto open_staged = [&]() -> Status {
    auto staged = staging_.Open(image.id);
    if (!staged.ok()) {
      return staged.status().code() == Code::kNotFound
                 ? Conflict("The staged data of image " + image.id +
                            " is gone; stage the image again.")
                 : staged.status();
    }
    length = (*staged)->Size();
    staged_source = std::move(*staged);
    if (options_.convert_to == "raw") {
      auto info = formats::Inspect(*staged_source);
      if (!info.ok()) {
        if (info.status().code() == Code::kRefused) {
          return Refused("Image data was refused by the format safety checks: " +
                         info.status().message());
        }
        return info.status();
      }
      if (options_.require_image_format_match) {
        INGOT_RETURN_IF_ERROR(
            CheckDiskFormatMatch(image, std::optional<formats::ImageInfo>(*info)));
      }
      if (info->format != formats::Format::kRaw && info->format != formats::Format::kIso) {
        INGOT_ASSIGN_OR_RETURN(auto disk, formats::Open(*staged_source, info->format));
        converted_from = std::string(formats::GlanceDiskFormatName(info->format));
        length = disk->Size();
        source = std::make_unique<io::SourceReader>(std::move(disk));
        return Status::Ok();
      }
    }
    source = std::make_unique<io::SourceReader>(std::move(staged_source));
    return Status::Ok();
  };
  auto open_source = [&]() -> Status {
    if (r.method == "glance-direct") {
      return open_staged();
    } else if (r.method == "web-download") {
      auto d = fetch::Open(r.uri.value_or(""), options_.fetch);
      if (!d.ok()) {
        return Status(d.status().code() == Code::kIoError ? Code::kUnavailable : d.status().code(),
                      "web-download of " + r.uri.value_or("") + " failed: " + d.status().message());
      }
      length = (*d)->content_length();
      source = std::move(*d);
      if (options_.convert_to.empty()) return Status::Ok();
      // Conversion needs the whole image at hand: the download is staged first (decompressed on
      // the way), then converted as glance-direct's bytes are. The staged copy is temporary.
      INGOT_RETURN_IF_ERROR(DecompressIfAsked(image, source, length));
      decompressed = true;
      IngestOptions so = images_.ingest_options();
      so.size_cap = std::min(so.size_cap, options_.staging_cap);
      so.digests = false;
      so.progress = still_ours;
      so.progress_every = 4 << 20;
      staged_download = true;
      INGOT_RETURN_IF_ERROR(Ingest(*source, length, {&staging_}, image.id, so).status());
      source.reset();
      return open_staged();
    } else if (r.method == "copy-image") {
      INGOT_ASSIGN_OR_RETURN(OpenedData data, images_.OpenData(image));
      length = data.size;
      source = data.source ? std::unique_ptr<io::Reader>(
                                 std::make_unique<io::SourceReader>(std::move(data.source)))
                           : std::make_unique<OwnedFdReader>(std::move(data.fd));
    } else if (r.method == "glance-download") {
      auto region = options_.glance_regions.find(r.glance_region.value_or(""));
      if (region == options_.glance_regions.end()) {
        return InvalidArgument("Unknown glance_region '" + r.glance_region.value_or("") + "'.");
      }
      const std::string& endpoint = region->second;
      fetch::FetchOptions fo = options_.fetch;
      if (!token.empty()) fo.headers.emplace_back("X-Auth-Token", token);
      const std::string remote = endpoint + "/v2/images/" + r.glance_image_id.value_or("");
      INGOT_ASSIGN_OR_RETURN(std::string text, fetch::GetText(remote, fo));
      boost::system::error_code ec;
      json::value rec = json::parse(text, ec);
      if (ec || !rec.is_object()) return InvalidArgument("The remote image record is not JSON.");
      const json::object& ro = rec.as_object();
      auto str = [&](const char* k) -> std::optional<std::string> {
        auto it = ro.find(k);
        if (it == ro.end() || !it->value().is_string()) return std::nullopt;
        return std::string(it->value().as_string());
      };
      if (str("status") != "active") {
        return Conflict("The remote image " + r.glance_image_id.value_or("") + " is not active.");
      }
      remote_disk_format = str("disk_format");
      remote_container_format = str("container_format");
      for (const auto& [k, v] : ro) {
        if (!v.is_string() || IsCoreAttribute(k) || k.starts_with("os_glance")) continue;
        for (const std::string& prefix : options_.glance_download_properties) {
          if (k.starts_with(prefix)) {
            remote_properties[k] = std::string(v.as_string());
            break;
          }
        }
      }
      INGOT_ASSIGN_OR_RETURN(auto d, fetch::Open(remote + "/file", fo));
      length = d->content_length();
      source = std::move(d);
    } else {
      return InvalidArgument("Import method " + r.method + " is not valid.");
    }
    return Status::Ok();
  };
  if (Status s = open_source(); !s.ok()) return fail(s, r.stores);
  if (!copy && !converted_from && !decompressed) {
    if (Status s = DecompressIfAsked(image, source, length); !s.ok()) return fail(s, r.stores);
  }
  // Store failures are tolerated during the pass so the failed store is known by name; whether one
  // failure fails the import (all_stores_must_succeed) is decided below.
  // A checksum declared at create is the one the image must end with: the stored bytes', after any
  // conversion or decompression.
  IngestOptions opts = copy ? images_.ingest_options() : images_.ingest_options(image);
  opts.tolerate_store_failures = true;
  opts.progress = still_ours;
  opts.progress_every = 4 << 20;
  opts.before_commit = fence;
  auto in = Ingest(*source, length, targets, image.id, opts);
  source.reset();
  staged_source.reset();

  if (!in.ok()) {
    if (in.status().code() == Code::kConflict && in.status().message() == "lease lost") {
      return in.status();
    }
    return fail(in.status(), r.stores);
  }
  auto discard = [&] {
    for (store::Store* s : in->committed) (void)s->Delete(image.id);
  };
  if (copy && image.checksum && in->md5 != *image.checksum) {
    discard();
    return fail(Corruption("copy-image: the copy's MD5 " + in->md5 + " differs from the image's " +
                           *image.checksum),
                r.stores);
  }
  if (!copy && options_.require_image_format_match && !converted_from) {
    Image judged = image;  // the formats the image ends with are the ones its bytes must match
    if (remote_disk_format) judged.disk_format = remote_disk_format;
    if (Status m = CheckDiskFormatMatch(judged, in->info); !m.ok()) {
      discard();
      return fail(m, r.stores);
    }
  }
  std::vector<std::string> ok_ids, failed_ids;
  for (store::Store* s : in->committed) ok_ids.push_back(s->id());
  for (const auto& f : in->failed) failed_ids.push_back(f.first);
  if (!failed_ids.empty() && r.all_stores_must_succeed) {
    // Glance's revert: the stores that worked give their copies back; the failed ones are listed.
    discard();
    return fail(in->failed.front().second, failed_ids);
  }

  auto done = images_.Mutate(image, [&](Image& im) -> Status {
    if (!copy) {
      INGOT_RETURN_IF_ERROR(Transition(im, ImageEvent::kFinishImport));
      im.size = in->bytes;
      im.virtual_size.reset();
      if (in->info) im.virtual_size = in->info->virtual_size;
      im.checksum = in->md5;
      if (converted_from) {
        im.disk_format = "raw";
        im.properties["os_glance_converted_from"] = *converted_from;
      }
      im.os_hash_algo = images_.options().hash_algo;
      im.os_hash_value = in->hash_value;
      im.locations.clear();
    }
    if (remote_disk_format) im.disk_format = remote_disk_format;
    if (remote_container_format) im.container_format = remote_container_format;
    for (const auto& [k, v] : remote_properties) im.properties[k] = v;
    for (const auto& id : ok_ids) im.locations.push_back({id, im.id});
    ListProperty(im, kImportingTo, r.stores, false);
    ListProperty(im, kFailedImport, failed_ids, true);
    return Status::Ok();
  });
  if (!done.ok()) {
    discard();
    return fail(done.status(), r.stores);
  }
  if (converted_from && options_.keep_original) {
    KeepOriginal(*done, *converted_from, ok_ids.front());
  }
  if (r.method == "glance-direct" || staged_download) {
    if (Status s = staging_.Delete(image.id); !s.ok()) {
      log::Warn("import.unstage_failed", {{"image", image.id}, {"error", s.ToString()}});
    }
  }
  *result_json = json::serialize(json::object{{"image_id", image.id}});
  log::Info("import.done", {{"image", image.id},
                            {"task", task.id},
                            {"bytes", in->bytes},
                            {"stores", Join(ok_ids)},
                            {"failed", Join(failed_ids)}});
  return Status::Ok();
}

}  // namespace ingot::service
