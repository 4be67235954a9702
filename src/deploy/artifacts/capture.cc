// Capture: the volume-level steps (capture.h) and ArtifactService's capture use case, its worker
// step and its crash repair (declared in artifact_service.h; kept here so the capture flow reads
// in one place).
//
// Crash safety, in the order things happen:
//   - POST records only a task (Running). Nothing else is visible until the end.
//   - The work (flattened copy, work volume) lives in <dir>/capture/.work-<task id>/.
//   - The golden file is written as <dir>/golden/.tmp-<golden id>, checked and hashed, renamed to
//     <dir>/golden/<golden id>.img (InstallGoldenFile), and only then is its record written — in
//     the same transaction as the task's Completed state.
//   - Repair (before the worker starts) removes every work directory, ends Running capture tasks in
//     Error, and the golden directory's sweep removes a .tmp- file or an .img without a record.
//   So after a SIGKILL a capture is either complete (record + file + task Completed) or undone
//   (no record, no file, no work directory, task Error). The source volume is only ever read.
#include "deploy/artifacts/capture.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>

#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"
#include "deploy/artifacts/artifact_service.h"
#include "deploy/artifacts/documents.h"
#include "formats/convert.h"
#include "io/file.h"

namespace ingot::deploy::artifacts {
namespace json = boost::json;

// ---------------------------------------------------------------- volume-level steps

Result<size_t> VolumeDisk::ReadAt(uint64_t offset, std::span<uint8_t> buf) {
  if (offset >= volume_.Size()) return size_t{0};
  const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), volume_.Size() - offset));
  INGOT_RETURN_IF_ERROR(volume_.Read(offset, buf.first(n)));
  return n;
}

Result<formats::Extent> VolumeDisk::BlockStatus(uint64_t offset, uint64_t max_length) {
  INGOT_ASSIGN_OR_RETURN(VolumeExtent e, volume_.BlockStatus(offset, max_length));
  return formats::Extent{.offset = offset, .length = e.length, .zero = e.zero || !e.allocated};
}

Status FlattenVolume(OsVolume& source, const std::string& raw_path) {
  VolumeDisk disk(source);
  formats::ConvertOptions opts;
  opts.threads = 2;
  opts.flush = false;  // scratch: a crash discards it whole
  opts.direct_io = false;
  return formats::ConvertToRawFile(disk, raw_path, opts);
}

Result<std::unique_ptr<OsVolume>> OpenWorkVolume(const std::string& dir,
                                                 const std::string& raw_path) {
  struct stat st {};
  if (::stat(raw_path.c_str(), &st) != 0) return FromErrno(errno, "stat " + raw_path);
  if (::mkdir(dir.c_str(), 0750) != 0) return FromErrno(errno, "mkdir " + dir);
  VolumeMeta meta;
  meta.size = uint64_t(st.st_size);
  meta.base = std::filesystem::absolute(raw_path).string();
  meta.base_format = "raw";
  meta.base_file_size = uint64_t(st.st_size);
  meta.base_mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  meta.created_unix = int64_t(std::time(nullptr));
  INGOT_RETURN_IF_ERROR(OsVolume::Format(dir, meta));
  return OsVolume::Open(dir);
}

Result<uint64_t> WriteGoldenQcow2(OsVolume& volume, const std::string& path) {
  VolumeDisk disk(volume);
  INGOT_ASSIGN_OR_RETURN(auto sink, io::FileSink::Create(path));
  formats::ConvertOptions opts;
  opts.threads = 2;
  opts.flush = true;
  INGOT_RETURN_IF_ERROR(formats::ConvertToQcow2(disk, *sink, opts));
  struct stat st {};
  if (::fstat(sink->fd(), &st) != 0) return FromErrno(errno, "stat " + path);
  return uint64_t(st.st_size);
}

// ---------------------------------------------------------------- the use case

namespace {

constexpr const char* kWorkPrefix = ".work-";
constexpr int kCaptureSteps = 4;  // copy, scripts, write, register

bool IsCaptureTask(const json::object& t) {
  const json::value* a = t.if_contains("associatedResource");
  return Str(t, "name") == "Capture golden image" && a != nullptr && a->is_object() &&
         Str(a->as_object(), "resourceCategory") == "golden-images";
}

}  // namespace

