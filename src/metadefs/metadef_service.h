// The metadata-definition use cases: the only writer of metadef records. Who may call which is the
// API edge's policy (metadef writes are admin-only by default); here live the rules that hold for
// everyone: a private namespace is invisible (404) to other projects unless the caller is an admin
// (Glance's "secure metadef APIs"), a protected namespace and its items cannot be deleted (403),
// timestamps, and paging.
//
// Threads: every method may be called from any thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "metadefs/repository.h"

namespace ingot::metadefs {

struct NamespaceQuery {
  NamespaceFilter filter;
  NamespaceSort sort = NamespaceSort::kCreatedAt;
  bool ascending = false;
  std::optional<std::string> marker;  // the last namespace of the previous page
  size_t limit = 25;
};

struct NamespaceWithTypes {
  Namespace ns;
  std::vector<Association> associations;
};

struct NamespacePage {
  std::vector<NamespaceWithTypes> namespaces;
  // Set when the page is full (Glance offers "next" then, even if nothing follows).
  std::optional<std::string> next_marker;
};

// A namespace with everything in it (GET /v2/metadefs/namespaces/{ns}).
struct NamespaceDetail {
  Namespace ns;
  std::vector<Association> associations;
  std::vector<Item> objects;
  std::vector<Item> properties;
  std::vector<Item> tags;
};

class MetadefService {
 public:
  explicit MetadefService(Repository& repo) : repo_(repo) {}

  // Creates a namespace with its items; its owner is the caller's project unless the document
  // names one.
  Result<NamespaceTree> CreateNamespace(NamespaceTree tree, const Viewer& viewer);
  // kNotFound for a marker the viewer cannot see.
  Result<NamespacePage> ListNamespaces(const NamespaceQuery& query);
  Result<Namespace> GetNamespace(std::string_view name, const Viewer& viewer);
  Result<NamespaceDetail> GetNamespaceDetail(std::string_view name, const Viewer& viewer);
  // Replaces the namespace's own fields (Glance's PUT); its owner becomes the caller's project
  // when `fields` names none.
  Result<Namespace> UpdateNamespace(std::string_view name, Namespace fields, const Viewer& viewer);
  Status DeleteNamespace(std::string_view name, const Viewer& viewer);

  Result<std::vector<ResourceType>> ListResourceTypes();
  Result<std::vector<Association>> ListAssociations(std::string_view ns, const Viewer& viewer);
  Result<Association> AddAssociation(std::string_view ns, Association a, const Viewer& viewer);
  Status RemoveAssociation(std::string_view ns, std::string_view resource_type,
                           const Viewer& viewer);

  Result<std::vector<Item>> ListItems(std::string_view ns, ItemKind kind, const Viewer& viewer);
  Result<Item> GetItem(std::string_view ns, ItemKind kind, std::string_view name,
                       const Viewer& viewer);
  Result<Item> AddItem(std::string_view ns, ItemKind kind, Item item, const Viewer& viewer);
  // Tags in bulk: all or nothing; without `append` they replace the namespace's tags.
  Result<std::vector<Item>> AddTags(std::string_view ns, std::vector<Item> tags, bool append,
                                    const Viewer& viewer);
  // Replaces an item's definition (a rename included); keeps its creation time.
  Result<Item> SaveItem(std::string_view ns, ItemKind kind, std::string_view current, Item item,
                        const Viewer& viewer);
  Status RemoveItem(std::string_view ns, ItemKind kind, std::string_view name,
                    const Viewer& viewer);
  Status RemoveItems(std::string_view ns, ItemKind kind, const Viewer& viewer);

 private:
  Repository& repo_;
};

}  // namespace ingot::metadefs
