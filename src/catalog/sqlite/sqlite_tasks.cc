// SqliteImageRepository's TaskRepository half: the `tasks` table (migration 2 in
// sqlite_repository.cc), on the same connection pool and in-process write lock as the images.
#include <sqlite3.h>

#include <utility>

#include "catalog/sqlite/connection.h"
#include "catalog/sqlite/sqlite_repository.h"

namespace ingot::catalog {

using sqlite::Connection;
using sqlite::Statement;
using sqlite::Transaction;
using sqlite::Value;

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

Result<Task> ReadTask(const Statement& st) {
  Task t;
  t.id = st.Text(0);
  t.type = st.Text(1);
  auto status = ParseTaskStatus(st.Text(2));
  if (!status) return Corruption("task " + t.id + ": unknown status in the catalog");
  t.status = *status;
  t.input = st.Text(3);
  t.result = st.OptText(4);
  t.message = st.Text(5);
  t.owner = st.OptText(6);
  t.image_id = st.OptText(7);
  t.request_id = st.OptText(8);
  t.user_id = st.OptText(9);
  t.created_at = st.Int(10);
  t.updated_at = st.Int(11);
  t.expires_at = st.OptInt(12);
  t.lease_owner = st.OptText(13);
  t.lease_until = st.OptInt(14);
  t.version = st.Int(15);
  return t;
}

Result<std::vector<Task>> ReadTasks(Statement& st) {
  std::vector<Task> tasks;
  while (true) {
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    INGOT_ASSIGN_OR_RETURN(Task t, ReadTask(st));
    tasks.push_back(std::move(t));
  }
  return tasks;
}

Status TaskNotFound(const std::string& id) {
  return NotFound("Task with the given id " + id + " was not found");
}

// Whether a write failed on a unique index: the primary key or tasks_live_image. Read before the
// failed statement is reset.
bool BrokeUniqueIndex(const Status& s, Connection& c) {
  if (s.code() != Code::kAlreadyExists) return false;
  int rc = sqlite3_extended_errcode(c.db());
  return rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE;
}

Status LiveTaskConflict(const Task& t) {
  return Conflict("image " + t.image_id.value_or("") + " already has an import in progress");
}

Status CheckTaskExists(Connection& c, const std::string& id) {
  INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("SELECT 1 FROM tasks WHERE id = ?"));
  INGOT_RETURN_IF_ERROR(st.Bind(1, id));
  INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return TaskNotFound(id);
  return Status::Ok();
}

}  // namespace

Status SqliteImageRepository::AddTask(const Task& task) {
  if (task.id.empty()) return InvalidArgument("task id is empty");
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
  bool broke_unique = false;
  {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("INSERT INTO tasks (type, status, input, result, message, owner, image_id, "
                  "request_id, user_id, updated_at, expires_at, lease_owner, lease_until, id, "
                  "created_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"));
    std::vector<Value> values = MutableValues(task);
    values.emplace_back(task.id);
    values.emplace_back(task.created_at);
    INGOT_RETURN_IF_ERROR(st.BindAll(values));
    Status s = st.Run();
    broke_unique = BrokeUniqueIndex(s, c);
    if (!s.ok() && !broke_unique) return s;
  }
  if (broke_unique) {
    // A row can break both indexes and SQLite names whichever it checked first, so ask the table:
    // a taken id is kAlreadyExists whatever the image.
    Status exists = CheckTaskExists(c, task.id);
    if (exists.ok()) return AlreadyExists("task " + task.id + " exists");
    if (exists.code() != Code::kNotFound) return exists;
    return LiveTaskConflict(task);
  }
  return tx.Commit();
}

Result<Task> SqliteImageRepository::GetTask(const std::string& id) {
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  INGOT_ASSIGN_OR_RETURN(Statement st, (*lease).Prepare(std::string("SELECT ") + kTaskColumns +
                                                        " FROM tasks WHERE id = ?"));
  INGOT_RETURN_IF_ERROR(st.Bind(1, id));
  INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return TaskNotFound(id);
  return ReadTask(st);
}

Status SqliteImageRepository::SaveTask(const Task& task) {
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
  {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("UPDATE tasks SET type = ?, status = ?, input = ?, result = ?, message = ?, "
                  "owner = ?, image_id = ?, request_id = ?, user_id = ?, updated_at = ?, "
                  "expires_at = ?, lease_owner = ?, lease_until = ?, version = version + 1 "
                  "WHERE id = ? AND version = ?"));
    std::vector<Value> values = MutableValues(task);
    values.emplace_back(task.id);
    values.emplace_back(task.version);
    INGOT_RETURN_IF_ERROR(st.BindAll(values));
    // The id stays, so the one unique index an update can break is tasks_live_image: the task
    // became live again, or moved to an image that has a live task.
    Status s = st.Run();
    if (BrokeUniqueIndex(s, c)) return LiveTaskConflict(task);
    INGOT_RETURN_IF_ERROR(s);
  }
  if (c.Changes() == 0) {
    INGOT_RETURN_IF_ERROR(CheckTaskExists(c, task.id));
    return Conflict("Task " + task.id + " was changed by another request (version " +
                    std::to_string(task.version) + " is stale)");
  }
  return tx.Commit();
}