struct ArtifactService::CaptureJob {
  std::string task_id;
  std::string golden_id;
  std::string name;
  std::string description;
  std::string volume_name;
  std::string volume_uri;
  std::string build_plan_uri;
  std::vector<guestfish::Script> scripts;
  guestfish::Engine engine = guestfish::Engine::kAuto;
};

Result<json::object> ArtifactService::CaptureGoldenImage(const json::object& body,
                                                         const std::string& owner) {
  std::string name = Str(body, "name");
  if (name.empty() || name.size() > 255) {
    return InvalidArgument("name is required (1-255 characters)");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20)
      return InvalidArgument("name holds a control character");
  }
  const std::string vol_uri = Str(body, "osVolumeURI", Str(body, "osVolumeUri"));
  const std::string bp_uri = Str(body, "buildPlanUri", Str(body, "buildPlanURI"));
  if (bp_uri.empty()) return InvalidArgument("buildPlanUri (a capture build plan) is required");
  INGOT_ASSIGN_OR_RETURN(json::object vol, Resolve(Kind::kOsVolume, vol_uri));
  INGOT_ASSIGN_OR_RETURN(json::object bp, Resolve(Kind::kBuildPlan, bp_uri));
  if (Str(bp, "oeBuildPlanType") != "capture") {
    return InvalidArgument("buildPlanUri: '" + Str(bp, "name") + "' is a " +
                           Str(bp, "oeBuildPlanType") +
                           " build plan; a capture needs a capture "
                           "build plan");
  }
  if (Str(vol, "state") != "Normal") {
    return Conflict("OS volume '" + Str(vol, "name") + "' is " + Str(vol, "state") +
                    "; only a deployed volume is captured");
  }
  guestfish::Engine engine = options_.engine;
  if (std::string e = Str(body, "engine"); !e.empty()) {
    auto parsed = guestfish::ParseEngine(e);
    if (!parsed) return InvalidArgument("engine must be auto, native or guestfish");
    engine = *parsed;
  }
  CaptureJob job;
  job.name = name;
  job.description = Str(body, "description");
  job.volume_name = Str(vol, "name");
  job.volume_uri = Str(vol, "uri");
  job.build_plan_uri = Str(bp, "uri");
  job.engine = engine;
  for (const json::value& sv : bp["buildStep"].as_array()) {
    INGOT_ASSIGN_OR_RETURN(json::object script,
                           Resolve(Kind::kPlanScript, Str(sv.as_object(), "planScriptUri")));
    job.scripts.push_back({Str(script, "name"), Str(script, "content")});
  }

  std::lock_guard<std::mutex> lock(write_mu_);
  {
    INGOT_ASSIGN_OR_RETURN(auto taken, repo_.FindByName(Kind::kGoldenImage, name));
    if (taken) return AlreadyExists("the name '" + name + "' is taken");
  }
  // The flushed state is what is captured: refuse while a client has the volume open over NBD
  // (its writes may still be in flight). The worker checks again when it copies.
  {
    auto open = volumes_.OpenVolume(job.volume_name);
    if (!open.ok()) {
      if (open.status().code() == Code::kConflict) {
        return Conflict("OS volume '" + job.volume_name +
                        "' is in use over NBD; disconnect its "
                        "client (or detach it) and capture again");
      }
      return open.status();
    }
  }
  job.task_id = NewUuid();
  job.golden_id = NewUuid();
  const std::string golden_uri =
      std::string(CollectionUri(Kind::kGoldenImage)) + "/" + job.golden_id;
  json::object task = NewTask(job.task_id, "Capture golden image", owner, kCaptureSteps,
                              "golden-images", name, json::value(golden_uri));
  task["osVolumeURI"] = job.volume_uri;
  task["buildPlanUri"] = job.build_plan_uri;
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kTask, job.task_id, task}));
  {
    std::lock_guard<std::mutex> q(mu_);
    Job wrapper;
    wrapper.task_id = job.task_id;
    wrapper.run = [this, job = std::move(job)] { RunCapture(job); };
    queue_.push_back(std::move(wrapper));
  }
  cv_.notify_all();
  log::Info("deploy.capture", {{"task", Str(task, "id")}, {"name", name}, {"state", "queued"}});
  return task;
}

