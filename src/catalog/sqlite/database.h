// One catalog database file shared by several repositories (images and tasks, boot records,
// metadata definitions, ...): a pool of connections, the in-process write lock, and versioned
// migrations kept per component, so each domain owns its own tables and their history without
// touching another's.
//
// Threads: every method may be called from any thread. Write(): one writer at a time in this
// process (BEGIN IMMEDIATE then only ever waits on other processes, in SQLite's busy handler).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/sqlite/connection.h"
#include "common/result.h"

namespace ingot::catalog::sqlite {

class Database {
 public:
  struct Options {
    int pool_size = 8;  // idle connections kept for reuse; more are opened under load
  };
  // Opens (creating) the file. Components migrate themselves with Migrate().
  static Result<std::shared_ptr<Database>> Open(const std::string& path, Options options);
  static Result<std::shared_ptr<Database>> Open(const std::string& path) {
    return Open(path, Options{});
  }

  // A pooled connection, returned to the pool when the lease ends.
  class Lease {
   public:
    Lease(Database* db, std::unique_ptr<Connection> conn) : db_(db), conn_(std::move(conn)) {}
    Lease(Lease&&) noexcept = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    Database* db_;
    std::unique_ptr<Connection> conn_;
  };
  Result<Lease> Acquire();

  // Runs `body` in one write transaction (committed when it returns OK, rolled back otherwise),
  // holding the in-process write lock.
  Status Write(const std::function<Status(Connection&)>& body);
  // Runs `body` in one read transaction: everything it reads comes from one snapshot.
  Status Read(const std::function<Status(Connection&)>& body);

  // Brings `component`'s tables up to date: steps[i] takes it from version i to i + 1, each in
  // its own write transaction that re-reads the version first, so several processes opening the
  // file at once apply each step exactly once. Versions live in table component_schema
  // (component, version). A version newer than `steps` is refused (kCorruption). Never edit a
  // shipped step: add one.
  Status Migrate(std::string_view component, std::span<const char* const> steps);
  Result<int> ComponentVersion(std::string_view component);

  const std::string& path() const { return path_; }

 private:
  Database(std::string path, Options options) : path_(std::move(path)), options_(options) {}
  void Release(std::unique_ptr<Connection> conn);

  const std::string path_;
  const Options options_;
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::mutex write_mu_;
};

}  // namespace ingot::catalog::sqlite
