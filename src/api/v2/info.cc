#include "api/v2/info.h"

#include <boost/json.hpp>

#include "api/v2/documents.h"
#include "api/v2/imports.h"
#include "api/v2/schemas.h"

namespace ingot::api {

namespace json = boost::json;
using http::Response;

namespace {

std::string StoresJson(const store::StoreSet& stores, bool detail) {
  json::array out;
  for (const store::StoreDescription& d : stores.Describe()) {
    json::object s{{"id", d.id}, {"description", d.description}};
    if (d.is_default) s["default"] = "true";  // Glance sends the text "true"
    if (d.read_only) s["read-only"] = "true";
    if (detail) {
      s["type"] = d.driver;
      s["weight"] = d.weight;
      json::object props;
      for (const auto& [k, v] : d.properties) props[k] = v;
      s["properties"] = std::move(props);
    }
    out.emplace_back(std::move(s));
  }
  return json::serialize(json::object{{"stores", std::move(out)}});
}

}  // namespace

void RegisterInfoRoutes(ApiRouter& r, const service::ImageService& images,
                        const ApiOptions& options) {
  const store::StoreSet& stores = images.stores();
  // Fixed documents are rendered once.
  auto fixed = [](std::string body) {
    return [body = std::move(body)](Call&) -> Result<Response> { return JsonResponse(200, body); };
  };
  // The import methods this daemon offers (none without an import service: clients then fall back
  // to PUT …/file).
  r.Add("GET", "/v2/info/import",
        {.rule = "get_import_info", .handler = fixed(ImportInfoJson(options.import_methods))});
  r.Add("GET", "/v2/info/stores",
        {.rule = "get_stores", .handler = fixed(StoresJson(stores, false))});
  r.Add("GET", "/v2/info/stores/detail",
        {.rule = "stores_info_detail", .handler = fixed(StoresJson(stores, true))});
  // The caller's project against its quotas (Glance's unified limits); {} when none are in force,
  // as Glance answers without use_keystone_limits.
  service::Quotas* quotas = images.quotas();
  r.Add("GET", "/v2/info/usage",
        {.rule = "get_usage", .handler = [quotas](Call& call) -> Result<Response> {
           json::object usage;
           if (quotas != nullptr && call.context.project) {
             INGOT_ASSIGN_OR_RETURN(auto limits, quotas->Usage(*call.context.project));
             for (const auto& [name, u] : limits) {
               usage[name] = json::object{{"limit", u.limit}, {"usage", u.usage}};
             }
           }
           return JsonResponse(200, json::serialize(json::object{{"usage", std::move(usage)}}));
         }});

  r.Add("GET", "/v2/schemas/image",
        {.rule = "get_schemas", .handler = fixed(ImageSchemaJson(options.formats))});
  r.Add("GET", "/v2/schemas/images",
        {.rule = "get_schemas", .handler = fixed(ImagesSchemaJson(options.formats))});
  r.Add("GET", "/v2/schemas/task", {.rule = "get_schemas", .handler = fixed(TaskSchemaJson())});
  r.Add("GET", "/v2/schemas/tasks", {.rule = "get_schemas", .handler = fixed(TasksSchemaJson())});
}

}  // namespace ingot::api
