// The Image API v2 documents in Glance's shape: an image, a member, and the small responses every
// resource uses.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/context.h"
#include "catalog/image.h"
#include "common/result.h"
#include "http/server.h"

namespace ingot::api {

// What an image document shows of the image's locations: Glance's show_multiple_locations
// (`locations`: [{"url", "metadata"}], [] when there are none or the caller may not see them) and
// show_image_direct_url (`direct_url`: the first location's URL, absent without one).
struct LocationsShown {
  bool locations = false;
  bool direct_url = false;
  std::vector<std::pair<std::string, std::string>> items;  // url, metadata as a JSON object's text
};

// One image: extra properties first, then the core attributes and links; with `stores`, the stores
// holding a copy ("fast,cold"), as a multi-store Glance shows them; with `shown`, its locations.
void AppendImage(std::string& out, const catalog::Image& image, bool stores = false,
                 const LocationsShown* shown = nullptr);
http::Response ImageResponse(int status, const catalog::Image& image, bool stores = false,
                             const LocationsShown* shown = nullptr);
boost::json::object MemberJson(const catalog::ImageMember& member);

http::Response JsonResponse(int status, std::string body);
http::Response JsonResponse(int status, const boost::json::value& body);
// 204 with Glance's Content-Type.
http::Response NoContent();

// The caller as the catalog's visibility rules see it.
catalog::Viewer ViewerOf(const auth::RequestContext& ctx);

// The media type of a Content-Type value, without parameters or trailing blanks.
std::string_view MediaType(std::string_view content_type);
// Glance's 415, naming the media type the client sent ("(none)" when empty).
http::Response UnsupportedMediaType(std::string_view shown);

// What the head of a request carrying image bytes (PUT …/file, PUT …/stage) says of them: a
// Content-Type other than application/octet-stream is refused with Glance's 415 (`refusal`); a
// Content-MD5 is the checksum the client declares (hex), kInvalidArgument when malformed.
struct ImageDataHead {
  std::optional<http::Response> refusal;
  std::optional<std::string> md5;
};
Result<ImageDataHead> ReadImageDataHead(const http::Request& request);

// Reads and parses a JSON request body. kTooLarge past `limit`; kInvalidArgument "Malformed JSON in
// request body." for text that is not JSON (ill-formed UTF-8 included: Boost.JSON refuses it).
Result<boost::json::value> ReadJson(http::Request& request, size_t limit);

}  // namespace ingot::api
