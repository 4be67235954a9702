// SqlRepository's TaskRepository half: the `tasks` table, claimed through leases.
//
// Claims: one write transaction picks the oldest runnable task — pending, or processing with a lease
// that ran out — and leases it to the node. On PostgreSQL the SELECT says FOR UPDATE SKIP LOCKED, so
// claimers on several nodes each lock a different row at once instead of queueing on the first one;
// on SQLite the write transaction is the only writer on the file. A claim bumps `version`, so the
// node that lost an expired lease fails its next SaveTask and RenewLease (kConflict) and stops.
#include <utility>

#include "catalog/sql/sql_repository.h"

namespace ingot::catalog {

using sql::Rows;
using sql::Session;
using sql::Value;

namespace {

constexpr const char* kTaskColumns =
    "id, type, status, input, result, message, owner, image_id, request_id, user_id, created_at, "
    "updated_at, expires_at, lease_owner, lease_until, version";

Value Opt(const std::optional<std::string>& s) {
  if (!s) return nullptr;
  return *s;
}

Value Opt(const std::optional<int64_t>& v) {
  if (!v) return nullptr;
  return *v;
}

// The columns a save replaces, in the order both INSERT and UPDATE name them. id and created_at
// never change once added.
std::vector<Value> MutableValues(const Task& t) {
  return {t.type,
          std::string(TaskStatusName(t.status)),
          t.input,
          Opt(t.result),
          t.message,
          Opt(t.owner),
          Opt(t.image_id),
          Opt(t.request_id),
          Opt(t.user_id),
          t.updated_at,
          Opt(t.expires_at),
          Opt(t.lease_owner),
          Opt(t.lease_until)};
}

Result<Task> ReadTask(const Rows& r) {
  Task t;
  t.id = r.Text(0);
  t.type = r.Text(1);
  auto status = ParseTaskStatus(r.Text(2));
  if (!status) return Corruption("task " + t.id + ": unknown status in the catalog");
  t.status = *status;
  t.input = r.Text(3);
  t.result = r.OptText(4);
  t.message = r.Text(5);
  t.owner = r.OptText(6);
  t.image_id = r.OptText(7);
  t.request_id = r.OptText(8);
  t.user_id = r.OptText(9);
  t.created_at = r.Int(10);
  t.updated_at = r.Int(11);
  t.expires_at = r.OptInt(12);
  t.lease_owner = r.OptText(13);
  t.lease_until = r.OptInt(14);
  t.version = r.Int(15);
  return t;
}

Result<std::vector<Task>> ReadTasks(Rows& r) {
  std::vector<Task> tasks;
  while (true) {
    INGOT_ASSIGN_OR_RETURN(bool row, r.Next());
    if (!row) break;
    INGOT_ASSIGN_OR_RETURN(Task t, ReadTask(r));
    tasks.push_back(std::move(t));
  }
  return tasks;
}

Status TaskNotFound(const std::string& id) {
  return NotFound("Task with the given id " + id + " was not found");
}

Status LiveTaskConflict(const Task& t) {
  return Conflict("image " + t.image_id.value_or("") + " already has an import in progress");
}

Result<bool> TaskExists(Session& s, const std::string& id) {
  INGOT_ASSIGN_OR_RETURN(auto r, s.Query("SELECT 1 FROM tasks WHERE id = ?", {id}));
  return r->Next();
}

Status CheckTaskExists(Session& s, const std::string& id) {
  INGOT_ASSIGN_OR_RETURN(bool exists, TaskExists(s, id));
  return exists ? Status::Ok() : TaskNotFound(id);
}

}  // namespace

Status SqlRepository::AddTask(const Task& task) {
  if (task.id.empty()) return InvalidArgument("task id is empty");
  Status added = db_->Write([&](Session& s) -> Status {
    std::vector<Value> values = MutableValues(task);
    values.emplace_back(task.id);
    values.emplace_back(task.created_at);
    return s
        .Exec("INSERT INTO tasks (type, status, input, result, message, owner, image_id, "
              "request_id, user_id, updated_at, expires_at, lease_owner, lease_until, id, "
              "created_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
              values)
        .status();
  });
  if (added.code() != Code::kAlreadyExists) return added;
  // The row broke the primary key or tasks_live_image (a row can break both, and each engine names
  // whichever it checked first; PostgreSQL also ends the transaction at the error). So ask the table
  // afterwards: a taken id is kAlreadyExists whatever the image.
  bool exists = false;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
    INGOT_ASSIGN_OR_RETURN(exists, TaskExists(s, task.id));
    return Status::Ok();
  }));
  if (exists) return AlreadyExists("task " + task.id + " exists");
  return LiveTaskConflict(task);
}

Result<Task> SqlRepository::GetTask(const std::string& id) {
  std::optional<Task> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        auto r, s.Query(std::string("SELECT ") + kTaskColumns + " FROM tasks WHERE id = ?", {id}));
    INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
    if (!row) return TaskNotFound(id);
    INGOT_ASSIGN_OR_RETURN(Task t, ReadTask(*r));
    out = std::move(t);
    return Status::Ok();
  }));
  return std::move(*out);
}

