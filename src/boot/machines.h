// Machines and their boot profiles: the domain of per-machine network boot (what matchbox's groups
// and profiles, Tinkerbell's hardware records and RackHD's workflow engine are used for).
//
// A Profile says what a machine boots: a kernel, initrds and a command line (paths beneath the
// boot root, paths inside an OS tree `/{name}/{version}/…`, or absolute URLs), or a published disk
// image (iPXE sanboots it over HTTP), or whole iPXE/GRUB scripts of its own; its templates (templates.h) are filled from the machine's variables. A
// profile may carry a selector, an expression over a machine's facts, and one profile may be the
// default.
//
// A Machine is what Ingot knows of one computer: its identity (MAC, SMBIOS UUID, serial), labels,
// variables, the profile an operator assigned, and when it last asked to boot. A machine that asks
// and is not known is recorded as `discovered`; assigning it a profile makes it `assigned`.
//
// Which profile a machine boots (Match): the profile its record names; else the profile whose
// selector matches it most specifically; else the default profile; else none — the caller then
// answers with the holding script (the machine waits and asks again until an operator assigns it).
//
// Selector grammar (case-insensitive keywords):
//   expr   := conj ( ("or" | "||") conj )*
//   conj   := factor ( ("and" | "&&") factor )*
//   factor := key "=" value | key "!=" value | key "in" "(" value ("," value)* ")" | "(" expr ")"
//   key    := mac | uuid | serial | hostname | arch | label.NAME | NAME (a bare NAME is a label)
//   value  := a word of [A-Za-z0-9._:/@+-] or a "double-quoted string"
// MACs compare in any of the usual spellings (aa:bb…, AA-BB…), UUIDs case-insensitively.
// Specificity: a matching expression scores (identity terms, other terms) — mac, uuid and serial
// are identity terms; `and` adds its sides' scores, `or` takes the best matching side's; `!=`
// counts nothing. The higher score wins (identity first); equal scores go to the profile whose
// name sorts first, so the choice never depends on storage order.
//
// Thread-safe: plain values; MachineRepository implementations are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boot/templates.h"
#include "common/result.h"

namespace ingot::boot {

// ------------------------------------------------------------------------------------- selectors
struct Specificity {
  int identity = 0;  // mac, uuid, serial terms
  int other = 0;     // labels, hostname, arch
  auto operator<=>(const Specificity&) const = default;
};

// What a selector is evaluated against: "mac", "uuid", "serial", "hostname", "arch" and
// "label.NAME". Values as the machine reported them (MACs and UUIDs normalised).
using Facts = std::map<std::string, std::string, std::less<>>;

class Selector {
 public:
  // kInvalidArgument with the position of the first error.
  static Result<Selector> Parse(std::string_view text);
  // nullopt: no match; else how specifically it matched.
  std::optional<Specificity> Match(const Facts& facts) const;
  const std::string& text() const { return text_; }

  struct Node;  // the parsed expression

