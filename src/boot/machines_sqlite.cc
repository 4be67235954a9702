#include "boot/machines_sqlite.h"

#include <array>

#include "boot/machines_json.h"

namespace ingot::boot {
namespace json = boost::json;
using catalog::sqlite::Connection;
using catalog::sqlite::Statement;
using catalog::sqlite::Value;

namespace {

// Never edit a shipped step: add one.
constexpr std::array<const char*, 1> kSteps = {
    "CREATE TABLE boot_profiles ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  doc TEXT NOT NULL);"
    "CREATE TABLE boot_machines ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  mac TEXT UNIQUE,"
    "  uuid TEXT UNIQUE,"
    "  profile TEXT,"
    "  state TEXT NOT NULL,"
    "  last_address TEXT,"
    "  last_seen INTEGER NOT NULL DEFAULT 0,"
    "  doc TEXT NOT NULL);"
    "CREATE INDEX boot_machines_profile ON boot_machines (profile);"
    "CREATE INDEX boot_machines_address ON boot_machines (last_address, last_seen);",
};

Value OrNull(std::string_view s) {
  if (s.empty()) return nullptr;
  return std::string(s);
}

Result<Profile> ProfileOf(const std::string& doc) {
  boost::system::error_code ec;
  json::value v = json::parse(doc, ec);
  if (ec) return Corruption("a stored boot profile is not JSON");
  return ProfileFromJson(v, /*stored=*/true);
}

Result<Machine> MachineOf(const std::string& id, const std::string& doc) {
  boost::system::error_code ec;
  json::value v = json::parse(doc, ec);
  if (ec) return Corruption("stored boot machine " + id + " is not JSON");
  auto m = MachineFromJson(v, /*stored=*/true);
  if (!m.ok()) return Corruption("stored boot machine " + id + ": " + m.status().message());
  return m;
}

std::vector<Value> MachineRow(const Machine& m) {
  return {m.id,
          OrNull(m.mac),
          OrNull(m.uuid),
          OrNull(m.profile),
          std::string(StateName(m.state)),
          OrNull(m.last_address),
          m.last_seen,
          json::serialize(MachineToJson(m))};
}

// A UNIQUE violation on mac or uuid is the caller's conflict, not a server fault.
Status MachineWriteStatus(Status s, const Machine& m) {
  if (s.ok() || s.code() != Code::kAlreadyExists) return s;
  return AlreadyExists("another machine already has mac " + (m.mac.empty() ? "-" : m.mac) +
                       " or uuid " + (m.uuid.empty() ? "-" : m.uuid));
}

}  // namespace

Result<std::unique_ptr<SqliteMachineRepository>> SqliteMachineRepository::Open(
    std::shared_ptr<catalog::sqlite::Database> db) {
  INGOT_RETURN_IF_ERROR(db->Migrate("boot_machines", kSteps));
  return std::unique_ptr<SqliteMachineRepository>(new SqliteMachineRepository(std::move(db)));
}

Status SqliteMachineRepository::CreateProfile(const Profile& p) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st,
                           c.Prepare("INSERT INTO boot_profiles (name, doc) VALUES (?, ?) "
                                     "ON CONFLICT (name) DO NOTHING"));
    INGOT_RETURN_IF_ERROR(st.BindAll({p.name, json::serialize(ProfileToJson(p))}));
    INGOT_RETURN_IF_ERROR(st.Run());
    if (c.Changes() == 0) return AlreadyExists("profile '" + p.name + "' exists");
    return Status::Ok();
  });
}

Status SqliteMachineRepository::UpdateProfile(const Profile& p) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("UPDATE boot_profiles SET doc = ? WHERE name = ?"));
    INGOT_RETURN_IF_ERROR(st.BindAll({json::serialize(ProfileToJson(p)), p.name}));
    INGOT_RETURN_IF_ERROR(st.Run());
    if (c.Changes() == 0) return NotFound("no profile '" + p.name + "'");
    return Status::Ok();
  });
}

Result<Profile> SqliteMachineRepository::GetProfile(std::string_view name) {
  std::optional<std::string> doc;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("SELECT doc FROM boot_profiles WHERE name = ?"));
    INGOT_RETURN_IF_ERROR(st.Bind(1, std::string(name)));
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) doc = st.Text(0);
    return Status::Ok();
  }));
  if (!doc) return NotFound("no profile '" + std::string(name) + "'");
  return ProfileOf(*doc);
}

Result<std::vector<Profile>> SqliteMachineRepository::ListProfiles() {
  std::vector<std::string> docs;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("SELECT doc FROM boot_profiles ORDER BY name"));
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      docs.push_back(st.Text(0));
    }
    return Status::Ok();
  }));
  std::vector<Profile> out;
  for (const std::string& d : docs) {
    INGOT_ASSIGN_OR_RETURN(Profile p, ProfileOf(d));
    out.push_back(std::move(p));
  }
  return out;
}

