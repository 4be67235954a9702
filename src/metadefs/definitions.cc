#include "metadefs/definitions.h"

#include <set>

#include "common/regex.h"
#include "common/utf8.h"

namespace ingot::metadefs {

namespace json = boost::json;

namespace {

// Characters, as the schemas' maxLength counts them (the text is valid UTF-8 by then).
size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

Status Mismatch(std::string_view schema, std::string_view why) {
  return InvalidArgument("Provided object does not match schema '" + std::string(schema) +
                         "': " + std::string(why));
}

// jsonschema's spelling of a value in its messages ('x', 1, True, None, ...).
std::string Shown(const json::value& v) {
  if (v.is_string()) return "'" + std::string(v.as_string()) + "'";
  if (v.is_bool()) return v.as_bool() ? "True" : "False";
  if (v.is_null()) return "None";
  return json::serialize(v);
}

// Checks the members of `o` against `allowed` and `required` (in that order, as jsonschema reports
// them).
Status CheckMembers(std::string_view schema, const json::object& o,
                    std::initializer_list<std::string_view> allowed,
                    std::initializer_list<std::string_view> required) {
  for (std::string_view r : required) {
    if (!o.contains(r)) return Mismatch(schema, "'" + std::string(r) + "' is a required property");
  }
  for (const auto& [k, v] : o) {
    bool known = false;
    for (std::string_view a : allowed) known = known || a == k;
    if (!known) {
      return Mismatch(schema, "Additional properties are not allowed ('" + std::string(k) +
                                  "' was unexpected)");
    }
  }
  return Status::Ok();
}

// A string member of at most `max_length` characters (0: no limit); nullopt when absent.
Result<std::optional<std::string>> StringMember(std::string_view schema, const json::object& o,
                                                std::string_view key, size_t max_length) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return Mismatch(schema, Shown(*v) + " is not of type 'string'");
  std::string s(v->as_string());
  if (!IsValidUtf8(s)) return Mismatch(schema, "'" + std::string(key) + "' is not valid UTF-8");
  if (max_length > 0 && Utf8Length(s) > max_length) {
    return Mismatch(schema, "'" + s + "' is too long");
  }
  return std::optional<std::string>(std::move(s));
}

Result<bool> BoolMember(std::string_view schema, const json::object& o, std::string_view key,
                        bool fallback) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return fallback;
  if (!v->is_bool()) return Mismatch(schema, Shown(*v) + " is not of type 'boolean'");
  return v->as_bool();
}

const json::object* ObjectOf(const json::value& v) { return v.is_object() ? &v.as_object() : nullptr; }

Status NotObject(std::string_view schema, const json::value& v) {
  return Mismatch(schema, Shown(v) + " is not of type 'object'");
}

bool IsType(std::string_view t) {
  static const std::set<std::string_view> kTypes = {"array",  "boolean", "integer",
                                                    "number", "object",  "string"};
  return kTypes.count(t) != 0;
}

// A string array with unique members (and at least `min_items`).
Status CheckStringArray(std::string_view schema, std::string_view key, const json::value& v,
                        size_t min_items) {
  if (!v.is_array()) return Mismatch(schema, Shown(v) + " is not of type 'array'");
  std::set<std::string_view> seen;
  for (const json::value& e : v.as_array()) {
    if (!e.is_string()) return Mismatch(schema, Shown(e) + " is not of type 'string'");
    if (!seen.insert(e.as_string()).second) {
      return Mismatch(schema, json::serialize(v) + " has non-unique elements");
    }
  }
  if (v.as_array().size() < min_items) {
    return Mismatch(schema, "[] is too short (in '" + std::string(key) + "')");
  }
  return Status::Ok();
}

Status CheckNonNegativeInteger(std::string_view schema, const json::value& v) {
  if (!(v.is_int64() || v.is_uint64())) {
    return Mismatch(schema, Shown(v) + " is not of type 'integer'");
  }
  if (v.is_int64() && v.as_int64() < 0) {
    return Mismatch(schema, Shown(v) + " is less than the minimum of 0");
  }
  return Status::Ok();
}

