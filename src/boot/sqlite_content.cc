#include "boot/sqlite_content.h"

#include <array>

namespace ingot::boot {
namespace {
using catalog::sqlite::Connection;
using catalog::sqlite::Statement;
using catalog::sqlite::Value;

// Never edit a shipped step: add one.
constexpr std::array<const char*, 1> kSteps = {
    "CREATE TABLE boot_isos (name TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL,"
    " uploaded INTEGER NOT NULL, status TEXT NOT NULL, source TEXT NOT NULL,"
    " origin TEXT NOT NULL, error TEXT NOT NULL);"
    "CREATE TABLE boot_trees (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
    " version TEXT NOT NULL, iso TEXT NOT NULL, status TEXT NOT NULL, error TEXT NOT NULL,"
    " layout TEXT NOT NULL, kernel TEXT NOT NULL, initrds TEXT NOT NULL, args TEXT NOT NULL,"
    " created INTEGER NOT NULL, UNIQUE (name, version));"
    "CREATE INDEX boot_trees_iso ON boot_trees (iso);"
    "CREATE TABLE boot_files (space TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,"
    " uploaded INTEGER NOT NULL, md5 TEXT NOT NULL, PRIMARY KEY (space, name));"
    "CREATE TABLE boot_publications (name TEXT PRIMARY KEY NOT NULL, image_id TEXT NOT NULL,"
    " raw INTEGER NOT NULL, created INTEGER NOT NULL);"
    "CREATE INDEX boot_publications_image ON boot_publications (image_id);",
};

std::string JoinLines(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += '\n';
    out += s;
  }
  return out;
}
std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

constexpr const char* kIsoColumns = "name, size, uploaded, status, source, origin, error";
Iso IsoOf(const Statement& st) {
  Iso iso;
  iso.name = st.Text(0);
  iso.size = static_cast<uint64_t>(st.Int(1));
  iso.uploaded = st.Int(2);
  iso.status = ParseIsoStatus(st.Text(3)).value_or(IsoStatus::kFailed);
  iso.source = st.Text(4);
  iso.origin = st.Text(5);
  iso.error = st.Text(6);
  return iso;
}
std::vector<Value> IsoValues(const Iso& iso) {
  return {iso.name,
          static_cast<int64_t>(iso.size),
          iso.uploaded,
          std::string(IsoStatusName(iso.status)),
          iso.source,
          iso.origin,
          iso.error};
}

constexpr const char* kTreeColumns =
    "id, name, version, iso, status, error, layout, kernel, initrds, args, created";
OsTree TreeOf(const Statement& st) {
  OsTree t;
  t.id = st.Text(0);
  t.name = st.Text(1);
  t.version = st.Text(2);
  t.iso = st.Text(3);
  t.status = ParseTreeStatus(st.Text(4)).value_or(TreeStatus::kFailed);
  t.error = st.Text(5);
  t.boot.layout = st.Text(6);
  t.boot.kernel = st.Text(7);
  t.boot.initrds = SplitLines(st.Text(8));
  t.boot.args = st.Text(9);
  t.created = st.Int(10);
  return t;
}

BootFile FileOf(const Statement& st) {
  BootFile f;
  f.space = st.Text(0) == "microkernel" ? FileSpace::kMicrokernel : FileSpace::kFiles;
  f.name = st.Text(1);
  f.size = static_cast<uint64_t>(st.Int(2));
  f.uploaded = st.Int(3);
  f.md5 = st.Text(4);
  return f;
}

Status Exec(Connection& c, const std::string& sql, const std::vector<Value>& values) {
  INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare(sql));
  INGOT_RETURN_IF_ERROR(st.BindAll(values));
  return st.Run();
}

}  // namespace

Result<std::unique_ptr<SqliteContentRepository>> SqliteContentRepository::Open(
    std::shared_ptr<catalog::sqlite::Database> db) {
  INGOT_RETURN_IF_ERROR(db->Migrate("boot_content", kSteps));
  return std::unique_ptr<SqliteContentRepository>(new SqliteContentRepository(std::move(db)));
}

