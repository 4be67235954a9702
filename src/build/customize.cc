#include "build/customize.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <regex>
#include <vector>

#include "common/time.h"
#include "common/uuid.h"
#include "io/file.h"
#include "io/hash.h"

namespace ingot::build {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// The artifacts an IMS manifest lists, in its order, with their media types.
struct ManifestArtifact {
  const char* file;
  const char* type;
};
constexpr ManifestArtifact kManifestArtifacts[] = {
    {"rootfs", "application/vnd.cray.image.rootfs.squashfs"},
    {"kernel", "application/vnd.cray.image.kernel"},
    {"initrd", "application/vnd.cray.image.initrd"},
    {"kernel-parameters", "application/vnd.cray.image.parameters.boot"},
};

std::string Str(const json::object& o, std::string_view key, std::string fallback = "") {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return fallback;
  return std::string(it->value().as_string());
}

std::string NowIso() { return FormatIso8601(NowMicros()); }

Result<std::string> Md5Of(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(auto hasher, io::Hasher::Create("md5"));
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_RDONLY));
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    ssize_t n = read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "reading " + fs::path(path).filename().string());
    }
    if (n == 0) break;
    hasher->Update(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
  }
  return hasher->HexDigest();
}

Status WriteText(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    INGOT_RETURN_IF_ERROR(io::WriteAll(
        fd.get(),
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
        "writing " + fs::path(path).filename().string()));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) return FromErrno(errno, "rename");
  return Status::Ok();
}

// manifest.json over the IMS artifacts present in `art` (the image's artifact directory); sets the
// record's checksums and link.
Status WriteManifest(const std::string& art, json::object& image) {
  const std::string id = Str(image, "id");
  json::array artifacts;
  json::object checksums =
      image.contains("checksums") && image.at("checksums").is_object()
          ? image.at("checksums").as_object()
          : json::object();
  for (const ManifestArtifact& a : kManifestArtifacts) {
    std::string path = art + "/" + a.file;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      checksums.erase(a.file);
      continue;
    }
    INGOT_ASSIGN_OR_RETURN(std::string md5, Md5Of(path));
    checksums[a.file] = json::object{{"md5", md5}, {"size", static_cast<uint64_t>(st.st_size)}};
    artifacts.push_back(json::object{
        {"link", json::object{{"path", "/apis/ims/v3/images/" + id + "/artifacts/" + a.file},
                              {"etag", md5},
                              {"type", "ingot"}}},
        {"type", a.type},
        {"md5", md5}});
  }
  json::object manifest{{"version", "1.0"}, {"created", NowIso()}, {"artifacts", artifacts}};
  INGOT_RETURN_IF_ERROR(WriteText(art + "/manifest.json", json::serialize(manifest)));
  INGOT_ASSIGN_OR_RETURN(std::string manifest_md5, Md5Of(art + "/manifest.json"));
  image["checksums"] = checksums;
  image["link"] = json::object{{"path", "/apis/ims/v3/images/" + id + "/artifacts/manifest.json"},
                               {"etag", manifest_md5},
                               {"type", "ingot"}};
  return Status::Ok();
}

// Runs a tool in the job's sandbox (no network), its output into the job log.
Result<process::Outcome> RunTool(JobRun& run, std::vector<std::string> argv) {
  auto left = std::chrono::duration_cast<std::chrono::seconds>(run.deadline -
                                                               std::chrono::steady_clock::now());
  if (left.count() <= 0) return Timeout("the job ran past its time limit");
  process::Spec spec{.argv = std::move(argv),
                     .env = process::CleanEnv(),
                     .new_net_ns = true,
                     .limits = {.open_files = 65536, .wall = left},
                     .on_line = [&run](std::string_view l) { run.line(l); }};
  INGOT_ASSIGN_OR_RETURN(auto outcome, run.sandbox->Run(spec));
  if (outcome.timed_out) return Timeout("the job ran past its time limit");
  if (run.cancelled->load() || outcome.killed) return Cancelled("cancelled");
  return outcome;
}

// A directory of the root the jail needs: created when absent; a link or a non-directory refused
// (sshd would otherwise mount over whatever it points to).
Status EnsureRootDir(const std::string& root, const char* name, mode_t mode) {
  std::string path = root + "/" + name;
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Ok();
    return InvalidArgument(std::string("the image's /") + name +
                           " is not a directory (a link?): a jailed shell needs one");
  }
  if (mkdir(path.c_str(), mode) != 0) return FromErrno(errno, std::string("mkdir /") + name);
  chmod(path.c_str(), mode);
  return Status::Ok();
}

