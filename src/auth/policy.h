// Who may do what: the one policy of the API, decided at the edge before any use case runs.
//
// Every action the API exposes names one rule ("get_image", "modify_member", ...). A rule is an
// oslo.policy expression (policy_language.h) over the caller and the target. The compiled-in
// defaults are Glance's secure-RBAC defaults (policy.cc, kDefaultRules) plus Ingot's own actions;
// an operator's policy.yaml overrides any of them (policy_file.h) and is re-read when it changes.
// A rule that is not in the policy is refused, never allowed, and logged: a route added without a
// rule fails closed.
//
// Visibility comes first and is not a policy decision: an image the caller cannot see answers 404,
// never 403 (catalog::IsVisible).
//
// Thread safety: Authorize and the readers may run concurrently with Override (a reload swaps
// the whole rule set at once; a request sees the old or the new set, never a mix).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "auth/context.h"
#include "auth/policy_language.h"
#include "catalog/image.h"
#include "common/status.h"

namespace ingot::auth {

// What a rule is checked against; fields a rule does not need may be left empty. As Glance's
// ImageTarget, an image gives project_id and owner (its owner), id, name, visibility, status,
// protected, os_hidden, disk_format, container_format, its extra properties and member_id (the
// member named by the request, else the caller's project when the image is shared with it).
// Without an image, project_id and owner are the caller's project and visibility "private" (the
// target of a proposed image, and of listing). `fields` adds or overrides names (other resources:
// a metadata namespace's owner and visibility).
struct Target {
  const catalog::Image* image = nullptr;  // the image acted on (its owner decides project rules)
  std::optional<std::string> member;      // the member project named by the request
  std::map<std::string, std::string, std::less<>> fields;
};

// The checks older rule rows name; each is spelled as oslo.policy text by CheckText.
enum class Check {
  kAnyone,         // "@": also unauthenticated callers (versions, health, metrics)
  kReader,         // "role:reader"
  kMember,         // "role:member"
  kAdmin,          // "role:admin"
  kProjectMember,  // "role:admin or (role:member and project_id:%(project_id)s)"
  kOwnerOrMember,  // "role:admin or project_id:%(project_id)s or project_id:%(member_id)s"
  kTargetMember,   // "role:member and project_id:%(member_id)s"
  kService,        // "role:service" (Glance's rule:service_api): other OpenStack services
  kServiceOrProjectMember,  // "role:service or (role:member and project_id:%(project_id)s)"
};
std::string_view CheckText(Check check);

// A rule from a policy file, before it is parsed: where it came from, for error messages.
struct PolicyFileRule {
  std::string name;
  std::string text;
  int line = 0;
};

class Policy {
 public:
  // Ingot's defaults: the rules of every action the API exposes.
  static Policy Defaults();
  // The defaults as a policy.yaml an operator can edit (ingotd --print-default-policy).
  static std::string DefaultsYaml();

  Policy();
  Policy(const Policy& other);
  Policy& operator=(const Policy& other);

  // OK, or kPermissionDenied "You are not authorized to complete <rule> action." — also for a rule
  // the policy does not hold.
  Status Authorize(std::string_view rule, const RequestContext& ctx,
                   const Target& target = {}) const;
  bool Has(std::string_view rule) const;
  std::vector<std::string> rules() const;
  // The rule's text as it is in force ("" for a rule the policy does not hold).
  std::string Text(std::string_view rule) const;

  // Adds or replaces one rule. kInvalidArgument naming the rule when the text does not parse.
  Status Set(std::string rule, std::string_view text);
  void Set(std::string rule, Check check);
  // The defaults with `file` applied over them, swapped in at once. kInvalidArgument naming
  // `origin`, the line and the rule for a rule that does not parse or a rule:NAME cycle; the
  // policy in force is then unchanged.
  Status Override(const std::vector<PolicyFileRule>& file, const std::string& origin);

 private:
  struct Rule {
    std::string text;
    std::shared_ptr<const PolicyExpr> expr;
  };
  using RuleSet = std::map<std::string, Rule, std::less<>>;
  std::shared_ptr<const RuleSet> Snapshot() const;

  mutable std::shared_mutex mu_;
  std::shared_ptr<const RuleSet> rules_;
};

}  // namespace ingot::auth
