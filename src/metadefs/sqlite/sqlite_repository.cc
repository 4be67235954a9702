#include "metadefs/sqlite/sqlite_repository.h"

namespace ingot::metadefs {

using catalog::sqlite::Connection;
using catalog::sqlite::Statement;
using catalog::sqlite::Value;

namespace {

// Never edit a shipped step: add one.
constexpr const char* kSteps[] = {
    // 1: namespaces, resource types, their associations, the items of a namespace (objects,
    // properties, tags: a JSON definition each), and the shipped files loaded once.
    "CREATE TABLE metadef_namespaces ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  namespace TEXT NOT NULL UNIQUE,"
    "  display_name TEXT, description TEXT,"
    "  visibility TEXT NOT NULL, protected INTEGER NOT NULL, owner TEXT,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE metadef_resource_types ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE, protected INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER);"
    "CREATE TABLE metadef_associations ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  namespace_id INTEGER NOT NULL REFERENCES metadef_namespaces(id) ON DELETE CASCADE,"
    "  resource_type_id INTEGER NOT NULL REFERENCES metadef_resource_types(id),"
    "  prefix TEXT, properties_target TEXT,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  UNIQUE (namespace_id, resource_type_id));"
    "CREATE INDEX metadef_associations_by_type ON metadef_associations (resource_type_id);"
    "CREATE TABLE metadef_items ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  namespace_id INTEGER NOT NULL REFERENCES metadef_namespaces(id) ON DELETE CASCADE,"
    "  kind INTEGER NOT NULL, name TEXT NOT NULL, name_key TEXT NOT NULL, body TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  UNIQUE (namespace_id, kind, name_key));"
    "CREATE TABLE metadef_loaded (source TEXT PRIMARY KEY NOT NULL, loaded_at INTEGER NOT NULL)"
    " WITHOUT ROWID;",
};

Value V(const std::optional<std::string>& s) { return s ? Value(*s) : Value(nullptr); }
Value V(std::string_view s) { return Value(std::string(s)); }
Value V(const std::string& s) { return Value(s); }
Value V(int64_t i) { return Value(i); }
Value V(bool b) { return Value(int64_t{b ? 1 : 0}); }

// Prepares `sql` and binds `values`.
Result<Statement> Run(Connection& c, const std::string& sql, const std::vector<Value>& values) {
  INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare(sql));
  INGOT_RETURN_IF_ERROR(st.BindAll(values));
  return st;
}

Status Exec(Connection& c, const std::string& sql, const std::vector<Value>& values) {
  INGOT_ASSIGN_OR_RETURN(Statement st, Run(c, sql, values));
  return st.Run();
}

constexpr const char* kNamespaceColumns =
    "id, namespace, display_name, description, visibility, protected, owner, created_at, "
    "updated_at";

Namespace NamespaceOf(const Statement& st) {
  Namespace ns;
  ns.name = st.Text(1);
  ns.display_name = st.OptText(2);
  ns.description = st.OptText(3);
  ns.visibility = ParseVisibility(st.Text(4)).value_or(Visibility::kPrivate);
  ns.is_protected = st.Int(5) != 0;
  ns.owner = st.OptText(6);
  ns.created_at = st.Int(7);
  ns.updated_at = st.Int(8);
  return ns;
}

// The row id of namespace `name`; NamespaceNotFound when there is none.
Result<int64_t> NamespaceId(Connection& c, std::string_view name) {
  INGOT_ASSIGN_OR_RETURN(Statement st,
                         Run(c, "SELECT id FROM metadef_namespaces WHERE namespace = ?", {V(name)}));
  INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NamespaceNotFound(name);
  return st.Int(0);
}

Result<int64_t> ResourceTypeId(Connection& c, std::string_view name, int64_t now, bool create) {
  INGOT_ASSIGN_OR_RETURN(
      Statement st, Run(c, "SELECT id FROM metadef_resource_types WHERE name = ?", {V(name)}));
  INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
  if (row) return st.Int(0);
  if (!create) return int64_t{-1};
  INGOT_RETURN_IF_ERROR(Exec(c,
                             "INSERT INTO metadef_resource_types (name, protected, created_at, "
                             "updated_at) VALUES (?, 0, ?, ?)",
                             {V(name), V(now), V(now)}));
  return static_cast<int64_t>(sqlite3_last_insert_rowid(c.db()));
}

Status InsertAssociation(Connection& c, std::string_view ns, int64_t ns_id, const Association& a,
                         bool shipped) {
  INGOT_ASSIGN_OR_RETURN(int64_t type_id, ResourceTypeId(c, a.resource_type, a.created_at, true));
  if (shipped) {
    // Types named by shipped definitions are Glance's well-known ones: protected, no updated_at.
    INGOT_RETURN_IF_ERROR(Exec(
        c, "UPDATE metadef_resource_types SET protected = 1, updated_at = NULL WHERE id = ? AND "
           "created_at = ?",
        {V(type_id), V(a.created_at)}));
  }
  INGOT_ASSIGN_OR_RETURN(Statement st, Run(c,
                                           "SELECT 1 FROM metadef_associations WHERE "
                                           "namespace_id = ? AND resource_type_id = ?",
                                           {V(ns_id), V(type_id)}));
  INGOT_ASSIGN_OR_RETURN(bool taken, st.Step());
  if (taken) return AssociationExists(ns, a.resource_type);
  return Exec(c,
              "INSERT INTO metadef_associations (namespace_id, resource_type_id, prefix, "
              "properties_target, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
              {V(ns_id), V(type_id), V(a.prefix), V(a.properties_target), V(a.created_at),
               V(a.updated_at)});
}

Result<bool> ItemTaken(Connection& c, int64_t ns_id, ItemKind kind, std::string_view name) {
  INGOT_ASSIGN_OR_RETURN(Statement st, Run(c,
                                           "SELECT 1 FROM metadef_items WHERE namespace_id = ? AND "
                                           "kind = ? AND name_key = ?",
                                           {V(ns_id), V(int64_t{static_cast<int>(kind)}),
                                            V(ItemKey(kind, name))}));
  return st.Step();
}

Status InsertItem(Connection& c, std::string_view ns, int64_t ns_id, ItemKind kind,
                  const Item& item) {
  INGOT_ASSIGN_OR_RETURN(bool taken, ItemTaken(c, ns_id, kind, item.name));
  if (taken) return ItemExists(kind, ns, item.name);
  return Exec(c,
              "INSERT INTO metadef_items (namespace_id, kind, name, name_key, body, created_at, "
              "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
              {V(ns_id), V(int64_t{static_cast<int>(kind)}), V(item.name),
               V(ItemKey(kind, item.name)), V(item.body), V(item.created_at), V(item.updated_at)});
}

Item ItemOf(const Statement& st) {
  return Item{.name = st.Text(0), .body = st.Text(1), .created_at = st.Int(2),
              .updated_at = st.Int(3)};
}

}  // namespace

