// What the shared catalog SQL (sql_repository.h, list_sql.h) needs from a database, and nothing more:
// transactions on pooled connections (Backend), statements with bound values inside one transaction
// (Session), rows read by column (Rows), and the few places where the SQL itself differs between
// SQLite and PostgreSQL (Dialect). Each engine implements these once (sqlite/sqlite_backend.cc,
// postgres/pg_backend.cc); every query of the catalog is written once, above them.
//
// SQL text handed to a Session uses `?` for every parameter; an engine that numbers its parameters
// (PostgreSQL's $1, $2, ...) rewrites them. SQL text comes from code only, never from a user: user
// values reach the database as bound Values.
//
// Errors a Session reports, the same for every engine:
//   kAlreadyExists  a unique index or primary key refused the row (and only then);
//   kUnavailable    the database cannot be reached or written right now (connection lost, server
//                   restarting, disk full, file system read-only or immutable, lock timeout): the API
//                   answers 503 with Retry-After and the next request may succeed;
//   kInvalidArgument a value the database refuses as data (not valid UTF-8, out of range);
//   kCorruption     the database is damaged or newer than this build;
//   kIoError/kInternal anything else.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/result.h"

namespace ingot::catalog::sql {

// A value bound to a `?` parameter. Booleans are bound as integers 0/1 (PostgreSQL reads them into
// BOOLEAN columns from the text "0"/"1").
using Value = std::variant<std::nullptr_t, int64_t, std::string>;

// Where the two engines' SQL differs. Everything else in the shared SQL is common to both.
class Dialect {
 public:
  virtual ~Dialect() = default;
  virtual std::string_view Name() const = 0;  // "sqlite", "postgres"
  // Boolean literals for SQL text: SQLite stores 0/1 (and its partial indexes say `deleted = 0`, which
  // a query must repeat word for word for the index to apply); PostgreSQL has a BOOLEAN type.
  virtual std::string_view True() const = 0;
  virtual std::string_view False() const = 0;
  // `a IS ?` with NULLs equal: SQLite's IS, PostgreSQL's IS NOT DISTINCT FROM.
  virtual std::string_view NullSafeEquals() const = 0;
  // One ORDER BY term. The catalog's order puts NULL lowest (SQLite's own rule); PostgreSQL puts it
  // highest unless told, so it says NULLS FIRST/LAST for columns that can hold NULL.
  virtual std::string OrderTerm(std::string_view column, bool descending, bool nullable) const = 0;
  // Appended to the SELECT that picks a task to claim. PostgreSQL: FOR UPDATE SKIP LOCKED, so that
  // concurrent claimers on several nodes pass over a row another claim holds instead of queueing on
  // it. SQLite: nothing; its write transaction is already the only writer on the file.
  virtual std::string_view SkipLocked() const = 0;
  // Run first in a migration's transaction, to make concurrent openers (several nodes starting
  // together) apply each step once. PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing;
  // BEGIN IMMEDIATE already took the write lock.
  virtual std::string_view MigrationLock() const = 0;
};

// The rows of one query, read in order. Valid until the next call on the Session that made it.
class Rows {
 public:
  virtual ~Rows() = default;
  // True: a row is ready to read; false: no more rows.
  virtual Result<bool> Next() = 0;
  virtual bool IsNull(int col) const = 0;
  virtual int64_t Int(int col) const = 0;
  virtual bool Bool(int col) const = 0;
  virtual std::string Text(int col) const = 0;

  std::optional<std::string> OptText(int col) const {
    if (IsNull(col)) return std::nullopt;
    return Text(col);
  }
  std::optional<int64_t> OptInt(int col) const {
    if (IsNull(col)) return std::nullopt;
    return Int(col);
  }
};

// One connection inside one transaction. Used by one thread at a time.
class Session {
 public:
  virtual ~Session() = default;
  virtual const Dialect& dialect() const = 0;
  virtual Result<std::unique_ptr<Rows>> Query(const std::string& sql,
                                              const std::vector<Value>& args) = 0;
  // Runs several independent queries (of different texts), as Query() each, and returns their rows
  // in order. An engine may send them together (PostgreSQL: one pipeline, one round trip).
  virtual Result<std::vector<std::unique_ptr<Rows>>> QueryBatch(
      const std::vector<std::pair<std::string, std::vector<Value>>>& queries) {
    std::vector<std::unique_ptr<Rows>> out;
    for (const auto& [text, args] : queries) {
      INGOT_ASSIGN_OR_RETURN(auto rows, Query(text, args));
      out.push_back(std::move(rows));
    }
    return out;
  }
  // Runs a statement that returns no rows; returns how many rows it changed.
  virtual Result<int64_t> Exec(const std::string& sql, const std::vector<Value>& args) = 0;
  // Runs several statements without parameters (schema migrations).
  virtual Status ExecScript(const char* sql) = 0;
};

// Pooled connections to one database, handing out transactions.
//
// Threads: every method may be called from any number of threads. A failed body rolls its
// transaction back. A body must not keep the Session or Rows past its return.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual const Dialect& dialect() const = 0;
  // One read transaction: everything `body` reads comes from one snapshot.
  virtual Status Read(const std::function<Status(Session&)>& body) = 0;
  // One write transaction, committed (durably) when `body` returns OK.
  virtual Status Write(const std::function<Status(Session&)>& body) = 0;
};

// Brings a schema up to date: steps[i] takes it from version i to i + 1. The version is kept in
// table `schema_version` (one row). Each step runs in its own write transaction that takes the
// dialect's migration lock and re-reads the version first, so several processes (or nodes) opening
// the database at once apply each step exactly once. A version newer than `steps` is refused
// (kCorruption), never guessed at. `create_version_table` is the engine's DDL for schema_version.
Status Migrate(Backend& backend, const char* create_version_table,
               const std::vector<const char*>& steps);
// The version the database is at (0 for an empty one).
Result<int> SchemaVersion(Backend& backend);

// The same for another component's tables in the catalog's database (the builder's records, ...):
// its version is its row in table `component_schema` (the table sqlite::Database keeps, so files
// written before a component moved onto the shared backend open unchanged). Several nodes opening
// together apply each step once, as Migrate.
Status MigrateComponent(Backend& backend, std::string_view component,
                        const std::vector<const char*>& steps);

}  // namespace ingot::catalog::sql