// Copies `root`/boot/`name` to `dest` when it is a regular file, never following a link (the root
// is the user's: a link could name any host file). False when there is no such file.
Result<bool> CopyFromBoot(const std::string& root, const std::string& name,
                          const std::string& dest) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return false;
  }
  io::UniqueFd rootfd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (rootfd.get() < 0) return false;
  io::UniqueFd boot(openat(rootfd.get(), "boot", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (boot.get() < 0) return false;
  io::UniqueFd in(openat(boot.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.get() < 0) return false;
  struct stat st;
  if (fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd out, io::OpenFile(dest, O_WRONLY | O_CREAT | O_TRUNC, 0644));
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    ssize_t n = read(in.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "reading /boot/" + name);
    }
    if (n == 0) break;
    INGOT_RETURN_IF_ERROR(io::WriteAll(
        out.get(), std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)), "copying " + name));
  }
  return true;
}

// The newest /boot/<prefix>VERSION of the root ("vmlinuz-6.1.0-9-amd64"), by version order.
std::string NewestInBoot(const std::string& root, const std::string& prefix) {
  std::string best;
  DIR* d = opendir((root + "/boot").c_str());
  if (d == nullptr) return best;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind(prefix, 0) != 0 || n.size() == prefix.size()) continue;
    if (best.empty() || strverscmp(n.c_str(), best.c_str()) > 0) best = n;
  }
  closedir(d);
  return best;
}

Status LinkOrCopy(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return IoError("cannot copy " + fs::path(from).filename().string());
  return Status::Ok();
}

// Serves the job's SSH access on `spec` until the user is done; keeps ssh_containers current.
Status ServeSsh(BuildRepository& repo, const BuilderOptions& options, JobRun& run, JailSpec spec) {
  INGOT_ASSIGN_OR_RETURN(auto job, repo.Get(Kind::kJob, run.id));
  auto key = repo.Get(Kind::kPublicKey, Str(job, "public_key_id"));
  if (!key.ok()) {
    return InvalidArgument("the job's public key " + Str(job, "public_key_id") +
                           " no longer exists: nobody could log in");
  }
  spec.public_key = Str(*key, "public_key");
  json::array containers = job.contains("ssh_containers") && job.at("ssh_containers").is_array()
                               ? job.at("ssh_containers").as_array()
                               : json::array();
  if (containers.empty()) {
    containers.push_back(json::object{{"name", "debug"}, {"jail", false}});
  }
  json::object& c = containers[0].as_object();
  spec.jail = c.contains("jail") && c.at("jail").is_bool() && c.at("jail").as_bool();
  auto set_container = [&](const char* status, json::object info, std::string fingerprint) {
    c["status"] = status;
    c["connection_info"] = std::move(info);
    if (!fingerprint.empty()) c["host_key_fingerprint"] = fingerprint;
    return run.update([&](json::object& j) { j["ssh_containers"] = containers; });
  };
  INGOT_RETURN_IF_ERROR(set_container("establishing", json::object(), ""));
  std::error_code ec;
  fs::remove_all(spec.dir, ec);
  fs::create_directories(spec.dir, ec);
  if (ec) return IoError("cannot create the job's ssh directory");
  chmod(spec.dir.c_str(), 0700);
  auto started = SshJail::Start(SshOptionsOf(options), spec, run.line);
  if (!started.ok()) {
    (void)set_container("complete", json::object(), "");
    return started.status().WithContext("starting the job's SSH server");
  }
  std::unique_ptr<SshJail> ssh = std::move(*started);
  json::object where{{"host", ssh->host()}, {"port", ssh->port()}};
  INGOT_RETURN_IF_ERROR(set_container(
      "active", json::object{{"customer_access", where}, {"cluster.local", where}},
      ssh->host_key_fingerprint()));
  INGOT_RETURN_IF_ERROR(run.set_status(kWaitingOnUser));
  run.line("ssh -p " + std::to_string(ssh->port()) + " root@" + ssh->host() + "  (host key " +
           ssh->host_key_fingerprint() + ", only the key of public-keys record " +
           Str(job, "public_key_id") + "); when done: touch " + ssh->completion_path());
  SshJail::End end = ssh->Wait(*run.cancelled, run.deadline);
  ssh->Stop();  // every session ends here
  std::string tail = ssh->last_output();
  (void)set_container("complete", json::object(), "");
  switch (end) {
    case SshJail::End::kCompleted:
      run.line("== the user is done (" + ssh->completion_path() + ")");
      return Status::Ok();
    case SshJail::End::kCancelled:
      return Cancelled("cancelled");
    case SshJail::End::kTimedOut:
      return Timeout("nobody touched " + ssh->completion_path() +
                     " before the job's time limit; the SSH server was stopped");
    case SshJail::End::kServerDied:
      return Internal("the job's SSH server ended unexpectedly: " + tail);
  }
  return Internal("unreachable");
}

}  // namespace

