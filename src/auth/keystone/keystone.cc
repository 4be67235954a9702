#include "auth/keystone/keystone.h"

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "common/time.h"

namespace ingot::auth::keystone {
namespace json = boost::json;

namespace {

const json::object* Obj(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_object() ? &v->as_object() : nullptr;
}
std::optional<std::string> Str(const json::object* o, std::string_view key) {
  if (o == nullptr) return std::nullopt;
  const json::value* v = o->if_contains(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

constexpr const char* kNeedAuth = "The request you have made requires authentication.";

}  // namespace

Result<TokenInfo> ParseTokenBody(std::string_view body) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object()) return InvalidArgument("Keystone's token document is not JSON");
  const json::object* token = Obj(doc.as_object(), "token");
  if (token == nullptr) return InvalidArgument("Keystone's token document has no token");
  TokenInfo info;
  RequestContext& ctx = info.context;
  ctx.authenticated = true;
  const json::object* user = Obj(*token, "user");
  ctx.user = Str(user, "id");
  if (!ctx.user) return InvalidArgument("Keystone's token has no user id");
  if (user != nullptr) {
    if (auto d = Str(Obj(*user, "domain"), "id")) {
      info.user_domain_id = *d;
      ctx.user_domain = *d;
    }
  }
  if (const json::object* project = Obj(*token, "project")) {
    ctx.project = Str(project, "id");
    if (auto d = Str(Obj(*project, "domain"), "id")) {
      info.project_domain_id = *d;
      ctx.project_domain = *d;
    }
  }
  if (const json::object* domain = Obj(*token, "domain")) ctx.domain = Str(domain, "id");
  if (const json::object* system = Obj(*token, "system")) {
    if (const json::value* all = system->if_contains("all"); all && all->is_bool() && all->as_bool())
      ctx.system_scope = "all";
  }
  if (const json::value* roles = token->if_contains("roles"); roles && roles->is_array()) {
    for (const json::value& r : roles->as_array()) {
      if (!r.is_object()) continue;
      if (auto name = Str(&r.as_object(), "name")) ctx.roles.push_back(*name);
      if (auto id = Str(&r.as_object(), "id")) info.role_ids.push_back(*id);
    }
  }
  if (const json::value* audit = token->if_contains("audit_ids"); audit && audit->is_array()) {
    for (const json::value& a : audit->as_array()) {
      if (a.is_string()) info.audit_ids.emplace_back(a.as_string());
    }
  }
  auto expires = Str(token, "expires_at");
  auto expires_us = expires ? ParseIso8601(*expires) : std::nullopt;
  if (!expires_us) return InvalidArgument("Keystone's token has no valid expires_at");
  info.expires_us = *expires_us;
  auto issued = Str(token, "issued_at");
  info.issued_us = issued ? ParseIso8601(*issued).value_or(0) : 0;
  return info;
}

namespace {

class KeystoneAuth final : public Authenticator {
 public:
  explicit KeystoneAuth(std::shared_ptr<Identity> identity)
      : identity_(std::move(identity)),
        challenge_("Keystone uri=\"" +
                   (identity_->options().www_authenticate_uri.empty()
                        ? identity_->options().auth_url
                        : identity_->options().www_authenticate_uri) +
                   "\"") {
    if (identity_->options().revocation_poll_seconds > 0) {
      last_poll_us_ = NowMicros();
      poller_ = std::thread([this] { PollRevocations(); });
    }
  }
  ~KeystoneAuth() override {
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    if (poller_.joinable()) poller_.join();
  }

  std::string Challenge() const override { return challenge_; }

  Result<RequestContext> Authenticate(const http::Headers& headers) override {
    return *Check(headers, false);
  }

  std::optional<Result<RequestContext>> AuthenticateNow(const http::Headers& headers) override {
    return Check(headers, true);
  }

 private:
  struct Entry {
    bool valid = false;
    TokenInfo info;
    int64_t cached_until = 0;
  };

