// Metadata definitions (Glance's "metadefs"): the catalog of properties operators may put on images,
// flavors, volumes, aggregates... grouped in namespaces, so that a UI can offer the right keys, types
// and allowed values. This is the plain domain: the records, who sees a namespace, Glance's texts
// for what is missing or taken. Documents (JSON) are parsed and checked in definitions.h;
// persistence sits behind repository.h; the use cases in metadef_service.h.
//
// A namespace owns three kinds of named items — objects (a named group of properties), properties
// and tags — and is associated with resource types ("OS::Glance::Image"), optionally with a prefix
// the properties take on that resource ("hw_"). Items keep their definition as a JSON document
// (`body`), as Glance keeps a property's JSON schema: the API shows it back as it was given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ingot::metadefs {

enum class Visibility { kPublic, kPrivate };
std::string_view VisibilityName(Visibility v);
std::optional<Visibility> ParseVisibility(std::string_view s);

struct Namespace {
  std::string name;  // Glance's "namespace": unique, 1-80 characters
  std::optional<std::string> display_name;
  std::optional<std::string> description;
  Visibility visibility = Visibility::kPrivate;
  bool is_protected = false;  // "protected": not deletable, nor its items
  std::optional<std::string> owner;
  int64_t created_at = 0;  // microseconds since the epoch
  int64_t updated_at = 0;
};

struct ResourceType {
  std::string name;
  bool is_protected = false;  // shipped types
  int64_t created_at = 0;
  std::optional<int64_t> updated_at;  // types loaded from shipped definitions have none, as Glance
};

// A namespace's association with a resource type.
struct Association {
  std::string resource_type;
  std::optional<std::string> prefix;             // e.g. "hw_": property names on that resource
  std::optional<std::string> properties_target;  // e.g. "image" (Cinder: image vs volume metadata)
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

enum class ItemKind { kObject, kProperty, kTag };

// An object, property or tag of a namespace. Tag names compare case-insensitively (Glance).
struct Item {
  std::string name;
  std::string body = "{}";  // the definition as a JSON object, without its name
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

// Who looks: admins see every namespace; others the public ones and their own project's.
struct Viewer {
  std::optional<std::string> project;
  bool admin = false;
};
bool IsVisible(const Namespace& ns, const Viewer& viewer);

// The key two item names collide on within a namespace (tags: ASCII case folded).
std::string ItemKey(ItemKind kind, std::string_view name);

// Glance's texts, so clients (and people) see the messages they know.
Status NamespaceNotFound(std::string_view ns);
Status NamespaceExists(std::string_view ns);
Status NamespaceProtected(std::string_view ns);
Status ItemNotFound(ItemKind kind, std::string_view name);
Status ItemExists(ItemKind kind, std::string_view ns, std::string_view name);
Status ItemProtected(ItemKind kind, std::string_view name);
Status AssociationNotFound(std::string_view ns, std::string_view resource_type);
Status AssociationExists(std::string_view ns, std::string_view resource_type);
Status AssociationProtected(std::string_view resource_type);

}  // namespace ingot::metadefs
