// The Image API v2 documents in Glance's shape: an image, a member, and the small responses every
// resource uses.
#pragma once

#include <boost/json.hpp>
#include <string>

#include "catalog/image.h"
#include "common/result.h"
#include "http/server.h"

namespace ingot::api {

// One image: extra properties first, then the core attributes and links; with `stores`, the stores
// holding a copy ("fast,cold"), as a multi-store Glance shows them.
void AppendImage(std::string& out, const catalog::Image& image, bool stores = false);
http::Response ImageResponse(int status, const catalog::Image& image, bool stores = false);
boost::json::object MemberJson(const catalog::ImageMember& member);

http::Response JsonResponse(int status, std::string body);
http::Response JsonResponse(int status, const boost::json::value& body);
// 204 with Glance's Content-Type.
http::Response NoContent();

// Reads and parses a JSON request body. kTooLarge past `limit`; kInvalidArgument "Malformed JSON in
// request body." for text that is not JSON (ill-formed UTF-8 included: Boost.JSON refuses it).
Result<boost::json::value> ReadJson(http::Request& request, size_t limit);

}  // namespace ingot::api
