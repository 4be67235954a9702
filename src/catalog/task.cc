#include "catalog/task.h"

namespace ingot::catalog {

std::string_view TaskStatusName(TaskStatus s) {
  switch (s) {
    case TaskStatus::kPending:
      return "pending";
    case TaskStatus::kProcessing:
      return "processing";
    case TaskStatus::kSuccess:
      return "success";
    case TaskStatus::kFailure:
      return "failure";
  }
  return "unknown";
}

std::optional<TaskStatus> ParseTaskStatus(std::string_view s) {
  for (TaskStatus t : {TaskStatus::kPending, TaskStatus::kProcessing, TaskStatus::kSuccess,
                       TaskStatus::kFailure}) {
    if (TaskStatusName(t) == s) return t;
  }
  return std::nullopt;
}

bool IsFinal(TaskStatus s) { return s == TaskStatus::kSuccess || s == TaskStatus::kFailure; }

}  // namespace ingot::catalog
