#include "api/v2/metadefs.h"

#include <charconv>

#include "api/v2/documents.h"
#include "common/time.h"
#include "http/url.h"
#include "metadefs/definitions.h"

namespace ingot::api {

namespace json = boost::json;
using http::Response;
using metadefs::ItemKind;

namespace {

constexpr size_t kDefaultLimit = 25;   // Glance's limit_param_default
constexpr size_t kMaxLimit = 1000;     // Glance's api_limit_max

metadefs::Viewer ViewerFrom(const auth::RequestContext& ctx) {
  return {.project = ctx.project, .admin = ctx.is_admin()};
}

std::string NamespaceHref(std::string_view ns) { return "/v2/metadefs/namespaces/" + std::string(ns); }

json::object ParseBody(const metadefs::Item& item) {
  boost::system::error_code ec;
  json::value v = json::parse(item.body, ec);
  return !ec && v.is_object() ? std::move(v.as_object()) : json::object{};
}

json::object AssociationJson(const metadefs::Association& a) {
  json::object o{{"name", a.resource_type}};
  if (a.prefix) o["prefix"] = *a.prefix;
  if (a.properties_target) o["properties_target"] = *a.properties_target;
  o["created_at"] = FormatIso8601(a.created_at);
  o["updated_at"] = FormatIso8601(a.updated_at);
  return o;
}

json::object NamespaceJson(const metadefs::Namespace& ns) {
  json::object o{{"namespace", ns.name}};
  if (ns.display_name) o["display_name"] = *ns.display_name;
  if (ns.description) o["description"] = *ns.description;
  o["visibility"] = metadefs::VisibilityName(ns.visibility);
  o["protected"] = ns.is_protected;
  if (ns.owner) o["owner"] = *ns.owner;
  o["created_at"] = FormatIso8601(ns.created_at);
  o["updated_at"] = FormatIso8601(ns.updated_at);
  return o;
}

void AddLinks(json::object& o, std::string self, std::string_view schema) {
  o["self"] = std::move(self);
  o["schema"] = schema;
}

// `prefix` (a resource type's, asked for with ?resource_type=) is put before every property name,
// as the properties are named on that resource.
json::object PropertiesJson(const std::vector<metadefs::Item>& items, std::string_view prefix) {
  json::object o;
  for (const auto& p : items) o[std::string(prefix) + p.name] = ParseBody(p);
  return o;
}

json::object ObjectJson(std::string_view ns, const metadefs::Item& item, std::string_view prefix) {
  json::object body = ParseBody(item);
  json::object o{{"name", item.name}};
  if (const json::value* d = body.if_contains("description")) o["description"] = *d;
  if (const json::value* r = body.if_contains("required")) {
    if (prefix.empty() || !r->is_array()) {
      o["required"] = *r;
    } else {
      json::array named;
      for (const json::value& n : r->as_array()) {
        named.emplace_back(n.is_string() ? json::value(std::string(prefix) +
                                                       std::string(n.as_string()))
                                         : n);
      }
      o["required"] = std::move(named);
    }
  }
  if (const json::value* p = body.if_contains("properties"); p && p->is_object()) {
    json::object named;
    for (const auto& [k, v] : p->as_object()) named[std::string(prefix) + std::string(k)] = v;
    o["properties"] = std::move(named);
  }
  o["created_at"] = FormatIso8601(item.created_at);
  o["updated_at"] = FormatIso8601(item.updated_at);
  AddLinks(o, NamespaceHref(ns) + "/objects/" + item.name, "/v2/schemas/metadefs/object");
  return o;
}

json::object PropertyJson(const metadefs::Item& item) {
  json::object o{{"name", item.name}};
  for (auto& [k, v] : ParseBody(item)) o[k] = v;
  return o;
}

json::object TagJson(const metadefs::Item& item) {
  return json::object{{"name", item.name},
                      {"created_at", FormatIso8601(item.created_at)},
                      {"updated_at", FormatIso8601(item.updated_at)}};
}

Result<json::value> Body(Call& call, size_t limit) { return ReadJson(call.request, limit); }

Result<metadefs::NamespaceQuery> ParseNamespaceQuery(const http::Request& req,
                                                     const metadefs::Viewer& viewer) {
  metadefs::NamespaceQuery q{.filter = {.viewer = viewer}, .limit = kDefaultLimit};
  for (const auto& [k, v] : req.query) {
    if (k == "limit") {
      int64_t n = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || end != v.data() + v.size()) {
        return InvalidArgument("limit param must be an integer");
      }
      if (n < 0) return InvalidArgument("limit param must be positive");
      q.limit = std::min<size_t>(static_cast<size_t>(n), kMaxLimit);
    } else if (k == "marker") {
      q.marker = v;
    } else if (k == "sort_key") {
      static const std::pair<std::string_view, metadefs::NamespaceSort> kKeys[] = {
          {"created_at", metadefs::NamespaceSort::kCreatedAt},
          {"updated_at", metadefs::NamespaceSort::kUpdatedAt},
          {"namespace", metadefs::NamespaceSort::kNamespace},
          {"display_name", metadefs::NamespaceSort::kDisplayName},
          {"visibility", metadefs::NamespaceSort::kVisibility},
          {"owner", metadefs::NamespaceSort::kOwner}};
      bool found = false;
      for (const auto& [name, sort] : kKeys) {
        if (name == v) {
          q.sort = sort;
          found = true;
        }
      }
      // Glance answers 500 here; an unknown key is the client's mistake.
      if (!found) return InvalidArgument("Invalid sort key: " + v);
    } else if (k == "sort_dir") {
      if (v != "asc" && v != "desc") return InvalidArgument("Invalid sort direction: " + v);
      q.ascending = v == "asc";
    } else if (k == "visibility") {
      auto vis = metadefs::ParseVisibility(v);
      if (!vis) return InvalidArgument("Invalid visibility value: " + v);
      q.filter.visibility = vis;
    } else if (k == "resource_types") {
      for (std::string_view rest = v; !rest.empty();) {
        size_t comma = rest.find(',');
        std::string_view t = rest.substr(0, comma);
        if (!t.empty()) q.filter.resource_types.emplace_back(t);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
  }
  return q;
}

}  // namespace

void MetadefsResource::Register(ApiRouter& r) {
  auto bind = [this](auto fn) { return [this, fn](Call& call) { return (this->*fn)(call); }; };
  using B = BodyMode;
  using M = MetadefsResource;
  const std::string ns = "/v2/metadefs/namespaces/{namespace}";
  r.Add("GET", "/v2/metadefs/namespaces",
        {.rule = "get_metadef_namespaces", .handler = bind(&M::ListNamespaces)});
  r.Add("POST", "/v2/metadefs/namespaces",
        {.rule = "add_metadef_namespace", .handler = bind(&M::CreateNamespace), .body = B::kJson});
  r.Add("GET", ns, {.rule = "get_metadef_namespace", .handler = bind(&M::ShowNamespace)});
  r.Add("PUT", ns,
        {.rule = "modify_metadef_namespace", .handler = bind(&M::UpdateNamespace),
         .body = B::kJson});
  r.Add("DELETE", ns, {.rule = "delete_metadef_namespace", .handler = bind(&M::DeleteNamespace)});

  r.Add("GET", "/v2/metadefs/resource_types",
        {.rule = "list_metadef_resource_types", .handler = bind(&M::ListResourceTypes)});
  r.Add("GET", ns + "/resource_types",
        {.rule = "get_metadef_resource_type", .handler = bind(&M::ListAssociations)});
  r.Add("POST", ns + "/resource_types",
        {.rule = "add_metadef_resource_type_association", .handler = bind(&M::AddAssociation),
         .body = B::kJson});
  r.Add("DELETE", ns + "/resource_types/{resource_type}",
        {.rule = "remove_metadef_resource_type_association",
         .handler = bind(&M::RemoveAssociation)});

  r.Add("GET", ns + "/objects", {.rule = "get_metadef_objects", .handler = bind(&M::ListObjects)});
  r.Add("POST", ns + "/objects",
        {.rule = "add_metadef_object", .handler = bind(&M::CreateObject), .body = B::kJson});
  r.Add("DELETE", ns + "/objects",
        {.rule = "delete_metadef_object", .handler = [this](Call& call) -> Result<Response> {
           INGOT_RETURN_IF_ERROR(service_.RemoveItems(call.params[0], ItemKind::kObject,
                                                      ViewerFrom(call.context)));
           return NoContent();
         }});
  r.Add("GET", ns + "/objects/{name}",
        {.rule = "get_metadef_object", .handler = bind(&M::ShowObject)});
  r.Add("PUT", ns + "/objects/{name}",
        {.rule = "modify_metadef_object", .handler = bind(&M::UpdateObject), .body = B::kJson});
  r.Add("DELETE", ns + "/objects/{name}",
        {.rule = "delete_metadef_object", .handler = [this](Call& call) -> Result<Response> {
           INGOT_RETURN_IF_ERROR(service_.RemoveItem(call.params[0], ItemKind::kObject,
                                                     call.params[1], ViewerFrom(call.context)));
           return NoContent();
         }});

  r.Add("GET", ns + "/properties",
        {.rule = "get_metadef_properties", .handler = bind(&M::ListProperties)});
  r.Add("POST", ns + "/properties",
        {.rule = "add_metadef_property", .handler = bind(&M::CreateProperty), .body = B::kJson});
  r.Add("DELETE", ns + "/properties",
        {.rule = "remove_metadef_property", .handler = [this](Call& call) -> Result<Response> {
           INGOT_RETURN_IF_ERROR(service_.RemoveItems(call.params[0], ItemKind::kProperty,
                                                      ViewerFrom(call.context)));
           return NoContent();
         }});
  r.Add("GET", ns + "/properties/{name}",
        {.rule = "get_metadef_property", .handler = bind(&M::ShowProperty)});
  r.Add("PUT", ns + "/properties/{name}",
        {.rule = "modify_metadef_property", .handler = bind(&M::UpdateProperty),
         .body = B::kJson});
  r.Add("DELETE", ns + "/properties/{name}",
        {.rule = "remove_metadef_property", .handler = [this](Call& call) -> Result<Response> {
           INGOT_RETURN_IF_ERROR(service_.RemoveItem(call.params[0], ItemKind::kProperty,
                                                     call.params[1], ViewerFrom(call.context)));
           return NoContent();
         }});

  r.Add("GET", ns + "/tags", {.rule = "get_metadef_tags", .handler = bind(&M::ListTags)});
  r.Add("POST", ns + "/tags",
        {.rule = "add_metadef_tags", .handler = bind(&M::CreateTags), .body = B::kJson});
  r.Add("DELETE", ns + "/tags",
        {.rule = "delete_metadef_tags", .handler = [this](Call& call) -> Result<Response> {
           INGOT_RETURN_IF_ERROR(service_.RemoveItems(call.params[0], ItemKind::kTag,
                                                      ViewerFrom(call.context)));
           return NoContent();
         }});
  r.Add("GET", ns + "/tags/{name}", {.rule = "get_metadef_tag", .handler = bind(&M::ShowTag)});
  r.Add("POST", ns + "/tags/{name}", {.rule = "add_metadef_tag", .handler = bind(&M::CreateTag)});
  r.Add("PUT", ns + "/tags/{name}",
        {.rule = "modify_metadef_tag", .handler = bind(&M::UpdateTag), .body = B::kJson});
  r.Add("DELETE", ns + "/tags/{name}",
        {.rule = "delete_metadef_tag", .handler = [this](Call& call) -> Result<Response> {
           INGOT_RETURN_IF_ERROR(service_.RemoveItem(call.params[0], ItemKind::kTag,
                                                     call.params[1], ViewerFrom(call.context)));
           return NoContent();
         }});
}

Result<Response> MetadefsResource::ListNamespaces(Call& call) {
  INGOT_ASSIGN_OR_RETURN(metadefs::NamespaceQuery q,
                         ParseNamespaceQuery(call.request, ViewerFrom(call.context)));
  INGOT_ASSIGN_OR_RETURN(metadefs::NamespacePage page, service_.ListNamespaces(q));
  json::array list;
  for (const auto& n : page.namespaces) {
    json::object o = NamespaceJson(n.ns);
    if (!n.associations.empty()) {
      json::array a;
      for (const auto& x : n.associations) a.emplace_back(AssociationJson(x));
      o["resource_type_associations"] = std::move(a);
    }
    AddLinks(o, NamespaceHref(n.ns.name), "/v2/schemas/metadefs/namespace");
    list.emplace_back(std::move(o));
  }
  // Links keep the request's parameters in their order, the marker last (Glance's shape).
  std::string params;
  for (const auto& [k, v] : call.request.query) {
    if (k == "marker") continue;
    params += (params.empty() ? "" : "&") + http::PercentEncode(k) + "=" + http::PercentEncode(v);
  }
  const std::string base = "/v2/metadefs/namespaces";
  json::object out{{"namespaces", std::move(list)},
                   {"first", params.empty() ? base : base + "?" + params},
                   {"schema", "/v2/schemas/metadefs/namespaces"}};
  if (page.next_marker) {
    out["next"] = base + "?" + params + (params.empty() ? "" : "&") + "marker=" +
                  http::PercentEncode(*page.next_marker);
  }
  return JsonResponse(200, out);
}

Result<Response> MetadefsResource::CreateNamespace(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, Body(call, options_.max_json_body));
  INGOT_ASSIGN_OR_RETURN(metadefs::NamespaceTree tree,
                         metadefs::ParseNamespaceDocument(body, NowMicros()));
  INGOT_ASSIGN_OR_RETURN(tree, service_.CreateNamespace(std::move(tree), ViewerFrom(call.context)));
  json::object o = NamespaceJson(tree.ns);
  if (!tree.associations.empty()) {
    json::array a;
    for (const auto& x : tree.associations) a.emplace_back(AssociationJson(x));
    o["resource_type_associations"] = std::move(a);
  }
  if (!tree.properties.empty()) o["properties"] = PropertiesJson(tree.properties, "");
  if (!tree.objects.empty()) {
    json::array a;
    for (const auto& x : tree.objects) a.emplace_back(ObjectJson(tree.ns.name, x, ""));
    o["objects"] = std::move(a);
  }
  if (!tree.tags.empty()) {
    json::array a;
    for (const auto& t : tree.tags) a.emplace_back(json::object{{"name", t.name}});
    o["tags"] = std::move(a);
  }
  AddLinks(o, NamespaceHref(tree.ns.name), "/v2/schemas/metadefs/namespace");
  return JsonResponse(201, o);
}

Result<Response> MetadefsResource::ShowNamespace(Call& call) {
  INGOT_ASSIGN_OR_RETURN(metadefs::NamespaceDetail d,
                         service_.GetNamespaceDetail(call.params[0], ViewerFrom(call.context)));
  // ?resource_type=X shows the properties as named on X (its association's prefix before them).
  std::string prefix;
  if (auto type = call.request.QueryValue("resource_type"); type && !type->empty()) {
    for (const auto& a : d.associations) {
      if (a.resource_type == *type && a.prefix) prefix = *a.prefix;
    }
  }
  json::object o = NamespaceJson(d.ns);
  if (!d.associations.empty()) {
    json::array a;
    for (const auto& x : d.associations) a.emplace_back(AssociationJson(x));
    o["resource_type_associations"] = std::move(a);
  }
  if (!d.properties.empty()) o["properties"] = PropertiesJson(d.properties, prefix);
  if (!d.objects.empty()) {
    json::array a;
    for (const auto& x : d.objects) a.emplace_back(ObjectJson(d.ns.name, x, prefix));
    o["objects"] = std::move(a);
  }
  if (!d.tags.empty()) {
    json::array a;
    for (const auto& t : d.tags) a.emplace_back(json::object{{"name", t.name}});
    o["tags"] = std::move(a);
  }
  AddLinks(o, NamespaceHref(d.ns.name), "/v2/schemas/metadefs/namespace");
  return JsonResponse(200, o);
}

Result<Response> MetadefsResource::UpdateNamespace(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, Body(call, options_.max_json_body));
  INGOT_ASSIGN_OR_RETURN(metadefs::Namespace fields, metadefs::ParseNamespaceUpdate(body));
  INGOT_ASSIGN_OR_RETURN(
      metadefs::Namespace ns,
      service_.UpdateNamespace(call.params[0], std::move(fields), ViewerFrom(call.context)));
  json::object o = NamespaceJson(ns);
  AddLinks(o, NamespaceHref(ns.name), "/v2/schemas/metadefs/namespace");
  return JsonResponse(200, o);
}

