// The OS volumes of this node: a directory of volume directories (os_volume.h), one per name.
//
// Crash safety: a volume is built in a hidden directory ".new-<name>-<random>" and published by one
// rename (RENAME_NOREPLACE) followed by an fsync of the store's directory; delete renames it to
// ".del-…" first. A crash leaves at worst a hidden directory, which Open() removes, so a half-made
// volume is never listed or served, and a half-deleted one never comes back.
//
// Several processes may use one store (the daemon serves volumes; `ingotd volume …` creates them):
// creation and deletion are atomic renames, attachment changes are atomic file replacements, and a
// volume open for serving holds an exclusive lock that Delete() respects.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "deploy/os_volume.h"

namespace ingot::deploy {

// A volume name: 1-128 of [A-Za-z0-9._-], not starting with '.' (it is a directory name and the
// NBD export name).
bool ValidVolumeName(std::string_view name);

struct CloneRequest {
  std::string name;
  std::string base_path;                  // the golden image file
  std::optional<formats::Format> format;  // nullopt: detect
  uint64_t size = 0;                      // 0: the golden image's virtual size; larger grows it
  uint32_t cluster_size = 65536;
};

// Who may reach a volume over the network, and whether it is served now.
struct ExportRule {
  bool attached = false;
  // Client addresses allowed: "10.0.0.5", "fd00::7", or prefixes "10.0.0.0/24", "0.0.0.0/0".
  // Applies to NBD and iSCSI alike.
  std::vector<std::string> allow;
  // iSCSI initiator names allowed (lowercased, "iqn.1993-08.org.debian:01:abc"); empty: any
  // initiator from an allowed address. NBD has no initiator names, so this does not restrict it.
  // On disk as an "initiators=" line written only when non-empty, so rules without one are
  // byte-identical to those older versions wrote, and older versions ignore the line.
  std::vector<std::string> initiators;
};
Result<ExportRule> ParseExportRule(std::string_view text);
std::string FormatExportRule(const ExportRule& rule);
// True when `address` (numeric) is in one of the rule's entries. Entries that do not parse match
// nothing (they were checked when set).
bool AddressAllowed(const ExportRule& rule, std::string_view address);
// kInvalidArgument naming the entry that is not an address or prefix.
Status CheckAllowList(const std::vector<std::string>& allow);
// True when the rule names no initiators, or names `initiator` (compared without case).
bool InitiatorAllowed(const ExportRule& rule, std::string_view initiator);
// kInvalidArgument naming the entry that is not an iSCSI name (iqn., eui., naa.).
Status CheckInitiatorList(const std::vector<std::string>& initiators);

struct VolumeInfo {
  std::string name;
  VolumeMeta meta;
  ExportRule rule;
};

class VolumeStore {
 public:
  // Opens (creating if missing) the store at `root` and removes what a crash left behind.
  static Result<std::unique_ptr<VolumeStore>> Open(const std::string& root);

  // Clones a golden image into a new volume. kAlreadyExists for a taken name, kInvalidArgument for
  // a bad name or size, the formats/ refusal for a hostile image. Its cost does not depend on the
  // image's size. The new volume is detached.
  Result<VolumeInfo> Create(const CloneRequest& request);
  // kConflict when the volume is open (served); kNotFound when there is none.
  Status Delete(const std::string& name);
  Result<VolumeInfo> Get(const std::string& name) const;
  Result<std::vector<VolumeInfo>> List() const;
  // Replaces the volume's export rule atomically.
  Status SetExportRule(const std::string& name, const ExportRule& rule);
  Result<ExportRule> GetExportRule(const std::string& name) const;
  // Opens the volume for serving (exclusive to this process; see OsVolume::Open).
  Result<std::unique_ptr<OsVolume>> OpenVolume(const std::string& name);

  const std::string& root() const { return root_; }

 private:
  explicit VolumeStore(std::string root) : root_(std::move(root)) {}
  std::string Dir(const std::string& name) const { return root_ + "/" + name; }
  std::string root_;
};

}  // namespace ingot::deploy
