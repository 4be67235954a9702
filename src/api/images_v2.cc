#include "api/images_v2.h"

#include <boost/json.hpp>

#include <charconv>

#include "api/errors.h"
#include "auth/policy.h"
#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"

namespace ingot::api {

namespace json = boost::json;
using catalog::Image;
using catalog::ImageStatus;
using catalog::Visibility;
using http::Request;
using http::Response;

namespace {

constexpr std::string_view kPatchMediaType = "application/openstack-images-v2.1-json-patch";
constexpr std::string_view kPatchMediaTypeOld = "application/openstack-images-v2.0-json-patch";
constexpr size_t kMaxJsonBody = 1 << 20;
constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxPropertyKey = 255;
constexpr size_t kMaxPropertyValue = 65535;
constexpr int kMutateRetries = 8;

// Attributes the API computes; a client may never set them.
constexpr std::string_view kReadOnly[] = {
    "status",     "checksum",   "os_hash_algo", "os_hash_value", "size",
    "virtual_size", "created_at", "updated_at",   "self",          "file",
    "schema",     "direct_url", "stores",       "locations"};

bool IsReadOnly(std::string_view key) {
  for (auto k : kReadOnly) {
    if (k == key) return true;
  }
  return false;
}

bool IsReserved(std::string_view key) { return key.substr(0, 10) == "os_glance_"; }

Response Json(int status, const json::value& v) {
  Response r;
  r.status = status;
  r.body = json::serialize(v);
  r.headers.Set("Content-Type", "application/json");
  return r;
}

Response NoContent() {
  Response r;
  r.status = 204;
  r.headers.Set("Content-Type", "text/html; charset=UTF-8");
  return r;
}

// Image documents are written straight into the response text: on the list route building a
// json::value per image and copying it into the page cost more than the database query (callgrind:
// ~60% of the route's instructions were Boost.JSON construction, copies and frees).
void AppendString(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;  // UTF-8 passes through unescaped
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void AppendField(std::string& out, std::string_view key) {
  if (out.back() != '{') out += ", ";
  AppendString(out, key);
  out += ": ";
}

void AppendOpt(std::string& out, const std::optional<std::string>& v) {
  if (v) AppendString(out, *v); else out += "null";
}

void AppendOpt(std::string& out, const std::optional<uint64_t>& v) {
  if (v) out += std::to_string(*v); else out += "null";
}

// One image in Glance's shape: extra properties first, then the core attributes and links.
void AppendImage(std::string& out, const Image& im) {
  out += '{';
  for (const auto& [k, v] : im.properties) {
    AppendField(out, k);
    AppendString(out, v);
  }
  AppendField(out, "id"); AppendString(out, im.id);
  AppendField(out, "name"); AppendOpt(out, im.name);
  AppendField(out, "status"); AppendString(out, catalog::StatusName(im.status));
  AppendField(out, "visibility"); AppendString(out, catalog::VisibilityName(im.visibility));
  AppendField(out, "protected"); out += im.is_protected ? "true" : "false";
  AppendField(out, "os_hidden"); out += im.os_hidden ? "true" : "false";
  AppendField(out, "checksum"); AppendOpt(out, im.checksum);
  AppendField(out, "os_hash_algo"); AppendOpt(out, im.os_hash_algo);
  AppendField(out, "os_hash_value"); AppendOpt(out, im.os_hash_value);
  AppendField(out, "owner"); AppendOpt(out, im.owner);
  AppendField(out, "size"); AppendOpt(out, im.size);
  AppendField(out, "virtual_size"); AppendOpt(out, im.virtual_size);
  AppendField(out, "min_ram"); out += std::to_string(im.min_ram);
  AppendField(out, "min_disk"); out += std::to_string(im.min_disk);
  AppendField(out, "disk_format"); AppendOpt(out, im.disk_format);
  AppendField(out, "container_format"); AppendOpt(out, im.container_format);
  AppendField(out, "created_at"); AppendString(out, FormatIso8601(im.created_at));
  AppendField(out, "updated_at"); AppendString(out, FormatIso8601(im.updated_at));
  AppendField(out, "tags");
  out += '[';
  bool first = true;
  for (const auto& t : im.tags) {
    if (!first) out += ", ";
    first = false;
    AppendString(out, t);
  }
  out += ']';
  AppendField(out, "self"); out += "\"/v2/images/" + im.id + "\"";
  AppendField(out, "file"); out += "\"/v2/images/" + im.id + "/file\"";
  AppendField(out, "schema"); out += "\"/v2/schemas/image\"";
  out += '}';
}

Response JsonText(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.Set("Content-Type", "application/json");
  return r;
}

Response ImageResponse(int status, const Image& im) {
  std::string body;
  body.reserve(1024);
  AppendImage(body, im);
  return JsonText(status, std::move(body));
}

std::string Describe(const json::value& v) {
  if (v.is_string()) return "'" + std::string(v.as_string()) + "'";
  if (v.is_bool()) return v.as_bool() ? "True" : "False";
  if (v.is_null()) return "None";
  return json::serialize(v);
}

Status SchemaError(std::string detail) {
  return InvalidArgument("Provided object does not match schema 'image': " + std::move(detail));
}

bool Allowed(const std::vector<std::string>& list, const std::string& v) {
  for (const auto& x : list) {
    if (x == v) return true;
  }
  return false;
}

std::string JoinList(const std::vector<std::string>& list) {
  std::string s = "[None";
  for (const auto& x : list) s += ", '" + x + "'";
  return s + "]";
}

// Decodes a JSON-pointer segment ("~1" is '/', "~0" is '~').
std::string UnescapePointer(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '~' && i + 1 < s.size() && (s[i + 1] == '0' || s[i + 1] == '1')) {
      out += s[i + 1] == '0' ? '~' : '/';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string EncodeQueryComponent(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == ',') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::optional<uint64_t> NonNegativeInt(const json::value& v) {
  if (v.is_int64() && v.as_int64() >= 0) return static_cast<uint64_t>(v.as_int64());
  if (v.is_uint64()) return v.as_uint64();
  return std::nullopt;
}

}  // namespace

// Sets one attribute from client JSON, enforcing the schema and the catalog's rules.
// `creating` relaxes the rules that only apply to existing images.
static Status SetAttribute(Image& im, const std::string& key, const json::value& v,
                           const auth::RequestContext& ctx, const service::Config& config,
                           bool creating) {
  if (IsReadOnly(key)) return PermissionDenied("Attribute '" + key + "' is read-only.");
  if (IsReserved(key)) {
    return PermissionDenied("Access was denied to this resource.<br /><br />\nAttribute '" + key +
                            "' is reserved.");
  }
  if (key == "id") {
    if (!creating) return PermissionDenied("Attribute 'id' is read-only.");
    if (!v.is_string() || !IsUuid(v.as_string())) {
      return SchemaError(Describe(v) + " does not match the UUID pattern for 'id'");
    }
    im.id = CanonicalUuid(v.as_string());
  } else if (key == "name") {
    if (v.is_null()) {
      im.name.reset();
    } else if (!v.is_string()) {
      return SchemaError(Describe(v) + " is not of type 'null', 'string' for 'name'");
    } else if (v.as_string().size() > kMaxNameLength) {
      return SchemaError("'name' is too long (" + std::to_string(v.as_string().size()) +
                         " characters; at most 255)");
    } else {
      im.name = std::string(v.as_string());
    }
  } else if (key == "visibility") {
    auto vis = v.is_string() ? catalog::ParseVisibility(v.as_string()) : std::nullopt;
    if (!vis) {
      return SchemaError(Describe(v) +
                         " is not one of ['community', 'public', 'private', 'shared']\n\nFailed "
                         "validating 'enum' in schema['properties']['visibility']");
    }
    if (*vis == Visibility::kPublic) {
      INGOT_RETURN_IF_ERROR(auth::Authorize(auth::Action::kPublicizeImage, ctx, &im));
    }
    im.visibility = *vis;
  } else if (key == "protected" || key == "os_hidden") {
    if (!v.is_bool()) return SchemaError(Describe(v) + " is not of type 'boolean' for '" + key + "'");
    (key == "protected" ? im.is_protected : im.os_hidden) = v.as_bool();
  } else if (key == "min_disk" || key == "min_ram") {
    auto n = NonNegativeInt(v);
    if (!n) return SchemaError(Describe(v) + " is not a non-negative integer for '" + key + "'");
    (key == "min_disk" ? im.min_disk : im.min_ram) = *n;
  } else if (key == "disk_format" || key == "container_format") {
    const auto& allowed = key == "disk_format" ? config.disk_formats : config.container_formats;
    std::optional<std::string> value;
    if (!v.is_null()) {
      if (!v.is_string() || !Allowed(allowed, std::string(v.as_string()))) {
        return SchemaError(Describe(v) + " is not one of " + JoinList(allowed) +
                           "\n\nFailed validating 'enum' in schema['properties']['" + key + "']");
      }
      value = std::string(v.as_string());
    }
    if (!creating && im.status != ImageStatus::kQueued && value != (key == "disk_format" ? im.disk_format : im.container_format)) {
      return PermissionDenied("Attribute " + key + " can be only replaced for a queued image.");
    }
    (key == "disk_format" ? im.disk_format : im.container_format) = std::move(value);
  } else if (key == "owner") {
    std::optional<std::string> owner;
    if (!v.is_null()) {
      if (!v.is_string() || v.as_string().size() > 255) {
        return SchemaError(Describe(v) + " is not a valid 'owner'");
      }
      owner = std::string(v.as_string());
    }
    if (owner != ctx.project) INGOT_RETURN_IF_ERROR(auth::Authorize(auth::Action::kSetOwner, ctx));
    im.owner = std::move(owner);
  } else if (key == "tags") {
    if (!v.is_array()) return SchemaError(Describe(v) + " is not of type 'array' for 'tags'");
    std::set<std::string> tags;
    for (const auto& t : v.as_array()) {
      if (!t.is_string() || t.as_string().empty() || t.as_string().size() > 255) {
        return SchemaError(Describe(t) + " is not a valid tag (a string of 1-255 characters)");
      }
      tags.emplace(t.as_string());
    }
    if (static_cast<int>(tags.size()) > config.tag_quota) {
      return TooLarge("Maximum number of tags exceeded (" + std::to_string(config.tag_quota) + ").");
    }
    im.tags = std::move(tags);
  } else {
    if (key.empty() || key.size() > kMaxPropertyKey) {
      return SchemaError("property names must be 1-255 characters");
    }
    if (!v.is_string()) {
      return SchemaError(Describe(v) + " is not of type 'string' for property '" + key + "'");
    }
    if (v.as_string().size() > kMaxPropertyValue) {
      return SchemaError("the value of property '" + key + "' is longer than 65535 characters");
    }
    im.properties[key] = std::string(v.as_string());
    if (static_cast<int>(im.properties.size()) > config.property_quota) {
      return TooLarge("Maximum number of properties exceeded (" +
                      std::to_string(config.property_quota) + ").");
    }
  }
  return Status::Ok();
}

static bool IsCoreAttribute(std::string_view key) {
  static constexpr std::string_view kCore[] = {"id",         "name",       "visibility", "protected",
                                               "os_hidden",  "min_disk",   "min_ram",    "disk_format",
                                               "container_format", "owner", "tags"};
  for (auto k : kCore) {
    if (k == key) return true;
  }
  return false;
}

static Result<json::value> ParseJson(Request& req) {
  auto body = req.ReadBody(kMaxJsonBody);
  if (!body.ok()) {
    if (body.status().code() == Code::kTooLarge) return TooLarge("Request body is larger than 1 MiB.");
    return body.status();
  }
  boost::system::error_code ec;
  json::value v = json::parse(*body, ec);
  if (ec) return InvalidArgument("Malformed JSON in request body.");
  return v;
}

ImagesApi::ImagesApi(catalog::ImageRepository& repo, service::ImageService& images,
                     const service::Config& config)
    : repo_(repo), images_(images), config_(config) {}

void ImagesApi::Register(Router& r) {
  auto bind = [this](auto fn) {
    return [this, fn](Request& req, const Ctx& ctx, const Params& p) { return (this->*fn)(req, ctx, p); };
  };
  r.Add("POST", "/v2/images", bind(&ImagesApi::Create));
  r.Add("GET", "/v2/images", bind(&ImagesApi::List));
  r.Add("GET", "/v2/images/{id}", bind(&ImagesApi::Show));
  r.Add("PATCH", "/v2/images/{id}", bind(&ImagesApi::Update));
  r.Add("DELETE", "/v2/images/{id}", bind(&ImagesApi::Delete));
  r.Add("PUT", "/v2/images/{id}/file", bind(&ImagesApi::Upload));
  r.Add("GET", "/v2/images/{id}/file", bind(&ImagesApi::Download));
  r.Add("PUT", "/v2/images/{id}/tags/{tag}", bind(&ImagesApi::AddTag));
  r.Add("DELETE", "/v2/images/{id}/tags/{tag}", bind(&ImagesApi::DeleteTag));
  r.Add("POST", "/v2/images/{id}/actions/deactivate", bind(&ImagesApi::Deactivate));
  r.Add("POST", "/v2/images/{id}/actions/reactivate", bind(&ImagesApi::Reactivate));
  r.Add("GET", "/v2/images/{id}/members", bind(&ImagesApi::ListMembers));
  r.Add("POST", "/v2/images/{id}/members", bind(&ImagesApi::AddMember));
  r.Add("GET", "/v2/images/{id}/members/{member}", bind(&ImagesApi::ShowMember));
  r.Add("PUT", "/v2/images/{id}/members/{member}", bind(&ImagesApi::UpdateMember));
  r.Add("DELETE", "/v2/images/{id}/members/{member}", bind(&ImagesApi::DeleteMember));
  r.Add("GET", "/v2/schemas/image",
        [this](Request&, const Ctx&, const Params&) {
          Response resp;
          resp.body = ImageSchemaJson(config_);
          resp.headers.Set("Content-Type", "application/json");
          return resp;
        });
  r.Add("GET", "/v2/schemas/images",
        [this](Request&, const Ctx&, const Params&) {
          Response resp;
          resp.body = ImagesSchemaJson(config_);
          resp.headers.Set("Content-Type", "application/json");
          return resp;
        });
}

Result<Image> ImagesApi::Load(const std::string& id, const Ctx& ctx) {
  auto not_found = [&] { return NotFound("No image found with ID " + id); };
  if (!IsUuid(id)) return not_found();
  auto image = repo_.Get(CanonicalUuid(id));
  if (!image.ok()) return image.status().code() == Code::kNotFound ? not_found() : image.status();
  catalog::Viewer viewer{ctx.project, ctx.is_admin()};
  std::optional<catalog::MemberStatus> membership;
  if (image->visibility == Visibility::kShared && ctx.project && !ctx.is_admin() &&
      image->owner != ctx.project) {
    if (auto m = repo_.GetMember(image->id, *ctx.project); m.ok()) membership = m->status;
  }
  if (!catalog::IsVisible(*image, viewer, membership)) return not_found();
  return image;
}

Result<Image> ImagesApi::Mutate(const std::string& id, const Ctx& ctx,
                                const std::function<Status(Image&)>& change) {
  for (int attempt = 0; attempt < kMutateRetries; ++attempt) {
    INGOT_ASSIGN_OR_RETURN(Image image, Load(id, ctx));
    INGOT_RETURN_IF_ERROR(change(image));
    image.updated_at = NowMicros();
    Status s = repo_.Save(image);
    if (s.ok()) {
      ++image.version;
      return image;
    }
    if (s.code() != Code::kConflict) return s;
  }
  return Conflict("Image " + id + " is being changed by other requests; retry.");
}

Response ImagesApi::Create(Request& req, const Ctx& ctx, const Params&) {
  if (Status s = auth::Authorize(auth::Action::kCreateImage, ctx); !s.ok()) return ErrorResponse(s);
  auto body = ParseJson(req);
  if (!body.ok()) return ErrorResponse(body.status());
  if (!body->is_object()) return ErrorResponse(InvalidArgument("Malformed JSON in request body."));
  Image im;
  im.id = NewUuid();
  im.owner = ctx.project;
  for (const auto& [k, v] : body->as_object()) {
    if (Status s = SetAttribute(im, std::string(k), v, ctx, config_, true); !s.ok()) {
      return ErrorResponse(s);
    }
  }
  im.status = ImageStatus::kQueued;
  im.created_at = im.updated_at = NowMicros();
  Status added = repo_.Add(im);
  if (added.code() == Code::kAlreadyExists) {
    return ErrorResponse(Conflict("Image ID " + im.id + " already exists!"));
  }
  if (!added.ok()) return ErrorResponse(added);
  im.version = 1;
  Response r = ImageResponse(201, im);
  r.headers.Set("Location", config_.public_url + "/v2/images/" + im.id);
  return r;
}

Response ImagesApi::List(Request& req, const Ctx& ctx, const Params&) {
  auto query = catalog::ParseListQuery(req.query);
  if (!query.ok()) return ErrorResponse(query.status());
  catalog::Viewer viewer{ctx.project, ctx.is_admin()};
  auto page = repo_.List(*query, viewer);
  if (!page.ok()) return ErrorResponse(page.status());

  std::string params;
  for (const auto& [k, v] : req.query) {
    if (k == "marker") continue;
    params += params.empty() ? "" : "&";
    params += EncodeQueryComponent(k) + "=" + EncodeQueryComponent(v);
  }
  std::string body;
  body.reserve(256 + 1024 * page->images.size());
  body += "{\"images\": [";
  for (size_t i = 0; i < page->images.size(); ++i) {
    if (i > 0) body += ", ";
    AppendImage(body, page->images[i]);
  }
  body += "], \"first\": ";
  AppendString(body, params.empty() ? std::string("/v2/images") : "/v2/images?" + params);
  body += ", \"schema\": \"/v2/schemas/images\"";
  if (page->next_marker) {
    body += ", \"next\": ";
    AppendString(body, "/v2/images?" + params + (params.empty() ? "" : "&") + "marker=" +
                           EncodeQueryComponent(*page->next_marker));
  }
  body += '}';
  return JsonText(200, std::move(body));
}

Response ImagesApi::Show(Request&, const Ctx& ctx, const Params& p) {
  if (Status s = auth::Authorize(auth::Action::kGetImage, ctx); !s.ok()) return ErrorResponse(s);
  auto image = Load(p[0], ctx);
  if (!image.ok()) return ErrorResponse(image.status());
  return ImageResponse(200, *image);
}

Response ImagesApi::Update(Request& req, const Ctx& ctx, const Params& p) {
  auto ctype = req.headers.Get("Content-Type").value_or("");
  std::string_view media = ctype.substr(0, ctype.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (media != kPatchMediaType && media != kPatchMediaTypeOld) {
    return ErrorResponseVerbatim(415, "The request media type " +
                                          std::string(media.empty() ? "(none)" : media) +
                                          " is not supported by this server.\n<br /><br />\n");
  }
  auto body = ParseJson(req);
  if (!body.ok()) return ErrorResponse(body.status());
  if (!body->is_array()) {
    return ErrorResponse(InvalidArgument("Request body must be a JSON array of operation objects."));
  }
  const json::array& ops = body->as_array();
  auto result = Mutate(p[0], ctx, [&](Image& im) -> Status {
    INGOT_RETURN_IF_ERROR(auth::Authorize(auth::Action::kUpdateImage, ctx, &im));
    for (const auto& opv : ops) {
      if (!opv.is_object()) return InvalidArgument("Operations must be JSON objects.");
      const json::object& op = opv.as_object();
      const json::value* opname = op.if_contains("op");
      const json::value* path = op.if_contains("path");
      if (opname == nullptr || !opname->is_string()) {
        return InvalidArgument("Unable to find 'op' in JSON Schema change");
      }
      if (path == nullptr || !path->is_string() || path->as_string().empty() ||
          path->as_string()[0] != '/') {
        return InvalidArgument("Unable to find 'path' in JSON Schema change");
      }
      std::string_view kind = opname->as_string();
      std::string_view raw = path->as_string();
      raw.remove_prefix(1);
      if (raw.find('/') != std::string_view::npos) {
        return InvalidArgument("Invalid JSON pointer for this resource: '/" + std::string(raw) + "'");
      }
      std::string key = UnescapePointer(raw);
      if (kind == "add" || kind == "replace") {
        const json::value* value = op.if_contains("value");
        if (value == nullptr) return InvalidArgument("Unable to find 'value' in JSON Schema change");
        if (kind == "replace" && !IsCoreAttribute(key) && !IsReadOnly(key) && !IsReserved(key) &&
            !im.properties.count(key)) {
          return Conflict("Property " + key + " does not exist.");
        }
        INGOT_RETURN_IF_ERROR(SetAttribute(im, key, *value, ctx, config_, false));
      } else if (kind == "remove") {
        if (IsReadOnly(key)) return PermissionDenied("Attribute '" + key + "' is read-only.");
        if (IsReserved(key)) return PermissionDenied("Attribute '" + key + "' is reserved.");
        if (IsCoreAttribute(key)) {
          return PermissionDenied("Properties " + key + " cannot be removed.");
        }
        if (im.properties.erase(key) == 0) return Conflict("Property " + key + " does not exist.");
      } else {
        return InvalidArgument("Invalid operation: `" + std::string(kind) + "`");
      }
    }
    return Status::Ok();
  });
  if (!result.ok()) return ErrorResponse(result.status());
  return ImageResponse(200, *result);
}

Response ImagesApi::Delete(Request&, const Ctx& ctx, const Params& p) {
  auto image = Load(p[0], ctx);
  if (!image.ok()) return ErrorResponse(image.status());
  if (Status s = auth::Authorize(auth::Action::kDeleteImage, ctx, &*image); !s.ok()) {
    return ErrorResponse(s);
  }
  if (Status s = images_.Delete(*image); !s.ok()) return ErrorResponse(s);
  return NoContent();
}

Response ImagesApi::Upload(Request& req, const Ctx& ctx, const Params& p) {
  auto image = Load(p[0], ctx);
  if (!image.ok()) return ErrorResponse(image.status());
  if (Status s = auth::Authorize(auth::Action::kUploadImage, ctx, &*image); !s.ok()) {
    return ErrorResponse(s);
  }
  auto ctype = req.headers.Get("Content-Type");
  if (ctype && ctype->substr(0, ctype->find(';')) != "application/octet-stream") {
    return ErrorResponseVerbatim(415, "The request media type " + std::string(*ctype) +
                                          " is not supported by this server.\n<br /><br />\n");
  }
  service::UploadStats stats;
  auto done = images_.Upload(image->id, *req.body, req.content_length, &stats);
  if (!done.ok()) {
    log::Warn("upload.failed", {{"image", image->id}, {"error", done.status().ToString()}});
    return ErrorResponse(done.status());
  }
  log::Info("upload.done", {{"image", image->id},
                            {"bytes", stats.bytes},
                            {"mib_per_s", stats.micros > 0 ? static_cast<double>(stats.bytes) /
                                                                 stats.micros / 1.048576
                                                           : 0.0}});
  return NoContent();
}

namespace {

struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
};

// Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range against `size`.
// nullopt: unsatisfiable or malformed (both answer 416, as Glance does).
std::optional<ByteRange> ParseRange(std::string_view h, uint64_t size) {
  auto eq = h.find('=');
  if (eq == std::string_view::npos || h.substr(0, eq) != "bytes") return std::nullopt;
  std::string_view spec = h.substr(eq + 1);
  while (!spec.empty() && spec.front() == ' ') spec.remove_prefix(1);
  if (spec.find(',') != std::string_view::npos) return std::nullopt;
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto num = [](std::string_view s, uint64_t& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  ByteRange r;
  if (a.empty()) {
    uint64_t n;
    if (!num(b, n) || n == 0 || size == 0) return std::nullopt;
    r.first = n >= size ? 0 : size - n;
    r.last = size - 1;
    return r;
  }
  if (!num(a, r.first) || r.first >= size) return std::nullopt;
  if (b.empty()) {
    r.last = size - 1;
  } else {
    if (!num(b, r.last) || r.last < r.first) return std::nullopt;
    if (r.last >= size) r.last = size - 1;
  }
  return r;
}

// Streams a byte source (stores without local files).
class SourceReader final : public io::Reader {
 public:
  SourceReader(std::unique_ptr<io::ByteSource> src, uint64_t offset, uint64_t length)
      : src_(std::move(src)), offset_(offset), end_(offset + length) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    if (offset_ >= end_) return size_t{0};
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end_ - offset_));
    INGOT_ASSIGN_OR_RETURN(size_t n, src_->ReadAt(offset_, buf.first(want)));
    if (n == 0) return Corruption("image data ended early");
    offset_ += n;
    return n;
  }

 private:
  std::unique_ptr<io::ByteSource> src_;
  uint64_t offset_, end_;
};

}  // namespace

Response ImagesApi::Download(Request& req, const Ctx& ctx, const Params& p) {
  auto image = Load(p[0], ctx);
  if (!image.ok()) return ErrorResponse(image.status());
  if (Status s = auth::Authorize(auth::Action::kDownloadImage, ctx, &*image); !s.ok()) {
    return ErrorResponse(s);
  }
  if (image->status == ImageStatus::kDeactivated && !ctx.is_admin()) {
    return ErrorResponse(PermissionDenied(
        "The requested image has been deactivated. Image data download is forbidden."));
  }
  if (image->status != ImageStatus::kActive && image->status != ImageStatus::kDeactivated) {
    Response r;
    r.status = 204;
    return r;
  }
  auto data = images_.OpenData(*image);
  if (!data.ok()) return ErrorResponse(data.status());
  uint64_t size = data->size;
  ByteRange range{0, size == 0 ? 0 : size - 1};
  Response r;
  r.status = 200;
  if (auto h = req.headers.Get("Range")) {
    auto parsed = ParseRange(*h, size);
    if (!parsed) {
      Response e = ErrorResponse(OutOfRange("Requested range not satisfiable: '" + std::string(*h) +
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
  if (image->checksum) r.headers.Set("Content-MD5", *image->checksum);
  if (data->fd) {
    r.file = http::FileRange{std::move(data->fd), range.first, length};
  } else {
    r.stream = std::make_unique<SourceReader>(std::move(data->source), range.first, length);
    r.stream_length = length;
  }
  return r;
}

Response ImagesApi::AddTag(Request&, const Ctx& ctx, const Params& p) {
  const std::string& tag = p[1];
  if (tag.empty() || tag.size() > 255) {
    return ErrorResponse(InvalidArgument("Tags must be 1-255 characters."));
  }
  auto result = Mutate(p[0], ctx, [&](Image& im) -> Status {
    INGOT_RETURN_IF_ERROR(auth::Authorize(auth::Action::kUpdateImage, ctx, &im));
    im.tags.insert(tag);
    if (static_cast<int>(im.tags.size()) > config_.tag_quota) {
      return TooLarge("Maximum number of tags exceeded (" + std::to_string(config_.tag_quota) + ").");
    }
    return Status::Ok();
  });
  if (!result.ok()) return ErrorResponse(result.status());
  return NoContent();
}

Response ImagesApi::DeleteTag(Request&, const Ctx& ctx, const Params& p) {
  const std::string& tag = p[1];
  auto result = Mutate(p[0], ctx, [&](Image& im) -> Status {
    INGOT_RETURN_IF_ERROR(auth::Authorize(auth::Action::kUpdateImage, ctx, &im));
    if (im.tags.erase(tag) == 0) return NotFound("Tag " + tag + " not found.");
    return Status::Ok();
  });
  if (!result.ok()) return ErrorResponse(result.status());
  return NoContent();
}

Response ImagesApi::Deactivate(Request&, const Ctx& ctx, const Params& p) {
  auto result = Mutate(p[0], ctx, [&](Image& im) -> Status {
    INGOT_RETURN_IF_ERROR(auth::Authorize(auth::Action::kDeactivateImage, ctx, &im));
    if (im.status == ImageStatus::kDeactivated) return Status::Ok();
    if (im.status != ImageStatus::kActive) {
      return PermissionDenied("Not allowed to deactivate image in status '" +
                              std::string(catalog::StatusName(im.status)) + "'");
    }
    im.status = ImageStatus::kDeactivated;
    return Status::Ok();
  });
  if (!result.ok()) return ErrorResponse(result.status());
  return NoContent();
}

Response ImagesApi::Reactivate(Request&, const Ctx& ctx, const Params& p) {
  auto result = Mutate(p[0], ctx, [&](Image& im) -> Status {
    INGOT_RETURN_IF_ERROR(auth::Authorize(auth::Action::kReactivateImage, ctx, &im));
    if (im.status == ImageStatus::kActive) return Status::Ok();
    if (im.status != ImageStatus::kDeactivated) {
      return PermissionDenied("Not allowed to reactivate image in status '" +
                              std::string(catalog::StatusName(im.status)) + "'");
    }
    im.status = ImageStatus::kActive;
    return Status::Ok();
  });
  if (!result.ok()) return ErrorResponse(result.status());
  return NoContent();
}

// Image sharing (Glance's members API): the owner shares a `shared` image with other projects; each
// member project accepts or rejects it, which decides whether it appears in that project's list.

namespace {

json::object MemberToJson(const catalog::ImageMember& m) {
  return json::object{{"image_id", m.image_id},
                      {"member_id", m.member},
                      {"status", catalog::MemberStatusName(m.status)},
                      {"created_at", FormatIso8601(m.created_at)},
                      {"updated_at", FormatIso8601(m.updated_at)},
                      {"schema", "/v2/schemas/member"}};
}

}  // namespace

Response ImagesApi::ListMembers(Request&, const Ctx& ctx, const Params& p) {
  auto image = Load(p[0], ctx);
  if (!image.ok()) return ErrorResponse(image.status());
  if (image->visibility != Visibility::kShared) {
    return ErrorResponse(PermissionDenied("Only shared images have members."));
  }
  auto members = repo_.ListMembers(image->id);
  if (!members.ok()) return ErrorResponse(members.status());
  bool owner = ctx.is_admin() || image->owner == ctx.project;
  json::array out;
  for (const auto& m : *members) {
    // A member project sees only its own membership; the owner sees them all.
    if (owner || m.member == ctx.project) out.emplace_back(MemberToJson(m));
  }
  return Json(200, json::object{{"members", std::move(out)}, {"schema", "/v2/schemas/members"}});
}

Response ImagesApi::AddMember(Request& req, const Ctx& ctx, const Params& p) {
  auto image = Load(p[0], ctx);
  if (!image.ok()) return ErrorResponse(image.status());
  if (Status s = auth::Authorize(auth::Action::kUpdateImage, ctx, &*image); !s.ok()) {
    return ErrorResponse(s);
  }
  if (image->visibility != Visibility::kShared) {
    return ErrorResponse(PermissionDenied("Only shared images have members."));
  }
  auto body = ParseJson(req);
  if (!body.ok()) return ErrorResponse(body.status());
  const json::value* member = body->is_object() ? body->as_object().if_contains("member") : nullptr;
  if (member == nullptr || !member->is_string() || member->as_string().empty() ||
      member->as_string().size() > 255) {
    return ErrorResponse(InvalidArgument("Member to be added not specified"));
  }
  catalog::ImageMember m;
  m.image_id = image->id;
  m.member = std::string(member->as_string());
  m.created_at = m.updated_at = NowMicros();
  Status s = repo_.AddMember(m);
  if (s.code() == Code::kAlreadyExists) {
    return ErrorResponse(Conflict("Member " + m.member + " already exists on image " + image->id + "."));
  }
  if (!s.ok()) return ErrorResponse(s);
  return Json(200, MemberToJson(m));
}

Response ImagesApi::ShowMember(Request&, const Ctx& ctx, const Params& p) {
  auto image = Load(p[0], ctx);
  if (!image.ok()) return ErrorResponse(image.status());
  bool owner = ctx.is_admin() || image->owner == ctx.project;
  if (!owner && p[1] != ctx.project) {
    return ErrorResponse(NotFound("Member " + p[1] + " not found on image " + image->id + "."));
  }
  auto m = repo_.GetMember(image->id, p[1]);
  if (!m.ok()) return ErrorResponse(m.status());
  return Json(200, MemberToJson(*m));
}

Response ImagesApi::UpdateMember(Request& req, const Ctx& ctx, const Params& p) {
  auto image = Load(p[0], ctx);
  if (!image.ok()) return ErrorResponse(image.status());
  // Only the member project decides whether it accepts the image (Glance: modify_member).
  if (!ctx.can_write() || p[1] != ctx.project) {
    return ErrorResponse(PermissionDenied("You are not authorized to complete modify_member action."));
  }
  auto body = ParseJson(req);
  if (!body.ok()) return ErrorResponse(body.status());
  const json::value* status = body->is_object() ? body->as_object().if_contains("status") : nullptr;
  auto parsed = status && status->is_string() ? catalog::ParseMemberStatus(status->as_string())
                                              : std::nullopt;
  if (!parsed) {
    return ErrorResponse(InvalidArgument("Status must be one of pending, accepted, rejected."));
  }
  auto m = repo_.GetMember(image->id, p[1]);
  if (!m.ok()) return ErrorResponse(m.status());
  m->status = *parsed;
  m->updated_at = NowMicros();
  if (Status s = repo_.UpdateMember(*m); !s.ok()) return ErrorResponse(s);
  return Json(200, MemberToJson(*m));
}

Response ImagesApi::DeleteMember(Request&, const Ctx& ctx, const Params& p) {
  auto image = Load(p[0], ctx);
  if (!image.ok()) return ErrorResponse(image.status());
  if (Status s = auth::Authorize(auth::Action::kUpdateImage, ctx, &*image); !s.ok()) {
    return ErrorResponse(s);
  }
  if (Status s = repo_.RemoveMember(image->id, p[1]); !s.ok()) return ErrorResponse(s);
  return NoContent();
}

}  // namespace ingot::api
