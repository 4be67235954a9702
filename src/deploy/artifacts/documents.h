// How the deploy engine's records are read and stamped, the same whoever writes them (the artifact
// service, captures, bundles): Image Streamer's documents are JSON objects whose fields may be
// missing or of the wrong type, and every record carries the same id/uri/eTag/time fields.
// Internal to deploy/artifacts/.
#pragma once

#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/time.h"
#include "deploy/artifacts/artifact_service.h"  // CollectionUri
#include "deploy/artifacts/repository.h"

namespace ingot::deploy::artifacts {

inline std::string Now() { return FormatIso8601(NowMicros()); }

// The field's string, or `fallback` when it is absent or not a string.
inline std::string Str(const boost::json::object& o, std::string_view key,
                       std::string fallback = "") {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return fallback;
  return std::string(v->as_string());
}

// A flag given as a boolean or as "true"/"false" (Image Streamer's clients send both).
inline bool Flag(const boost::json::object& o, std::string_view key, bool fallback = false) {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr) return fallback;
  if (v->is_bool()) return v->as_bool();
  if (v->is_string()) return v->as_string() == "true";
  return fallback;
}

// Fields every record carries, as Image Streamer's resources do.
inline void Stamp(boost::json::object& doc, Kind kind, const std::string& id, const char* type,
                  const char* category) {
  std::string now = Now();
  if (!doc.contains("created")) doc["created"] = now;
  doc["modified"] = now;
  doc["id"] = id;
  doc["uri"] = std::string(CollectionUri(kind)) + "/" + id;
  doc["type"] = type;
  doc["category"] = category;
  doc["eTag"] = std::to_string(NowMicros());
  if (!doc.contains("state")) doc["state"] = "Normal";
  if (!doc.contains("status")) doc["status"] = "OK";
}

// Appends a progress update to a task and makes it the task's status.
inline void Progress(boost::json::object& task, const std::string& text) {
  boost::json::array& updates = task["progressUpdates"].as_array();
  updates.push_back(boost::json::object{{"id", static_cast<int64_t>(updates.size() + 1)},
                                        {"statusUpdate", text},
                                        {"timestamp", Now()}});
  task["taskStatus"] = text;
  task["modified"] = Now();
}

// A task as Image Streamer shows one (TaskResourceV2), Running and queued, about the resource
// `resource_uri` (a `category` record named `resource_name`), of `total_steps` steps.
inline boost::json::object NewTask(const std::string& id, const std::string& name,
                                   const std::string& owner, int64_t total_steps,
                                   const char* category, const std::string& resource_name,
                                   boost::json::value resource_uri) {
  boost::json::object task{{"name", name},
                           {"owner", owner},
                           {"taskState", "Running"},
                           {"taskStatus", "Queued"},
                           {"taskType", "User"},
                           {"userInitiated", true},
                           {"percentComplete", 0},
                           {"computedPercentComplete", 0},
                           {"totalSteps", total_steps},
                           {"completedSteps", 0},
                           {"progressUpdates", boost::json::array()},
                           {"taskErrors", boost::json::array()},
                           {"taskOutput", boost::json::array()},
                           {"associatedResource",
                            boost::json::object{{"associationType", "MANAGED_BY"},
                                                {"resourceCategory", category},
                                                {"resourceName", resource_name},
                                                {"resourceUri", std::move(resource_uri)}}}};
  Stamp(task, Kind::kTask, id, "TaskResourceV2", "tasks");
  Progress(task, "Queued");
  return task;
}

// unlink(2), absent already counting as done.
inline Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return FromErrno(errno, "unlink " + path);
  return Status::Ok();
}

}  // namespace ingot::deploy::artifacts
