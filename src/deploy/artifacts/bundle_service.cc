#include "deploy/artifacts/bundle_service.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <deque>
#include <set>

#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"
#include "deploy/artifacts/documents.h"
#include "io/adapters.h"
#include "io/file.h"
#include "io/hash.h"

// Zips are read and written with libzip: it checks each entry's CRC and the central directory
// against the local headers (ZIP_CHECKCONS), handles ZIP64, and streams an entry's inflated bytes
// through zip_fread, so a golden image never sits in memory. What libzip does not bound — how many
// bytes an entry inflates to — EntryReader bounds: never more than the entry declares, and no entry
// may declare more than the options allow.

namespace ingot::deploy::artifacts {
namespace json = boost::json;

namespace {

Status FsyncPath(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_RDONLY | O_CLOEXEC));
  if (::fsync(fd.get()) != 0) return FromErrno(errno, "fsync " + path);
  return Status::Ok();
}

const char* KindWord(Kind k) {
  switch (k) {
    case Kind::kPlanScript:
      return "plan script";
    case Kind::kBuildPlan:
      return "build plan";
    case Kind::kDeploymentPlan:
      return "deployment plan";
    case Kind::kGoldenImage:
      return "golden image";
    default:
      return "artifact";
  }
}

// A zip bomb's declared sizes are within the limits but may not fit: what a bundle declares it
// unpacks to is refused up front when the data directory's file system has not that much free.
Status CheckRoom(const std::string& dir, uint64_t bytes, const std::string& what) {
  struct statvfs fs{};
  if (::statvfs(dir.c_str(), &fs) != 0) return FromErrno(errno, "statvfs " + dir);
  const uint64_t free_bytes = uint64_t(fs.f_bavail) * fs.f_frsize;
  if (bytes > free_bytes) {
    return InvalidArgument(what + " unpacks to " + std::to_string(bytes) + " bytes; " + dir +
                           " has " + std::to_string(free_bytes) + " free");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- reading zips

struct ZipDiscard {
  void operator()(zip_t* z) const { zip_discard(z); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipDiscard>;

Result<ZipPtr> OpenZip(const std::string& path, const std::string& what) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (z == nullptr) {
    zip_error_t e;
    zip_error_init_with_code(&e, err);
    std::string msg = zip_error_strerror(&e);
    zip_error_fini(&e);
    return InvalidArgument(what + " is not a readable zip: " + msg);
  }
  return ZipPtr(z);
}

// One entry's inflated bytes, never more than it declares, hashed as they pass.
class EntryReader final : public io::Reader {
 public:
  EntryReader(zip_t* z, zip_uint64_t index, uint64_t declared, std::string name)
      : zip_(z), index_(index), declared_(declared), name_(std::move(name)) {}
  ~EntryReader() override {
    if (file_ != nullptr) zip_fclose(file_);
  }
  Status Open() {
    file_ = zip_fopen_index(zip_, index_, 0);
    if (file_ == nullptr)
      return InvalidArgument("the entry '" + name_ + "': " + zip_strerror(zip_));
    INGOT_ASSIGN_OR_RETURN(hasher_, io::Hasher::Create("sha256"));
    return Status::Ok();
  }
  Result<size_t> Read(std::span<uint8_t> buf) override {
    if (done_ || buf.empty()) return size_t{0};
    // One byte past the declared size is asked for, so an entry that inflates to more is caught.
    uint64_t want = std::min<uint64_t>(buf.size(), declared_ - got_ + 1);
    zip_int64_t n = zip_fread(file_, buf.data(), want);
    if (n < 0) {
      return InvalidArgument("the entry '" + name_ + "' is damaged: " + zip_file_strerror(file_));
    }
    got_ += uint64_t(n);
    if (got_ > declared_) {
      return InvalidArgument("the entry '" + name_ + "' inflates to more than the " +
                             std::to_string(declared_) + " bytes it declares");
    }
    if (n == 0) {
      if (got_ != declared_) {
        return InvalidArgument("the entry '" + name_ + "' holds " + std::to_string(got_) +
                               " bytes, not the " + std::to_string(declared_) + " it declares");
      }
      done_ = true;
      return size_t{0};
    }
    hasher_->Update({buf.data(), size_t(n)});
    return size_t(n);
  }
  // After the last Read.
  std::string Hex() { return hasher_->HexDigest(); }

 private:
  zip_t* zip_;
  zip_uint64_t index_;
  uint64_t declared_;
  std::string name_;
  zip_file_t* file_ = nullptr;
  std::unique_ptr<io::Hasher> hasher_;
  uint64_t got_ = 0;
  bool done_ = false;
};

Result<std::string> ReadAll(io::Reader& r, size_t limit) {
  std::string out;
  std::vector<uint8_t> buf(64 << 10);
  for (;;) {
    INGOT_ASSIGN_OR_RETURN(size_t n, r.Read(buf));
    if (n == 0) return out;
    if (out.size() + n > limit) return InvalidArgument("an entry is larger than its limit");
    out.append(reinterpret_cast<const char*>(buf.data()), n);
  }
}

struct EntryInfo {
  zip_uint64_t index;
  uint64_t size;
};

// A bundle's index read and checked: documents parsed, every entry's checksum verified except the
// payloads' when `hash_payloads` is false (the importer verifies those as it streams them).
struct OpenedBundle {
  ZipPtr zip;
  BundleContents contents;
  BundleSums sums;
  std::map<std::string, EntryInfo> entries;
};

Result<OpenedBundle> ReadBundle(const std::string& path, bool hash_payloads,
                                const BundleOptions& options) {
  OpenedBundle out;
  INGOT_ASSIGN_OR_RETURN(out.zip, OpenZip(path, "the bundle"));
  zip_int64_t count = zip_get_num_entries(out.zip.get(), 0);
  if (count < 0 || uint64_t(count) > kMaxBundleEntries) {
    return InvalidArgument("the bundle has more than 10000 entries");
  }
  BundleIndex index;
  std::map<std::string, std::string> hashes;
  std::vector<uint8_t> buf(1 << 20);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(out.zip.get(), zip_uint64_t(i), 0, &st) != 0 ||
        !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE)) {
      return InvalidArgument("the bundle's entry " + std::to_string(i) +
                             " cannot be read: " + zip_strerror(out.zip.get()));
    }
    std::string name = st.name;
    INGOT_RETURN_IF_ERROR(CheckEntryName(name));
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) {
      return InvalidArgument("the entry '" + name + "' is encrypted");
    }
    EntryKind kind = ClassifyEntry(name);
    uint64_t limit = kind == EntryKind::kPayload    ? options.max_payload_bytes
                     : kind == EntryKind::kManifest ? kMaxManifestBytes
                     : kind == EntryKind::kSums     ? kMaxSumsBytes
                                                    : kMaxDocumentBytes;
    if (st.size > limit) {
      return InvalidArgument("the entry '" + name + "' declares " + std::to_string(st.size) +
                             " bytes, more than the " + std::to_string(limit) + " allowed");
    }
    if (out.entries.count(name)) return InvalidArgument("the bundle holds '" + name + "' twice");
    out.entries[name] = {zip_uint64_t(i), st.size};
    index.names.push_back(name);
    if (kind == EntryKind::kPayload && !hash_payloads) continue;
    EntryReader r(out.zip.get(), zip_uint64_t(i), st.size, name);
    INGOT_RETURN_IF_ERROR(r.Open());
    if (kind == EntryKind::kPayload) {
      for (;;) {
        INGOT_ASSIGN_OR_RETURN(size_t n, r.Read(buf));
        if (n == 0) break;
      }
    } else {
      INGOT_ASSIGN_OR_RETURN(index.texts[name], ReadAll(r, limit));
    }
    hashes[name] = r.Hex();
  }
  uint64_t declared = 0;
  for (const auto& [name, info] : out.entries) declared += info.size;  // each <= 1 TiB: no overflow
  INGOT_RETURN_IF_ERROR(CheckRoom(options.dir, declared, "the bundle"));
  INGOT_ASSIGN_OR_RETURN(out.contents, ParseBundle(index));
  INGOT_ASSIGN_OR_RETURN(out.sums, ParseSums(index.texts[std::string(kSumsEntry)]));
  for (const auto& [name, hex] : hashes) {
    if (name == kSumsEntry) continue;
    const std::string* want = out.sums.Find(name);
    if (want == nullptr || *want != hex) {
      return InvalidArgument("the entry '" + name +
                             "' does not match its SHA-256 in SHA256SUM.sha256sum");
    }
  }
  return out;
}

