#include "catalog/sqlite/sqlite_repository.h"

#include <limits>
#include <unordered_map>
#include <utility>

#include "catalog/sqlite/connection.h"
#include "common/time.h"

namespace ingot::catalog {

using sqlite::Connection;
using sqlite::Statement;
using sqlite::Transaction;
using sqlite::Value;

namespace {

// Schema migrations, applied in order; entry i takes the schema from version i to i + 1. Never edit
// one that has shipped: add a new one.
constexpr const char* kMigrations[] = {
    // 1: images and their tags, properties, locations and members.
    R"sql(
CREATE TABLE images (
  id               TEXT PRIMARY KEY NOT NULL,
  name             TEXT,
  status           TEXT NOT NULL,
  visibility       TEXT NOT NULL,
  protected        INTEGER NOT NULL DEFAULT 0,
  os_hidden        INTEGER NOT NULL DEFAULT 0,
  owner            TEXT,
  disk_format      TEXT,
  container_format TEXT,
  size             INTEGER,
  virtual_size     INTEGER,
  min_disk         INTEGER NOT NULL DEFAULT 0,
  min_ram          INTEGER NOT NULL DEFAULT 0,
  checksum         TEXT,
  os_hash_algo     TEXT,
  os_hash_value    TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  deleted_at       INTEGER,
  deleted          INTEGER NOT NULL DEFAULT 0,
  version          INTEGER NOT NULL
);
-- The default list order, walked backwards from the newest; partial so deleted rows cost nothing.
CREATE INDEX images_created ON images (created_at, id) WHERE deleted = 0;
CREATE INDEX images_updated ON images (updated_at, id) WHERE deleted = 0;
CREATE INDEX images_owner ON images (owner) WHERE deleted = 0;
CREATE INDEX images_status ON images (status) WHERE deleted = 0;
CREATE INDEX images_name ON images (name) WHERE deleted = 0;
CREATE TABLE image_tags (
  image_id TEXT NOT NULL REFERENCES images (id),
  value    TEXT NOT NULL,
  PRIMARY KEY (image_id, value)
) WITHOUT ROWID;
CREATE INDEX image_tags_value ON image_tags (value);
CREATE TABLE image_properties (
  image_id TEXT NOT NULL REFERENCES images (id),
  name     TEXT NOT NULL,
  value    TEXT NOT NULL,
  PRIMARY KEY (image_id, name)
) WITHOUT ROWID;
CREATE INDEX image_properties_name_value ON image_properties (name, value);
CREATE TABLE image_locations (
  image_id TEXT NOT NULL REFERENCES images (id),
  position INTEGER NOT NULL,
  store    TEXT NOT NULL,
  key      TEXT NOT NULL,
  PRIMARY KEY (image_id, position)
) WITHOUT ROWID;
CREATE TABLE image_members (
  image_id   TEXT NOT NULL REFERENCES images (id),
  member     TEXT NOT NULL,
  status     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (image_id, member)
) WITHOUT ROWID;
CREATE INDEX image_members_member ON image_members (member, status);
)sql",
    // 2: tasks (imports and copies), claimed by leases; see sqlite_tasks.cc.
    R"sql(
CREATE TABLE tasks (
  id          TEXT PRIMARY KEY NOT NULL,
  type        TEXT NOT NULL,
  status      TEXT NOT NULL,
  input       TEXT NOT NULL,
  result      TEXT,
  message     TEXT NOT NULL,
  owner       TEXT,
  image_id    TEXT,
  request_id  TEXT,
  user_id     TEXT,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  expires_at  INTEGER,
  lease_owner TEXT,
  lease_until INTEGER,
  version     INTEGER NOT NULL
);
-- Listing newest first, all or one project's; the tasks of one image.
CREATE INDEX tasks_created ON tasks (created_at, id);
CREATE INDEX tasks_owner ON tasks (owner, created_at, id);
CREATE INDEX tasks_image ON tasks (image_id, created_at, id);
-- One live task per image, whichever node adds it: the database refuses the second.
CREATE UNIQUE INDEX tasks_live_image ON tasks (image_id)
  WHERE status IN ('pending', 'processing') AND image_id IS NOT NULL;
-- Claims walk only live tasks, oldest first; purges only rows that can expire.
CREATE INDEX tasks_runnable ON tasks (created_at, id) WHERE status IN ('pending', 'processing');
CREATE INDEX tasks_expires ON tasks (expires_at) WHERE expires_at IS NOT NULL;
)sql",
};
constexpr int kLatestVersion = static_cast<int>(std::size(kMigrations));

