#include "boot/content_service.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "boot/layouts.h"
#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"
#include "io/file.h"
#include "io/adapters.h"
#include "io/hash.h"

namespace ingot::boot {
namespace {

constexpr size_t kChunk = 1 << 20;
constexpr const char* kPartialPrefix = ".partial-";

Status MakeDir(const std::string& dir) { return io::MakeDirs(dir); }

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Removes hidden partial files beneath `dir` (recursively); how many.
int RemovePartials(const std::string& dir) {
  int removed = 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  std::vector<std::string> subdirs;
  while (struct dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      subdirs.push_back(path);
    } else if (StartsWith(name, kPartialPrefix) && ::unlink(path.c_str()) == 0) {
      ++removed;
    }
  }
  ::closedir(d);
  for (const std::string& s : subdirs) removed += RemovePartials(s);
  return removed;
}

// Regular files beneath `dir` as paths relative to it.
void ListTree(const std::string& dir, const std::string& rel, std::vector<std::string>& out) {
  DIR* d = ::opendir((rel.empty() ? dir : dir + "/" + rel).c_str());
  if (d == nullptr) return;
  std::vector<std::string> subdirs;
  while (struct dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name == "." || name == "..") continue;
    std::string r = rel.empty() ? name : rel + "/" + name;
    struct stat st;
    if (::lstat((dir + "/" + r).c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      subdirs.push_back(r);
    } else {
      out.push_back(r);
    }
  }
  ::closedir(d);
  for (const std::string& s : subdirs) ListTree(dir, s, out);
}

// Removes now-empty directories from `path`'s parent up to (not including) `stop`.
void PruneEmptyParents(const std::string& path, const std::string& stop) {
  std::string dir = Parent(path);
  while (dir.size() > stop.size() && StartsWith(dir, stop + "/")) {
    if (::rmdir(dir.c_str()) != 0) break;
    dir = Parent(dir);
  }
}

}  // namespace

Result<std::unique_ptr<ContentService>> ContentService::Open(ContentRepository& repo,
                                                             ContentOptions options) {
  if (options.dir.empty()) return InvalidArgument("boot content: the directory is not set");
  for (const char* sub : {"iso", "common", "files"}) {
    INGOT_RETURN_IF_ERROR(MakeDir(options.dir + "/" + sub));
  }
  std::unique_ptr<ContentService> s(new ContentService(repo, std::move(options)));
  s->view_ = std::make_shared<View>();
  return s;
}

ContentService::~ContentService() {
  stopping_.store(true);
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(downloads_);
  }
  for (std::thread& t : threads) t.join();
}

Status ContentService::Reload() {
  std::lock_guard reloading(reload_mu_);
  auto view = std::make_shared<View>();
  INGOT_ASSIGN_OR_RETURN(std::vector<Iso> isos, repo_.ListIsos());
  for (const Iso& i : isos) {
    if (i.status == IsoStatus::kReady) view->isos.insert(i.name);
  }
  INGOT_ASSIGN_OR_RETURN(std::vector<OsTree> trees, repo_.ListTrees());
  for (OsTree& t : trees) {
    if (t.status == TreeStatus::kOk && view->isos.count(t.iso)) {
      view->trees.emplace(std::make_pair(t.name, t.version), std::move(t));
    }
  }
  for (FileSpace space : {FileSpace::kMicrokernel, FileSpace::kFiles}) {
    INGOT_ASSIGN_OR_RETURN(std::vector<BootFile> files, repo_.ListFiles(space));
    auto& top = space == FileSpace::kMicrokernel ? view->microkernel_top : view->files_top;
    for (const BootFile& f : files) top.insert(f.name.substr(0, f.name.find('/')));
  }
  INGOT_ASSIGN_OR_RETURN(std::vector<Publication> pubs, repo_.ListPublications());
  for (const Publication& p : pubs) {
    view->by_name[p.name] = p;
    view->by_id.emplace(p.image_id, p);  // the first (by name) answers for the id
  }
  std::unique_lock lock(view_mu_);
  view_ = std::move(view);
  return Status::Ok();
}

