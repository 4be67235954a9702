#include "auth/keystone/identity.h"

#include <curl/curl.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <thread>

#include "common/log.h"
#include "common/time.h"

namespace ingot::auth::keystone {
namespace json = boost::json;

std::optional<std::string> WireResponse::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return std::nullopt;
}

namespace {

// Keystone's answers are small (a token document, a page of limits); anything larger is refused
// rather than buffered.
constexpr size_t kMaxBody = 8 << 20;

class CurlTransport final : public Transport {
 public:
  CurlTransport(std::chrono::milliseconds timeout, std::string ca_file, bool insecure)
      : timeout_(timeout), ca_file_(std::move(ca_file)), insecure_(insecure) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }
  ~CurlTransport() override {
    for (CURL* h : idle_) curl_easy_cleanup(h);
  }

  Result<WireResponse> Send(const WireRequest& req) override {
    CURL* h = Acquire();
    WireResponse out;
    bool too_big = false;
    struct Sink {
      WireResponse* out;
      bool* too_big;
    } sink{&out, &too_big};
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    // keystonemiddleware's http_connect_timeout bounds the connection; a whole exchange gets a
    // minute, for a Keystone that is slow under load is still better than a 503.
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60'000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!ca_file_.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file_.c_str());
    if (insecure_) {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (req.method == "POST") {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
    } else if (req.method != "GET") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    curl_slist* list = nullptr;
    for (const auto& [k, v] : req.headers) list = curl_slist_append(list, (k + ": " + v).c_str());
    list = curl_slist_append(list, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(
        h, CURLOPT_WRITEFUNCTION, +[](char* p, size_t size, size_t n, void* ud) -> size_t {
          auto* s = static_cast<Sink*>(ud);
          if (s->out->body.size() + size * n > kMaxBody) {
            *s->too_big = true;
            return 0;
          }
          s->out->body.append(p, size * n);
          return size * n;
        });
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &out);
    curl_easy_setopt(
        h, CURLOPT_HEADERFUNCTION, +[](char* p, size_t size, size_t n, void* ud) -> size_t {
          auto* o = static_cast<WireResponse*>(ud);
          std::string_view line(p, size * n);
          if (line.rfind("HTTP/", 0) == 0) o->headers.clear();  // a new response (redirect, 100)
          auto colon = line.find(':');
          if (colon != std::string_view::npos) {
            std::string name(line.substr(0, colon));
            for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
              value.remove_prefix(1);
            while (!value.empty() && (value.back() == '\r' || value.back() == '\n' ||
                                      value.back() == ' '))
              value.remove_suffix(1);
            o->headers.emplace_back(std::move(name), std::string(value));
          }
          return size * n;
        });
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(list);
    Release(h, rc == CURLE_OK);
    if (too_big) return Unavailable("Keystone answer over " + std::to_string(kMaxBody) + " bytes");
    if (rc != CURLE_OK) {
      return Unavailable("Keystone at " + req.url + ": " + curl_easy_strerror(rc));
    }
    out.status = static_cast<int>(status);
    return out;
  }

 private:
  CURL* Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void Release(CURL* h, bool reusable) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!reusable || idle_.size() >= 16) {
      curl_easy_cleanup(h);
      return;
    }
    idle_.push_back(h);
  }

  const std::chrono::milliseconds timeout_;
  const std::string ca_file_;
  const bool insecure_;
  std::mutex mu_;
  std::vector<CURL*> idle_;
};

}  // namespace

std::unique_ptr<Transport> MakeCurlTransport(std::chrono::milliseconds timeout,
                                             std::string ca_file, bool insecure) {
  return std::make_unique<CurlTransport>(timeout, std::move(ca_file), insecure);
}

std::string V3Base(const std::string& auth_url) {
  std::string u = auth_url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  if (u.size() >= 3 && u.compare(u.size() - 3, 3, "/v3") == 0) return u;
  return u + "/v3";
}

Identity::Identity(KeystoneOptions options, std::unique_ptr<Transport> transport)
    : options_(std::move(options)), v3_(V3Base(options_.auth_url)), transport_(std::move(transport)) {}

