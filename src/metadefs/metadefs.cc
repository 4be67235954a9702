#include "metadefs/metadefs.h"

namespace ingot::metadefs {

std::string_view VisibilityName(Visibility v) {
  return v == Visibility::kPublic ? "public" : "private";
}

std::optional<Visibility> ParseVisibility(std::string_view s) {
  if (s == "public") return Visibility::kPublic;
  if (s == "private") return Visibility::kPrivate;
  return std::nullopt;
}

bool IsVisible(const Namespace& ns, const Viewer& viewer) {
  if (viewer.admin || ns.visibility == Visibility::kPublic) return true;
  return ns.owner.has_value() && viewer.project.has_value() && *ns.owner == *viewer.project;
}

std::string ItemKey(ItemKind kind, std::string_view name) {
  std::string key(name);
  if (kind == ItemKind::kTag) {
    for (char& c : key) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return key;
}

namespace {

std::string_view KindWord(ItemKind kind) {
  switch (kind) {
    case ItemKind::kObject:
      return "object";
    case ItemKind::kProperty:
      return "property";
    case ItemKind::kTag:
      return "tag";
  }
  return "item";
}

std::string S(std::string_view v) { return std::string(v); }

}  // namespace

Status NamespaceNotFound(std::string_view ns) {
  return NotFound("Metadata definition namespace=" + S(ns) + " was not found.");
}
Status NamespaceExists(std::string_view ns) {
  return AlreadyExists("The metadata definition namespace=" + S(ns) + " already exists.");
}
Status NamespaceProtected(std::string_view ns) {
  return PermissionDenied("Metadata definition namespace " + S(ns) +
                          " is protected and cannot be deleted.");
}
Status ItemNotFound(ItemKind kind, std::string_view name) {
  switch (kind) {
    case ItemKind::kObject:
      return NotFound("Could not find metadata object " + S(name));
    case ItemKind::kProperty:
      return NotFound("Could not find property " + S(name));
    case ItemKind::kTag:
      return NotFound("Could not find metadata tag " + S(name));
  }
  return NotFound("Not found");
}
Status ItemExists(ItemKind kind, std::string_view ns, std::string_view name) {
  if (kind == ItemKind::kTag) {
    return AlreadyExists("A metadata tag with name=" + S(name) + " already exists in namespace=" +
                         S(ns) + ". (Please note that metadata tag names are case insensitive).");
  }
  return AlreadyExists("A metadata definition " + S(KindWord(kind)) + " with name=" + S(name) +
                       " already exists in namespace=" + S(ns) + ".");
}
Status ItemProtected(ItemKind kind, std::string_view name) {
  return PermissionDenied("Metadata definition " + S(KindWord(kind)) + " " + S(name) +
                          " is protected and cannot be deleted.");
}
Status AssociationNotFound(std::string_view ns, std::string_view resource_type) {
  return NotFound("The metadata definition resource-type association of resource-type=" +
                  S(resource_type) + " to namespace=" + S(ns) + ", was not found.");
}
Status AssociationExists(std::string_view ns, std::string_view resource_type) {
  return AlreadyExists("The metadata definition resource-type association of resource-type=" +
                       S(resource_type) + " to namespace=" + S(ns) + " already exists.");
}
Status AssociationProtected(std::string_view resource_type) {
  return PermissionDenied("Metadata definition resource-type-association " + S(resource_type) +
                          " is protected and cannot be deleted.");
}

}  // namespace ingot::metadefs
