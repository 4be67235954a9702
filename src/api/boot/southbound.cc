#include "api/boot/southbound.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <deque>
#include <initializer_list>

#include "api/boot/paths.h"
#include "api/boot/validators.h"
#include "api/errors.h"
#include "common/log.h"
#include "common/text.h"
#include "common/time.h"
#include "http/range.h"

namespace ingot::api::boot {

using namespace std::string_view_literals;
namespace iso = formats::iso9660;
namespace {

// How many symlinks one lookup inside an ISO may follow.
constexpr int kMaxIsoSymlinkHops = 16;

std::atomic<bool> g_no_openat2{false};

bool IsIsoName(std::string_view name) {
  if (name.size() <= 4) return false;
  std::string_view ext = name.substr(name.size() - 4);
  return ext[0] == '.' && std::tolower(static_cast<unsigned char>(ext[1])) == 'i' &&
         std::tolower(static_cast<unsigned char>(ext[2])) == 's' &&
         std::tolower(static_cast<unsigned char>(ext[3])) == 'o';
}

std::string Join(const std::vector<std::string>& parts, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) {
    if (!out.empty()) out += '/';
    out += parts[i];
  }
  return out;
}

// The errors of a walk that mean "there is nothing for you there": not found, and every refusal
// of the confinement (EXDEV: the walk would leave the root; ELOOP: a symlink where none may be).
bool IsAbsent(int err) {
  return err == ENOENT || err == ENOTDIR || err == EXDEV || err == ELOOP || err == EACCES ||
         err == ENAMETOOLONG || err == EPERM;
}

// Opens `rel` ("." or "a/b", components already checked by ParseBootPath) beneath the root with
// `flags`. Confinement: openat2's RESOLVE_BENEATH (symlinks allowed while they stay beneath the
// root). Where the kernel has no openat2, a walk one component at a time with O_NOFOLLOW, so no
// symlink is followed at all.
Result<io::UniqueFd> OpenBeneath(int root, const std::string& rel, int flags) {
  // openat2 refuses (EINVAL) flags that mean nothing for O_PATH, O_NOCTTY among them.
  flags |= O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY);
  if (!g_no_openat2.load(std::memory_order_relaxed)) {
    struct open_how how = {};
    how.flags = static_cast<uint64_t>(flags);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd;
    do {
      fd = ::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof(how));
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
    if (fd >= 0) return io::UniqueFd(static_cast<int>(fd));
    if (errno != ENOSYS) {
      if (IsAbsent(errno)) return NotFound("no such file beneath the boot root");
      return FromErrno(errno, "open " + rel + " beneath the boot root");
    }
    g_no_openat2.store(true, std::memory_order_relaxed);
  }
  io::UniqueFd dir(::openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return FromErrno(errno, "open the boot root");
  size_t pos = 0;
  for (;;) {
    size_t slash = rel.find('/', pos);
    std::string part =
        rel.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    bool last = slash == std::string::npos;
    int f = last ? flags | O_NOFOLLOW : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    io::UniqueFd next(::openat(dir.get(), part.c_str(), f));
    if (!next) {
      if (IsAbsent(errno)) return NotFound("no such file beneath the boot root");
      return FromErrno(errno, "open " + rel + " beneath the boot root");
    }
    if (last) return next;
    dir = std::move(next);
    pos = slash + 1;
  }
}

// What a path names beneath the root: a descriptor and its stat.
struct Found {
  io::UniqueFd fd;
  struct stat st;
};

Result<Found> Locate(int root, const std::string& rel) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, OpenBeneath(root, rel, O_PATH));
  Found f{std::move(fd), {}};
  if (::fstat(f.fd.get(), &f.st) != 0) return FromErrno(errno, "fstat " + rel);
  return f;
}

// What a path names beneath the root, opened for reading and described by an fstat of that very
// descriptor: what is read is what was checked (no window between a check and a second open).
// O_NONBLOCK: opening a FIFO never waits; the caller reads only a regular file, and lists only a
// directory.
Result<Found> OpenFound(int root, const std::string& rel) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, OpenBeneath(root, rel, O_RDONLY | O_NONBLOCK));
  Found f{std::move(fd), {}};
  if (::fstat(f.fd.get(), &f.st) != 0) return FromErrno(errno, "fstat " + rel);
  return f;
}