// The definition of one property (Glance's "property" schema), without its name.
Status CheckPropertyDefinition(std::string_view schema, const json::object& p,
                               bool name_required) {
  if (name_required) {
    INGOT_RETURN_IF_ERROR(CheckMembers(
        schema, p,
        {"name", "title", "description", "operators", "type", "required", "minimum", "maximum",
         "maxLength", "minLength", "pattern", "enum", "readonly", "default", "items", "maxItems",
         "minItems", "uniqueItems", "additionalItems"},
        {"type", "title", "name"}));
  } else {
    INGOT_RETURN_IF_ERROR(CheckMembers(
        schema, p,
        {"name", "title", "description", "operators", "type", "required", "minimum", "maximum",
         "maxLength", "minLength", "pattern", "enum", "readonly", "default", "items", "maxItems",
         "minItems", "uniqueItems", "additionalItems"},
        {"title", "type"}));
  }
  INGOT_RETURN_IF_ERROR(StringMember(schema, p, "name", 80).status());
  INGOT_RETURN_IF_ERROR(StringMember(schema, p, "title", 0).status());
  INGOT_RETURN_IF_ERROR(StringMember(schema, p, "description", 0).status());
  const json::value& type = p.at("type");
  if (!type.is_null() && !(type.is_string() && IsType(type.as_string()))) {
    return Mismatch(schema, Shown(type) +
                                " is not one of ['array', 'boolean', 'integer', 'number', "
                                "'object', 'string', None]");
  }
  if (const json::value* ops = p.if_contains("operators")) {
    if (!ops->is_array()) return Mismatch(schema, Shown(*ops) + " is not of type 'array'");
    for (const json::value& e : ops->as_array()) {
      if (!e.is_string()) return Mismatch(schema, Shown(e) + " is not of type 'string'");
    }
  }
  if (const json::value* r = p.if_contains("required")) {
    INGOT_RETURN_IF_ERROR(CheckStringArray(schema, "required", *r, 1));
  }
  for (std::string_view k : {"minimum", "maximum"}) {
    if (const json::value* v = p.if_contains(k); v && !v->is_number()) {
      return Mismatch(schema, Shown(*v) + " is not of type 'number'");
    }
  }
  for (std::string_view k : {"maxLength", "minLength", "maxItems", "minItems"}) {
    if (const json::value* v = p.if_contains(k)) INGOT_RETURN_IF_ERROR(CheckNonNegativeInteger(schema, *v));
  }
  if (auto pattern = StringMember(schema, p, "pattern", 0); !pattern.ok()) {
    return pattern.status();
  } else if (*pattern) {
    // format "regex": a pattern nothing could ever be checked against is refused up front. The
    // standard library compiles by recursion, so the length is bounded first (common/regex.h).
    if ((*pattern)->size() > 1024) return Mismatch(schema, "'pattern' is longer than 1024 characters");
    if (!CompileUntrustedRegex(**pattern, 1024).ok()) {
      return Mismatch(schema, "'" + **pattern + "' is not a 'regex'");
    }
  }
  if (const json::value* e = p.if_contains("enum"); e && !e->is_array()) {
    return Mismatch(schema, Shown(*e) + " is not of type 'array'");
  }
  for (std::string_view k : {"readonly", "uniqueItems", "additionalItems"}) {
    INGOT_RETURN_IF_ERROR(BoolMember(schema, p, k, false).status());
  }
  if (const json::value* items = p.if_contains("items")) {
    const json::object* io = ObjectOf(*items);
    if (io == nullptr) return NotObject(schema, *items);
    if (const json::value* t = io->if_contains("type");
        t && !t->is_null() && !(t->is_string() && IsType(t->as_string()))) {
      return Mismatch(schema, Shown(*t) +
                                  " is not one of ['array', 'boolean', 'integer', 'number', "
                                  "'object', 'string', None]");
    }
    if (const json::value* e = io->if_contains("enum"); e && !e->is_array()) {
      return Mismatch(schema, Shown(*e) + " is not of type 'array'");
    }
  }
  return Status::Ok();
}

