// A small synchronous HTTP/1.1 client for the `ingot` CLI and tests: one connection, requests one
// at a time, bodies streamed both ways so an image of any size passes through a fixed buffer.
//
// Contract:
//  - Every socket wait is bounded by `io_timeout` of no progress (kTimeout); connection failures
//    are kUnavailable with the address in the message.
//  - The connection is kept alive between requests and re-opened transparently when the server
//    closed it.
//  - Not thread-safe: one Client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/server.h"
#include "io/byte_source.h"

namespace ingot::http {

// "http://host:port/prefix" split up. Only plain http is supported.
struct Url {
  std::string host;
  uint16_t port = 80;
  std::string base_path;  // without a trailing '/': "" or "/image"
};
Result<Url> ParseUrl(std::string_view url);

struct ClientRequest {
  std::string method = "GET";
  std::string target;  // path and query, appended to the URL's base path
  Headers headers;
  std::string body;  // sent when `body_stream` is null (with Content-Length)
  // Not owned; sent with Content-Length `body_length`, or chunked when that is unset.
  io::Reader* body_stream = nullptr;
  std::optional<uint64_t> body_length;  // required for a sized streamed body
};

struct ClientResponse {
  int status = 0;
  std::string reason;
  Headers headers;
  std::string body;  // empty when the body went to a sink
};

// Called as bytes go out (upload) and come in (download): bytes so far, and the total when known.
using Progress = std::function<void(uint64_t done, std::optional<uint64_t> total)>;

class Client {
 public:
  explicit Client(Url url,
                  std::chrono::milliseconds io_timeout = std::chrono::milliseconds(300000));
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `req` and reads the response. When `sink` is given and the status is 2xx, the body is
  // written to it instead of ClientResponse::body (error bodies are always kept as text, capped at
  // 1 MiB). A failing sink fails the call with its Status. `progress` sees the upload, then the
  // download.
  Result<ClientResponse> Send(const ClientRequest& req, io::Writer* sink = nullptr,
                              const Progress& progress = {});

  const Url& url() const { return url_; }

 private:
  Status Connect();
  void Disconnect();
  Status SendRequest(const ClientRequest& req, const Progress& progress);
  Result<ClientResponse> ReadResponse(const ClientRequest& req, io::Writer* sink,
                                      const Progress& progress);

  class Stream;
  Url url_;
  std::chrono::milliseconds io_timeout_;
  std::unique_ptr<Stream> stream_;
  bool header_received_ = false;  // of the response being read; a retry is safe only before it
};

}  // namespace ingot::http