void ArtifactService::RunCapture(const CaptureJob& job) {
  const auto started = std::chrono::steady_clock::now();
  const std::string work = options_.dir + "/capture/" + kWorkPrefix + job.task_id;
  const std::string tmp = options_.dir + "/golden/.tmp-" + job.golden_id;
  auto progress = [&](const std::string& text, int done) {
    auto t = repo_.Get(Kind::kTask, job.task_id);
    if (!t.ok()) return;
    Progress(*t, text);
    (*t)["completedSteps"] = done;
    (*t)["percentComplete"] = 100 * done / kCaptureSteps;
    (*t)["computedPercentComplete"] = 100 * done / kCaptureSteps;
    (void)repo_.Put({Kind::kTask, job.task_id, *t});
  };
  std::string script_log;
  std::string failed_script;
  std::string installed;  // the golden file once renamed into place
  json::object doc;
  auto run = [&]() -> Status {
    INGOT_RETURN_IF_ERROR(io::MakeDirs(work));
    progress("Copying OS volume " + job.volume_name, 0);
    auto source = volumes_.OpenVolume(job.volume_name);
    if (!source.ok()) {
      if (source.status().code() == Code::kConflict) {
        return Conflict("OS volume '" + job.volume_name +
                        "' is in use over NBD; disconnect its "
                        "client (or detach it) and capture again");
      }
      return source.status();
    }
    std::unique_ptr<OsVolume> volume;
    if (job.scripts.empty()) {
      // "Capture as is": nothing changes the volume, so it is written straight from the source
      // (held open, so no client writes meanwhile) without a scratch copy.
      volume = std::move(*source);
    } else {
      INGOT_RETURN_IF_ERROR(FlattenVolume(**source, work + "/flat.raw"));
      source->reset();  // closed (and its lock released) before the scripts run
      INGOT_ASSIGN_OR_RETURN(volume, OpenWorkVolume(work + "/volume", work + "/flat.raw"));
      std::string names;
      for (const guestfish::Script& s : job.scripts) names += (names.empty() ? "" : ", ") + s.name;
      progress("Running capture plan scripts " + names, 1);
      auto report = guestfish::Run(*volume, job.scripts, job.engine);
      if (!report.ok()) {
        for (const guestfish::Script& s : job.scripts) {
          if (report.status().message().starts_with(s.name + " ")) failed_script = s.name;
        }
        return report.status();
      }
      script_log =
          "engine=" + std::string(guestfish::EngineName(report->used)) + "\n" + report->log;
      INGOT_RETURN_IF_ERROR(volume->Flush());
    }
    progress("Writing the golden image", 2);
    INGOT_RETURN_IF_ERROR(WriteGoldenQcow2(*volume, tmp).status());
    volume.reset();
    doc = json::object{{"name", job.name},
                       {"description", job.description},
                       {"id", job.golden_id},
                       {"readOnly", false},
                       {"importedFromBundle", false},
                       {"bundleName", ""},
                       {"bundleURI", ""},
                       {"imageCapture", true},
                       {"osVolumeURI", job.volume_uri},
                       {"buildPlanUri", job.build_plan_uri},
                       {"source", "capture"}};
    progress("Registering the golden image", 3);
    // Checks the file through formats/, hashes it (SHA-256) and renames it into place.
    INGOT_ASSIGN_OR_RETURN(installed, InstallGoldenFile(tmp, doc));
    Stamp(doc, Kind::kGoldenImage, job.golden_id, "GoldenImage", "golden-images");
    return Status::Ok();
  };
  Status failure = run();
  // The scratch goes before the task ends, so a finished task never has scratch behind it.
  {
    std::error_code ec;
    std::filesystem::remove_all(work, ec);
    if (ec) log::Warn("deploy.capture", {{"task", job.task_id}, {"cleanup", ec.message()}});
  }
  const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - started)
                         .count();

  std::unique_lock<std::mutex> lock(write_mu_);
  auto task = repo_.Get(Kind::kTask, job.task_id);
  if (!task.ok()) {
    log::Error("deploy.capture", {{"task", job.task_id}, {"cause", task.status().message()}});
    if (!installed.empty()) (void)::unlink(installed.c_str());
    (void)::unlink(tmp.c_str());
    return;
  }
  json::object& t = *task;
  t["percentComplete"] = 100;
  t["computedPercentComplete"] = 100;
  if (failure.ok()) {
    auto taken = repo_.FindByName(Kind::kGoldenImage, job.name);
    if (!taken.ok()) {
      failure = taken.status();
    } else if (*taken) {
      failure = AlreadyExists("the name '" + job.name + "' was taken while the capture ran");
    }
  }
  Status put;
  if (failure.ok()) {
    t["taskState"] = "Completed";
    t["completedSteps"] = kCaptureSteps;
    if (script_log.size() > 65536) script_log = script_log.substr(0, 65536) + "\n(truncated)";
    t["taskOutput"] = json::array{json::string(script_log)};
    t["captureMillis"] = ms;
    Progress(t, "Completed");
    // The record and the task's end in one transaction: the image appears complete, or not at all.
    put = repo_.Put({{Kind::kGoldenImage, job.golden_id, doc}, {Kind::kTask, job.task_id, t}});
    if (put.ok()) {
      log::Info("deploy.capture",
                {{"task", job.task_id},
                 {"golden_image", job.golden_id},
                 {"volume", job.volume_name},
                 {"size", std::to_string(doc["size"].to_number<uint64_t>())},
                 {"virtual_size", std::to_string(doc["virtualSize"].to_number<uint64_t>())},
                 {"capture_ms", std::to_string(ms)}});
    } else {
      failure = put;
    }
  }
  if (!failure.ok()) {
    if (!installed.empty()) (void)::unlink(installed.c_str());
    (void)::unlink(tmp.c_str());
    const bool user_error = !IsServerFault(failure.code());
    std::string message =
        user_error ? failure.message() : "the capture failed on the server (see the service's log)";
    json::object err{
        {"errorCode", failed_script.empty() ? "CAPTURE_FAILED" : "PLAN_SCRIPT_FAILED"},
        {"message", message},
        {"details", failed_script.empty() ? "" : "plan script " + failed_script},
        {"recommendedActions",
         json::array{failed_script.empty()
                         ? "Check the OS volume and the service's log, then capture again."
                         : "Correct the capture plan script, then capture again."}},
        {"nestedErrors", json::array()},
        {"data", json::object{{"planScript", failed_script}}}};
    if (size_t p = message.find(" line "); p != std::string::npos && !failed_script.empty()) {
      err["data"].as_object()["line"] = std::atoi(message.c_str() + p + 6);
    }
    t["taskErrors"] = json::array{std::move(err)};
    t["taskState"] = "Error";
    Progress(t, "Failed: " + message);
    if (Status s = repo_.Put({Kind::kTask, job.task_id, t}); !s.ok()) {
      log::Error("deploy.capture", {{"task", job.task_id}, {"cause", s.message()}});
    }
    log::Warn("deploy.capture", {{"task", job.task_id},
                                 {"volume", job.volume_name},
                                 {"result", "failed"},
                                 {"cause", failure.message()}});
    return;
  }
  lock.unlock();
  // Like any golden image, a captured one is an Image API image too.
  (void)PublishToCatalog(std::move(doc));
}