// ---------------------------------------------------------------- the staging repository

// New records held in memory in front of the real repository, so the ArtifactService's own checks
// (which read the repository) see the bundle's earlier artifacts, and all of them are written in
// one transaction at the end. With `hide_base`, the artifact kinds of the base are invisible (a
// restore replaces them).
class StagingRepository final : public DeployRepository {
 public:
  StagingRepository(DeployRepository& base, bool hide_base) : base_(base), hide_base_(hide_base) {}
  using DeployRepository::Put;

  Status Put(const std::vector<Record>& records) override {
    for (const Record& r : records) {
      std::string name = Str(r.doc, "name");
      if (r.kind != Kind::kTask && !name.empty()) {
        INGOT_ASSIGN_OR_RETURN(auto other, FindByName(r.kind, name));
        if (other && Str(*other, "id") != r.id)
          return AlreadyExists("the name '" + name + "' is taken");
      }
    }
    for (const Record& r : records) {
      bool replaced = false;
      for (Record& p : pending_) {
        if (p.kind == r.kind && p.id == r.id) {
          p.doc = r.doc;
          replaced = true;
        }
      }
      if (!replaced) pending_.push_back(r);
    }
    return Status::Ok();
  }
  Status Replace(const std::vector<Kind>&, const std::vector<Record>&) override {
    return Internal("staging: Replace");
  }
  Result<json::object> Get(Kind kind, const std::string& id) override {
    for (const Record& p : pending_) {
      if (p.kind == kind && p.id == id) return p.doc;
    }
    if (Hidden(kind)) return NotFound(std::string(KindName(kind)) + " " + id + " not found");
    return base_.Get(kind, id);
  }
  Result<std::optional<json::object>> FindByName(Kind kind, const std::string& name) override {
    for (const Record& p : pending_) {
      if (p.kind == kind && Str(p.doc, "name") == name) return std::optional<json::object>(p.doc);
    }
    if (Hidden(kind)) return std::optional<json::object>();
    return base_.FindByName(kind, name);
  }
  Result<std::vector<json::object>> List(Kind kind) override {
    std::vector<json::object> out;
    if (!Hidden(kind)) {
      INGOT_ASSIGN_OR_RETURN(out, base_.List(kind));
    }
    for (const Record& p : pending_) {
      if (p.kind == kind) out.push_back(p.doc);
    }
    return out;
  }
  Status Remove(Kind, const std::string&) override { return Internal("staging: Remove"); }

  std::vector<Record>& pending() { return pending_; }

 private:
  bool Hidden(Kind k) const {
    return hide_base_ && (k == Kind::kPlanScript || k == Kind::kBuildPlan ||
                          k == Kind::kDeploymentPlan || k == Kind::kGoldenImage);
  }
  DeployRepository& base_;
  bool hide_base_;
  std::vector<Record> pending_;
};

// Files placed by an import, removed unless it commits.
struct PlacedFiles {
  std::vector<std::string> paths;
  bool committed = false;
  ~PlacedFiles() {
    if (committed) return;
    for (const std::string& p : paths) (void)RemoveFile(p);
  }
};

void StampBundle(json::object& doc, Kind kind, const std::string& id) {
  std::string now = Now();
  if (!doc.contains("created")) doc["created"] = now;
  doc["modified"] = now;
  doc["id"] = id;
  doc["uri"] = std::string(CollectionUri(kind)) + "/" + id;
  doc["type"] = kind == Kind::kBackup ? "ArtifactsBundleBackup" : "ArtifactsBundle";
  doc["category"] = "artifact-bundles";
  doc["eTag"] = std::to_string(NowMicros());
  if (!doc.contains("state")) doc["state"] = "Normal";
  if (!doc.contains("status")) doc["status"] = "OK";
}

json::array Members(const std::vector<std::pair<std::string, json::object>>& docs, bool read_only) {
  json::array out;
  for (const auto& [entry, d] : docs) {
    out.push_back(
        json::object{{"name", d.at("name")}, {"readOnly", read_only || Flag(d, "readOnly")}});
  }
  return out;
}

// Copies `in` into a new file, bounded and fsynced; returns its SHA-256.
Result<std::string> WriteUpload(const std::string& path, io::Reader& in, uint64_t limit) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd,
                         io::OpenFile(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  INGOT_ASSIGN_OR_RETURN(auto hasher, io::Hasher::Create("sha256"));
  std::vector<uint8_t> buf(1 << 20);
  uint64_t total = 0;
  for (;;) {
    INGOT_ASSIGN_OR_RETURN(size_t n, in.Read(buf));
    if (n == 0) break;
    total += n;
    if (total > limit)
      return TooLarge("the bundle is larger than " + std::to_string(limit) + " bytes");
    hasher->Update({buf.data(), n});
    INGOT_RETURN_IF_ERROR(io::WriteAll(fd.get(), {buf.data(), n}, path));
  }
  if (::fsync(fd.get()) != 0) return FromErrno(errno, "fsync " + path);
  return hasher->HexDigest();
}

}  // namespace

BundleService::BundleService(DeployRepository& repo, VolumeStore& volumes,
                             ArtifactOptions artifact_options, BundleOptions options)
    : repo_(repo),
      volumes_(volumes),
      artifact_options_(std::move(artifact_options)),
      options_(std::move(options)) {}

Result<int> BundleService::Repair() {
  std::lock_guard<std::mutex> lock(mu_);
  int removed = 0;
  for (Kind kind : {Kind::kArtifactBundle, Kind::kBackup}) {
    const std::string dir = options_.dir + (kind == Kind::kBackup ? "/backups" : "/bundles");
    INGOT_RETURN_IF_ERROR(io::MakeDirs(dir));
    std::set<std::string> kept;
    INGOT_ASSIGN_OR_RETURN(auto docs, repo_.List(kind));
    for (const json::object& d : docs) kept.insert(Str(d, "_file"));
    std::vector<std::string> gone;
    if (DIR* d = ::opendir(dir.c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != ".." && !kept.count(n)) gone.push_back(dir + "/" + n);
      }
      ::closedir(d);
    }
    for (const std::string& p : gone) {
      INGOT_RETURN_IF_ERROR(RemoveFile(p));
      ++removed;
    }
  }
  if (removed > 0) log::Info("deploy.bundle_repair", {{"files_removed", removed}});
  return removed;
}