constexpr const char* kImageColumns =
    "images.id, images.name, images.status, images.visibility, images.protected, "
    "images.os_hidden, images.owner, images.disk_format, images.container_format, images.size, "
    "images.virtual_size, images.min_disk, images.min_ram, images.checksum, images.os_hash_algo, "
    "images.os_hash_value, images.created_at, images.updated_at, images.version";

Value Opt(const std::optional<std::string>& s) {
  if (!s) return nullptr;
  return *s;
}

Value Opt(const std::optional<uint64_t>& v) {
  if (!v) return nullptr;
  return static_cast<int64_t>(*v);
}

// SQLite integers are signed 64-bit; a larger unsigned value would wrap on the way in.
Status CheckStorable(const Image& im) {
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if ((im.size && *im.size > kMax) || (im.virtual_size && *im.virtual_size > kMax) ||
      im.min_disk > kMax || im.min_ram > kMax) {
    return InvalidArgument("image " + im.id + ": a size is larger than 2^63-1");
  }
  if (im.id.empty()) return InvalidArgument("image id is empty");
  return Status::Ok();
}

// The mutable columns, in the order both INSERT and UPDATE name them.
std::vector<Value> MutableValues(const Image& im) {
  bool deleted = im.status() == ImageStatus::kDeleted;
  return {Opt(im.name),
          std::string(StatusName(im.status())),
          std::string(VisibilityName(im.visibility)),
          int64_t{im.is_protected},
          int64_t{im.os_hidden},
          Opt(im.owner),
          Opt(im.disk_format),
          Opt(im.container_format),
          Opt(im.size),
          Opt(im.virtual_size),
          static_cast<int64_t>(im.min_disk),
          static_cast<int64_t>(im.min_ram),
          Opt(im.checksum),
          Opt(im.os_hash_algo),
          Opt(im.os_hash_value),
          im.updated_at,
          deleted ? Value(im.updated_at) : Value(nullptr),
          int64_t{deleted}};
}

Result<Image> ReadImage(const Statement& st) {
  Image im;
  im.id = st.Text(0);
  im.name = st.OptText(1);
  auto status = ParseStatus(st.Text(2));
  auto visibility = ParseVisibility(st.Text(3));
  if (!status || !visibility) {
    return Corruption("image " + im.id + ": unknown status or visibility in the catalog");
  }
  StoredStatus::Restore(im, *status);
  im.visibility = *visibility;
  im.is_protected = st.Int(4) != 0;
  im.os_hidden = st.Int(5) != 0;
  im.owner = st.OptText(6);
  im.disk_format = st.OptText(7);
  im.container_format = st.OptText(8);
  if (!st.IsNull(9)) im.size = static_cast<uint64_t>(st.Int(9));
  if (!st.IsNull(10)) im.virtual_size = static_cast<uint64_t>(st.Int(10));
  im.min_disk = static_cast<uint64_t>(st.Int(11));
  im.min_ram = static_cast<uint64_t>(st.Int(12));
  im.checksum = st.OptText(13);
  im.os_hash_algo = st.OptText(14);
  im.os_hash_value = st.OptText(15);
  im.created_at = st.Int(16);
  im.updated_at = st.Int(17);
  im.version = st.Int(18);
  return im;
}

std::string Placeholders(size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) out += i == 0 ? "?" : ",?";
  return out;
}

// Fills tags, properties and locations of `images` with one query per table, not one per image.
Status LoadChildren(Connection& c, std::vector<Image>& images) {
  if (images.empty()) return Status::Ok();
  std::unordered_map<std::string_view, Image*> by_id;
  std::vector<Value> ids;
  by_id.reserve(images.size());
  ids.reserve(images.size());
  for (Image& im : images) {
    by_id.emplace(im.id, &im);
    ids.emplace_back(im.id);
  }
  std::string in = "(" + Placeholders(ids.size()) + ")";
  {
    INGOT_ASSIGN_OR_RETURN(
        Statement st, c.Prepare("SELECT image_id, value FROM image_tags WHERE image_id IN " + in));
    INGOT_RETURN_IF_ERROR(st.BindAll(ids));
    while (true) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      auto it = by_id.find(st.Text(0));
      if (it != by_id.end()) it->second->tags.insert(st.Text(1));
    }
  }
  {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("SELECT image_id, name, value FROM image_properties WHERE image_id IN " + in));
    INGOT_RETURN_IF_ERROR(st.BindAll(ids));
    while (true) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      auto it = by_id.find(st.Text(0));
      if (it != by_id.end()) it->second->properties.emplace(st.Text(1), st.Text(2));
    }
  }
  {
    INGOT_ASSIGN_OR_RETURN(Statement st,
                           c.Prepare("SELECT image_id, store, key FROM image_locations "
                                     "WHERE image_id IN " +
                                     in + " ORDER BY image_id, position"));
    INGOT_RETURN_IF_ERROR(st.BindAll(ids));
    while (true) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      auto it = by_id.find(st.Text(0));
      if (it != by_id.end()) it->second->locations.push_back({st.Text(1), st.Text(2)});
    }
  }
  return Status::Ok();
}