Result<std::unique_ptr<SqliteRepository>> SqliteRepository::Open(
    std::shared_ptr<catalog::sqlite::Database> db) {
  INGOT_RETURN_IF_ERROR(db->Migrate("metadefs", kSteps));
  return std::unique_ptr<SqliteRepository>(new SqliteRepository(std::move(db)));
}

Status SqliteRepository::AddNamespace(const NamespaceTree& tree) {
  const Namespace& ns = tree.ns;
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        Run(c, "SELECT 1 FROM metadef_namespaces WHERE namespace = ?", {V(ns.name)}));
    INGOT_ASSIGN_OR_RETURN(bool taken, st.Step());
    if (taken) return NamespaceExists(ns.name);
    INGOT_RETURN_IF_ERROR(Exec(c,
                               "INSERT INTO metadef_namespaces (namespace, display_name, "
                               "description, visibility, protected, owner, created_at, "
                               "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               {V(ns.name), V(ns.display_name), V(ns.description),
                                V(VisibilityName(ns.visibility)), V(ns.is_protected), V(ns.owner),
                                V(ns.created_at), V(ns.updated_at)}));
    int64_t id = sqlite3_last_insert_rowid(c.db());
    for (const Association& a : tree.associations) {
      INGOT_RETURN_IF_ERROR(InsertAssociation(c, ns.name, id, a, tree.shipped));
    }
    for (const Item& i : tree.objects) {
      INGOT_RETURN_IF_ERROR(InsertItem(c, ns.name, id, ItemKind::kObject, i));
    }
    for (const Item& i : tree.properties) {
      INGOT_RETURN_IF_ERROR(InsertItem(c, ns.name, id, ItemKind::kProperty, i));
    }
    for (const Item& i : tree.tags) {
      INGOT_RETURN_IF_ERROR(InsertItem(c, ns.name, id, ItemKind::kTag, i));
    }
    return Status::Ok();
  });
}

