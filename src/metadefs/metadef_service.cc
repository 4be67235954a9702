#include "metadefs/metadef_service.h"

#include <algorithm>

#include "common/time.h"

namespace ingot::metadefs {

Result<NamespaceTree> MetadefService::CreateNamespace(NamespaceTree tree, const Viewer& viewer) {
  if (!tree.ns.owner) tree.ns.owner = viewer.project;
  INGOT_RETURN_IF_ERROR(repo_.AddNamespace(tree));
  return tree;
}

Result<NamespacePage> MetadefService::ListNamespaces(const NamespaceQuery& query) {
  // Namespaces number in the tens to hundreds (Glance ships 31): the visible, filtered list is
  // read whole and paged here, which keeps markers exact for every sort key, nullable ones too.
  INGOT_ASSIGN_OR_RETURN(std::vector<Namespace> all,
                         repo_.ListNamespaces(query.filter, query.sort, query.ascending));
  size_t begin = 0;
  if (query.marker) {
    auto it = std::find_if(all.begin(), all.end(),
                           [&](const Namespace& ns) { return ns.name == *query.marker; });
    if (it == all.end()) return NamespaceNotFound(*query.marker);
    begin = static_cast<size_t>(it - all.begin()) + 1;
  }
  NamespacePage page;
  for (size_t i = begin; i < all.size() && page.namespaces.size() < query.limit; ++i) {
    INGOT_ASSIGN_OR_RETURN(auto associations, repo_.ListAssociations(all[i].name));
    page.namespaces.push_back({std::move(all[i]), std::move(associations)});
  }
  if (!page.namespaces.empty() && page.namespaces.size() == query.limit) {
    page.next_marker = page.namespaces.back().ns.name;
  }
  return page;
}

Result<Namespace> MetadefService::GetNamespace(std::string_view name, const Viewer& viewer) {
  INGOT_ASSIGN_OR_RETURN(Namespace ns, repo_.GetNamespace(name));
  // Another project's private namespace answers as a missing one: its existence is not told.
  if (!IsVisible(ns, viewer)) return NamespaceNotFound(name);
  return ns;
}

Result<NamespaceDetail> MetadefService::GetNamespaceDetail(std::string_view name,
                                                           const Viewer& viewer) {
  NamespaceDetail d;
  INGOT_ASSIGN_OR_RETURN(d.ns, GetNamespace(name, viewer));
  INGOT_ASSIGN_OR_RETURN(d.associations, repo_.ListAssociations(name));
  INGOT_ASSIGN_OR_RETURN(d.objects, repo_.ListItems(name, ItemKind::kObject));
  INGOT_ASSIGN_OR_RETURN(d.properties, repo_.ListItems(name, ItemKind::kProperty));
  INGOT_ASSIGN_OR_RETURN(d.tags, repo_.ListItems(name, ItemKind::kTag));
  return d;
}

Result<Namespace> MetadefService::UpdateNamespace(std::string_view name, Namespace fields,
                                                  const Viewer& viewer) {
  INGOT_ASSIGN_OR_RETURN(Namespace current, GetNamespace(name, viewer));
  fields.created_at = current.created_at;
  fields.updated_at = NowMicros();
  if (!fields.owner) fields.owner = viewer.project;
  INGOT_RETURN_IF_ERROR(repo_.SaveNamespace(name, fields));
  return fields;
}

Status MetadefService::DeleteNamespace(std::string_view name, const Viewer& viewer) {
  INGOT_ASSIGN_OR_RETURN(Namespace ns, GetNamespace(name, viewer));
  if (ns.is_protected) return NamespaceProtected(name);
  return repo_.RemoveNamespace(name);
}

Result<std::vector<ResourceType>> MetadefService::ListResourceTypes() {
  return repo_.ListResourceTypes();
}

Result<std::vector<Association>> MetadefService::ListAssociations(std::string_view ns,
                                                                  const Viewer& viewer) {
  INGOT_RETURN_IF_ERROR(GetNamespace(ns, viewer).status());
  return repo_.ListAssociations(ns);
}

Result<Association> MetadefService::AddAssociation(std::string_view ns, Association a,
                                                   const Viewer& viewer) {
  INGOT_RETURN_IF_ERROR(GetNamespace(ns, viewer).status());
  a.created_at = a.updated_at = NowMicros();
  INGOT_RETURN_IF_ERROR(repo_.AddAssociation(ns, a));
  return a;
}

Status MetadefService::RemoveAssociation(std::string_view ns, std::string_view resource_type,
                                         const Viewer& viewer) {
  INGOT_ASSIGN_OR_RETURN(Namespace n, GetNamespace(ns, viewer));
  if (n.is_protected) return AssociationProtected(resource_type);
  return repo_.RemoveAssociation(ns, resource_type);
}

Result<std::vector<Item>> MetadefService::ListItems(std::string_view ns, ItemKind kind,
                                                    const Viewer& viewer) {
  INGOT_RETURN_IF_ERROR(GetNamespace(ns, viewer).status());
  return repo_.ListItems(ns, kind);
}

Result<Item> MetadefService::GetItem(std::string_view ns, ItemKind kind, std::string_view name,
                                     const Viewer& viewer) {
  INGOT_RETURN_IF_ERROR(GetNamespace(ns, viewer).status());
  return repo_.GetItem(ns, kind, name);
}

Result<Item> MetadefService::AddItem(std::string_view ns, ItemKind kind, Item item,
                                     const Viewer& viewer) {
  INGOT_RETURN_IF_ERROR(GetNamespace(ns, viewer).status());
  item.created_at = item.updated_at = NowMicros();
  INGOT_RETURN_IF_ERROR(repo_.AddItems(ns, kind, std::span<const Item>(&item, 1), false));
  return item;
}

Result<std::vector<Item>> MetadefService::AddTags(std::string_view ns, std::vector<Item> tags,
                                                  bool append, const Viewer& viewer) {
  INGOT_RETURN_IF_ERROR(GetNamespace(ns, viewer).status());
  int64_t now = NowMicros();
  for (Item& t : tags) t.created_at = t.updated_at = now;
  INGOT_RETURN_IF_ERROR(repo_.AddItems(ns, ItemKind::kTag, tags, !append));
  return tags;
}

Result<Item> MetadefService::SaveItem(std::string_view ns, ItemKind kind, std::string_view current,
                                      Item item, const Viewer& viewer) {
  INGOT_RETURN_IF_ERROR(GetNamespace(ns, viewer).status());
  INGOT_ASSIGN_OR_RETURN(Item before, repo_.GetItem(ns, kind, current));
  item.created_at = before.created_at;
  item.updated_at = NowMicros();
  INGOT_RETURN_IF_ERROR(repo_.SaveItem(ns, kind, current, item));
  return item;
}

Status MetadefService::RemoveItem(std::string_view ns, ItemKind kind, std::string_view name,
                                  const Viewer& viewer) {
  INGOT_ASSIGN_OR_RETURN(Namespace n, GetNamespace(ns, viewer));
  if (n.is_protected) return ItemProtected(kind, name);
  return repo_.RemoveItem(ns, kind, name);
}

Status MetadefService::RemoveItems(std::string_view ns, ItemKind kind, const Viewer& viewer) {
  INGOT_ASSIGN_OR_RETURN(Namespace n, GetNamespace(ns, viewer));
  if (n.is_protected) return NamespaceProtected(ns);
  return repo_.RemoveItems(ns, kind);
}

}  // namespace ingot::metadefs
