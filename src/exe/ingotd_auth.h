// ingotd's wiring of authentication and authorization: the --auth back ends by name, the policy
// (defaults, the operator's file and its watcher) and Keystone's session, which quotas share.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "auth/authenticator.h"
#include "auth/keystone/identity.h"
#include "auth/policy.h"
#include "auth/policy_file.h"
#include "config/config.h"
#include "service/quota.h"

namespace ingot {

struct AuthWiring {
  std::unique_ptr<auth::Authenticator> authenticator;
  std::unique_ptr<auth::Policy> policy;
  std::unique_ptr<auth::PolicyFileWatcher> watcher;     // set when a policy file is named
  std::shared_ptr<auth::keystone::Identity> keystone;  // set for --auth keystone
};

// kInvalidArgument for an unknown --auth, missing [keystone_authtoken] keys, or a policy file
// with a rule that does not parse (naming the file and line).
Result<AuthWiring> WireAuth(const config::Config& config);

// glance-download's regions as Glance finds them: the public endpoint of the "image" service in
// each region of Keystone's catalog (empty without Keystone, or when the catalog cannot be read:
// [import.glance_regions] still names regions by hand, and wins).
std::map<std::string, std::string> KeystoneImageRegions(AuthWiring& auth);

// Where quotas come from: Keystone's unified limits ([quotas] use_keystone_limits, which needs
// [keystone_authtoken]), the limits in [quotas], or none (nullptr: unlimited).
Result<std::unique_ptr<service::LimitSource>> WireLimits(const config::Config& config,
                                                         AuthWiring& auth);

}  // namespace ingot
