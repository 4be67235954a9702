// The embedded catalog: an ImageRepository and TaskRepository over one SQLite database file (WAL
// mode, synchronous=FULL). Images and tasks share the file, so one backup holds both. The queries
// are the shared catalog SQL (catalog/sql/sql_repository.h); this class adds the SQLite schema and
// the file.
//
// Durability: every mutating call is one transaction, committed (and fsync'd) before it returns.
// Threads: all methods may be called from any number of threads. Reads run in parallel on pooled
// connections; writes are serialised in process (and across processes by SQLite's write lock,
// waited for up to a busy timeout). Schema: versioned migrations (table schema_version) run on
// Open, each in its own transaction; a database from a newer Ingot is refused rather than guessed
// at. Deleted images keep their row so an id is never reused.
// Storage failures (disk full, read-only or immutable files) are kUnavailable and pass when the
// storage recovers; they never take the process down (see sqlite/README.md).
#pragma once

#include <memory>
#include <string>

#include "catalog/sql/sql_repository.h"
#include "catalog/sqlite/database.h"

namespace ingot::catalog {

class SqliteImageRepository final : public SqlRepository {
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
  // Over a database file other components share (one pool, one writer).
  static Result<std::unique_ptr<SqliteImageRepository>> Open(
      std::shared_ptr<sqlite::Database> db);

  // The schema version this build migrates to.
  static int LatestSchemaVersion();

 private:
  explicit SqliteImageRepository(std::unique_ptr<sql::Backend> backend)
      : SqlRepository(std::move(backend)) {}
};

}  // namespace ingot::catalog
