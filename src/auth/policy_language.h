// oslo.policy's rule language, as operators write it in Glance's policy.yaml:
//
//   "@" (always), "!" (never), "" (always), role:NAME, rule:NAME, KEY:VALUE (generic), with
//   "and", "or", "not" and parentheses; "not" binds tightest, then "and", then "or".
//
// In a generic check KEY:VALUE, VALUE is expanded with the target first ("%(project_id)s", also
// dotted names such as "%(target.owner)s"); KEY is either a literal ('public', "shared", True, 42),
// compared with the expanded VALUE as text, or a field of the caller's credentials (project_id,
// user_id, domain_id, user_domain_id, project_domain_id, system_scope, is_admin, roles,
// service_roles; a list field matches when any element does). role:NAME compares case-insensitively.
//
// Where oslo.policy would compare Python's "None" with "None", Ingot fails closed: a credential
// or target field that is absent never matches (an anonymous caller is not the owner of an
// image without an owner).
//
// Parsing is pure (fuzzed): a rule that does not parse is an error naming the offending token,
// never silently "deny" as oslo.policy does, so a typo in policy.yaml stops start-up.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/context.h"
#include "common/result.h"

namespace ingot::auth {

// One parsed rule. Immutable once parsed; safe to evaluate from many threads.
struct PolicyExpr {
  enum class Kind { kTrue, kFalse, kAnd, kOr, kNot, kRule, kRole, kGeneric };
  Kind kind = Kind::kTrue;
  std::vector<std::unique_ptr<PolicyExpr>> operands;  // kAnd, kOr (2+), kNot (1)
  std::string key;    // kRule: the rule name; kRole: ""; kGeneric: the left side
  std::string value;  // kRole, kGeneric: the right side, before target expansion
};

// kInvalidArgument with a message naming the problem ("unexpected ')'", "'frob' is not a
// check"...).
Result<std::unique_ptr<PolicyExpr>> ParsePolicyRule(std::string_view text);

// The rule as oslo.policy would print it (fully parenthesised where it matters).
std::string FormatPolicyRule(const PolicyExpr& expr);

// What an expression is evaluated against: the caller, a target field lookup (nullopt: the target
// has no such field) and the other rules (for rule:NAME; nullptr: no such rule).
struct PolicyEnv {
  const RequestContext& ctx;
  std::function<std::optional<std::string>(std::string_view)> target;
  std::function<const PolicyExpr*(std::string_view)> rule;
};

bool EvaluatePolicy(const PolicyExpr& expr, const PolicyEnv& env);

// Names this expression refers to with rule:NAME (for cycle and dangling-reference checks).
void CollectRuleRefs(const PolicyExpr& expr, std::vector<std::string>& out);

}  // namespace ingot::auth
