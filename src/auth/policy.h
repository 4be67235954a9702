// Who may do what: the one policy of the API, decided at the edge before any use case runs.
//
// Every action the API exposes names one rule ("get_image", "modify_member", ...). A rule is data:
// a named check over the caller and the target (policy.cc, kDefaultRules: Glance's secure-RBAC
// defaults as Ingot applies them). A rule that is not in the policy is refused, never allowed, and
// logged: a route added without a rule fails closed.
//
// Visibility comes first and is not a policy decision: an image the caller cannot see answers 404,
// never 403 (catalog::IsVisible).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/context.h"
#include "catalog/image.h"
#include "common/status.h"

namespace ingot::auth {

// What a rule is checked against; fields a rule does not need may be left empty.
struct Target {
  const catalog::Image* image = nullptr;  // the image acted on (its owner decides project rules)
  std::optional<std::string> member;      // the member project named by the request
};

// The checks a rule can make. Their names are what a policy file will spell.
enum class Check {
  kAnyone,         // "@": also unauthenticated callers (versions, health, metrics)
  kReader,         // "role:reader"
  kMember,         // "role:member"
  kAdmin,          // "role:admin"
  kProjectMember,  // "role:admin or (role:member and project_id:%(owner)s)"
  kOwnerOrMember,  // "role:admin or project_id:%(owner)s or project_id:%(member_id)s"
  kTargetMember,   // "role:member and project_id:%(member_id)s"
  kService,        // "role:service" (Glance's rule:service_api): other OpenStack services
  kServiceOrProjectMember,  // "role:service or (role:member and project_id:%(owner)s)"
};

class Policy {
 public:
  // Ingot's defaults: the rules of every action the API exposes.
  static Policy Defaults();

  // OK, or kPermissionDenied "You are not authorized to complete <rule> action." — also for a rule
  // the policy does not hold.
  Status Authorize(std::string_view rule, const RequestContext& ctx,
                   const Target& target = {}) const;
  bool Has(std::string_view rule) const { return rules_.count(std::string(rule)) != 0; }
  std::vector<std::string> rules() const;
  // Adds or replaces a rule (a policy file overrides defaults this way).
  void Set(std::string rule, Check check) { rules_[std::move(rule)] = check; }

 private:
  std::map<std::string, Check, std::less<>> rules_;
};

}  // namespace ingot::auth
