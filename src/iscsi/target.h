// What the iSCSI target serves: the same nbd::Export objects the NBD server serves (nbd/export.h),
// so an OS volume is read and written in its copy-on-write format directly, with no block device or
// kernel target in between; and the TargetResolver that decides, per login, which volume a target
// name means for an initiator (its iSCSI name and its address).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "nbd/export.h"

namespace ingot::iscsi {

// Called from connection threads, concurrently.
class TargetResolver {
 public:
  virtual ~TargetResolver() = default;
  // The volume `volume` for `initiator` (a lowercased iSCSI name) at `peer` (numeric address).
  // Refusals as nbd::ExportResolver::Resolve: kNotFound (no such volume or not for this initiator:
  // one answer, so names do not leak), kPermissionDenied, kUnavailable (detached). Logins to one
  // volume should get one Export object, so they see each other's writes.
  virtual Result<std::shared_ptr<nbd::Export>> ResolveTarget(std::string_view volume,
                                                             std::string_view initiator,
                                                             std::string_view peer) = 0;
  // The volumes `initiator` at `peer` may see in a discovery session (SendTargets=All).
  virtual std::vector<std::string> ListTargets(std::string_view initiator,
                                               std::string_view peer) = 0;
};

}  // namespace ingot::iscsi
