// The Image API v2 as the `ingot` CLI uses it: one call per API operation, JSON in and out, errors
// as Status carrying the server's own message ("HTTP 404 Not Found: No image found with ID …"). Not
// thread-safe (one connection).
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "http/client.h"

namespace ingot::cli {

class ImagesClient {
 public:
  ImagesClient(http::Url url, std::string token, std::chrono::milliseconds timeout)
      : http_(std::move(url), timeout), token_(std::move(token)) {}

  Result<boost::json::object> Create(const boost::json::object& image);
  Result<boost::json::object> Show(const std::string& id);
  // Every image matching `query` ("k=v&…", already encoded), following the `next` links.
  Result<std::vector<boost::json::object>> List(const std::string& query);
  // JSON-patch `ops` (application/openstack-images-v2.1-json-patch); returns the updated image.
  Result<boost::json::object> Update(const std::string& id, const boost::json::array& ops);
  Status Delete(const std::string& id);
  Status AddTag(const std::string& id, const std::string& tag);
  Status DeleteTag(const std::string& id, const std::string& tag);
  Status Deactivate(const std::string& id);
  Status Reactivate(const std::string& id);
  // PUT /v2/images/{id}/file from `data`; `size` known gives Content-Length, else chunked.
  Status Upload(const std::string& id, io::Reader& data, std::optional<uint64_t> size,
                const http::Progress& progress);
  // GET /v2/images/{id}/file into `sink`. Returns the response headers (Content-MD5,
  // Content-Length); kNotFound with "no data" when the image has none (204).
  Result<http::Headers> Download(const std::string& id, io::Writer& sink,
                                 const http::Progress& progress);

  // Interoperable import. PUT /v2/images/{id}/stage, as Upload.
  Status Stage(const std::string& id, io::Reader& data, std::optional<uint64_t> size,
               const http::Progress& progress);
  // POST /v2/images/{id}/import with `request` ({"method": {"name": …}, "stores": […], …}). The
  // server answers 202 once the task is recorded; the import itself runs after that.
  Status Import(const std::string& id, const boost::json::object& request);
  // GET /v2/info/import: {"import-methods": {"value": [...]}}.
  Result<boost::json::object> ImportInfo();
  // GET /v2/info/stores: [{"id": …, "description": …, "default": "true"?}].
  Result<std::vector<boost::json::object>> ListStores();
  // GET /v2/tasks (the summaries; `limit` 0: the server's default page) and GET /v2/tasks/{id}.
  Result<std::vector<boost::json::object>> ListTasks(int64_t limit);
  Result<boost::json::object> ShowTask(const std::string& id);
  // GET /v2/images/{id}/tasks: the image's tasks in full, newest first.
  Result<std::vector<boost::json::object>> ImageTasks(const std::string& id);

 private:
  Status PutData(const std::string& id, std::string_view where, io::Reader& data,
                 std::optional<uint64_t> size, const http::Progress& progress);
  Result<http::ClientResponse> Call(http::ClientRequest req, io::Writer* sink = nullptr,
                                    const http::Progress& progress = {});
  Result<boost::json::object> CallForObject(http::ClientRequest req);
  // The objects of the array `key` of the answer ({"tasks": […]}).
  Result<std::vector<boost::json::object>> CallForList(http::ClientRequest req,
                                                       std::string_view key);

  http::Client http_;
  std::string token_;
};


// The Status for a non-2xx response: code from the HTTP status, message from the body (Glance's
// JSON `message`, or the text of an HTML error page) prefixed with "HTTP <status> <reason>".
Status StatusFromResponse(const http::ClientResponse& resp);

}  // namespace ingot::cli