Result<Namespace> SqliteRepository::GetNamespace(std::string_view name) {
  Namespace out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        Statement st, Run(c,
                          std::string("SELECT ") + kNamespaceColumns +
                              " FROM metadef_namespaces WHERE namespace = ?",
                          {V(name)}));
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return NamespaceNotFound(name);
    out = NamespaceOf(st);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<Namespace>> SqliteRepository::ListNamespaces(const NamespaceFilter& filter,
                                                                NamespaceSort sort,
                                                                bool ascending) {
  // Every fragment below is code; user values are bound.
  std::string sql = std::string("SELECT ") + kNamespaceColumns + " FROM metadef_namespaces n";
  std::vector<Value> values;
  std::vector<std::string> where;
  if (!filter.viewer.admin) {
    if (filter.viewer.project) {
      where.push_back("(visibility = 'public' OR owner = ?)");
      values.push_back(*filter.viewer.project);
    } else {
      where.push_back("visibility = 'public'");
    }
  }
  if (filter.visibility) {
    where.push_back("visibility = ?");
    values.push_back(std::string(VisibilityName(*filter.visibility)));
  }
  if (!filter.resource_types.empty()) {
    std::string in;
    for (const std::string& t : filter.resource_types) {
      in += in.empty() ? "?" : ", ?";
      values.push_back(t);
    }
    where.push_back(
        "EXISTS (SELECT 1 FROM metadef_associations a JOIN metadef_resource_types t ON "
        "t.id = a.resource_type_id WHERE a.namespace_id = n.id AND t.name IN (" +
        in + "))");
  }
  for (size_t i = 0; i < where.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + where[i];
  const char* column = "created_at";
  switch (sort) {
    case NamespaceSort::kCreatedAt:
      column = "created_at";
      break;
    case NamespaceSort::kUpdatedAt:
      column = "updated_at";
      break;
    case NamespaceSort::kNamespace:
      column = "namespace";
      break;
    case NamespaceSort::kDisplayName:
      column = "display_name";
      break;
    case NamespaceSort::kVisibility:
      column = "visibility";
      break;
    case NamespaceSort::kOwner:
      column = "owner";
      break;
  }
  const char* dir = ascending ? " ASC" : " DESC";
  sql += std::string(" ORDER BY ") + column + dir + ", id" + dir;
  std::vector<Namespace> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st, Run(c, sql, values));
    while (true) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back(NamespaceOf(st));
    }
    return Status::Ok();
  }));
  return out;
}

Status SqliteRepository::SaveNamespace(std::string_view current, const Namespace& ns) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(int64_t id, NamespaceId(c, current));
    if (ns.name != current) {
      INGOT_ASSIGN_OR_RETURN(
          Statement st,
          Run(c, "SELECT 1 FROM metadef_namespaces WHERE namespace = ?", {V(ns.name)}));
      INGOT_ASSIGN_OR_RETURN(bool taken, st.Step());
      if (taken) return NamespaceExists(ns.name);
    }
    return Exec(c,
                "UPDATE metadef_namespaces SET namespace = ?, display_name = ?, description = ?, "
                "visibility = ?, protected = ?, owner = ?, updated_at = ? WHERE id = ?",
                {V(ns.name), V(ns.display_name), V(ns.description),
                 V(VisibilityName(ns.visibility)), V(ns.is_protected), V(ns.owner),
                 V(ns.updated_at), V(id)});
  });
}