Status SqliteContentRepository::PutIso(const Iso& iso) {
  return db_->Write([&](Connection& c) {
    return Exec(c,
                std::string("INSERT OR REPLACE INTO boot_isos (") + kIsoColumns +
                    ") VALUES (?, ?, ?, ?, ?, ?, ?)",
                IsoValues(iso));
  });
}

Status SqliteContentRepository::InsertIso(const Iso& iso) {
  Status s = db_->Write([&](Connection& c) {
    return Exec(c,
                std::string("INSERT INTO boot_isos (") + kIsoColumns +
                    ") VALUES (?, ?, ?, ?, ?, ?, ?)",
                IsoValues(iso));
  });
  if (s.code() == Code::kAlreadyExists) {
    return AlreadyExists("An ISO named '" + iso.name + "' is already stored.");
  }
  return s;
}

Result<std::optional<Iso>> SqliteContentRepository::GetIso(const std::string& name) {
  std::optional<Iso> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare(std::string("SELECT ") + kIsoColumns +
                                                   " FROM boot_isos WHERE name = ?"));
    INGOT_RETURN_IF_ERROR(st.Bind(1, name));
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) out = IsoOf(st);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<Iso>> SqliteContentRepository::ListIsos() {
  std::vector<Iso> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare(std::string("SELECT ") + kIsoColumns +
                                                   " FROM boot_isos ORDER BY name"));
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back(IsoOf(st));
    }
    return Status::Ok();
  }));
  return out;
}

Status SqliteContentRepository::DeleteIso(const std::string& name) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        Statement users,
        c.Prepare("SELECT name, version FROM boot_trees WHERE iso = ? ORDER BY name, version"));
    INGOT_RETURN_IF_ERROR(users.Bind(1, name));
    std::string names;
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(bool row, users.Step());
      if (!row) break;
      names += (names.empty() ? "" : ", ") + users.Text(0) + "/" + users.Text(1);
    }
    if (!names.empty()) {
      return Conflict("The ISO '" + name + "' is in use by OS tree(s) " + names +
                      "; delete them first.");
    }
    INGOT_RETURN_IF_ERROR(Exec(c, "DELETE FROM boot_isos WHERE name = ?", {name}));
    if (c.Changes() == 0) return NotFound("No ISO named '" + name + "'.");
    return Status::Ok();
  });
}

Status SqliteContentRepository::InsertTree(const OsTree& t) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement iso, c.Prepare("SELECT status FROM boot_isos WHERE name = ?"));
    INGOT_RETURN_IF_ERROR(iso.Bind(1, t.iso));
    INGOT_ASSIGN_OR_RETURN(bool row, iso.Step());
    if (!row) return NotFound("No ISO named '" + t.iso + "' is stored.");
    if (iso.Text(0) == IsoStatusName(IsoStatus::kFailed)) {
      return Conflict("The ISO '" + t.iso + "' failed to arrive; add it again.");
    }
    Status s = Exec(c,
                    std::string("INSERT INTO boot_trees (") + kTreeColumns +
                        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    {t.id, t.name, t.version, t.iso, std::string(TreeStatusName(t.status)),
                     t.error, t.boot.layout, t.boot.kernel, JoinLines(t.boot.initrds),
                     t.boot.args, t.created});
    if (s.code() == Code::kAlreadyExists) {
      return AlreadyExists("Image already exists: " + t.name + "/" + t.version);
    }
    return s;
  });
}

Status SqliteContentRepository::UpdateTree(const OsTree& t) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_RETURN_IF_ERROR(Exec(c,
                               "UPDATE boot_trees SET status = ?, error = ?, layout = ?, "
                               "kernel = ?, initrds = ?, args = ? WHERE id = ?",
                               {std::string(TreeStatusName(t.status)), t.error, t.boot.layout,
                                t.boot.kernel, JoinLines(t.boot.initrds), t.boot.args, t.id}));
    if (c.Changes() == 0) return NotFound("The OS tree was deleted.");
    return Status::Ok();
  });
}