json::object BundleService::NewTask(const std::string& name, const std::string& owner) {
  std::string id = NewUuid();
  std::string now = Now();
  return json::object{{"type", "TaskResourceV2"},
                      {"category", "tasks"},
                      {"id", id},
                      {"uri", "/rest/tasks/" + id},
                      {"name", name},
                      {"owner", owner},
                      {"created", now},
                      {"modified", now},
                      {"eTag", std::to_string(NowMicros())},
                      {"taskState", "Running"},
                      {"taskStatus", name},
                      {"taskType", "User"},
                      {"userInitiated", true},
                      {"percentComplete", 0},
                      {"computedPercentComplete", 0},
                      {"progressUpdates", json::array()},
                      {"taskErrors", json::array()},
                      {"taskOutput", json::array()},
                      {"state", "Normal"},
                      {"status", "OK"}};
}

Result<json::object> BundleService::EndTask(json::object task, const Status& result,
                                            const json::object& resource) {
  task["percentComplete"] = 100;
  task["computedPercentComplete"] = 100;
  task["modified"] = Now();
  if (!resource.empty()) {
    task["associatedResource"] = json::object{{"associationType", "MANAGED_BY"},
                                              {"resourceCategory", "artifact-bundles"},
                                              {"resourceName", resource.at("name")},
                                              {"resourceUri", resource.at("uri")}};
  }
  if (result.ok()) {
    task["taskState"] = "Completed";
    task["taskStatus"] = "Completed";
  } else {
    task["taskState"] = "Error";
    task["taskStatus"] = "Failed";
    std::string message =
        IsServerFault(result.code()) ? "the operation failed on the server" : result.message();
    task["taskErrors"] = json::array{json::object{{"errorCode", "ARTIFACT_BUNDLE_FAILED"},
                                                  {"message", message},
                                                  {"recommendedActions", json::array()}}};
  }
  return task;
}

Result<json::object> BundleService::RecordTask(const std::string& name, const std::string& owner,
                                               const json::object& resource) {
  INGOT_ASSIGN_OR_RETURN(json::object done, EndTask(NewTask(name, owner), Status::Ok(), resource));
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kTask, Str(done, "id"), done}));
  return done;
}

// ---------------------------------------------------------------- the worker

BundleService::~BundleService() { Stop(); }

void BundleService::Start() {
  std::lock_guard<std::mutex> lock(queue_mu_);
  if (worker_.joinable()) return;
  stop_ = false;
  worker_ = std::thread([this] { Work(); });
}

void BundleService::Stop() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stop_ = true;
  }
  queue_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

bool BundleService::Idle() {
  std::lock_guard<std::mutex> lock(queue_mu_);
  return queue_.empty() && !running_;
}

void BundleService::Work() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  for (;;) {
    queue_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;  // queued tasks are ended by the next start's repair
    std::function<void()> job = std::move(queue_.front());
    queue_.pop_front();
    running_ = true;
    lock.unlock();
    job();
    lock.lock();
    running_ = false;
  }
}

Result<json::object> BundleService::Launch(json::object task, bool background, Operation op) {
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kTask, Str(task, "id"), task}));
  // A failed operation's task says why (the operation may have said it already: the same words).
  auto run = [this, op = std::move(op)](const json::object& t) -> Result<json::object> {
    auto r = op(t);
    if (!r.ok()) {
      if (auto failed = EndTask(t, r.status(), {}); failed.ok()) {
        (void)repo_.Put({Kind::kTask, Str(*failed, "id"), *failed});
      }
      log::Warn(
          "deploy.bundle_task",
          {{"task", Str(t, "id")}, {"name", Str(t, "name")}, {"cause", r.status().message()}});
    }
    return r;
  };
  bool queued = false;
  if (background) {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (worker_.joinable() && !stop_) {
      queue_.push_back([run, task] { (void)run(task); });
      queued = true;
    }
  }
  if (!queued) return run(task);
  queue_cv_.notify_all();
  return task;
}

// ---------------------------------------------------------------- upload

Result<json::object> BundleService::Upload(const std::string& name_in, io::Reader& zip,
                                           bool backup) {
  // The bytes arrive and are checked without the operation lock: a slow upload holds up no one.
  const Kind kind = backup ? Kind::kBackup : Kind::kArtifactBundle;
  const std::string dir = options_.dir + (backup ? "/backups" : "/bundles");
  INGOT_RETURN_IF_ERROR(io::MakeDirs(dir));
  const std::string id = NewUuid();
  const std::string tmp = dir + "/.tmp-" + id;
  PlacedFiles placed;
  placed.paths.push_back(tmp);
  INGOT_ASSIGN_OR_RETURN(std::string sum, WriteUpload(tmp, zip, options_.max_bundle_bytes));
  INGOT_ASSIGN_OR_RETURN(OpenedBundle b, ReadBundle(tmp, /*hash_payloads=*/true, options_));
  std::string name = name_in.empty() ? b.contents.manifest.name : name_in;
  if (name.size() > 255) return InvalidArgument("a bundle's name is 1-255 characters");
  std::lock_guard<std::mutex> lock(mu_);
  {
    INGOT_ASSIGN_OR_RETURN(auto taken, repo_.FindByName(kind, name));
    if (taken) return AlreadyExists("an artifact bundle named '" + name + "' exists");
  }
  struct stat st {};
  if (::stat(tmp.c_str(), &st) != 0) return FromErrno(errno, "stat " + tmp);
  const std::string path = dir + "/" + id + ".zip";
  if (::rename(tmp.c_str(), path.c_str()) != 0) return FromErrno(errno, "rename " + tmp);
  placed.paths.push_back(path);
  INGOT_RETURN_IF_ERROR(io::SyncParentDir(path));
  const BundleContents& c = b.contents;
  const bool ro = c.manifest.read_only;
  json::object doc{{"name", name},
                   {"description", c.manifest.description},
                   {"readOnly", ro},
                   {"timestamp", c.manifest.timestamp},
                   {"artifactType", c.manifest.type},
                   {"manifestName", c.manifest.name},
                   {"size", int64_t(st.st_size)},
                   {"checkSum", sum},
                   {"importedFromFile", true},
                   {"extracted", false},
                   {"planScripts", Members(c.plan_scripts, ro)},
                   {"buildPlans", Members(c.build_plans, ro)},
                   {"deploymentPlans", Members(c.deployment_plans, ro)},
                   {"goldenImages", Members(c.golden_images, ro)},
                   {"artifactsCount", int64_t(c.plan_scripts.size() + c.build_plans.size() +
                                              c.deployment_plans.size() + c.golden_images.size())},
                   {"_file", id + ".zip"}};
  StampBundle(doc, kind, id);
  doc["downloadURI"] = std::string(backup ? "/rest/artifact-bundles/backups/archive/"
                                          : "/rest/artifact-bundles/download/") +
                       id;
  INGOT_RETURN_IF_ERROR(repo_.Put({kind, id, doc}));
  placed.committed = true;
  log::Info("deploy.bundle_upload", {{"id", id}, {"name", name}, {"bytes", int64_t(st.st_size)}});
  return doc;
}

