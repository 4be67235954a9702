#include "api/v2/images.h"

#include <algorithm>
#include <memory>

#include "api/errors.h"
#include "api/json/writer.h"
#include "api/v2/documents.h"
#include "api/v2/image_attributes.h"
#include "api/v2/locations.h"
#include "common/log.h"
#include "common/uuid.h"
#include "http/range.h"
#include "http/url.h"
#include "io/adapters.h"
#include "io/hash.h"
#include "service/property_protections.h"

namespace ingot::api {

namespace json = boost::json;
using catalog::Image;
using catalog::ImageStatus;
using http::Response;

namespace {

constexpr std::string_view kPatchMediaType = "application/openstack-images-v2.1-json-patch";
constexpr std::string_view kPatchMediaTypeOld = "application/openstack-images-v2.0-json-patch";

// Glance leaves ':' and ',' readable in its list links ("sort=name:asc,id").
std::string EncodeQueryComponent(std::string_view s) { return http::PercentEncode(s, ":,"); }

}  // namespace

void ImagesResource::Register(ApiRouter& r) {
  auto bind = [this](auto fn) { return [this, fn](Call& call) { return (this->*fn)(call); }; };
  using B = BodyMode;
  r.Add("POST", "/v2/images",
        {.rule = "add_image", .handler = bind(&ImagesResource::Create), .body = B::kJson});
  r.Add("GET", "/v2/images", {.rule = "get_images", .handler = bind(&ImagesResource::List)});
  r.Add("GET", "/v2/images/{id}",
        {.rule = "get_image",
         .handler = bind(&ImagesResource::Show),
         .image_param = 0,
         .inline_read = true});
  r.Add("PATCH", "/v2/images/{id}",
        {.rule = "modify_image",
         .handler = bind(&ImagesResource::Update),
         .body = B::kJson,
         .image_param = 0});
  r.Add("DELETE", "/v2/images/{id}",
        {.rule = "delete_image", .handler = bind(&ImagesResource::Delete), .image_param = 0});
  r.Add("PUT", "/v2/images/{id}/file",
        {.rule = "upload_image",
         .handler = bind(&ImagesResource::Upload),
         .body = B::kStream,
         .image_param = 0});
  r.Add("GET", "/v2/images/{id}/file",
        {.rule = "download_image", .handler = bind(&ImagesResource::Download), .image_param = 0});
  r.Add("PUT", "/v2/images/{id}/tags/{tag}",
        {.rule = "modify_image", .handler = bind(&ImagesResource::AddTag), .image_param = 0});
  r.Add("DELETE", "/v2/images/{id}/tags/{tag}",
        {.rule = "modify_image", .handler = bind(&ImagesResource::DeleteTag), .image_param = 0});
  r.Add("POST", "/v2/images/{id}/actions/deactivate",
        {.rule = "deactivate", .handler = bind(&ImagesResource::Deactivate), .image_param = 0});
  r.Add("DELETE", "/v2/stores/{store}/{id}",
        {.rule = "delete_image_location",
         .handler = bind(&ImagesResource::RemoveFromStore),
         .image_param = 1});
  r.Add("POST", "/v2/images/{id}/actions/reactivate",
        {.rule = "reactivate", .handler = bind(&ImagesResource::Reactivate), .image_param = 0});
}

Status ImagesResource::AuthorizeValues(
    const std::vector<std::pair<std::string, json::value>>& values, const Call& call) const {
  for (const std::string& rule : ExtraRules(values, call.context.project)) {
    INGOT_RETURN_IF_ERROR(policy_.Authorize(rule, call.context, {.image = call.image}));
  }
  return Status::Ok();
}

// os_hash_value given at create: lower-case hex of the length the server's algorithm gives;
// os_hash_algo, if given too, must name that algorithm.
Result<std::string> ImagesResource::DeclaredHash(const json::object& body,
                                                 const json::value& value) const {
  const std::string& algo = images_.options().hash_algo;
  if (const json::value* a = body.if_contains("os_hash_algo");
      a && !(a->is_string() && a->as_string() == algo)) {
    return InvalidArgument("os_hash_algo may be given at create only as '" + algo +
                           "', the algorithm this server computes.");
  }
  INGOT_ASSIGN_OR_RETURN(std::string empty, io::HexDigestOf(algo, {}));
  const bool hex = value.is_string() && value.as_string().size() == empty.size() &&
                   std::all_of(value.as_string().begin(), value.as_string().end(), [](char c) {
                     return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                   });
  if (!hex) {
    return InvalidArgument("os_hash_value must be the " + std::to_string(empty.size()) +
                           " lower-case hex digits of the data's " + algo + " digest.");
  }
  return std::string(value.as_string());
}

Result<Response> ImagesResource::Create(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, ReadJson(call.request, options_.max_json_body));
  if (!body.is_object()) return InvalidArgument("Malformed JSON in request body.");
  std::vector<std::pair<std::string, json::value>> values;
  for (const auto& [k, v] : body.as_object()) values.emplace_back(std::string(k), v);
  INGOT_RETURN_IF_ERROR(AuthorizeValues(values, call));
  Image draft;
  draft.id = NewUuid();
  draft.owner = call.context.project;
  // The checksum a client expects may be declared here (os_hash_value, of the server's algorithm):
  // the upload or stage whose bytes differ is refused before the image turns active.
  if (const json::value* declared = body.as_object().if_contains("os_hash_value")) {
    INGOT_ASSIGN_OR_RETURN(draft.os_hash_value, DeclaredHash(body.as_object(), *declared));
    draft.os_hash_algo = images_.options().hash_algo;
    std::erase_if(values, [](const auto& kv) {
      return kv.first == "os_hash_value" || kv.first == "os_hash_algo";
    });
  }
  for (const auto& [k, v] : values) {
    INGOT_RETURN_IF_ERROR(SetAttribute(draft, k, v, options_.formats, /*creating=*/true));
  }
  if (const auto* protections = options_.property_protections) {
    INGOT_RETURN_IF_ERROR(protections->CheckChange(nullptr, draft, call.context));
  }
  INGOT_ASSIGN_OR_RETURN(Image created, images_.Create(std::move(draft)));
  Response r = Document(201, Readable(created, call), call);
  r.headers.Set("Location", options_.public_url + "/v2/images/" + created.id);
  if (!options_.import_methods.empty()) {
    std::string methods;
    for (const auto& m : options_.import_methods) methods += (methods.empty() ? "" : ",") + m;
    r.headers.Set("OpenStack-image-import-methods", methods);
  }
  if (multiple_stores_) {
    // Where an upload may go (Glance: the stores a client can name in X-Image-Meta-Store).
    std::string ids;
    for (const auto& d : images_.stores().Describe()) {
      if (!d.read_only) ids += (ids.empty() ? "" : ",") + d.id;
    }
    r.headers.Set("OpenStack-image-store-ids", ids);
  }
  return r;
}