// Replaces the tags, properties and locations stored for `im`.
Status WriteChildren(Connection& c, const Image& im, bool replace) {
  if (replace) {
    for (const char* sql : {"DELETE FROM image_tags WHERE image_id = ?",
                            "DELETE FROM image_properties WHERE image_id = ?",
                            "DELETE FROM image_locations WHERE image_id = ?"}) {
      INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare(sql));
      INGOT_RETURN_IF_ERROR(st.Bind(1, im.id));
      INGOT_RETURN_IF_ERROR(st.Run());
    }
  }
  if (!im.tags.empty()) {
    INGOT_ASSIGN_OR_RETURN(Statement st,
                           c.Prepare("INSERT INTO image_tags (image_id, value) VALUES (?, ?)"));
    for (const auto& tag : im.tags) {
      INGOT_RETURN_IF_ERROR(st.BindAll({im.id, tag}));
      INGOT_RETURN_IF_ERROR(st.Run());
      INGOT_RETURN_IF_ERROR(st.Reset());
    }
  }
  if (!im.properties.empty()) {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("INSERT INTO image_properties (image_id, name, value) VALUES (?, ?, ?)"));
    for (const auto& [name, value] : im.properties) {
      INGOT_RETURN_IF_ERROR(st.BindAll({im.id, name, value}));
      INGOT_RETURN_IF_ERROR(st.Run());
      INGOT_RETURN_IF_ERROR(st.Reset());
    }
  }
  if (!im.locations.empty()) {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare(
            "INSERT INTO image_locations (image_id, position, store, key) VALUES (?, ?, ?, ?)"));
    int64_t position = 0;
    for (const auto& loc : im.locations) {
      INGOT_RETURN_IF_ERROR(st.BindAll({im.id, position++, loc.store, loc.key}));
      INGOT_RETURN_IF_ERROR(st.Run());
      INGOT_RETURN_IF_ERROR(st.Reset());
    }
  }
  return Status::Ok();
}

Result<std::optional<Image>> FindImage(Connection& c, const std::string& id,
                                       bool include_deleted = false) {
  INGOT_ASSIGN_OR_RETURN(
      Statement st,
      c.Prepare(std::string("SELECT ") + kImageColumns + " FROM images WHERE images.id = ?" +
                (include_deleted ? "" : " AND images.deleted = 0")));
  INGOT_RETURN_IF_ERROR(st.Bind(1, id));
  INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Image>();
  INGOT_ASSIGN_OR_RETURN(Image im, ReadImage(st));
  return std::optional<Image>(std::move(im));
}

Result<std::optional<MemberStatus>> FindMembership(Connection& c, const std::string& image_id,
                                                   const std::string& member) {
  INGOT_ASSIGN_OR_RETURN(
      Statement st,
      c.Prepare("SELECT status FROM image_members WHERE image_id = ? AND member = ?"));
  INGOT_RETURN_IF_ERROR(st.BindAll({image_id, member}));
  INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<MemberStatus>();
  auto status = ParseMemberStatus(st.Text(0));
  if (!status) return Corruption("image " + image_id + ": unknown member status");
  return std::optional<MemberStatus>(*status);
}

Status CheckImageExists(Connection& c, const std::string& id) {
  INGOT_ASSIGN_OR_RETURN(Statement st,
                         c.Prepare("SELECT 1 FROM images WHERE id = ? AND deleted = 0"));
  INGOT_RETURN_IF_ERROR(st.Bind(1, id));
  INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("No image found with ID " + id);
  return Status::Ok();
}

// ---- List: SQL built from typed query parts; user values only ever become bound parameters. ----

std::string_view SortColumn(SortKey k) {
  switch (k) {
    case SortKey::kName:
      return "images.name";
    case SortKey::kStatus:
      return "images.status";
    case SortKey::kContainerFormat:
      return "images.container_format";
    case SortKey::kDiskFormat:
      return "images.disk_format";
    case SortKey::kSize:
      return "images.size";
    case SortKey::kId:
      return "images.id";
    case SortKey::kCreatedAt:
      return "images.created_at";
    case SortKey::kUpdatedAt:
      return "images.updated_at";
  }
  return "images.id";
}