Result<Response> MetadefsResource::DeleteNamespace(Call& call) {
  INGOT_RETURN_IF_ERROR(service_.DeleteNamespace(call.params[0], ViewerFrom(call.context)));
  return NoContent();
}

Result<Response> MetadefsResource::ListResourceTypes(Call&) {
  INGOT_ASSIGN_OR_RETURN(auto types, service_.ListResourceTypes());
  json::array a;
  for (const auto& t : types) {
    json::object o{{"name", t.name}, {"created_at", FormatIso8601(t.created_at)}};
    if (t.updated_at) o["updated_at"] = FormatIso8601(*t.updated_at);
    a.emplace_back(std::move(o));
  }
  return JsonResponse(200, json::object{{"resource_types", std::move(a)}});
}

Result<Response> MetadefsResource::ListAssociations(Call& call) {
  INGOT_ASSIGN_OR_RETURN(auto list,
                         service_.ListAssociations(call.params[0], ViewerFrom(call.context)));
  json::array a;
  for (const auto& x : list) a.emplace_back(AssociationJson(x));
  return JsonResponse(200, json::object{{"resource_type_associations", std::move(a)}});
}

Result<Response> MetadefsResource::AddAssociation(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, Body(call, options_.max_json_body));
  INGOT_ASSIGN_OR_RETURN(metadefs::Association a, metadefs::ParseAssociation(body, NowMicros()));
  INGOT_ASSIGN_OR_RETURN(a, service_.AddAssociation(call.params[0], std::move(a),
                                                    ViewerFrom(call.context)));
  return JsonResponse(201, AssociationJson(a));
}

