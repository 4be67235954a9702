// The northbound/southbound HTTP/1.1 server. Asynchronous network I/O (Boost.Asio/Beast) with handlers
// that run on a worker pool and see request bodies as blocking streams, so use cases stay plain code
// while idle, slow and stalled connections cost no thread.
//
// Contract:
//  - Headers are read asynchronously under `header_timeout`; idle keep-alive connections are closed after
//    `idle_timeout`; any body read or response write that makes no progress for `io_timeout` fails.
//  - The handler is called on a worker thread once the headers are in. It may read the body through
//    Request::body (Content-Length or chunked; `Expect: 100-continue` is answered on the first read).
//    Body bytes the handler did not read are drained (up to a limit) or the connection is closed.
//  - The response body is one of: a string, a file range (sent with sendfile(2)), or a Reader pulled by
//    the server (chunked when its length is unknown). HEAD responses carry headers only.
//  - Memory per connection is bounded whatever the body size.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "io/byte_source.h"
#include "io/file.h"

namespace ingot::http {

// Header fields in arrival order; names compare case-insensitively.
class Headers {
 public:
  // Replaces every field named `name`.
  void Set(std::string_view name, std::string value);
  void Add(std::string_view name, std::string value);
  void Remove(std::string_view name);
  std::optional<std::string_view> Get(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Percent-decodes `s` ('+' stays '+' unless form is true). nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view s, bool form = false);

struct Request {
  std::string method;                                       // "GET", "PUT", ...
  std::string target;                                       // as sent: "/v2/images?limit=2"
  std::string path;                                         // decoded path: "/v2/images"
  std::vector<std::pair<std::string, std::string>> query;   // decoded, in order (repeats kept)
  Headers headers;
  std::string remote_address;                               // "127.0.0.1:51234"
  std::optional<uint64_t> content_length;                   // nullopt when chunked or no body
  bool chunked = false;
  // The body as a blocking stream, valid during the handler call. Read returns 0 at the end,
  // kTimeout when the client stalls past io_timeout, kCancelled when it disconnects.
  io::Reader* body = nullptr;

  // Reads the whole body, failing with kTooLarge past `limit` bytes.
  Result<std::string> ReadBody(size_t limit);
  // The first query value named `name`, if any.
  std::optional<std::string_view> QueryValue(std::string_view name) const;
};

// A byte range of an open file, sent with sendfile(2) (zero copy).
struct FileRange {
  io::UniqueFd fd;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;                          // used when neither `file` nor `stream` is set
  std::optional<FileRange> file;
  std::unique_ptr<io::Reader> stream;        // pulled until it returns 0
  std::optional<uint64_t> stream_length;     // Content-Length for `stream`; chunked when unknown
  std::string route;                         // route template for metrics ("/v2/images/{id}"); not sent
};

// What the server reports once a response has been sent (or has failed); for access logs and metrics.
struct Exchange {
  std::string method;
  std::string target;
  std::string route;
  int status = 0;
  uint64_t bytes_in = 0;       // body bytes read from the client
  uint64_t bytes_out = 0;      // body bytes written to the client
  std::chrono::microseconds duration{0};
  bool completed = true;       // false when the connection failed before the response was fully sent
  std::string request_id;      // the response's x-openstack-request-id, if any
  std::string remote_address;
};

using Handler = std::function<Response(Request&)>;
using ExchangeObserver = std::function<void(const Exchange&)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 9292;                  // 0: any free port; Server::port() tells which
  int io_threads = 1;
  int worker_threads = 64;               // handlers in flight at once; more requests wait in a queue
  std::chrono::milliseconds header_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds io_timeout{60000};
  size_t max_header_bytes = 64 * 1024;
  std::string server_name = "ingot";
};

class Server {
 public:
  // Binds, listens and starts serving. kIoError (with the address) when the port cannot be bound.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options, Handler handler,
                                               ExchangeObserver observer = {});
  virtual ~Server() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting, lets in-flight handlers finish (up to `grace`), closes connections, joins threads.
  virtual void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000)) = 0;
};

}  // namespace ingot::http