// ---------------------------------------------------------------- import

namespace {

struct Staged {
  std::vector<Record> records;
  json::array plan_scripts, build_plans, deployment_plans,
      golden_images;  // {name, resourceUri, readOnly}
};

json::object Member(const json::object& doc) {
  return json::object{{"name", doc.at("name")},
                      {"resourceUri", doc.at("uri")},
                      {"readOnly", Flag(doc, "readOnly")}};
}

}  // namespace

// Stages every artifact of the bundle at `zip_path` (see the top); the caller commits the records.
// Golden files placed are listed in `placed`.
static Result<Staged> StageBundle(const std::string& zip_path, const json::object& bundle,
                                  bool replace_all, DeployRepository& repo, VolumeStore& volumes,
                                  const ArtifactOptions& artifact_options,
                                  const BundleOptions& options, PlacedFiles& placed) {
  INGOT_ASSIGN_OR_RETURN(OpenedBundle b, ReadBundle(zip_path, /*hash_payloads=*/false, options));
  const BundleContents& c = b.contents;
  // Names already taken: an identical artifact is reused (Image Streamer extracts nothing of what
  // is already there); a different one is a conflict, reported for all at once. Golden images are
  // compared by their bytes' SHA-256 once the payload is read (below).
  std::set<std::string> reused;                            // "<kind>/<name>"
  std::map<std::string, std::string> existing_golden_sum;  // name -> checkSum
  std::vector<std::string> taken;
  if (!replace_all) {
    auto steps_of = [](const json::object& bp) {
      std::vector<std::string> names;
      if (const json::value* st = bp.if_contains("buildStep"); st && st->is_array()) {
        for (const json::value& v : st->as_array()) {
          if (v.is_object()) names.push_back(Str(v.as_object(), "planScriptName"));
        }
      }
      return names;
    };
    auto same = [&](Kind kind, const json::object& d, const json::object& e) {
      switch (kind) {
        case Kind::kPlanScript:
          return Str(d, "planType", "general") == Str(e, "planType") &&
                 Str(d, "content") == Str(e, "content");
        case Kind::kBuildPlan:
          return Str(d, "oeBuildPlanType") == Str(e, "oeBuildPlanType") &&
                 steps_of(d) == steps_of(e);
        case Kind::kDeploymentPlan:
          return LastSegment(Str(d, "oeBuildPlanURI")) == Str(e, "oeBuildPlanName") &&
                 Str(d, "goldenImageURI") == Str(e, "goldenImageName");
        default:
          return false;
      }
    };
    auto check = [&](Kind kind,
                     const std::vector<std::pair<std::string, json::object>>& docs) -> Status {
      for (const auto& [entry, d] : docs) {
        INGOT_ASSIGN_OR_RETURN(auto other, repo.FindByName(kind, Str(d, "name")));
        if (!other) continue;
        if (kind == Kind::kGoldenImage) {
          existing_golden_sum[Str(d, "name")] = Str(*other, "checkSum");
        } else if (same(kind, d, *other)) {
          reused.insert(std::string(KindName(kind)) + "/" + Str(d, "name"));
        } else {
          taken.push_back(std::string(KindWord(kind)) + " '" + Str(d, "name") + "'");
        }
      }
      return Status::Ok();
    };
    INGOT_RETURN_IF_ERROR(check(Kind::kPlanScript, c.plan_scripts));
    INGOT_RETURN_IF_ERROR(check(Kind::kBuildPlan, c.build_plans));
    INGOT_RETURN_IF_ERROR(check(Kind::kDeploymentPlan, c.deployment_plans));
    INGOT_RETURN_IF_ERROR(check(Kind::kGoldenImage, c.golden_images));
  }
  auto conflict = [&]() {
    std::string list;
    for (size_t i = 0; i < taken.size() && i < 10; ++i) list += (i ? ", " : "") + taken[i];
    if (taken.size() > 10) list += " and " + std::to_string(taken.size() - 10) + " more";
    return Conflict("the bundle's artifacts exist already with other contents: " + list +
                    "; rename or delete them, then extract the bundle again");
  };
  if (!taken.empty()) return conflict();
  auto is_reused = [&](Kind kind, const json::object& d) {
    return reused.count(std::string(KindName(kind)) + "/" + Str(d, "name")) > 0;
  };
  StagingRepository staging(repo, replace_all);
  ArtifactService staged(staging, volumes, artifact_options, nullptr);
  const bool ro = c.manifest.read_only;
  const std::string bundle_name = Str(bundle, "name");
  const std::string bundle_uri = Str(bundle, "uri");
  Staged out;
  auto where = [](const std::string& entry, const Status& s) {
    if (IsServerFault(s.code()) || s.code() == Code::kConflict) return s;
    return Status(s.code() == Code::kAlreadyExists ? Code::kConflict : Code::kInvalidArgument,
                  entry + ": " + s.message());
  };

  // Plan scripts: by the ids the bundle's build plans name them with.
  std::map<std::string, std::string> script_uri;
  for (const auto& [entry, d] : c.plan_scripts) {
    std::string bundle_id =
        Str(d, "id", entry.substr(0, entry.size() - EntrySuffix(EntryKind::kPlanScript).size()));
    if (is_reused(Kind::kPlanScript, d)) {
      INGOT_ASSIGN_OR_RETURN(auto e, repo.FindByName(Kind::kPlanScript, Str(d, "name")));
      script_uri[bundle_id] = Str(*e, "uri");
      out.plan_scripts.push_back(Member(*e));
      continue;
    }
    json::object body{{"name", d.at("name")},
                      {"description", Str(d, "description")},
                      {"planType", Str(d, "planType", "general")},
                      {"content", Str(d, "content")},
                      {"hpProvided", Flag(d, "hpProvided")},
                      {"readOnly", ro || Flag(d, "readOnly")}};
    auto created = staged.CreatePlanScript(body);
    if (!created.ok()) return where(entry, created.status());
    script_uri[bundle_id] = Str(*created, "uri");
    out.plan_scripts.push_back(Member(*created));
  }

  // Golden images: payload streamed out of the zip (out of its inner zip too), checked, hashed.
  std::vector<uint8_t> buf(1 << 20);
  for (const auto& [entry, d] : c.golden_images) {
    const std::string name = Str(d, "name");
    const EntryInfo& info = b.entries.at(name);
    const std::string tmp = options.dir + "/bundles/.tmp-" + NewUuid() + ".payload";
    placed.paths.push_back(tmp);
    {
      EntryReader r(b.zip.get(), info.index, info.size, name);
      INGOT_RETURN_IF_ERROR(r.Open());
      auto sum = WriteUpload(tmp, r, options.max_payload_bytes);
      if (!sum.ok()) return where("golden image '" + name + "'", sum.status());
      const std::string* want = b.sums.Find(name);
      if (want == nullptr || *want != r.Hex()) {
        return InvalidArgument("the entry '" + name +
                               "' does not match its SHA-256 in SHA256SUM.sha256sum");
      }
    }
    // Image Streamer wraps the image in a zip of one entry; a bare image is taken as it is.
    char magic[4] = {};
    {
      INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(tmp, O_RDONLY | O_CLOEXEC));
      (void)::pread(fd.get(), magic, sizeof magic, 0);
    }
    // The image's bytes: a new golden image, or (the name being taken) compared with the one there.
    auto take = [&](io::Reader& r) -> Result<json::object> {
      auto it = existing_golden_sum.find(name);
      if (it == existing_golden_sum.end())
        return staged.UploadGoldenImage(name, Str(d, "description"), r);
      INGOT_ASSIGN_OR_RETURN(auto hasher, io::Hasher::Create("sha256"));
      for (;;) {
        INGOT_ASSIGN_OR_RETURN(size_t n, r.Read(buf));
        if (n == 0) break;
        hasher->Update({buf.data(), n});
      }
      if (hasher->HexDigest() != it->second) {
        taken.push_back("golden image '" + name + "'");
        return conflict();
      }
      INGOT_ASSIGN_OR_RETURN(auto e, repo.FindByName(Kind::kGoldenImage, name));
      if (e) out.golden_images.push_back(Member(*e));
      return json::object();
    };
    Result<json::object> created = Internal("unset");
    if (std::string_view(magic, 4) == std::string_view("PK\3\4", 4)) {
      INGOT_ASSIGN_OR_RETURN(ZipPtr inner, OpenZip(tmp, "the golden image '" + name + "' payload"));
      std::optional<std::pair<zip_uint64_t, uint64_t>> image;
      zip_int64_t n = zip_get_num_entries(inner.get(), 0);
      for (zip_int64_t i = 0; i < n; ++i) {
        zip_stat_t st;
        zip_stat_init(&st);
        if (zip_stat_index(inner.get(), zip_uint64_t(i), 0, &st) != 0) {
          return InvalidArgument("the golden image '" + name +
                                 "' payload: " + zip_strerror(inner.get()));
        }
        std::string_view en = st.name ? st.name : "";
        if (!en.empty() && en.back() == '/') continue;  // a directory
        if (image)
          return InvalidArgument("the golden image '" + name +
                                 "' payload holds more than one file");
        if (st.size > options.max_payload_bytes) {
          return InvalidArgument("the golden image '" + name + "' declares " +
                                 std::to_string(st.size) + " bytes, more than the " +
                                 std::to_string(options.max_payload_bytes) + " allowed");
        }
        if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) {
          return InvalidArgument("the golden image '" + name + "' payload is encrypted");
        }
        image = std::make_pair(zip_uint64_t(i), uint64_t(st.size));
      }
      if (!image) return InvalidArgument("the golden image '" + name + "' payload holds no file");
      INGOT_RETURN_IF_ERROR(CheckRoom(options.dir, image->second, "the golden image '" + name + "'"));
      EntryReader r(inner.get(), image->first, image->second, name);
      INGOT_RETURN_IF_ERROR(r.Open());
      created = take(r);
    } else {
      INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(tmp, O_RDONLY | O_CLOEXEC));
      io::FdReader r(fd.get(), tmp);
      created = take(r);
    }
    (void)RemoveFile(tmp);
    if (created.ok() && created->empty()) continue;  // the same image is there already
    if (!created.ok()) return where("golden image '" + name + "'", created.status());
    INGOT_ASSIGN_OR_RETURN(std::string file, staged.GoldenImagePath(Str(*created, "id")));
    placed.paths.push_back(file);
    json::object g = *created;
    g["readOnly"] = ro || Flag(d, "readOnly");
    g["importedFromBundle"] = true;
    g["bundleName"] = bundle_name;
    g["bundleURI"] = bundle_uri;
    g["source"] = "bundle";
    INGOT_RETURN_IF_ERROR(staging.Put({Kind::kGoldenImage, Str(g, "id"), g}));
    out.golden_images.push_back(Member(g));
  }

  // Build plans: steps name the bundle's scripts by id (remapped), others by name.
  for (const auto& [entry, d] : c.build_plans) {
    if (is_reused(Kind::kBuildPlan, d)) {
      INGOT_ASSIGN_OR_RETURN(auto e, repo.FindByName(Kind::kBuildPlan, Str(d, "name")));
      out.build_plans.push_back(Member(*e));
      continue;
    }
    json::object body{{"name", d.at("name")},
                      {"description", Str(d, "description")},
                      {"oeBuildPlanType", Str(d, "oeBuildPlanType")},
                      {"hpProvided", Flag(d, "hpProvided")},
                      {"readOnly", ro || Flag(d, "readOnly")}};
    if (const json::value* ca = d.if_contains("customAttributes"); ca && ca->is_array()) {
      body["customAttributes"] = *ca;
    }
    json::array steps;
    if (const json::value* bs = d.if_contains("buildStep"); bs && bs->is_array()) {
      for (const json::value& sv : bs->as_array()) {
        if (!sv.is_object()) return InvalidArgument(entry + ": each buildStep must be an object");
        json::object s = sv.as_object();
        auto it = script_uri.find(LastSegment(Str(s, "planScriptUri")));
        if (it != script_uri.end()) {
          s["planScriptUri"] = it->second;
        } else {
          s.erase("planScriptUri");  // a script already here, by its name
        }
        if (s.contains("parameters") && s["parameters"].is_null()) s["parameters"] = "";
        steps.push_back(std::move(s));
      }
    }
    body["buildStep"] = std::move(steps);
    auto created = staged.CreateBuildPlan(body);
    if (!created.ok()) return where(entry, created.status());
    out.build_plans.push_back(Member(*created));
  }

  // Deployment plans: build plan and golden image by name (the bundle's, else one already here).
  for (const auto& [entry, d] : c.deployment_plans) {
    if (is_reused(Kind::kDeploymentPlan, d)) {
      INGOT_ASSIGN_OR_RETURN(auto e, repo.FindByName(Kind::kDeploymentPlan, Str(d, "name")));
      out.deployment_plans.push_back(Member(*e));
      continue;
    }
    auto by_name = [&](Kind kind, const std::string& ref) -> Result<std::string> {
      if (ref.empty()) return std::string();
      INGOT_ASSIGN_OR_RETURN(auto found, staging.FindByName(kind, ref));
      if (found) return Str(*found, "uri");
      if (ref.starts_with(std::string(CollectionUri(kind)) + "/")) return ref;
      return InvalidArgument(entry + ": no " + KindWord(kind) + " named '" + ref + "'");
    };
    INGOT_ASSIGN_OR_RETURN(std::string bp, by_name(Kind::kBuildPlan, Str(d, "oeBuildPlanURI")));
    INGOT_ASSIGN_OR_RETURN(std::string gi, by_name(Kind::kGoldenImage, Str(d, "goldenImageURI")));
    json::object body{{"name", d.at("name")},
                      {"description", Str(d, "description")},
                      {"oeBuildPlanURI", bp},
                      {"goldenImageURI", gi},
                      {"hpProvided", Flag(d, "hpProvided")},
                      {"readOnly", ro || Flag(d, "readOnly")}};
    if (const json::value* ca = d.if_contains("customAttributes"); ca && ca->is_array()) {
      json::array attrs;
      for (const json::value& a : ca->as_array()) {
        if (!a.is_object()) return InvalidArgument(entry + ": customAttributes must be objects");
        json::object o = a.as_object();
        // Image Streamer writes "" for "no value here" (the deployment gives one).
        if (const json::value* v = o.if_contains("value");
            v != nullptr && (v->is_null() || (v->is_string() && v->as_string().empty()))) {
          o.erase("value");
        }
        attrs.push_back(std::move(o));
      }
      body["customAttributes"] = std::move(attrs);
    }
    auto created = staged.CreateDeploymentPlan(body);
    if (!created.ok()) return where(entry, created.status());
    out.deployment_plans.push_back(Member(*created));
  }
  out.records = std::move(staging.pending());
  return out;
}

