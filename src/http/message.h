// What a handler sees and returns: the request head, the response, and the two-phase contract that
// keeps a worker thread off any socket that has not delivered its data.
//
// A Handler is called on a worker thread with the request head only (Request::body is null). It
// answers at once with a Response (errors, routes without a body) or returns NeedBody: the server
// then takes the body first — a kBuffered body is read whole by the event loop, with no thread
// parked on it, and a kStreamed body (uploads) is handed to `next` once its first bytes are in —
// and calls `next` on a worker with Request::body set. A body declared over `limit` is not read at
// all: the client gets `too_large()` at once and the connection closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
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
  void Reserve(size_t n) { fields_.reserve(n); }

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
  // The body as a blocking stream, set only for NeedBody::next. Read returns 0 at the end,
  // kTimeout when the client stalls (no progress, under the minimum rate, past the deadline),
  // kCancelled when it disconnects.
  io::Reader* body = nullptr;

  // True when the client sends a body (chunked, or a Content-Length above 0).
  bool has_body() const { return chunked || content_length.value_or(0) > 0; }
  // Reads the whole body, failing with kTooLarge past `limit` bytes.
  Result<std::string> ReadBody(size_t limit);
  // The first query value named `name`, if any.
  std::optional<std::string_view> QueryValue(std::string_view name) const;
};

// A byte range of an open file.
struct FileSegment {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// A byte range of an open file, sent with sendfile(2) (zero copy), optionally followed by more
// ranges of the same file: a file stored as extents of another one (a file inside an ISO) goes out
// as one body without a copy. The body is `length` bytes from `offset`, then each of `more` in order.
struct FileRange {
  io::UniqueFd fd;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<FileSegment> more;
  // Set instead of `fd` for a descriptor others hold too (a cache of open files): it stays open
  // until this body has been sent.
  std::shared_ptr<const io::UniqueFd> shared_fd;

  int descriptor() const { return shared_fd ? shared_fd->get() : fd.get(); }

  uint64_t total() const {
    uint64_t t = length;
    for (const FileSegment& s : more) t += s.length;
    return t;
  }
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

// The second phase of a request that needs its body (see the file comment).
struct NeedBody {
  enum class Mode {
    kBuffered,  // read whole by the event loop (JSON documents); `limit` should be small
    kStreamed,  // read by `next` as it goes (image bytes)
  };
  Mode mode = Mode::kBuffered;
  uint64_t limit = 0;                          // bytes; a larger body gets too_large()
  std::function<Response(Request&)> next;      // runs on a worker with Request::body set
  std::function<Response()> too_large;         // the 413 the listener wants its clients to see
};

using HeadResult = std::variant<Response, NeedBody>;
using Handler = std::function<HeadResult(Request&)>;

// An optional first look at a request, taken on the connection's I/O thread before any hand-off to
// a worker: the answer, or nullopt to pass the request to the Handler on a worker as usual. For
// answers that cost less than the hand-off itself (a static file: open, fstat, sendfile; an image
// record read from a local SQLite catalog). It must not block on anything but the local file
// system (no network, no lock held across I/O or waiting for a writer, no body: Request::body is
// null), and it runs on every I/O thread at once. A
// streamed answer (Response::stream) is pulled on a worker as usual.
using InlineHandler = std::function<std::optional<Response>(Request&)>;

// Runs a handler's answer to its end for in-process callers that already hold the body in
// Request::body (tests): the Response, or too_large() for a declared length over the limit, or next.
Response Resolve(HeadResult head, Request& req);

// Adapts a one-phase handler that reads bodies as streams (tests, simple listeners): requests
// without a body are answered at once, the others are kStreamed up to `limit`.
Handler StreamEveryBody(std::function<Response(Request&)> handler,
                        uint64_t limit = UINT64_MAX);

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
  std::string request_id;      // the value of ServerOptions::request_id_header in the response
  std::string remote_address;
};

using ExchangeObserver = std::function<void(const Exchange&)>;

}  // namespace ingot::http
