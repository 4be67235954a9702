// IMS's `customize` jobs, the SSH access of `enable_debug` create jobs, and the artifacts of image
// records that no job produced.
//
// A customize job starts from an existing image record (its rootfs SquashFS), goes
//   creating -> fetching_image (the SquashFS unpacked into the job's work directory)
//            -> waiting_on_user (an SSH server for the job's public key, build/jail.h; its
//               connection info in the job's ssh_containers; the user ends it with the
//               completion file)
//            -> packaging_artifacts (a new image record: SquashFS of the changed root, kernel and
//               initrd from its /boot — or the original's —, kernel parameters, manifest.json with
//               md5s, as a create job's)
//            -> success, or error with a reason (cancel, deadline, the SSH server dying, ...).
// The original image's files are only ever read.
#pragma once

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "build/builder.h"
#include "build/jail.h"
#include "build/records.h"
#include "common/process.h"
#include "common/result.h"
#include "io/byte_source.h"

namespace ingot::build {

// What a job's code uses of its run; BuildService makes one per job run.
struct JobRun {
  std::string id;
  std::function<void(std::string_view)> line;                    // the job's log
  std::function<Status(const char* status)> set_status;          // record + log
  std::function<Status(const std::function<void(boost::json::object&)>&)> update;  // the record
  const std::atomic<bool>* cancelled = nullptr;
  process::Sandbox* sandbox = nullptr;  // the job's sandbox: killed by a cancel
  std::chrono::steady_clock::time_point deadline;
};

SshOptions SshOptionsOf(const BuilderOptions& options);

// A job request's ssh_containers (IMS: [{"name", "jail"}], one container), each with status
// "pending" and empty connection_info; absent: one named `default_name`, not jailed.
Result<boost::json::array> SshContainersOf(const boost::json::object& body,
                                           const char* default_name);

// The record of a new customize job from its request: artifact_id names a live image record with
// a rootfs artifact, public_key_id a public key (required: it is the only way in).
Result<boost::json::object> NewCustomizeJob(BuildRepository& repo, const BuilderOptions& options,
                                            const boost::json::object& body,
                                            const std::string& id);

// Runs customize job `run.id` to its end; the Status is the job's outcome (its message the
// reason). Leaves the job's work directory for the caller to remove.
Status RunCustomize(BuildRepository& repo, const BuilderOptions& options, JobRun& run);

// enable_debug: SSH access to a failed build's root (`root`: a directory or an overlay, its `dir`
// ignored) in status waiting_on_user, until the user's completion file, a cancel or the deadline.
// The job ends in error afterwards whatever this returns.
Status RunDebugShell(BuildRepository& repo, const BuilderOptions& options, JailSpec root,
                     JobRun& run);

// Stores an uploaded artifact ("rootfs" — a SquashFS —, "kernel", "initrd", "kernel-parameters")
// of an image record created through the API (kConflict for an image a job built: its artifacts
// are its provenance), then rewrites the image's manifest.json and sets its link and checksums.
// Returns the updated record. Written to a temporary file and renamed: a reader (a running
// customize job) sees the old file or the new one.
Result<boost::json::object> PutImageArtifact(BuildRepository& repo, const BuilderOptions& options,
                                             const std::string& image_id, const std::string& name,
                                             io::Reader& body);

}  // namespace ingot::build