Result<json::object> BundleService::Extract(const std::string& id, const std::string& owner,
                                            bool background) {
  INGOT_RETURN_IF_ERROR(repo_.Get(Kind::kArtifactBundle, id).status());
  return Launch(NewTask("Extract artifact bundle", owner), background,
                [this, id](const json::object& task) { return ExtractNow(id, task); });
}

Result<json::object> BundleService::ExtractNow(const std::string& id, const json::object& task) {
  std::lock_guard<std::mutex> lock(mu_);
  INGOT_ASSIGN_OR_RETURN(json::object bundle, repo_.Get(Kind::kArtifactBundle, id));
  const std::string path = options_.dir + "/bundles/" + Str(bundle, "_file");
  PlacedFiles placed;
  auto staged =
      StageBundle(path, bundle, false, repo_, volumes_, artifact_options_, options_, placed);
  Status result = staged.status();
  if (result.ok()) {
    bundle["extracted"] = true;
    bundle["planScripts"] = staged->plan_scripts;
    bundle["buildPlans"] = staged->build_plans;
    bundle["deploymentPlans"] = staged->deployment_plans;
    bundle["goldenImages"] = staged->golden_images;
    bundle["modified"] = Now();
    INGOT_ASSIGN_OR_RETURN(json::object done, EndTask(task, Status::Ok(), bundle));
    std::vector<Record> records = std::move(staged->records);
    records.push_back({Kind::kArtifactBundle, id, bundle});
    records.push_back({Kind::kTask, Str(done, "id"), done});
    result = repo_.Put(records);
    if (result.code() == Code::kAlreadyExists) result = Conflict(result.message());
    if (result.ok()) {
      placed.committed = true;
      log::Info(
          "deploy.bundle_extract",
          {{"id", id}, {"name", Str(bundle, "name")}, {"artifacts", int64_t(records.size() - 2)}});
      if (options_.golden_images_added) {
        std::vector<std::string> golden;
        for (const Record& r : records) {
          if (r.kind == Kind::kGoldenImage) golden.push_back(r.id);
        }
        if (!golden.empty()) options_.golden_images_added(golden);
      }
      return done;
    }
  }
  placed.committed = false;
  auto failed = EndTask(task, result, bundle);
  if (failed.ok()) (void)repo_.Put({Kind::kTask, Str(*failed, "id"), *failed});
  return result;
}