Value SortValue(const Image& im, SortKey k) {
  switch (k) {
    case SortKey::kName:
      return Opt(im.name);
    case SortKey::kStatus:
      return std::string(StatusName(im.status()));
    case SortKey::kContainerFormat:
      return Opt(im.container_format);
    case SortKey::kDiskFormat:
      return Opt(im.disk_format);
    case SortKey::kSize:
      return Opt(im.size);
    case SortKey::kId:
      return im.id;
    case SortKey::kCreatedAt:
      return im.created_at;
    case SortKey::kUpdatedAt:
      return im.updated_at;
  }
  return im.id;
}

std::string_view FieldColumn(Field f) {
  switch (f) {
    case Field::kId:
      return "images.id";
    case Field::kName:
      return "images.name";
    case Field::kStatus:
      return "images.status";
    case Field::kDiskFormat:
      return "images.disk_format";
    case Field::kContainerFormat:
      return "images.container_format";
    case Field::kOwner:
      return "images.owner";
    case Field::kChecksum:
      return "images.checksum";
    case Field::kOsHashAlgo:
      return "images.os_hash_algo";
    case Field::kOsHashValue:
      return "images.os_hash_value";
    case Field::kSize:
      return "images.size";
    case Field::kVirtualSize:
      return "images.virtual_size";
    case Field::kMinDisk:
      return "images.min_disk";
    case Field::kMinRam:
      return "images.min_ram";
  }
  return "images.id";
}

bool IsNumeric(Field f) {
  return f == Field::kSize || f == Field::kVirtualSize || f == Field::kMinDisk ||
         f == Field::kMinRam;
}

// A numeric column compares with an integer; any other text can match no number.
Value FieldValue(Field f, const std::string& v) {
  if (!IsNumeric(f) || v.empty() || v.size() > 18) return v;
  int64_t n = 0;
  for (char ch : v) {
    if (ch < '0' || ch > '9') return v;
    n = n * 10 + (ch - '0');
  }
  return n;
}

std::string_view CompareSql(CompareOp op) {
  switch (op) {
    case CompareOp::kEq:
      return " = ?";
    case CompareOp::kNeq:
      return " != ?";
    case CompareOp::kGt:
      return " > ?";
    case CompareOp::kGte:
      return " >= ?";
    case CompareOp::kLt:
      return " < ?";
    case CompareOp::kLte:
      return " <= ?";
  }
  return " = ?";
}

struct Sql {
  std::string text;
  std::vector<Value> args;
};

// Glance's listing rules (glance/db/sqlalchemy/api.py, _select_images_query and _image_get_all):
// admins list everything; others list public and community images, their own, and shared images
// they are a member of in the asked membership status. Then, without a visibility filter, community
// images appear only to their owner; with one, only that visibility (or all of them for `all`).
void AppendVisibility(Sql& q, const ListQuery& query, const Viewer& viewer) {
  if (!viewer.is_admin) {
    if (viewer.project) {
      q.text +=
          " AND (images.visibility IN ('public', 'community') OR images.owner = ?"
          " OR (images.visibility = 'shared' AND EXISTS (SELECT 1 FROM image_members m"
          " WHERE m.image_id = images.id AND m.member = ?";
      q.args.emplace_back(*viewer.project);
      q.args.emplace_back(*viewer.project);
      if (query.member_status) {
        q.text += " AND m.status = ?";
        q.args.emplace_back(std::string(MemberStatusName(*query.member_status)));
      }
      q.text += ")))";
    } else {
      q.text += " AND images.visibility IN ('public', 'community')";
    }
  }
  if (query.visibility.only) {
    q.text += " AND images.visibility = ?";
    q.args.emplace_back(std::string(VisibilityName(*query.visibility.only)));
  } else if (!query.visibility.all) {
    if (viewer.project) {
      q.text += " AND (images.visibility != 'community' OR images.owner = ?)";
      q.args.emplace_back(*viewer.project);
    } else {
      q.text += " AND images.visibility != 'community'";
    }
  }
}