// iPXE's first stages as Debian's `ipxe` package names them (SouthboundOptions::firmware_dir).
bool IsFirstStage(std::string_view name) {
  static constexpr std::string_view kFirstStages[] = {
      "undionly.kpxe", "undionly.kkpxe", "ipxe.pxe", "ipxe.efi", "snponly.efi", "ipxe.lkrn"};
  return std::find(std::begin(kFirstStages), std::end(kFirstStages), name) !=
         std::end(kFirstStages);
}

// An owned copy of a shared descriptor, for readers that keep one of their own (TFTP).
Result<io::UniqueFd> Duplicate(const io::UniqueFd& fd) {
  io::UniqueFd copy(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
  if (!copy) return FromErrno(errno, "dup");
  return copy;
}

// Last-Modified of the file asked for last on this thread: boot clients ask for the same few files.
const std::string& LastModifiedText(int64_t seconds) {
  thread_local int64_t cached_for = INT64_MIN;
  thread_local std::string cached;
  if (seconds != cached_for) {
    cached = FormatHttpDate(seconds);
    cached_for = seconds;
  }
  return cached;
}

int64_t NanosOf(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// A strong ETag made of the values in hex, '-' between them: "\"1a2b-17f0c3d2e-1000\"".
std::string EtagOf(std::initializer_list<uint64_t> values) {
  std::string tag;
  tag.reserve(2 + values.size() * 17);
  tag += '"';
  char buf[16];
  for (uint64_t v : values) {
    if (tag.size() > 1) tag += '-';
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, 16);
    tag.append(buf, static_cast<size_t>(end - buf));
  }
  tag += '"';
  return tag;
}

std::string_view Reason(int status) {
  switch (status) {
    case 301:
      return "Moved Permanently";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 412:
      return "Precondition Failed";
    case 416:
      return "Range Not Satisfiable";
    default:
      return ReasonPhrase(status);
  }
}

http::Response Plain(int status, std::string text) {
  http::Response r;
  r.status = status;
  r.headers.Set("Content-Type", "text/plain; charset=utf-8");
  r.headers.Set("X-Content-Type-Options", "nosniff");
  r.body = std::to_string(status) + " " + std::string(Reason(status)) + "\n";
  if (!text.empty()) r.body += text + "\n";
  return r;
}

// A Status as the client sees it: its HTTP status, and its message unless it is a server fault
// (logged here with its cause instead).
http::Response Failure(const Status& s, const http::Request& req) {
  int status = HttpStatusOf(s.code());
  if (IsServerFault(s.code())) {
    log::Error("boot.error", {{"path", req.target}, {"error", s.ToString()}});
    return Plain(status, "");
  }
  return Plain(status, s.code() == Code::kNotFound ? "" : s.message());
}

http::Response Redirect(const std::vector<std::string>& components, const http::Request& req) {
  http::Response r = Plain(301, "");
  std::string location = EncodePath(components, /*directory=*/true);
  size_t q = req.target.find('?');
  if (q != std::string::npos) location += req.target.substr(q);
  r.headers.Set("Location", location);
  return r;
}

// One thing to send: the bytes of a file, as ranges of an open file.
struct Representation {
  std::shared_ptr<const io::UniqueFd> fd;
  uint64_t size = 0;
  std::vector<iso::Extent> extents;  // in order; their lengths sum to `size`
  Validators validators;
  std::string_view content_type;
};

http::Response Send(const http::Request& req, Representation rep) {
  http::Response r;
  r.headers.Reserve(6);
  const Validators& v = rep.validators;
  // Every field is new to `out` (Add: no search for an earlier one).
  auto describe = [&](http::Response& out) {
    out.headers.Add("ETag", v.etag);
    out.headers.Add("Last-Modified", LastModifiedText(v.last_modified));
    out.headers.Add("Accept-Ranges", "bytes");
  };
  switch (EvaluatePreconditions(req.headers, v)) {
    case Precondition::kNotModified:
      r.status = 304;
      describe(r);
      return r;
    case Precondition::kFailed:
      r = Plain(412, "");
      describe(r);
      return r;
    case Precondition::kServe:
      break;
  }
  uint64_t first = 0, length = rep.size;
  r.status = 200;
  if (auto h = req.headers.Get("Range"); h && rep.size > 0 && RangeAllowed(req.headers, v)) {
    auto range = http::ParseRange(*h, rep.size);
    if (!range) {
      r = Plain(416, "");
      r.headers.Set("Content-Range", "bytes */" + std::to_string(rep.size));
      describe(r);
      return r;
    }
    first = range->first;
    length = range->last - range->first + 1;
    r.status = 206;
    r.headers.Add("Content-Range", "bytes " + std::to_string(range->first) + "-" +
                                       std::to_string(range->last) + "/" +
                                       std::to_string(rep.size));
  }
  describe(r);
  r.headers.Add("Content-Type", std::string(rep.content_type));
  // A plain file is one extent, a file inside an ISO one or several.
  std::vector<http::FileSegment> segs = SegmentsOf(rep.extents, first, length);
  http::FileRange body;
  body.shared_fd = std::move(rep.fd);
  if (!segs.empty()) {
    body.offset = segs.front().offset;
    body.length = segs.front().length;
    body.more.assign(segs.begin() + 1, segs.end());
  }
  r.file = std::move(body);
  return r;
}

struct ListingEntry {
  std::string name;
  bool directory = false;
  uint64_t size = 0;
  int64_t mtime = 0;
};

http::Response Listing(const std::vector<std::string>& components,
                       std::vector<ListingEntry> entries, bool truncated) {
  std::sort(entries.begin(), entries.end(),
            [](const ListingEntry& a, const ListingEntry& b) { return a.name < b.name; });
  std::string title = EscapeHtml("Index of " + EncodePath(components, true));
  std::string html;
  html.reserve(512 + entries.size() * 160);
  html += "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title +
          "</title></head>\n<body><h1>" + title +
          "</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n";
  if (!components.empty()) {
    html += "<tr><td><a href=\"../\">../</a></td><td>-</td><td></td></tr>\n";
  }
  for (const ListingEntry& e : entries) {
    std::string shown = e.name + (e.directory ? "/" : "");
    html += "<tr><td><a href=\"" + EncodeComponent(e.name) + (e.directory ? "/" : "") + "\">" +
            EscapeHtml(shown) + "</a>";
    if (!e.directory && IsIsoName(e.name)) {
      html += " <a href=\"" + EncodeComponent(e.name) + "/\">[browse]</a>";
    }
    html += "</td><td>" + (e.directory ? std::string("-") : std::to_string(e.size)) + "</td><td>" +
            (e.mtime > 0 ? FormatHttpDate(e.mtime) : std::string()) + "</td></tr>\n";
  }
  html += "</table>\n";
  if (truncated) html += "<p>(listing truncated)</p>\n";
  html += "</body></html>\n";
  http::Response r;
  r.status = 200;
  r.headers.Set("Content-Type", "text/html; charset=utf-8");
  r.headers.Set("Cache-Control", "no-cache");
  r.headers.Set("X-Content-Type-Options", "nosniff");
  r.headers.Set("Content-Security-Policy", "default-src 'none'");
  r.body = std::move(html);
  return r;
}

// The entries of a directory of the tree. Symlinks are listed as what they lead to when that is
// a directory or regular file beneath the root; those leading out (or nowhere) are left out.
Result<http::Response> ListDirectory(int root, const std::string& rel, int dir,
                                     const std::vector<std::string>& components, size_t cap) {
  int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FromErrno(errno, "open directory " + rel);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    ::close(fd);
    return FromErrno(err, "fdopendir " + rel);
  }
  std::vector<ListingEntry> entries;
  bool truncated = false;
  while (struct dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name == "." || name == "..") continue;
    if (entries.size() >= cap) {
      truncated = true;
      break;
    }
    struct stat st;
    if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      auto target = Locate(root, rel == "." ? name : rel + "/" + name);
      if (!target.ok()) continue;
      st = target->st;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) continue;
    entries.push_back({std::move(name), S_ISDIR(st.st_mode), static_cast<uint64_t>(st.st_size),
                       static_cast<int64_t>(st.st_mtim.tv_sec)});
  }
  ::closedir(d);
  return Listing(components, std::move(entries), truncated);
}