// ---------------------------------------------------------------- export

namespace {

// What a record looks like inside a bundle: the API's document without internal fields.
json::object Exported(json::object doc, const char* type) {
  for (auto it = doc.begin(); it != doc.end();) {
    if (!it->key().empty() && it->key().front() == '_') {
      it = doc.erase(it);
    } else {
      ++it;
    }
  }
  doc["type"] = type;
  return doc;
}

struct ZipWriter {
  zip_t* zip = nullptr;
  std::deque<std::string> buffers;  // alive until zip_close
  ~ZipWriter() {
    if (zip != nullptr) zip_discard(zip);
  }
  Status Open(const std::string& path) {
    int err = 0;
    zip = zip_open(path.c_str(), ZIP_CREATE | ZIP_EXCL, &err);
    if (zip == nullptr)
      return Internal("zip_open " + path + " failed (" + std::to_string(err) + ")");
    return Status::Ok();
  }
  Status AddText(const std::string& name, std::string text) {
    buffers.push_back(std::move(text));
    zip_source_t* src = zip_source_buffer(zip, buffers.back().data(), buffers.back().size(), 0);
    if (src == nullptr) return Internal(std::string("zip_source_buffer: ") + zip_strerror(zip));
    zip_int64_t i = zip_file_add(zip, name.c_str(), src, ZIP_FL_ENC_UTF_8);
    if (i < 0) {
      zip_source_free(src);
      return Internal(std::string("zip_file_add: ") + zip_strerror(zip));
    }
    return Status::Ok();
  }
  Status AddFile(const std::string& name, const std::string& path, bool compress) {
    zip_source_t* src = zip_source_file(zip, path.c_str(), 0, -1);
    if (src == nullptr) return Internal(std::string("zip_source_file: ") + zip_strerror(zip));
    zip_int64_t i = zip_file_add(zip, name.c_str(), src, ZIP_FL_ENC_UTF_8);
    if (i < 0) {
      zip_source_free(src);
      return Internal(std::string("zip_file_add: ") + zip_strerror(zip));
    }
    // Fast deflate for images (mostly zeros or already compressed); a wrapped zip is stored.
    if (zip_set_file_compression(zip, zip_uint64_t(i), compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
                                 compress ? 1 : 0) != 0) {
      return Internal(std::string("zip_set_file_compression: ") + zip_strerror(zip));
    }
    return Status::Ok();
  }
  Status Close() {
    if (zip_close(zip) != 0) return Internal(std::string("zip_close: ") + zip_strerror(zip));
    zip = nullptr;
    return Status::Ok();
  }
};

Result<std::string> FileSha256(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_RDONLY | O_CLOEXEC));
  io::FdReader r(fd.get(), path);
  INGOT_ASSIGN_OR_RETURN(auto hasher, io::Hasher::Create("sha256"));
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    INGOT_ASSIGN_OR_RETURN(size_t n, r.Read(buf));
    if (n == 0) break;
    hasher->Update({buf.data(), n});
  }
  return hasher->HexDigest();
}

