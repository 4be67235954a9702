#include "deploy/volume_store.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <ctime>
#include <functional>

#include "common/log.h"
#include "common/uuid.h"
#include "io/file.h"
#include "iscsi/wire.h"

namespace ingot::deploy {
namespace {

Result<std::string> ReadSmallFile(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_RDONLY | O_CLOEXEC));
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) {
    text.append(buf, size_t(n));
    if (text.size() > (1 << 20)) return Corruption(path + " is too large");
  }
  if (n < 0) return FromErrno(errno, "read " + path);
  return text;
}

// Writes `path` so that readers see the old or the new contents, never a mix, across a crash.
Status ReplaceFile(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  {
    INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd,
                           io::OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC));
    INGOT_RETURN_IF_ERROR(io::WriteAll(
        fd.get(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()}, tmp));
    if (::fsync(fd.get()) != 0) return FromErrno(errno, "fsync " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return FromErrno(errno, "rename " + tmp);
  return io::SyncParentDir(path);
}

// Removes a directory tree of plain files (a volume's directory has no subdirectories).
Status RemoveTree(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno == ENOENT ? Status::Ok() : FromErrno(errno, "open " + dir);
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (::unlink((dir + "/" + n).c_str()) != 0 && errno != ENOENT) {
      Status s = FromErrno(errno, "unlink " + dir + "/" + n);
      ::closedir(d);
      return s;
    }
  }
  ::closedir(d);
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return FromErrno(errno, "rmdir " + dir);
  return Status::Ok();
}

struct Prefix {
  int family = 0;
  uint8_t bytes[16] = {};
  int bits = 0;
};

std::optional<Prefix> ParsePrefix(std::string_view entry) {
  Prefix p;
  std::string addr(entry);
  int bits = -1;
  if (auto slash = addr.find('/'); slash != std::string::npos) {
    std::string_view b = std::string_view(addr).substr(slash + 1);
    int v = 0;
    auto [ptr, ec] = std::from_chars(b.data(), b.data() + b.size(), v);
    if (ec != std::errc() || ptr != b.data() + b.size() || b.empty()) return std::nullopt;
    bits = v;
    addr.resize(slash);
  }
  if (inet_pton(AF_INET, addr.c_str(), p.bytes) == 1) {
    p.family = AF_INET;
    if (bits < 0) bits = 32;
    if (bits > 32) return std::nullopt;
  } else if (inet_pton(AF_INET6, addr.c_str(), p.bytes) == 1) {
    p.family = AF_INET6;
    if (bits < 0) bits = 128;
    if (bits > 128) return std::nullopt;
  } else {
    return std::nullopt;
  }
  p.bits = bits;
  return p;
}

bool InPrefix(const Prefix& p, const Prefix& a) {
  if (p.family != a.family) return false;
  int bits = p.bits;
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : uint8_t(0xff << (8 - bits));
    if ((p.bytes[i] & mask) != (a.bytes[i] & mask)) return false;
  }
  return true;
}

}  // namespace

bool ValidVolumeName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

Result<ExportRule> ParseExportRule(std::string_view text) {
  ExportRule r;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return Corruption("export.meta: line without '='");
    std::string_view k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "attached") {
      if (v != "true" && v != "false") return Corruption("export.meta: attached must be true/false");
      r.attached = v == "true";
    } else if (k == "allow" || k == "initiators") {
      std::vector<std::string>& list = k == "allow" ? r.allow : r.initiators;
      size_t p = 0;
      while (p < v.size()) {
        size_t comma = v.find(',', p);
        std::string_view e = v.substr(p, comma == std::string_view::npos ? comma : comma - p);
        if (!e.empty()) list.emplace_back(e);
        p = comma == std::string_view::npos ? v.size() : comma + 1;
      }
    }
  }
  return r;
}

std::string FormatExportRule(const ExportRule& rule) {
  std::string s = std::string("attached=") + (rule.attached ? "true" : "false") + "\nallow=";
  for (size_t i = 0; i < rule.allow.size(); ++i) s += (i ? "," : "") + rule.allow[i];
  s += "\n";
  if (!rule.initiators.empty()) {
    s += "initiators=";
    for (size_t i = 0; i < rule.initiators.size(); ++i) s += (i ? "," : "") + rule.initiators[i];
    s += "\n";
  }
  return s;
}

Status CheckInitiatorList(const std::vector<std::string>& initiators) {
  for (const std::string& e : initiators) {
    if (!iscsi::ValidIscsiName(e)) {
      return InvalidArgument("'" + e + "' is not an iSCSI initiator name (iqn.2001-04.com.example:host)");
    }
  }
  return Status::Ok();
}

