// What the object-store drivers (swift/, s3/) share: HTTP to the store over libcurl, with
// connections kept alive between requests, bounded waits, and retries with back-off.
//
// The store's endpoint is the operator's choice, not a user's, so none of fetch/'s address rules
// apply here; what does apply is that nothing a store says can make us hang (connect and stall
// timeouts), buffer without bound (error bodies are capped, success bodies stream to a sink), or
// print a credential (URLs in messages never carry user info; tokens travel in headers only).
//
// Thread safety: a Transport may be used from many threads at once (it keeps a pool of curl easy
// handles, each used by one request at a time).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "io/byte_source.h"

namespace ingot::store::remote {

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // absolute, already percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;
  // Sent with Content-Length for PUT and POST (an empty span sends "Content-Length: 0"). Not
  // owned; must outlive Perform.
  std::span<const uint8_t> body;
  // When set, only a response with this status feeds the sink (a ranged GET wants 206, never a
  // 200 carrying the whole object); any other body is kept in HttpResponse::body.
  int sink_status = 0;
  // Send on a new connection rather than a kept-alive one: a retry after an answer that one server
  // process got wrong (a Swift proxy worker whose token cache is failing) reaches another.
  bool fresh_connection = false;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  // The body when no sink took it (always for non-2xx), at most kMaxKeptBody bytes.
  std::string body;
  // The value of header `name` (lower case), "" when absent.
  std::string Header(std::string_view name) const;
  bool ok() const { return status >= 200 && status < 300; }
};

inline constexpr size_t kMaxKeptBody = 1 << 20;

// Receives a 2xx response's body as it arrives. A non-OK Status aborts the transfer and becomes
// the request's result.
using BodySink = std::function<Status(std::span<const uint8_t>)>;

struct TransportOptions {
  std::chrono::milliseconds connect_timeout{10000};
  // A transfer that moves no byte for this long fails with kTimeout.
  std::chrono::milliseconds stall_timeout{60000};
  std::string ca_file;    // PEM bundle for https; empty: the system's
  bool insecure = false;  // https without certificate checks (test beds only)
};

class Transport {
 public:
  explicit Transport(TransportOptions options);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // One attempt. A response of any status is a value; kUnavailable (connection refused or
  // dropped) and kTimeout are the transport failures; the sink's own error when it refused bytes.
  // `sink` sees the body of a 2xx response; otherwise the body is kept in HttpResponse::body.
  Result<HttpResponse> Perform(const HttpRequest& request, const BodySink& sink = {});

 private:
  void* Acquire();
  void Release(void* easy);

  TransportOptions options_;
  std::mutex mu_;
  std::vector<void*> idle_;  // CURL* handles, each holding its kept-alive connections
};

// When to try again: failures of the transport and 5xx, 408 and 429 statuses.
struct RetryPolicy {
  int attempts = 4;  // in all, including the first
  std::chrono::milliseconds first_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
};

bool Retryable(const Result<HttpResponse>& r);
bool RetryableStatus(const Status& s);

// Runs `attempt` until it gives a response that is not retryable or the attempts are spent,
// sleeping with exponential back-off (and jitter) between tries. Returns the last outcome.
// `may_retry`, when given, is asked before each retry (false: a body already went to a sink, so
// trying again would deliver it twice).
Result<HttpResponse> WithRetries(const RetryPolicy& policy,
                                 const std::function<Result<HttpResponse>()>& attempt,
                                 const std::function<bool()>& may_retry = {});

// Keys are image ids: letters, digits, '-', '_' and '.', not starting with '.', at most 128.
bool ValidObjectKey(std::string_view key);

// "url" without any user info ("http://u:p@h/x" -> "http://h/x") and without the query, for
// messages and logs.
std::string RedactUrl(std::string_view url);

// RFC 3986 percent-encoding of everything but unreserved characters; '/' kept when `keep_slash`.
std::string PercentEncode(std::string_view s, bool keep_slash);

// A Status for a response the store refused: kNotFound for 404, kIoError naming the credentials
// for 401 and 403 (the store refusing us is a server fault, not the client's), kStorageFull for 413/507, kUnavailable for 5xx, kIoError otherwise;
// the message names `what`, the status and the start of the body.
Status StatusOf(const HttpResponse& r, std::string_view what);

}  // namespace ingot::store::remote
