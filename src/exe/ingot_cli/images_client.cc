#include "exe/ingot_cli/images_client.h"

#include "http/url.h"

#include <cctype>

namespace ingot::cli {
namespace json = boost::json;

namespace {

// Glance decorates messages for HTML ("…<br /><br />\n\n\n"); show the text only, on one line.
std::string PlainText(std::string_view s) {
  std::string out;
  bool in_tag = false;
  bool space = false;
  for (char c : s) {
    if (c == '<') {
      in_tag = true;
      space = true;
      continue;
    }
    if (c == '>' && in_tag) {
      in_tag = false;
      continue;
    }
    if (in_tag) continue;
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

Code CodeForStatus(int status) {
  switch (status) {
    case 400:
      return Code::kInvalidArgument;
    case 401:
      return Code::kUnauthenticated;
    case 403:
      return Code::kPermissionDenied;
    case 404:
      return Code::kNotFound;
    case 409:
      return Code::kConflict;
    case 413:
      return Code::kTooLarge;
    case 415:
      return Code::kUnsupportedMedia;
    case 416:
      return Code::kOutOfRange;
    case 408:
      return Code::kTimeout;
    case 503:
      return Code::kUnavailable;
    default:
      return status >= 500 ? Code::kIoError : Code::kInvalidArgument;
  }
}

}  // namespace

Status StatusFromResponse(const http::ClientResponse& resp) {
  std::string message;
  boost::system::error_code ec;
  json::value v = json::parse(resp.body, ec);
  if (!ec && v.is_object()) {
    const json::object& o = v.as_object();
    // Glance: {"message": …, "code": …, "title": …}; some paths nest it under "error".
    const json::object* e = &o;
    if (auto* inner = o.if_contains("error"); inner && inner->is_object()) e = &inner->as_object();
    if (auto* m = e->if_contains("message"); m && m->is_string())
      message = PlainText(m->as_string());
  }
  if (message.empty()) {
    message = PlainText(resp.body);
    // An HTML page repeats its title ("403 Forbidden 403 Forbidden …"): drop what the prefix says
    // already.
    std::string title = std::to_string(resp.status) + " " + resp.reason;
    while (message.rfind(title, 0) == 0) message = PlainText(message.substr(title.size()));
  }
  std::string text = "HTTP " + std::to_string(resp.status) + " " + resp.reason;
  if (!message.empty()) text += ": " + message;
  return Status(CodeForStatus(resp.status), text);
}

Result<http::ClientResponse> ImagesClient::Call(http::ClientRequest req, io::Writer* sink,
                                                const http::Progress& progress) {
  if (!token_.empty()) req.headers.Set("X-Auth-Token", token_);
  if (!req.headers.Get("Accept")) req.headers.Set("Accept", "application/json");
  INGOT_ASSIGN_OR_RETURN(http::ClientResponse resp, http_.Send(req, sink, progress));
  if (resp.status < 200 || resp.status >= 300) return StatusFromResponse(resp);
  return resp;
}

Result<json::object> ImagesClient::CallForObject(http::ClientRequest req) {
  INGOT_ASSIGN_OR_RETURN(http::ClientResponse resp, Call(std::move(req)));
  boost::system::error_code ec;
  json::value v = json::parse(resp.body, ec);
  if (ec || !v.is_object())
    return Corruption("the server answered with something that is not a JSON object");
  return std::move(v.as_object());
}

Result<json::object> ImagesClient::Create(const json::object& image) {
  http::ClientRequest req;
  req.method = "POST";
  req.target = "/v2/images";
  req.headers.Set("Content-Type", "application/json");
  req.body = json::serialize(image);
  return CallForObject(std::move(req));
}

Result<json::object> ImagesClient::Show(const std::string& id) {
  http::ClientRequest req;
  req.target = "/v2/images/" + http::PercentEncode(id);
  return CallForObject(std::move(req));
}

Result<std::vector<json::object>> ImagesClient::List(const std::string& query) {
  std::vector<json::object> out;
  std::string target = "/v2/images" + (query.empty() ? "" : "?" + query);
  // `next` is a path relative to the API root ("/v2/images?marker=…"); stop if a server ever loops.
  for (int page = 0; page < 100000 && !target.empty(); ++page) {
    http::ClientRequest req;
    req.target = target;
    INGOT_ASSIGN_OR_RETURN(json::object body, CallForObject(std::move(req)));
    auto* images = body.if_contains("images");
    if (images == nullptr || !images->is_array())
      return Corruption("the image list has no 'images' array");
    for (auto& im : images->as_array()) {
      if (im.is_object()) out.push_back(std::move(im.as_object()));
    }
    target.clear();
    if (auto* next = body.if_contains("next");
        next && next->is_string() && !images->as_array().empty()) {
      target = std::string(next->as_string());
    }
  }
  return out;
}

Result<json::object> ImagesClient::Update(const std::string& id, const json::array& ops) {
  http::ClientRequest req;
  req.method = "PATCH";
  req.target = "/v2/images/" + http::PercentEncode(id);
  req.headers.Set("Content-Type", "application/openstack-images-v2.1-json-patch");
  req.body = json::serialize(ops);
  return CallForObject(std::move(req));
}

namespace {
http::ClientRequest Simple(std::string method, std::string target) {
  http::ClientRequest req;
  req.method = std::move(method);
  req.target = std::move(target);
  return req;
}
}  // namespace

Status ImagesClient::Delete(const std::string& id) {
  return Call(Simple("DELETE", "/v2/images/" + http::PercentEncode(id))).status();
}

Status ImagesClient::AddTag(const std::string& id, const std::string& tag) {
  return Call(Simple("PUT", "/v2/images/" + http::PercentEncode(id) + "/tags/" + http::PercentEncode(tag))).status();
}

Status ImagesClient::DeleteTag(const std::string& id, const std::string& tag) {
  return Call(Simple("DELETE", "/v2/images/" + http::PercentEncode(id) + "/tags/" + http::PercentEncode(tag))).status();
}

Status ImagesClient::Deactivate(const std::string& id) {
  return Call(Simple("POST", "/v2/images/" + http::PercentEncode(id) + "/actions/deactivate")).status();
}

Status ImagesClient::Reactivate(const std::string& id) {
  return Call(Simple("POST", "/v2/images/" + http::PercentEncode(id) + "/actions/reactivate")).status();
}

Status ImagesClient::Upload(const std::string& id, io::Reader& data, std::optional<uint64_t> size,
                            const http::Progress& progress) {
  return PutData(id, "file", data, size, progress);
}

// PUT /v2/images/{id}/{file|stage}: the image bytes, streamed.
Status ImagesClient::PutData(const std::string& id, std::string_view where, io::Reader& data,
                             std::optional<uint64_t> size, const http::Progress& progress) {
  http::ClientRequest req =
      Simple("PUT", "/v2/images/" + http::PercentEncode(id) + "/" + std::string(where));
  req.headers.Set("Content-Type", "application/octet-stream");
  req.body_stream = &data;
  req.body_length = size;
  return Call(std::move(req), nullptr, progress).status();
}

Result<http::Headers> ImagesClient::Download(const std::string& id, io::Writer& sink,
                                             const http::Progress& progress) {
  http::ClientRequest req = Simple("GET", "/v2/images/" + http::PercentEncode(id) + "/file");
  req.headers.Set("Accept", "application/octet-stream");
  INGOT_ASSIGN_OR_RETURN(http::ClientResponse resp, Call(std::move(req), &sink, progress));
  if (resp.status == 204) return NotFound("image " + id + " has no data");
  return std::move(resp.headers);
}

Status ImagesClient::Stage(const std::string& id, io::Reader& data, std::optional<uint64_t> size,
                           const http::Progress& progress) {
  return PutData(id, "stage", data, size, progress);
}

Status ImagesClient::Import(const std::string& id, const json::object& request) {
  http::ClientRequest req = Simple("POST", "/v2/images/" + http::PercentEncode(id) + "/import");
  req.headers.Set("Content-Type", "application/json");
  req.body = json::serialize(request);
  return Call(std::move(req)).status();
}

Result<json::object> ImagesClient::ImportInfo() {
  return CallForObject(Simple("GET", "/v2/info/import"));
}

Result<std::vector<json::object>> ImagesClient::CallForList(http::ClientRequest req,
                                                            std::string_view key) {
  INGOT_ASSIGN_OR_RETURN(json::object body, CallForObject(std::move(req)));
  auto* items = body.if_contains(key);
  if (items == nullptr || !items->is_array()) {
    return Corruption("the answer has no '" + std::string(key) + "' array");
  }
  std::vector<json::object> out;
  for (auto& item : items->as_array()) {
    if (item.is_object()) out.push_back(std::move(item.as_object()));
  }
  return out;
}

Result<std::vector<json::object>> ImagesClient::ListStores() {
  return CallForList(Simple("GET", "/v2/info/stores"), "stores");
}

Result<std::vector<json::object>> ImagesClient::ListTasks(int64_t limit) {
  std::string target = "/v2/tasks";
  if (limit > 0) target += "?limit=" + std::to_string(limit);
  return CallForList(Simple("GET", target), "tasks");
}

Result<json::object> ImagesClient::ShowTask(const std::string& id) {
  return CallForObject(Simple("GET", "/v2/tasks/" + http::PercentEncode(id)));
}

Result<std::vector<json::object>> ImagesClient::ImageTasks(const std::string& id) {
  return CallForList(Simple("GET", "/v2/images/" + http::PercentEncode(id) + "/tasks"), "tasks");
}

}  // namespace ingot::cli
