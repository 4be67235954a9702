#include "build/builder.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "build/disk.h"
#include "build/kiwi.h"
#include "build/customize.h"
#include "build/recipe.h"
#include "catalog/job_leases.h"
#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"
#include "io/adapters.h"
#include "io/file.h"
#include "io/hash.h"
#include "service/image_service.h"

namespace ingot::build {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::string LeaseName(const std::string& job_id) { return "build-job:" + job_id; }

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Bumped whenever a stage's script changes what it produces: old cache entries stop matching.
constexpr const char* kStageVersion = "ingot-build-2";
constexpr const char* kPackageVersion = "ingot-package-4";  // the same, for packaging

std::string Sha256(std::string_view text) {
  auto d = io::HexDigestOf(
      "sha256", std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  return d.ok() ? *d : std::string();
}

Result<std::string> FileDigest(const std::string& path, std::string_view algo) {
  INGOT_ASSIGN_OR_RETURN(auto hasher, io::Hasher::Create(algo));
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

Status WriteFile(const std::string& path, std::string_view text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.good()) return IoError("cannot write " + fs::path(path).filename().string());
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) return FromErrno(errno, "rename");
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(fs::path(path).filename().string() + " not found");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string NowIso() { return FormatIso8601(NowMicros()); }

std::string Str(const json::object& o, std::string_view key, std::string fallback = "") {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return fallback;
  return std::string(it->value().as_string());
}

// A UUID-shaped value derived from `seed`: the disk's GUIDs and file system UUID must not change
// between two builds of the same inputs, or the disks would differ.
std::string DerivedUuid(const std::string& seed) {
  std::string h = Sha256(seed);
  h[12] = '4';
  h[16] = "89ab"[h[16] % 4];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

// "Date: Sat, 10 May 2025 09:08:03 UTC" of a Release file: the build's SOURCE_DATE_EPOCH, so the
// same archive state always gives the same timestamps.
std::optional<int64_t> ReleaseDate(const std::string& release) {
  std::smatch m;
  static const std::regex kDate("\nDate: *([^\n]+)\n");
  if (!std::regex_search(release, m, kDate)) return std::nullopt;
  std::tm tm{};
  const char* end = strptime(m[1].str().c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

std::string OsVersionOf(const std::string& suite) {
  static const std::map<std::string, std::string> kVersions = {
      {"buster", "10"},    {"bullseye", "11"}, {"bookworm", "12"}, {"trixie", "13"},
      {"focal", "20.04"},  {"jammy", "22.04"}, {"noble", "24.04"}};
  auto it = kVersions.find(suite);
  return it == kVersions.end() ? suite : it->second;
}

std::string Sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '-';
  return out.empty() ? "image" : out.substr(0, 64);
}

// Moves every file of `from` into `to` with rename(2) (atomic: a concurrent build's sync-in never
// reads half a .deb), keeping what is already there.
void MergeInto(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  for (const auto& e : fs::directory_iterator(from, ec)) {
    if (!e.is_regular_file()) continue;
    fs::path dest = fs::path(to) / e.path().filename();
    if (!fs::exists(dest)) fs::rename(e.path(), dest, ec);
  }
}

// mmdebstrap's hooks that run dpkg under eatmydata (Debian's mmdebstrap package ships them).
constexpr const char* kEatmydataHooks = "/usr/share/mmdebstrap/hooks/eatmydata";

// Stage scripts. Each runs as `sh -c SCRIPT sh ARGS...` in its own mount and PID namespaces, so
// the mounts it makes vanish with it whatever happens; it also unmounts them itself on the normal
// path. Untrusted values only ever arrive as positional parameters, never spliced into the text.

// The bootstrap: mmdebstrap into $1, then every file's time clamped to SOURCE_DATE_EPOCH.
constexpr const char* kBootstrapScript = R"sh(set -eu
target=$1; shift
mmdebstrap "$@"
find "$target" -xdev -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
)sh";

// A layer: the root so far (lowerdir) under a fresh upper dir; a step chrooted with /proc, /sys and
// /dev bound (its script on stdin), or the recipe's files written through a chroot (so a symlink in
// the image can never point a write at the host).
constexpr const char* kLayerScript = R"sh(set -eu
lower=$1 upper=$2 work=$3 m=$4 mode=$5; shift 5
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$m"
rc=0
if [ "$mode" = step ]; then
  mount --bind /dev "$m/dev"
  mount -t proc proc "$m/proc"
  mount -t sysfs sysfs "$m/sys"
  chroot "$m" /bin/sh -s -- "$@" || rc=$?
  umount "$m/sys" "$m/proc" "$m/dev"
else
  while [ $# -ge 3 ]; do
    chroot "$m" /bin/sh -c 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"' sh "$2" "$3" < "$1" || rc=$?
    shift 3
  done
fi
if [ $rc -eq 0 ]; then
  find "$m" -xdev -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
fi
umount "$m"
exit $rc
)sh";

// Packaging: the merged root read-only, then every output into $3.
constexpr const char* kPackageScript = R"sh(set -eu
lower=$1 m=$2 out=$3 outputs=$4 efi=$5 disk_uuid=$6 esp_uuid=$7 root_uuid=$8 fs_uuid=$9
shift 9
cmdline=$1 title=$2
case "$lower" in
  *:*) mount -t overlay overlay -o "ro,lowerdir=$lower" "$m" ;;
  *) mount --bind "$lower" "$m"; mount -o remount,bind,ro "$m" ;;
esac
echo "== package list"
dpkg-query --admindir="$m/var/lib/dpkg" -W -f='${Package}\t${Version}\t${Architecture}\n' | LC_ALL=C sort > "$out/packages.tsv"
kver=$(ls "$m/boot" 2>/dev/null | sed -n 's/^vmlinuz-//p' | sort -V | tail -n 1)
if [ -n "$kver" ]; then
  echo "== kernel $kver"
  cp -p "$m/boot/vmlinuz-$kver" "$out/kernel"
  if [ -f "$m/boot/initrd.img-$kver" ]; then cp -p "$m/boot/initrd.img-$kver" "$out/initrd"; fi
fi
printf '%s\n' "$cmdline" > "$out/kernel-parameters"
echo "== squashfs"
# SOURCE_DATE_EPOCH (in the environment) sets the creation time and every file's time. zstd at its
# own default level 3: mksquashfs's default (15) took 36 s on a 668 MiB root here against 3.3 s,
# for an image 11% smaller; the build is what an operator waits for.
mksquashfs "$m" "$out/rootfs" -noappend -no-progress -comp zstd -Xcompression-level 3
case " $outputs " in *" drp "*)
  echo "== rootfs tarballs"
  tar --sort=name --numeric-owner --xattrs --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime \
      --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$m" -cf "$out/rootfs.tar" .
  gzip -n -c "$out/rootfs.tar" > "$out/rootfs.tgz"
  zstd -q -T0 "$out/rootfs.tar" -o "$out/rootfs.tar.zst"
  rm -f "$out/rootfs.tar"
esac
)sh";

// The packaging script with the bootable disk's file systems (disk.h), made while the root is mounted.
std::string PackageScript() {
  return std::string(kPackageScript) + "case \" $outputs \" in *\" disk \"*)" +
         kDiskFilesystemsScript + "esac\numount \"$m\"\n";
}

// The artifacts a job can produce and their IMS media types (manifest.json lists the IMS ones).
struct ArtifactKind {
  const char* file;
  const char* type;
  bool in_manifest;
};
constexpr ArtifactKind kArtifacts[] = {
    {"rootfs", "application/vnd.cray.image.rootfs.squashfs", true},
    {"kernel", "application/vnd.cray.image.kernel", true},
    {"initrd", "application/vnd.cray.image.initrd", true},
    {"kernel-parameters", "application/vnd.cray.image.parameters.boot", true},
    {"packages.tsv", "text/tab-separated-values", false},
    {"sbom.spdx.json", "application/spdx+json", false},
    {"rootfs.tgz", "application/gzip", false},
    {"rootfs.tar.zst", "application/zstd", false},
    {"disk.raw", "application/octet-stream", false},
    {"disk.qcow2", "application/x-qemu-disk", false},
};

