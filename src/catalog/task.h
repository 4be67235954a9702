// Tasks: the record of one piece of background work on an image, as Glance's tasks API shows it
// (GET /v2/tasks/{id}, GET /v2/images/{id}/tasks). Every image import is a task. Plain data and
// pure functions, like image.h; persistence is behind tasks.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace ingot::catalog {

// Glance's task statuses. pending -> processing -> success | failure; nothing leaves success or
// failure.
enum class TaskStatus { kPending, kProcessing, kSuccess, kFailure };

std::string_view TaskStatusName(TaskStatus s);  // "pending", "processing", "success", "failure"
std::optional<TaskStatus> ParseTaskStatus(std::string_view s);
// True for success and failure.
bool IsFinal(TaskStatus s);

struct Task {
  std::string id;                   // lower-case UUID
  std::string type = "api_image_import";
  TaskStatus status = TaskStatus::kPending;
  std::string input;                // JSON object text, as the import request gave it
  std::optional<std::string> result;  // JSON object text once done
  std::string message;              // for a person: what failed and what to do ("" while fine)
  std::optional<std::string> owner;  // project id
  std::optional<std::string> image_id;
  std::optional<std::string> request_id;
  std::optional<std::string> user_id;
  int64_t created_at = 0;  // microseconds since the epoch
  int64_t updated_at = 0;
  std::optional<int64_t> expires_at;  // set when the task ends; purged after it

  // Claiming (several ingotd nodes share one catalog). While a node works on a task it holds a
  // lease: `lease_owner` names the node, `lease_until` (microseconds since the epoch) is when the
  // lease runs out unless renewed. A processing task whose lease ran out is taken over by another
  // claim. Not shown to API clients.
  std::optional<std::string> lease_owner;
  std::optional<int64_t> lease_until;
  int64_t version = 0;  // optimistic concurrency, as Image::version
};

}  // namespace ingot::catalog
