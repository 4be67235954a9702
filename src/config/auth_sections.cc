#include "config/auth_sections.h"

#include <set>

namespace ingot::config {
namespace {

Status Unknown(const toml::table& t, std::string_view section, const std::set<std::string>& known) {
  for (const auto& [k, v] : t) {
    if (!known.count(std::string(k.str()))) {
      return InvalidArgument("config: unknown key '" + std::string(section) + "." +
                             std::string(k.str()) + "'");
    }
  }
  return Status::Ok();
}

Status Str(const toml::table& t, std::string_view sec, std::string_view key, std::string& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return Status::Ok();
  auto v = n->value<std::string>();
  if (!v) return InvalidArgument("config " + std::string(sec) + "." + std::string(key) +
                                 ": expected a string");
  out = *v;
  return Status::Ok();
}

Status Bool(const toml::table& t, std::string_view sec, std::string_view key, bool& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return Status::Ok();
  auto v = n->value<bool>();
  if (!v) return InvalidArgument("config " + std::string(sec) + "." + std::string(key) +
                                 ": expected true or false");
  out = *v;
  return Status::Ok();
}

Status Int(const toml::table& t, std::string_view sec, std::string_view key, int64_t min,
           int64_t& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return Status::Ok();
  auto v = n->value<int64_t>();
  if (!v || *v < min) {
    return InvalidArgument("config " + std::string(sec) + "." + std::string(key) +
                           ": expected an integer of at least " + std::to_string(min));
  }
  out = *v;
  return Status::Ok();
}

Status Int32(const toml::table& t, std::string_view sec, std::string_view key, int& out) {
  int64_t v = out;
  INGOT_RETURN_IF_ERROR(Int(t, sec, key, 0, v));
  if (v > 1'000'000'000) return InvalidArgument("config " + std::string(sec) + "." +
                                                std::string(key) + ": too large");
  out = static_cast<int>(v);
  return Status::Ok();
}

// Glance's four unified limits.
const std::set<std::string> kLimitNames = {"image_size_total", "image_stage_total",
                                           "image_count_total", "image_count_uploading"};

Status Limits(const toml::table& t, const std::string& sec, std::map<std::string, int64_t>& out,
              const std::set<std::string>& also_allowed) {
  for (const auto& [k, v] : t) {
    std::string key(k.str());
    if (also_allowed.count(key)) continue;
    if (!kLimitNames.count(key)) {
      return InvalidArgument("config: unknown key '" + sec + "." + key +
                             "' (limits are image_size_total, image_stage_total, "
                             "image_count_total, image_count_uploading)");
    }
    int64_t value = -1;
    INGOT_RETURN_IF_ERROR(Int(t, sec, key, -1, value));
    out[key] = value;
  }
  return Status::Ok();
}

}  // namespace

Status ReadAuthSections(const toml::table& doc, AuthSections& out) {
  if (const toml::table* s = doc["keystone_authtoken"].as_table()) {
    const char* sec = "keystone_authtoken";
    auto& k = out.keystone;
    INGOT_RETURN_IF_ERROR(Unknown(
        *s, sec,
        {"www_authenticate_uri", "auth_url", "username", "password", "project_name",
         "user_domain_name", "project_domain_name", "region_name", "token_cache_time",
         "revocation_poll_seconds", "http_request_max_retries", "http_connect_timeout",
         "max_cached_tokens", "service_token_roles", "service_token_roles_required", "cafile",
         "insecure", "auth_type"}));
    INGOT_RETURN_IF_ERROR(Str(*s, sec, "www_authenticate_uri", k.www_authenticate_uri));
    INGOT_RETURN_IF_ERROR(Str(*s, sec, "auth_url", k.auth_url));
    INGOT_RETURN_IF_ERROR(Str(*s, sec, "username", k.username));
    INGOT_RETURN_IF_ERROR(Str(*s, sec, "password", k.password));
    INGOT_RETURN_IF_ERROR(Str(*s, sec, "project_name", k.project_name));
    INGOT_RETURN_IF_ERROR(Str(*s, sec, "user_domain_name", k.user_domain_name));
    INGOT_RETURN_IF_ERROR(Str(*s, sec, "project_domain_name", k.project_domain_name));
    INGOT_RETURN_IF_ERROR(Str(*s, sec, "region_name", k.region_name));
    INGOT_RETURN_IF_ERROR(Str(*s, sec, "cafile", k.cafile));
    INGOT_RETURN_IF_ERROR(Bool(*s, sec, "insecure", k.insecure));
    std::string auth_type = "password";
    INGOT_RETURN_IF_ERROR(Str(*s, sec, "auth_type", auth_type));
    if (auth_type != "password" && auth_type != "v3password") {
      return InvalidArgument("config keystone_authtoken.auth_type: only \"password\" is supported");
    }
    INGOT_RETURN_IF_ERROR(Int32(*s, sec, "token_cache_time", k.token_cache_time));
    INGOT_RETURN_IF_ERROR(Int32(*s, sec, "revocation_poll_seconds", k.revocation_poll_seconds));
    INGOT_RETURN_IF_ERROR(Int32(*s, sec, "http_request_max_retries", k.http_request_max_retries));
    int connect_s = k.http_connect_timeout_ms / 1000;
    INGOT_RETURN_IF_ERROR(Int32(*s, sec, "http_connect_timeout", connect_s));
    k.http_connect_timeout_ms = std::max(1, connect_s) * 1000;
    INGOT_RETURN_IF_ERROR(Int32(*s, sec, "max_cached_tokens", k.max_cached_tokens));
    if (const toml::node* n = s->get("service_token_roles")) {
      const toml::array* a = n->as_array();
      if (a == nullptr) return InvalidArgument("config keystone_authtoken.service_token_roles: "
                                               "expected a list of strings");
      k.service_token_roles.clear();
      for (const auto& e : *a) {
        auto v = e.value<std::string>();
        if (!v) return InvalidArgument("config keystone_authtoken.service_token_roles: "
                                       "expected a list of strings");
        k.service_token_roles.push_back(*v);
      }
    }
    INGOT_RETURN_IF_ERROR(
        Bool(*s, sec, "service_token_roles_required", k.service_token_roles_required));
  }
  if (const toml::table* s = doc["policy"].as_table()) {
    INGOT_RETURN_IF_ERROR(Unknown(*s, "policy", {"policy_file", "reload_check_ms"}));
    INGOT_RETURN_IF_ERROR(Str(*s, "policy", "policy_file", out.policy.policy_file));
    INGOT_RETURN_IF_ERROR(Int32(*s, "policy", "reload_check_ms", out.policy.reload_check_ms));
  }
  if (const toml::table* s = doc["quotas"].as_table()) {
    auto& q = out.quotas;
    INGOT_RETURN_IF_ERROR(Bool(*s, "quotas", "use_keystone_limits", q.use_keystone_limits));
    INGOT_RETURN_IF_ERROR(Str(*s, "quotas", "endpoint_id", q.endpoint_id));
    INGOT_RETURN_IF_ERROR(Str(*s, "quotas", "system_scope", q.system_scope));
    INGOT_RETURN_IF_ERROR(Int32(*s, "quotas", "cache_seconds", q.cache_seconds));
    INGOT_RETURN_IF_ERROR(Limits(*s, "quotas", q.defaults,
                                 {"use_keystone_limits", "endpoint_id", "system_scope",
                                  "cache_seconds", "projects"}));
    if (const toml::node* n = s->get("projects")) {
      const toml::table* projects = n->as_table();
      if (projects == nullptr) {
        return InvalidArgument("config quotas.projects: expected [quotas.projects.<project id>]");
      }
      for (const auto& [id, node] : *projects) {
        const toml::table* t = node.as_table();
        std::string sec = "quotas.projects." + std::string(id.str());
        if (t == nullptr) return InvalidArgument("config " + sec + ": expected a table");
        INGOT_RETURN_IF_ERROR(Limits(*t, sec, q.projects[std::string(id.str())], {}));
      }
    }
  }
  return Status::Ok();
}

}  // namespace ingot::config
