#include "catalog/sqlite/sqlite_repository.h"

#include <iterator>
#include <vector>

#include "catalog/sqlite/sqlite_backend.h"

namespace ingot::catalog {
namespace {

// Schema migrations, applied in order; entry i takes the schema from version i to i + 1. Never edit
// one that has shipped: add a new one. PostgreSQL's schema (postgres/pg_repository.cc) keeps the
// same tables, columns and versions in its own types.
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
    // 3: list orders walked from an index. Each list sorts by its keys, then created_at, then id
    // (list_query.cc); an index on exactly that order lets a page (and keyset pagination after a
    // marker, list_sql.cc) read its rows in order and stop, where an index on the key alone left
    // a sort of every visible row (EXPLAIN ANALYZE, PostgreSQL, 10,000 images, sort=name:
    // 3.4 ms seq scan + top-N sort -> 0.34 ms). Owner and status filters and a visibility filter
    // walk theirs in the default order.
    R"sql(
DROP INDEX IF EXISTS images_name;
DROP INDEX IF EXISTS images_owner;
DROP INDEX IF EXISTS images_status;
CREATE INDEX IF NOT EXISTS images_name_order ON images (name, created_at, id)
  WHERE deleted = 0;
CREATE INDEX IF NOT EXISTS images_owner_order ON images (owner, created_at, id)
  WHERE deleted = 0;
CREATE INDEX IF NOT EXISTS images_status_order ON images (status, created_at, id)
  WHERE deleted = 0;
CREATE INDEX IF NOT EXISTS images_visibility_order ON images (visibility, created_at, id)
  WHERE deleted = 0;
)sql",
    // 4: a location's metadata (Glance's location `metadata`, a JSON object's text; '' is none),
    // written by the PATCH /locations API (service/locations.h).
    R"sql(
ALTER TABLE image_locations ADD COLUMN metadata TEXT NOT NULL DEFAULT '';
)sql",
    // 5: job leases: cluster-wide jobs one node at a time (the scrubber; catalog/job_leases.h).
    R"sql(
CREATE TABLE IF NOT EXISTS job_leases (
  name     TEXT PRIMARY KEY NOT NULL,
  holder   TEXT,
  until_at INTEGER NOT NULL,
  done_at  INTEGER NOT NULL,
  progress TEXT NOT NULL
);
)sql",
};
const std::vector<const char*> kSteps(std::begin(kMigrations), std::end(kMigrations));

constexpr const char* kVersionTable =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";

}  // namespace

int SqliteImageRepository::LatestSchemaVersion() { return static_cast<int>(std::size(kMigrations)); }

Result<std::unique_ptr<SqliteImageRepository>> SqliteImageRepository::Open(
    const std::string& path) {
  return Open(path, Options{});
}

Result<std::unique_ptr<SqliteImageRepository>> SqliteImageRepository::Open(const std::string& path,
                                                                           Options options) {
  INGOT_ASSIGN_OR_RETURN(auto db,
                         sqlite::Database::Open(path, {.pool_size = options.pool_size}));
  return Open(std::move(db));
}

Result<std::unique_ptr<SqliteImageRepository>> SqliteImageRepository::Open(
    std::shared_ptr<sqlite::Database> db) {
  std::string path = db->path();
  std::unique_ptr<SqliteImageRepository> repo(
      new SqliteImageRepository(sqlite::MakeBackend(std::move(db))));
  INGOT_RETURN_IF_ERROR(
      sql::Migrate(repo->backend(), kVersionTable, kSteps).WithContext("open catalog " + path));
  return repo;
}

}  // namespace ingot::catalog
