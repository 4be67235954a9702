// Talking to Keystone v3 as a service: the service's own token (password authentication with the
// `[keystone_authtoken]` credentials, renewed before it expires or when Keystone refuses it) and
// authenticated GETs of JSON documents (token validation, revocation events, unified limits).
//
// The wire is behind `Transport` so the token logic is tested without a server; the real transport
// is libcurl (https included: Keystone is usually behind TLS, and libcurl is the well-kept client
// the rest of Ingot already links for imports).
//
// Thread safety: Identity and the curl transport may be used from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace ingot::auth::keystone {

struct WireRequest {
  std::string method = "GET";
  std::string url;                                           // absolute
  std::vector<std::pair<std::string, std::string>> headers;  // sent as given
  std::string body;
};

struct WireResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::optional<std::string> Header(std::string_view lower_name) const;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // kUnavailable when Keystone cannot be reached or does not answer in time.
  virtual Result<WireResponse> Send(const WireRequest& req) = 0;
};

// libcurl, a small pool of kept-alive handles. `timeout` bounds connecting; an exchange gets a
// minute.
std::unique_ptr<Transport> MakeCurlTransport(std::chrono::milliseconds timeout,
                                             std::string ca_file = {}, bool insecure = false);

// Glance's [keystone_authtoken] keys (keystonemiddleware's names), plus Ingot's cache knobs.
struct KeystoneOptions {
  std::string www_authenticate_uri;  // what a 401 tells clients (default: auth_url)
  std::string auth_url;              // Keystone, e.g. http://127.0.0.1:5000 or …/v3
  std::string username;
  std::string password;
  std::string project_name;
  // oslo.limit's system_scope: "all" authenticates the service system-scoped (Keystone shows a
  // project-scoped token only its own project's limits); "" scopes it to project_name.
  std::string system_scope;
  std::string user_domain_name = "Default";
  std::string project_domain_name = "Default";
  std::string region_name;
  // keystonemiddleware's token_cache_time: how long a validation is reused (never past the
  // token's own expiry). 0 disables caching.
  int token_cache_time = 300;
  // How often revocation events (GET /v3/OS-REVOKE/events) are fetched so a revoked token stops
  // working within that time although its validation is cached. 0: only the cache time bounds it.
  int revocation_poll_seconds = 5;
  int http_request_max_retries = 3;
  int http_connect_timeout_ms = 10000;
  int max_cached_tokens = 100000;
  // keystonemiddleware's service_token_roles / service_token_roles_required.
  std::vector<std::string> service_token_roles = {"service"};
  bool service_token_roles_required = false;
  std::string cafile;
  bool insecure = false;
};

// The Keystone v3 base URL ("…/v3") of an auth_url given with or without the version.
std::string V3Base(const std::string& auth_url);

// The service's session with Keystone.
class Identity {
 public:
  Identity(KeystoneOptions options, std::unique_ptr<Transport> transport);

  // GET `path` (below …/v3, e.g. "/auth/tokens") with the service token and `headers`; renews the
  // service token once if Keystone answers 401. The response whatever its status; kUnavailable if
  // Keystone cannot be reached, kUnauthenticated if the service's own credentials are refused.
  Result<WireResponse> Get(const std::string& path,
                           std::vector<std::pair<std::string, std::string>> headers = {});

  // The service token's project (the project the service's credentials are scoped to).
  const KeystoneOptions& options() const { return options_; }
  std::string v3() const { return v3_; }

 private:
  Result<std::string> ServiceToken(bool renew);

  const KeystoneOptions options_;
  const std::string v3_;
  std::unique_ptr<Transport> transport_;
  std::mutex mu_;
  std::string token_;
  int64_t token_expires_us_ = 0;
  int64_t token_margin_us_ = 0;
};

}  // namespace ingot::auth::keystone