SshOptions SshOptionsOf(const BuilderOptions& options) {
  SshOptions o;
  o.sshd = options.sshd;
  o.listen = options.ssh_listen;
  o.advertised_host = options.ssh_host;
  return o;
}

Result<json::array> SshContainersOf(const json::object& body, const char* default_name) {
  json::array out;
  auto it = body.find("ssh_containers");
  if (it == body.end() || it->value().is_null() ||
      (it->value().is_array() && it->value().as_array().empty())) {
    out.push_back(json::object{
        {"name", default_name}, {"jail", false}, {"status", "pending"},
        {"connection_info", json::object()}});
    return out;
  }
  if (!it->value().is_array()) {
    return InvalidArgument("ssh_containers is a list of {\"name\": ..., \"jail\": true|false}");
  }
  if (it->value().as_array().size() > 1) {
    return Unsupported("a job has one ssh container");
  }
  const json::value& v = it->value().as_array()[0];
  if (!v.is_object()) {
    return InvalidArgument("ssh_containers is a list of {\"name\": ..., \"jail\": true|false}");
  }
  std::string name = Str(v.as_object(), "name");
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]{0,39}");
  if (!std::regex_match(name, kName)) {
    return InvalidArgument("an ssh container's name is 1 to 40 letters, digits, '.', '_' or '-'");
  }
  bool jail = false;
  if (const json::value* j = v.as_object().if_contains("jail")) {
    if (!j->is_bool()) return InvalidArgument("an ssh container's jail is true or false");
    jail = j->as_bool();
  }
  out.push_back(json::object{{"name", name}, {"jail", jail}, {"status", "pending"},
                             {"connection_info", json::object()}});
  return out;
}

Result<json::object> NewCustomizeJob(BuildRepository& repo, const BuilderOptions& options,
                                     const json::object& body, const std::string& id) {
  std::string image_id = Str(body, "artifact_id");
  auto image = repo.Get(Kind::kImage, image_id);
  if (image_id.empty() || !image.ok()) {
    return InvalidArgument("artifact_id must name an existing image for a customize job");
  }
  struct stat st;
  if (stat((options.dir + "/artifacts/" + image_id + "/rootfs").c_str(), &st) != 0 ||
      !S_ISREG(st.st_mode)) {
    return InvalidArgument("the image " + image_id +
                           " has no rootfs artifact to customize: upload one first (PUT "
                           "/apis/ims/v3/images/" + image_id + "/artifacts/rootfs)");
  }
  std::string key_id = Str(body, "public_key_id");
  if (key_id.empty() || !repo.Get(Kind::kPublicKey, key_id).ok()) {
    return InvalidArgument("a customize job needs public_key_id naming an existing public key: "
                           "it is the only key its SSH server accepts");
  }
  INGOT_ASSIGN_OR_RETURN(json::array containers, SshContainersOf(body, "customize"));
  return json::object{
      {"id", id},
      {"created", NowIso()},
      {"job_type", "customize"},
      {"artifact_id", image_id},
      {"public_key_id", key_id},
      {"image_root_archive_name", Str(body, "image_root_archive_name", Str(*image, "name"))},
      {"kernel_file_name", Str(body, "kernel_file_name", "vmlinuz")},
      {"initrd_file_name", Str(body, "initrd_file_name", "initrd")},
      {"kernel_parameters_file_name",
       Str(body, "kernel_parameters_file_name", "kernel-parameters")},
      {"status", kCreating},
      {"enable_debug", false},
      {"build_env_size", body.contains("build_env_size") ? body.at("build_env_size")
                                                          : json::value(15)},
      {"resultant_image_id", nullptr},
      {"ssh_containers", containers},
      {"kubernetes_job", nullptr},
      {"kubernetes_service", nullptr},
      {"kubernetes_configmap", nullptr},
      {"kubernetes_namespace", nullptr},
      {"arch", Str(*image, "arch", "x86_64")},
      {"require_dkms", false},
      {"owner", Str(body, "owner")},
      {"log", "/apis/ims/v3/jobs/" + id + "/log"},
      {"error", nullptr},
  };
}