void AppendFilters(Sql& q, const ListQuery& query) {
  q.text += " AND images.os_hidden = ?";
  q.args.emplace_back(int64_t{query.os_hidden});
  if (query.is_protected) {
    q.text += " AND images.protected = ?";
    q.args.emplace_back(int64_t{*query.is_protected});
  }
  for (const FieldFilter& f : query.fields) {
    if (f.values.empty()) {
      q.text += " AND 0";
      continue;
    }
    q.text += " AND ";
    q.text += FieldColumn(f.field);
    if (f.values.size() == 1) {
      q.text += " = ?";
    } else {
      q.text += " IN (" + Placeholders(f.values.size()) + ")";
    }
    for (const auto& v : f.values) q.args.push_back(FieldValue(f.field, v));
  }
  for (const RangeFilter& r : query.ranges) {
    if (r.min) {
      q.text += " AND " + std::string(FieldColumn(r.field)) + " >= ?";
      q.args.emplace_back(*r.min);
    }
    if (r.max) {
      q.text += " AND " + std::string(FieldColumn(r.field)) + " <= ?";
      q.args.emplace_back(*r.max);
    }
  }
  for (const TimeFilter& t : query.times) {
    // Whole seconds, as the API shows them; created_at is never negative in practice, and integer
    // division would round a negative one towards zero, which only matters before 1970.
    q.text += t.field == TimeField::kCreatedAt ? " AND images.created_at / 1000000"
                                               : " AND images.updated_at / 1000000";
    q.text += CompareSql(t.op);
    q.args.emplace_back(t.seconds);
  }
  for (const auto& tag : query.tags) {
    q.text +=
        " AND EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.value = ?)";
    q.args.emplace_back(tag);
  }
  for (const auto& [name, value] : query.properties) {
    q.text +=
        " AND EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id = images.id"
        " AND p.name = ? AND p.value = ?)";
    q.args.emplace_back(name);
    q.args.emplace_back(value);
  }
}

// Keyset pagination: rows strictly after `marker` in the sort order. NULL sorts lowest, as SQLite
// orders it (first ascending, last descending). The sort always ends with id, so the order is
// total.
void AppendAfterMarker(Sql& q, const std::vector<SortTerm>& sort, const Image& marker) {
  std::string any;
  for (size_t i = 0; i < sort.size(); ++i) {
    std::string col(SortColumn(sort[i].key));
    Value mv = SortValue(marker, sort[i].key);
    bool null = std::holds_alternative<std::nullptr_t>(mv);
    std::string term;
    std::vector<Value> term_args;
    for (size_t j = 0; j < i; ++j) {
      term += std::string(SortColumn(sort[j].key)) + " IS ? AND ";
      term_args.push_back(SortValue(marker, sort[j].key));
    }
    if (sort[i].dir == SortDir::kAsc) {
      if (null) {
        term += col + " IS NOT NULL";
      } else {
        term += col + " > ?";
        term_args.push_back(mv);
      }
    } else {
      if (null) continue;  // nothing sorts below NULL
      term += "(" + col + " < ? OR " + col + " IS NULL)";
      term_args.push_back(mv);
    }
    any += any.empty() ? "(" : " OR (";
    any += term + ")";
    for (auto& a : term_args) q.args.push_back(std::move(a));
  }
  q.text += any.empty() ? " AND 0" : " AND (" + any + ")";
}

void AppendOrder(Sql& q, const std::vector<SortTerm>& sort) {
  q.text += " ORDER BY ";
  for (size_t i = 0; i < sort.size(); ++i) {
    if (i > 0) q.text += ", ";
    q.text += SortColumn(sort[i].key);
    q.text += sort[i].dir == SortDir::kAsc ? " ASC" : " DESC";
  }
}

Result<std::vector<Image>> RunImageQuery(Connection& c, const Sql& q) {
  INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare(q.text));
  INGOT_RETURN_IF_ERROR(st.BindAll(q.args));
  std::vector<Image> images;
  while (true) {
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    INGOT_ASSIGN_OR_RETURN(Image im, ReadImage(st));
    images.push_back(std::move(im));
  }
  return images;
}

Status Migrate(Connection& c) {
  INGOT_RETURN_IF_ERROR(
      c.Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  while (true) {
    INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
    int version = 0;
    {
      INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("SELECT max(version) FROM schema_version"));
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (row && !st.IsNull(0)) version = static_cast<int>(st.Int(0));
    }
    if (version > kLatestVersion) {
      return Corruption("catalog schema version " + std::to_string(version) +
                        " is newer than this build knows (" + std::to_string(kLatestVersion) +
                        "); refusing to open it");
    }
    if (version == kLatestVersion) return tx.Commit();
    // Another process may have migrated between our checks; the version read above is inside the
    // write transaction, so this step is applied exactly once.
    INGOT_RETURN_IF_ERROR(c.Exec(kMigrations[version])
                              .WithContext("schema migration " + std::to_string(version + 1)));
    {
      INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("DELETE FROM schema_version"));
      INGOT_RETURN_IF_ERROR(st.Run());
    }
    {
      INGOT_ASSIGN_OR_RETURN(Statement st,
                             c.Prepare("INSERT INTO schema_version (version) VALUES (?)"));
      INGOT_RETURN_IF_ERROR(st.Bind(1, int64_t{version + 1}));
      INGOT_RETURN_IF_ERROR(st.Run());
    }
    INGOT_RETURN_IF_ERROR(tx.Commit());
  }
}

}  // namespace

