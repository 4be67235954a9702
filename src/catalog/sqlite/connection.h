// A thin, Status-returning layer over one SQLite connection: prepared statements cached by their
// SQL text, typed binding by position, and SQLite result codes turned into Ingot codes in one
// place.
//
// Threads: a Connection is used by one thread at a time (SQLite opened with NOMUTEX); the
// repository hands connections out from a pool. Statements borrowed from the cache are reset when
// the borrowing Statement object goes away, so a connection never holds a read transaction open by
// accident.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/result.h"

namespace ingot::catalog::sqlite {

// A value bound to a '?' parameter. Every user-supplied value reaches SQL this way.
using Value = std::variant<std::nullptr_t, int64_t, std::string>;

// The one place a SQLite result code becomes a Status. `what` names the operation.
Status SqliteStatus(int rc, sqlite3* db, std::string_view what);

class Connection;

// A borrowed, cached prepared statement. Steps return true while a row is available.
class Statement {
 public:
  Statement(Statement&& other) noexcept
      : conn_(other.conn_), stmt_(other.stmt_), owned_(other.owned_) {
    other.stmt_ = nullptr;
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Binds 1-based parameter `index`.
  Status Bind(int index, const Value& value);
  Status BindAll(const std::vector<Value>& values);  // parameters 1..n
  // True: a row is ready; false: done.
  Result<bool> Step();
  // Steps to completion, for statements that return no rows.
  Status Run();
  // Readies the statement to run again with new bindings.
  Status Reset();

  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const;
  std::optional<std::string> OptText(int col) const;
  std::optional<int64_t> OptInt(int col) const;

 private:
  friend class Connection;
  Statement(Connection* conn, sqlite3_stmt* stmt, bool owned)
      : conn_(conn), stmt_(stmt), owned_(owned) {}
  Connection* conn_;
  sqlite3_stmt* stmt_;
  bool owned_;  // not in the cache (it was full): finalized with this object
};

class Connection {
 public:
  // Opens (creating if needed) the database at `path` and applies the per-connection settings:
  // WAL journal, synchronous=FULL (a committed transaction is on disk before Commit returns), a
  // busy timeout so writers from other processes wait instead of failing.
  static Result<std::unique_ptr<Connection>> Open(const std::string& path);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A cached prepared statement for `sql`. The text must come from code, never from a user.
  Result<Statement> Prepare(const std::string& sql);
  // Runs statements without results (schema, pragmas). Not cached.
  Status Exec(const char* sql);

  int64_t Changes() const { return sqlite3_changes64(db_); }
  sqlite3* db() const { return db_; }

  // kUnavailable when the WAL index (<db>-shm) is immutable, so that touching the database would
  // fault (SIGBUS) instead of failing. Transaction::Begin checks it.
  Status CheckIndexWritable() const;

 private:
  Connection(sqlite3* db, std::string shm_path, std::string probe_path)
      : db_(db), shm_path_(std::move(shm_path)), probe_path_(std::move(probe_path)) {}
  sqlite3* db_;
  std::string shm_path_;
  std::string probe_path_;  // <db>-probe: opened for writing while the storage is suspect
  // Statements keyed by SQL text. Bounded: list queries with unusual shapes could otherwise grow
  // it.
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// A transaction on a connection that rolls back unless committed. Write transactions start with
// BEGIN IMMEDIATE so the write lock is taken up front; upgrading a read lock later can fail with
// SQLITE_BUSY without waiting.
class Transaction {
 public:
  enum class Kind { kRead, kWrite };
  static Result<Transaction> Begin(Connection& conn, Kind kind);
  Transaction(Transaction&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Connection* conn) : conn_(conn) {}
  Connection* conn_;
};

}  // namespace ingot::catalog::sqlite