Result<Response> MetadefsResource::RemoveAssociation(Call& call) {
  INGOT_RETURN_IF_ERROR(
      service_.RemoveAssociation(call.params[0], call.params[1], ViewerFrom(call.context)));
  return NoContent();
}

Result<Response> MetadefsResource::ListObjects(Call& call) {
  INGOT_ASSIGN_OR_RETURN(auto items, service_.ListItems(call.params[0], ItemKind::kObject,
                                                        ViewerFrom(call.context)));
  json::array a;
  for (const auto& x : items) a.emplace_back(ObjectJson(call.params[0], x, ""));
  // Glance's link here lacks the leading '/'; clients that follow it already cope.
  return JsonResponse(200, json::object{{"objects", std::move(a)},
                                        {"schema", "v2/schemas/metadefs/objects"}});
}

Result<Response> MetadefsResource::CreateObject(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, Body(call, options_.max_json_body));
  INGOT_ASSIGN_OR_RETURN(metadefs::Item item, metadefs::ParseObject(body, NowMicros()));
  INGOT_ASSIGN_OR_RETURN(item, service_.AddItem(call.params[0], ItemKind::kObject, std::move(item),
                                                ViewerFrom(call.context)));
  return JsonResponse(201, ObjectJson(call.params[0], item, ""));
}