// The SPDX 2.3 document of the root's packages (from packages.tsv, sorted): deterministic, so it
// is as reproducible as the root it describes.
std::string SpdxOf(const std::string& name, const std::string& key, int64_t epoch,
                   const std::string& tsv, const std::string& distro) {
  json::array packages;
  std::istringstream lines(tsv);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string pkg, version, arch;
    std::getline(f, pkg, '\t');
    std::getline(f, version, '\t');
    std::getline(f, arch, '\t');
    if (pkg.empty()) continue;
    json::object p;
    p["name"] = pkg;
    p["SPDXID"] = "SPDXRef-Package-" + std::to_string(++n);
    p["versionInfo"] = version;
    p["downloadLocation"] = "NOASSERTION";
    p["filesAnalyzed"] = false;
    p["externalRefs"] = json::array{json::object{
        {"referenceCategory", "PACKAGE-MANAGER"},
        {"referenceType", "purl"},
        {"referenceLocator", "pkg:deb/" + distro + "/" + pkg + "@" + version + "?arch=" + arch}}};
    packages.push_back(std::move(p));
  }
  json::object doc;
  doc["spdxVersion"] = "SPDX-2.3";
  doc["dataLicense"] = "CC0-1.0";
  doc["SPDXID"] = "SPDXRef-DOCUMENT";
  doc["name"] = name;
  doc["documentNamespace"] = "https://ingot.invalid/spdx/" + key;
  doc["creationInfo"] = json::object{{"created", FormatIso8601(epoch * 1000000)},
                                     {"creators", json::array{"Tool: ingot-build"}}};
  doc["packages"] = std::move(packages);
  return json::serialize(doc);
}

}  // namespace

// A job being run: its sandbox (one per job, reused by every stage, so a Kill() sticks), log.
struct BuildService::Running {
  process::Sandbox sandbox;
  std::atomic<bool> cancelled{false};
  // The job is no longer this node's to finish (its lease was taken over, or it was cancelled or
  // deleted through another node): the run ends without writing the record.
  std::atomic<bool> lost{false};
  // ... and it was lost to another node's takeover: that node's log is the job's from now on.
  std::atomic<bool> taken_over{false};
  std::mutex log_mu;
  FILE* log = nullptr;
  std::string status;
  // enable_debug: the failed build's root kept for the SSH access (root or overlay), and the
  // directory to remove afterwards.
  JailSpec debug_root;
  std::string debug_dir;

  void Line(std::string_view text) {
    std::lock_guard<std::mutex> lock(log_mu);
    if (log == nullptr) return;
    fwrite(text.data(), 1, text.size(), log);
    fputc('\n', log);
    fflush(log);
  }
};

BuildService::BuildService(BuildRepository& repo, BuilderOptions options,
                           service::ImageService* images)
    : repo_(repo),
      options_(std::move(options)),
      images_(images),
      shelf_(options_.dir, options_.shelf_store) {}

BuildService::~BuildService() { Stop(); }

void BuildService::Stop() {
  std::map<std::string, std::shared_ptr<Running>> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    running = running_;
  }
  for (auto& [id, run] : running) {
    run->cancelled = true;
    run->sandbox.Kill();
  }
  // Job threads are detached; each removes itself from running_ as its very last use of this
  // object, so an empty map means none will touch it again.
  std::unique_lock<std::mutex> lock(mu_);
  slot_cv_.notify_all();
  slot_cv_.wait(lock, [&] { return running_.empty(); });
  lock.unlock();
  if (keeper_.joinable()) keeper_.join();
}

int64_t BuildService::LeaseEnd(int64_t now) const {
  return now + std::chrono::microseconds(options_.job_lease).count();
}

void BuildService::StartKeeper() {
  if (options_.leases == nullptr || keeper_.joinable()) return;
  keeper_ = std::thread([this] { KeeperLoop(); });
}

void BuildService::KeeperLoop() {
  const auto tick = std::max<std::chrono::milliseconds>(std::chrono::seconds(1),
                                                        options_.job_lease / 3);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    KeepRunningJobs();
    TakeOverOrphans();
    lock.lock();
    slot_cv_.wait_for(lock, tick, [&] { return stopping_; });
  }
}

void BuildService::KeepRunningJobs() {
  std::map<std::string, std::shared_ptr<Running>> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running = running_;
  }
  auto lose = [&](const std::string& id, Running& run, const std::string& why) {
    if (run.lost.exchange(true)) return;
    run.Line("== stopped here: " + why);
    log::Warn("build.job_lost", {{"job", id}, {"node", options_.node}, {"why", why}});
    run.cancelled = true;
    run.sandbox.Kill();
  };
  for (auto& [id, run] : running) {
    Status renewed = options_.leases->RenewJobLease(
        LeaseName(id), options_.node,
        LeaseEnd(NowMicros()));
    if (renewed.code() == Code::kConflict) {
      run->taken_over = true;
      lose(id, *run, "another node took the job over (this node's lease ran out)");
      continue;
    }
    if (!renewed.ok()) {
      log::Warn("build.lease_renew_failed", {{"job", id}, {"error", renewed.ToString()}});
    }
    auto job = repo_.Get(Kind::kJob, id);
    if (job.status().code() == Code::kNotFound) {
      lose(id, *run, "the job was deleted through another node");
    } else if (job.ok() && IsFinished(Str(*job, "status"))) {
      lose(id, *run, "the job was ended through another node (" + Str(*job, "status") + ")");
    }
  }
  slot_cv_.notify_all();
}

void BuildService::TakeOverOrphans() {
  auto jobs = repo_.List(Kind::kJob);
  if (!jobs.ok()) {
    log::Warn("build.keeper_list_failed", {{"error", jobs.status().ToString()}});
    return;
  }
  for (auto& job : *jobs) {
    const std::string id = Str(job, "id");
    if (IsFinished(Str(job, "status")) || JobRunning(id)) continue;
    const int64_t now = NowMicros();
    std::string previous = "(a node that handed it over)";
    if (auto lease = options_.leases->GetJobLease(LeaseName(id)); lease.ok()) {
      if (lease->holder && lease->until >= now) continue;  // its node is alive
      if (lease->holder) previous = *lease->holder;
    } else if (lease.status().code() != Code::kNotFound) {
      continue;
    }
    auto taken = options_.leases->AcquireJobLease(
        LeaseName(id), options_.node, now,
        LeaseEnd(now), INT64_MAX);
    if (!taken.ok() || taken->holder != options_.node) continue;
    // Read again under the lease: it may have ended or been deleted since the list.
    auto fresh = repo_.Get(Kind::kJob, id);
    if (!fresh.ok() || IsFinished(Str(*fresh, "status"))) {
      (void)options_.leases->ReleaseJobLease(LeaseName(id), options_.node, now, "");
      continue;
    }
    const int attempt = fresh->contains("attempt") && fresh->at("attempt").is_int64()
                            ? static_cast<int>(fresh->at("attempt").as_int64())
                            : 1;
    const std::string status = Str(*fresh, "status");
    std::string why;
    if (Str(*fresh, "job_type") == "customize") {
      why = "interrupted: its node (" + previous + ") stopped while the job was " + status +
            "; a customize session cannot move to another node";
    } else if (attempt >= kMaxAttempts) {
      why = "interrupted: its node (" + previous + ") stopped while the job was " + status +
            "; it was built " + std::to_string(attempt) + " times, the limit";
    }
    log::Warn("build.job_taken_over", {{"job", id},
                                       {"from", previous},
                                       {"node", options_.node},
                                       {"attempt", attempt + 1},
                                       {"gives_up", why.empty() ? "false" : "true"}});
    std::error_code ec;
    fs::create_directories(options_.dir + "/jobs/" + id, ec);
    std::ofstream(JobLogPath(id), std::ios::app)
        << "== taken over by node " << options_.node << ": node " << previous
        << " stopped renewing the job's lease while it was " << status << "\n";
    if (!why.empty()) {
      Status s = EndJob(id, why);
      if (!s.ok()) log::Warn("build.job_end_failed", {{"job", id}, {"error", s.ToString()}});
      (void)options_.leases->ReleaseJobLease(LeaseName(id), options_.node, NowMicros(), "");
      continue;
    }
    json::object again = std::move(*fresh);
    again["status"] = kCreating;
    again["attempt"] = attempt + 1;
    again["error"] = nullptr;
    if (auto started = StartJob(std::move(again), /*leased=*/true); !started.ok()) {
      log::Warn("build.takeover_failed", {{"job", id}, {"error", started.status().ToString()}});
      (void)options_.leases->ReleaseJobLease(LeaseName(id), options_.node, NowMicros(), "");
    }
  }
}

void BuildService::WarnUnshared(const std::string& job, const Status& published) {
  if (!published.ok()) {
    log::Warn("build.publish_failed", {{"job", job}, {"error", published.ToString()}});
  }
}

// Ends a job no node runs: error with `reason`, in the record and its log.
Status BuildService::EndJob(const std::string& id, const std::string& reason) {
  INGOT_RETURN_IF_ERROR(SetJob(id, [&](json::object& j) {
    j["status"] = kError;
    j["error"] = reason;
    j["finished"] = NowIso();
  }));
  std::error_code ec;
  fs::create_directories(options_.dir + "/jobs/" + id, ec);
  std::ofstream(JobLogPath(id), std::ios::app) << "== error: " << reason << "\n";
  return shelf_.Publish("jobs/" + id + "/log");
}

