// Where metadata definitions are kept. The embedded implementation is SQLite
// (sqlite_repository.h, on the catalog database); a PostgreSQL one can follow behind the same
// interface. The repository enforces identity (409s, 404s with Glance's texts from metadefs.h) and
// atomicity; visibility, protection and timestamps are the service's (metadef_service.h).
//
// Threads: every method may be called from any thread. Each call is one transaction.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "metadefs/metadefs.h"

namespace ingot::metadefs {

// A namespace with everything created with it (POST /v2/metadefs/namespaces, shipped files).
struct NamespaceTree {
  Namespace ns;
  std::vector<Association> associations;
  std::vector<Item> objects;
  std::vector<Item> properties;
  std::vector<Item> tags;
  bool shipped = false;  // from Ingot's shipped definitions: resource types it names are protected
};

// Which namespaces a list returns, already restricted to what the viewer may see.
struct NamespaceFilter {
  Viewer viewer;
  std::optional<Visibility> visibility;
  std::vector<std::string> resource_types;  // any of these (empty: no filter)
};

// Sort columns a namespace list may name (Glance's sort_key values).
enum class NamespaceSort { kCreatedAt, kUpdatedAt, kNamespace, kDisplayName, kVisibility, kOwner };

class Repository {
 public:
  virtual ~Repository() = default;

  // ---- Namespaces ----
  // All or nothing: kAlreadyExists (NamespaceExists, ItemExists, AssociationExists) when a name is
  // taken, also between two items of the tree.
  virtual Status AddNamespace(const NamespaceTree& tree) = 0;
  // kNotFound (NamespaceNotFound).
  virtual Result<Namespace> GetNamespace(std::string_view name) = 0;
  // Every namespace passing `filter`, ordered by `sort` then insertion, descending unless
  // `ascending`.
  virtual Result<std::vector<Namespace>> ListNamespaces(const NamespaceFilter& filter,
                                                        NamespaceSort sort, bool ascending) = 0;
  // Replaces the record named `current` (a rename keeps its items). kAlreadyExists on a taken name.
  virtual Status SaveNamespace(std::string_view current, const Namespace& ns) = 0;
  // Removes the namespace with its items and associations.
  virtual Status RemoveNamespace(std::string_view name) = 0;

  // ---- Resource types and associations ----
  virtual Result<std::vector<ResourceType>> ListResourceTypes() = 0;
  virtual Result<std::vector<Association>> ListAssociations(std::string_view ns) = 0;
  // Creates the resource type on first use. kAlreadyExists (AssociationExists).
  virtual Status AddAssociation(std::string_view ns, const Association& a) = 0;
  // kNotFound (AssociationNotFound).
  virtual Status RemoveAssociation(std::string_view ns, std::string_view resource_type) = 0;

  // ---- Objects, properties, tags ----
  virtual Result<std::vector<Item>> ListItems(std::string_view ns, ItemKind kind) = 0;
  virtual Result<Item> GetItem(std::string_view ns, ItemKind kind, std::string_view name) = 0;
  // Adds `items` (after removing every item of that kind first when `replace`), all or nothing.
  virtual Status AddItems(std::string_view ns, ItemKind kind, std::span<const Item> items,
                          bool replace) = 0;
  // Replaces the item named `current` (a rename included). kNotFound, kAlreadyExists.
  virtual Status SaveItem(std::string_view ns, ItemKind kind, std::string_view current,
                          const Item& item) = 0;
  virtual Status RemoveItem(std::string_view ns, ItemKind kind, std::string_view name) = 0;
  virtual Status RemoveItems(std::string_view ns, ItemKind kind) = 0;

  // ---- Shipped definitions ----
  // Whether the definitions file `source` was loaded once (then never again, so that a namespace
  // an operator deleted stays deleted), and recording that it was.
  virtual Result<bool> WasLoaded(std::string_view source) = 0;
  virtual Status MarkLoaded(std::string_view source, int64_t at) = 0;
};

}  // namespace ingot::metadefs