bool InitiatorAllowed(const ExportRule& rule, std::string_view initiator) {
  if (rule.initiators.empty()) return true;
  const std::string want = iscsi::LowerName(initiator);
  for (const std::string& e : rule.initiators) {
    if (iscsi::LowerName(e) == want) return true;
  }
  return false;
}

Status CheckAllowList(const std::vector<std::string>& allow) {
  for (const std::string& e : allow) {
    if (!ParsePrefix(e)) {
      return InvalidArgument("'" + e + "' is not an IP address or prefix (10.0.0.5, 10.0.0.0/24)");
    }
  }
  return Status::Ok();
}

bool AddressAllowed(const ExportRule& rule, std::string_view address) {
  std::optional<Prefix> a = ParsePrefix(address);
  if (!a || a->bits != (a->family == AF_INET ? 32 : 128)) return false;
  for (const std::string& e : rule.allow) {
    std::optional<Prefix> p = ParsePrefix(e);
    if (p && InPrefix(*p, *a)) return true;
  }
  return false;
}

Result<std::unique_ptr<VolumeStore>> VolumeStore::Open(const std::string& root) {
  INGOT_RETURN_IF_ERROR(io::MakeDirs(root));
  std::unique_ptr<VolumeStore> store(new VolumeStore(root));
  // What a crash left: volumes half-made (.new-) or half-deleted (.del-).
  DIR* d = ::opendir(root.c_str());
  if (d == nullptr) return FromErrno(errno, "open " + root);
  std::vector<std::string> leftovers;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind(".new-", 0) == 0 || n.rfind(".del-", 0) == 0) leftovers.push_back(n);
  }
  ::closedir(d);
  for (const std::string& n : leftovers) {
    INGOT_RETURN_IF_ERROR(RemoveTree(root + "/" + n));
    log::Info("volume.repair", {{"removed", n}});
  }
  if (!leftovers.empty()) INGOT_RETURN_IF_ERROR(io::SyncParentDir(root + "/x"));
  return store;
}

Result<VolumeInfo> VolumeStore::Create(const CloneRequest& req) {
  if (!ValidVolumeName(req.name)) {
    return InvalidArgument("volume name must be 1-128 of A-Z a-z 0-9 . _ - and not start with '.'");
  }
  const uint32_t cs = req.cluster_size;
  if (cs < 4096 || cs > (2u << 20) || (cs & (cs - 1)) != 0) {
    return InvalidArgument("cluster size must be a power of two from 4096 to 2097152");
  }
  struct stat st{};
  if (::stat(Dir(req.name).c_str(), &st) == 0) {
    return AlreadyExists("volume '" + req.name + "' exists");
  }
  // The golden image: opened through formats/, so a hostile image is refused here, once.
  INGOT_ASSIGN_OR_RETURN(auto file, io::FileSource::Open(req.base_path));
  std::optional<formats::Format> format = req.format;
  if (!format) {
    INGOT_ASSIGN_OR_RETURN(format, formats::Detect(*file));
  }
  INGOT_ASSIGN_OR_RETURN(auto image, formats::Open(*file, format));
  if (::fstat(file->fd(), &st) != 0) return FromErrno(errno, "stat " + req.base_path);
  VolumeMeta meta;
  meta.size = req.size == 0 ? image->Size() : req.size;
  if (meta.size < image->Size()) {
    return InvalidArgument("volume size " + std::to_string(meta.size) +
                           " is smaller than the golden image's " +
                           std::to_string(image->Size()));
  }
  if (meta.size == 0 || meta.size > (1ull << 50)) return InvalidArgument("volume size out of range");
  meta.cluster_size = cs;
  meta.base_format = std::string(formats::FormatName(*format));
  meta.base_file_size = uint64_t(st.st_size);
  meta.base_mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  meta.created_unix = int64_t(std::time(nullptr));

  const std::string tmp = root_ + "/.new-" + req.name + "-" + NewUuid().substr(0, 8);
  if (::mkdir(tmp.c_str(), 0750) != 0) return FromErrno(errno, "mkdir " + tmp);
  auto fail = [&](Status s) {
    (void)RemoveTree(tmp);
    return s;
  };
  // Pin the golden image with a hard link when it shares our file system; a path otherwise.
  if (::link(req.base_path.c_str(), (tmp + "/base").c_str()) == 0) {
    meta.base = "base";
  } else if (errno == EXDEV || errno == EPERM || errno == EMLINK) {
    char* abs = ::realpath(req.base_path.c_str(), nullptr);
    if (abs == nullptr) return fail(FromErrno(errno, "realpath " + req.base_path));
    meta.base = abs;
    std::free(abs);
  } else {
    return fail(FromErrno(errno, "link " + req.base_path));
  }
  // export.meta first and unsynced: Format's fsyncs commit it with the rest (see there), and the
  // fsync below then costs nothing. No rename needed: the directory is published as a whole.
  io::UniqueFd rule_fd;
  {
    auto f = io::OpenFile(tmp + "/export.meta", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC);
    if (!f.ok()) return fail(f.status());
    rule_fd = std::move(*f);
    const std::string text = FormatExportRule({});
    if (Status s = io::WriteAll(rule_fd.get(),
                                {reinterpret_cast<const uint8_t*>(text.data()), text.size()},
                                "export.meta");
        !s.ok()) {
      return fail(s);
    }
  }
  if (Status s = OsVolume::Format(tmp, meta); !s.ok()) return fail(s);
  if (::fsync(rule_fd.get()) != 0) return fail(FromErrno(errno, "fsync export.meta"));
  if (Status s = io::SyncParentDir(tmp + "/x"); !s.ok()) return fail(s);
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, Dir(req.name).c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    (void)RemoveTree(tmp);
    if (err == EEXIST || err == ENOTEMPTY) return AlreadyExists("volume '" + req.name + "' exists");
    return FromErrno(err, "publish volume " + req.name);
  }
  INGOT_RETURN_IF_ERROR(io::SyncParentDir(Dir(req.name)));
  return VolumeInfo{req.name, meta, {}};
}

