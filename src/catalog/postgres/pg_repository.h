// The scale-out catalog: an ImageRepository and TaskRepository in PostgreSQL, shared by every
// ingotd node behind a load balancer. The queries are the shared catalog SQL
// (catalog/sql/sql_repository.h), the same as the embedded SQLite catalog's; this class adds the
// PostgreSQL schema and the connection pool.
//
// Schema: the same versioned migrations as SQLite (table schema_version), each applied in its own
// transaction under a transaction-scoped advisory lock, so nodes starting together apply each step
// exactly once and the others wait, then find the schema current. A newer schema is refused.
// Task claims: SELECT ... FOR UPDATE SKIP LOCKED with leases that expire (tasks.h).
// Failure: a server that cannot be reached, restarts or runs out of disk is kUnavailable (503 with
// Retry-After); broken connections are replaced (pg_backend.h).
#pragma once

#include <memory>

#include "catalog/postgres/pg_backend.h"
#include "catalog/sql/sql_repository.h"

namespace ingot::catalog {

class PostgresImageRepository final : public SqlRepository {
 public:
  // Connects and brings the schema up to date.
  static Result<std::unique_ptr<PostgresImageRepository>> Open(
      const postgres::PgOptions& options);

  static int LatestSchemaVersion();

 private:
  explicit PostgresImageRepository(std::unique_ptr<sql::Backend> backend)
      : SqlRepository(std::move(backend)) {}
};

}  // namespace ingot::catalog
