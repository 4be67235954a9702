// An operator's policy.yaml (untrusted text: libyaml events -> rules), each rule through the
// oslo.policy parser and evaluator, and the Keystone token document parser (Keystone's answer is
// trusted less than Ingot's own code: a compromised or buggy identity service must not crash it).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/keystone/keystone.h"
#include "auth/policy.h"
#include "auth/policy_file.h"
#include "auth/policy_language.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto rules = ingot::auth::ParsePolicyYaml(text, "fuzz.yaml");
  ingot::auth::RequestContext ctx;
  ctx.project = "p";
  ctx.roles = {"member", "reader"};
  if (rules.ok()) {
    ingot::auth::Policy p = ingot::auth::Policy::Defaults();
    (void)p.Override(*rules, "fuzz.yaml");
    for (const auto& r : *rules) (void)p.Authorize(r.name, ctx);
  }
  // The whole input as one rule too.
  auto expr = ingot::auth::ParsePolicyRule(text);
  if (expr.ok()) {
    ingot::auth::PolicyEnv env{
        .ctx = ctx,
        .target = [](std::string_view k) -> std::optional<std::string> { return std::string(k); },
        .rule = [&](std::string_view) -> const ingot::auth::PolicyExpr* { return expr->get(); }};
    (void)ingot::auth::EvaluatePolicy(**expr, env);
    // What is printed parses again.
    if (!ingot::auth::ParsePolicyRule(ingot::auth::FormatPolicyRule(**expr)).ok()) __builtin_trap();
  }
  (void)ingot::auth::keystone::ParseTokenBody(text);
  return 0;
}