Result<Response> MetadefsResource::ShowObject(Call& call) {
  INGOT_ASSIGN_OR_RETURN(auto item, service_.GetItem(call.params[0], ItemKind::kObject,
                                                     call.params[1], ViewerFrom(call.context)));
  return JsonResponse(200, ObjectJson(call.params[0], item, ""));
}

Result<Response> MetadefsResource::UpdateObject(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, Body(call, options_.max_json_body));
  INGOT_ASSIGN_OR_RETURN(metadefs::Item item, metadefs::ParseObject(body, NowMicros()));
  // A PUT replaces the whole object: what it leaves out is emptied, and shown so (as Glance).
  json::object parsed = ParseBody(item);
  if (!parsed.contains("required")) parsed["required"] = json::array{};
  if (!parsed.contains("properties")) parsed["properties"] = json::object{};
  item.body = json::serialize(parsed);
  INGOT_ASSIGN_OR_RETURN(item, service_.SaveItem(call.params[0], ItemKind::kObject, call.params[1],
                                                 std::move(item), ViewerFrom(call.context)));
  return JsonResponse(200, ObjectJson(call.params[0], item, ""));
}

Result<Response> MetadefsResource::ListProperties(Call& call) {
  INGOT_ASSIGN_OR_RETURN(auto items, service_.ListItems(call.params[0], ItemKind::kProperty,
                                                        ViewerFrom(call.context)));
  return JsonResponse(200, json::object{{"properties", PropertiesJson(items, "")}});
}