Result<std::optional<OsTree>> SqliteContentRepository::GetTree(const std::string& name,
                                                               const std::string& version) {
  std::optional<OsTree> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        Statement st, c.Prepare(std::string("SELECT ") + kTreeColumns +
                                " FROM boot_trees WHERE name = ? AND version = ?"));
    INGOT_RETURN_IF_ERROR(st.BindAll({name, version}));
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) out = TreeOf(st);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<OsTree>> SqliteContentRepository::ListTrees() {
  std::vector<OsTree> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare(std::string("SELECT ") + kTreeColumns +
                                                   " FROM boot_trees ORDER BY name, version"));
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back(TreeOf(st));
    }
    return Status::Ok();
  }));
  return out;
}

Status SqliteContentRepository::DeleteTree(const std::string& id) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_RETURN_IF_ERROR(Exec(c, "DELETE FROM boot_trees WHERE id = ?", {id}));
    if (c.Changes() == 0) return NotFound("No such OS tree.");
    return Status::Ok();
  });
}

Status SqliteContentRepository::PutFile(const BootFile& f) {
  return db_->Write([&](Connection& c) {
    return Exec(c,
                "INSERT OR REPLACE INTO boot_files (space, name, size, uploaded, md5) "
                "VALUES (?, ?, ?, ?, ?)",
                {std::string(FileSpaceName(f.space)), f.name, static_cast<int64_t>(f.size),
                 f.uploaded, f.md5});
  });
}

Result<std::optional<BootFile>> SqliteContentRepository::GetFile(FileSpace space,
                                                                 const std::string& name) {
  std::optional<BootFile> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st,
                           c.Prepare("SELECT space, name, size, uploaded, md5 FROM boot_files "
                                     "WHERE space = ? AND name = ?"));
    INGOT_RETURN_IF_ERROR(st.BindAll({std::string(FileSpaceName(space)), name}));
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) out = FileOf(st);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<BootFile>> SqliteContentRepository::ListFiles(FileSpace space) {
  std::vector<BootFile> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st,
                           c.Prepare("SELECT space, name, size, uploaded, md5 FROM boot_files "
                                     "WHERE space = ? ORDER BY name"));
    INGOT_RETURN_IF_ERROR(st.Bind(1, std::string(FileSpaceName(space))));
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back(FileOf(st));
    }
    return Status::Ok();
  }));
  return out;
}

Status SqliteContentRepository::DeleteFile(FileSpace space, const std::string& name) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_RETURN_IF_ERROR(Exec(c, "DELETE FROM boot_files WHERE space = ? AND name = ?",
                               {std::string(FileSpaceName(space)), name}));
    if (c.Changes() == 0) return NotFound("No file matches: " + name);
    return Status::Ok();
  });
}

Status SqliteContentRepository::InsertPublication(const Publication& p) {
  Status s = db_->Write([&](Connection& c) {
    return Exec(c,
                "INSERT INTO boot_publications (name, image_id, raw, created) VALUES (?, ?, ?, ?)",
                {p.name, p.image_id, int64_t{p.raw ? 1 : 0}, p.created});
  });
  if (s.code() == Code::kAlreadyExists) {
    return AlreadyExists("A publication named '" + p.name + "' exists.");
  }
  return s;
}

Result<std::vector<Publication>> SqliteContentRepository::ListPublications() {
  std::vector<Publication> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("SELECT name, image_id, raw, created FROM boot_publications ORDER BY name"));
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back({st.Text(0), st.Text(1), st.Int(2) != 0, st.Int(3)});
    }
    return Status::Ok();
  }));
  return out;
}

Status SqliteContentRepository::DeletePublication(const std::string& name) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_RETURN_IF_ERROR(Exec(c, "DELETE FROM boot_publications WHERE name = ?", {name}));
    if (c.Changes() == 0) return NotFound("No publication named '" + name + "'.");
    return Status::Ok();
  });
}

}  // namespace ingot::boot