Result<ContentRepairReport> ContentService::Repair() {
  ContentRepairReport report;
  for (const char* sub : {"iso", "common", "files"}) {
    report.partial_removed += RemovePartials(options_.dir + "/" + sub);
  }
  // ISOs whose bytes never completed: their record and any file under their name go.
  INGOT_ASSIGN_OR_RETURN(std::vector<Iso> isos, repo_.ListIsos());
  std::set<std::string> ready;
  for (Iso& iso : isos) {
    if (iso.status == IsoStatus::kReady) {
      struct stat st;
      if (::stat(IsoPath(iso.name).c_str(), &st) != 0 ||
          static_cast<uint64_t>(st.st_size) != iso.size) {
        iso.status = IsoStatus::kFailed;
        iso.error = "the ISO's bytes are missing or short";
        INGOT_RETURN_IF_ERROR(repo_.PutIso(iso));
        log::Error("boot.repair.iso_missing", {{"iso", iso.name}});
        continue;
      }
      ready.insert(iso.name);
      continue;
    }
    if (iso.status == IsoStatus::kFailed) continue;
    ::unlink(IsoPath(iso.name).c_str());
    iso.status = IsoStatus::kFailed;
    iso.error = "interrupted by a restart before its bytes were complete; add it again";
    // Trees may hold it; mark it failed (deletable once they go) rather than dangling them.
    INGOT_RETURN_IF_ERROR(repo_.PutIso(iso));
    ++report.isos_removed;
  }
  // Stored ISO files nobody records (a crash between rename and record).
  for (const std::string& f : [&] {
         std::vector<std::string> v;
         ListTree(options_.dir + "/iso", "", v);
         return v;
       }()) {
    bool known = false;
    for (const Iso& i : isos) known = known || (i.name == f && i.status == IsoStatus::kReady);
    if (!known && ::unlink((options_.dir + "/iso/" + f).c_str()) == 0) ++report.files_removed;
  }
  INGOT_ASSIGN_OR_RETURN(std::vector<OsTree> trees, repo_.ListTrees());
  for (OsTree& t : trees) {
    if (t.status != TreeStatus::kPreparing) continue;
    if (!ready.count(t.iso)) {
      t.status = TreeStatus::kFailed;
      t.error = "its ISO '" + t.iso + "' did not arrive";
      INGOT_RETURN_IF_ERROR(repo_.UpdateTree(t));
      ++report.trees_failed;
      continue;
    }
    OsTree done = Prepare(std::move(t));
    (done.status == TreeStatus::kOk ? report.trees_prepared : report.trees_failed)++;
  }
  // Boot files: the record is written after the rename, so a file without one is a crash's
  // leftover; a record without its file is dropped.
  for (FileSpace space : {FileSpace::kMicrokernel, FileSpace::kFiles}) {
    const std::string root = options_.dir + "/" + std::string(FileSpaceDir(space));
    INGOT_ASSIGN_OR_RETURN(std::vector<BootFile> files, repo_.ListFiles(space));
    std::set<std::string> recorded;
    for (const BootFile& f : files) {
      struct stat st;
      if (::stat((root + "/" + f.name).c_str(), &st) != 0) {
        INGOT_RETURN_IF_ERROR(repo_.DeleteFile(space, f.name));
        ++report.files_removed;
      } else {
        recorded.insert(f.name);
      }
    }
    std::vector<std::string> present;
    ListTree(root, "", present);
    for (const std::string& p : present) {
      if (recorded.count(p)) continue;
      if (::unlink((root + "/" + p).c_str()) == 0) {
        ++report.files_removed;
        PruneEmptyParents(root + "/" + p, root);
      }
    }
  }
  INGOT_RETURN_IF_ERROR(Reload());
  return report;
}

// ---------------------------------------------------------------------------------------- bytes

