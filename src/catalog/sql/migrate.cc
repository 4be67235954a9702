#include "catalog/sql/backend.h"

namespace ingot::catalog::sql {
namespace {

// The lock first: on PostgreSQL even CREATE TABLE IF NOT EXISTS races between two nodes.
Status TakeMigrationLock(Session& s) {
  if (s.dialect().MigrationLock().empty()) return Status::Ok();
  INGOT_ASSIGN_OR_RETURN(auto r, s.Query(std::string(s.dialect().MigrationLock()), {}));
  return r->Next().status();
}

Result<int> VersionIn(Session& s) {
  INGOT_ASSIGN_OR_RETURN(auto r, s.Query("SELECT max(version) FROM schema_version", {}));
  INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
  if (!row || r->IsNull(0)) return 0;
  return static_cast<int>(r->Int(0));
}

}  // namespace

Status Migrate(Backend& backend, const char* create_version_table,
               const std::vector<const char*>& steps) {
  const int latest = static_cast<int>(steps.size());
  while (true) {
    bool done = false;
    INGOT_RETURN_IF_ERROR(backend.Write([&](Session& s) -> Status {
      INGOT_RETURN_IF_ERROR(TakeMigrationLock(s));
      INGOT_RETURN_IF_ERROR(s.ExecScript(create_version_table));
      // Read inside the write transaction, under the lock: another process may have migrated
      // between our checks, and this step must be applied exactly once.
      INGOT_ASSIGN_OR_RETURN(int version, VersionIn(s));
      if (version > latest) {
        return Corruption("catalog schema version " + std::to_string(version) +
                          " is newer than this build knows (" + std::to_string(latest) +
                          "); refusing to open it");
      }
      if (version == latest) {
        done = true;
        return Status::Ok();
      }
      INGOT_RETURN_IF_ERROR(
          s.ExecScript(steps[version]).WithContext("schema migration " + std::to_string(version + 1)));
      INGOT_RETURN_IF_ERROR(s.Exec("DELETE FROM schema_version", {}).status());
      return s.Exec("INSERT INTO schema_version (version) VALUES (?)", {int64_t{version + 1}})
          .status();
    }));
    if (done) return Status::Ok();
  }
}

Status MigrateComponent(Backend& backend, std::string_view component,
                        const std::vector<const char*>& steps) {
  const int latest = static_cast<int>(steps.size());
  const std::string name(component);
  while (true) {
    bool done = false;
    INGOT_RETURN_IF_ERROR(backend.Write([&](Session& s) -> Status {
      INGOT_RETURN_IF_ERROR(TakeMigrationLock(s));
      INGOT_RETURN_IF_ERROR(
          s.ExecScript("CREATE TABLE IF NOT EXISTS component_schema ("
                       "component TEXT PRIMARY KEY NOT NULL, version BIGINT NOT NULL)"));
      INGOT_ASSIGN_OR_RETURN(
          auto r, s.Query("SELECT version FROM component_schema WHERE component = ?", {name}));
      INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
      const int version = row ? static_cast<int>(r->Int(0)) : 0;
      if (version > latest) {
        return Corruption(name + " schema version " + std::to_string(version) +
                          " is newer than this build knows (" + std::to_string(latest) +
                          "); refusing to open it");
      }
      if (version == latest) {
        done = true;
        return Status::Ok();
      }
      INGOT_RETURN_IF_ERROR(s.ExecScript(steps[version])
                                .WithContext(name + " schema migration " +
                                             std::to_string(version + 1)));
      return s.Exec("INSERT INTO component_schema (component, version) VALUES (?, ?) "
                    "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    {name, int64_t{version + 1}})
          .status();
    }));
    if (done) return Status::Ok();
  }
}

Result<int> SchemaVersion(Backend& backend) {
  int version = 0;
  INGOT_RETURN_IF_ERROR(backend.Read([&](Session& s) -> Status {
    INGOT_ASSIGN_OR_RETURN(version, VersionIn(s));
    return Status::Ok();
  }));
  return version;
}

}  // namespace ingot::catalog::sql