Result<Response> ImagesResource::List(Call& call) {
  INGOT_ASSIGN_OR_RETURN(catalog::ListQuery query, catalog::ParseListQuery(call.request.query));
  INGOT_ASSIGN_OR_RETURN(catalog::ImagePage page, images_.List(query, ViewerOf(call.context)));

  std::string params;
  for (const auto& [k, v] : call.request.query) {
    if (k == "marker") continue;
    params += params.empty() ? "" : "&";
    params += EncodeQueryComponent(k) + "=" + EncodeQueryComponent(v);
  }
  std::string body;
  body.reserve(256 + 1024 * page.images.size());
  body += "{\"images\": [";
  for (size_t i = 0; i < page.images.size(); ++i) {
    if (i > 0) body += ", ";
    if (options_.property_protections != nullptr) {
      options_.property_protections->FilterReadable(page.images[i], call.context);
    }
    if (locations_ != nullptr &&
        (locations_->options().show_multiple_locations || options_.show_image_direct_url)) {
      LocationsShown shown = Shown(page.images[i], call);
      AppendImage(body, page.images[i], multiple_stores_, &shown);
    } else {
      AppendImage(body, page.images[i], multiple_stores_);
    }
  }
  body += "], \"first\": ";
  json_text::AppendString(body,
                          params.empty() ? std::string("/v2/images") : "/v2/images?" + params);
  body += ", \"schema\": \"/v2/schemas/images\"";
  if (page.next_marker) {
    body += ", \"next\": ";
    json_text::AppendString(body, "/v2/images?" + params + (params.empty() ? "" : "&") +
                                      "marker=" + EncodeQueryComponent(*page.next_marker));
  }
  body += '}';
  return JsonResponse(200, std::move(body));
}

Result<Response> ImagesResource::Show(Call& call) {
  if (options_.property_protections != nullptr) {
    return Document(200, Readable(*call.image, call), call);
  }
  return Document(200, *call.image, call);
}