Result<std::vector<Task>> SqliteImageRepository::ListTasks(const std::optional<std::string>& owner,
                                                           int limit) {
  if (limit < 0) return InvalidArgument("limit param must be positive");
  if (limit == 0) return std::vector<Task>();
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  std::string sql = std::string("SELECT ") + kTaskColumns + " FROM tasks";
  std::vector<Value> args;
  if (owner) {
    sql += " WHERE owner = ?";
    args.emplace_back(*owner);
  }
  sql += " ORDER BY created_at DESC, id DESC LIMIT ?";
  args.emplace_back(int64_t{limit});
  INGOT_ASSIGN_OR_RETURN(Statement st, (*lease).Prepare(sql));
  INGOT_RETURN_IF_ERROR(st.BindAll(args));
  return ReadTasks(st);
}

Result<std::vector<Task>> SqliteImageRepository::ListTasksForImage(const std::string& image_id) {
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  INGOT_ASSIGN_OR_RETURN(Statement st, (*lease).Prepare(std::string("SELECT ") + kTaskColumns +
                                                        " FROM tasks WHERE image_id = ? "
                                                        "ORDER BY created_at DESC, id DESC"));
  INGOT_RETURN_IF_ERROR(st.Bind(1, image_id));
  return ReadTasks(st);
}

Result<std::optional<Task>> SqliteImageRepository::ClaimTask(const std::string& node, int64_t now,
                                                             int64_t lease_until) {
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  // Pick and lease in one write transaction: BEGIN IMMEDIATE makes it the only writer on the file,
  // across processes too, so no other claim can pick the same row between the SELECT and the
  // UPDATE.
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
  std::optional<Task> task;
  {
    // The status IN (...) term lets SQLite walk tasks_runnable in order and stop at the first hit.
    // PostgreSQL: end this statement with FOR UPDATE SKIP LOCKED, so that concurrent claimers
    // pass over a row another claim holds instead of queueing on it.
    INGOT_ASSIGN_OR_RETURN(Statement st,
                           c.Prepare(std::string("SELECT ") + kTaskColumns +
                                     " FROM tasks WHERE status IN ('pending', 'processing')"
                                     " AND (status = 'pending' OR lease_until < ?)"
                                     " ORDER BY created_at, id LIMIT 1"));
    INGOT_RETURN_IF_ERROR(st.Bind(1, now));
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::optional<Task>();
    INGOT_ASSIGN_OR_RETURN(Task t, ReadTask(st));
    task = std::move(t);
  }
  {
    // The version bump fences off the previous holder of an expired lease: its SaveTask now fails
    // with kConflict.
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("UPDATE tasks SET status = 'processing', lease_owner = ?, lease_until = ?, "
                  "updated_at = ?, version = version + 1 WHERE id = ?"));
    INGOT_RETURN_IF_ERROR(st.BindAll({node, lease_until, now, task->id}));
    INGOT_RETURN_IF_ERROR(st.Run());
  }
  INGOT_RETURN_IF_ERROR(tx.Commit());
  task->status = TaskStatus::kProcessing;
  task->lease_owner = node;
  task->lease_until = lease_until;
  task->updated_at = now;
  ++task->version;
  return task;
}

Status SqliteImageRepository::RenewLease(const std::string& task_id, const std::string& node,
                                         int64_t lease_until) {
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
  {
    // Neither version nor updated_at change: the holder's copy of the task stays current, so its
    // next SaveTask succeeds, and clients see no change for a heartbeat.
    INGOT_ASSIGN_OR_RETURN(Statement st,
                           c.Prepare("UPDATE tasks SET lease_until = ? WHERE id = ? AND "
                                     "lease_owner = ? AND status = 'processing'"));
    INGOT_RETURN_IF_ERROR(st.BindAll({lease_until, task_id, node}));
    INGOT_RETURN_IF_ERROR(st.Run());
  }
  if (c.Changes() == 0) {
    INGOT_RETURN_IF_ERROR(CheckTaskExists(c, task_id));
    return Conflict("task " + task_id + " is no longer leased to " + node);
  }
  return tx.Commit();
}

Result<int64_t> SqliteImageRepository::PurgeExpiredTasks(int64_t now) {
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
  {
    INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("DELETE FROM tasks WHERE expires_at < ?"));
    INGOT_RETURN_IF_ERROR(st.Bind(1, now));
    INGOT_RETURN_IF_ERROR(st.Run());
  }
  int64_t purged = c.Changes();
  INGOT_RETURN_IF_ERROR(tx.Commit());
  return purged;
}

}  // namespace ingot::catalog