  // Authenticate; with `cached_only`, nullopt where Keystone would have to be asked.
  std::optional<Result<RequestContext>> Check(const http::Headers& headers, bool cached_only) {
    auto token = headers.Get("X-Auth-Token");
    if (!token || token->empty()) return Unauthenticated(kNeedAuth);
    bool allow_expired = false;
    std::vector<std::string> service_roles;
    if (auto service = headers.Get("X-Service-Token"); service && !service->empty()) {
      auto checked = Validate(std::string(*service), false, cached_only);
      if (!checked) return std::nullopt;
      INGOT_ASSIGN_OR_RETURN(Entry s, std::move(*checked));
      if (!s.valid) return Unauthenticated(kNeedAuth);
      service_roles = s.info.context.roles;
      const auto& wanted = identity_->options().service_token_roles;
      bool has_role = std::any_of(wanted.begin(), wanted.end(), [&](const std::string& r) {
        return std::find(service_roles.begin(), service_roles.end(), r) != service_roles.end();
      });
      if (!has_role) {
        log::Warn("keystone.service_token_without_service_role", {});
        if (identity_->options().service_token_roles_required) return Unauthenticated(kNeedAuth);
      } else {
        // As keystonemiddleware: a genuine service may finish work for a user whose token expired
        // meanwhile (Keystone bounds how long, [token] allow_expired_window).
        allow_expired = true;
      }
    }
    auto checked = Validate(std::string(*token), allow_expired, cached_only);
    if (!checked) return std::nullopt;
    INGOT_ASSIGN_OR_RETURN(Entry e, std::move(*checked));
    if (!e.valid) return Unauthenticated(kNeedAuth);
    RequestContext ctx = e.info.context;
    ctx.service_roles = std::move(service_roles);
    return ctx;
  }

  // The cached answer for `token`, or Keystone's (nullopt instead with `cached_only`).
  std::optional<Result<Entry>> Validate(const std::string& token, bool allow_expired,
                                        bool cached_only) {
    const std::string key = allow_expired ? "x" + token : "v" + token;
    const int64_t now = NowMicros();
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      auto it = cache_.find(key);
      if (it != cache_.end() && now < it->second.cached_until &&
          (!it->second.valid || allow_expired || now < it->second.info.expires_us)) {
        return it->second;
      }
    }
    if (cached_only) return std::nullopt;
    auto resp = identity_->Get(allow_expired ? "/auth/tokens?nocatalog&allow_expired=1"
                                             : "/auth/tokens?nocatalog",
                               {{"X-Subject-Token", token}});
    if (!resp.ok()) {
      if (resp.status().code() == Code::kUnauthenticated) {
        // The service's own credentials are wrong: an operator's problem, not the caller's.
        return Unavailable(resp.status().message());
      }
      return resp.status();
    }
    Entry e;
    const int64_t cache_us = int64_t{identity_->options().token_cache_time} * 1'000'000;
    e.cached_until = now + cache_us;
    if (resp->status == 200) {
      auto info = ParseTokenBody(resp->body);
      if (!info.ok()) return Unavailable(info.status().message());
      e.valid = true;
      e.info = std::move(*info);
      if (!allow_expired) e.cached_until = std::min(e.cached_until, e.info.expires_us);
    } else if (resp->status == 404 || resp->status == 401 || resp->status == 400) {
      e.valid = false;  // unknown, expired, revoked or malformed
    } else if (resp->status == 403) {
      log::Error("keystone.validate_forbidden",
                 {{"user", identity_->options().username},
                  {"hint", "the service user needs the admin or service role to validate tokens"}});
      return Unavailable("Keystone refused the service's token validation (403)");
    } else {
      return Unavailable("Keystone answered " + std::to_string(resp->status) +
                         " to a token validation");
    }
    if (cache_us > 0) {
      std::unique_lock<std::shared_mutex> lock(mu_);
      if (cache_.size() >= static_cast<size_t>(identity_->options().max_cached_tokens)) {
        PurgeLocked(now);
        if (cache_.size() >= static_cast<size_t>(identity_->options().max_cached_tokens))
          cache_.clear();
      }
      cache_[key] = e;
    }
    return e;
  }

