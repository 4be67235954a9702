#include "api/v2/locations.h"

#include <boost/json.hpp>

#include "api/v2/documents.h"
#include "common/log.h"

namespace ingot::api {

namespace json = boost::json;
using http::Response;

Result<service::AddLocationRequest> ParseAddLocationBody(const json::value& body) {
  if (!body.is_object()) return InvalidArgument("Malformed JSON in request body.");
  const json::object& o = body.as_object();
  service::AddLocationRequest r;
  const json::value* url = o.if_contains("url");
  if (url == nullptr) return InvalidArgument("'url' is a required property.");
  if (!url->is_string()) return InvalidArgument("'url' must be a string.");
  r.url = std::string(url->as_string());
  const json::value* v = o.if_contains("validation_data");
  if (v == nullptr) return r;
  if (!v->is_object()) return InvalidArgument("'validation_data' must be an object.");
  const json::object& vo = v->as_object();
  for (const auto& [k, _] : vo) {
    if (k != "os_hash_algo" && k != "os_hash_value") {
      return InvalidArgument("'validation_data' takes only os_hash_algo and os_hash_value, not '" +
                             std::string(k) + "'.");
    }
  }
  if (vo.empty()) return r;  // Glance: empty validation data validates nothing
  const json::value* algo = vo.if_contains("os_hash_algo");
  const json::value* value = vo.if_contains("os_hash_value");
  if (algo == nullptr || value == nullptr) {
    return InvalidArgument(
        "'validation_data' needs both os_hash_algo and os_hash_value, or neither.");
  }
  if (!algo->is_string()) return InvalidArgument("'os_hash_algo' must be a string.");
  if (!value->is_string()) return InvalidArgument("'os_hash_value' must be a string.");
  std::string a(algo->as_string());
  if (a != "sha1" && a != "sha256" && a != "sha512" && a != "md5") {
    return InvalidArgument("'os_hash_algo' must be one of sha1, sha256, sha512, md5.");
  }
  if (value->as_string().size() > 128) {
    return InvalidArgument("'os_hash_value' is longer than 128 characters.");
  }
  r.validation = service::ValidationData{std::move(a), std::string(value->as_string())};
  return r;
}

namespace {

Status LocationSchemaError(const std::string& detail) {
  return InvalidArgument("Provided object does not match schema 'image': " + detail);
}

Result<service::LocationSpec> ParseLocationSpec(const json::value& v) {
  if (!v.is_object()) {
    return LocationSchemaError(json::serialize(v) + " is not of type 'object'");
  }
  const json::object& o = v.as_object();
  service::LocationSpec spec;
  const json::value* url = o.if_contains("url");
  if (url == nullptr) return LocationSchemaError("'url' is a required property");
  if (!url->is_string()) return LocationSchemaError("'url' is not of type 'string'");
  if (url->as_string().size() > 255) return LocationSchemaError("'url' is too long");
  spec.url = std::string(url->as_string());
  const json::value* metadata = o.if_contains("metadata");
  if (metadata == nullptr) return LocationSchemaError("'metadata' is a required property");
  if (!metadata->is_object()) return LocationSchemaError("'metadata' is not of type 'object'");
  spec.metadata = metadata->as_object();
  const json::value* vd = o.if_contains("validation_data");
  if (vd == nullptr) return spec;
  if (!vd->is_object()) return LocationSchemaError("'validation_data' is not of type 'object'");
  const json::object& vo = vd->as_object();
  for (const auto& [k, _] : vo) {
    if (k != "checksum" && k != "os_hash_algo" && k != "os_hash_value") {
      return LocationSchemaError("Additional properties are not allowed ('" + std::string(k) +
                                 "' was unexpected)");
    }
  }
  service::LocationValidation validation;
  auto text = [&](const char* key, size_t min, size_t max,
                  bool required) -> Result<std::optional<std::string>> {
    const json::value* x = vo.if_contains(key);
    if (x == nullptr) {
      if (required) return LocationSchemaError("'" + std::string(key) + "' is a required property");
      return std::optional<std::string>();
    }
    if (!x->is_string()) {
      return LocationSchemaError("'" + std::string(key) + "' is not of type 'string'");
    }
    const size_t n = x->as_string().size();
    if (n < min) return LocationSchemaError("'" + std::string(key) + "' is too short");
    if (n > max) return LocationSchemaError("'" + std::string(key) + "' is too long");
    return std::optional<std::string>(std::string(x->as_string()));
  };
  INGOT_ASSIGN_OR_RETURN(auto algo, text("os_hash_algo", 0, 64, true));
  INGOT_ASSIGN_OR_RETURN(auto value, text("os_hash_value", 0, 128, true));
  INGOT_ASSIGN_OR_RETURN(validation.checksum, text("checksum", 32, 32, false));
  validation.os_hash_algo = std::move(*algo);
  validation.os_hash_value = std::move(*value);
  spec.validation = std::move(validation);
  return spec;
}

}  // namespace

Result<service::LocationOp> ParseLocationPatch(const PatchOp& op) {
  service::LocationOp out;
  out.position = op.index;
  switch (op.kind) {
    case PatchOp::Kind::kAdd: {
      out.kind = service::LocationOp::Kind::kAdd;
      INGOT_ASSIGN_OR_RETURN(service::LocationSpec spec, ParseLocationSpec(op.value));
      out.locations.push_back(std::move(spec));
      return out;
    }
    case PatchOp::Kind::kReplace: {
      out.kind = service::LocationOp::Kind::kReplace;
      if (!op.value.is_array()) {
        return LocationSchemaError(json::serialize(op.value) + " is not of type 'array'");
      }
      for (const json::value& v : op.value.as_array()) {
        INGOT_ASSIGN_OR_RETURN(service::LocationSpec spec, ParseLocationSpec(v));
        out.locations.push_back(std::move(spec));
      }
      return out;
    }
    case PatchOp::Kind::kRemove:
      out.kind = service::LocationOp::Kind::kRemove;
      return out;
  }
  return InvalidArgument("Invalid operation");
}

void LocationsResource::Register(ApiRouter& r) {
  auto bind = [this](auto fn) { return [this, fn](Call& call) { return (this->*fn)(call); }; };
  r.Add("POST", "/v2/images/{id}/locations",
        {.rule = "add_image_location",
         .handler = bind(&LocationsResource::Add),
         .body = BodyMode::kJson,
         .image_param = 0});
  r.Add("GET", "/v2/images/{id}/locations",
        {.rule = "fetch_image_location",
         .handler = bind(&LocationsResource::List),
         .image_param = 0});
}

Result<Response> LocationsResource::Add(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, ReadJson(call.request, options_.max_json_body));
  INGOT_ASSIGN_OR_RETURN(service::AddLocationRequest request, ParseAddLocationBody(body));
  auto added = locations_.Add(*call.image, request);
  if (!added.ok()) {
    log::Warn("location.add_failed", {{"image", call.image->id},
                                      {"request_id", call.context.request_id},
                                      {"error", added.status().ToString()}});
    return added.status();
  }
  // Glance answers 202 with an empty body that is not JSON, as for import.
  Response r;
  r.status = 202;
  r.headers.Set("Content-Type", "text/html; charset=UTF-8");
  return r;
}

Result<Response> LocationsResource::List(Call& call) {
  json::array out;
  for (const service::LocationView& loc : locations_.List(*call.image)) {
    out.emplace_back(json::object{{"url", loc.url}, {"metadata", loc.metadata}});
  }
  return JsonResponse(200, out);
}

}  // namespace ingot::api