// Finds `inner` inside the ISO, following its symlinks while they stay inside the ISO's tree
// (relative targets only: an absolute one means the installed system's root, not the ISO's).
// `resolved` receives the entry's path inside the ISO.
Result<const iso::Entry*> ResolveInIso(const iso::Tree& tree, std::vector<std::string> inner,
                                       std::vector<std::string>& resolved) {
  if (!inner.empty()) {
    // Most paths cross no symlink: one lookup of the whole path (it fails at a symlink that is not
    // the last component, and the walk below takes over).
    auto direct = tree.Lookup(Join(inner, 0, inner.size()));
    if (direct.ok() && (*direct)->type != iso::EntryType::kSymlink) {
      resolved = std::move(inner);
      return *direct;
    }
  }
  std::deque<std::string> todo(inner.begin(), inner.end());
  resolved.clear();
  INGOT_ASSIGN_OR_RETURN(const iso::Entry* entry, tree.Lookup("/"));
  int hops = 0;
  while (!todo.empty()) {
    std::string part = std::move(todo.front());
    todo.pop_front();
    if (part.empty() || part == ".") continue;
    if (part == "..") {  // only from a symlink's target
      if (resolved.empty()) return NotFound("a symlink inside the ISO leads out of it");
      resolved.pop_back();
      INGOT_ASSIGN_OR_RETURN(entry, tree.Lookup(Join(resolved, 0, resolved.size())));
      continue;
    }
    resolved.push_back(std::move(part));
    INGOT_ASSIGN_OR_RETURN(entry, tree.Lookup(Join(resolved, 0, resolved.size())));
    if (entry->type != iso::EntryType::kSymlink) continue;
    if (++hops > kMaxIsoSymlinkHops) return NotFound("too many symlinks inside the ISO");
    const std::string& target = entry->symlink_target;
    if (target.empty() || target.front() == '/') {
      return NotFound("an absolute symlink inside the ISO is not followed");
    }
    resolved.pop_back();
    std::vector<std::string> parts;
    for (size_t pos = 0; pos <= target.size();) {
      size_t slash = target.find('/', pos);
      if (slash == std::string::npos) slash = target.size();
      parts.push_back(target.substr(pos, slash - pos));
      pos = slash + 1;
    }
    todo.insert(todo.begin(), parts.begin(), parts.end());
    INGOT_ASSIGN_OR_RETURN(entry, tree.Lookup(Join(resolved, 0, resolved.size())));
  }
  return entry;
}

