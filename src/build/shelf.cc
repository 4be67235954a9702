#include "build/shelf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "common/uuid.h"
#include "io/adapters.h"
#include "io/file.h"
#include "io/hash.h"
#include "store/store.h"

namespace ingot::build {

namespace {

constexpr size_t kMaxKey = 128;  // what every store driver accepts (store/remote ValidObjectKey)
constexpr size_t kUuid = 36;

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A key's last part: the name itself, or its SHA-256 prefix when the key would be too long.
std::string NamePart(const std::string& prefix, const std::string& name) {
  if (prefix.size() + name.size() <= kMaxKey) return name;
  auto d = io::HexDigestOf("sha256", std::span<const uint8_t>(
                                         reinterpret_cast<const uint8_t*>(name.data()), name.size()));
  return d.ok() ? d->substr(0, 40) : std::string();
}

}  // namespace

std::optional<std::string> Shelf::KeyOf(const std::string& rel) {
  auto parts = [&]() {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
      size_t slash = rel.find('/', start);
      out.push_back(rel.substr(start, slash == std::string::npos ? slash : slash - start));
      if (slash == std::string::npos) return out;
      start = slash + 1;
    }
  }();
  if (parts.size() == 2 && parts[0] == "recipes" && parts[1].size() == kUuid + 4 &&
      parts[1].ends_with(".tgz") && IsUuid(parts[1].substr(0, kUuid))) {
    return "ims-recipe-" + parts[1].substr(0, kUuid);
  }
  if (parts.size() == 3 && parts[0] == "jobs" && IsUuid(parts[1]) && parts[2] == "log") {
    return "ims-log-" + parts[1];
  }
  if (parts.size() == 3 && parts[0] == "artifacts" && IsUuid(parts[1]) && !parts[2].empty() &&
      parts[2][0] != '.') {
    std::string prefix = "ims-artifact-" + parts[1] + "-";
    std::string name = NamePart(prefix, parts[2]);
    if (name.empty()) return std::nullopt;
    return prefix + name;
  }
  return std::nullopt;
}

std::optional<Shelf::Owner> Shelf::OwnerOf(const std::string& key) {
  for (auto [prefix, kind] : {std::pair{"ims-recipe-", Kind::kRecipe},
                              std::pair{"ims-log-", Kind::kJob},
                              std::pair{"ims-artifact-", Kind::kImage}}) {
    std::string_view p(prefix);
    if (!key.starts_with(p) || key.size() < p.size() + kUuid) continue;
    std::string id = key.substr(p.size(), kUuid);
    if (!IsUuid(id)) return std::nullopt;
    return Owner{kind, id};
  }
  return std::nullopt;
}

Status Shelf::Publish(const std::string& rel) {
  if (store_ == nullptr) return Status::Ok();
  auto key = KeyOf(rel);
  if (!key) return InvalidArgument("the build shelf holds no file " + rel);
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(LocalPath(rel), O_RDONLY));
  INGOT_RETURN_IF_ERROR(store_->Delete(*key));  // replacing: a store never overwrites
  INGOT_ASSIGN_OR_RETURN(auto object, store_->Create(*key));
  io::FdReader reader(fd.get(), rel);
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    INGOT_ASSIGN_OR_RETURN(size_t n, reader.Read(buf));
    if (n == 0) break;
    INGOT_RETURN_IF_ERROR(object->Write(std::span<const uint8_t>(buf.data(), n)));
  }
  return object->Commit().WithContext("storing " + rel + " in store " + store_->id());
}

Result<std::string> Shelf::Fetch(const std::string& rel, bool fresh) {
  const std::string path = LocalPath(rel);
  const bool here = IsRegularFile(path);
  if (here && (!fresh || store_ == nullptr)) return path;
  auto key = KeyOf(rel);
  if (store_ == nullptr || !key) return NotFound(rel + " is not here");
  auto source = store_->Open(*key);
  if (!source.ok()) {
    if (here) return path;  // the store has none (yet): what is here is all there is
    return source.status();
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string tmp = path + ".fetch-" + NewUuid();
  Status s = [&]() -> Status {
    INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
    std::vector<uint8_t> buf(1 << 20);
    for (uint64_t offset = 0; offset < (*source)->Size();) {
      INGOT_ASSIGN_OR_RETURN(size_t n, (*source)->ReadAt(offset, buf));
      if (n == 0) return IoError("store " + store_->id() + " ended " + *key + " early");
      INGOT_RETURN_IF_ERROR(
          io::WriteAll(fd.get(), std::span<const uint8_t>(buf.data(), n), "fetching " + rel));
      offset += n;
    }
    if (fdatasync(fd.get()) != 0) return FromErrno(errno, "syncing " + tmp);
    if (rename(tmp.c_str(), path.c_str()) != 0) return FromErrno(errno, "placing " + path);
    return Status::Ok();
  }();
  if (!s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  return path;
}

Result<bool> Shelf::StillWanted(BuildRepository& records, const std::string& key) {
  auto owner = OwnerOf(key);
  if (!owner) return false;
  for (bool deleted : {false, true}) {
    auto record = records.Get(owner->kind, owner->id, deleted);
    if (record.ok()) return true;
    if (record.status().code() != Code::kNotFound) return record.status();
  }
  return false;
}

}  // namespace ingot::build