Result<int> BuildService::Recover() {
  for (const char* sub : {"recipes", "jobs", "artifacts", "cache/steps", "cache/outputs",
                          "cache/debs"}) {
    INGOT_RETURN_IF_ERROR(io::MakeDirs(options_.dir + "/" + sub));
  }
  // Overlay options are comma- and colon-separated: a data directory holding either cannot work.
  if (options_.dir.find_first_of(",:") != std::string::npos) {
    return InvalidArgument("the build directory must not contain ',' or ':'");
  }
  int interrupted = 0;
  INGOT_ASSIGN_OR_RETURN(auto jobs, repo_.List(Kind::kJob));
  for (auto& job : jobs) {
    std::string status = Str(job, "status");
    if (IsFinished(status) || options_.leases != nullptr) continue;  // several nodes: the keeper's
    INGOT_RETURN_IF_ERROR(EndJob(Str(job, "id"),
                                 "interrupted: ingotd stopped while the job was " + status +
                                     "; its processes and mounts ended with it"));
    ++interrupted;
  }
  // Work directories and half-written cache entries of interrupted jobs. Their mounts were in
  // namespaces that died with their processes, so plain removal is safe (remove_all never crosses
  // into a mount: there are none left).
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.dir + "/jobs", ec)) {
    fs::remove_all(e.path() / "work", ec);
  }
  for (const char* sub : {"cache/steps", "cache/outputs"}) {
    for (const auto& e : fs::directory_iterator(options_.dir + "/" + sub, ec)) {
      if (e.path().filename().string().find(".tmp-") != std::string::npos) {
        fs::remove_all(e.path(), ec);
      }
    }
  }
  return interrupted;
}

// ---------------------------------------------------------------------------------------------
// Recipes

namespace {

Status CheckRecipeFields(const json::object& r) {
  static const std::set<std::string> kTypes = {"kiwi-ng", "mmdebstrap"};
  static const std::set<std::string> kArch = {"x86_64", "aarch64"};
  std::string type = Str(r, "recipe_type");
  if (kTypes.count(type) == 0) {
    return InvalidArgument("recipe_type must be 'kiwi-ng' or 'mmdebstrap'");
  }
  if (Str(r, "name").empty()) return InvalidArgument("a recipe needs a name");
  if (Str(r, "linux_distribution").empty()) {
    return InvalidArgument("a recipe needs a linux_distribution (e.g. debian, ubuntu, sles15)");
  }
  if (kArch.count(Str(r, "arch", "x86_64")) == 0) {
    return InvalidArgument("arch must be 'x86_64' or 'aarch64'");
  }
  if (auto it = r.find("require_dkms"); it != r.end() && !it->value().is_bool()) {
    return InvalidArgument("require_dkms must be true or false");
  }
  if (auto it = r.find("template_dictionary"); it != r.end()) {
    if (!it->value().is_array()) {
      return InvalidArgument("template_dictionary must be a list of {key, value}");
    }
    for (const auto& e : it->value().as_array()) {
      if (!e.is_object() || Str(e.as_object(), "key").empty() ||
          !e.as_object().contains("value") || !e.as_object().at("value").is_string()) {
        return InvalidArgument("each template_dictionary entry is {\"key\": ..., \"value\": ...}");
      }
    }
  }
  return Status::Ok();
}

std::map<std::string, std::string> DictionaryOf(const json::object& recipe) {
  std::map<std::string, std::string> d;
  if (auto it = recipe.find("template_dictionary"); it != recipe.end() && it->value().is_array()) {
    for (const auto& e : it->value().as_array()) {
      d[Str(e.as_object(), "key")] = Str(e.as_object(), "value");
    }
  }
  return d;
}

}  // namespace

Result<json::object> BuildService::CreateRecipe(const json::object& body) {
  json::object r;
  for (const char* k : {"name", "recipe_type", "linux_distribution", "arch", "require_dkms",
                        "template_dictionary", "link"}) {
    if (auto it = body.find(k); it != body.end()) r[k] = it->value();
  }
  for (const auto& [k, v] : body) {
    if (!r.contains(k)) return InvalidArgument("unknown recipe field '" + std::string(k) + "'");
  }
  if (!r.contains("arch")) r["arch"] = "x86_64";
  if (!r.contains("require_dkms")) r["require_dkms"] = false;
  if (!r.contains("template_dictionary")) r["template_dictionary"] = json::array();
  if (!r.contains("link")) r["link"] = nullptr;
  INGOT_RETURN_IF_ERROR(CheckRecipeFields(r));
  r["id"] = NewUuid();
  r["created"] = NowIso();
  INGOT_RETURN_IF_ERROR(repo_.Put(Kind::kRecipe, Str(r, "id"), r));
  return r;
}

Result<json::object> BuildService::PatchRecipe(const std::string& id, const json::object& body) {
  INGOT_ASSIGN_OR_RETURN(auto r, repo_.Get(Kind::kRecipe, id));
  for (const auto& [k, v] : body) {
    if (k != "link" && k != "arch" && k != "require_dkms" && k != "template_dictionary") {
      return InvalidArgument("'" + std::string(k) + "' cannot be changed");
    }
    r[k] = v;
  }
  INGOT_RETURN_IF_ERROR(CheckRecipeFields(r));
  INGOT_RETURN_IF_ERROR(repo_.Put(Kind::kRecipe, id, r));
  return r;
}

Result<std::string> BuildService::RecipeArchivePath(const std::string& id) {
  if (!IsUuid(id)) return NotFound("no recipe archive " + id);
  return shelf_.Fetch("recipes/" + id + ".tgz");
}