Status RunCustomize(BuildRepository& repo, const BuilderOptions& options, JobRun& run) {
  const std::string work = options.dir + "/jobs/" + run.id + "/work";
  const std::string root = work + "/root";
  std::error_code ec;
  fs::remove_all(work, ec);
  fs::create_directories(work, ec);
  if (ec) return IoError("cannot create the job's work directory");
  INGOT_ASSIGN_OR_RETURN(auto job, repo.Get(Kind::kJob, run.id));

  // ---- fetching_image
  INGOT_RETURN_IF_ERROR(run.set_status(kFetchingImage));
  const std::string image_id = Str(job, "artifact_id");
  auto original = repo.Get(Kind::kImage, image_id);
  if (!original.ok()) return NotFound("the image " + image_id + " was deleted");
  const std::string src_art = options.dir + "/artifacts/" + image_id;
  INGOT_ASSIGN_OR_RETURN(std::string src_md5, Md5Of(src_art + "/rootfs"));
  run.line("image " + Str(*original, "name") + " (" + image_id + "), rootfs md5 " + src_md5);
  INGOT_ASSIGN_OR_RETURN(auto unpacked,
                         RunTool(run, {"unsquashfs", "-no-progress", "-d", root,
                                       src_art + "/rootfs"}));
  if (!unpacked.ok()) {
    return InvalidArgument("the image's rootfs could not be unpacked (unsquashfs: " +
                           unpacked.Describe() + "); see the job log");
  }
  // sshd chroots only into a root-owned directory nobody else may write.
  struct stat rst;
  if (stat(root.c_str(), &rst) != 0 || chown(root.c_str(), 0, 0) != 0 ||
      chmod(root.c_str(), (rst.st_mode & 07777) & ~mode_t{022}) != 0) {
    return FromErrno(errno, "preparing the image root");
  }
  INGOT_ASSIGN_OR_RETURN(auto fresh, repo.Get(Kind::kJob, run.id));
  const json::value* containers = fresh.if_contains("ssh_containers");
  bool jail = containers && containers->is_array() && !containers->as_array().empty() &&
              containers->as_array()[0].is_object() &&
              containers->as_array()[0].as_object().contains("jail") &&
              containers->as_array()[0].as_object().at("jail").is_bool() &&
              containers->as_array()[0].as_object().at("jail").as_bool();
  if (jail) {
    INGOT_RETURN_IF_ERROR(EnsureRootDir(root, "tmp", 01777));
    INGOT_RETURN_IF_ERROR(EnsureRootDir(root, "proc", 0555));
    INGOT_RETURN_IF_ERROR(EnsureRootDir(root, "dev", 0755));
  }

  // ---- waiting_on_user
  INGOT_RETURN_IF_ERROR(ServeSsh(repo, options, run, JailSpec{.dir = work + "/ssh", .root = root}));
  if (run.cancelled->load()) return Cancelled("cancelled");

  // ---- packaging_artifacts
  INGOT_RETURN_IF_ERROR(run.set_status(kPackagingArtifacts));
  const std::string out = work + "/out";
  fs::create_directories(out, ec);
  INGOT_ASSIGN_OR_RETURN(auto squashed,
                         RunTool(run, {"mksquashfs", root, out + "/rootfs", "-noappend",
                                       "-no-progress", "-comp", "zstd",
                                       "-Xcompression-level", "3"}));  // as builder.cc
  if (!squashed.ok()) {
    return Internal("packaging the root failed (mksquashfs: " + squashed.Describe() +
                    "); see the job log");
  }
  // Kernel and initrd: the job's names in /boot, else the newest versioned ones there, else the
  // original image's (a root without a kernel, booted with the one it came with).
  std::string kname = Str(job, "kernel_file_name", "vmlinuz");
  std::string iname = Str(job, "initrd_file_name", "initrd");
  INGOT_ASSIGN_OR_RETURN(bool kernel, CopyFromBoot(root, kname, out + "/kernel"));
  std::string kver;
  if (!kernel) {
    std::string newest = NewestInBoot(root, "vmlinuz-");
    if (!newest.empty()) {
      INGOT_ASSIGN_OR_RETURN(kernel, CopyFromBoot(root, newest, out + "/kernel"));
      if (kernel) kver = newest.substr(strlen("vmlinuz-"));
    }
  }
  INGOT_ASSIGN_OR_RETURN(bool initrd, CopyFromBoot(root, iname, out + "/initrd"));
  if (!initrd && !kver.empty()) {
    INGOT_ASSIGN_OR_RETURN(initrd, CopyFromBoot(root, "initrd.img-" + kver, out + "/initrd"));
  }
  for (auto [have, name] : {std::pair{kernel, "kernel"}, std::pair{initrd, "initrd"},
                            std::pair{false, "kernel-parameters"}}) {
    if (have) {
      run.line(std::string("== ") + name + " from the customized root's /boot");
      continue;
    }
    std::string from = src_art + "/" + name;
    if (fs::exists(from)) {
      INGOT_RETURN_IF_ERROR(LinkOrCopy(from, out + "/" + name));
      run.line(std::string("== ") + name + " kept from the original image");
    }
  }

  // The new image record.
  const std::string new_id = NewUuid();
  const std::string art = options.dir + "/artifacts/" + new_id;
  fs::rename(out, art, ec);
  if (ec) return IoError("cannot keep the customized image's artifacts");
  json::object image{
      {"id", new_id},
      {"created", NowIso()},
      {"name", Str(job, "image_root_archive_name", Str(*original, "name"))},
      {"link", nullptr},
      {"arch", Str(*original, "arch", "x86_64")},
      {"metadata", json::object()},
      {"provenance", json::object{{"job_id", run.id},
                                  {"customized_from", image_id},
                                  {"source_rootfs_md5", src_md5},
                                  {"build_log", "/apis/ims/v3/images/" + new_id +
                                                    "/artifacts/build.log"}}},
  };
  INGOT_RETURN_IF_ERROR(WriteManifest(art, image));
  fs::copy_file(options.dir + "/jobs/" + run.id + "/log", art + "/build.log",
                fs::copy_options::overwrite_existing, ec);
  INGOT_RETURN_IF_ERROR(repo.Put(Kind::kImage, new_id, image));
  run.line("image " + new_id);
  return run.update([&](json::object& j) { j["resultant_image_id"] = new_id; });
}