SqliteImageRepository::Lease::Lease(SqliteImageRepository* repo, std::unique_ptr<Connection> conn)
    : repo_(repo), conn_(std::move(conn)) {}
SqliteImageRepository::Lease::Lease(Lease&& other) noexcept = default;
SqliteImageRepository::Lease::~Lease() {
  if (conn_) repo_->Release(std::move(conn_));
}
Connection& SqliteImageRepository::Lease::operator*() { return *conn_; }

SqliteImageRepository::SqliteImageRepository(std::string path, Options options)
    : path_(std::move(path)), options_(options) {}

SqliteImageRepository::~SqliteImageRepository() = default;

int SqliteImageRepository::LatestSchemaVersion() { return kLatestVersion; }

Result<std::unique_ptr<SqliteImageRepository>> SqliteImageRepository::Open(
    const std::string& path) {
  return Open(path, Options{});
}

Result<std::unique_ptr<SqliteImageRepository>> SqliteImageRepository::Open(const std::string& path,
                                                                           Options options) {
  std::unique_ptr<SqliteImageRepository> repo(new SqliteImageRepository(path, options));
  INGOT_ASSIGN_OR_RETURN(auto conn, Connection::Open(path));
  INGOT_RETURN_IF_ERROR(Migrate(*conn).WithContext("open catalog " + path));
  repo->Release(std::move(conn));
  return repo;
}

Result<SqliteImageRepository::Lease> SqliteImageRepository::Acquire() {
  {
    std::lock_guard lock(pool_mu_);
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
  }
  INGOT_ASSIGN_OR_RETURN(auto conn, Connection::Open(path_));
  return Lease(this, std::move(conn));
}

void SqliteImageRepository::Release(std::unique_ptr<Connection> conn) {
  std::lock_guard lock(pool_mu_);
  if (static_cast<int>(idle_.size()) < options_.pool_size) idle_.push_back(std::move(conn));
}

Result<int> SqliteImageRepository::SchemaVersion() {
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  INGOT_ASSIGN_OR_RETURN(Statement st, (*lease).Prepare("SELECT max(version) FROM schema_version"));
  INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.IsNull(0)) return 0;
  return static_cast<int>(st.Int(0));
}

Status SqliteImageRepository::Add(const Image& image) {
  INGOT_RETURN_IF_ERROR(CheckStorable(image));
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
  {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare(
            "INSERT INTO images (name, status, visibility, protected, os_hidden, owner, "
            "disk_format, container_format, size, virtual_size, min_disk, min_ram, checksum, "
            "os_hash_algo, os_hash_value, updated_at, deleted_at, deleted, id, created_at, "
            "version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"));
    std::vector<Value> values = MutableValues(image);
    values.emplace_back(image.id);
    values.emplace_back(image.created_at);
    INGOT_RETURN_IF_ERROR(st.BindAll(values));
    Status s = st.Run();
    if (s.code() == Code::kAlreadyExists) {
      return AlreadyExists("image " + image.id + " exists or existed");
    }
    INGOT_RETURN_IF_ERROR(s);
  }
  INGOT_RETURN_IF_ERROR(WriteChildren(c, image, /*replace=*/false));
  return tx.Commit();
}

Result<Image> SqliteImageRepository::Get(const std::string& id) {
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  // One read transaction: the image and its children come from the same snapshot.
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kRead));
  INGOT_ASSIGN_OR_RETURN(std::optional<Image> found, FindImage(c, id));
  if (!found) return NotFound("image " + id + " not in the catalog");
  std::vector<Image> one;
  one.push_back(std::move(*found));
  INGOT_RETURN_IF_ERROR(LoadChildren(c, one));
  INGOT_RETURN_IF_ERROR(tx.Commit());
  return std::move(one[0]);
}