// A file inside an ISO as a ByteSource: its bytes read through its extents in the ISO. Holds the
// index it came from, so the entry stays valid while the file is read.
class IsoFileSource final : public io::ByteSource {
 public:
  IsoFileSource(io::FileSource iso, std::shared_ptr<const iso::Tree> tree, const iso::Entry& entry)
      : iso_(std::move(iso)), tree_(std::move(tree)), entry_(entry) {}
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override {
    return iso::ReadFile(iso_, entry_, offset, buf);
  }
  uint64_t Size() const override { return entry_.size; }

 private:
  io::FileSource iso_;
  std::shared_ptr<const iso::Tree> tree_;
  const iso::Entry& entry_;
};

}  // namespace

std::vector<http::FileSegment> SegmentsOf(const std::vector<iso::Extent>& extents, uint64_t first,
                                          uint64_t length) {
  std::vector<http::FileSegment> out;
  const uint64_t end = first + length;
  uint64_t pos = 0;  // where the current extent starts within the file
  for (const iso::Extent& e : extents) {
    if (pos >= end) break;
    uint64_t from = std::max(pos, first), to = std::min(pos + e.length, end);
    if (from < to) out.push_back({e.offset + (from - pos), to - from});
    pos += e.length;
  }
  return out;
}

http::Response Southbound::SendFile(const http::Request& req, io::UniqueFd fd, uint64_t size,
                                   std::string etag, int64_t mtime,
                                   std::string_view content_type) {
  std::vector<iso::Extent> whole;
  if (size > 0) whole.push_back({0, size});
  return Send(req, Representation{std::make_shared<const io::UniqueFd>(std::move(fd)), size,
                                  std::move(whole), Validators{std::move(etag), mtime},
                                  content_type});
}