std::string Sha256Hex(const std::string& text) {
  auto h = io::HexDigestOf("sha256", {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  return h.ok() ? *h : std::string();
}

}  // namespace

Result<BundleService::Written> BundleService::WriteBundle(
    Kind kind, const std::string& name, const std::string& description, bool read_only,
    const std::vector<json::object>& ps, const std::vector<json::object>& bp,
    const std::vector<json::object>& dp, const std::vector<json::object>& gi) {
  const std::string dir = options_.dir + (kind == Kind::kBackup ? "/backups" : "/bundles");
  INGOT_RETURN_IF_ERROR(io::MakeDirs(dir));
  for (const json::object& g : gi)
    INGOT_RETURN_IF_ERROR(CheckEntryName(Str(g, "name"))
                              .WithContext("the golden image's name is its entry in the bundle"));
  const std::string id = NewUuid();
  const std::string tmp = dir + "/.tmp-" + id;
  PlacedFiles placed;
  placed.paths.push_back(tmp);
  BundleSums sums;
  ZipWriter zw;
  INGOT_RETURN_IF_ERROR(zw.Open(tmp));
  auto add_doc = [&](const json::object& d, EntryKind k, const char* type) -> Status {
    json::object e = Exported(d, type);
    if (k == EntryKind::kDeploymentPlan) {
      // References by name, as Image Streamer writes them.
      e["oeBuildPlanURI"] = Str(d, "oeBuildPlanName");
      e["goldenImageURI"] = Str(d, "goldenImageName").empty()
                                ? json::value(nullptr)
                                : json::value(Str(d, "goldenImageName"));
    }
    if (k == EntryKind::kGoldenImage) {
      e["importedFromBundle"] = true;
      e["bundleName"] = name;
    }
    std::string entry = Str(d, "id") + std::string(EntrySuffix(k));
    std::string text = json::serialize(e);
    sums.entries.emplace_back(entry, Sha256Hex(text));
    return zw.AddText(entry, std::move(text));
  };
  for (const auto& d : ps) INGOT_RETURN_IF_ERROR(add_doc(d, EntryKind::kPlanScript, "PlanScript"));
  for (const auto& d : gi) {
    INGOT_RETURN_IF_ERROR(add_doc(d, EntryKind::kGoldenImage, "GoldenImage"));
    // The payload: a zip holding the image as its one entry, as Image Streamer writes it.
    const std::string inner = dir + "/.tmp-" + id + "-" + Str(d, "id") + ".zip";
    placed.paths.push_back(inner);
    {
      ZipWriter iz;
      INGOT_RETURN_IF_ERROR(iz.Open(inner));
      INGOT_RETURN_IF_ERROR(
          iz.AddFile(Str(d, "id"), artifact_options_.dir + "/golden/" + Str(d, "_file"), true));
      INGOT_RETURN_IF_ERROR(iz.Close());
    }
    INGOT_ASSIGN_OR_RETURN(std::string sum, FileSha256(inner));
    sums.entries.emplace_back(Str(d, "name"), sum);
    INGOT_RETURN_IF_ERROR(zw.AddFile(Str(d, "name"), inner, false));
  }
  for (const auto& d : bp) INGOT_RETURN_IF_ERROR(add_doc(d, EntryKind::kBuildPlan, "OeBuildPlan"));
  for (const auto& d : dp)
    INGOT_RETURN_IF_ERROR(add_doc(d, EntryKind::kDeploymentPlan, "OEDeploymentPlan"));
  BundleManifest m{.name = name,
                   .description = description,
                   .read_only = read_only,
                   .timestamp = FormatIso8601(NowMicros()),
                   .type = "USER"};
  std::string manifest = WriteManifest(m);
  sums.entries.emplace_back(std::string(kManifestEntry), Sha256Hex(manifest));
  INGOT_RETURN_IF_ERROR(zw.AddText(std::string(kManifestEntry), manifest));
  INGOT_RETURN_IF_ERROR(zw.AddText(std::string(kSumsEntry), WriteSums(sums)));
  INGOT_RETURN_IF_ERROR(zw.Close());
  INGOT_RETURN_IF_ERROR(FsyncPath(tmp));
  INGOT_ASSIGN_OR_RETURN(std::string sum, FileSha256(tmp));
  struct stat st {};
  if (::stat(tmp.c_str(), &st) != 0) return FromErrno(errno, "stat " + tmp);
  const std::string path = dir + "/" + id + ".zip";
  if (::rename(tmp.c_str(), path.c_str()) != 0) return FromErrno(errno, "rename " + tmp);
  INGOT_RETURN_IF_ERROR(io::SyncParentDir(path));
  placed.paths.push_back(path);
  auto members = [&](const std::vector<json::object>& docs) {
    json::array out;
    for (const auto& d : docs) out.push_back(Member(d));
    return out;
  };
  json::object doc{{"name", name},
                   {"description", description},
                   {"readOnly", read_only},
                   {"timestamp", m.timestamp},
                   {"artifactType", "USER"},
                   {"size", int64_t(st.st_size)},
                   {"checkSum", sum},
                   {"importedFromFile", false},
                   {"extracted", true},
                   {"planScripts", members(ps)},
                   {"buildPlans", members(bp)},
                   {"deploymentPlans", members(dp)},
                   {"goldenImages", members(gi)},
                   {"artifactsCount", int64_t(ps.size() + bp.size() + dp.size() + gi.size())},
                   {"_file", id + ".zip"}};
  StampBundle(doc, kind, id);
  doc["downloadURI"] = std::string(kind == Kind::kBackup ? "/rest/artifact-bundles/backups/archive/"
                                                         : "/rest/artifact-bundles/download/") +
                       id;
  // The inner zips go; the bundle stays only if its record is written (by the caller).
  for (size_t i = 1; i + 1 < placed.paths.size(); ++i) (void)RemoveFile(placed.paths[i]);
  placed.committed = true;
  return Written{std::move(doc), path};
}

Result<json::object> BundleService::Create(const json::object& body, const std::string& owner,
                                           bool background) {
  std::string name = Str(body, "name");
  if (name.empty() || name.size() > 255)
    return InvalidArgument("name is required (1-255 characters)");
  {
    INGOT_ASSIGN_OR_RETURN(auto taken, repo_.FindByName(Kind::kArtifactBundle, name));
    if (taken) return AlreadyExists("an artifact bundle named '" + name + "' exists");
  }
  // The artifacts named, then what they depend on, each once, in Image Streamer's order.
  std::vector<json::object> ps, bp, dp, gi;
  std::set<std::string> seen;
  auto add = [&](Kind kind, const std::string& id) -> Result<json::object> {
    auto doc = repo_.Get(kind, LastSegment(id));
    if (!doc.ok()) {
      if (doc.status().code() == Code::kNotFound) {
        return InvalidArgument(std::string(KindWord(kind)) + " '" + id + "' does not exist");
      }
      return doc.status();
    }
    if (seen.insert(std::string(KindName(kind)) + "/" + Str(*doc, "id")).second) {
      auto& list = kind == Kind::kPlanScript       ? ps
                   : kind == Kind::kBuildPlan      ? bp
                   : kind == Kind::kDeploymentPlan ? dp
                                                   : gi;
      list.push_back(*doc);
    }
    return doc;
  };
  std::function<Status(Kind, const std::string&)> add_with_deps =
      [&](Kind kind, const std::string& uri) -> Status {
    INGOT_ASSIGN_OR_RETURN(json::object doc, add(kind, uri));
    if (kind == Kind::kDeploymentPlan) {
      INGOT_RETURN_IF_ERROR(add_with_deps(Kind::kBuildPlan, Str(doc, "oeBuildPlanURI")));
      if (!Str(doc, "goldenImageURI").empty()) {
        INGOT_RETURN_IF_ERROR(add_with_deps(Kind::kGoldenImage, Str(doc, "goldenImageURI")));
      }
    } else if (kind == Kind::kBuildPlan) {
      if (const json::value* steps = doc.if_contains("buildStep"); steps && steps->is_array()) {
        for (const json::value& s : steps->as_array()) {
          INGOT_RETURN_IF_ERROR(
              add_with_deps(Kind::kPlanScript, Str(s.as_object(), "planScriptUri")));
        }
      }
    }
    return Status::Ok();
  };
  int named = 0;
  for (auto [field, kind] :
       {std::pair{"deploymentPlans", Kind::kDeploymentPlan},
        std::pair{"buildPlans", Kind::kBuildPlan}, std::pair{"planScripts", Kind::kPlanScript},
        std::pair{"goldenImages", Kind::kGoldenImage}}) {
    const json::value* list = body.if_contains(field);
    if (list == nullptr || list->is_null()) continue;
    if (!list->is_array())
      return InvalidArgument(std::string(field) + " must be an array of {resourceUri}");
    for (const json::value& e : list->as_array()) {
      std::string uri = e.is_string()   ? std::string(e.as_string())
                        : e.is_object() ? Str(e.as_object(), "resourceUri")
                                        : "";
      if (uri.empty())
        return InvalidArgument(std::string(field) + ": each member needs a resourceUri");
      if (uri.find('/') != std::string::npos &&
          !uri.starts_with(std::string(CollectionUri(kind)) + "/")) {
        return InvalidArgument(std::string(field) + ": '" + uri + "' is not under " +
                               std::string(CollectionUri(kind)));
      }
      INGOT_RETURN_IF_ERROR(add_with_deps(kind, uri));
      ++named;
    }
  }
  if (named == 0)
    return InvalidArgument(
        "name at least one artifact (planScripts, buildPlans, deploymentPlans, goldenImages)");
  return Launch(NewTask("Create artifact bundle", owner), background,
                [this, name, description = Str(body, "description"), ro = Flag(body, "readOnly"),
                 ps, bp, dp, gi](const json::object& task) -> Result<json::object> {
                  std::lock_guard<std::mutex> lock(mu_);
                  INGOT_ASSIGN_OR_RETURN(Written w, WriteBundle(Kind::kArtifactBundle, name,
                                                                description, ro, ps, bp, dp, gi));
                  return Finish(Kind::kArtifactBundle, task, w);
                });
}

// Records a written bundle or backup with its ended task; the file goes if the record cannot be
// written.
Result<json::object> BundleService::Finish(Kind kind, const json::object& task, const Written& w) {
  INGOT_ASSIGN_OR_RETURN(json::object done, EndTask(task, Status::Ok(), w.doc));
  Status s = repo_.Put({{kind, Str(w.doc, "id"), w.doc}, {Kind::kTask, Str(done, "id"), done}});
  if (!s.ok()) {
    (void)RemoveFile(w.path);
    return s;
  }
  return done;
}

Result<json::object> BundleService::Rename(const std::string& id, const json::object& body) {
  std::lock_guard<std::mutex> lock(mu_);
  INGOT_ASSIGN_OR_RETURN(json::object doc, repo_.Get(Kind::kArtifactBundle, id));
  std::string name = Str(body, "name", Str(doc, "name"));
  if (name.empty() || name.size() > 255)
    return InvalidArgument("name is required (1-255 characters)");
  doc["name"] = name;
  if (body.contains("description")) doc["description"] = Str(body, "description");
  StampBundle(doc, Kind::kArtifactBundle, id);
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kArtifactBundle, id, doc}));
  return doc;
}

