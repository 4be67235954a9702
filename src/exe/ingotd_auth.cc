#include "exe/ingotd_auth.h"

#include <boost/json.hpp>
#include <functional>
#include <set>

#include "auth/keystone/keystone.h"
#include "auth/keystone/limits.h"
#include "common/log.h"

namespace ingot {

Result<AuthWiring> WireAuth(const config::Config& config) {
  AuthWiring w;
  const auth::keystone::KeystoneOptions& ks = config.auth_sections.keystone;
  // The authentication back ends this binary offers, by --auth name.
  const std::map<std::string, std::function<Result<std::unique_ptr<auth::Authenticator>>()>>
      authenticators = {
          {"noauth",
           [&]() -> Result<std::unique_ptr<auth::Authenticator>> {
             return auth::MakeNoAuth(config.noauth_project);
           }},
          {"tokens",
           [&]() -> Result<std::unique_ptr<auth::Authenticator>> {
             if (config.tokens_file.empty()) {
               return InvalidArgument("--auth tokens needs --tokens-file");
             }
             return auth::MakeTokenFileAuth(config.tokens_file);
           }},
          {"keystone",
           [&]() -> Result<std::unique_ptr<auth::Authenticator>> {
             for (const auto& [key, value] :
                  {std::pair<const char*, const std::string*>{"auth_url", &ks.auth_url},
                   {"username", &ks.username},
                   {"password", &ks.password},
                   {"project_name", &ks.project_name}}) {
               if (value->empty()) {
                 return InvalidArgument("--auth keystone needs [keystone_authtoken] " +
                                        std::string(key));
               }
             }
             w.keystone = std::make_shared<auth::keystone::Identity>(
                 ks, auth::keystone::MakeCurlTransport(
                         std::chrono::milliseconds(ks.http_connect_timeout_ms), ks.cafile,
                         ks.insecure));
             return auth::keystone::MakeKeystoneAuth(w.keystone);
           }},
      };
  auto make = authenticators.find(config.auth);
  if (make == authenticators.end()) {
    return InvalidArgument("--auth must be noauth, tokens or keystone, not '" + config.auth + "'");
  }
  INGOT_ASSIGN_OR_RETURN(w.authenticator, make->second());

  w.policy = std::make_unique<auth::Policy>(auth::Policy::Defaults());
  const config::PolicySection& ps = config.auth_sections.policy;
  if (!ps.policy_file.empty()) {
    INGOT_RETURN_IF_ERROR(auth::LoadPolicyFile(*w.policy, ps.policy_file));
    w.watcher = std::make_unique<auth::PolicyFileWatcher>(
        *w.policy, ps.policy_file, std::chrono::milliseconds(std::max(50, ps.reload_check_ms)));
    log::Info("policy.loaded", {{"path", ps.policy_file}});
  }
  return w;
}

std::map<std::string, std::string> KeystoneImageRegions(AuthWiring& auth) {
  namespace json = boost::json;
  std::map<std::string, std::string> out;
  if (!auth.keystone) return out;
  auto get = [&](const std::string& path) -> std::optional<json::object> {
    auto r = auth.keystone->Get(path);
    if (!r.ok() || r->status != 200) {
      log::Warn("keystone.catalog_unreadable",
                {{"path", path}, {"status", r.ok() ? r->status : 0}});
      return std::nullopt;
    }
    boost::system::error_code ec;
    json::value v = json::parse(r->body, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return v.as_object();
  };
  auto services = get("/services?type=image");
  auto endpoints = services ? get("/endpoints?interface=public") : std::nullopt;
  if (!services || !endpoints) return out;
  std::set<std::string> ids;
  if (const json::value* l = services->if_contains("services"); l && l->is_array()) {
    for (const json::value& s : l->as_array()) {
      if (s.is_object() && s.as_object().contains("id") && s.as_object().at("id").is_string())
        ids.insert(std::string(s.as_object().at("id").as_string()));
    }
  }
  if (const json::value* l = endpoints->if_contains("endpoints"); l && l->is_array()) {
    for (const json::value& e : l->as_array()) {
      if (!e.is_object()) continue;
      const json::object& o = e.as_object();
      auto text = [&](const char* k) {
        const json::value* v = o.if_contains(k);
        return v && v->is_string() ? std::string(v->as_string()) : std::string();
      };
      if (ids.count(text("service_id")) && !text("region_id").empty() && !text("url").empty())
        out.emplace(text("region_id"), text("url"));
    }
  }
  return out;
}

Result<std::unique_ptr<service::LimitSource>> WireLimits(const config::Config& config,
                                                         AuthWiring& auth) {
  const config::QuotaSection& q = config.auth_sections.quotas;
  if (q.use_keystone_limits) {
    if (!auth.keystone) {
      const auth::keystone::KeystoneOptions& ks = config.auth_sections.keystone;
      if (ks.auth_url.empty() || ks.username.empty()) {
        return InvalidArgument(
            "[quotas] use_keystone_limits needs Keystone: [keystone_authtoken] auth_url, username, "
            "password, project_name");
      }
      auth.keystone = std::make_shared<auth::keystone::Identity>(
          ks, auth::keystone::MakeCurlTransport(
                  std::chrono::milliseconds(ks.http_connect_timeout_ms), ks.cafile, ks.insecure));
    }
    // Limits are read system-scoped, as oslo.limit is configured for Glance ([oslo_limit]
    // system_scope = all; the service user holds the reader role on the system).
    auth::keystone::KeystoneOptions limits_options = auth.keystone->options();
    limits_options.system_scope = q.system_scope;
    auto limits_identity = std::make_shared<auth::keystone::Identity>(
        limits_options,
        auth::keystone::MakeCurlTransport(
            std::chrono::milliseconds(limits_options.http_connect_timeout_ms),
            limits_options.cafile, limits_options.insecure));
    return auth::keystone::MakeKeystoneLimits(limits_identity, q.endpoint_id, q.cache_seconds);
  }
  if (q.defaults.empty() && q.projects.empty()) return std::unique_ptr<service::LimitSource>();
  return service::MakeConfiguredLimits(q.defaults, q.projects);
}

}  // namespace ingot