Status RunDebugShell(BuildRepository& repo, const BuilderOptions& options, JailSpec root,
                     JobRun& run) {
  run.line("== enable_debug: the failed build's root stays open over SSH");
  root.dir = options.dir + "/jobs/" + run.id + "/work/ssh";
  return ServeSsh(repo, options, run, std::move(root));
}

Result<json::object> PutImageArtifact(BuildRepository& repo, const BuilderOptions& options,
                                      const std::string& image_id, const std::string& name,
                                      io::Reader& body) {
  INGOT_ASSIGN_OR_RETURN(auto image, repo.Get(Kind::kImage, image_id));
  bool known = false;
  for (const ManifestArtifact& a : kManifestArtifacts) known = known || name == a.file;
  if (!known) {
    return InvalidArgument("an image's uploadable artifacts are rootfs, kernel, initrd and "
                           "kernel-parameters");
  }
  if (image.contains("provenance")) {
    return Conflict("the image " + image_id +
                    " was made by a job: its artifacts are its provenance and cannot be replaced");
  }
  const std::string art = options.dir + "/artifacts/" + image_id;
  INGOT_RETURN_IF_ERROR(io::MakeDirs(art));
  const std::string tmp = art + "/." + name + ".upload-" + NewUuid();
  const uint64_t cap = name == "kernel-parameters" ? 65536 : (256ull << 30);
  Status written = [&]() -> Status {
    INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
    std::vector<uint8_t> buf(1 << 20);
    uint64_t total = 0;
    std::string head;
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(size_t n, body.Read(buf));
      if (n == 0) break;
      if (head.size() < 4) head.append(reinterpret_cast<const char*>(buf.data()),
                                       std::min<size_t>(n, 4 - head.size()));
      total += n;
      if (total > cap) return TooLarge(name + " is larger than " + std::to_string(cap) + " bytes");
      INGOT_RETURN_IF_ERROR(io::WriteAll(fd.get(), std::span<const uint8_t>(buf.data(), n),
                                         "writing the artifact"));
    }
    if (total == 0) return InvalidArgument("the " + name + " artifact is empty");
    // A rootfs is what customize jobs unpack: a SquashFS ("hsqs", little-endian superblock).
    if (name == "rootfs" && head != "hsqs") {
      return InvalidArgument("a rootfs artifact must be a SquashFS image (made by mksquashfs)");
    }
    if (fsync(fd.get()) != 0) return FromErrno(errno, "fsync");
    return Status::Ok();
  }();
  if (!written.ok()) {
    unlink(tmp.c_str());
    return written;
  }
  if (rename(tmp.c_str(), (art + "/" + name).c_str()) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    return FromErrno(e, "storing the artifact");
  }
  INGOT_RETURN_IF_ERROR(WriteManifest(art, image));
  INGOT_RETURN_IF_ERROR(repo.Put(Kind::kImage, image_id, image));
  return image;
}

}  // namespace ingot::build
