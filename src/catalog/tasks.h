// Persistence of tasks. The service layer claims work through this interface, so that several
// ingotd nodes on one database share it without a coordinator of their own: a claim is one
// transaction that picks a runnable task and leases it (PostgreSQL: SELECT ... FOR UPDATE SKIP
// LOCKED; SQLite: its single writer makes the UPDATE atomic).
//
// Thread safety: every method may be called concurrently from many threads.
// Failure: as documented per method; kIoError/kCorruption when the database fails. Each call is one
// transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "catalog/task.h"

namespace ingot::catalog {

class TaskRepository {
 public:
  virtual ~TaskRepository() = default;

  // Stores a new task (version 1). kAlreadyExists when the id is in use. kConflict ("image x
  // already has an import in progress") when `task.image_id` is set and another task for that
  // image is pending or processing: one import or copy of an image at a time, enforced by the
  // database so that two nodes cannot race either.
  virtual Status AddTask(const Task& task) = 0;

  // kNotFound when missing (or purged).
  virtual Result<Task> GetTask(const std::string& id) = 0;

  // Replaces the stored task if the stored version equals task.version (then version + 1).
  // kConflict when another writer saved first; kNotFound when gone.
  virtual Status SaveTask(const Task& task) = 0;

  // Tasks newest first; `owner` set: only that project's. At most `limit`.
  virtual Result<std::vector<Task>> ListTasks(const std::optional<std::string>& owner,
                                              int limit) = 0;
  // Every task of one image, newest first.
  virtual Result<std::vector<Task>> ListTasksForImage(const std::string& image_id) = 0;

  // Leases the oldest runnable task to `node` until `lease_until`: a pending one, or a processing
  // one whose lease ran out before `now` (its node died). The task becomes processing with the
  // lease set and its version bumped. nullopt when nothing is runnable.
  virtual Result<std::optional<Task>> ClaimTask(const std::string& node, int64_t now,
                                                int64_t lease_until) = 0;
  // Extends the lease of a task `node` holds. kConflict when the task is no longer leased to
  // `node` (another node took it over): the caller must stop working on it.
  virtual Status RenewLease(const std::string& task_id, const std::string& node,
                            int64_t lease_until) = 0;

  // Removes tasks whose expires_at is before `now`; returns how many.
  virtual Result<int64_t> PurgeExpiredTasks(int64_t now) = 0;
};

}  // namespace ingot::catalog