Status SqliteImageRepository::Save(const Image& image) {
  INGOT_RETURN_IF_ERROR(CheckStorable(image));
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
  {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("UPDATE images SET name = ?, status = ?, visibility = ?, protected = ?, "
                  "os_hidden = ?, owner = ?, disk_format = ?, container_format = ?, size = ?, "
                  "virtual_size = ?, min_disk = ?, min_ram = ?, checksum = ?, os_hash_algo = ?, "
                  "os_hash_value = ?, updated_at = ?, deleted_at = ?, deleted = ?, "
                  "version = version + 1 WHERE id = ? AND version = ? AND deleted = 0"));
    std::vector<Value> values = MutableValues(image);
    values.emplace_back(image.id);
    values.emplace_back(image.version);
    INGOT_RETURN_IF_ERROR(st.BindAll(values));
    INGOT_RETURN_IF_ERROR(st.Run());
  }
  if (c.Changes() == 0) {
    INGOT_RETURN_IF_ERROR(CheckImageExists(c, image.id));
    return Conflict("Image " + image.id + " was changed by another request (version " +
                    std::to_string(image.version) + " is stale)");
  }
  INGOT_RETURN_IF_ERROR(WriteChildren(c, image, /*replace=*/true));
  return tx.Commit();
}

Status SqliteImageRepository::Remove(const std::string& id) {
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
  {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("UPDATE images SET status = 'deleted', deleted = 1, deleted_at = ?, "
                  "updated_at = ?, version = version + 1 WHERE id = ? AND deleted = 0"));
    int64_t now = NowMicros();
    INGOT_RETURN_IF_ERROR(st.BindAll({now, now, id}));
    INGOT_RETURN_IF_ERROR(st.Run());
  }
  if (c.Changes() == 0) return NotFound("No image found with ID " + id);
  return tx.Commit();
}

Result<ImagePage> SqliteImageRepository::List(const ListQuery& query, const Viewer& viewer) {
  if (query.limit < 0) return InvalidArgument("limit param must be positive");
  int limit = std::min(query.limit, kMaxListLimit);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kRead));

  Sql q;
  q.text = std::string("SELECT ") + kImageColumns + " FROM images WHERE images.deleted = 0";
  AppendVisibility(q, query, viewer);
  AppendFilters(q, query);
  if (query.marker) {
    // Glance answers 400 for a marker that names no image the caller may see. Admins may also page
    // on from an image deleted meanwhile (Glance lets contexts that can see deleted images do so);
    // its row is kept, so its sort values still place the next page.
    INGOT_ASSIGN_OR_RETURN(std::optional<Image> marker,
                           FindImage(c, *query.marker, /*include_deleted=*/viewer.is_admin));
    bool visible = false;
    if (marker) {
      std::optional<MemberStatus> membership;
      if (viewer.project && !viewer.is_admin && marker->visibility == Visibility::kShared) {
        INGOT_ASSIGN_OR_RETURN(membership, FindMembership(c, marker->id, *viewer.project));
      }
      visible = IsVisible(*marker, viewer, membership);
    }
    if (!visible) return InvalidArgument("No image found with ID " + *query.marker);
    AppendAfterMarker(q, query.sort, *marker);
  }
  ImagePage page;
  if (limit == 0) return page;
  AppendOrder(q, query.sort);
  q.text += " LIMIT ?";
  q.args.emplace_back(int64_t{limit} + 1);  // one more than asked says whether a next page exists
  INGOT_ASSIGN_OR_RETURN(page.images, RunImageQuery(c, q));
  if (static_cast<int>(page.images.size()) > limit) {
    page.images.resize(limit);
    page.next_marker = page.images.back().id;
  }
  INGOT_RETURN_IF_ERROR(LoadChildren(c, page.images));
  INGOT_RETURN_IF_ERROR(tx.Commit());
  return page;
}

Result<std::vector<Image>> SqliteImageRepository::ListByStatus(
    const std::vector<ImageStatus>& statuses) {
  if (statuses.empty()) return std::vector<Image>();
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kRead));
  Sql q;
  q.text = std::string("SELECT ") + kImageColumns +
           " FROM images WHERE images.deleted = 0 AND images.status IN (" +
           Placeholders(statuses.size()) + ") ORDER BY images.created_at, images.id";
  for (ImageStatus s : statuses) q.args.emplace_back(std::string(StatusName(s)));
  INGOT_ASSIGN_OR_RETURN(std::vector<Image> images, RunImageQuery(c, q));
  // Children in slices, keeping each statement's parameter count modest.
  constexpr size_t kSlice = 200;
  for (size_t i = 0; i < images.size(); i += kSlice) {
    size_t n = std::min(kSlice, images.size() - i);
    std::vector<Image> slice(std::make_move_iterator(images.begin() + i),
                             std::make_move_iterator(images.begin() + i + n));
    INGOT_RETURN_IF_ERROR(LoadChildren(c, slice));
    std::move(slice.begin(), slice.end(), images.begin() + i);
  }
  INGOT_RETURN_IF_ERROR(tx.Commit());
  return images;
}