// A "properties" map: name -> definition.
Status CheckPropertyMap(std::string_view schema, const json::value& v) {
  const json::object* o = ObjectOf(v);
  if (o == nullptr) return NotObject(schema, v);
  for (const auto& [name, def] : *o) {
    const json::object* d = ObjectOf(def);
    if (d == nullptr) return NotObject(schema, def);
    if (name.empty() || Utf8Length(name) > 80) {
      return Mismatch(schema, "property names must be 1 to 80 characters");
    }
    INGOT_RETURN_IF_ERROR(CheckPropertyDefinition(schema, *d, false));
  }
  return Status::Ok();
}

Result<std::string> RequiredName(std::string_view schema, const json::object& o,
                                 std::string_view key) {
  INGOT_ASSIGN_OR_RETURN(auto name, StringMember(schema, o, key, 80));
  if (!name || name->empty()) {
    return Mismatch(schema, "'" + std::string(key) + "' must be 1 to 80 characters");
  }
  return std::move(*name);
}

// The namespace record's own members (shared by create and update).
Result<Namespace> NamespaceFields(const json::object& o) {
  constexpr std::string_view kSchema = "namespace";
  INGOT_RETURN_IF_ERROR(CheckMembers(
      kSchema, o,
      {"namespace", "display_name", "description", "visibility", "protected", "owner", "created_at",
       "updated_at", "schema", "self", "resource_type_associations", "properties", "objects",
       "tags"},
      {"namespace"}));
  Namespace ns;
  INGOT_ASSIGN_OR_RETURN(ns.name, RequiredName(kSchema, o, "namespace"));
  INGOT_ASSIGN_OR_RETURN(ns.display_name, StringMember(kSchema, o, "display_name", 80));
  INGOT_ASSIGN_OR_RETURN(ns.description, StringMember(kSchema, o, "description", 500));
  INGOT_ASSIGN_OR_RETURN(auto visibility, StringMember(kSchema, o, "visibility", 0));
  if (visibility) {
    auto v = ParseVisibility(*visibility);
    if (!v) return Mismatch(kSchema, "'" + *visibility + "' is not one of ['public', 'private']");
    ns.visibility = *v;
  }
  INGOT_ASSIGN_OR_RETURN(ns.is_protected, BoolMember(kSchema, o, "protected", false));
  INGOT_ASSIGN_OR_RETURN(ns.owner, StringMember(kSchema, o, "owner", 255));
  // A namespace name is a path segment of every URL under it.
  if (ns.name.find('/') != std::string::npos) {
    return Mismatch(kSchema, "'namespace' must not contain '/'");
  }
  return ns;
}

}  // namespace

Result<NamespaceTree> ParseNamespaceDocument(const json::value& doc, int64_t now) {
  const json::object* o = ObjectOf(doc);
  if (o == nullptr) return NotObject("namespace", doc);
  NamespaceTree tree;
  INGOT_ASSIGN_OR_RETURN(tree.ns, NamespaceFields(*o));
  tree.ns.created_at = tree.ns.updated_at = now;
  if (const json::value* v = o->if_contains("resource_type_associations")) {
    if (!v->is_array()) return Mismatch("namespace", Shown(*v) + " is not of type 'array'");
    for (const json::value& a : v->as_array()) {
      INGOT_ASSIGN_OR_RETURN(Association parsed, ParseAssociation(a, now));
      tree.associations.push_back(std::move(parsed));
    }
  }
  if (const json::value* v = o->if_contains("properties")) {
    INGOT_RETURN_IF_ERROR(CheckPropertyMap("namespace", *v));
    for (const auto& [name, def] : v->as_object()) {
      INGOT_ASSIGN_OR_RETURN(Item p, ParseProperty(def, std::string_view(name), now));
      tree.properties.push_back(std::move(p));
    }
  }
  if (const json::value* v = o->if_contains("objects")) {
    if (!v->is_array()) return Mismatch("namespace", Shown(*v) + " is not of type 'array'");
    for (const json::value& obj : v->as_array()) {
      INGOT_ASSIGN_OR_RETURN(Item parsed, ParseObject(obj, now));
      tree.objects.push_back(std::move(parsed));
    }
  }
  if (const json::value* v = o->if_contains("tags")) {
    if (!v->is_array()) return Mismatch("namespace", Shown(*v) + " is not of type 'array'");
    for (const json::value& t : v->as_array()) {
      INGOT_ASSIGN_OR_RETURN(Item parsed, ParseTag(t, now));
      tree.tags.push_back(std::move(parsed));
    }
  }
  return tree;
}

