// The sections of ingotd's configuration that belong to authentication, authorization and quotas,
// under Glance's names: [keystone_authtoken] (keystonemiddleware's keys), [policy] (oslo.policy's
// policy_file) and [quotas] (Glance's unified-limit names). LoadConfigText calls ReadAuthSections.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <toml++/toml.h>

#include "auth/keystone/identity.h"
#include "common/status.h"

namespace ingot::config {

struct PolicySection {
  std::string policy_file;     // oslo.policy YAML (or JSON); "" = the compiled-in defaults
  int reload_check_ms = 1000;  // how often the file's change time is looked at
};

struct QuotaSection {
  // Glance's use_keystone_limits: the limits are Keystone's unified limits (registered limits and
  // per-project overrides for this service); otherwise the values below.
  bool use_keystone_limits = false;
  std::string endpoint_id;       // oslo_limit's endpoint_id (else the catalog's "image" service)
  std::string system_scope = "all";  // oslo_limit's system_scope ("" : the project_name scope)
  int cache_seconds = 60;        // Keystone's limits are re-read this often
  // Limits (image_size_total, image_stage_total in MiB as Glance; counts as numbers; -1 =
  // unlimited); absent = unlimited.
  std::map<std::string, int64_t> defaults;
  std::map<std::string, std::map<std::string, int64_t>> projects;  // [quotas.projects.<id>]
};

struct AuthSections {
  auth::keystone::KeystoneOptions keystone;
  PolicySection policy;
  QuotaSection quotas;
};

// The section names ReadAuthSections owns.
inline constexpr std::string_view kAuthSectionNames[] = {"keystone_authtoken", "policy", "quotas"};

Status ReadAuthSections(const toml::table& doc, AuthSections& out);

}  // namespace ingot::config