Result<std::map<ImageStatus, int64_t>> SqliteImageRepository::CountByStatus() {
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  INGOT_ASSIGN_OR_RETURN(
      Statement st,
      (*lease).Prepare("SELECT status, count(*) FROM images WHERE deleted = 0 GROUP BY status"));
  std::map<ImageStatus, int64_t> counts;
  while (true) {
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    auto status = ParseStatus(st.Text(0));
    if (!status) return Corruption("unknown image status '" + st.Text(0) + "' in the catalog");
    counts[*status] = st.Int(1);
  }
  return counts;
}

Status SqliteImageRepository::AddMember(const ImageMember& member) {
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
  INGOT_RETURN_IF_ERROR(CheckImageExists(c, member.image_id));
  {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        c.Prepare("INSERT INTO image_members (image_id, member, status, created_at, updated_at) "
                  "VALUES (?, ?, ?, ?, ?)"));
    INGOT_RETURN_IF_ERROR(
        st.BindAll({member.image_id, member.member, std::string(MemberStatusName(member.status)),
                    member.created_at, member.updated_at}));
    Status s = st.Run();
    if (s.code() == Code::kAlreadyExists) {
      return AlreadyExists("Member " + member.member + " already exists on image " +
                           member.image_id);
    }
    INGOT_RETURN_IF_ERROR(s);
  }
  return tx.Commit();
}

Status SqliteImageRepository::UpdateMember(const ImageMember& member) {
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
  INGOT_RETURN_IF_ERROR(CheckImageExists(c, member.image_id));
  {
    INGOT_ASSIGN_OR_RETURN(Statement st,
                           c.Prepare("UPDATE image_members SET status = ?, updated_at = ? "
                                     "WHERE image_id = ? AND member = ?"));
    INGOT_RETURN_IF_ERROR(st.BindAll({std::string(MemberStatusName(member.status)),
                                      member.updated_at, member.image_id, member.member}));
    INGOT_RETURN_IF_ERROR(st.Run());
  }
  if (c.Changes() == 0) {
    return NotFound("Member " + member.member + " not found on image " + member.image_id);
  }
  return tx.Commit();
}

Status SqliteImageRepository::RemoveMember(const std::string& image_id, const std::string& member) {
  std::lock_guard writer(write_mu_);
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kWrite));
  INGOT_RETURN_IF_ERROR(CheckImageExists(c, image_id));
  {
    INGOT_ASSIGN_OR_RETURN(
        Statement st, c.Prepare("DELETE FROM image_members WHERE image_id = ? AND member = ?"));
    INGOT_RETURN_IF_ERROR(st.BindAll({image_id, member}));
    INGOT_RETURN_IF_ERROR(st.Run());
  }
  if (c.Changes() == 0) return NotFound("Member " + member + " not found on image " + image_id);
  return tx.Commit();
}

namespace {

ImageMember ReadMember(const Statement& st) {
  ImageMember m;
  m.image_id = st.Text(0);
  m.member = st.Text(1);
  m.status = ParseMemberStatus(st.Text(2)).value_or(MemberStatus::kPending);
  m.created_at = st.Int(3);
  m.updated_at = st.Int(4);
  return m;
}

}  // namespace

Result<ImageMember> SqliteImageRepository::GetMember(const std::string& image_id,
                                                     const std::string& member) {
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kRead));
  INGOT_RETURN_IF_ERROR(CheckImageExists(c, image_id));
  INGOT_ASSIGN_OR_RETURN(Statement st,
                         c.Prepare("SELECT image_id, member, status, created_at, updated_at "
                                   "FROM image_members WHERE image_id = ? AND member = ?"));
  INGOT_RETURN_IF_ERROR(st.BindAll({image_id, member}));
  INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("Member " + member + " not found on image " + image_id);
  return ReadMember(st);
}

Result<std::vector<ImageMember>> SqliteImageRepository::ListMembers(const std::string& image_id) {
  INGOT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  Connection& c = *lease;
  INGOT_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c, Transaction::Kind::kRead));
  INGOT_RETURN_IF_ERROR(CheckImageExists(c, image_id));
  INGOT_ASSIGN_OR_RETURN(Statement st,
                         c.Prepare("SELECT image_id, member, status, created_at, updated_at "
                                   "FROM image_members WHERE image_id = ? ORDER BY member"));
  INGOT_RETURN_IF_ERROR(st.Bind(1, image_id));
  std::vector<ImageMember> out;
  while (true) {
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(ReadMember(st));
  }
  return out;
}

}  // namespace ingot::catalog
