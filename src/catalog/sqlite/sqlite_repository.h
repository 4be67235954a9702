// The embedded catalog: an ImageRepository and TaskRepository over one SQLite database file (WAL
// mode, synchronous=FULL). Images and tasks share the file, so one backup holds both.
//
// Durability: every mutating call is one transaction, committed (and fsync'd) before it returns.
// Threads: all methods may be called from any number of threads. Reads run in parallel on pooled
// connections; writes are serialised in process (and across processes by SQLite's write lock,
// waited for up to a busy timeout). Schema: versioned migrations (table schema_version) run on
// Open, each in its own transaction; a database from a newer Ingot is refused rather than guessed
// at. Deleted images keep their row so an id is never reused.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "catalog/repository.h"
#include "catalog/tasks.h"

namespace ingot::catalog::sqlite {
class Connection;
}

namespace ingot::catalog {

class SqliteImageRepository final : public ImageRepository, public TaskRepository {
 public:
  struct Options {
    // Connections kept for reuse; more are opened under load and closed when returned past this.
    int pool_size = 8;
  };

  // Opens or creates the database at `path` and brings its schema up to date.
  // kCorruption when the file is not a database or its schema is newer than this build knows.
  static Result<std::unique_ptr<SqliteImageRepository>> Open(const std::string& path);
  static Result<std::unique_ptr<SqliteImageRepository>> Open(const std::string& path,
                                                             Options options);
  ~SqliteImageRepository() override;

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

  // TaskRepository (sqlite_tasks.cc).
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

  // The schema version this build migrates to, and the one the open database is at.
  static int LatestSchemaVersion();
  Result<int> SchemaVersion();

 private:
  // A pooled connection, returned to the pool when the lease ends. Declared here (members defined
  // in sqlite_repository.cc) so that the image and task methods, in two files, share the pool.
  class Lease {
   public:
    Lease(SqliteImageRepository* repo, std::unique_ptr<sqlite::Connection> conn);
    Lease(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    sqlite::Connection& operator*();

   private:
    SqliteImageRepository* repo_;
    std::unique_ptr<sqlite::Connection> conn_;
  };

  SqliteImageRepository(std::string path, Options options);
  Result<Lease> Acquire();
  void Release(std::unique_ptr<sqlite::Connection> conn);

  const std::string path_;
  const Options options_;
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<sqlite::Connection>> idle_;
  // One writer at a time in this process (image and task writes alike): BEGIN IMMEDIATE then never
  // waits on a sibling thread's busy handler, only on other processes.
  std::mutex write_mu_;
};

}  // namespace ingot::catalog