  void PurgeLocked(int64_t now) {
    for (auto it = cache_.begin(); it != cache_.end();) {
      if (now >= it->second.cached_until)
        it = cache_.erase(it);
      else
        ++it;
    }
  }

  // Keystone's own matching (keystone.models.revoke_model.is_revoked): every field the event names
  // must match the token, and the token must have been issued no later than issued_before. Fields
  // Ingot does not track (trusts, OAuth consumers) count as matching: a wrongly dropped validation
  // costs one more call to Keystone, a wrongly kept one would let a revoked token through.
  static bool Matches(const json::object& ev, const TokenInfo& t) {
    auto field = [&](std::string_view k) { return Str(&ev, k); };
    if (auto before = field("issued_before")) {
      auto b = ParseIso8601(*before);
      if (b && t.issued_us > *b) return false;
    }
    if (auto u = field("user_id"); u && *u != t.context.user.value_or("")) return false;
    if (auto p = field("project_id"); p && *p != t.context.project.value_or("")) return false;
    if (auto d = field("domain_id");
        d && *d != t.user_domain_id && *d != t.project_domain_id &&
        *d != t.context.domain.value_or(""))
      return false;
    if (auto r = field("role_id");
        r && std::find(t.role_ids.begin(), t.role_ids.end(), *r) == t.role_ids.end())
      return false;
    if (auto a = field("audit_id");
        a && (t.audit_ids.empty() || t.audit_ids.front() != *a))
      return false;
    if (auto c = field("audit_chain_id");
        c && (t.audit_ids.empty() || t.audit_ids.back() != *c))
      return false;
    return true;
  }

  void PollRevocations() {
    const auto interval = std::chrono::seconds(identity_->options().revocation_poll_seconds);
    bool warned = false;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(stop_mu_);
        if (stop_cv_.wait_for(lock, interval, [this] { return stopping_; })) return;
      }
      const int64_t start = NowMicros();
      // Overlapping windows (and a margin for clocks that disagree): applying an event twice only
      // drops validations it matches, which Keystone would refuse anyway.
      int64_t since = last_poll_us_ - 60'000'000;
      auto resp = identity_->Get("/OS-REVOKE/events?since=" + FormatIso8601(since));
      if (!resp.ok() || resp->status != 200) {
        if (!warned) {
          log::Warn("keystone.revocation_poll_failed",
                    {{"status", resp.ok() ? resp->status : 0},
                     {"error", resp.ok() ? std::string() : resp.status().message()},
                     {"hint", "revoked tokens then stay valid until token_cache_time passes"}});
          warned = true;
        }
        {
          // Without events, drop expired entries at least.
          std::unique_lock<std::shared_mutex> lock(mu_);
          PurgeLocked(start);
        }
        continue;
      }
      last_poll_us_ = start;
      boost::system::error_code ec;
      json::value doc = json::parse(resp->body, ec);
      if (ec || !doc.is_object()) continue;
      const json::value* events = doc.as_object().if_contains("events");
      std::unique_lock<std::shared_mutex> lock(mu_);
      PurgeLocked(start);
      if (events == nullptr || !events->is_array() || events->as_array().empty()) continue;
      uint64_t dropped = 0;
      for (auto it = cache_.begin(); it != cache_.end();) {
        bool revoked = false;
        if (it->second.valid) {
          for (const json::value& ev : events->as_array()) {
            if (ev.is_object() && Matches(ev.as_object(), it->second.info)) {
              revoked = true;
              break;
            }
          }
        }
        if (revoked) {
          it = cache_.erase(it);
          ++dropped;
        } else {
          ++it;
        }
      }
      if (dropped > 0) log::Info("keystone.revoked", {{"dropped_validations", dropped}});
    }
  }

  std::shared_ptr<Identity> identity_;
  const std::string challenge_;
  std::shared_mutex mu_;
  std::unordered_map<std::string, Entry> cache_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  int64_t last_poll_us_ = 0;
  std::thread poller_;
};

}  // namespace

std::unique_ptr<Authenticator> MakeKeystoneAuth(std::shared_ptr<Identity> identity) {
  return std::make_unique<KeystoneAuth>(std::move(identity));
}

}  // namespace ingot::auth::keystone
