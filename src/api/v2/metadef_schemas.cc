#include "api/v2/metadef_schemas.h"

#include <boost/json.hpp>

#include "api/v2/documents.h"

namespace ingot::api {

namespace json = boost::json;
using http::Response;

namespace {

json::object Str() { return json::object{{"type", "string"}}; }
json::object Str(int max_length) { return json::object{{"type", "string"}, {"maxLength", max_length}}; }
json::object Described(json::object o, std::string_view description) {
  o["description"] = description;
  return o;
}
json::object Timestamp(std::string_view description) {
  return json::object{{"type", "string"},
                      {"readOnly", true},
                      {"description", description},
                      {"format", "date-time"}};
}
json::object ReadOnlyStr() { return json::object{{"readOnly", true}, {"type", "string"}}; }
json::object Ref(std::string_view to) { return json::object{{"$ref", to}}; }
json::array TypeEnum() {
  return json::array{"array", "boolean", "integer", "number", "object", "string", nullptr};
}

// One property definition's members (Glance's "property" schema body).
json::object PropertyMembers() {
  return json::object{
      {"name", Str(80)},
      {"title", Str()},
      {"description", Str()},
      {"operators", json::object{{"type", "array"}, {"items", Str()}}},
      {"type", json::object{{"type", "string"}, {"enum", TypeEnum()}}},
      {"required", Ref("#/definitions/stringArray")},
      {"minimum", json::object{{"type", "number"}}},
      {"maximum", json::object{{"type", "number"}}},
      {"maxLength", Ref("#/definitions/positiveInteger")},
      {"minLength", Ref("#/definitions/positiveIntegerDefault0")},
      {"pattern", json::object{{"type", "string"}, {"format", "regex"}}},
      {"enum", json::object{{"type", "array"}}},
      {"readonly", json::object{{"type", "boolean"}}},
      {"default", json::object{}},
      {"items",
       json::object{{"type", "object"},
                    {"properties", json::object{{"type", json::object{{"type", "string"},
                                                                       {"enum", TypeEnum()}}},
                                                {"enum", json::object{{"type", "array"}}}}}}},
      {"maxItems", Ref("#/definitions/positiveInteger")},
      {"minItems", Ref("#/definitions/positiveIntegerDefault0")},
      {"uniqueItems", json::object{{"type", "boolean"}, {"default", false}}},
      {"additionalItems", json::object{{"type", "boolean"}}}};
}

json::object Definitions(bool with_property, bool string_array_min1) {
  json::object string_array{{"type", "array"}, {"items", Str()}};
  if (string_array_min1) string_array["minItems"] = 1;
  string_array["uniqueItems"] = true;
  json::object d{
      {"positiveInteger", json::object{{"type", "integer"}, {"minimum", 0}}},
      {"positiveIntegerDefault0",
       json::object{{"allOf", json::array{Ref("#/definitions/positiveInteger"),
                                          json::object{{"default", 0}}}}}},
      {"stringArray", std::move(string_array)}};
  if (with_property) {
    d["property"] = json::object{
        {"type", "object"},
        {"additionalProperties", json::object{{"type", "object"},
                                              {"required", json::array{"title", "type"}},
                                              {"properties", PropertyMembers()}}}};
  }
  return d;
}

json::object NamespaceSchema(bool with_definitions) {
  json::object rta_item{
      {"type", "object"},
      {"properties", json::object{{"name", Str()}, {"prefix", Str()}, {"properties_target", Str()}}}};
  json::object object_item{
      {"type", "object"},
      {"properties", json::object{{"name", Str()},
                                  {"description", Str()},
                                  {"required", Ref("#/definitions/stringArray")},
                                  {"properties", Ref("#/definitions/property")}}}};
  json::object props{
      {"namespace", Described(Str(80), "The unique namespace text.")},
      {"display_name",
       Described(Str(80), "The user friendly name for the namespace. Used by UI if available.")},
      {"description",
       Described(Str(500), "Provides a user friendly description of the namespace.")},
      {"visibility", json::object{{"type", "string"},
                                  {"description", "Scope of namespace accessibility."},
                                  {"enum", json::array{"public", "private"}}}},
      {"protected", json::object{{"type", "boolean"},
                                 {"description", "If true, namespace will not be deletable."}}},
      {"owner", Described(Str(255), "Owner of the namespace.")},
      {"created_at", Timestamp("Date and time of namespace creation")},
      {"updated_at", Timestamp("Date and time of the last namespace modification")},
      {"schema", ReadOnlyStr()},
      {"self", ReadOnlyStr()},
      {"resource_type_associations", json::object{{"type", "array"}, {"items", rta_item}}},
      {"properties", Ref("#/definitions/property")},
      {"objects", json::object{{"type", "array"}, {"items", object_item}}},
      {"tags", json::object{{"type", "array"},
                            {"items", json::object{{"type", "object"},
                                                   {"properties", json::object{{"name", Str()}}}}}}}};
  json::object s{{"name", "namespace"}, {"properties", std::move(props)},
                 {"additionalProperties", false}};
  if (with_definitions) s["definitions"] = Definitions(true, false);
  s["required"] = json::array{"namespace"};
  return s;
}

json::object ObjectSchema(bool with_definitions) {
  json::object props{{"name", Str(80)},
                     {"description", Str()},
                     {"required", Ref("#/definitions/stringArray")},
                     {"properties", Ref("#/definitions/property")},
                     {"schema", ReadOnlyStr()},
                     {"self", ReadOnlyStr()},
                     {"created_at", Timestamp("Date and time of object creation")},
                     {"updated_at", Timestamp("Date and time of the last object modification")}};
  json::object s{{"name", "object"}, {"properties", std::move(props)},
                 {"additionalProperties", false}};
  if (with_definitions) s["definitions"] = Definitions(true, false);
  s["required"] = json::array{"name"};
  return s;
}

json::object PropertySchema(bool with_definitions, bool name_required) {
  json::object s{{"name", "property"}, {"properties", PropertyMembers()},
                 {"additionalProperties", false}};
  if (with_definitions) s["definitions"] = Definitions(false, true);
  s["required"] = name_required ? json::array{"type", "title", "name"} : json::array{"type", "title"};
  return s;
}

json::object TagSchema() {
  return json::object{
      {"name", "tag"},
      {"properties",
       json::object{{"name", Str(80)},
                    {"created_at", Timestamp("Date and time of tag creation")},
                    {"updated_at", Timestamp("Date and time of the last tag modification")}}},
      {"additionalProperties", false},
      {"required", json::array{"name"}}};
}

json::object ResourceTypeSchema() {
  return json::object{
      {"name", "resource_type_association"},
      {"properties",
       json::object{
           {"name", Described(Str(80),
                              "Resource type names should be aligned with Heat resource types "
                              "whenever possible: "
                              "https://docs.openstack.org/heat/latest/template_guide/"
                              "openstack.html")},
           {"prefix",
            Described(Str(80),
                      "Specifies the prefix to use for the given resource type. Any properties "
                      "in the namespace should be prefixed with this prefix when being applied "
                      "to the specified resource type. Must include prefix separator (e.g. a "
                      "colon :).")},
           {"properties_target",
            Described(Str(80),
                      "Some resource types allow more than one key / value pair per instance.  "
                      "For example, Cinder allows user and image metadata on volumes. Only the "
                      "image properties metadata is evaluated by Nova (scheduling or drivers). "
                      "This property allows a namespace target to remove the ambiguity.")},
           {"created_at", Timestamp("Date and time of resource type association")},
           {"updated_at",
            Timestamp("Date and time of the last resource type association modification")}}},
      {"additionalProperties", false},
      {"required", json::array{"name"}}};
}

// A collection: {"<member>": [items], first, next, schema} with the three links.
json::object Collection(std::string_view name, std::string_view member, json::value items_schema,
                        bool as_map) {
  json::object list = as_map ? json::object{{"type", "object"}, {"additionalProperties", items_schema}}
                             : json::object{{"type", "array"}, {"items", items_schema}};
  return json::object{
      {"name", name},
      {"properties", json::object{{member, std::move(list)},
                                  {"first", Str()},
                                  {"next", Str()},
                                  {"schema", Str()}}},
      {"links", json::array{json::object{{"rel", "first"}, {"href", "{first}"}},
                            json::object{{"rel", "next"}, {"href", "{next}"}},
                            json::object{{"rel", "describedby"}, {"href", "{schema}"}}}}};
}

}  // namespace

void RegisterMetadefSchemaRoutes(ApiRouter& r) {
  auto add = [&r](std::string_view name, json::object doc) {
    r.Add("GET", "/v2/schemas/metadefs/" + std::string(name),
          {.rule = "get_schemas",
           .handler = [body = json::serialize(doc)](Call&) -> Result<Response> {
             return JsonResponse(200, body);
           }});
  };
  add("namespace", NamespaceSchema(true));
  {
    json::object s = Collection("namespaces", "namespaces", NamespaceSchema(false), false);
    s["definitions"] = Definitions(true, false);
    add("namespaces", std::move(s));
  }
  add("object", ObjectSchema(true));
  {
    json::object s = Collection("objects", "objects", ObjectSchema(false), false);
    s["definitions"] = Definitions(true, false);
    add("objects", std::move(s));
  }
  add("property", PropertySchema(true, true));
  {
    json::object s = Collection("properties", "properties", PropertySchema(false, false), true);
    s["definitions"] = Definitions(false, true);
    add("properties", std::move(s));
  }
  add("tag", TagSchema());
  add("tags", Collection("tags", "tags", TagSchema(), false));
  add("resource_type", ResourceTypeSchema());
  add("resource_types", Collection("resource_type_associations", "resource_type_associations",
                                   ResourceTypeSchema(), false));
}

}  // namespace ingot::api