Status ArtifactService::RepairCaptures(RepairReport& report) {
  const std::string dir = options_.dir + "/capture";
  INGOT_RETURN_IF_ERROR(io::MakeDirs(dir));
  // Work directories: scratch of captures a crash interrupted (none is running before Start()).
  std::vector<std::string> gone;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") gone.push_back(dir + "/" + n);
    }
    ::closedir(d);
  }
  for (const std::string& p : gone) {
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
    if (ec) return FromErrno(ec.value(), "remove " + p);
    ++report.files_removed;
  }
  // Their tasks: ended in Error. The golden file, if it got as far as golden/, has no record and is
  // removed by Repair's sweep of golden/ that follows.
  INGOT_ASSIGN_OR_RETURN(auto tasks, repo_.List(Kind::kTask));
  for (json::object& t : tasks) {
    std::string state = Str(t, "taskState");
    if ((state != "Running" && state != "New") || !IsCaptureTask(t)) continue;
    t["taskState"] = "Error";
    t["percentComplete"] = 100;
    t["taskErrors"] = json::array{json::object{
        {"errorCode", "CAPTURE_INTERRUPTED"},
        {"message", "The capture was ended by a restart of the service; nothing of it is kept."},
        {"recommendedActions", json::array{"Capture the OS volume again."}}}};
    Progress(t, "Ended by a restart; nothing of the capture was kept.");
    INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kTask, Str(t, "id"), t}));
    log::Warn("deploy.repair", {{"capture_task", Str(t, "id")}, {"undone", "true"}});
    ++report.captures_undone;
  }
  return Status::Ok();
}

}  // namespace ingot::deploy::artifacts