Status SqliteMachineRepository::DeleteProfile(std::string_view name) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement used,
                           c.Prepare("SELECT count(*) FROM boot_machines WHERE profile = ?"));
    INGOT_RETURN_IF_ERROR(used.Bind(1, std::string(name)));
    INGOT_ASSIGN_OR_RETURN(bool row, used.Step());
    if (row && used.Int(0) > 0) {
      return Conflict("profile '" + std::string(name) + "' is assigned to " +
                      std::to_string(used.Int(0)) + " machine(s); assign them another first");
    }
    INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("DELETE FROM boot_profiles WHERE name = ?"));
    INGOT_RETURN_IF_ERROR(st.Bind(1, std::string(name)));
    INGOT_RETURN_IF_ERROR(st.Run());
    if (c.Changes() == 0) return NotFound("no profile '" + std::string(name) + "'");
    return Status::Ok();
  });
}

Status SqliteMachineRepository::CreateMachine(const Machine& m) {
  Status s = db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("INSERT INTO boot_machines (id, mac, uuid, profile, state, last_address, "
                  "last_seen, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
    INGOT_RETURN_IF_ERROR(st.BindAll(MachineRow(m)));
    return st.Run();
  });
  return MachineWriteStatus(std::move(s), m);
}

Status SqliteMachineRepository::UpdateMachine(const Machine& m) {
  Status s = db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("UPDATE boot_machines SET mac = ?2, uuid = ?3, profile = ?4, state = ?5, "
                  "last_address = ?6, last_seen = ?7, doc = ?8 WHERE id = ?1"));
    INGOT_RETURN_IF_ERROR(st.BindAll(MachineRow(m)));
    INGOT_RETURN_IF_ERROR(st.Run());
    if (c.Changes() == 0) return NotFound("no machine " + m.id);
    return Status::Ok();
  });
  return MachineWriteStatus(std::move(s), m);
}

Result<Machine> SqliteMachineRepository::GetMachine(std::string_view id) {
  std::optional<std::string> doc;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("SELECT doc FROM boot_machines WHERE id = ?"));
    INGOT_RETURN_IF_ERROR(st.Bind(1, std::string(id)));
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) doc = st.Text(0);
    return Status::Ok();
  }));
  if (!doc) return NotFound("no machine " + std::string(id));
  return MachineOf(std::string(id), *doc);
}

Result<std::optional<Machine>> SqliteMachineRepository::FindMachine(std::string_view mac,
                                                                    std::string_view uuid) {
  std::optional<std::pair<std::string, std::string>> found;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    for (auto [column, value] : {std::pair{"mac", mac}, std::pair{"uuid", uuid}}) {
      if (value.empty()) continue;
      INGOT_ASSIGN_OR_RETURN(Statement st,
                             c.Prepare(std::string("SELECT id, doc FROM boot_machines WHERE ") +
                                       column + " = ?"));
      INGOT_RETURN_IF_ERROR(st.Bind(1, std::string(value)));
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (row) {
        found.emplace(st.Text(0), st.Text(1));
        break;
      }
    }
    return Status::Ok();
  }));
  if (!found) return std::optional<Machine>();
  INGOT_ASSIGN_OR_RETURN(Machine m, MachineOf(found->first, found->second));
  return std::optional<Machine>(std::move(m));
}

Result<std::optional<Machine>> SqliteMachineRepository::FindMachineByAddress(
    std::string_view address) {
  std::optional<std::pair<std::string, std::string>> found;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st,
                           c.Prepare("SELECT id, doc FROM boot_machines WHERE last_address = ? "
                                     "ORDER BY last_seen DESC LIMIT 1"));
    INGOT_RETURN_IF_ERROR(st.Bind(1, std::string(address)));
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) found.emplace(st.Text(0), st.Text(1));
    return Status::Ok();
  }));
  if (!found) return std::optional<Machine>();
  INGOT_ASSIGN_OR_RETURN(Machine m, MachineOf(found->first, found->second));
  return std::optional<Machine>(std::move(m));
}

Result<std::vector<Machine>> SqliteMachineRepository::ListMachines(
    std::optional<MachineState> state) {
  std::vector<std::pair<std::string, std::string>> rows;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("SELECT id, doc FROM boot_machines WHERE ?1 IS NULL OR state = ?1 "
                  "ORDER BY coalesce(mac, uuid), id"));
    INGOT_RETURN_IF_ERROR(
        st.Bind(1, state ? Value(std::string(StateName(*state))) : Value(nullptr)));
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      rows.emplace_back(st.Text(0), st.Text(1));
    }
    return Status::Ok();
  }));
  std::vector<Machine> out;
  for (const auto& [id, doc] : rows) {
    INGOT_ASSIGN_OR_RETURN(Machine m, MachineOf(id, doc));
    out.push_back(std::move(m));
  }
  return out;
}

Status SqliteMachineRepository::DeleteMachine(std::string_view id) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("DELETE FROM boot_machines WHERE id = ?"));
    INGOT_RETURN_IF_ERROR(st.Bind(1, std::string(id)));
    INGOT_RETURN_IF_ERROR(st.Run());
    if (c.Changes() == 0) return NotFound("no machine " + std::string(id));
    return Status::Ok();
  });
}

}  // namespace ingot::boot
