// OS volumes served over NBD and iSCSI: the nbd::ExportResolver and iscsi::TargetResolver of the
// deploy engine. The export name is the volume's name (the iSCSI target name ends with it); a client
// gets it only while the volume is attached, its address is in the volume's access list, and, over
// iSCSI, its initiator name is in the rule's initiator list when there is one (volume_store.h,
// ExportRule).
//
// Connections to one volume share one open OsVolume, whichever protocol they speak, so a reader sees
// the writer's writes at once;
// the volume is closed (and flushed) when its last connection ends, so a detached volume holds no
// lock and can be deleted.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "deploy/volume_store.h"
#include "iscsi/target.h"
#include "nbd/export.h"

namespace ingot::deploy {

class VolumeExports final : public nbd::ExportResolver, public iscsi::TargetResolver {
 public:
  // `store` must outlive this and every export it hands out.
  explicit VolumeExports(VolumeStore& store) : store_(store) {}

  Result<std::shared_ptr<nbd::Export>> Resolve(std::string_view name,
                                               std::string_view peer) override;
  std::vector<std::string> List(std::string_view peer) override;
  Result<std::shared_ptr<nbd::Export>> ResolveTarget(std::string_view volume,
                                                     std::string_view initiator,
                                                     std::string_view peer) override;
  std::vector<std::string> ListTargets(std::string_view initiator, std::string_view peer) override;

  // True while `name` is attached (what the daemon's watcher checks to end detached exports).
  bool StillAttached(const std::string& name) const;

 private:
  class VolumeExport;
  // `initiator`: nullptr for NBD (no initiator names).
  Result<std::shared_ptr<nbd::Export>> Open(std::string_view name, std::string_view peer,
                                            const std::string* initiator);
  VolumeStore& store_;
  // Guards `open_`, opening a volume and closing it, so a volume being closed (flushing, unlocking)
  // is never opened a second time at once.
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<VolumeExport>, std::less<>> open_;
};

}  // namespace ingot::deploy
