#include "api/errors.h"

#include <boost/json.hpp>

namespace ingot::api {

int HttpStatusOf(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kNotFound: return 404;
    case Code::kAlreadyExists: return 409;
    case Code::kConflict: return 409;
    case Code::kPermissionDenied: return 403;
    case Code::kUnauthenticated: return 401;
    case Code::kOutOfRange: return 416;
    case Code::kTooLarge: return 413;
    case Code::kUnsupportedMedia: return 415;
    case Code::kUnsupported: return 400;
    case Code::kRefused: return 400;
    case Code::kCorruption: return 500;
    case Code::kIoError: return 500;
    case Code::kStorageFull: return 507;
    case Code::kUnavailable: return 503;
    case Code::kCancelled: return 400;
    case Code::kTimeout: return 408;
    case Code::kInternal: return 500;
  }
  return 500;
}

std::string_view ReasonPhrase(int s) {
  switch (s) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Requested Range Not Satisfiable";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Error";
  }
}

http::Response ErrorResponse(int http_status, std::string_view message) {
  std::string full(message);
  full += message.find("<br /><br />") == std::string_view::npos ? "<br /><br />\n\n\n" : "\n\n";
  return ErrorResponseVerbatim(http_status, std::move(full));
}

http::Response ErrorResponseVerbatim(int http_status, std::string message) {
  http::Response r;
  r.status = http_status;
  std::string code = std::to_string(http_status) + " " + std::string(ReasonPhrase(http_status));
  boost::json::object body;
  body["message"] = std::move(message);
  body["code"] = code;
  body["title"] = ReasonPhrase(http_status);
  r.body = boost::json::serialize(body);
  r.headers.Set("Content-Type", "application/json");
  return r;
}

http::Response ErrorResponse(const Status& status) {
  return ErrorResponse(HttpStatusOf(status.code()), status.message());
}

void NegotiateErrorBody(std::string_view accept, http::Response& r) {
  if (r.status < 400 || accept.find("application/json") != std::string_view::npos) return;
  auto ctype = r.headers.Get("Content-Type");
  if (!ctype || *ctype != "application/json") return;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  const boost::json::value* m = (!ec && v.is_object()) ? v.as_object().if_contains("message") : nullptr;
  if (m == nullptr || !m->is_string()) return;
  std::string_view text = m->as_string();
  // The JSON message carries Glance's "<br /><br />" separator, the only markup we ever put there;
  // everything else came from the request and is escaped.
  constexpr std::string_view kBreak = "<br /><br />";
  auto cut = text.find(kBreak);
  std::string_view head = text.substr(0, cut);
  std::string_view tail = cut == std::string_view::npos ? "" : text.substr(cut + kBreak.size());
  auto escape = [](std::string_view s) {
    std::string out;
    for (char c : s) {
      switch (c) {
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '&': out += "&amp;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
      }
    }
    return out;
  };
  std::string title = std::to_string(r.status) + " " + std::string(ReasonPhrase(r.status));
  r.body = "<html>\n <head>\n  <title>" + title + "</title>\n </head>\n <body>\n  <h1>" + title +
           "</h1>\n  " + escape(head) + "<br /><br />" + escape(tail) + "\n </body>\n</html>";
  r.headers.Set("Content-Type", "text/html; charset=UTF-8");
}

}  // namespace ingot::api