LocationsShown ImagesResource::Shown(const Image& image, const Call& call) const {
  LocationsShown shown;
  if (locations_ == nullptr) return shown;
  shown.locations = locations_->options().show_multiple_locations;
  shown.direct_url = options_.show_image_direct_url;
  if (!shown.locations && !shown.direct_url) return shown;
  // Glance shows a caller who may not read the locations an empty list.
  if (!policy_.Authorize("get_image_location", call.context, {.image = &image}).ok()) return shown;
  for (const service::LocationView& loc : locations_->List(image)) {
    shown.items.emplace_back(loc.url, json::serialize(loc.metadata));
  }
  return shown;
}

Response ImagesResource::Document(int status, const Image& image, const Call& call) const {
  LocationsShown shown = Shown(image, call);
  return ImageResponse(status, image, multiple_stores_, &shown);
}

// The image as the caller may see it: without the properties it may not read.
Image ImagesResource::Readable(Image image, const Call& call) const {
  if (options_.property_protections != nullptr) {
    options_.property_protections->FilterReadable(image, call.context);
  }
  return image;
}

Result<Response> ImagesResource::Update(Call& call) {
  std::string_view media = MediaType(call.request.headers.Get("Content-Type").value_or(""));
  if (media != kPatchMediaType && media != kPatchMediaTypeOld) return UnsupportedMediaType(media);
  auto body = call.request.ReadBody(options_.max_json_body);
  if (!body.ok()) {
    if (body.status().code() == Code::kTooLarge) {
      return TooLarge("Request body is larger than " +
                      std::to_string(options_.max_json_body >> 10) + " KiB.");
    }
    return body.status();
  }
  INGOT_ASSIGN_OR_RETURN(
      std::vector<PatchOp> ops,
      ParsePatch(*body, media == kPatchMediaTypeOld ? PatchDialect::kV20 : PatchDialect::kV21));
  if (locations_ != nullptr &&
      std::any_of(ops.begin(), ops.end(), [](const PatchOp& op) { return op.key == "locations"; })) {
    return UpdateWithLocations(call, ops);
  }
  std::vector<std::pair<std::string, json::value>> values;
  for (const PatchOp& op : ops) {
    if (op.kind != PatchOp::Kind::kRemove) values.emplace_back(op.key, op.value);
  }
  INGOT_RETURN_IF_ERROR(AuthorizeValues(values, call));
  INGOT_ASSIGN_OR_RETURN(Image updated, images_.Update(*call.image, [&](Image& im) -> Status {
    const auto* protections = options_.property_protections;
    if (protections == nullptr) return ApplyPatch(im, ops, options_.formats);
    // The patch applies to the stored record (so properties the caller cannot read are kept);
    // what it changed is then checked against the protections.
    Image before = im;
    INGOT_RETURN_IF_ERROR(ApplyPatch(im, ops, options_.formats));
    return protections->CheckChange(&before, im, call.context);
  }));
  return Document(200, Readable(std::move(updated), call), call);
}

// Glance's multiple-locations API: each /locations operation needs its own rule (set_image_location
// for add and replace, delete_image_location for remove) besides the route's modify_image; the
// other operations are applied as any PATCH's, in order, and the whole is saved at once.
Result<Response> ImagesResource::UpdateWithLocations(Call& call, const std::vector<PatchOp>& ops) {
  std::vector<std::pair<std::string, json::value>> values;
  std::vector<service::PatchStep> steps;
  const auto* protections = options_.property_protections;
  auto before = std::make_shared<Image>();
  if (protections != nullptr) {
    steps.push_back({.attributes = [before](Image& im) -> Status {
      *before = im;
      return Status::Ok();
    }});
  }
  for (const PatchOp& op : ops) {
    if (op.key == "locations") {
      const char* rule =
          op.kind == PatchOp::Kind::kRemove ? "delete_image_location" : "set_image_location";
      INGOT_RETURN_IF_ERROR(policy_.Authorize(rule, call.context, {.image = call.image}));
      INGOT_ASSIGN_OR_RETURN(service::LocationOp parsed, ParseLocationPatch(op));
      steps.push_back({.location = std::move(parsed)});
      continue;
    }
    if (op.kind != PatchOp::Kind::kRemove) values.emplace_back(op.key, op.value);
    steps.push_back({.attributes = [this, op](Image& im) -> Status {
      return ApplyPatch(im, {op}, options_.formats);
    }});
  }
  INGOT_RETURN_IF_ERROR(AuthorizeValues(values, call));
  if (protections != nullptr) {
    steps.push_back({.attributes = [before, protections, &call](Image& im) -> Status {
      return protections->CheckChange(before.get(), im, call.context);
    }});
  }
  INGOT_ASSIGN_OR_RETURN(Image updated, locations_->Patch(*call.image, steps));
  return Document(200, Readable(std::move(updated), call), call);
}

