// Named leases: cluster-wide jobs that must run on one node at a time, such as the scrubber
// (service/scrubber.h). Several ingotd nodes share one catalog; a node runs the job while it holds
// the job's lease, renews it while it works, and records when it finished (and where it got to),
// so that the job runs once per interval across the cluster, whichever node takes it, and the next
// holder picks up where the last one stopped. A node that dies stops renewing; once `until` has
// passed another node may take the lease.
//
// Thread safety: every method may be called concurrently. Each call is one transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.h"

namespace ingot::catalog {

struct JobLease {
  std::string name;
  std::optional<std::string> holder;  // the node holding it; nullopt when released
  int64_t until = 0;                  // microseconds since the epoch: the holder's claim ends then
  int64_t done_at = 0;                // when a holder last finished the job (Release); 0: never
  std::string cursor;  // where the job got to, for the next holder (opaque to the catalog)
};

class JobLeaseRepository {
 public:
  virtual ~JobLeaseRepository() = default;

  // Takes lease `name` for `holder` until `until`, when it is free — never taken, released, or
  // expired before `now` (or already `holder`'s) — and its job is due: the last Release was at or
  // before `due_before`. The lease row is created on first use. Returns the lease as it stands
  // after the attempt: taken when its holder is `holder`.
  virtual Result<JobLease> AcquireJobLease(const std::string& name, const std::string& holder,
                                           int64_t now, int64_t until, int64_t due_before) = 0;
  // Extends a lease `holder` holds. kConflict when it no longer does (expired and taken over):
  // the caller must stop the job.
  virtual Status RenewJobLease(const std::string& name, const std::string& holder,
                               int64_t until) = 0;
  // Ends `holder`'s lease, recording when the job finished and its cursor. kConflict when the
  // lease is no longer `holder`'s.
  virtual Status ReleaseJobLease(const std::string& name, const std::string& holder,
                                 int64_t done_at, const std::string& cursor) = 0;
  // kNotFound when the lease was never taken.
  virtual Result<JobLease> GetJobLease(const std::string& name) = 0;
};

}  // namespace ingot::catalog
