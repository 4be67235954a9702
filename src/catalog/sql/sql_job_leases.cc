// SqlRepository's JobLeaseRepository half: the `job_leases` table (migration 5 of both engines).
//
// Acquiring is one write transaction: the row is created if missing (INSERT ... ON CONFLICT DO
// NOTHING, in both engines), then one conditional UPDATE takes it. On PostgreSQL two nodes racing
// for the same row serialize on its row lock and the second re-evaluates the WHERE clause against
// the first one's write (READ COMMITTED), so it changes nothing; on SQLite the write transaction is
// the only writer. Whoever changed the row holds the lease.
#include "catalog/sql/sql_repository.h"

namespace ingot::catalog {

using sql::Session;
using sql::Value;

namespace {

Result<JobLease> ReadJobLease(Session& s, const std::string& name) {
  INGOT_ASSIGN_OR_RETURN(
      auto r,
      s.Query("SELECT name, holder, until_at, done_at, progress FROM job_leases WHERE name = ?",
              {name}));
  INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
  if (!row) return NotFound("job lease " + name + " was never taken");
  JobLease l;
  l.name = r->Text(0);
  l.holder = r->OptText(1);
  l.until = r->Int(2);
  l.done_at = r->Int(3);
  l.cursor = r->Text(4);
  return l;
}

}  // namespace

Result<JobLease> SqlRepository::AcquireJobLease(const std::string& name, const std::string& holder,
                                                int64_t now, int64_t until, int64_t due_before) {
  JobLease out;
  INGOT_RETURN_IF_ERROR(backend().Write([&](Session& s) -> Status {
    INGOT_RETURN_IF_ERROR(
        s.Exec("INSERT INTO job_leases (name, holder, until_at, done_at, progress) "
               "VALUES (?, NULL, 0, 0, '') ON CONFLICT (name) DO NOTHING",
               {name})
            .status());
    INGOT_RETURN_IF_ERROR(
        s.Exec("UPDATE job_leases SET holder = ?, until_at = ? WHERE name = ? AND "
               "(holder IS NULL OR until_at < ? OR holder = ?) AND done_at <= ?",
               {holder, until, name, now, holder, due_before})
            .status());
    INGOT_ASSIGN_OR_RETURN(out, ReadJobLease(s, name));
    return Status::Ok();
  }));
  return out;
}

Status SqlRepository::RenewJobLease(const std::string& name, const std::string& holder,
                                    int64_t until) {
  return backend().Write([&](Session& s) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        int64_t changed, s.Exec("UPDATE job_leases SET until_at = ? WHERE name = ? AND holder = ?",
                                {until, name, holder}));
    if (changed == 0) return Conflict("job lease " + name + " is no longer held by " + holder);
    return Status::Ok();
  });
}

Status SqlRepository::ReleaseJobLease(const std::string& name, const std::string& holder,
                                      int64_t done_at, const std::string& cursor) {
  return backend().Write([&](Session& s) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        int64_t changed,
        s.Exec("UPDATE job_leases SET holder = NULL, until_at = 0, done_at = ?, progress = ? "
               "WHERE name = ? AND holder = ?",
               {done_at, cursor, name, holder}));
    if (changed == 0) return Conflict("job lease " + name + " is no longer held by " + holder);
    return Status::Ok();
  });
}

Result<JobLease> SqlRepository::GetJobLease(const std::string& name) {
  JobLease out;
  INGOT_RETURN_IF_ERROR(backend().Read([&](Session& s) -> Status {
    INGOT_ASSIGN_OR_RETURN(out, ReadJobLease(s, name));
    return Status::Ok();
  }));
  return out;
}

}  // namespace ingot::catalog
