// The one place a Status becomes an HTTP answer, in Glance's error shape:
//   {"message": "<text><br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}
#pragma once

#include <string_view>

#include "common/status.h"
#include "http/server.h"

namespace ingot::api {

int HttpStatusOf(Code code);
std::string_view ReasonPhrase(int http_status);

// An error response for `status` (must not be OK).
http::Response ErrorResponse(const Status& status);
// An error response with an explicit HTTP status (405, 404 for unknown paths, ...).
// The message becomes Glance's "<explanation><br /><br />\n<detail>\n\n" (webob's error template); a
// message that already holds "<br /><br />\n" is taken as explanation and detail.
http::Response ErrorResponse(int http_status, std::string_view message);
// As above with the message used exactly as given (webob's templates differ for 405 and 415).
http::Response ErrorResponseVerbatim(int http_status, std::string message);

// Glance answers errors in JSON only to clients that accept it (Accept: application/json) and in HTML
// to everyone else; the glance CLI relies on that. Rewrites a JSON error body from ErrorResponse as
// Glance's HTML page (with the message HTML-escaped) unless `accept` asks for JSON.
void NegotiateErrorBody(std::string_view accept, http::Response& response);

}  // namespace ingot::api