Status SqlRepository::SaveTask(const Task& task) {
  return db_->Write([&](Session& s) -> Status {
    std::vector<Value> values = MutableValues(task);
    values.emplace_back(task.id);
    values.emplace_back(task.version);
    auto changed =
        s.Exec("UPDATE tasks SET type = ?, status = ?, input = ?, result = ?, message = ?, "
               "owner = ?, image_id = ?, request_id = ?, user_id = ?, updated_at = ?, "
               "expires_at = ?, lease_owner = ?, lease_until = ?, version = version + 1 "
               "WHERE id = ? AND version = ?",
               values);
    // The id stays, so the one unique index an update can break is tasks_live_image: the task
    // became live again, or moved to an image that has a live task.
    if (changed.status().code() == Code::kAlreadyExists) return LiveTaskConflict(task);
    INGOT_RETURN_IF_ERROR(changed.status());
    if (*changed == 0) {
      INGOT_RETURN_IF_ERROR(CheckTaskExists(s, task.id));
      return Conflict("Task " + task.id + " was changed by another request (version " +
                      std::to_string(task.version) + " is stale)");
    }
    return Status::Ok();
  });
}

Result<std::vector<Task>> SqlRepository::ListTasks(const std::optional<std::string>& owner,
                                                   int limit) {
  if (limit < 0) return InvalidArgument("limit param must be positive");
  if (limit == 0) return std::vector<Task>();
  std::vector<Task> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
    std::string text = std::string("SELECT ") + kTaskColumns + " FROM tasks";
    std::vector<Value> args;
    if (owner) {
      text += " WHERE owner = ?";
      args.emplace_back(*owner);
    }
    text += " ORDER BY created_at DESC, id DESC LIMIT ?";
    args.emplace_back(int64_t{limit});
    INGOT_ASSIGN_OR_RETURN(auto r, s.Query(text, args));
    INGOT_ASSIGN_OR_RETURN(out, ReadTasks(*r));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<Task>> SqlRepository::ListTasksForImage(const std::string& image_id) {
  std::vector<Task> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
    INGOT_ASSIGN_OR_RETURN(auto r, s.Query(std::string("SELECT ") + kTaskColumns +
                                               " FROM tasks WHERE image_id = ? "
                                               "ORDER BY created_at DESC, id DESC",
                                           {image_id}));
    INGOT_ASSIGN_OR_RETURN(out, ReadTasks(*r));
    return Status::Ok();
  }));
  return out;
}

Result<std::optional<Task>> SqlRepository::ClaimTask(const std::string& node, int64_t now,
                                                     int64_t lease_until) {
  std::optional<Task> task;
  INGOT_RETURN_IF_ERROR(db_->Write([&](Session& s) -> Status {
    task.reset();
    {
      // The status IN (...) term lets the engine walk tasks_runnable in order and stop at the
      // first row it may take.
      INGOT_ASSIGN_OR_RETURN(auto r, s.Query(std::string("SELECT ") + kTaskColumns +
                                                 " FROM tasks WHERE status IN ('pending', "
                                                 "'processing') AND (status = 'pending' OR "
                                                 "lease_until < ?) ORDER BY created_at, id LIMIT 1" +
                                                 std::string(s.dialect().SkipLocked()),
                                             {now}));
      INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
      if (!row) return Status::Ok();
      INGOT_ASSIGN_OR_RETURN(Task t, ReadTask(*r));
      task = std::move(t);
    }
    // The version bump fences off the previous holder of an expired lease: its SaveTask now fails
    // with kConflict.
    return s
        .Exec("UPDATE tasks SET status = 'processing', lease_owner = ?, lease_until = ?, "
              "updated_at = ?, version = version + 1 WHERE id = ?",
              {node, lease_until, now, task->id})
        .status();
  }));
  if (!task) return std::optional<Task>();
  task->status = TaskStatus::kProcessing;
  task->lease_owner = node;
  task->lease_until = lease_until;
  task->updated_at = now;
  ++task->version;
  return task;
}

Status SqlRepository::RenewLease(const std::string& task_id, const std::string& node,
                                 int64_t lease_until) {
  return db_->Write([&](Session& s) -> Status {
    // Neither version nor updated_at change: the holder's copy of the task stays current, so its
    // next SaveTask succeeds, and clients see no change for a heartbeat.
    INGOT_ASSIGN_OR_RETURN(int64_t changed,
                           s.Exec("UPDATE tasks SET lease_until = ? WHERE id = ? AND "
                                  "lease_owner = ? AND status = 'processing'",
                                  {lease_until, task_id, node}));
    if (changed == 0) {
      INGOT_RETURN_IF_ERROR(CheckTaskExists(s, task_id));
      return Conflict("task " + task_id + " is no longer leased to " + node);
    }
    return Status::Ok();
  });
}

Result<int64_t> SqlRepository::PurgeExpiredTasks(int64_t now) {
  int64_t purged = 0;
  INGOT_RETURN_IF_ERROR(db_->Write([&](Session& s) -> Status {
    INGOT_ASSIGN_OR_RETURN(purged, s.Exec("DELETE FROM tasks WHERE expires_at < ?", {now}));
    return Status::Ok();
  }));
  return purged;
}

}  // namespace ingot::catalog
