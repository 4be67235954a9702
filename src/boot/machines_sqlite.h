// The machines and profiles repository in the catalog database (catalog::sqlite::Database,
// component "boot_machines"): one row per profile and per machine, each a JSON document
// (machines_json.h) beside the columns that are looked up (machine mac, uuid, address, state;
// the profile a machine is assigned), with the uniqueness of a MAC and a UUID kept by the database.
#pragma once

#include <memory>

#include "boot/machines.h"
#include "catalog/sqlite/database.h"

namespace ingot::boot {

class SqliteMachineRepository final : public MachineRepository {
 public:
  // Migrates the component's tables.
  static Result<std::unique_ptr<SqliteMachineRepository>> Open(
      std::shared_ptr<catalog::sqlite::Database> db);

  Status CreateProfile(const Profile& p) override;
  Status UpdateProfile(const Profile& p) override;
  Result<Profile> GetProfile(std::string_view name) override;
  Result<std::vector<Profile>> ListProfiles() override;
  Status DeleteProfile(std::string_view name) override;

  Status CreateMachine(const Machine& m) override;
  Status UpdateMachine(const Machine& m) override;
  Result<Machine> GetMachine(std::string_view id) override;
  Result<std::optional<Machine>> FindMachine(std::string_view mac, std::string_view uuid) override;
  Result<std::optional<Machine>> FindMachineByAddress(std::string_view address) override;
  Result<std::vector<Machine>> ListMachines(std::optional<MachineState> state) override;
  Status DeleteMachine(std::string_view id) override;

 private:
  explicit SqliteMachineRepository(std::shared_ptr<catalog::sqlite::Database> db)
      : db_(std::move(db)) {}
  std::shared_ptr<catalog::sqlite::Database> db_;
};

}  // namespace ingot::boot
