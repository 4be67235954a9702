#include "api/v2/documents.h"

#include "api/errors.h"
#include "api/json/writer.h"
#include "io/hash.h"
#include "common/time.h"

namespace ingot::api {

using json_text::AppendKey;
using json_text::AppendOptional;
using json_text::AppendString;

void AppendImage(std::string& out, const catalog::Image& im, bool stores,
                 const LocationsShown* shown) {
  out += '{';
  for (const auto& [k, v] : im.properties) {
    AppendKey(out, k);
    AppendString(out, v);
  }
  // clang-format off: one attribute per line reads as the document it writes.
  AppendKey(out, "id");
  AppendString(out, im.id);
  AppendKey(out, "name");
  AppendOptional(out, im.name);
  AppendKey(out, "status");
  AppendString(out, catalog::StatusName(im.status()));
  AppendKey(out, "visibility");
  AppendString(out, catalog::VisibilityName(im.visibility));
  AppendKey(out, "protected");
  out += im.is_protected ? "true" : "false";
  AppendKey(out, "os_hidden");
  out += im.os_hidden ? "true" : "false";
  AppendKey(out, "checksum");
  AppendOptional(out, im.checksum);
  AppendKey(out, "os_hash_algo");
  AppendOptional(out, im.os_hash_algo);
  AppendKey(out, "os_hash_value");
  AppendOptional(out, im.os_hash_value);
  AppendKey(out, "owner");
  AppendOptional(out, im.owner);
  AppendKey(out, "size");
  AppendOptional(out, im.size);
  AppendKey(out, "virtual_size");
  AppendOptional(out, im.virtual_size);
  AppendKey(out, "min_ram");
  out += std::to_string(im.min_ram);
  AppendKey(out, "min_disk");
  out += std::to_string(im.min_disk);
  AppendKey(out, "disk_format");
  AppendOptional(out, im.disk_format);
  AppendKey(out, "container_format");
  AppendOptional(out, im.container_format);
  AppendKey(out, "created_at");
  AppendString(out, FormatIso8601(im.created_at));
  AppendKey(out, "updated_at");
  AppendString(out, FormatIso8601(im.updated_at));
  // clang-format on
  AppendKey(out, "tags");
  out += '[';
  bool first = true;
  for (const auto& t : im.tags) {
    if (!first) out += ", ";
    first = false;
    AppendString(out, t);
  }
  out += ']';
  AppendKey(out, "self");
  out += "\"/v2/images/" + im.id + "\"";
  AppendKey(out, "file");
  out += "\"/v2/images/" + im.id + "/file\"";
  AppendKey(out, "schema");
  out += "\"/v2/schemas/image\"";
  if (stores && !im.locations.empty()) {
    std::string ids;
    for (const auto& loc : im.locations) ids += (ids.empty() ? "" : ",") + loc.store;
    AppendKey(out, "stores");
    AppendString(out, ids);
  }
  if (shown != nullptr && shown->locations) {
    AppendKey(out, "locations");
    out += '[';
    for (size_t i = 0; i < shown->items.size(); ++i) {
      if (i > 0) out += ", ";
      out += "{\"url\": ";
      AppendString(out, shown->items[i].first);
      out += ", \"metadata\": ";
      out += shown->items[i].second.empty() ? "{}" : shown->items[i].second;
      out += '}';
    }
    out += ']';
  }
  if (shown != nullptr && shown->direct_url && !shown->items.empty()) {
    AppendKey(out, "direct_url");
    AppendString(out, shown->items.front().first);
  }
  out += '}';
}

http::Response JsonResponse(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.Set("Content-Type", "application/json");
  return r;
}

http::Response JsonResponse(int status, const boost::json::value& body) {
  return JsonResponse(status, boost::json::serialize(body));
}

http::Response ImageResponse(int status, const catalog::Image& im, bool stores,
                             const LocationsShown* shown) {
  std::string body;
  body.reserve(1024);
  AppendImage(body, im, stores, shown);
  return JsonResponse(status, std::move(body));
}

boost::json::object MemberJson(const catalog::ImageMember& m) {
  return boost::json::object{{"image_id", m.image_id},
                             {"member_id", m.member},
                             {"status", catalog::MemberStatusName(m.status)},
                             {"created_at", FormatIso8601(m.created_at)},
                             {"updated_at", FormatIso8601(m.updated_at)},
                             {"schema", "/v2/schemas/member"}};
}

catalog::Viewer ViewerOf(const auth::RequestContext& ctx) {
  return catalog::Viewer{ctx.project, ctx.is_admin()};
}

std::string_view MediaType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  return media;
}

http::Response UnsupportedMediaType(std::string_view shown) {
  return ErrorResponseVerbatim(415, "The request media type " +
                                        std::string(shown.empty() ? "(none)" : shown) +
                                        " is not supported by this server.\n<br /><br />\n");
}

Result<ImageDataHead> ReadImageDataHead(const http::Request& request) {
  ImageDataHead head;
  auto ctype = request.headers.Get("Content-Type");
  if (ctype && MediaType(*ctype) != "application/octet-stream") {
    head.refusal = UnsupportedMediaType(*ctype);
    return head;
  }
  if (auto declared = request.headers.Get("Content-MD5")) {
    INGOT_ASSIGN_OR_RETURN(head.md5, io::Md5HexFromHeader(*declared));
  }
  return head;
}

http::Response NoContent() {
  http::Response r;
  r.status = 204;
  r.headers.Set("Content-Type", "text/html; charset=UTF-8");
  return r;
}

Result<boost::json::value> ReadJson(http::Request& request, size_t limit) {
  auto body = request.ReadBody(limit);
  if (!body.ok()) {
    if (body.status().code() == Code::kTooLarge) {
      return TooLarge("Request body is larger than " + std::to_string(limit >> 10) + " KiB.");
    }
    return body.status();
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(*body, ec);
  if (ec) return InvalidArgument("Malformed JSON in request body.");
  return v;
}

}  // namespace ingot::api