Result<Response> MetadefsResource::CreateProperty(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, Body(call, options_.max_json_body));
  INGOT_ASSIGN_OR_RETURN(metadefs::Item item,
                         metadefs::ParseProperty(body, std::nullopt, NowMicros()));
  INGOT_ASSIGN_OR_RETURN(item, service_.AddItem(call.params[0], ItemKind::kProperty,
                                                std::move(item), ViewerFrom(call.context)));
  return JsonResponse(201, PropertyJson(item));
}

Result<Response> MetadefsResource::ShowProperty(Call& call) {
  // Glance also takes "<prefix><name>" with ?resource_type= naming the association.
  std::string name = call.params[1];
  if (auto type = call.request.QueryValue("resource_type"); type && !type->empty()) {
    INGOT_ASSIGN_OR_RETURN(auto list,
                           service_.ListAssociations(call.params[0], ViewerFrom(call.context)));
    for (const auto& a : list) {
      if (a.resource_type == *type && a.prefix && name.starts_with(*a.prefix)) {
        name = name.substr(a.prefix->size());
      }
    }
  }
  INGOT_ASSIGN_OR_RETURN(auto item, service_.GetItem(call.params[0], ItemKind::kProperty, name,
                                                     ViewerFrom(call.context)));
  return JsonResponse(200, PropertyJson(item));
}

