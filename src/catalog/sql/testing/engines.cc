#include "catalog/sql/testing/engines.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "catalog/postgres/pg_repository.h"
#include "catalog/sqlite/sqlite_repository.h"

#ifndef INGOT_SOURCE_DIR
#error "INGOT_SOURCE_DIR must name the source tree (for tests/lib/postgres.sh)"
#endif

namespace ingot::catalog::testing {
namespace {

struct Server {
  std::mutex mu;
  bool tried = false;
  std::string dir;  // set when we started one
  Result<std::string> dsn = Unsupported("not started");
};

Server& TheServer() {
  static Server s;
  return s;
}

std::string Script() { return std::string(INGOT_SOURCE_DIR) + "/tests/lib/postgres.sh"; }

void StopServer() {
  Server& s = TheServer();
  if (s.dir.empty()) return;
  std::string cmd = "bash '" + Script() + "' stop '" + s.dir + "' >/dev/null 2>&1";
  (void)system(cmd.c_str());
  std::filesystem::remove_all(s.dir);
  s.dir.clear();
}

Result<std::string> Start() {
  if (const char* dsn = getenv("INGOT_TEST_PG_DSN"); dsn != nullptr && *dsn != '\0') {
    return std::string(dsn);
  }
  char tmpl[] = "/tmp/ingot-catalog-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return IoError("mkdtemp");
  std::string dir = tmpl;
  std::string cmd = "bash '" + Script() + "' start '" + dir + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return IoError("popen " + cmd);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int status = pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  if (rc == 77) {
    std::filesystem::remove_all(dir);
    return Unsupported(
        "PostgreSQL server binaries (initdb, pg_ctl) are not installed, so the PostgreSQL half of "
        "the catalog tests is skipped: apt-get install postgresql-15 (scripts/install-deps.sh)");
  }
  TheServer().dir = dir;
  atexit(StopServer);
  if (rc != 0 || out.rfind("postgresql://", 0) != 0) {
    return Internal("tests/lib/postgres.sh start failed (exit " + std::to_string(rc) +
                    "); its log is in " + dir);
  }
  return out;
}

Status PgExec(const std::string& dsn, const std::string& options, const std::string& sql) {
  const char* keys[] = {"dbname", "options", nullptr};
  const char* values[] = {dsn.c_str(), options.c_str(), nullptr};
  PGconn* pg = PQconnectdbParams(keys, values, 1);
  if (PQstatus(pg) != CONNECTION_OK) {
    std::string m = PQerrorMessage(pg);
    PQfinish(pg);
    return Unavailable("connect: " + m);
  }
  PGresult* r = PQexec(pg, sql.c_str());
  ExecStatusType st = PQresultStatus(r);
  std::string m = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(pg);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Internal(sql + ": " + m);
  return Status::Ok();
}

std::atomic<int> schemas{0};

}  // namespace

std::vector<std::string> Engines() { return {"sqlite", "postgres"}; }

Result<std::string> TestPostgresDsn() {
  Server& s = TheServer();
  std::lock_guard lock(s.mu);
  if (!s.tried) {
    s.tried = true;
    s.dsn = Start();
  }
  return s.dsn;
}

Result<std::unique_ptr<EngineDatabase>> EngineDatabase::Create(const std::string& engine) {
  std::unique_ptr<EngineDatabase> db(new EngineDatabase);
  db->engine_ = engine;
  if (engine == "sqlite") {
    char tmpl[] = "/tmp/ingot-catalog-test-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return IoError("mkdtemp");
    db->dir_ = tmpl;
    db->where_ = db->dir_ + "/catalog.db";
    return db;
  }
  if (engine != "postgres") return InvalidArgument("unknown engine " + engine);
  INGOT_ASSIGN_OR_RETURN(db->where_, TestPostgresDsn());
  db->schema_ = "t" + std::to_string(getpid()) + "_" + std::to_string(++schemas);
  INGOT_RETURN_IF_ERROR(PgExec(db->where_, "", "DROP SCHEMA IF EXISTS " + db->schema_ +
                                                   " CASCADE; CREATE SCHEMA " + db->schema_));
  return db;
}

EngineDatabase::~EngineDatabase() {
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
  if (!schema_.empty()) (void)PgExec(where_, "", "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
}

Result<std::unique_ptr<SqlRepository>> EngineDatabase::Open(int pool_size) const {
  if (engine_ == "sqlite") {
    INGOT_ASSIGN_OR_RETURN(auto repo, SqliteImageRepository::Open(
                                          where_, SqliteImageRepository::Options{pool_size}));
    return std::unique_ptr<SqlRepository>(std::move(repo));
  }
  postgres::PgOptions options{.dsn = where_, .pool_size = pool_size};
  options.params["options"] = PgOptionsValue();
  INGOT_ASSIGN_OR_RETURN(auto repo, PostgresImageRepository::Open(options));
  return std::unique_ptr<SqlRepository>(std::move(repo));
}

Status EngineDatabase::Exec(const std::string& sql) const {
  if (engine_ == "postgres") return PgExec(where_, PgOptionsValue(), sql);
  INGOT_ASSIGN_OR_RETURN(auto db, sqlite::Database::Open(where_));
  return db->Write([&](sqlite::Connection& c) { return c.Exec(sql.c_str()); });
}

int EngineDatabase::LatestSchemaVersion() const {
  return engine_ == "sqlite" ? SqliteImageRepository::LatestSchemaVersion()
                             : PostgresImageRepository::LatestSchemaVersion();
}

}  // namespace ingot::catalog::testing