Status VolumeStore::Delete(const std::string& name) {
  if (!ValidVolumeName(name)) return NotFound("no volume '" + name + "'");
  auto dir = io::OpenFile(Dir(name), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!dir.ok()) {
    if (dir.status().code() == Code::kNotFound) return NotFound("no volume '" + name + "'");
    return dir.status();
  }
  if (::flock(dir->get(), LOCK_EX | LOCK_NB) != 0) {
    return Conflict("volume '" + name + "' is in use (attached and connected)");
  }
  const std::string gone = root_ + "/.del-" + name + "-" + NewUuid().substr(0, 8);
  if (::rename(Dir(name).c_str(), gone.c_str()) != 0) return FromErrno(errno, "rename " + name);
  INGOT_RETURN_IF_ERROR(io::SyncParentDir(gone));
  INGOT_RETURN_IF_ERROR(RemoveTree(gone));
  return io::SyncParentDir(gone);
}

Result<VolumeInfo> VolumeStore::Get(const std::string& name) const {
  if (!ValidVolumeName(name)) return NotFound("no volume '" + name + "'");
  auto text = ReadSmallFile(Dir(name) + "/volume.meta");
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound) return NotFound("no volume '" + name + "'");
    return text.status();
  }
  INGOT_ASSIGN_OR_RETURN(VolumeMeta meta, ParseVolumeMeta(*text));
  INGOT_ASSIGN_OR_RETURN(ExportRule rule, GetExportRule(name));
  return VolumeInfo{name, meta, rule};
}

Result<std::vector<VolumeInfo>> VolumeStore::List() const {
  DIR* d = ::opendir(root_.c_str());
  if (d == nullptr) return FromErrno(errno, "open " + root_);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    if (ValidVolumeName(e->d_name)) names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<VolumeInfo> out;
  for (const std::string& n : names) {
    auto v = Get(n);
    if (v.ok()) {
      out.push_back(std::move(*v));
    } else if (v.status().code() != Code::kNotFound) {
      return v.status();
    }
  }
  return out;
}

Status VolumeStore::SetExportRule(const std::string& name, const ExportRule& rule) {
  INGOT_RETURN_IF_ERROR(CheckAllowList(rule.allow));
  INGOT_RETURN_IF_ERROR(CheckInitiatorList(rule.initiators));
  INGOT_RETURN_IF_ERROR(Get(name).status());
  return ReplaceFile(Dir(name) + "/export.meta", FormatExportRule(rule));
}

Result<ExportRule> VolumeStore::GetExportRule(const std::string& name) const {
  if (!ValidVolumeName(name)) return NotFound("no volume '" + name + "'");
  auto text = ReadSmallFile(Dir(name) + "/export.meta");
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound) return NotFound("no volume '" + name + "'");
    return text.status();
  }
  return ParseExportRule(*text);
}

Result<std::unique_ptr<OsVolume>> VolumeStore::OpenVolume(const std::string& name) {
  INGOT_RETURN_IF_ERROR(Get(name).status());
  return OsVolume::Open(Dir(name));
}

}  // namespace ingot::deploy