Status SqliteRepository::RemoveNamespace(std::string_view name) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(int64_t id, NamespaceId(c, name));
    INGOT_RETURN_IF_ERROR(Exec(c, "DELETE FROM metadef_items WHERE namespace_id = ?", {V(id)}));
    INGOT_RETURN_IF_ERROR(
        Exec(c, "DELETE FROM metadef_associations WHERE namespace_id = ?", {V(id)}));
    return Exec(c, "DELETE FROM metadef_namespaces WHERE id = ?", {V(id)});
  });
}

Result<std::vector<ResourceType>> SqliteRepository::ListResourceTypes() {
  std::vector<ResourceType> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st, c.Prepare("SELECT name, protected, created_at, updated_at "
                                                   "FROM metadef_resource_types ORDER BY id"));
    while (true) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back({.name = st.Text(0), .is_protected = st.Int(1) != 0,
                     .created_at = st.Int(2), .updated_at = st.OptInt(3)});
    }
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<Association>> SqliteRepository::ListAssociations(std::string_view ns) {
  std::vector<Association> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(int64_t id, NamespaceId(c, ns));
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        Run(c,
            "SELECT t.name, a.prefix, a.properties_target, a.created_at, a.updated_at FROM "
            "metadef_associations a JOIN metadef_resource_types t ON t.id = a.resource_type_id "
            "WHERE a.namespace_id = ? ORDER BY a.id",
            {V(id)}));
    while (true) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back({.resource_type = st.Text(0), .prefix = st.OptText(1),
                     .properties_target = st.OptText(2), .created_at = st.Int(3),
                     .updated_at = st.Int(4)});
    }
    return Status::Ok();
  }));
  return out;
}

Status SqliteRepository::AddAssociation(std::string_view ns, const Association& a) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(int64_t id, NamespaceId(c, ns));
    return InsertAssociation(c, ns, id, a, /*shipped=*/false);
  });
}

Status SqliteRepository::RemoveAssociation(std::string_view ns, std::string_view resource_type) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(int64_t id, NamespaceId(c, ns));
    INGOT_ASSIGN_OR_RETURN(int64_t type_id, ResourceTypeId(c, resource_type, 0, false));
    if (type_id < 0) return AssociationNotFound(ns, resource_type);
    INGOT_RETURN_IF_ERROR(Exec(
        c, "DELETE FROM metadef_associations WHERE namespace_id = ? AND resource_type_id = ?",
        {V(id), V(type_id)}));
    if (c.Changes() == 0) return AssociationNotFound(ns, resource_type);
    return Status::Ok();
  });
}

Result<std::vector<Item>> SqliteRepository::ListItems(std::string_view ns, ItemKind kind) {
  std::vector<Item> out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(int64_t id, NamespaceId(c, ns));
    // Tags newest first, objects and properties by name, as Glance lists them.
    INGOT_ASSIGN_OR_RETURN(
        Statement st,
        Run(c,
            kind == ItemKind::kTag
                ? "SELECT name, body, created_at, updated_at FROM metadef_items WHERE "
                  "namespace_id = ? AND kind = ? ORDER BY created_at DESC, id DESC"
                : "SELECT name, body, created_at, updated_at FROM metadef_items WHERE "
                  "namespace_id = ? AND kind = ? ORDER BY name, id",
            {V(id), V(int64_t{static_cast<int>(kind)})}));
    while (true) {
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      out.push_back(ItemOf(st));
    }
    return Status::Ok();
  }));
  return out;
}

