// The client side of Image Streamer's /rest API for the CLI's deploy, volume and bundle groups:
// every call sends the token in `Auth` and an X-API-Version, as HPE's clients do.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/result.h"
#include "exe/ingot_cli/images_client.h"
#include "http/client.h"
#include "http/url.h"
#include "io/byte_source.h"
#include "io/file.h"

namespace ingot::cli {

class StreamerClient {
 public:
  StreamerClient(http::Url url, std::string token, std::chrono::milliseconds timeout)
      : http_(std::move(url), timeout), token_(std::move(token)) {}
  // A JSON `body`, or the bytes of `stream` (`length` of them); `content_type` overrides the body's
  // type (application/json, application/octet-stream). The answer as JSON (null when empty or
  // written to `sink`), or as a string when it is text (a deploy log).
  Result<boost::json::value> Call(const std::string& method, const std::string& target,
                                  std::optional<boost::json::value> body = std::nullopt,
                                  io::Reader* stream = nullptr, std::optional<uint64_t> length = {},
                                  io::Writer* sink = nullptr,
                                  const char* content_type = nullptr) {
    http::ClientRequest req;
    req.method = method;
    req.target = target;
    req.headers.Set("Accept", "application/json");
    req.headers.Set("X-API-Version", "2000");
    if (!token_.empty()) req.headers.Set("Auth", token_);
    if (body) {
      req.headers.Set("Content-Type", "application/json");
      req.body = boost::json::serialize(*body);
    }
    if (stream) {
      req.headers.Set("Content-Type", "application/octet-stream");
      req.body_stream = stream;
      req.body_length = length;
    }
    if (content_type != nullptr) req.headers.Set("Content-Type", content_type);
    INGOT_ASSIGN_OR_RETURN(http::ClientResponse resp, http_.Send(req, sink));
    if (resp.status < 200 || resp.status >= 300) return StatusFromResponse(resp);
    if (resp.body.empty() || sink != nullptr) return boost::json::value(nullptr);
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(resp.body, ec);
    if (ec) return boost::json::value(resp.body);
    return v;
  }

 private:
  http::Client http_;
  std::string token_;
};

// Downloads into an open file.
class FileWriter final : public io::Writer {
 public:
  explicit FileWriter(int fd) : fd_(fd) {}
  Status Write(std::span<const uint8_t> data) override { return io::WriteAll(fd_, data, "output"); }

 private:
  int fd_;
};

}  // namespace ingot::cli
