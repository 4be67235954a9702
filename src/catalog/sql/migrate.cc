#include "catalog/sql/backend.h"

namespace ingot::catalog::sql {
namespace {

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
      // The lock first: on PostgreSQL even CREATE TABLE IF NOT EXISTS races between two nodes.
      if (!s.dialect().MigrationLock().empty()) {
        INGOT_ASSIGN_OR_RETURN(auto r, s.Query(std::string(s.dialect().MigrationLock()), {}));
        INGOT_RETURN_IF_ERROR(r->Next().status());
      }
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

Result<int> SchemaVersion(Backend& backend) {
  int version = 0;
  INGOT_RETURN_IF_ERROR(backend.Read([&](Session& s) -> Status {
    INGOT_ASSIGN_OR_RETURN(version, VersionIn(s));
    return Status::Ok();
  }));
  return version;
}

}  // namespace ingot::catalog::sql