Status BundleService::Delete(const std::string& id, Kind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  INGOT_ASSIGN_OR_RETURN(json::object doc, repo_.Get(kind, id));
  INGOT_RETURN_IF_ERROR(repo_.Remove(kind, id));
  return RemoveFile(options_.dir + (kind == Kind::kBackup ? "/backups/" : "/bundles/") +
                    Str(doc, "_file"));
}

Result<std::string> BundleService::PathOf(Kind kind, const std::string& id) {
  INGOT_ASSIGN_OR_RETURN(json::object doc, repo_.Get(kind, id));
  return options_.dir + (kind == Kind::kBackup ? "/backups/" : "/bundles/") + Str(doc, "_file");
}

// ---------------------------------------------------------------- backups

Result<json::object> BundleService::CreateBackup(const std::string& owner, bool background) {
  return Launch(NewTask("Create artifact bundle backup", owner), background,
                [this](const json::object& task) -> Result<json::object> {
                  std::lock_guard<std::mutex> lock(mu_);
                  INGOT_ASSIGN_OR_RETURN(auto ps, repo_.List(Kind::kPlanScript));
                  INGOT_ASSIGN_OR_RETURN(auto bp, repo_.List(Kind::kBuildPlan));
                  INGOT_ASSIGN_OR_RETURN(auto dp, repo_.List(Kind::kDeploymentPlan));
                  INGOT_ASSIGN_OR_RETURN(auto gi, repo_.List(Kind::kGoldenImage));
                  std::string name = "backup-" + FormatIso8601(NowMicros());
                  INGOT_ASSIGN_OR_RETURN(
                      Written w, WriteBundle(Kind::kBackup, name, "Backup of every artifact", false,
                                             ps, bp, dp, gi));
                  return Finish(Kind::kBackup, task, w);
                });
}

Result<json::object> BundleService::Restore(const std::string& id_in, const std::string& owner,
                                            bool background) {
  std::string id = id_in;
  if (id.empty()) {
    INGOT_ASSIGN_OR_RETURN(auto backups, repo_.List(Kind::kBackup));
    if (backups.empty()) return NotFound("there is no backup to restore");
    id = Str(backups.back(), "id");
  }
  INGOT_RETURN_IF_ERROR(repo_.Get(Kind::kBackup, id).status());
  return Launch(NewTask("Restore artifact bundle backup", owner), background,
                [this, id](const json::object& task) { return RestoreNow(id, task); });
}

Result<json::object> BundleService::RestoreNow(const std::string& id, const json::object& task) {
  std::lock_guard<std::mutex> lock(mu_);
  INGOT_ASSIGN_OR_RETURN(json::object backup, repo_.Get(Kind::kBackup, id));
  INGOT_ASSIGN_OR_RETURN(auto volumes, repo_.List(Kind::kOsVolume));
  for (const json::object& v : volumes) {
    if (Str(v, "state") == "Deploying") {
      return Conflict("OS volume '" + Str(v, "name") +
                      "' is being deployed; restore when its task has ended");
    }
  }
  INGOT_ASSIGN_OR_RETURN(auto old_golden, repo_.List(Kind::kGoldenImage));
  PlacedFiles placed;
  const std::string path = options_.dir + "/backups/" + Str(backup, "_file");
  auto staged =
      StageBundle(path, backup, true, repo_, volumes_, artifact_options_, options_, placed);
  Status result = staged.status();
  if (result.ok()) {
    INGOT_ASSIGN_OR_RETURN(json::object done, EndTask(task, Status::Ok(), backup));
    std::vector<Record> records = std::move(staged->records);
    records.push_back({Kind::kTask, Str(done, "id"), done});
    result = repo_.Replace(
        {Kind::kPlanScript, Kind::kBuildPlan, Kind::kDeploymentPlan, Kind::kGoldenImage}, records);
    if (result.ok()) {
      placed.committed = true;
      // The replaced golden images' files (volumes cloned from them keep their own hard links).
      for (const json::object& g : old_golden) {
        (void)RemoveFile(artifact_options_.dir + "/golden/" + Str(g, "_file"));
      }
      log::Info("deploy.bundle_restore",
                {{"backup", id}, {"artifacts", int64_t(records.size() - 1)}});
      return done;
    }
  }
  auto failed = EndTask(task, result, backup);
  if (failed.ok()) (void)repo_.Put({Kind::kTask, Str(*failed, "id"), *failed});
  return result;
}

}  // namespace ingot::deploy::artifacts
