#include "boot/machines_service.h"

#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"

namespace ingot::boot {

Result<Resolution> MachineService::Resolve(const Machine& machine) {
  INGOT_ASSIGN_OR_RETURN(std::vector<Profile> profiles, repo_.ListProfiles());
  MatchResult match = Match(machine, profiles);
  Resolution r{machine, std::nullopt, match.why, match.specificity, false};
  if (match.profile != nullptr) r.profile = *match.profile;
  return r;
}

Result<Resolution> MachineService::Identify(const BootRequest& req) {
  std::string mac, uuid;
  if (!req.mac.empty()) {
    auto m = NormalizeMac(req.mac);
    if (!m) return InvalidArgument("mac '" + req.mac + "' is not a MAC address");
    mac = *m;
  }
  if (!req.uuid.empty()) {
    // Firmware without an SMBIOS UUID reports nothing or all zeros: not an identity.
    auto u = NormalizeUuid(req.uuid);
    if (u && *u != "00000000-0000-0000-0000-000000000000" &&
        *u != "ffffffff-ffff-ffff-ffff-ffffffffffff") {
      uuid = *u;
    }
  }
  if (mac.empty() && uuid.empty()) {
    return InvalidArgument("a booting machine must say its mac or its SMBIOS uuid");
  }
  const int64_t now = NowMicros();
  bool created = false;
  Machine m;
  for (int attempt = 0;; ++attempt) {
    INGOT_ASSIGN_OR_RETURN(std::optional<Machine> found, repo_.FindMachine(mac, uuid));
    if (found) {
      m = std::move(*found);
      break;
    }
    m = Machine{};
    m.id = NewUuid();
    m.mac = mac;
    m.uuid = uuid;
    m.serial = req.serial;
    m.hostname = req.hostname;
    m.arch = req.arch;
    m.state = MachineState::kDiscovered;
    m.first_seen = m.last_seen = m.created_at = m.updated_at = now;
    m.last_address = req.address;
    if (Status s = NormalizeMachine(m); !s.ok()) return s;
    Status s = repo_.CreateMachine(m);
    if (s.ok()) {
      created = true;
      log::Info("boot.machine_discovered",
                {{"id", m.id}, {"mac", m.mac}, {"uuid", m.uuid}, {"address", req.address}});
      break;
    }
    // Another request for the same machine won the race: read its record.
    if (s.code() != Code::kAlreadyExists || attempt > 0) return s;
  }
  INGOT_ASSIGN_OR_RETURN(Resolution r, Resolve(m));
  r.discovered_now = created;
  // Learn what the machine says of itself where the record has nothing yet.
  Machine updated = r.machine;
  if (updated.mac.empty()) updated.mac = mac;
  if (updated.uuid.empty()) updated.uuid = uuid;
  if (updated.serial.empty() && req.serial.size() <= 255) updated.serial = req.serial;
  if (updated.hostname.empty() && req.hostname.size() <= 255) updated.hostname = req.hostname;
  if (!req.arch.empty() && req.arch.size() <= 64) updated.arch = req.arch;
  updated.last_seen = now;
  updated.last_address = req.address;
  updated.last_profile = r.profile ? r.profile->name : "";
  if (NormalizeMachine(updated).ok()) {
    Status s = repo_.UpdateMachine(updated);
    if (s.ok()) {
      r.machine = std::move(updated);
    } else if (s.code() != Code::kAlreadyExists && s.code() != Code::kNotFound) {
      return s;
    }
  }
  return r;
}

Status MachineService::CheckDefault(const Profile& p) {
  if (!p.is_default) return Status::Ok();
  INGOT_ASSIGN_OR_RETURN(std::vector<Profile> all, repo_.ListProfiles());
  for (const Profile& o : all) {
    if (o.is_default && o.name != p.name) {
      return Conflict("profile '" + o.name + "' is the default already; unset it first");
    }
  }
  return Status::Ok();
}

Result<Profile> MachineService::CreateProfile(Profile p) {
  INGOT_RETURN_IF_ERROR(ValidateProfile(p));
  INGOT_RETURN_IF_ERROR(CheckDefault(p));
  p.created_at = p.updated_at = NowMicros();
  INGOT_RETURN_IF_ERROR(repo_.CreateProfile(p));
  return p;
}

Result<Profile> MachineService::ReplaceProfile(Profile p) {
  INGOT_RETURN_IF_ERROR(ValidateProfile(p));
  INGOT_ASSIGN_OR_RETURN(Profile old, repo_.GetProfile(p.name));
  INGOT_RETURN_IF_ERROR(CheckDefault(p));
  p.created_at = old.created_at;
  p.updated_at = NowMicros();
  INGOT_RETURN_IF_ERROR(repo_.UpdateProfile(p));
  return p;
}

Status MachineService::CheckProfileExists(const Machine& m) {
  if (m.profile.empty()) return Status::Ok();
  auto p = repo_.GetProfile(m.profile);
  if (p.ok()) return Status::Ok();
  if (p.status().code() == Code::kNotFound) {
    return InvalidArgument("there is no profile '" + m.profile + "' to assign");
  }
  return p.status();
}

Result<Machine> MachineService::CreateMachine(Machine m) {
  INGOT_RETURN_IF_ERROR(NormalizeMachine(m));
  INGOT_RETURN_IF_ERROR(CheckProfileExists(m));
  m.id = NewUuid();
  m.state = m.profile.empty() ? MachineState::kDiscovered : MachineState::kAssigned;
  m.created_at = m.updated_at = NowMicros();
  m.first_seen = m.last_seen = 0;
  INGOT_RETURN_IF_ERROR(repo_.CreateMachine(m));
  return m;
}

Result<Machine> MachineService::ReplaceMachine(Machine m) {
  INGOT_RETURN_IF_ERROR(NormalizeMachine(m));
  INGOT_RETURN_IF_ERROR(CheckProfileExists(m));
  INGOT_ASSIGN_OR_RETURN(Machine old, repo_.GetMachine(m.id));
  m.state = m.profile.empty() ? MachineState::kDiscovered : MachineState::kAssigned;
  m.first_seen = old.first_seen;
  m.last_seen = old.last_seen;
  m.last_address = old.last_address;
  m.last_profile = old.last_profile;
  m.created_at = old.created_at;
  m.updated_at = NowMicros();
  INGOT_RETURN_IF_ERROR(repo_.UpdateMachine(m));
  return m;
}

}  // namespace ingot::boot