Result<Response> ImagesResource::Delete(Call& call) {
  INGOT_RETURN_IF_ERROR(images_.Delete(*call.image));
  return NoContent();
}

Result<Response> ImagesResource::Upload(Call& call) {
  http::Request& req = call.request;
  INGOT_ASSIGN_OR_RETURN(ImageDataHead head, ReadImageDataHead(req));
  if (head.refusal) return std::move(*head.refusal);
  // Glance's multi-store header; the default store without it.
  std::string store(req.headers.Get("X-Image-Meta-Store").value_or(""));
  service::UploadStats stats;
  auto done = images_.Upload(*call.image, *req.body, req.content_length, store, &stats, head.md5);
  if (!done.ok()) {
    log::Warn("upload.failed", {{"image", call.image->id},
                                {"request_id", call.context.request_id},
                                {"error", done.status().ToString()}});
    return done.status();
  }
  log::Info("upload.done", {{"image", call.image->id},
                            {"store", done->locations.empty() ? "" : done->locations.front().store},
                            {"bytes", stats.bytes},
                            {"mib_per_s", stats.micros > 0 ? static_cast<double>(stats.bytes) /
                                                                 stats.micros / 1.048576
                                                           : 0.0}});
  return NoContent();
}

Result<Response> ImagesResource::Download(Call& call) {
  const Image& image = *call.image;
  if (image.status() == ImageStatus::kDeactivated && !call.context.is_admin()) {
    return PermissionDenied(
        "The requested image has been deactivated. Image data download is forbidden.");
  }
  if (image.status() != ImageStatus::kActive && image.status() != ImageStatus::kDeactivated) {
    Response r;
    r.status = 204;
    return r;
  }
  // ?prefer=store1,store2: read from the first of these that holds a copy.
  std::vector<std::string> prefer;
  if (auto p = call.request.QueryValue("prefer")) {
    for (std::string_view rest = *p; !rest.empty();) {
      size_t comma = rest.find(',');
      if (comma != 0) prefer.emplace_back(rest.substr(0, comma));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  INGOT_ASSIGN_OR_RETURN(service::OpenedData data, images_.OpenData(image, prefer));
  uint64_t size = data.size;
  http::ByteRange range{0, size == 0 ? 0 : size - 1};
  Response r;
  r.status = 200;
  if (auto h = call.request.headers.Get("Range")) {
    auto parsed = http::ParseRange(*h, size);
    if (!parsed) {
      Response e =
          ErrorResponse(OutOfRange("Requested range not satisfiable: '" + std::string(*h) +
                                   "' for an image of " + std::to_string(size) + " bytes."));
      e.headers.Set("Content-Range", "bytes */" + std::to_string(size));
      return e;
    }
    range = *parsed;
    r.status = 206;
    r.headers.Set("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                       std::to_string(range.last) + "/" + std::to_string(size));
  }
  uint64_t length = size == 0 ? 0 : range.last - range.first + 1;
  r.headers.Set("Content-Type", "application/octet-stream");
  if (image.checksum) r.headers.Set("Content-MD5", *image.checksum);
  if (data.fd) {
    r.file = http::FileRange{std::move(data.fd), range.first, length};
  } else {
    r.stream = std::make_unique<io::SourceReader>(std::move(data.source), range.first, length);
    r.stream_length = length;
  }
  return r;
}

Result<Response> ImagesResource::AddTag(Call& call) {
  const std::string& tag = call.params[1];
  if (tag.empty() || tag.size() > 255) return InvalidArgument("Tags must be 1-255 characters.");
  INGOT_RETURN_IF_ERROR(images_.AddTag(*call.image, tag));
  return NoContent();
}

Result<Response> ImagesResource::DeleteTag(Call& call) {
  INGOT_RETURN_IF_ERROR(images_.RemoveTag(*call.image, call.params[1]));
  return NoContent();
}

Result<Response> ImagesResource::Deactivate(Call& call) {
  INGOT_RETURN_IF_ERROR(images_.Deactivate(*call.image));
  return NoContent();
}

Result<Response> ImagesResource::RemoveFromStore(Call& call) {
  INGOT_RETURN_IF_ERROR(images_.RemoveFromStore(*call.image, call.params[0]));
  return NoContent();
}

Result<Response> ImagesResource::Reactivate(Call& call) {
  INGOT_RETURN_IF_ERROR(images_.Reactivate(*call.image));
  return NoContent();
}

}  // namespace ingot::api
