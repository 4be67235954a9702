#include "deploy/guestfish/native.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include "deploy/guestfish/disk.h"
#include "deploy/guestfish/ext_fs.h"

namespace ingot::deploy::guestfish {

namespace {

constexpr uint64_t kMaxFileBytes = 256u << 20;      // cat/download/cp of one file
constexpr uint64_t kMaxBufferedBytes = 512u << 20;  // over: guestfish does the run instead
constexpr int kMaxSymlinks = 40;                    // as Linux's ELOOP

const std::set<std::string, std::less<>>& NativeSet() {
  static const std::set<std::string, std::less<>> kSet = {"echo",
                                                          "exit",
                                                          "run",
                                                          "sync",
                                                          "list-filesystems",
                                                          "list-devices",
                                                          "list-partitions",
                                                          "vgs",
                                                          "lvs",
                                                          "mount",
                                                          "mount-options",
                                                          "mount-ro",
                                                          "umount",
                                                          "umount-all",
                                                          "upload",
                                                          "download",
                                                          "write",
                                                          "write-append",
                                                          "mkdir",
                                                          "mkdir-p",
                                                          "rm",
                                                          "rm-f",
                                                          "rm-rf",
                                                          "rmdir",
                                                          "ln-s",
                                                          "ln-sf",
                                                          "chmod",
                                                          "chown",
                                                          "touch",
                                                          "cat",
                                                          "exists",
                                                          "is-file",
                                                          "is-dir",
                                                          "is-symlink",
                                                          "readlink",
                                                          "ls",
                                                          "cp",
                                                          "mv",
                                                          "inspect-os",
                                                          "inspect-get-roots",
                                                          "inspect-get-type",
                                                          "inspect-get-distro",
                                                          "inspect-get-product-name",
                                                          "inspect-get-major-version",
                                                          "inspect-get-minor-version",
                                                          "inspect-get-hostname"};
  return kSet;
}

// A status that means "guestfish must do this run".
constexpr std::string_view kNeedsGuestfish = "\x01needs-guestfish\x01";

Status NeedsGuestfish(const std::string& reason) {
  return Unsupported(std::string(kNeedsGuestfish) + reason);
}
bool IsNeedsGuestfish(const Status& s) {
  return s.code() == Code::kUnsupported && s.message().rfind(kNeedsGuestfish, 0) == 0;
}

// guestfish's integers: C style (0 octal, 0x hex, else decimal), optionally signed.
Result<int64_t> ParseInt(const std::string& s) {
  if (s.empty()) return InvalidArgument("expecting an integer, got an empty string");
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') neg = s[i++] == '-';
  int base = 10;
  if (s.size() > i + 1 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    base = 16, i += 2;
  } else if (s.size() > i + 1 && s[i] == '0') {
    base = 8, i += 1;
  }
  if (i >= s.size()) return InvalidArgument("expecting an integer, got \"" + s + "\"");
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    int d = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
            : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
            : s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10
                                         : 99;
    if (d >= base) return InvalidArgument("expecting an integer, got \"" + s + "\"");
    if (v > (INT64_MAX - d) / base) return InvalidArgument("integer out of range: " + s);
    v = v * base + d;
  }
  return neg ? -v : v;
}

struct Node {
  ExtFs* fs = nullptr;
  uint32_t ino = 0;
};

struct Resolved {
  bool exists = false;
  Node node;                // when exists
  Node parent;              // the directory holding `name`
  std::string name;         // the last component
  std::string path;         // canonical (symlinks in the directories resolved)
  bool mount_root = false;  // the path is a mount point
};

struct MountedFs {
  std::string device;
  std::unique_ptr<ExtFs> fs;
  int mounts = 0;
};

class Interpreter {
 public:
  Interpreter(OsVolume& volume, std::string workdir, const LocalJail* jail)
      : volume_(volume), buffer_(volume), workdir_(std::move(workdir)), jail_(jail) {}

  Result<NativeOutcome> Run(const ParsedScript& script);

 private:
  Status Exec(const Command& c, std::string* out);
  Status Arity(const Command& c, size_t n) {
    if (c.args.size() == n) return Status::Ok();
    return InvalidArgument(c.name + " should have " + std::to_string(n) + " parameter(s)");
  }
  Status Fail(const std::string& cmd, const std::string& path, const std::string& text) {
    return InvalidArgument(cmd + ": " + path + ": " + text);
  }

  Result<DiskLayout*> Layout();
  Result<std::string> FsType(int number);
  Result<std::pair<uint64_t, uint64_t>> DeviceRange(const std::string& cmd, const std::string& dev);
  Status Mount(const std::string& cmd, const std::string& dev, const std::string& where, bool ro);
  Status Umount(const std::string& what);
  Status UmountAll();

  Result<Resolved> Resolve(const std::string& cmd, const std::string& path, bool follow_last);
  Result<Resolved> ResolveExisting(const std::string& cmd, const std::string& path, bool follow) {
    INGOT_ASSIGN_OR_RETURN(Resolved r, Resolve(cmd, path, follow));
    if (!r.exists) return Fail(cmd, path, "No such file or directory");
    return r;
  }
  Status Writable(const std::string& cmd, const std::string& path, ExtFs* fs) {
    if (!fs->writable()) return Fail(cmd, path, "Read-only file system");
    return Status::Ok();
  }