Result<Namespace> ParseNamespaceUpdate(const json::value& doc) {
  const json::object* o = ObjectOf(doc);
  if (o == nullptr) return NotObject("namespace", doc);
  return NamespaceFields(*o);
}

Result<Item> ParseObject(const json::value& doc, int64_t now) {
  constexpr std::string_view kSchema = "object";
  const json::object* o = ObjectOf(doc);
  if (o == nullptr) return NotObject(kSchema, doc);
  INGOT_RETURN_IF_ERROR(CheckMembers(
      kSchema, *o,
      {"name", "description", "required", "properties", "schema", "self", "created_at",
       "updated_at"},
      {"name"}));
  Item item{.created_at = now, .updated_at = now};
  INGOT_ASSIGN_OR_RETURN(item.name, RequiredName(kSchema, *o, "name"));
  json::object body;
  INGOT_ASSIGN_OR_RETURN(auto description, StringMember(kSchema, *o, "description", 0));
  if (description) body["description"] = *description;
  if (const json::value* r = o->if_contains("required")) {
    INGOT_RETURN_IF_ERROR(CheckStringArray(kSchema, "required", *r, 0));
    body["required"] = *r;
  }
  if (const json::value* p = o->if_contains("properties")) {
    INGOT_RETURN_IF_ERROR(CheckPropertyMap(kSchema, *p));
    body["properties"] = *p;
  }
  item.body = json::serialize(body);
  return item;
}

Result<Item> ParseProperty(const json::value& doc, std::optional<std::string_view> name,
                           int64_t now) {
  constexpr std::string_view kSchema = "property";
  const json::object* o = ObjectOf(doc);
  if (o == nullptr) return NotObject(kSchema, doc);
  INGOT_RETURN_IF_ERROR(CheckPropertyDefinition(kSchema, *o, !name.has_value()));
  Item item{.created_at = now, .updated_at = now};
  if (name) {
    item.name = std::string(*name);
  } else {
    INGOT_ASSIGN_OR_RETURN(item.name, RequiredName(kSchema, *o, "name"));
  }
  json::object body = *o;
  body.erase("name");
  item.body = json::serialize(body);
  return item;
}

Result<Item> ParseTag(const json::value& doc, int64_t now) {
  constexpr std::string_view kSchema = "tag";
  const json::object* o = ObjectOf(doc);
  if (o == nullptr) return NotObject(kSchema, doc);
  INGOT_RETURN_IF_ERROR(
      CheckMembers(kSchema, *o, {"name", "created_at", "updated_at"}, {"name"}));
  Item item{.created_at = now, .updated_at = now};
  INGOT_ASSIGN_OR_RETURN(item.name, RequiredName(kSchema, *o, "name"));
  if (item.name.find('/') != std::string::npos) {
    return Mismatch(kSchema, "'name' must not contain '/'");
  }
  return item;
}

Result<Association> ParseAssociation(const json::value& doc, int64_t now) {
  constexpr std::string_view kSchema = "resource_type_association";
  const json::object* o = ObjectOf(doc);
  if (o == nullptr) return NotObject(kSchema, doc);
  INGOT_RETURN_IF_ERROR(CheckMembers(
      kSchema, *o, {"name", "prefix", "properties_target", "created_at", "updated_at"}, {"name"}));
  Association a{.created_at = now, .updated_at = now};
  INGOT_ASSIGN_OR_RETURN(a.resource_type, RequiredName(kSchema, *o, "name"));
  INGOT_ASSIGN_OR_RETURN(a.prefix, StringMember(kSchema, *o, "prefix", 80));
  INGOT_ASSIGN_OR_RETURN(a.properties_target, StringMember(kSchema, *o, "properties_target", 80));
  return a;
}

}  // namespace ingot::metadefs
