#include "catalog/sqlite/database.h"

namespace ingot::catalog::sqlite {

Database::Lease::~Lease() {
  if (conn_) db_->Release(std::move(conn_));
}

Result<std::shared_ptr<Database>> Database::Open(const std::string& path, Options options) {
  std::shared_ptr<Database> db(new Database(path, options));
  INGOT_ASSIGN_OR_RETURN(auto conn, Connection::Open(path));
  {
    // In a write transaction (BEGIN IMMEDIATE waits for the lock): as a bare statement it starts
    // as a read and upgrades, which SQLite refuses at once, without waiting, when another opener
    // wrote in between.
    INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*conn, Transaction::Kind::kWrite));
    INGOT_RETURN_IF_ERROR(conn->Exec(
        "CREATE TABLE IF NOT EXISTS component_schema (component TEXT PRIMARY KEY NOT NULL, "
        "version INTEGER NOT NULL) WITHOUT ROWID"));
    INGOT_RETURN_IF_ERROR(tx.Commit());
  }
  db->Release(std::move(conn));
  return db;
}

Result<Database::Lease> Database::Acquire() {
  {
    std::lock_guard lock(pool_mu_);
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
  }
  INGOT_ASSIGN_OR_RETURN(auto conn, Connection::Open(path_));
  return Lease(this, std::move(conn));
}

void Database::Release(std::unique_ptr<Connection> conn) {
  std::lock_guard lock(pool_mu_);
  if (static_cast<int>(idle_.size()) < options_.pool_size) idle_.push_back(std::move(conn));
}

Status Database::Write(const std::function<Status(Connection&)>& body) {
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*lease, Transaction::Kind::kWrite));
  INGOT_RETURN_IF_ERROR(body(*lease));
  return tx.Commit();
}

Status Database::Read(const std::function<Status(Connection&)>& body) {
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*lease, Transaction::Kind::kRead));
  INGOT_RETURN_IF_ERROR(body(*lease));
  return tx.Commit();
}

namespace {
Result<int> VersionIn(Connection& c, std::string_view component) {
  INGOT_ASSIGN_OR_RETURN(Statement st,
                         c.Prepare("SELECT version FROM component_schema WHERE component = ?"));
  INGOT_RETURN_IF_ERROR(st.Bind(1, std::string(component)));
  INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<int>(st.Int(0)) : 0;
}
}  // namespace

Result<int> Database::ComponentVersion(std::string_view component) {
  int version = 0;
  INGOT_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(version, VersionIn(c, component));
    return Status::Ok();
  }));
  return version;
}

Status Database::Migrate(std::string_view component, std::span<const char* const> steps) {
  const int latest = static_cast<int>(steps.size());
  while (true) {
    bool done = false;
    Status s = Write([&](Connection& c) -> Status {
      INGOT_ASSIGN_OR_RETURN(int version, VersionIn(c, component));
      if (version > latest) {
        return Corruption(std::string(component) + " schema version " + std::to_string(version) +
                          " is newer than this build knows (" + std::to_string(latest) +
                          "); refusing to open it");
      }
      if (version == latest) {
        done = true;
        return Status::Ok();
      }
      INGOT_RETURN_IF_ERROR(c.Exec(steps[version]).WithContext(
          std::string(component) + " schema migration " + std::to_string(version + 1)));
      INGOT_ASSIGN_OR_RETURN(
          Statement st,
          c.Prepare("INSERT INTO component_schema (component, version) VALUES (?, ?) "
                    "ON CONFLICT (component) DO UPDATE SET version = excluded.version"));
      INGOT_RETURN_IF_ERROR(st.Bind(1, std::string(component)));
      INGOT_RETURN_IF_ERROR(st.Bind(2, int64_t{version + 1}));
      return st.Run();
    });
    INGOT_RETURN_IF_ERROR(s.WithContext("open " + path_));
    if (done) return Status::Ok();
  }
}

}  // namespace ingot::catalog::sqlite