Status Southbound::SetContent(const std::string& content_root, ContentMap map) {
  io::UniqueFd fd(::open(content_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return FromErrno(errno, "boot content directory " + content_root);
  content_root_ = std::move(fd);
  content_map_ = std::move(map);
  return Status::Ok();
}

Result<std::unique_ptr<Southbound>> Southbound::Open(SouthboundOptions options) {
  if (options.root.empty()) return InvalidArgument("boot: the served root is not set");
  io::UniqueFd root(::open(options.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return FromErrno(errno, "boot root " + options.root);
  std::unique_ptr<Southbound> sb(new Southbound(std::move(options), std::move(root)));
  if (!sb->options_.firmware_dir.empty()) {
    // Missing (the ipxe package not installed): no first stages but the root's own.
    sb->firmware_ = io::UniqueFd(
        ::open(sb->options_.firmware_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  }
  return sb;
}

http::HeadResult Southbound::Handle(http::Request& req) {
  auto path = ParseBootPath(req.target, req.path);
  http::Response r = [&] {
    if (path.ok()) {
      for (const Route& route : routes_) {
        if (std::optional<http::Response> answer = route.answer(req, *path)) {
          return std::move(*answer);
        }
      }
    }
    if (req.method != "GET" && req.method != "HEAD") {
      http::Response m = Plain(405, "");
      m.headers.Set("Allow", "GET, HEAD");
      return m;
    }
    if (!path.ok()) return Plain(400, path.status().message());
    return std::move(*Serve(req, *path, /*may_block=*/true));
  }();
  if (r.route.empty()) r.route = "boot";  // a route may name itself for the metrics
  return r;
}

std::optional<http::Response> Southbound::HandleInline(http::Request& req) {
  // Other methods are rare here (405 or a route's); they take the usual way.
  if (req.method != "GET" && req.method != "HEAD") return std::nullopt;
  auto path = ParseBootPath(req.target, req.path);
  if (!path.ok()) return Plain(400, path.status().message());
  for (const Route& route : routes_) {
    if (!route.blocks || route.blocks(req, *path)) return std::nullopt;
  }
  std::optional<http::Response> r;
  for (const Route& route : routes_) {
    if ((r = route.answer(req, *path))) break;
  }
  if (!r) r = Serve(req, *path, /*may_block=*/false);
  if (r && r->route.empty()) r->route = "boot";
  return r;
}

std::optional<http::Response> Southbound::Serve(const http::Request& req, const BootPath& path,
                                                bool may_block) {
  // `shown` is the path as asked (redirects, listings); `c` what is looked up beneath `root`: the
  // boot content's paths (OS trees, stored ISOs, files) map beneath its own directory.
  const std::vector<std::string>& shown = path.components;
  std::optional<std::vector<std::string>> mapped;
  int root = root_.get();
  if (content_map_ && content_root_) {
    if ((mapped = content_map_(shown))) root = content_root_.get();
  }
  const std::vector<std::string>& c = mapped ? *mapped : shown;

  bool blocked = false;
  auto in_iso = FindInIso(root, c, path.trailing_slash, may_block, &blocked);
  if (blocked) return std::nullopt;
  if (!in_iso.ok()) return Failure(in_iso.status(), req);
  if (*in_iso) {
    InIso& in = **in_iso;
    const iso::Entry& e = *in.entry;
    const int64_t iso_mtime = static_cast<int64_t>(in.st.st_mtim.tv_sec);
    if (e.type == iso::EntryType::kDirectory) {
      if (!path.trailing_slash) return Redirect(shown, req);
      if (!may_block) return std::nullopt;  // a listing may be long to build
      auto kids = in.tree->ListDir(Join(in.resolved, 0, in.resolved.size()));
      if (!kids.ok()) return Failure(kids.status(), req);
      std::vector<ListingEntry> entries;
      bool truncated = false;
      for (const iso::Entry* k : *kids) {
        if (entries.size() >= options_.max_listing_entries) {
          truncated = true;
          break;
        }
        // Symlinks are listed as files; following one resolves it (or answers 404).
        entries.push_back({k->name, k->type == iso::EntryType::kDirectory,
                           k->type == iso::EntryType::kFile ? k->size : 0, k->mtime});
      }
      return Listing(shown, std::move(entries), truncated);
    }
    if (e.type != iso::EntryType::kFile || path.trailing_slash) return Plain(404, "");
    // The ISO's identity in the ETag: an entry of a rewritten ISO never matches an old tag.
    std::string etag = EtagOf({static_cast<uint64_t>(in.st.st_ino),
                               static_cast<uint64_t>(NanosOf(in.st.st_mtim)),
                               e.extents.empty() ? 0 : e.extents.front().offset, e.size});
    return Send(req,
                Representation{std::move(in.fd), e.size, e.extents,
                               Validators{std::move(etag), iso_mtime}, ContentTypeFor(e.name)});
  }

  std::string rel = c.empty() ? "." : Join(c, 0, c.size());
  auto found = OpenInTree(root, c, rel);
  if (!found.ok()) return Failure(found.status(), req);
  if (S_ISDIR(found->st.st_mode)) {
    if (!c.empty() && !path.trailing_slash) return Redirect(shown, req);
    if (!may_block) return std::nullopt;  // a listing may be long to build
    auto listing = ListDirectory(root, rel, found->fd->get(), shown, options_.max_listing_entries);
    if (!listing.ok()) return Failure(listing.status(), req);
    return std::move(*listing);
  }
  // Never read: a device, a FIFO, a socket (opened without effect: O_NONBLOCK | O_NOCTTY).
  if (!S_ISREG(found->st.st_mode) || path.trailing_slash) return Plain(404, "");
  const struct stat& st = found->st;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  std::string etag = EtagOf({static_cast<uint64_t>(st.st_ino),
                             static_cast<uint64_t>(NanosOf(st.st_mtim)), size});
  std::vector<iso::Extent> whole;
  if (size > 0) whole.push_back({0, size});
  const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec);
  return Send(req, Representation{std::move(found->fd), size, std::move(whole),
                                  Validators{std::move(etag), mtime}, ContentTypeFor(c.back())});
}

Result<Southbound::Opened> Southbound::OpenKept(int root, const std::string& rel) {
  Opened o;
  if ((o.fd = open_files_.Find(root, rel, &o.st))) return o;
  INGOT_ASSIGN_OR_RETURN(Found f, OpenFound(root, rel));
  o.fd = std::make_shared<const io::UniqueFd>(std::move(f.fd));
  o.st = f.st;
  open_files_.Keep(root, rel, o.fd, o.st);
  return o;
}

Result<Southbound::Opened> Southbound::OpenInTree(int root, const std::vector<std::string>& c,
                                                  const std::string& rel) {
  auto found = OpenKept(root, rel);
  if (found.ok() || found.status().code() != Code::kNotFound || !firmware_ ||
      root != root_.get() || c.size() != 1 || !IsFirstStage(c[0])) {
    return found;
  }
  Opened o;
  if ((o.fd = open_files_.Find(firmware_.get(), c[0], &o.st))) return o;
  // Only these names, and only at '/': Debian's are links (ipxe.efi -> /boot/ipxe.efi), followed.
  io::UniqueFd fd(
      ::openat(firmware_.get(), c[0].c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd || ::fstat(fd.get(), &o.st) != 0 || !S_ISREG(o.st.st_mode)) return found;
  o.fd = std::make_shared<const io::UniqueFd>(std::move(fd));
  open_files_.Keep(firmware_.get(), c[0], o.fd, o.st);
  return o;
}

Result<std::optional<Southbound::InIso>> Southbound::FindInIso(int root,
                                                               const std::vector<std::string>& c,
                                                               bool trailing_slash, bool may_block,
                                                               bool* blocked) {
  *blocked = false;
  for (size_t i = 0; i < c.size(); ++i) {
    if (!IsIsoName(c[i]) || (i + 1 == c.size() && !trailing_slash)) continue;
    std::string rel = Join(c, 0, i + 1);
    INGOT_ASSIGN_OR_RETURN(Opened found, OpenKept(root, rel));
    if (S_ISDIR(found.st.st_mode)) continue;  // a directory that happens to be named *.iso
    if (!S_ISREG(found.st.st_mode)) return NotFound("");
    const std::string key = root == root_.get() ? rel : "content:" + rel;
    auto tree = may_block ? isos_.Get(key, found.fd->get(), found.st) : isos_.Find(key, found.st);
    if (tree.ok() && !*tree) {  // not indexed yet: a worker indexes it
      *blocked = true;
      return std::optional<InIso>();
    }
    if (!tree.ok()) {
      // Not an ISO that can be read: there is nothing inside it to serve.
      return IsServerFault(tree.status().code()) ? tree.status() : NotFound("");
    }
    std::vector<std::string> inner(c.begin() + static_cast<std::ptrdiff_t>(i) + 1, c.end());
    std::vector<std::string> resolved;
    auto entry = ResolveInIso(**tree, std::move(inner), resolved);
    if (!entry.ok()) {
      return entry.status().code() == Code::kInvalidArgument ? NotFound("") : entry.status();
    }
    return std::optional<InIso>(
        InIso{std::move(found.fd), found.st, std::move(*tree), *entry, std::move(resolved)});
  }
  return std::optional<InIso>();
}

Result<std::unique_ptr<io::ByteSource>> Southbound::OpenFile(const std::vector<std::string>& c) {
  if (c.empty()) return NotFound("a directory");
  int root = root_.get();
  if (content_map_ && content_root_) {
    if (auto mapped = content_map_(c)) {
      root = content_root_.get();
      return OpenFileBeneath(root, *mapped);
    }
  }
  return OpenFileBeneath(root, c);
}

Result<std::unique_ptr<io::ByteSource>> Southbound::OpenFileBeneath(
    int root, const std::vector<std::string>& c) {
  if (c.empty()) return NotFound("a directory");
  bool blocked = false;
  INGOT_ASSIGN_OR_RETURN(std::optional<InIso> in,
                         FindInIso(root, c, /*trailing_slash=*/false, /*may_block=*/true, &blocked));
  if (in) {
    if (in->entry->type != iso::EntryType::kFile) return NotFound("not a file inside the ISO");
    const uint64_t iso_size = static_cast<uint64_t>(in->st.st_size);
    INGOT_ASSIGN_OR_RETURN(io::UniqueFd iso_fd, Duplicate(*in->fd));
    return std::unique_ptr<io::ByteSource>(std::make_unique<IsoFileSource>(
        io::FileSource(std::move(iso_fd), iso_size, Join(c, 0, c.size())), std::move(in->tree),
        *in->entry));
  }
  const std::string rel = Join(c, 0, c.size());
  INGOT_ASSIGN_OR_RETURN(Opened found, OpenInTree(root, c, rel));
  if (!S_ISREG(found.st.st_mode)) return NotFound(rel + " is not a regular file");
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, Duplicate(*found.fd));
  return std::unique_ptr<io::ByteSource>(std::make_unique<io::FileSource>(
      std::move(fd), static_cast<uint64_t>(found.st.st_size), rel));
}

Result<std::unique_ptr<io::ByteSource>> TftpFiles::Open(std::string_view path) {
  std::vector<std::string> components;
  for (size_t pos = 0; pos < path.size();) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) components.emplace_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return southbound_.OpenFile(components);
}

void Southbound::Observe(const http::Exchange& e) {
  if (!log::Enabled(log::Level::kInfo)) return;
  // The line log::Info("boot.request", ...) wrote, built here and handed to the batch writer.
  thread_local std::string line;
  line.clear();
  line += "ts="sv;
  AppendIso8601Micros(line, NowMicros());
  line += " level=info event=boot.request method="sv;
  log::AppendValue(line, e.method);
  line += " path="sv;
  log::AppendValue(line, e.target);
  line += " status="sv;
  AppendDecimal(line, static_cast<uint64_t>(e.status));
  line += " bytes_out="sv;
  AppendDecimal(line, e.bytes_out);
  // Milliseconds with three decimals, from the integer microseconds (no printf per request).
  const auto us = static_cast<uint64_t>(std::max<int64_t>(0, e.duration.count()));
  line += " duration_ms="sv;
  AppendDecimal(line, us / 1000);
  char frac[4] = {'.', char('0' + us / 100 % 10), char('0' + us / 10 % 10), char('0' + us % 10)};
  line.append(frac, 4);
  line += " remote="sv;
  log::AppendValue(line, e.remote_address);
  line += e.completed ? " completed=true\n"sv : " completed=false\n"sv;
  access_log_.Add(line);
}

}  // namespace ingot::api::boot