namespace {

// Extracts a recipe archive into `dir` with GNU tar: never as the archive's owners, never outside
// `dir` (tar refuses '..' members and strips leading '/'); links are refused afterwards.
Status ExtractArchive(const std::string& archive, const std::string& dir,
                      std::function<void(std::string_view)> on_line) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  process::Sandbox sandbox;
  process::Spec spec{.argv = {"tar", "-xzf", archive, "-C", dir, "--no-same-owner",
                              "--no-same-permissions", "--no-overwrite-dir"},
                     .env = process::CleanEnv(),
                     .new_net_ns = true,
                     .limits = {.file_size = 1ull << 30, .wall = std::chrono::seconds(120)}};
  std::string output;
  spec.on_line = [&](std::string_view l) {
    if (output.size() < 2000) output.append(l).append("\n");
    if (on_line) on_line(l);
  };
  INGOT_ASSIGN_OR_RETURN(auto outcome, sandbox.Run(spec));
  if (!outcome.ok()) {
    return InvalidArgument("the recipe archive is not a readable tgz: " + output);
  }
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    if (it->is_symlink()) {
      return InvalidArgument(fs::relative(it->path(), dir).string() +
                             ": links are not allowed in a recipe archive");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<json::object> BuildService::PutRecipeArchive(const std::string& id, io::Reader& body) {
  INGOT_ASSIGN_OR_RETURN(auto r, repo_.Get(Kind::kRecipe, id));
  if (!IsUuid(id)) return NotFound("recipe " + id + " not found");
  const std::string rel = "recipes/" + id + ".tgz";
  const std::string path = shelf_.LocalPath(rel);
  std::string tmp = path + ".upload-" + NewUuid();
  INGOT_ASSIGN_OR_RETURN(auto hasher, io::Hasher::Create("md5"));
  {
    INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    std::vector<uint8_t> buf(1 << 16);
    uint64_t total = 0;
    for (;;) {
      auto n = body.Read(buf);
      if (!n.ok()) {
        unlink(tmp.c_str());
        return n.status();
      }
      if (*n == 0) break;
      total += *n;
      if (total > options_.max_recipe_archive) {
        unlink(tmp.c_str());
        return TooLarge("a recipe archive is at most " +
                        std::to_string(options_.max_recipe_archive >> 20) + " MiB");
      }
      std::span<const uint8_t> chunk(buf.data(), *n);
      hasher->Update(chunk);
      if (Status s = io::WriteAll(fd.get(), chunk, "writing the recipe archive"); !s.ok()) {
        unlink(tmp.c_str());
        return s;
      }
    }
    fsync(fd.get());
  }
  // Checked before it is accepted: a recipe that cannot build is refused here, with its file and
  // line, not found out by a job.
  std::string dir = tmp + ".d";
  Status checked = ExtractArchive(tmp, dir, nullptr);
  if (checked.ok()) {
    if (Str(r, "recipe_type") == "mmdebstrap") {
      checked = LoadMmdebstrapRecipe(dir, DictionaryOf(r)).status();
    } else {
      checked = LoadKiwiRecipe(dir, DictionaryOf(r)).status();
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!checked.ok()) {
    unlink(tmp.c_str());
    return checked;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) return FromErrno(errno, "storing the recipe");
  INGOT_RETURN_IF_ERROR(shelf_.Publish(rel));
  r["link"] = json::object{{"path", "/apis/ims/v3/recipes/" + id + "/archive"},
                           {"etag", hasher->HexDigest()},
                           {"type", "ingot"}};
  INGOT_RETURN_IF_ERROR(repo_.Put(Kind::kRecipe, id, r));
  return r;
}

// ---------------------------------------------------------------------------------------------
// Public keys and images

Result<json::object> BuildService::CreatePublicKey(const json::object& body) {
  std::string name = Str(body, "name");
  std::string key = Str(body, "public_key");
  if (name.empty()) return InvalidArgument("a public key needs a name");
  static const std::regex kKey(
      "(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh.com) "
      "[A-Za-z0-9+/=]+( [^\n]*)?\n?");
  if (!std::regex_match(key, kKey)) {
    return InvalidArgument("public_key must be one OpenSSH public key line (ssh-ed25519 AAAA...)");
  }
  json::object k{{"id", NewUuid()}, {"name", name}, {"public_key", key}, {"created", NowIso()}};
  INGOT_RETURN_IF_ERROR(repo_.Put(Kind::kPublicKey, Str(k, "id"), k));
  return k;
}

Result<json::object> BuildService::CreateImage(const json::object& body) {
  std::string name = Str(body, "name");
  if (name.empty()) return InvalidArgument("an image needs a name");
  json::object i{{"id", NewUuid()}, {"name", name}, {"created", NowIso()},
                 {"link", body.contains("link") ? body.at("link") : json::value(nullptr)},
                 {"arch", Str(body, "arch", "x86_64")}, {"metadata", json::object()}};
  INGOT_RETURN_IF_ERROR(repo_.Put(Kind::kImage, Str(i, "id"), i));
  return i;
}

Result<json::object> BuildService::PatchImage(const std::string& id, const json::object& body) {
  INGOT_ASSIGN_OR_RETURN(auto img, repo_.Get(Kind::kImage, id));
  for (const auto& [k, v] : body) {
    if (k == "link") {
      img["link"] = v;
    } else if (k == "arch") {
      if (!v.is_string() || (v.as_string() != "x86_64" && v.as_string() != "aarch64")) {
        return InvalidArgument("arch must be 'x86_64' or 'aarch64'");
      }
      img["arch"] = v;
    } else if (k == "metadata") {
      // IMS: a list of {operation: set|remove, key, value}, applied in order.
      json::array ops = v.is_array() ? v.as_array() : json::array{v};
      if (!img["metadata"].is_object()) img["metadata"] = json::object();
      json::object& md = img["metadata"].as_object();
      for (const auto& op : ops) {
        if (!op.is_object()) return InvalidArgument("metadata operations are objects");
        std::string what = Str(op.as_object(), "operation");
        std::string key = Str(op.as_object(), "key");
        if (key.empty()) return InvalidArgument("a metadata operation needs a key");
        if (what == "set") {
          if (!op.as_object().contains("value")) return InvalidArgument("set needs a value");
          md[key] = op.as_object().at("value");
        } else if (what == "remove") {
          md.erase(key);
        } else {
          return InvalidArgument("metadata operation must be 'set' or 'remove'");
        }
      }
    } else {
      return InvalidArgument("'" + std::string(k) + "' cannot be changed");
    }
  }
  INGOT_RETURN_IF_ERROR(repo_.Put(Kind::kImage, id, img));
  return img;
}

Result<std::string> BuildService::ArtifactPath(const std::string& image_id,
                                               const std::string& name) {
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  if (!IsUuid(image_id) || !std::regex_match(name, kName)) return NotFound("no such artifact");
  auto path = shelf_.Fetch("artifacts/" + image_id + "/" + name);
  if (path.status().code() == Code::kNotFound) return NotFound("no such artifact");
  return path;
}

Status BuildService::PublishArtifacts(const std::string& image_id) {
  if (!shelf_.shared()) return Status::Ok();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.dir + "/artifacts/" + image_id, ec)) {
    if (!e.is_regular_file() || e.path().filename().string().find(".fetch-") != std::string::npos) {
      continue;
    }
    INGOT_RETURN_IF_ERROR(
        shelf_.Publish("artifacts/" + image_id + "/" + e.path().filename().string()));
  }
  if (ec) return IoError("listing the artifacts of " + image_id + ": " + ec.message());
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Jobs

std::string BuildService::JobLogPath(const std::string& id) const {
  return options_.dir + "/jobs/" + id + "/log";
}

Result<std::string> BuildService::JobLog(const std::string& id) {
  if (!IsUuid(id)) return NotFound("job " + id + " not found");
  if (JobRunning(id)) return JobLogPath(id);
  INGOT_ASSIGN_OR_RETURN(auto job, repo_.Get(Kind::kJob, id));
  if (!IsFinished(Str(job, "status")) && options_.leases != nullptr) {
    return Unavailable("job " + id + " is running on another node; its log is served there, and "
                       "by every node once the job ends");
  }
  // The finished log in the store is newer than any copy here (this node may have run the job
  // before another took it over).
  return shelf_.Fetch("jobs/" + id + "/log", /*fresh=*/true);
}

Result<json::object> BuildService::CreateJob(const json::object& body) {
  std::string type = Str(body, "job_type");
  if (type != "create" && type != "customize") {
    return InvalidArgument("job_type must be 'create' or 'customize'");
  }
  if (type == "customize") {
    // The image's rootfs may have been built or uploaded through another node.
    if (std::string image = Str(body, "artifact_id"); IsUuid(image)) {
      (void)shelf_.Fetch("artifacts/" + image + "/rootfs");
    }
    INGOT_ASSIGN_OR_RETURN(auto job, NewCustomizeJob(repo_, options_, body, NewUuid()));
    return StartJob(std::move(job));
  }
  std::string artifact = Str(body, "artifact_id");
  auto recipe = repo_.Get(Kind::kRecipe, artifact);
  if (!recipe.ok()) return InvalidArgument("artifact_id must name an existing recipe");
  if (recipe->at("link").is_null()) {
    return InvalidArgument("the recipe has no archive yet: upload it first");
  }
  std::string key_id = Str(body, "public_key_id");
  if (!key_id.empty() && !repo_.Get(Kind::kPublicKey, key_id).ok()) {
    return InvalidArgument("public_key_id must name an existing public key");
  }
  // enable_debug: a failed build stays open over SSH (customize.h), for the job's key only.
  const bool enable_debug = body.contains("enable_debug") && body.at("enable_debug").is_bool() &&
                            body.at("enable_debug").as_bool();
  json::array ssh_containers;
  if (enable_debug) {
    if (key_id.empty()) {
      return InvalidArgument("enable_debug needs a public_key_id: the key that may log in to the "
                             "failed build");
    }
    INGOT_ASSIGN_OR_RETURN(ssh_containers, SshContainersOf(body, "debug"));
  }
  json::array outputs{"ims", "drp", "disk"};
  if (auto it = body.find("outputs"); it != body.end()) {
    if (!it->value().is_array()) return InvalidArgument("outputs is a list of ims, drp, disk");
    outputs = it->value().as_array();
    for (const auto& o : outputs) {
      if (!o.is_string() || (o.as_string() != "ims" && o.as_string() != "drp" &&
                             o.as_string() != "disk")) {
        return InvalidArgument("outputs is a list of ims, drp, disk");
      }
    }
  }
  bool use_cache = true;
  if (auto it = body.find("use_cache"); it != body.end()) {
    if (!it->value().is_bool()) return InvalidArgument("use_cache must be true or false");
    use_cache = it->value().as_bool();
  }
  std::string id = NewUuid();
  json::object job{
      {"id", id},
      {"created", NowIso()},
      {"job_type", type},
      {"artifact_id", artifact},
      {"public_key_id", key_id.empty() ? json::value(nullptr) : json::value(key_id)},
      {"image_root_archive_name", Str(body, "image_root_archive_name", Str(*recipe, "name"))},
      {"kernel_file_name", Str(body, "kernel_file_name", "vmlinuz")},
      {"initrd_file_name", Str(body, "initrd_file_name", "initrd")},
      {"kernel_parameters_file_name", Str(body, "kernel_parameters_file_name",
                                          "kernel-parameters")},
      {"status", kCreating},
      {"enable_debug", enable_debug},
      {"build_env_size", body.contains("build_env_size") ? body.at("build_env_size")
                                                          : json::value(15)},
      {"resultant_image_id", nullptr},
      {"ssh_containers", ssh_containers},
      {"kubernetes_job", nullptr},
      {"kubernetes_service", nullptr},
      {"kubernetes_configmap", nullptr},
      {"kubernetes_namespace", nullptr},
      {"arch", Str(*recipe, "arch", "x86_64")},
      {"require_dkms", recipe->contains("require_dkms") ? recipe->at("require_dkms")
                                                         : json::value(false)},
      {"outputs", outputs},
      {"use_cache", use_cache},
      {"owner", Str(body, "owner")},
      {"log", "/apis/ims/v3/jobs/" + id + "/log"},
      {"error", nullptr},
  };
  return StartJob(std::move(job));
}

Result<json::object> BuildService::StartJob(json::object job, bool leased) {
  const std::string id = Str(job, "id");
  // The lease before the record: no other node's keeper ever sees the job without a holder.
  if (options_.leases != nullptr && !leased) {
    const int64_t now = NowMicros();
    INGOT_ASSIGN_OR_RETURN(
        auto lease, options_.leases->AcquireJobLease(
                        LeaseName(id), options_.node, now,
                        LeaseEnd(now), INT64_MAX));
    if (lease.holder != options_.node) return Conflict("job " + id + " is another node's");
  }
  std::error_code ec;
  fs::create_directories(options_.dir + "/jobs/" + id, ec);
  if (ec) return IoError("cannot create the job directory");
  auto run = std::make_shared<Running>();
  run->log = fopen(JobLogPath(id).c_str(), "ae");
  if (run->log == nullptr) return FromErrno(errno, "opening the job log");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      fclose(run->log);
      return Unavailable("the builder is stopping");
    }
    INGOT_RETURN_IF_ERROR(repo_.Put(Kind::kJob, id, job));
    running_[id] = run;
    std::thread([this, id] { RunJob(id); }).detach();
  }
  return job;
}