Result<std::string> Identity::ServiceToken(bool renew) {
  std::lock_guard<std::mutex> lock(mu_);
  // Renewed a minute before it expires (or half its life, for short-lived tokens), so a
  // validation never races the service token's end.
  const int64_t now = NowMicros();
  if (!renew && !token_.empty() && now < token_expires_us_ - token_margin_us_) return token_;
  json::object user{{"name", options_.username},
                    {"domain", json::object{{"name", options_.user_domain_name}}},
                    {"password", options_.password}};
  json::object auth{
      {"identity", json::object{{"methods", json::array{"password"}},
                                {"password", json::object{{"user", std::move(user)}}}}}};
  if (!options_.system_scope.empty()) {
    auth["scope"] = json::object{{"system", json::object{{options_.system_scope, true}}}};
  } else if (!options_.project_name.empty()) {
    auth["scope"] = json::object{
        {"project", json::object{{"name", options_.project_name},
                                 {"domain", json::object{{"name", options_.project_domain_name}}}}}};
  }
  WireRequest req{.method = "POST",
                  .url = v3_ + "/auth/tokens?nocatalog",
                  .headers = {{"Content-Type", "application/json"}},
                  .body = json::serialize(json::object{{"auth", std::move(auth)}})};
  Result<WireResponse> resp = Unavailable("not tried");
  for (int attempt = 0; attempt <= options_.http_request_max_retries; ++attempt) {
    resp = transport_->Send(req);
    if (resp.ok() && resp->status < 500) break;
    if (attempt < options_.http_request_max_retries)
      std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
  }
  if (!resp.ok()) return resp.status();
  if (resp->status != 201) {
    log::Error("keystone.service_auth_failed",
               {{"status", resp->status}, {"user", options_.username}});
    if (resp->status >= 500) return Unavailable("Keystone answered " + std::to_string(resp->status));
    return Unauthenticated("Keystone refused the service's own credentials ([keystone_authtoken] " +
                           options_.username + "): " + std::to_string(resp->status));
  }
  auto subject = resp->Header("x-subject-token");
  if (!subject) return Unavailable("Keystone issued a token without X-Subject-Token");
  int64_t expires = NowMicros() + 3600'000'000LL;
  boost::system::error_code ec;
  json::value doc = json::parse(resp->body, ec);
  if (!ec && doc.is_object()) {
    if (const json::value* t = doc.as_object().if_contains("token");
        t && t->is_object() && t->as_object().if_contains("expires_at") &&
        t->as_object().at("expires_at").is_string()) {
      if (auto e = ParseIso8601(t->as_object().at("expires_at").as_string().c_str())) expires = *e;
    }
  }
  token_ = *subject;
  token_expires_us_ = expires;
  token_margin_us_ = std::min<int64_t>(60'000'000, std::max<int64_t>(0, expires - now) / 2);
  return token_;
}

Result<WireResponse> Identity::Get(const std::string& path,
                                   std::vector<std::pair<std::string, std::string>> headers) {
  for (int renew = 0; renew < 2; ++renew) {
    INGOT_ASSIGN_OR_RETURN(std::string token, ServiceToken(renew == 1));
    WireRequest req{.url = v3_ + path, .headers = headers};
    req.headers.emplace_back("X-Auth-Token", token);
    req.headers.emplace_back("Accept", "application/json");
    Result<WireResponse> resp = Unavailable("not tried");
    for (int attempt = 0; attempt <= options_.http_request_max_retries; ++attempt) {
      resp = transport_->Send(req);
      if (resp.ok() && resp->status < 500) break;
      if (attempt < options_.http_request_max_retries)
        std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
    }
    if (!resp.ok()) return resp.status();
    // 401 to the service's own token: it was revoked or expired early; renew it once.
    if (resp->status == 401 && renew == 0) continue;
    return resp;
  }
  return Unauthenticated("Keystone refused the service's own token");
}

}  // namespace ingot::auth::keystone
