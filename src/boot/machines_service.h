// The use cases of per-machine boot: the only writer of profile and machine records.
//
//   - Identify: a machine asks to boot (boot.ipxe?mac=…&uuid=…, a DHCP request, a metadata fetch):
//     find its record by MAC, then UUID — or record it as discovered —, note when and from where
//     it asked, and match it to a profile (machines.h: Match).
//   - Profiles and machines: create, replace, delete, assign; every profile is validated (its
//     selector and templates) before it is stored, at most one is the default, and a machine is
//     only ever assigned a profile that exists.
//
// Thread-safe (the repository is).
#pragma once

#include <optional>
#include <string>

#include "boot/machines.h"

namespace ingot::boot {

// What a booting machine says about itself. mac or uuid is needed; both may come.
struct BootRequest {
  std::string mac;
  std::string uuid;
  std::string serial;
  std::string hostname;
  std::string arch;
  std::string address;  // where it asked from (no port)
};

struct Resolution {
  Machine machine;                // as stored after this request
  std::optional<Profile> profile;  // nullopt: the holding script
  MatchResult::Why why = MatchResult::Why::kNone;
  Specificity specificity;
  bool discovered_now = false;  // this request created the record
};

class MachineService {
 public:
  explicit MachineService(MachineRepository& repo) : repo_(repo) {}

  // kInvalidArgument when neither a valid mac nor a valid uuid is given.
  Result<Resolution> Identify(const BootRequest& req);
  // The profile `machine` would boot now, without recording anything.
  Result<Resolution> Resolve(const Machine& machine);
  // The machine a metadata request comes from: by id, or by the address it last booted from.
  Result<Machine> MachineById(std::string_view id) { return repo_.GetMachine(id); }
  Result<std::optional<Machine>> MachineByAddress(std::string_view address) {
    return repo_.FindMachineByAddress(address);
  }

  Result<Profile> CreateProfile(Profile p);
  Result<Profile> ReplaceProfile(Profile p);  // keeps created_at; kNotFound
  Result<Profile> GetProfile(std::string_view name) { return repo_.GetProfile(name); }
  Result<std::vector<Profile>> ListProfiles() { return repo_.ListProfiles(); }
  Status DeleteProfile(std::string_view name) { return repo_.DeleteProfile(name); }

  // An operator registers a machine ahead of its first boot (state assigned when it names a
  // profile).
  Result<Machine> CreateMachine(Machine m);
  // Replaces the operator's fields (identity, labels, variables, profile); keeps what the server
  // records (first_seen, last_seen, last_address). Naming a profile makes it assigned; clearing it
  // makes it discovered again.
  Result<Machine> ReplaceMachine(Machine m);
  Result<Machine> GetMachine(std::string_view id) { return repo_.GetMachine(id); }
  Result<std::vector<Machine>> ListMachines(std::optional<MachineState> state) {
    return repo_.ListMachines(state);
  }
  Status DeleteMachine(std::string_view id) { return repo_.DeleteMachine(id); }

 private:
  Status CheckDefault(const Profile& p);
  Status CheckProfileExists(const Machine& m);
  MachineRepository& repo_;
};

}  // namespace ingot::boot