Status BuildService::SetJob(const std::string& id,
                            const std::function<void(json::object&)>& change) {
  std::lock_guard<std::mutex> lock(mu_);
  INGOT_ASSIGN_OR_RETURN(auto job, repo_.Get(Kind::kJob, id));
  change(job);
  return repo_.Put(Kind::kJob, id, job);
}

Status BuildService::SetStatus(const std::string& id, Running& run, const char* status) {
  run.status = status;
  run.Line(std::string("== status: ") + status);
  return SetJob(id, [&](json::object& j) { j["status"] = status; });
}

bool BuildService::JobRunning(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return running_.count(id) != 0;
}

Status BuildService::CancelJob(const std::string& id) {
  std::shared_ptr<Running> run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(id);
    if (it != running_.end()) run = it->second;
  }
  if (!run) {
    // Not running here: finished (nothing to end), or running on another node, whose keeper sees
    // the record ended and stops it.
    INGOT_ASSIGN_OR_RETURN(auto job, repo_.Get(Kind::kJob, id));
    if (IsFinished(Str(job, "status"))) return Status::Ok();
    return EndJob(id, "cancelled while " + Str(job, "status"));
  }
  run->cancelled = true;
  run->sandbox.Kill();
  slot_cv_.notify_all();
  return Status::Ok();
}

Status BuildService::DeleteJob(const std::string& id) {
  INGOT_RETURN_IF_ERROR(CancelJob(id));
  std::shared_ptr<Running> run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(id);
    if (it != running_.end()) run = it->second;
  }
  // The job's thread removes itself from running_ when it ends; wait for that so the work
  // directory is never removed under a live stage.
  for (int i = 0; run && i < 600 && JobRunning(id); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INGOT_RETURN_IF_ERROR(repo_.Remove(Kind::kJob, id, false));
  std::error_code ec;
  fs::remove_all(options_.dir + "/jobs/" + id, ec);
  return Status::Ok();
}

Result<json::object> BuildService::WaitJob(const std::string& id,
                                           std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    INGOT_ASSIGN_OR_RETURN(auto job, repo_.Get(Kind::kJob, id));
    if (IsFinished(Str(job, "status")) || std::chrono::steady_clock::now() >= deadline) {
      return job;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void BuildService::RunJob(std::string id) {
  std::shared_ptr<Running> run;
  auto job_rec = repo_.Get(Kind::kJob, id);
  const bool customize = job_rec.ok() && Str(*job_rec, "job_type") == "customize";
  bool holds_slot = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    run = running_[id];
    // At most max_jobs build at once; the rest wait here, in `creating`. A customize job spends
    // its life waiting on a person: it takes no build slot.
    if (!customize) {
      slot_cv_.wait(lock, [&] { return stopping_ || run->cancelled || slots_ < options_.max_jobs; });
      ++slots_;
      holds_slot = true;
    }
  }
  auto started = std::chrono::steady_clock::now();
  JobRun job_run{
      .id = id,
      .line = [&run](std::string_view l) { run->Line(l); },
      .set_status = [&](const char* s) { return SetStatus(id, *run, s); },
      .update = [&](const std::function<void(json::object&)>& c) { return SetJob(id, c); },
      .cancelled = &run->cancelled,
      .sandbox = &run->sandbox,
      .deadline = started + options_.job_timeout};
  Status result = run->cancelled ? Cancelled("cancelled")
                  : customize    ? RunCustomize(repo_, options_, job_run)
                                 : Build(id, *run);
  if (run->cancelled && result.ok()) result = Cancelled("cancelled");
  // enable_debug: the failed build's root, open over SSH until the user is done; the job still
  // ends in error with the build's reason.
  if (!result.ok() && result.code() != Code::kCancelled && !run->cancelled &&
      (!run->debug_root.root.empty() || !run->debug_root.overlay_upper.empty())) {
    run->Line("== error (kept for debugging): " + result.message());
    {
      std::lock_guard<std::mutex> lock(mu_);  // waiting on a person, not building: another may
      --slots_;
      holds_slot = false;
      slot_cv_.notify_all();
    }
    job_run.deadline = std::chrono::steady_clock::now() + options_.job_timeout;
    Status debug = RunDebugShell(repo_, options_, run->debug_root, job_run);
    if (!debug.ok()) run->Line("== debug shell: " + debug.message());
  }
  if (!run->debug_dir.empty()) {
    std::error_code dec;
    fs::remove_all(run->debug_dir, dec);
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping = stopping_;
  }
  // Several nodes: a stopping node hands its jobs over (another node builds them) rather than
  // failing them; a job this node lost is left to whoever has it now.
  const bool hand_over = stopping && !result.ok() && options_.leases != nullptr && !run->lost;
  std::string reason;
  if (run->lost) {
    reason = "stopped here; the job is no longer this node's";
  } else if (hand_over) {
    reason = "handed over: ingotd stopped while the job was " + run->status;
    run->Line("== " + reason);
  } else if (!result.ok()) {
    reason = result.code() != Code::kCancelled ? result.message()
             : stopping ? "interrupted: ingotd stopped while the job was " + run->status
                        : "cancelled while " + run->status;
    run->Line("== error: " + reason);
  } else {
    run->Line("== success");
  }
  if (!run->lost && !hand_over) {
    Status saved = SetJob(id, [&](json::object& j) {
      j["status"] = result.ok() ? kSuccess : kError;
      j["error"] = result.ok() ? json::value(nullptr) : json::value(reason);
      j["finished"] = NowIso();
      j["duration_seconds"] = seconds;
    });
    if (!saved.ok()) log::Error("build.job_save", {{"job", id}, {"error", saved.ToString()}});
    if (customize && result.ok()) {  // the new image, for every node
      auto rec = repo_.Get(Kind::kJob, id);
      if (rec.ok() && rec->contains("resultant_image_id") &&
          rec->at("resultant_image_id").is_string()) {
        WarnUnshared(id, PublishArtifacts(Str(*rec, "resultant_image_id")));
      }
    }
  }
  // The log, for every node: also when the run was cancelled or deleted through another node, not
  // when another node took the job over (its log is the job's now) or this node hands it over.
  if (!hand_over && !run->taken_over) WarnUnshared(id, shelf_.Publish("jobs/" + id + "/log"));
  if (options_.leases != nullptr && !run->lost) {
    Status released = options_.leases->ReleaseJobLease(LeaseName(id), options_.node,
                                                       hand_over ? 0 : NowMicros(), "");
    if (!released.ok()) {
      log::Warn("build.lease_release_failed", {{"job", id}, {"error", released.ToString()}});
    }
  }
  log::Info("build.job_done", {{"job", id}, {"ok", result.ok() ? "true" : "false"},
                               {"seconds", seconds}, {"reason", reason}});
  std::error_code ec;
  fs::remove_all(options_.dir + "/jobs/" + id + "/work", ec);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (holds_slot) --slots_;
    {
      std::lock_guard<std::mutex> l(run->log_mu);
      if (run->log) fclose(run->log);
      run->log = nullptr;
    }
    running_.erase(id);
    slot_cv_.notify_all();  // under the lock: after it, this thread never touches `this` again
  }
}

