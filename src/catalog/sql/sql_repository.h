// The catalog's repositories written once in SQL, over any engine that implements sql::Backend:
// SQLite (embedded, sqlite/sqlite_repository.h) and PostgreSQL (scale-out,
// postgres/pg_repository.h) are this class with a different backend and schema text.
//
// Durability and atomicity: every call is one transaction of the backend; a mutating call returns
// only once it is committed. Threads: every method may be called from any number of threads.
// Failure: as ImageRepository and TaskRepository document; kUnavailable (503) while the database
// cannot be reached or written (see backend.h).
#pragma once

#include <memory>

#include "catalog/job_leases.h"
#include "catalog/repository.h"
#include "catalog/sql/backend.h"
#include "catalog/tasks.h"

namespace ingot::catalog {

class SqlRepository : public ImageRepository, public TaskRepository, public JobLeaseRepository {
 public:
  explicit SqlRepository(std::shared_ptr<sql::Backend> backend) : db_(std::move(backend)) {}
  ~SqlRepository() override;

  Status Add(const Image& image) override;
  Result<Image> Get(const std::string& id) override;
  Status Save(const Image& image) override;
  Status Remove(const std::string& id) override;
  Result<ImagePage> List(const ListQuery& query, const Viewer& viewer) override;
  Result<std::vector<Image>> ListByStatus(const std::vector<ImageStatus>& statuses) override;
  Result<std::map<ImageStatus, int64_t>> CountByStatus() override;

  Status AddMember(const ImageMember& member) override;
  Status UpdateMember(const ImageMember& member) override;
  Status RemoveMember(const std::string& image_id, const std::string& member) override;
  Result<ImageMember> GetMember(const std::string& image_id, const std::string& member) override;
  Result<std::vector<ImageMember>> ListMembers(const std::string& image_id) override;

  // TaskRepository (sql_tasks.cc).
  Status AddTask(const Task& task) override;
  Result<Task> GetTask(const std::string& id) override;
  Status SaveTask(const Task& task) override;
  Result<std::vector<Task>> ListTasks(const std::optional<std::string>& owner, int limit) override;
  Result<std::vector<Task>> ListTasksForImage(const std::string& image_id) override;
  Result<std::optional<Task>> ClaimTask(const std::string& node, int64_t now,
                                        int64_t lease_until) override;
  Status RenewLease(const std::string& task_id, const std::string& node,
                    int64_t lease_until) override;
  Result<int64_t> PurgeExpiredTasks(int64_t now) override;

  // JobLeaseRepository (sql_job_leases.cc).
  Result<JobLease> AcquireJobLease(const std::string& name, const std::string& holder, int64_t now,
                                   int64_t until, int64_t due_before) override;
  Status RenewJobLease(const std::string& name, const std::string& holder, int64_t until) override;
  Status ReleaseJobLease(const std::string& name, const std::string& holder, int64_t done_at,
                         const std::string& cursor) override;
  Result<JobLease> GetJobLease(const std::string& name) override;

  // The schema version the open database is at.
  Result<int> SchemaVersion() { return sql::SchemaVersion(*db_); }

  // The database itself, for other components that keep their records in the catalog's database
  // (on PostgreSQL so every node shares them) with their own tables (sql::MigrateComponent).
  std::shared_ptr<sql::Backend> shared_backend() const { return db_; }

 protected:
  sql::Backend& backend() { return *db_; }

 private:
  std::shared_ptr<sql::Backend> db_;
};

}  // namespace ingot::catalog