  Status WriteFile(const std::string& cmd, const std::string& path, std::string_view data,
                   bool append);
  Status RemoveTree(const std::string& cmd, const std::string& path, ExtFs* fs, uint32_t dir);
  Status Symlink(const std::string& cmd, const std::string& target, const std::string& link,
                 bool force);
  Status CopyOrMove(const Command& c, bool move);
  Status Local(const std::string& command, std::string input, std::string* out);
  Status Inspect(const Command& c, std::string* out);
  Status CheckBuffer() {
    if (buffer_.buffered_bytes() > kMaxBufferedBytes) {
      return NeedsGuestfish("the run writes more than the native engine buffers");
    }
    return Status::Ok();
  }

  OsVolume& volume_;
  VolumeBuffer buffer_;
  std::string workdir_;
  const LocalJail* jail_;
  std::optional<DiskLayout> layout_;
  std::map<int, MountedFs> filesystems_;  // partition number → the open file system
  std::map<std::string, int> mounts_;     // mount point → partition number
};

// ---- devices and mounts ----

Result<DiskLayout*> Interpreter::Layout() {
  if (!layout_) {
    DiskReader read = [this](uint64_t off, uint8_t* buf, size_t len) {
      return buffer_.Read(off, buf, len);
    };
    INGOT_ASSIGN_OR_RETURN(DiskLayout l, ReadDiskLayout(read, buffer_.Size()));
    layout_ = std::move(l);
  }
  return &*layout_;
}

Result<std::pair<uint64_t, uint64_t>> Interpreter::DeviceRange(const std::string& cmd,
                                                               const std::string& dev) {
  int n = ParseDeviceName(dev);
  INGOT_ASSIGN_OR_RETURN(DiskLayout * layout, Layout());
  if (n == 0) return std::pair<uint64_t, uint64_t>{0, buffer_.Size()};
  if (n > 0) {
    for (const DiskPartition& p : layout->partitions) {
      if (p.number == n) return std::pair{p.offset, p.length};
    }
  }
  if (dev.rfind("/dev/", 0) == 0 && n < 0 && dev.find("/dev/sd") != 0) {
    // /dev/mapper/…, /dev/VG/LV, LABEL=…: names only guestfish (LVM, inspection) knows.
    return NeedsGuestfish(cmd + ": device " + dev + " is not a partition of the disk");
  }
  return Fail(cmd, dev, "No such file or directory");
}

Result<std::string> Interpreter::FsType(int number) {
  std::string dev = DeviceName(number);
  INGOT_ASSIGN_OR_RETURN(auto range, DeviceRange("list-filesystems", dev));
  DiskReader read = [this](uint64_t off, uint8_t* buf, size_t len) {
    return buffer_.Read(off, buf, len);
  };
  return ProbeFilesystem(read, range.first, range.second);
}

Status Interpreter::Mount(const std::string& cmd, const std::string& dev, const std::string& where,
                          bool ro) {
  const int n = ParseDeviceName(dev);
  INGOT_ASSIGN_OR_RETURN(auto range, DeviceRange(cmd, dev));
  if (where.empty() || where[0] != '/')
    return Fail(cmd, where, "path must start with a / character");
  // The mount point: "/" first, then directories of what is mounted.
  std::string point = "/";
  if (where != "/") {
    if (mounts_.empty()) return Fail(cmd, where, "No such file or directory");
    INGOT_ASSIGN_OR_RETURN(Resolved r, ResolveExisting(cmd, where, true));
    INGOT_ASSIGN_OR_RETURN(ExtStat st, r.node.fs->Stat(r.node.ino));
    if (!st.is_dir()) return Fail(cmd, where, "Not a directory");
    point = r.path;
  }
  if (mounts_.count(point)) return Fail(cmd, where, "Device or resource busy");
  auto it = filesystems_.find(n);
  if (it == filesystems_.end()) {
    DiskReader read = [this](uint64_t off, uint8_t* buf, size_t len) {
      return buffer_.Read(off, buf, len);
    };
    INGOT_ASSIGN_OR_RETURN(std::string type, ProbeFilesystem(read, range.first, range.second));
    if (type != "ext2" && type != "ext3" && type != "ext4") {
      if (type == "unknown") {
        return Fail(cmd, dev, "wrong fs type, bad option, bad superblock or missing codepage");
      }
      return NeedsGuestfish(cmd + ": " + dev + " holds " + type +
                            "; the native engine handles ext2/3/4 only");
    }
    auto fs = ExtFs::Open(buffer_, range.first, range.second, !ro);
    if (!fs.ok()) {
      if (fs.status().code() == Code::kUnsupported) {
        return NeedsGuestfish(cmd + ": " + dev + ": " + fs.status().message());
      }
      return fs.status();
    }
    it = filesystems_.emplace(n, MountedFs{dev, std::move(*fs), 0}).first;
  } else if (!ro && !it->second.fs->writable()) {
    return NeedsGuestfish(cmd + ": " + dev + " is mounted read-only elsewhere");
  }
  ++it->second.mounts;
  mounts_[point] = n;
  return Status::Ok();
}

Status Interpreter::Umount(const std::string& what) {
  std::string point;
  if (mounts_.count(what)) {
    point = what;
  } else {
    int n = ParseDeviceName(what);
    for (auto& [p, dev] : mounts_) {
      if (n >= 0 && dev == n) point = p;
    }
    if (point.empty()) {
      if (what.size() > 1 && what.back() == '/' && mounts_.count(what.substr(0, what.size() - 1))) {
        point = what.substr(0, what.size() - 1);
      } else {
        return InvalidArgument("umount: " + what + ": not mounted");
      }
    }
  }
  for (auto& [p, dev] : mounts_) {
    if (p != point && (point == "/" || p.rfind(point + "/", 0) == 0)) {
      return InvalidArgument("umount: " + point + ": target is busy");
    }
  }
  int n = mounts_[point];
  mounts_.erase(point);
  auto it = filesystems_.find(n);
  if (--it->second.mounts == 0) {
    Status s = it->second.fs->Close();
    filesystems_.erase(it);
    INGOT_RETURN_IF_ERROR(s);
  }
  return Status::Ok();
}

Status Interpreter::UmountAll() {
  // Deepest first, as umount-all does.
  std::vector<std::string> points;
  for (auto& [p, n] : mounts_) points.push_back(p);
  std::sort(points.begin(), points.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& p : points) INGOT_RETURN_IF_ERROR(Umount(p));
  return Status::Ok();
}

// ---- paths ----

Result<Resolved> Interpreter::Resolve(const std::string& cmd, const std::string& path,
                                      bool follow_last) {
  if (path.empty() || path[0] != '/') return Fail(cmd, path, "path must start with a / character");
  auto root_it = mounts_.find("/");
  if (root_it == mounts_.end()) {
    // guestfish's own words for it.
    std::string stub = cmd;
    std::replace(stub.begin(), stub.end(), '-', '_');
    return InvalidArgument(cmd + ": " + stub +
                           "_stub: you must call 'mount' first to mount the root filesystem");
  }
  const Node root{filesystems_.at(root_it->second).fs.get(), ExtFs::kRootIno};
  std::deque<std::string> todo;
  auto push_components = [&todo](const std::string& p) {
    std::deque<std::string> parts;
    size_t i = 0;
    while (i <= p.size()) {
      size_t j = p.find('/', i);
      if (j == std::string::npos) j = p.size();
      if (j > i) parts.push_back(p.substr(i, j - i));
      i = j + 1;
    }
    todo.insert(todo.begin(), parts.begin(), parts.end());
  };
  push_components(path);
  std::vector<std::pair<std::string, Node>> stack;  // canonical components
  auto current = [&]() { return stack.empty() ? root : stack.back().second; };
  auto canonical = [&](const std::string& extra) {
    std::string p;
    for (auto& [name, node] : stack) p += "/" + name;
    if (!extra.empty()) p += "/" + extra;
    return p.empty() ? std::string("/") : p;
  };
  int links = 0;
  Resolved r;
  r.exists = true;
  r.node = root;
  r.parent = root;
  r.name = "";
  r.mount_root = true;
  while (!todo.empty()) {
    std::string comp = todo.front();
    todo.pop_front();
    if (comp == ".") continue;
    if (comp == "..") {
      if (!stack.empty()) stack.pop_back();
      continue;
    }
    if (comp.size() > 255) return Fail(cmd, path, "File name too long");
    const Node dir = current();
    INGOT_ASSIGN_OR_RETURN(ExtStat dst, dir.fs->Stat(dir.ino));
    if (!dst.is_dir()) return Fail(cmd, path, "Not a directory");
    const bool last = todo.empty();
    const std::string child_path = canonical(comp);
    Node child;
    bool mount_root = false;
    if (auto m = mounts_.find(child_path); m != mounts_.end()) {
      child = Node{filesystems_.at(m->second).fs.get(), ExtFs::kRootIno};
      mount_root = true;
    } else {
      INGOT_ASSIGN_OR_RETURN(auto ino, dir.fs->Lookup(dir.ino, comp));
      if (!ino) {
        if (!last) return Fail(cmd, path, "No such file or directory");
        r = Resolved{};
        r.exists = false;
        r.parent = dir;
        r.name = comp;
        r.path = child_path;
        return r;
      }
      child = Node{dir.fs, *ino};
      INGOT_ASSIGN_OR_RETURN(ExtStat st, child.fs->Stat(child.ino));
      if (st.is_lnk() && (!last || follow_last)) {
        if (++links > kMaxSymlinks) return Fail(cmd, path, "Too many levels of symbolic links");
        INGOT_ASSIGN_OR_RETURN(std::string target, child.fs->ReadLink(child.ino));
        if (!target.empty() && target[0] == '/') stack.clear();
        push_components(target);
        if (todo.empty()) {
          // A link to "/" (or to ".." climbing to it): the result is the directory reached.
          break;
        }
        continue;
      }
    }
    if (last) {
      r = Resolved{};
      r.exists = true;
      r.node = child;
      r.parent = dir;
      r.name = comp;
      r.path = child_path;
      r.mount_root = mount_root;
      return r;
    }
    stack.emplace_back(comp, child);
  }
  // Ended on "." / ".." / a link to a directory: the directory on top of the stack.
  r = Resolved{};
  r.exists = true;
  r.node = current();
  r.path = canonical("");
  if (stack.size() >= 2) {
    r.parent = stack[stack.size() - 2].second;
  } else {
    r.parent = root;
  }
  r.name = stack.empty() ? "" : stack.back().first;
  r.mount_root = stack.empty() || mounts_.count(r.path) > 0;
  return r;
}

// ---- file operations ----

Status Interpreter::WriteFile(const std::string& cmd, const std::string& path,
                              std::string_view data, bool append) {
  INGOT_ASSIGN_OR_RETURN(Resolved r, Resolve(cmd, path, true));
  if (r.exists) {
    INGOT_ASSIGN_OR_RETURN(ExtStat st, r.node.fs->Stat(r.node.ino));
    if (st.is_dir()) return Fail(cmd, path, "Is a directory");
    if (!st.is_reg()) return NeedsGuestfish(cmd + ": " + path + " is a special file");
    INGOT_RETURN_IF_ERROR(Writable(cmd, path, r.node.fs));
    INGOT_RETURN_IF_ERROR(r.node.fs->WriteContents(r.node.ino, data, !append));
  } else {
    if (r.name.empty()) return Fail(cmd, path, "No such file or directory");
    INGOT_RETURN_IF_ERROR(Writable(cmd, path, r.parent.fs));
    INGOT_ASSIGN_OR_RETURN(uint32_t ino, r.parent.fs->CreateFile(r.parent.ino, r.name, 0644));
    INGOT_RETURN_IF_ERROR(r.parent.fs->WriteContents(ino, data, true));
  }
  return CheckBuffer();
}

Status Interpreter::RemoveTree(const std::string& cmd, const std::string& path, ExtFs* fs,
                               uint32_t dir) {
  INGOT_ASSIGN_OR_RETURN(auto entries, fs->List(dir));
  for (const ExtDirEntry& e : entries) {
    const std::string child = path == "/" ? "/" + e.name : path + "/" + e.name;
    for (auto& [p, n] : mounts_) {
      if (p == child) return Fail(cmd, child, "Device or resource busy");
    }
    INGOT_ASSIGN_OR_RETURN(ExtStat st, fs->Stat(e.ino));
    if (st.is_dir()) INGOT_RETURN_IF_ERROR(RemoveTree(cmd, child, fs, e.ino));
    INGOT_RETURN_IF_ERROR(fs->Unlink(dir, e.name, e.ino));
  }
  return Status::Ok();
}

Status Interpreter::Symlink(const std::string& cmd, const std::string& target,
                            const std::string& link, bool force) {
  // As `ln -s[f] TARGET LINK`: a LINK that is a directory (or a link to one) gets the new link
  // inside it, named after TARGET.
  INGOT_ASSIGN_OR_RETURN(Resolved r, Resolve(cmd, link, true));
  if (r.exists) {
    INGOT_ASSIGN_OR_RETURN(ExtStat st, r.node.fs->Stat(r.node.ino));
    if (st.is_dir()) {
      std::string base = target;
      while (base.size() > 1 && base.back() == '/') base.pop_back();
      base = base.substr(base.rfind('/') == std::string::npos ? 0 : base.rfind('/') + 1);
      if (base.empty() || base == "/") return Fail(cmd, link, "File exists");
      std::string inside = r.path == "/" ? "/" + base : r.path + "/" + base;
      INGOT_ASSIGN_OR_RETURN(r, Resolve(cmd, inside, false));
    } else {
      // A file, or a link to one: the link itself is what `ln` replaces.
      INGOT_ASSIGN_OR_RETURN(r, Resolve(cmd, link, false));
    }
  } else {
    // A dangling link at LINK, or nothing: look at LINK itself.
    INGOT_ASSIGN_OR_RETURN(r, Resolve(cmd, link, false));
  }
  if (r.exists) {
    INGOT_ASSIGN_OR_RETURN(ExtStat st, r.node.fs->Stat(r.node.ino));
    if (!force) return Fail(cmd, link, "File exists");
    if (st.is_dir() || r.mount_root) return Fail(cmd, link, "Is a directory");
    INGOT_RETURN_IF_ERROR(Writable(cmd, link, r.parent.fs));
    INGOT_RETURN_IF_ERROR(r.parent.fs->Unlink(r.parent.ino, r.name, r.node.ino));
  }
  INGOT_RETURN_IF_ERROR(Writable(cmd, link, r.parent.fs));
  return r.parent.fs->Symlink(r.parent.ino, r.name, target);
}

Status Interpreter::CopyOrMove(const Command& c, bool move) {
  INGOT_RETURN_IF_ERROR(Arity(c, 2));
  const std::string& src = c.args[0];
  INGOT_ASSIGN_OR_RETURN(Resolved s, ResolveExisting(c.name, src, !move));
  INGOT_ASSIGN_OR_RETURN(ExtStat sst, s.node.fs->Stat(s.node.ino));
  if (!move && sst.is_dir()) return Fail(c.name, src, "-r not specified; omitting directory");
  if (move && s.mount_root) return Fail(c.name, src, "Device or resource busy");
  INGOT_ASSIGN_OR_RETURN(Resolved d, Resolve(c.name, c.args[1], true));
  if (d.exists) {
    INGOT_ASSIGN_OR_RETURN(ExtStat dst, d.node.fs->Stat(d.node.ino));
    if (dst.is_dir()) {
      std::string inside = d.path == "/" ? "/" + s.name : d.path + "/" + s.name;
      INGOT_ASSIGN_OR_RETURN(d, Resolve(c.name, inside, !move));
    } else if (move) {
      INGOT_ASSIGN_OR_RETURN(d, Resolve(c.name, c.args[1], false));
    }
  }
  if (d.exists && d.node.fs == s.node.fs && d.node.ino == s.node.ino) {
    return Fail(c.name, c.args[1], "are the same file");
  }
  if (d.exists) {
    INGOT_ASSIGN_OR_RETURN(ExtStat dst, d.node.fs->Stat(d.node.ino));
    if (dst.is_dir() && !sst.is_dir()) return Fail(c.name, c.args[1], "Is a directory");
    if (!dst.is_dir() && sst.is_dir()) return Fail(c.name, c.args[1], "Not a directory");
  }
  if (!move) {
    if (!sst.is_reg()) return NeedsGuestfish("cp: " + src + " is not a regular file");
    INGOT_ASSIGN_OR_RETURN(std::string data, s.node.fs->ReadAll(s.node.ino, kMaxFileBytes));
    if (d.exists) {
      INGOT_RETURN_IF_ERROR(Writable(c.name, c.args[1], d.node.fs));
      INGOT_RETURN_IF_ERROR(d.node.fs->WriteContents(d.node.ino, data, true));
    } else {
      INGOT_RETURN_IF_ERROR(Writable(c.name, c.args[1], d.parent.fs));
      INGOT_ASSIGN_OR_RETURN(uint32_t ino,
                             d.parent.fs->CreateFile(d.parent.ino, d.name, sst.mode & 0755));
      INGOT_RETURN_IF_ERROR(d.parent.fs->WriteContents(ino, data, true));
    }
    return CheckBuffer();
  }
  // mv
  if (d.parent.fs != s.parent.fs || (d.exists && d.node.fs != s.node.fs)) {
    return NeedsGuestfish("mv: " + src + " and " + c.args[1] + " are on different file systems");
  }
  if (sst.is_dir() && (d.path == s.path || d.path.rfind(s.path + "/", 0) == 0)) {
    return Fail(c.name, src, "cannot move a directory into itself");
  }
  ExtFs* fs = s.parent.fs;
  INGOT_RETURN_IF_ERROR(Writable(c.name, src, fs));
  if (d.exists) {
    if (d.mount_root) return Fail(c.name, c.args[1], "Device or resource busy");
    INGOT_RETURN_IF_ERROR(fs->Unlink(d.parent.ino, d.name, d.node.ino));  // empty dirs only
  }
  INGOT_RETURN_IF_ERROR(fs->Link(d.parent.ino, d.name, s.node.ino, s.parent.ino));
  return fs->UnlinkEntryOnly(s.parent.ino, s.name, s.node.ino);
}

// ---- inspection (what /etc/os-release and /etc/hostname say) ----

std::map<std::string, std::string> ParseOsRelease(const std::string& text) {
  std::map<std::string, std::string> kv;
  size_t i = 0;
  while (i < text.size()) {
    size_t nl = text.find('\n', i);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(i, nl - i);
    i = nl + 1;
    size_t eq = line.find('=');
    if (eq == std::string::npos || line[0] == '#') continue;
    std::string v = line.substr(eq + 1);
    if (v.size() >= 2 && (v[0] == '"' || v[0] == '\'') && v.back() == v[0]) {
      v = v.substr(1, v.size() - 2);
    }
    kv[line.substr(0, eq)] = v;
  }
  return kv;
}

Status Interpreter::Inspect(const Command& c, std::string* out) {
  // The roots: ext file systems holding /etc/os-release (or /usr/lib/os-release).
  INGOT_ASSIGN_OR_RETURN(DiskLayout * layout, Layout());
  std::vector<int> numbers;
  if (layout->partitions.empty()) numbers.push_back(0);
  for (auto& p : layout->partitions) numbers.push_back(p.number);
  struct Root {
    std::string device;
    std::map<std::string, std::string> os;
    std::string hostname;
  };
  std::vector<Root> roots;
  for (int n : numbers) {
    INGOT_ASSIGN_OR_RETURN(std::string type, FsType(n));
    if (type == "LVM2_member") return NeedsGuestfish(c.name + ": the disk holds LVM volumes");
    if (type != "ext2" && type != "ext3" && type != "ext4") continue;
    INGOT_ASSIGN_OR_RETURN(auto range, DeviceRange(c.name, DeviceName(n)));
    auto fs = ExtFs::Open(buffer_, range.first, range.second, false);
    if (!fs.ok()) continue;
    auto read_path = [&](const std::vector<std::string>& parts) -> std::optional<std::string> {
      uint32_t ino = ExtFs::kRootIno;
      for (const std::string& p : parts) {
        auto next = (*fs)->Lookup(ino, p);
        if (!next.ok() || !*next) return std::nullopt;
        ino = **next;
      }
      auto st = (*fs)->Stat(ino);
      if (!st.ok()) return std::nullopt;
      if (st->is_lnk()) {
        // os-release is usually a relative link to ../usr/lib/os-release.
        return std::nullopt;
      }
      auto data = (*fs)->ReadAll(ino, 1 << 20);
      if (!data.ok()) return std::nullopt;
      return *data;
    };
    auto os = read_path({"etc", "os-release"});
    if (!os) os = read_path({"usr", "lib", "os-release"});
    if (!os) continue;
    Root root{DeviceName(n), ParseOsRelease(*os), ""};
    if (auto h = read_path({"etc", "hostname"})) {
      root.hostname = h->substr(0, h->find('\n'));
    }
    roots.push_back(std::move(root));
  }
  if (c.name == "inspect-os") {
    // As libguestfs's inspection does: it leaves nothing mounted.
    INGOT_RETURN_IF_ERROR(UmountAll());
  }
  if (c.name == "inspect-os" || c.name == "inspect-get-roots") {
    for (auto& r : roots) *out += r.device + "\n";
    return Status::Ok();
  }
  INGOT_RETURN_IF_ERROR(Arity(c, 1));
  const Root* root = nullptr;
  for (auto& r : roots) {
    if (r.device == c.args[0]) root = &r;
  }
  if (!root)
    return InvalidArgument(c.name + ": " + c.args[0] + ": no inspection data for this root");
  auto get = [&](const char* key) {
    auto it = root->os.find(key);
    return it == root->os.end() ? std::string() : it->second;
  };
  if (c.name == "inspect-get-type") {
    *out += "linux\n";
  } else if (c.name == "inspect-get-distro") {
    // libguestfs's names for os-release IDs.
    std::string id = get("ID");
    static const std::map<std::string, std::string> kDistro = {{"rhel", "rhel"},
                                                               {"centos", "centos"},
                                                               {"fedora", "fedora"},
                                                               {"debian", "debian"},
                                                               {"ubuntu", "ubuntu"},
                                                               {"sles", "sles"},
                                                               {"opensuse", "opensuse"},
                                                               {"opensuse-leap", "opensuse"},
                                                               {"opensuse-tumbleweed", "opensuse"},
                                                               {"rocky", "rocky"},
                                                               {"almalinux", "alma"},
                                                               {"ol", "oraclelinux"},
                                                               {"arch", "archlinux"},
                                                               {"alpine", "alpinelinux"}};
    auto it = kDistro.find(id);
    *out += (it == kDistro.end() ? std::string("unknown") : it->second) + "\n";
  } else if (c.name == "inspect-get-product-name") {
    std::string name = get("PRETTY_NAME");
    *out += (name.empty() ? std::string("unknown") : name) + "\n";
  } else if (c.name == "inspect-get-major-version" || c.name == "inspect-get-minor-version") {
    std::string v = get("VERSION_ID");
    size_t dot = v.find('.');
    std::string part = c.name == "inspect-get-major-version"
                           ? v.substr(0, dot)
                           : (dot == std::string::npos ? "0" : v.substr(dot + 1));
    auto n = ParseInt(part.empty() ? "0" : part);
    *out += std::to_string(n.ok() ? *n : 0) + "\n";
  } else if (c.name == "inspect-get-hostname") {
    *out += (root->hostname.empty() ? std::string("unknown") : root->hostname) + "\n";
  }
  return Status::Ok();
}

// ---- the commands ----

Status Interpreter::Local(const std::string& command, std::string input, std::string* out) {
  if (!jail_) return NeedsGuestfish("a local command without a jail");
  std::string output;
  INGOT_ASSIGN_OR_RETURN(process::Outcome o, jail_->Run(command, std::move(input), &output));
  // The jail's own messages name what went wrong; the log keeps them, the error repeats the last.
  std::string why;
  for (size_t at = output.find(kJailPrefix); at != std::string::npos;
       at = output.find(kJailPrefix, at + 1)) {
    if (at != 0 && output[at - 1] != '\n') continue;
    why = output.substr(at + kJailPrefix.size(), output.find('\n', at) - at - kJailPrefix.size());
  }
  *out += output;
  if (o.ok()) return Status::Ok();
  return InvalidArgument("local command: " + (why.empty() ? o.Describe() : why));
}

Status Interpreter::Exec(const Command& c, std::string* out) {
  if (c.kind == Command::Kind::kLocal) return Local(c.local, "", out);
  const std::string& n = c.name;
  const auto& a = c.args;
  if (n == "echo") {
    for (size_t i = 0; i < a.size(); ++i) *out += (i ? " " : "") + a[i];
    *out += "\n";
    return Status::Ok();
  }
  if (n == "run" || n == "sync") return Status::Ok();
  if (n == "list-devices") {
    *out += "/dev/sda\n";
    return Status::Ok();
  }
  if (n == "list-partitions" || n == "list-filesystems" || n == "vgs" || n == "lvs") {
    INGOT_ASSIGN_OR_RETURN(DiskLayout * layout, Layout());
    std::vector<int> numbers;
    for (auto& p : layout->partitions) numbers.push_back(p.number);
    if (n == "list-partitions") {
      for (int num : numbers) *out += DeviceName(num) + "\n";
      return Status::Ok();
    }
    if (layout->partitions.empty()) numbers = {0};
    std::string listing;
    for (int num : numbers) {
      INGOT_ASSIGN_OR_RETURN(std::string type, FsType(num));
      if (type == "LVM2_member") return NeedsGuestfish(n + ": the disk holds LVM volumes");
      listing += DeviceName(num) + ": " + type + "\n";
    }
    if (n == "list-filesystems") *out += listing;
    return Status::Ok();
  }
  if (n == "mount" || n == "mount-ro") {
    INGOT_RETURN_IF_ERROR(Arity(c, 2));
    return Mount(n, a[0], a[1], n == "mount-ro");
  }
  if (n == "mount-options") {
    INGOT_RETURN_IF_ERROR(Arity(c, 3));
    bool ro = false;
    size_t i = 0;
    while (i <= a[0].size()) {
      size_t j = a[0].find(',', i);
      if (j == std::string::npos) j = a[0].size();
      if (a[0].substr(i, j - i) == "ro") ro = true;
      i = j + 1;
    }
    return Mount(n, a[1], a[2], ro);
  }
  if (n == "umount") {
    if (a.empty() || a.size() > 3) return Arity(c, 1);
    return Umount(a[0]);
  }
  if (n == "umount-all") return UmountAll();
  if (n == "upload") {
    INGOT_RETURN_IF_ERROR(Arity(c, 2));
    std::string data;
    if (c.heredoc && c.heredoc_arg == 0) {
      data = *c.heredoc;
    } else {
      if (a[0] == "-") return NeedsGuestfish("upload from standard input");
      std::string local = workdir_ + "/" + a[0];
      int fd = ::open(local.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) return InvalidArgument("upload: " + a[0] + ": " + std::strerror(errno));
      char buf[65536];
      ssize_t got;
      while ((got = ::read(fd, buf, sizeof buf)) > 0) {
        data.append(buf, size_t(got));
        if (data.size() > kMaxFileBytes) {
          ::close(fd);
          return NeedsGuestfish("upload of a file over " + std::to_string(kMaxFileBytes) +
                                " bytes");
        }
      }
      ::close(fd);
      if (got < 0) return IoError("upload: reading " + a[0] + " failed");
    }
    return WriteFile(n, a[1], data, false);
  }
  if (n == "write" || n == "write-append") {
    INGOT_RETURN_IF_ERROR(Arity(c, 2));
    return WriteFile(n, a[0], a[1], n == "write-append");
  }
  if (n == "download" || n == "cat" || n == "readlink") {
    INGOT_RETURN_IF_ERROR(Arity(c, n == "download" ? 2 : 1));
    INGOT_ASSIGN_OR_RETURN(Resolved r, ResolveExisting(n, a[0], n != "readlink"));
    INGOT_ASSIGN_OR_RETURN(ExtStat st, r.node.fs->Stat(r.node.ino));
    if (n == "readlink") {
      if (!st.is_lnk()) return Fail(n, a[0], "Invalid argument");
      INGOT_ASSIGN_OR_RETURN(std::string target, r.node.fs->ReadLink(r.node.ino));
      *out += target + "\n";
      return Status::Ok();
    }
    if (st.is_dir()) return Fail(n, a[0], "Is a directory");
    if (!st.is_reg()) return NeedsGuestfish(n + ": " + a[0] + " is a special file");
    INGOT_ASSIGN_OR_RETURN(std::string data, r.node.fs->ReadAll(r.node.ino, kMaxFileBytes));
    if (n == "cat") {
      *out += data + "\n";
      return Status::Ok();
    }
    if (a[1] == "-") {
      *out += data;
      return Status::Ok();
    }
    std::string local = workdir_ + "/" + a[1];
    int fd = ::open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return InvalidArgument("download: " + a[1] + ": " + std::strerror(errno));
    size_t done = 0;
    while (done < data.size()) {
      ssize_t w = ::write(fd, data.data() + done, data.size() - done);
      if (w <= 0) {
        ::close(fd);
        return IoError("download: writing " + a[1] + " failed");
      }
      done += size_t(w);
    }
    ::close(fd);
    return Status::Ok();
  }
  if (n == "mkdir") {
    INGOT_RETURN_IF_ERROR(Arity(c, 1));
    INGOT_ASSIGN_OR_RETURN(Resolved r, Resolve(n, a[0], false));
    if (r.exists) return Fail(n, a[0], "File exists");
    INGOT_RETURN_IF_ERROR(Writable(n, a[0], r.parent.fs));
    return r.parent.fs->Mkdir(r.parent.ino, r.name).status();
  }
  if (n == "mkdir-p") {
    INGOT_RETURN_IF_ERROR(Arity(c, 1));
    if (a[0].empty() || a[0][0] != '/') return Fail(n, a[0], "path must start with a / character");
    std::string prefix;
    size_t i = 1;
    while (i <= a[0].size()) {
      size_t j = a[0].find('/', i);
      if (j == std::string::npos) j = a[0].size();
      if (j > i) {
        prefix += "/" + a[0].substr(i, j - i);
        INGOT_ASSIGN_OR_RETURN(Resolved r, Resolve(n, prefix, true));
        if (r.exists) {
          INGOT_ASSIGN_OR_RETURN(ExtStat st, r.node.fs->Stat(r.node.ino));
          if (!st.is_dir()) return Fail(n, prefix, "File exists");
        } else {
          INGOT_RETURN_IF_ERROR(Writable(n, prefix, r.parent.fs));
          INGOT_RETURN_IF_ERROR(r.parent.fs->Mkdir(r.parent.ino, r.name).status());
        }
      }
      i = j + 1;
    }
    return Status::Ok();
  }
  if (n == "rm" || n == "rm-f" || n == "rmdir" || n == "rm-rf") {
    INGOT_RETURN_IF_ERROR(Arity(c, 1));
    INGOT_ASSIGN_OR_RETURN(Resolved r, Resolve(n, a[0], false));
    if (!r.exists) {
      if (n == "rm-f" || n == "rm-rf") return Status::Ok();
      return Fail(n, a[0], "No such file or directory");
    }
    if (r.mount_root) return Fail(n, a[0], "Device or resource busy");
    INGOT_ASSIGN_OR_RETURN(ExtStat st, r.node.fs->Stat(r.node.ino));
    if (n == "rmdir" && !st.is_dir()) return Fail(n, a[0], "Not a directory");
    if ((n == "rm" || n == "rm-f") && st.is_dir()) return Fail(n, a[0], "Is a directory");
    INGOT_RETURN_IF_ERROR(Writable(n, a[0], r.parent.fs));
    if (n == "rm-rf" && st.is_dir()) {
      INGOT_RETURN_IF_ERROR(RemoveTree(n, r.path, r.node.fs, r.node.ino));
    }
    Status s = r.parent.fs->Unlink(r.parent.ino, r.name, r.node.ino);
    if (s.code() == Code::kConflict) return Fail(n, a[0], "Directory not empty");
    return s;
  }
  if (n == "ln-s" || n == "ln-sf") {
    INGOT_RETURN_IF_ERROR(Arity(c, 2));
    return Symlink(n, a[0], a[1], n == "ln-sf");
  }
  if (n == "chmod" || n == "chown" || n == "touch") {
    INGOT_RETURN_IF_ERROR(Arity(c, n == "chmod" ? 2 : n == "chown" ? 3 : 1));
    const std::string& path = a.back();
    if (n == "touch") {
      INGOT_ASSIGN_OR_RETURN(Resolved r, Resolve(n, path, true));
      if (!r.exists) return WriteFile(n, path, "", false);
      INGOT_ASSIGN_OR_RETURN(ExtStat st, r.node.fs->Stat(r.node.ino));
      if (!st.is_reg()) return Fail(n, path, st.is_dir() ? "Is a directory" : "not a regular file");
      INGOT_RETURN_IF_ERROR(Writable(n, path, r.node.fs));
      return r.node.fs->Touch(r.node.ino);
    }
    INGOT_ASSIGN_OR_RETURN(Resolved r, ResolveExisting(n, path, true));
    INGOT_RETURN_IF_ERROR(Writable(n, path, r.node.fs));
    if (n == "chmod") {
      INGOT_ASSIGN_OR_RETURN(int64_t mode, ParseInt(a[0]));
      if (mode < 0 || mode > 07777) return Fail(n, path, "Invalid argument");
      return r.node.fs->SetMode(r.node.ino, uint32_t(mode));
    }
    INGOT_ASSIGN_OR_RETURN(int64_t uid, ParseInt(a[0]));
    INGOT_ASSIGN_OR_RETURN(int64_t gid, ParseInt(a[1]));
    if (uid < -1 || gid < -1 || uid > UINT32_MAX - 1 || gid > UINT32_MAX - 1) {
      return Fail(n, path, "Invalid argument");
    }
    return r.node.fs->SetOwner(r.node.ino, uid, gid);
  }
  if (n == "exists" || n == "is-file" || n == "is-dir" || n == "is-symlink") {
    if (a.empty() || a.size() > 2) return Arity(c, 1);
    bool follow = n == "exists";
    if (a.size() == 2) {
      if (a[1] == "followsymlinks:true") {
        follow = true;
      } else if (a[1] != "followsymlinks:false") {
        return InvalidArgument(n + ": unknown optional argument " + a[1]);
      }
    }
    auto r = Resolve(n, a[0], follow);
    bool answer = false;
    if (r.ok() && r->exists) {
      INGOT_ASSIGN_OR_RETURN(ExtStat st, r->node.fs->Stat(r->node.ino));
      answer = n == "exists"    ? true
               : n == "is-file" ? st.is_reg()
               : n == "is-dir"  ? st.is_dir()
                                : st.is_lnk();
    } else if (!r.ok() && IsNeedsGuestfish(r.status())) {
      return r.status();
    } else if (!r.ok() && a[0].rfind('/', 0) != 0) {
      return r.status();
    }
    *out += answer ? "true\n" : "false\n";
    return Status::Ok();
  }
  if (n == "ls") {
    INGOT_RETURN_IF_ERROR(Arity(c, 1));
    INGOT_ASSIGN_OR_RETURN(Resolved r, ResolveExisting(n, a[0], true));
    INGOT_ASSIGN_OR_RETURN(ExtStat st, r.node.fs->Stat(r.node.ino));
    if (!st.is_dir()) return Fail(n, a[0], "Not a directory");
    INGOT_ASSIGN_OR_RETURN(auto entries, r.node.fs->List(r.node.ino));
    std::vector<std::string> names;
    for (auto& e : entries) names.push_back(e.name);
    std::sort(names.begin(), names.end());
    for (auto& name : names) *out += name + "\n";
    return Status::Ok();
  }
  if (n == "cp" || n == "mv") return CopyOrMove(c, n == "mv");
  if (n.rfind("inspect-", 0) == 0) return Inspect(c, out);
  return NeedsGuestfish(n + " is not a command of the native engine");
}

Result<NativeOutcome> Interpreter::Run(const ParsedScript& script) {
  NativeOutcome outcome;
  for (const Command& c : script.commands) {
    if (c.kind == Command::Kind::kGuestfish && !NativeCommand(c.name)) {
      outcome.needs_guestfish = true;
      outcome.line = c.line;
      outcome.reason = c.name + " is not a command of the native engine";
      return outcome;
    }
  }
  Status fatal;
  for (const Command& c : script.commands) {
    if (c.name == "exit") {
      outcome.log += "> " + Describe(c) + "\n";
      break;
    }
    std::string out;
    Status s = Exec(c, &out);
    if (s.ok() && c.pipe) {
      // `cmd | shell`: the command's output is the local command's input; guestfish ignores how
      // the local side ends.
      std::string piped;
      (void)Local(*c.pipe, std::move(out), &piped);
      out = std::move(piped);
    }
    if (IsNeedsGuestfish(s)) {
      outcome.needs_guestfish = true;
      outcome.line = c.line;
      outcome.reason = s.message().substr(kNeedsGuestfish.size());
      outcome.log.clear();
      return outcome;  // the buffer is dropped: the volume is untouched
    }
    outcome.log += "> " + Describe(c) + "\n" + out;
    if (!s.ok()) {
      // The volume failing is not the script's fault: stop, commit nothing more.
      if (s.code() == Code::kIoError) return s;
      outcome.log += "libguestfs: error: " + s.message() + "\n";
      if (!c.ignore_errors) {
        fatal = Status(s.code(), "line " + std::to_string(c.line) + ": " + s.message());
        break;
      }
    }
  }
  // The end of the run unmounts everything (guestfish's appliance shuts down); the metadata the
  // file systems hold is written, then the buffer goes to the volume in one pass.
  Status closing = UmountAll();
  if (!closing.ok() && !IsNeedsGuestfish(closing)) {
    if (closing.code() == Code::kIoError || closing.code() == Code::kCorruption) return closing;
    if (fatal.ok()) fatal = closing;
  }
  INGOT_RETURN_IF_ERROR(buffer_.Commit());
  outcome.status = fatal;
  return outcome;
}

}  // namespace

bool NativeCommand(const std::string& name) { return NativeSet().count(name) > 0; }

Result<NativeOutcome> RunNative(OsVolume& volume, const ParsedScript& script,
                                const std::string& workdir, const LocalJail* jail) {
  Interpreter interpreter(volume, workdir, jail);
  return interpreter.Run(script);
}

}  // namespace ingot::deploy::guestfish