Result<Response> MetadefsResource::UpdateProperty(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, Body(call, options_.max_json_body));
  INGOT_ASSIGN_OR_RETURN(metadefs::Item item,
                         metadefs::ParseProperty(body, std::nullopt, NowMicros()));
  INGOT_ASSIGN_OR_RETURN(item,
                         service_.SaveItem(call.params[0], ItemKind::kProperty, call.params[1],
                                           std::move(item), ViewerFrom(call.context)));
  return JsonResponse(200, PropertyJson(item));
}

Result<Response> MetadefsResource::ListTags(Call& call) {
  INGOT_ASSIGN_OR_RETURN(auto items, service_.ListItems(call.params[0], ItemKind::kTag,
                                                        ViewerFrom(call.context)));
  json::array a;
  for (const auto& t : items) a.emplace_back(json::object{{"name", t.name}});
  return JsonResponse(200, json::object{{"tags", std::move(a)}});
}

Result<Response> MetadefsResource::CreateTags(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, Body(call, options_.max_json_body));
  const json::value* tags = body.is_object() ? body.as_object().if_contains("tags") : nullptr;
  if (tags == nullptr || !tags->is_array()) {
    return InvalidArgument(
        "Provided object does not match schema 'tags': 'tags' is a required property");
  }
  std::vector<metadefs::Item> items;
  for (const json::value& t : tags->as_array()) {
    INGOT_ASSIGN_OR_RETURN(metadefs::Item item, metadefs::ParseTag(t, NowMicros()));
    items.push_back(std::move(item));
  }
  // X-Openstack-Append: true adds to the namespace's tags; without it they are replaced.
  std::string append(call.request.headers.Get("X-Openstack-Append").value_or(""));
  for (char& c : append) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  INGOT_ASSIGN_OR_RETURN(items, service_.AddTags(call.params[0], std::move(items),
                                                 append == "true", ViewerFrom(call.context)));
  json::array a;
  for (const auto& t : items) a.emplace_back(json::object{{"name", t.name}});
  return JsonResponse(201, json::object{{"tags", std::move(a)}});
}

Result<Response> MetadefsResource::CreateTag(Call& call) {
  INGOT_ASSIGN_OR_RETURN(metadefs::Item item,
                         metadefs::ParseTag(json::object{{"name", call.params[1]}}, NowMicros()));
  INGOT_ASSIGN_OR_RETURN(item, service_.AddItem(call.params[0], ItemKind::kTag, std::move(item),
                                                ViewerFrom(call.context)));
  return JsonResponse(201, TagJson(item));
}

Result<Response> MetadefsResource::ShowTag(Call& call) {
  INGOT_ASSIGN_OR_RETURN(auto item, service_.GetItem(call.params[0], ItemKind::kTag,
                                                     call.params[1], ViewerFrom(call.context)));
  return JsonResponse(200, TagJson(item));
}

Result<Response> MetadefsResource::UpdateTag(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, Body(call, options_.max_json_body));
  INGOT_ASSIGN_OR_RETURN(metadefs::Item item, metadefs::ParseTag(body, NowMicros()));
  INGOT_ASSIGN_OR_RETURN(item, service_.SaveItem(call.params[0], ItemKind::kTag, call.params[1],
                                                 std::move(item), ViewerFrom(call.context)));
  return JsonResponse(200, TagJson(item));
}

}  // namespace ingot::api