 private:
  std::string text_;
  std::shared_ptr<const Node> root_;
};

// "aa:bb:cc:dd:ee:ff" from "AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff", "aabbccddeeff"; nullopt if it is
// not a 48-bit MAC.
std::optional<std::string> NormalizeMac(std::string_view text);
// A lower-case canonical SMBIOS UUID; nullopt if it is not one.
std::optional<std::string> NormalizeUuid(std::string_view text);

// --------------------------------------------------------------------------------------- records
struct OsTreeRef {
  std::string name;
  std::string version;
};

struct Profile {
  std::string name;  // [A-Za-z0-9._-]{1,64}
  std::string description;
  std::string selector;      // empty: matched only by assignment (or as the default)
  bool is_default = false;   // at most one profile is the default
  std::optional<OsTreeRef> os;  // kernel and initrds are then paths inside /{name}/{version}/
  // A published catalog image (the boot content's /images/{name}): iPXE boots it as a SAN disk
  // over HTTP (`sanboot`), instead of a kernel.
  std::string image;
  std::string kernel;        // a path beneath the boot root (or the OS tree), or an http(s) URL
  std::vector<std::string> initrds;
  std::string args;          // template (kIpxe)
  std::string ipxe;          // a whole iPXE script template, instead of the generated one
  std::string grub;          // a whole GRUB script template, instead of the generated one
  std::string user_data;     // cloud-init templates (kText)
  std::string vendor_data;
  Variables variables;       // profile variables (a machine's own override them)
  int64_t created_at = 0;    // micros since the epoch
  int64_t updated_at = 0;
};

enum class MachineState { kDiscovered, kAssigned };
std::string_view StateName(MachineState s);
std::optional<MachineState> ParseState(std::string_view s);

struct Machine {
  std::string id;            // a UUID given by Ingot
  std::string mac;           // normalised; may be empty when known by UUID only
  std::string uuid;          // SMBIOS UUID, normalised; may be empty
  std::string serial;
  std::string hostname;
  std::string arch;          // as last reported ("x86_64", "arm64", iPXE's ${buildarch})
  std::map<std::string, std::string, std::less<>> labels;
  Variables variables;
  std::string profile;       // assigned by an operator; empty: matched by selectors
  MachineState state = MachineState::kDiscovered;
  std::string last_address;  // the address it last asked from (no port)
  std::string last_profile;  // what it was last given ("" for the holding script)
  int64_t first_seen = 0;    // micros
  int64_t last_seen = 0;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

// Checks names, the selector and every template of `p` (so a broken profile is refused when it is
// saved, not when a machine boots). kInvalidArgument with a message naming the field.
Status ValidateProfile(const Profile& p);
// Checks and normalises mac/uuid, label and variable names. Needs a mac or a uuid.
Status NormalizeMachine(Machine& m);

// The facts a selector sees for `m`.
Facts FactsOf(const Machine& m);

// Variables for templates: the built-ins (mac, uuid, serial, hostname, arch, id, profile, ip,
// label.NAME); the profile's variables fill those the machine left empty and add their own; the
// machine's own variables win over both; `extra` (base_url, …) last.
Variables VariablesFor(const Machine& m, const Profile* p, const Variables& extra);

// --------------------------------------------------------------------------------------- matching
struct MatchResult {
  const Profile* profile = nullptr;  // null: nothing matches (the holding script)
  enum class Why { kAssigned, kSelector, kDefault, kNone } why = Why::kNone;
  Specificity specificity;
};
std::string_view WhyName(MatchResult::Why why);

// Which of `profiles` `machine` boots (see the file comment). `profiles` need not be sorted. A
// machine assigned a profile that no longer exists falls through to selectors.
MatchResult Match(const Machine& machine, const std::vector<Profile>& profiles);

// -------------------------------------------------------------------------------------- repository
// Where profiles and machines are kept. kNotFound / kAlreadyExists / kConflict as named below;
// kIoError etc. from the store.
class MachineRepository {
 public:
  virtual ~MachineRepository() = default;

  virtual Status CreateProfile(const Profile& p) = 0;   // kAlreadyExists
  virtual Status UpdateProfile(const Profile& p) = 0;   // kNotFound
  virtual Result<Profile> GetProfile(std::string_view name) = 0;
  virtual Result<std::vector<Profile>> ListProfiles() = 0;  // by name
  // kNotFound; kConflict while machines are assigned to it.
  virtual Status DeleteProfile(std::string_view name) = 0;

  // kAlreadyExists when another machine has the same mac or uuid.
  virtual Status CreateMachine(const Machine& m) = 0;
  virtual Status UpdateMachine(const Machine& m) = 0;  // kNotFound; kAlreadyExists as above
  virtual Result<Machine> GetMachine(std::string_view id) = 0;
  // The machine with this mac, else the one with this uuid (either may be empty).
  virtual Result<std::optional<Machine>> FindMachine(std::string_view mac, std::string_view uuid) = 0;
  // The machine that last asked from this address (most recent first).
  virtual Result<std::optional<Machine>> FindMachineByAddress(std::string_view address) = 0;
  virtual Result<std::vector<Machine>> ListMachines(std::optional<MachineState> state) = 0;
  virtual Status DeleteMachine(std::string_view id) = 0;  // kNotFound
};

}  // namespace ingot::boot
