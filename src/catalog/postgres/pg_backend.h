// sql::Backend over PostgreSQL with libpq: a pool of connections to one server, transactions on
// them, statements prepared once per connection, and the server's errors turned into Ingot codes in
// one place (PgStatus).
//
// Connections that break (the server restarted, the network dropped) are never handed out again:
// a failure that leaves a connection unusable closes it and retires every connection opened before
// it, and an idle connection the server has closed is noticed before it is used. The request that
// was running on it gets kUnavailable (503 with Retry-After); the next one opens a fresh connection.
//
// Threads: every method may be called from any number of threads; a connection is used by one
// thread at a time.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "catalog/sql/backend.h"

namespace ingot::catalog::postgres {

struct PgOptions {
  // libpq connection string: "postgresql://user:password@host:port/db?sslmode=verify-full" or
  // "host=... dbname=..." (https://www.postgresql.org/docs/15/libpq-connect.html).
  std::string dsn;
  // Connections kept open for reuse; a request beyond them waits for one (up to acquire_timeout).
  int pool_size = 8;
  std::chrono::milliseconds acquire_timeout{5000};
  // Extra libpq keywords that override the DSN's (sslmode, sslrootcert, sslcert, sslkey,
  // connect_timeout, application_name, ...). Unknown keywords are refused by libpq at connect.
  std::map<std::string, std::string> params;
  // Per-statement limit set on every connection (0: none), so a stuck query cannot hold a worker.
  std::chrono::milliseconds statement_timeout{30000};
};

const sql::Dialect& PgDialect();

// Opens one connection to check that the server answers (kUnavailable otherwise, naming the
// host, never the password; kInvalidArgument for a malformed DSN).
Result<std::unique_ptr<sql::Backend>> OpenBackend(const PgOptions& options);

}  // namespace ingot::catalog::postgres