Result<ContentService::Written> ContentService::WritePartial(const std::string& subdir,
                                                             io::Reader& body,
                                                             std::optional<uint64_t> length,
                                                             const std::string& progress_key) {
  if (length && *length > options_.max_file_size) {
    return TooLarge("The file is larger than the limit of " +
                    std::to_string(options_.max_file_size) + " bytes.");
  }
  Written w;
  w.partial = options_.dir + "/" + subdir + "/" + kPartialPrefix + NewUuid();
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd,
                         io::OpenFile(w.partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  auto fail = [&](Status s) {
    ::unlink(w.partial.c_str());
    std::lock_guard lock(mu_);
    progress_.erase(progress_key);
    return s;
  };
  INGOT_ASSIGN_OR_RETURN(auto md5, io::Hasher::Create("md5"));
  std::vector<uint8_t> buf(kChunk);
  for (;;) {
    if (stopping_.load()) return fail(Cancelled("the service is stopping"));
    auto n = body.Read(buf);
    if (!n.ok()) return fail(n.status());
    if (*n == 0) break;
    if (w.size + *n > options_.max_file_size) {
      return fail(TooLarge("The file is larger than the limit of " +
                           std::to_string(options_.max_file_size) + " bytes."));
    }
    std::span<const uint8_t> data(buf.data(), *n);
    if (Status s = io::WriteAll(fd.get(), data, "boot content file"); !s.ok()) return fail(s);
    md5->Update(data);
    w.size += *n;
    std::lock_guard lock(mu_);
    progress_[progress_key] = w.size;
  }
  if (length && w.size != *length) {
    return fail(InvalidArgument("The body ended after " + std::to_string(w.size) + " of " +
                                std::to_string(*length) + " bytes."));
  }
  if (::fsync(fd.get()) != 0) return fail(FromErrno(errno, "fsync boot content file"));
  w.md5 = md5->HexDigest();
  std::lock_guard lock(mu_);
  progress_.erase(progress_key);
  return w;
}

Status ContentService::Install(const std::string& partial, const std::string& final_path) {
  INGOT_RETURN_IF_ERROR(MakeDir(Parent(final_path)));
  if (::rename(partial.c_str(), final_path.c_str()) != 0) {
    Status s = FromErrno(errno, "rename boot content file");
    ::unlink(partial.c_str());
    return s;
  }
  return io::SyncParentDir(final_path);
}

Result<Iso> ContentService::FinishIso(Iso iso, Result<Written> written) {
  Status s = written.status();
  if (s.ok()) {
    // The bytes must be an ISO 9660 or UDF volume the reader takes: nothing else is stored.
    auto src = io::FileSource::Open(written->partial);
    if (!src.ok()) {
      s = src.status();
    } else if (auto tree = formats::iso9660::Tree::Open(**src, options_.iso); !tree.ok()) {
      s = InvalidArgument("'" + iso.name + "' is not an ISO 9660 or UDF image this service reads (" +
                          tree.status().message() + ").");
    }
    if (!s.ok()) ::unlink(written->partial.c_str());
  }
  if (s.ok()) s = Install(written->partial, IsoPath(iso.name));
  if (!s.ok()) {
    // An upload the client sent wrong leaves nothing behind; a download keeps its failure visible.
    if (iso.source == "url") {
      iso.status = IsoStatus::kFailed;
      iso.error = IsServerFault(s.code()) ? "the server failed to store it" : s.message();
      if (IsServerFault(s.code())) log::Error("boot.iso.failed", {{"iso", iso.name}, {"error", s.ToString()}});
      (void)repo_.PutIso(iso);
    } else {
      (void)repo_.DeleteIso(iso.name);
    }
    return s;
  }
  iso.size = written->size;
  iso.uploaded = NowMicros();
  iso.status = IsoStatus::kReady;
  iso.error.clear();
  if (Status put = repo_.PutIso(iso); !put.ok()) return put;
  INGOT_RETURN_IF_ERROR(Reload());
  log::Info("boot.iso.ready", {{"iso", iso.name}, {"size", iso.size}, {"source", iso.source}});
  return iso;
}

// ----------------------------------------------------------------------------------------- ISOs

Result<Iso> ContentService::UploadIso(const std::string& name, io::Reader& body,
                                      std::optional<uint64_t> length) {
  INGOT_RETURN_IF_ERROR(CheckIsoName(name));
  Iso iso{.name = name, .status = IsoStatus::kSaving, .source = "upload"};
  INGOT_RETURN_IF_ERROR(repo_.InsertIso(iso));
  return FinishIso(iso, WritePartial("iso", body, length, name));
}

Result<Iso> ContentService::AddIsoFromUrl(const std::string& name, const std::string& url) {
  INGOT_RETURN_IF_ERROR(CheckIsoName(name));
  // The static rules now, so a refused URL is a 400 rather than a failed ISO.
  INGOT_RETURN_IF_ERROR(fetch::CheckUrl(url, options_.fetch.filter).status());
  Iso iso{.name = name, .status = IsoStatus::kDownloading, .source = "url", .origin = url};
  INGOT_RETURN_IF_ERROR(repo_.InsertIso(iso));
  {
    std::lock_guard lock(mu_);
    progress_[name] = 0;
    downloads_.emplace_back([this, iso, url] { Download(iso, url); });
  }
  return iso;
}

void ContentService::Download(Iso iso, std::string url) {
  auto dl = fetch::Open(url, options_.fetch);
  Result<Written> written = dl.ok() ? WritePartial("iso", **dl, (*dl)->content_length(), iso.name)
                                    : Result<Written>(dl.status());
  if (!written.ok()) {
    std::lock_guard lock(mu_);
    progress_.erase(iso.name);
  }
  auto done = FinishIso(iso, std::move(written));
  if (!done.ok()) log::Warn("boot.iso.download_failed", {{"iso", iso.name}, {"error", done.status().ToString()}});
  PrepareWaiting(iso.name);
  std::lock_guard lock(mu_);
  download_done_.notify_all();
}

void ContentService::PrepareWaiting(const std::string& iso_name) {
  auto iso = repo_.GetIso(iso_name);
  auto trees = repo_.ListTrees();
  if (!trees.ok() || !iso.ok()) return;
  for (OsTree& t : *trees) {
    if (t.iso != iso_name || t.status != TreeStatus::kPreparing) continue;
    if (*iso && (*iso)->status == IsoStatus::kReady) {
      Prepare(std::move(t));
    } else {
      t.status = TreeStatus::kFailed;
      t.error = "its ISO failed to download: " + (*iso ? (*iso)->error : std::string("gone"));
      (void)repo_.UpdateTree(t);
    }
  }
}

Result<Iso> ContentService::WaitIso(const std::string& name) {
  std::unique_lock lock(mu_);
  for (;;) {
    lock.unlock();
    INGOT_ASSIGN_OR_RETURN(Iso iso, GetIso(name));
    lock.lock();
    if (iso.status != IsoStatus::kDownloading) return iso;
    download_done_.wait_for(lock, std::chrono::seconds(1));
  }
}

Result<Iso> ContentService::AddIsoFromPath(const std::string& name, const std::string& path) {
  INGOT_RETURN_IF_ERROR(CheckIsoName(name));
  char real[PATH_MAX];
  if (path.empty() || path.front() != '/' || ::realpath(path.c_str(), real) == nullptr) {
    return NotFound("No readable file at that path on the server.");
  }
  std::string canonical = real;
  bool allowed = false;
  for (const std::string& d : options_.local_dirs) {
    char rd[PATH_MAX];
    if (::realpath(d.c_str(), rd) == nullptr) continue;
    std::string dir = rd;
    allowed = allowed || StartsWith(canonical, dir == "/" ? dir : dir + "/");
  }
  if (!allowed) {
    return PermissionDenied(
        "ISOs may be added by path only from the directories in [boot] local_dirs.");
  }
  io::UniqueFd src(::open(canonical.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  struct stat st;
  if (!src || ::fstat(src.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return NotFound("No readable regular file at that path on the server.");
  }
  Iso iso{.name = name, .status = IsoStatus::kSaving, .source = "path", .origin = canonical};
  INGOT_RETURN_IF_ERROR(repo_.InsertIso(iso));
  // Same file system: a hard link costs nothing and the stored ISO survives the original's removal.
  std::string partial = options_.dir + "/iso/" + kPartialPrefix + NewUuid();
  if (::linkat(src.get(), "", AT_FDCWD, partial.c_str(), AT_EMPTY_PATH) == 0 ||
      ::link(canonical.c_str(), partial.c_str()) == 0) {
    return FinishIso(iso, Written{partial, static_cast<uint64_t>(st.st_size), ""});
  }
  io::FdReader reader(src.get(), "ISO on the server");
  return FinishIso(iso, WritePartial("iso", reader, static_cast<uint64_t>(st.st_size), name));
}

Result<Iso> ContentService::CopyIso(const std::string& from, const std::string& name) {
  INGOT_RETURN_IF_ERROR(CheckIsoName(name));
  INGOT_ASSIGN_OR_RETURN(Iso src, GetIso(from));
  if (src.status != IsoStatus::kReady) return Conflict("The ISO '" + from + "' is not ready.");
  Iso iso{.name = name, .status = IsoStatus::kSaving, .source = "copy", .origin = from};
  INGOT_RETURN_IF_ERROR(repo_.InsertIso(iso));
  std::string partial = options_.dir + "/iso/" + kPartialPrefix + NewUuid();
  if (::link(IsoPath(from).c_str(), partial.c_str()) != 0) {
    Status s = FromErrno(errno, "link stored ISO");
    (void)repo_.DeleteIso(name);
    return s;
  }
  return FinishIso(iso, Written{partial, src.size, ""});
}

Result<Iso> ContentService::GetIso(const std::string& name) {
  INGOT_ASSIGN_OR_RETURN(std::optional<Iso> iso, repo_.GetIso(name));
  if (!iso) return NotFound("No ISO named '" + name + "'.");
  return *iso;
}

Result<std::vector<Iso>> ContentService::ListIsos() { return repo_.ListIsos(); }

Result<Iso> ContentService::DeleteIso(const std::string& name) {
  INGOT_ASSIGN_OR_RETURN(Iso iso, GetIso(name));
  if (iso.status == IsoStatus::kDownloading || iso.status == IsoStatus::kSaving) {
    return Conflict("The ISO '" + name + "' is still arriving.");
  }
  INGOT_RETURN_IF_ERROR(repo_.DeleteIso(name));
  INGOT_RETURN_IF_ERROR(Reload());
  // Readers holding it open keep their bytes until they finish (unlink semantics).
  if (::unlink(IsoPath(name).c_str()) != 0 && errno != ENOENT) {
    log::Error("boot.iso.unlink", {{"iso", name}, {"errno", errno}});
  }
  return iso;
}

std::optional<uint64_t> ContentService::Progress(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = progress_.find(name);
  if (it == progress_.end()) return std::nullopt;
  return it->second;
}

// --------------------------------------------------------------------------------------- trees

OsTree ContentService::Prepare(OsTree tree) {
  Status s = [&]() -> Status {
    INGOT_ASSIGN_OR_RETURN(auto src, io::FileSource::Open(IsoPath(tree.iso)));
    INGOT_ASSIGN_OR_RETURN(auto index, formats::iso9660::Tree::Open(*src, options_.iso));
    tree.boot = DetectLayout(*index);
    return Status::Ok();
  }();
  if (s.ok()) {
    tree.status = TreeStatus::kOk;
    tree.error.clear();
  } else {
    tree.status = TreeStatus::kFailed;
    tree.error = IsServerFault(s.code()) ? "the ISO could not be read" : s.message();
    log::Warn("boot.tree.failed", {{"tree", tree.name + "/" + tree.version}, {"error", s.ToString()}});
  }
  if (Status u = repo_.UpdateTree(tree); !u.ok()) {
    log::Warn("boot.tree.update", {{"error", u.ToString()}});
  }
  (void)Reload();
  return tree;
}

Result<OsTree> ContentService::AddTree(const std::string& name, const std::string& version,
                                       const std::string& iso_name) {
  INGOT_RETURN_IF_ERROR(CheckTreeName(name));
  INGOT_RETURN_IF_ERROR(CheckName("OS version", version));
  INGOT_RETURN_IF_ERROR(CheckIsoName(iso_name));
  OsTree tree{.id = NewUuid(), .name = name, .version = version, .iso = iso_name,
              .status = TreeStatus::kPreparing, .created = NowMicros()};
  INGOT_RETURN_IF_ERROR(repo_.InsertTree(tree));
  INGOT_ASSIGN_OR_RETURN(Iso iso, GetIso(iso_name));
  if (iso.status != IsoStatus::kReady) {
    // The download's end prepares it (PrepareWaiting). If it ended just now, do it here.
    std::lock_guard lock(mu_);
    if (progress_.count(iso_name)) return tree;
  }
  INGOT_ASSIGN_OR_RETURN(iso, GetIso(iso_name));
  if (iso.status != IsoStatus::kReady) {
    PrepareWaiting(iso_name);
    return GetTree(name, version);
  }
  return Prepare(std::move(tree));
}

Result<OsTree> ContentService::GetTree(const std::string& name, const std::string& version) {
  INGOT_ASSIGN_OR_RETURN(std::optional<OsTree> t, repo_.GetTree(name, version));
  if (!t) return NotFound("No image matching query: " + name + "/" + version);
  return *t;
}

Result<std::vector<OsTree>> ContentService::ListTrees() { return repo_.ListTrees(); }

Result<OsTree> ContentService::DeleteTree(const std::string& name, const std::string& version) {
  INGOT_ASSIGN_OR_RETURN(OsTree t, GetTree(name, version));
  INGOT_RETURN_IF_ERROR(repo_.DeleteTree(t.id));
  INGOT_RETURN_IF_ERROR(Reload());
  return t;
}

// --------------------------------------------------------------------------------------- files

Result<BootFile> ContentService::PutFile(FileSpace space, const std::string& name,
                                         io::Reader& body, std::optional<uint64_t> length) {
  INGOT_RETURN_IF_ERROR(CheckFilePath(space, name));
  const std::string dir(FileSpaceDir(space));
  INGOT_ASSIGN_OR_RETURN(Written w, WritePartial(dir, body, length, dir + "/" + name));
  const std::string final_path = options_.dir + "/" + dir + "/" + name;
  struct stat st;
  if (::lstat(final_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    ::unlink(w.partial.c_str());
    return Conflict("'" + name + "' is a directory of the files space.");
  }
  INGOT_RETURN_IF_ERROR(Install(w.partial, final_path));
  BootFile f{.space = space, .name = name, .size = w.size, .uploaded = NowMicros(), .md5 = w.md5};
  INGOT_RETURN_IF_ERROR(repo_.PutFile(f));
  INGOT_RETURN_IF_ERROR(Reload());
  return f;
}

Result<std::vector<BootFile>> ContentService::ListFiles(FileSpace space) {
  return repo_.ListFiles(space);
}

Result<BootFile> ContentService::DeleteFile(FileSpace space, const std::string& name) {
  INGOT_RETURN_IF_ERROR(CheckFilePath(space, name));
  INGOT_ASSIGN_OR_RETURN(std::optional<BootFile> f, repo_.GetFile(space, name));
  if (!f) return NotFound("No file match query");
  const std::string root = options_.dir + "/" + std::string(FileSpaceDir(space));
  if (::unlink((root + "/" + name).c_str()) != 0 && errno != ENOENT) {
    return FromErrno(errno, "remove boot file");
  }
  PruneEmptyParents(root + "/" + name, root);
  INGOT_RETURN_IF_ERROR(repo_.DeleteFile(space, name));
  INGOT_RETURN_IF_ERROR(Reload());
  return *f;
}

// -------------------------------------------------------------------------------- publications

Result<Publication> ContentService::Publish(const std::string& name, const std::string& image_id,
                                            bool raw) {
  INGOT_RETURN_IF_ERROR(CheckPublicationName(name));
  if (!options_.check_image) return Unsupported("Publishing images is not enabled.");
  INGOT_RETURN_IF_ERROR(options_.check_image(image_id));
  Publication p{.name = name, .image_id = image_id, .raw = raw, .created = NowMicros()};
  INGOT_RETURN_IF_ERROR(repo_.InsertPublication(p));
  INGOT_RETURN_IF_ERROR(Reload());
  return p;
}

Result<std::vector<Publication>> ContentService::ListPublications() {
  return repo_.ListPublications();
}

Result<Publication> ContentService::Unpublish(const std::string& name) {
  auto p = FindPublication(name);
  if (!p || p->name != name) return NotFound("No publication named '" + name + "'.");
  INGOT_RETURN_IF_ERROR(repo_.DeletePublication(name));
  INGOT_RETURN_IF_ERROR(Reload());
  return *p;
}

// ---------------------------------------------------------------------------------- the view

std::optional<std::vector<std::string>> ContentService::Map(
    const std::vector<std::string>& c) const {
  if (c.empty()) return std::nullopt;
  for (const std::string& part : c) {
    if (!part.empty() && part.front() == '.') return std::nullopt;  // partial files stay hidden
  }
  std::shared_lock lock(view_mu_);
  if (c[0] == "common" || c[0] == "files") {
    const auto& top = c[0] == "common" ? view_->microkernel_top : view_->files_top;
    if (c.size() == 1 ? !top.empty() : top.count(c[1]) > 0) return c;
    return std::nullopt;
  }
  if (c[0] == "iso") {
    if (c.size() >= 2 && view_->isos.count(c[1])) return c;
    return std::nullopt;
  }
  if (c.size() < 2) return std::nullopt;
  auto it = view_->trees.find(std::pair<std::string_view, std::string_view>(c[0], c[1]));
  if (it == view_->trees.end()) return std::nullopt;
  std::vector<std::string> out;
  out.reserve(c.size());
  out.emplace_back("iso");
  out.push_back(it->second.iso);
  out.insert(out.end(), c.begin() + 2, c.end());
  return out;
}

std::optional<OsTree> ContentService::ServedTree(const std::string& name,
                                                 const std::string& version) const {
  std::shared_lock lock(view_mu_);
  auto it = view_->trees.find({name, version});
  if (it == view_->trees.end()) return std::nullopt;
  return it->second;
}

std::optional<Publication> ContentService::FindPublication(const std::string& key) const {
  std::shared_lock lock(view_mu_);
  if (auto it = view_->by_name.find(key); it != view_->by_name.end()) return it->second;
  if (auto it = view_->by_id.find(key); it != view_->by_id.end()) return it->second;
  return std::nullopt;
}

}  // namespace ingot::boot