Result<Item> SqliteRepository::GetItem(std::string_view ns, ItemKind kind, std::string_view name) {
  Item out;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(int64_t id, NamespaceId(c, ns));
    INGOT_ASSIGN_OR_RETURN(Statement st,
                           Run(c,
                               "SELECT name, body, created_at, updated_at FROM metadef_items "
                               "WHERE namespace_id = ? AND kind = ? AND name_key = ?",
                               {V(id), V(int64_t{static_cast<int>(kind)}), V(ItemKey(kind, name))}));
    INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return ItemNotFound(kind, name);
    out = ItemOf(st);
    return Status::Ok();
  }));
  return out;
}

Status SqliteRepository::AddItems(std::string_view ns, ItemKind kind, std::span<const Item> items,
                                  bool replace) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(int64_t id, NamespaceId(c, ns));
    if (replace) {
      INGOT_RETURN_IF_ERROR(Exec(c, "DELETE FROM metadef_items WHERE namespace_id = ? AND kind = ?",
                                 {V(id), V(int64_t{static_cast<int>(kind)})}));
    }
    for (const Item& item : items) INGOT_RETURN_IF_ERROR(InsertItem(c, ns, id, kind, item));
    return Status::Ok();
  });
}

Status SqliteRepository::SaveItem(std::string_view ns, ItemKind kind, std::string_view current,
                                  const Item& item) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(int64_t id, NamespaceId(c, ns));
    INGOT_ASSIGN_OR_RETURN(bool exists, ItemTaken(c, id, kind, current));
    if (!exists) return ItemNotFound(kind, current);
    if (ItemKey(kind, item.name) != ItemKey(kind, current)) {
      INGOT_ASSIGN_OR_RETURN(bool taken, ItemTaken(c, id, kind, item.name));
      if (taken) return ItemExists(kind, ns, item.name);
    }
    return Exec(c,
                "UPDATE metadef_items SET name = ?, name_key = ?, body = ?, updated_at = ? WHERE "
                "namespace_id = ? AND kind = ? AND name_key = ?",
                {V(item.name), V(ItemKey(kind, item.name)), V(item.body), V(item.updated_at),
                 V(id), V(int64_t{static_cast<int>(kind)}), V(ItemKey(kind, current))});
  });
}

Status SqliteRepository::RemoveItem(std::string_view ns, ItemKind kind, std::string_view name) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(int64_t id, NamespaceId(c, ns));
    INGOT_RETURN_IF_ERROR(Exec(
        c, "DELETE FROM metadef_items WHERE namespace_id = ? AND kind = ? AND name_key = ?",
        {V(id), V(int64_t{static_cast<int>(kind)}), V(ItemKey(kind, name))}));
    if (c.Changes() == 0) return ItemNotFound(kind, name);
    return Status::Ok();
  });
}

Status SqliteRepository::RemoveItems(std::string_view ns, ItemKind kind) {
  return db_->Write([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(int64_t id, NamespaceId(c, ns));
    return Exec(c, "DELETE FROM metadef_items WHERE namespace_id = ? AND kind = ?",
                {V(id), V(int64_t{static_cast<int>(kind)})});
  });
}

Result<bool> SqliteRepository::WasLoaded(std::string_view source) {
  bool loaded = false;
  INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
    INGOT_ASSIGN_OR_RETURN(Statement st,
                           Run(c, "SELECT 1 FROM metadef_loaded WHERE source = ?", {V(source)}));
    INGOT_ASSIGN_OR_RETURN(loaded, st.Step());
    return Status::Ok();
  }));
  return loaded;
}

Status SqliteRepository::MarkLoaded(std::string_view source, int64_t at) {
  return db_->Write([&](Connection& c) -> Status {
    return Exec(c,
                "INSERT INTO metadef_loaded (source, loaded_at) VALUES (?, ?) ON CONFLICT (source) "
                "DO NOTHING",
                {V(source), V(at)});
  });
}

}  // namespace ingot::metadefs
