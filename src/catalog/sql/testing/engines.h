// For tests of the catalog's SQL: the same test against every engine. A test suite is
// parameterised on the engine name ("sqlite", "postgres"); EngineDatabase gives each test a fresh,
// empty database of that engine:
//   sqlite    a file in a new temporary directory;
//   postgres  a new schema on a throw-away server that tests/lib/postgres.sh starts once per test
//             binary (stopped when the binary exits), or on the server INGOT_TEST_PG_DSN names.
// When the PostgreSQL server binaries are not installed, postgres tests are skipped with a message
// saying so (and what to install); any other failure to start the server fails them.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catalog/sql/sql_repository.h"
#include "common/result.h"

namespace ingot::catalog::testing {

// The engines every shared suite runs on.
std::vector<std::string> Engines();

class EngineDatabase {
 public:
  // A fresh empty database for `engine`. A Status with kUnsupported means "skip: not installed".
  static Result<std::unique_ptr<EngineDatabase>> Create(const std::string& engine);
  ~EngineDatabase();

  // Opens (and migrates) a repository over this database; may be called again to reopen.
  Result<std::unique_ptr<SqlRepository>> Open(int pool_size = 8) const;
  // Runs SQL straight on the database, beside the repository (to tamper with it in tests).
  Status Exec(const std::string& sql) const;
  // Latest schema version of this engine's migrations.
  int LatestSchemaVersion() const;

  const std::string& engine() const { return engine_; }
  // sqlite: the database file. postgres: the DSN (with the schema in its options).
  const std::string& where() const { return where_; }
  // postgres: the schema the database lives in.
  const std::string& schema() const { return schema_; }
  // postgres: libpq keyword options to add when connecting (search_path).
  std::string PgOptionsValue() const { return "-c search_path=" + schema_; }

 private:
  std::string engine_;
  std::string dir_;     // sqlite
  std::string where_;   // sqlite path or postgres base DSN
  std::string schema_;  // postgres
};

// The base DSN of the test server (starting it on first use), or kUnsupported when PostgreSQL is not
// installed.
Result<std::string> TestPostgresDsn();

}  // namespace ingot::catalog::testing
