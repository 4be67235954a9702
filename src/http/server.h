// The northbound/southbound HTTP/1.1 server. Asynchronous network I/O (Boost.Asio/Beast) with handlers
// that run on a worker pool and see request bodies as blocking streams, so use cases stay plain code
// while idle, slow and stalled connections cost no thread.
//
// Contract:
//  - Headers are read asynchronously under `header_timeout`; idle keep-alive connections are closed after
//    `idle_timeout`; any body read or response write that makes no progress for `io_timeout` fails,
//    and so does one that falls under `min_data_rate` once `min_rate_grace` has passed, or a body
//    that is not in by its deadline. Heads that break framing rules (request_head.h) are refused and
//    the connection closed.
//  - The handler is called on a worker thread once the head is in, without the body (unless the
//    inline handler answered it on the I/O thread: Start); a request that
//    needs its body says so (message.h: NeedBody) and gets it after the event loop has read it
//    (buffered) or once its first bytes have arrived (streamed, at most `max_streamed_bodies` at once).
//    Body bytes nobody read are discarded if they have already arrived; otherwise the response goes
//    out at once and the connection is closed.
//  - Past `max_connections(_per_client)` or `max_requests_in_flight(_per_client)` a request is
//    answered 503 with Retry-After by the event loop, except for `unlimited_paths` (health checks).
//  - The response body is one of: a string, a file range (sent with sendfile(2)), or a Reader pulled by
//    the server (chunked when its length is unknown). HEAD responses carry headers only.
//  - Memory per connection is bounded whatever the body size.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "http/message.h"

namespace ingot::http {

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
  // Copied from each response into Exchange::request_id; the listener names it.
  std::string request_id_header;

  // Slow clients. A body being read or a response being written must average at least
  // `min_data_rate` bytes/s once `min_rate_grace` has passed (0: no minimum).
  uint64_t min_data_rate = 1024;
  std::chrono::milliseconds min_rate_grace{10000};
  std::chrono::milliseconds buffered_body_deadline{30000};  // whole buffered body (0: none)
  std::chrono::milliseconds streamed_body_deadline{0};      // whole streamed body (0: none)
  int max_streamed_bodies = 32;                              // streamed bodies at once

  // Admission. Clients are told to retry after `retry_after_seconds`.
  int max_connections = 8192;
  int max_connections_per_client = 1024;
  int max_requests_in_flight = 1024;
  int max_requests_in_flight_per_client = 512;
  int retry_after_seconds = 1;
  // Paths answered whatever the load (health checks, metrics).
  std::vector<std::string> unlimited_paths;
};

class Server {
 public:
  // Binds, listens and starts serving. kIoError (with the address) when the port cannot be bound.
  // `inline_handler` (message.h), when set, sees each admitted request first, on the I/O thread.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options, Handler handler,
                                               ExchangeObserver observer = {},
                                               InlineHandler inline_handler = {});
  virtual ~Server() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting, lets in-flight handlers finish (up to `grace`), closes connections, joins threads.
  virtual void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000)) = 0;
};

}  // namespace ingot::http