Status BuildService::Build(const std::string& id, Running& run) {
  const std::string jobdir = options_.dir + "/jobs/" + id;
  const std::string work = jobdir + "/work";
  std::error_code ec;
  fs::remove_all(work, ec);
  fs::create_directories(work + "/mnt", ec);
  INGOT_ASSIGN_OR_RETURN(auto job, repo_.Get(Kind::kJob, id));
  const bool use_cache = !job.contains("use_cache") || job.at("use_cache").as_bool();
  // enable_debug: a failing stage's root is kept (run.debug_root) for RunJob's SSH access.
  const bool keep_failed = job.contains("enable_debug") && job.at("enable_debug").is_bool() &&
                           job.at("enable_debug").as_bool();
  std::string outputs_list;
  for (const auto& o : job.at("outputs").as_array()) {
    outputs_list += (outputs_list.empty() ? "" : " ") + std::string(o.as_string());
  }

  auto deadline = std::chrono::steady_clock::now() + options_.job_timeout;
  // Runs one tool in the job's sandbox, its output into the log.
  auto run_tool = [&](std::vector<std::string> argv, std::map<std::string, std::string> env,
                      bool network, std::string stdin_data = "") -> Result<process::Outcome> {
    auto left = std::chrono::duration_cast<std::chrono::seconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Timeout("the job ran past its time limit");
    process::Spec spec{.argv = std::move(argv),
                       .env = process::CleanEnv(std::move(env)),
                       .new_net_ns = !network,
                       .limits = {.open_files = 65536, .wall = left},
                       .on_line = [&run](std::string_view l) { run.Line(l); },
                       .stdin_data = std::move(stdin_data)};
    INGOT_ASSIGN_OR_RETURN(auto outcome, run.sandbox.Run(spec));
    if (outcome.timed_out) return Timeout("the job ran past its time limit");
    if (run.cancelled || outcome.killed) return Cancelled("cancelled");
    return outcome;
  };

  // ---- fetching_recipe
  INGOT_RETURN_IF_ERROR(SetStatus(id, run, kFetchingRecipe));
  INGOT_ASSIGN_OR_RETURN(auto recipe_rec, repo_.Get(Kind::kRecipe, Str(job, "artifact_id")));
  INGOT_ASSIGN_OR_RETURN(std::string archive, RecipeArchivePath(Str(recipe_rec, "id")));
  std::string recipe_dir = work + "/recipe";
  INGOT_RETURN_IF_ERROR(ExtractArchive(archive, recipe_dir, [&](std::string_view l) { run.Line(l); }));
  // kiwi-ng: kiwi builds the root (kiwi.h); everything after the bootstrap is shared.
  const bool kiwi = Str(recipe_rec, "recipe_type") == "kiwi-ng";
  auto recipe = kiwi ? PrepareKiwiRecipe(recipe_dir, DictionaryOf(recipe_rec))
                     : LoadMmdebstrapRecipe(recipe_dir, DictionaryOf(recipe_rec));
  if (!recipe.ok()) return InvalidArgument("recipe: " + recipe.status().message());
  INGOT_ASSIGN_OR_RETURN(std::string recipe_sha256, FileDigest(archive, "sha256"));
  INGOT_ASSIGN_OR_RETURN(std::string recipe_md5, FileDigest(archive, "md5"));
  run.Line("recipe " + Str(recipe_rec, "name") + " sha256 " + recipe_sha256);

  // ---- waiting_for_repos: the archive's state, which pins the package versions
  INGOT_RETURN_IF_ERROR(SetStatus(id, run, kWaitingForRepos));
  std::string mirror = recipe->mirror.empty() ? options_.mirror : recipe->mirror;
  std::string release_file = work + "/InRelease";
  INGOT_ASSIGN_OR_RETURN(
      auto fetched,
      run_tool({"curl", "-fsSL", "--retry", "3", "--max-time", "120", "-o", release_file,
                mirror + "/dists/" + recipe->suite + "/InRelease"},
               {}, true));
  if (!fetched.ok()) {
    return Unavailable("the archive " + mirror + " has no suite '" + recipe->suite +
                       "' (InRelease: " + fetched.Describe() + ")");
  }
  INGOT_ASSIGN_OR_RETURN(std::string release, ReadFile(release_file));
  std::string release_sha = Sha256(release);
  int64_t epoch = ReleaseDate(release).value_or(0);
  if (epoch <= 0) return Unavailable("the archive's InRelease has no Date");
  std::string sde = std::to_string(epoch);
  run.Line("InRelease sha256 " + release_sha + ", SOURCE_DATE_EPOCH " + sde);

  // ---- building_image: the stage chain
  INGOT_RETURN_IF_ERROR(SetStatus(id, run, kBuildingImage));
  const std::string steps_dir = options_.dir + "/cache/steps";
  json::array step_hashes;
  std::vector<std::string> layers;  // top first; the last one is the bootstrap root

  // Bootstrap.
  json::object boot_def{{"v", kStageVersion}, {"suite", recipe->suite},
                        {"variant", recipe->variant}, {"mirror", mirror},
                        {"inrelease", release_sha}, {"sde", sde}};
  json::array comps, pkgs;
  for (auto& c : recipe->components) comps.push_back(json::value(c));
  std::vector<std::string> sorted_pkgs = recipe->packages;
  std::sort(sorted_pkgs.begin(), sorted_pkgs.end());
  for (auto& p : sorted_pkgs) pkgs.push_back(json::value(p));
  boot_def["components"] = comps;
  boot_def["packages"] = pkgs;
  json::object hooks;
  for (auto& [k, v] : recipe->hooks) {
    json::array a;
    for (auto& c : v) a.push_back(json::value(c));
    hooks[k] = a;
  }
  boot_def["hooks"] = hooks;
  if (kiwi) {
    json::object dict;
    for (const auto& [k, v] : DictionaryOf(recipe_rec)) dict[k] = v;
    boot_def["kiwi"] = json::object{{"archive_sha256", recipe_sha256}, {"dictionary", dict}};
  }
  std::string key = Sha256(json::serialize(boot_def));
  std::string boot_dir = steps_dir + "/" + key;
  if (use_cache && fs::exists(boot_dir + "/root")) {
    run.Line("== stage bootstrap " + key.substr(0, 16) + ": cached");
  } else if (kiwi) {
    run.Line("== stage bootstrap " + key.substr(0, 16) + ": kiwi-ng system prepare");
    std::string tmp = boot_dir + ".tmp-" + id;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    INGOT_ASSIGN_OR_RETURN(
        auto outcome,
        run_tool({"sh", "-c", kKiwiPrepareScript, "sh", recipe_dir, tmp,
                  options_.dir + "/cache/kiwi", kDebianArchiveKeyring},
                 {{"SOURCE_DATE_EPOCH", sde}}, true));
    if (!outcome.ok()) {
      fs::remove_all(tmp, ec);
      return Internal("stage bootstrap (kiwi-ng system prepare) failed: " + outcome.Describe() +
                      "; see the job log");
    }
    fs::remove_all(boot_dir, ec);
    fs::rename(tmp, boot_dir, ec);
    if (ec) return IoError("cannot keep the bootstrap result");
  } else {
    run.Line("== stage bootstrap " + key.substr(0, 16) + ": mmdebstrap " + recipe->suite);
    std::string tmp = boot_dir + ".tmp-" + id;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    std::string debs_out = work + "/debs";
    fs::create_directories(debs_out, ec);
    std::string cache_debs = options_.dir + "/cache/debs";
    std::vector<std::string> argv = {
        "sh", "-c", kBootstrapScript, "sh", tmp + "/root",
        "--mode=root", "--variant=" + recipe->variant, "--skip=essential/unlink",
        "--aptopt=Acquire::Retries \"3\"",
        "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
        "--setup-hook=sync-in " + cache_debs + " /var/cache/apt/archives/"};
    // dpkg without its fsync per file (mmdebstrap's own eatmydata hooks: the wrapper is fetched
    // from the recipe's archive, used while packages install and removed again). Durability is not
    // lost: the hook ends with one sync(2), before the stage's result is kept. The library was in
    // place when packages ran ldconfig, so the cache is rebuilt once it is gone: the root is then
    // as without the hooks.
    if (fs::is_directory(kEatmydataHooks)) {
      argv.push_back(std::string("--hook-dir=") + kEatmydataHooks);
      argv.push_back("--customize-hook=chroot \"$1\" ldconfig");
    }
    std::string comps_arg;
    for (auto& c : recipe->components) comps_arg += (comps_arg.empty() ? "" : ",") + c;
    argv.push_back("--components=" + comps_arg);
    if (!recipe->packages.empty()) {
      std::string inc;
      for (auto& p : recipe->packages) inc += (inc.empty() ? "" : ",") + p;
      argv.push_back("--include=" + inc);
    }
    for (const char* kind : {"setup", "extract", "essential", "customize"}) {
      auto it = recipe->hooks.find(kind);
      if (it == recipe->hooks.end()) continue;
      for (auto& h : it->second) argv.push_back(std::string("--") + kind + "-hook=" + h);
    }
    argv.push_back("--customize-hook=sync-out /var/cache/apt/archives " + debs_out);
    argv.push_back(recipe->suite);
    argv.push_back(tmp + "/root");
    argv.push_back(mirror);
    INGOT_ASSIGN_OR_RETURN(auto outcome, run_tool(argv, {{"SOURCE_DATE_EPOCH", sde}}, true));
    MergeInto(debs_out, cache_debs);  // even a failed build keeps what it downloaded
    if (!outcome.ok()) {
      if (keep_failed && fs::is_directory(tmp + "/root")) {
        run.debug_root = JailSpec{.root = tmp + "/root"};
        run.debug_dir = tmp;
      } else {
        fs::remove_all(tmp, ec);
      }
      return Internal("stage bootstrap (mmdebstrap) failed: " + outcome.Describe() +
                      "; see the job log");
    }
    fs::remove_all(boot_dir, ec);
    fs::rename(tmp, boot_dir, ec);
    if (ec) return IoError("cannot keep the bootstrap result");
  }
  layers.push_back(boot_dir + "/root");
  step_hashes.push_back(json::object{{"stage", "bootstrap"}, {"hash", key}});

  auto lowerdir = [&]() {
    // layers is bottom-first in push order; overlay wants the top first.
    std::string out;
    for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
      out += (out.empty() ? "" : ":") + *it;
    }
    return out;
  };

  // One layer stage: runs, or is taken from the cache.
  auto layer = [&](const std::string& label, const std::string& definition, const std::string& mode,
                   std::vector<std::string> args, std::string stdin_data,
                   const std::string& failure) -> Status {
    if (run.cancelled) return Cancelled("cancelled");
    key = Sha256(key + "\n" + kStageVersion + "\n" + definition);
    std::string dir = steps_dir + "/" + key;
    step_hashes.push_back(json::object{{"stage", label}, {"hash", key}});
    if (use_cache && fs::exists(dir + "/upper")) {
      run.Line("== stage " + label + " " + key.substr(0, 16) + ": cached");
      layers.push_back(dir + "/upper");
      return Status::Ok();
    }
    run.Line("== stage " + label + " " + key.substr(0, 16));
    std::string tmp = dir + ".tmp-" + id;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp + "/upper", ec);
    fs::create_directories(tmp + "/work", ec);
    std::vector<std::string> argv = {"sh", "-c", kLayerScript, "sh", lowerdir(), tmp + "/upper",
                                     tmp + "/work", work + "/mnt", mode};
    for (auto& a : args) argv.push_back(a);
    INGOT_ASSIGN_OR_RETURN(auto outcome,
                           run_tool(argv, {{"SOURCE_DATE_EPOCH", sde}}, false, stdin_data));
    run.Line("== stage " + label + ": " + outcome.Describe());
    if (!outcome.ok()) {
      if (keep_failed) {  // the layers so far under the failed stage's upper layer
        run.debug_root = JailSpec{.overlay_lower = lowerdir(), .overlay_upper = tmp + "/upper",
                                  .overlay_work = tmp + "/work"};
        run.debug_dir = tmp;
      } else {
        fs::remove_all(tmp, ec);
      }
      return Internal(failure + " failed: " + outcome.Describe());
    }
    fs::remove_all(tmp + "/work", ec);  // overlay's scratch directory, not part of the result
    fs::remove_all(dir, ec);
    fs::rename(tmp, dir, ec);
    if (ec) return IoError("cannot keep a stage result");
    layers.push_back(dir + "/upper");
    return Status::Ok();
  };
  auto steps_of = [&](const std::string& stage) -> Status {
    for (const auto& step : recipe->steps) {
      if (step.stage != stage) continue;
      if (step.script.size() > 65536) {
        return InvalidArgument("step '" + step.name + "': its script is over 64 KiB");
      }
      std::string def = "step\n" + step.name + "\n" + step.script;
      for (auto& a : step.args) def += "\n" + a;
      INGOT_RETURN_IF_ERROR(layer(stage + "-step " + step.name, def, "step", step.args, step.script,
                                  "step '" + step.name + "' (" + step.origin + ")"));
    }
    return Status::Ok();
  };
  INGOT_RETURN_IF_ERROR(steps_of("pre"));
  if (!recipe->files.empty()) {
    std::string def = "files";
    std::vector<std::string> args;
    for (const auto& f : recipe->files) {
      std::string src = recipe_dir + "/" + f.source;
      INGOT_ASSIGN_OR_RETURN(std::string digest, FileDigest(src, "sha256"));
      char mode[8];
      snprintf(mode, sizeof(mode), "%04o", f.mode);
      def += "\n" + f.path + " " + mode + " " + digest;
      args.insert(args.end(), {src, f.path, mode});
    }
    INGOT_RETURN_IF_ERROR(layer("files", def, "files", args, "", "writing the recipe's files"));
  }
  INGOT_RETURN_IF_ERROR(steps_of("post"));
  if (run.cancelled) return Cancelled("cancelled");

  // ---- packaging_artifacts
  INGOT_RETURN_IF_ERROR(SetStatus(id, run, kPackagingArtifacts));
  std::string out_key = Sha256(key + "\npackage\n" + kPackageVersion + "\n" + outputs_list + "\n" +
                               recipe->kernel_parameters + "\n" + Str(recipe_rec, "name"));
  std::string out_dir = options_.dir + "/cache/outputs/" + out_key;
  step_hashes.push_back(json::object{{"stage", "packaging"}, {"hash", out_key}});
  if (use_cache && fs::exists(out_dir + "/packages.tsv")) {
    run.Line("== stage packaging " + out_key.substr(0, 16) + ": cached");
  } else {
    run.Line("== stage packaging " + out_key.substr(0, 16) + ": " + outputs_list);
    std::string tmp = out_dir + ".tmp-" + id;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    std::string title = Str(recipe_rec, "name");
    INGOT_ASSIGN_OR_RETURN(
        auto outcome,
        run_tool({"sh", "-c", PackageScript(), "sh", lowerdir(), work + "/mnt", tmp, outputs_list,
                  options_.efi_loader, DerivedUuid(out_key + "disk"), DerivedUuid(out_key + "esp"),
                  DerivedUuid(out_key + "root"), DerivedUuid(out_key + "fs"),
                  recipe->kernel_parameters, title},
                 {{"SOURCE_DATE_EPOCH", sde}}, false));
    if (!outcome.ok()) {
      fs::remove_all(tmp, ec);
      return Internal("packaging failed: " + outcome.Describe() + "; see the job log");
    }
    if (fs::exists(tmp + "/root.ext4")) {
      Status disk = AssembleDisk(
          tmp,
          {DerivedUuid(out_key + "disk"), DerivedUuid(out_key + "esp"),
           DerivedUuid(out_key + "root")},
          epoch, [&](std::vector<std::string> argv) {
            return run_tool(std::move(argv), {{"SOURCE_DATE_EPOCH", sde}}, false);
          });
      if (!disk.ok()) {
        fs::remove_all(tmp, ec);
        return disk;
      }
    }
    INGOT_ASSIGN_OR_RETURN(std::string tsv, ReadFile(tmp + "/packages.tsv"));
    INGOT_RETURN_IF_ERROR(WriteFile(
        tmp + "/sbom.spdx.json",
        SpdxOf(title, out_key, epoch, tsv, Str(recipe_rec, "linux_distribution", "debian"))));
    fs::remove_all(out_dir, ec);
    fs::rename(tmp, out_dir, ec);
    if (ec) return IoError("cannot keep the outputs");
  }

  // The image record and its artifacts (hard links to the cached outputs: no copy).
  std::string image_id = NewUuid();
  std::string art = options_.dir + "/artifacts/" + image_id;
  fs::create_directories(art, ec);
  // The outputs' checksums are computed once, when they are made, and kept beside them: a cached
  // rebuild does not read gigabytes again.
  json::object checksums;
  if (auto kept = ReadFile(out_dir + "/checksums.json"); kept.ok()) {
    boost::system::error_code jec;
    json::value v = json::parse(*kept, jec);
    if (!jec && v.is_object()) checksums = v.as_object();
  }
  bool computed = false;
  json::array manifest_artifacts;
  for (const ArtifactKind& a : kArtifacts) {
    std::string src = out_dir + "/" + a.file;
    if (!fs::exists(src)) continue;
    fs::create_hard_link(src, art + "/" + a.file, ec);
    if (ec) fs::copy_file(src, art + "/" + a.file, ec);
    uint64_t size = fs::file_size(src, ec);
    // Read back from checksums.json a size is an int64 (JSON has one number kind): compare values.
    auto kept_size = [&]() -> std::optional<uint64_t> {
      if (!checksums.contains(a.file) || !checksums[a.file].is_object()) return std::nullopt;
      const json::value* v = checksums[a.file].as_object().if_contains("size");
      boost::system::error_code nec;
      uint64_t n = v ? v->to_number<uint64_t>(nec) : 0;
      if (!v || nec) return std::nullopt;
      return n;
    };
    if (kept_size() != size) {
      INGOT_ASSIGN_OR_RETURN(std::string digest, FileDigest(src, "md5"));
      checksums[a.file] = json::object{{"md5", digest}, {"size", size}};
      computed = true;
    }
    std::string md5(checksums[a.file].as_object()["md5"].as_string());
    if (a.in_manifest) {
      std::string path = "/apis/ims/v3/images/" + image_id + "/artifacts/" + a.file;
      manifest_artifacts.push_back(json::object{
          {"link", json::object{{"path", path}, {"etag", md5}, {"type", "ingot"}}},
          {"type", a.type},
          {"md5", md5}});
    }
  }
  if (!checksums.contains("rootfs")) return Internal("packaging produced no rootfs");
  if (computed) (void)WriteFile(out_dir + "/checksums.json", json::serialize(checksums));
  json::object manifest{{"version", "1.0"},
                        {"created", FormatIso8601(epoch * 1000000)},
                        {"artifacts", manifest_artifacts}};
  INGOT_RETURN_IF_ERROR(WriteFile(art + "/manifest.json", json::serialize(manifest)));
  INGOT_ASSIGN_OR_RETURN(std::string manifest_md5, FileDigest(art + "/manifest.json", "md5"));

  // Digital Rebar's names, published in the boot service's files space.
  json::object drp;
  if (outputs_list.find("drp") != std::string::npos && checksums.contains("rootfs.tgz")) {
    std::string tag = Sanitize(Str(job, "image_root_archive_name"));
    std::time_t t = static_cast<std::time_t>(epoch);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char dstamp[32];
    strftime(dstamp, sizeof(dstamp), "%Y%m%d-%H%M%S", &tm);
    std::string ident = out_key.substr(0, 12);
    std::string tgz = tag + "-rootfs-" + dstamp + "-" + ident + ".tgz";
    std::string zst = tag + "-rootfs-" + dstamp + "-" + ident + ".tar.zst";
    std::string man = tag + "-MANIFEST-" + dstamp + "-" + ident + ".txt";
    std::string text = "filename: " + tgz + "\nident: " + ident + "\ndate: " + dstamp +
                       "\nsize: " + std::to_string(fs::file_size(out_dir + "/rootfs.tgz", ec)) +
                       "\nmd5sum: " + std::string(checksums["rootfs.tgz"].at("md5").as_string()) +
                       "\n";
    INGOT_RETURN_IF_ERROR(WriteFile(art + "/" + man, text));
    fs::create_hard_link(art + "/rootfs.tgz", art + "/" + tgz, ec);
    fs::create_hard_link(art + "/rootfs.tar.zst", art + "/" + zst, ec);
    drp = json::object{{"tgz", tgz}, {"tar_zst", zst}, {"manifest", man}};
    if (!options_.files_dir.empty()) {
      std::string pub = options_.files_dir + "/" + options_.files_subdir;
      fs::create_directories(pub, ec);
      for (const std::string& f : {tgz, zst, man}) {
        fs::remove(pub + "/" + f, ec);
        fs::create_hard_link(art + "/" + f, pub + "/" + f, ec);
        if (ec) fs::copy_file(art + "/" + f, pub + "/" + f, ec);
      }
      drp["published"] = "/" + options_.files_subdir + "/" + tgz;
    }
  }

  // The bootable disk as an Image API image.
  json::object disk;
  // The same outputs were registered before (a cached rebuild): that image, while it is active.
  if (images_ != nullptr && checksums.contains("disk.qcow2")) {
    if (auto kept = ReadFile(out_dir + "/disk-image-id"); kept.ok()) {
      auto existing = images_->Get(*kept, catalog::Viewer{.is_admin = true});
      if (existing.ok() && existing->status() == catalog::ImageStatus::kActive &&
          existing->owner.value_or("") == Str(job, "owner")) {
        disk = json::object{{"image_id", existing->id},
                            {"virtual_size", existing->virtual_size
                                                 ? json::value(*existing->virtual_size)
                                                 : json::value(nullptr)}};
        run.Line("the disk is image " + existing->id + " (registered by an earlier build)");
      }
    }
  }
  if (images_ != nullptr && checksums.contains("disk.qcow2") && disk.empty()) {
    catalog::Image draft;
    draft.id = NewUuid();
    draft.name = Str(job, "image_root_archive_name") + " (disk)";
    std::string owner = Str(job, "owner");
    if (!owner.empty()) draft.owner = owner;
    draft.visibility = catalog::Visibility::kPrivate;
    draft.disk_format = "qcow2";
    draft.container_format = "bare";
    draft.properties["os_distro"] = Str(recipe_rec, "linux_distribution", "debian");
    draft.properties["os_version"] = OsVersionOf(recipe->suite);
    draft.properties["architecture"] = Str(recipe_rec, "arch", "x86_64");
    draft.properties["ims_image_id"] = image_id;
    draft.properties["hw_firmware_type"] = "uefi";
    auto created = images_->Create(draft);
    if (!created.ok()) return created.status().WithContext("registering the disk image");
    INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(out_dir + "/disk.qcow2", O_RDONLY));
    io::FdReader reader(fd.get(), "the built disk");
    auto uploaded = images_->Upload(*created, reader, fs::file_size(out_dir + "/disk.qcow2", ec));
    if (!uploaded.ok()) return uploaded.status().WithContext("uploading the disk image");
    disk = json::object{{"image_id", uploaded->id},
                        {"virtual_size", uploaded->virtual_size
                                             ? json::value(*uploaded->virtual_size)
                                             : json::value(nullptr)}};
    run.Line("registered the disk as image " + uploaded->id);
    (void)WriteFile(out_dir + "/disk-image-id", uploaded->id);
  }

  // Provenance: the log so far goes with the image.
  {
    std::lock_guard<std::mutex> l(run.log_mu);
    if (run.log) fflush(run.log);
  }
  fs::copy_file(JobLogPath(id), art + "/build.log", fs::copy_options::overwrite_existing, ec);
  // Shared before the record names them: a node that reads the record finds every file.
  INGOT_RETURN_IF_ERROR(PublishArtifacts(image_id));
  json::object image{
      {"id", image_id},
      {"created", NowIso()},
      {"name", Str(job, "image_root_archive_name")},
      {"link", json::object{{"path", "/apis/ims/v3/images/" + image_id + "/artifacts/manifest.json"},
                            {"etag", manifest_md5},
                            {"type", "ingot"}}},
      {"arch", Str(recipe_rec, "arch", "x86_64")},
      {"metadata", json::object()},
      {"checksums", checksums},
      {"provenance",
       json::object{{"job_id", id},
                    {"recipe_id", Str(recipe_rec, "id")},
                    {"recipe_sha256", recipe_sha256},
                    {"recipe_md5", recipe_md5},
                    {"inrelease_sha256", release_sha},
                    {"source_date_epoch", epoch},
                    {"step_hashes", step_hashes},
                    {"sbom", "/apis/ims/v3/images/" + image_id + "/artifacts/sbom.spdx.json"},
                    {"build_log", "/apis/ims/v3/images/" + image_id + "/artifacts/build.log"}}},
  };
  if (!drp.empty()) image["drp"] = drp;
  if (!disk.empty()) image["disk"] = disk;
  INGOT_RETURN_IF_ERROR(repo_.Put(Kind::kImage, image_id, image));
  return SetJob(id, [&](json::object& j) {
    j["resultant_image_id"] = image_id;
    j["step_hashes"] = step_hashes;
  });
}

}  // namespace ingot::build
