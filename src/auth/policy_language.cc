#include "auth/policy_language.h"

#include <algorithm>
#include <cctype>

namespace ingot::auth {
namespace {

using Expr = PolicyExpr;
using Kind = PolicyExpr::Kind;

// The caller's fields a generic check may name (oslo.context's to_policy_values()).
constexpr std::string_view kCredentialFields[] = {
    "user_id",    "project_id", "domain_id",       "user_domain_id", "project_domain_id",
    "system_scope", "is_admin", "is_admin_project", "roles",         "service_roles",
    "service_user_id", "service_project_id"};

bool IsCredential(std::string_view k) {
  return std::find(std::begin(kCredentialFields), std::end(kCredentialFields), k) !=
         std::end(kCredentialFields);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A literal on the left of a generic check, as Python's ast.literal_eval reads the simple cases
// rules use: quoted strings, True/False/None and integers. nullopt: not a literal.
std::optional<std::string> Literal(std::string_view k) {
  if (k.size() >= 2 && (k.front() == '\'' || k.front() == '"') && k.back() == k.front()) {
    return std::string(k.substr(1, k.size() - 2));
  }
  if (k == "True" || k == "False" || k == "None") return std::string(k);
  if (!k.empty() && std::all_of(k.begin() + (k.front() == '-' ? 1 : 0), k.end(),
                                [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) &&
      k != "-") {
    return std::string(k);
  }
  return std::nullopt;
}

struct Token {
  enum Type { kOpen, kClose, kAnd, kOr, kNot, kCheck } type;
  std::string text;
};

Result<std::vector<Token>> Tokenize(std::string_view text) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    std::string_view tok = text.substr(i, j - i);
    i = j;
    // As oslo.policy: parentheses are peeled off the ends of whitespace-separated words.
    while (!tok.empty() && tok.front() == '(') {
      out.push_back({Token::kOpen, "("});
      tok.remove_prefix(1);
    }
    size_t closes = 0;
    while (!tok.empty() && tok.back() == ')') {
      ++closes;
      tok.remove_suffix(1);
    }
    // A value such as "%(project_id)s" keeps its own parentheses: only unbalanced trailing ones
    // close groups.
    while (closes > 0 && std::count(tok.begin(), tok.end(), '(') >
                             std::count(tok.begin(), tok.end(), ')')) {
      tok = std::string_view(tok.data(), tok.size() + 1);
      --closes;
    }
    if (!tok.empty()) {
      std::string lower = Lower(tok);
      if (lower == "and") {
        out.push_back({Token::kAnd, "and"});
      } else if (lower == "or") {
        out.push_back({Token::kOr, "or"});
      } else if (lower == "not") {
        out.push_back({Token::kNot, "not"});
      } else {
        out.push_back({Token::kCheck, std::string(tok)});
      }
    }
    for (size_t c = 0; c < closes; ++c) out.push_back({Token::kClose, ")"});
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Result<std::unique_ptr<Expr>> Parse() {
    if (t_.empty()) return Leaf(Kind::kTrue);  // "" allows, as in oslo.policy
    INGOT_ASSIGN_OR_RETURN(auto e, Or(0));
    if (pos_ != t_.size()) return InvalidArgument("unexpected '" + t_[pos_].text + "'");
    return e;
  }

 private:
  static std::unique_ptr<Expr> Leaf(Kind k) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    return e;
  }

  Result<std::unique_ptr<Expr>> Or(int depth) {
    INGOT_ASSIGN_OR_RETURN(auto left, And(depth));
    if (pos_ >= t_.size() || t_[pos_].type != Token::kOr) return left;
    auto e = Leaf(Kind::kOr);
    e->operands.push_back(std::move(left));
    while (pos_ < t_.size() && t_[pos_].type == Token::kOr) {
      ++pos_;
      INGOT_ASSIGN_OR_RETURN(auto right, And(depth));
      e->operands.push_back(std::move(right));
    }
    return e;
  }

  Result<std::unique_ptr<Expr>> And(int depth) {
    INGOT_ASSIGN_OR_RETURN(auto left, Not(depth));
    if (pos_ >= t_.size() || t_[pos_].type != Token::kAnd) return left;
    auto e = Leaf(Kind::kAnd);
    e->operands.push_back(std::move(left));
    while (pos_ < t_.size() && t_[pos_].type == Token::kAnd) {
      ++pos_;
      INGOT_ASSIGN_OR_RETURN(auto right, Not(depth));
      e->operands.push_back(std::move(right));
    }
    return e;
  }

  Result<std::unique_ptr<Expr>> Not(int depth) {
    if (depth > 64) return InvalidArgument("rule nested too deeply");
    if (pos_ >= t_.size()) return InvalidArgument("rule ends where a check was expected");
    if (t_[pos_].type == Token::kNot) {
      ++pos_;
      INGOT_ASSIGN_OR_RETURN(auto operand, Not(depth + 1));
      auto e = Leaf(Kind::kNot);
      e->operands.push_back(std::move(operand));
      return e;
    }
    return Atom(depth);
  }

  Result<std::unique_ptr<Expr>> Atom(int depth) {
    const Token& tok = t_[pos_];
    if (tok.type == Token::kOpen) {
      ++pos_;
      INGOT_ASSIGN_OR_RETURN(auto e, Or(depth + 1));
      if (pos_ >= t_.size() || t_[pos_].type != Token::kClose) {
        return InvalidArgument("missing ')'");
      }
      ++pos_;
      return e;
    }
    if (tok.type != Token::kCheck) return InvalidArgument("unexpected '" + tok.text + "'");
    ++pos_;
    return Check(tok.text);
  }

  static Result<std::unique_ptr<Expr>> Check(const std::string& text) {
    if (text == "@") return Leaf(Kind::kTrue);
    if (text == "!") return Leaf(Kind::kFalse);
    auto colon = text.find(':');
    if (colon == std::string::npos) {
      return InvalidArgument("'" + text + "' is not a check (expected KIND:VALUE, @ or !)");
    }
    std::string kind = text.substr(0, colon);
    std::string value = text.substr(colon + 1);
    if (kind == "rule") {
      if (value.empty()) return InvalidArgument("'rule:' names no rule");
      auto e = Leaf(Kind::kRule);
      e->key = value;
      return e;
    }
    if (kind == "role") {
      if (value.empty()) return InvalidArgument("'role:' names no role");
      auto e = Leaf(Kind::kRole);
      e->value = value;
      return e;
    }
    if (kind == "http" || kind == "https") {
      return InvalidArgument("'" + text + "': remote (http) checks are not supported");
    }
    if (!Literal(kind) && !IsCredential(kind)) {
      return InvalidArgument("'" + text + "': '" + kind +
                             "' is neither a credential field nor a quoted literal");
    }
    auto e = Leaf(Kind::kGeneric);
    e->key = kind;
    e->value = value;
    return e;
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
};

// "%(name)s" expanded from the target; nullopt when a named field is absent (oslo.policy's
// KeyError: the check fails).
std::optional<std::string> Expand(const std::string& value, const PolicyEnv& env) {
  if (value.find('%') == std::string::npos) return value;
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%') {
      out += value[i];
      continue;
    }
    if (i + 1 < value.size() && value[i + 1] == '%') {
      out += '%';
      ++i;
      continue;
    }
    if (i + 1 < value.size() && value[i + 1] == '(') {
      auto close = value.find(')', i + 2);
      if (close != std::string::npos && close + 1 < value.size() && value[close + 1] == 's') {
        std::string_view name(value.data() + i + 2, close - i - 2);
        auto v = env.target(name);
        if (!v && name.substr(0, 7) == "target.") v = env.target(name.substr(7));
        if (!v) return std::nullopt;
        out += *v;
        i = close + 1;
        continue;
      }
    }
    out += value[i];
  }
  return out;
}

std::vector<std::string> Credential(const RequestContext& ctx, std::string_view key) {
  auto one = [](const std::optional<std::string>& v) {
    return v ? std::vector<std::string>{*v} : std::vector<std::string>{};
  };
  if (key == "user_id") return one(ctx.user);
  if (key == "project_id") return one(ctx.project);
  if (key == "domain_id") return one(ctx.domain);
  if (key == "user_domain_id") return one(ctx.user_domain);
  if (key == "project_domain_id") return one(ctx.project_domain);
  if (key == "system_scope") return one(ctx.system_scope);
  if (key == "is_admin") return {ctx.is_admin() ? "True" : "False"};
  if (key == "is_admin_project") return {"True"};
  if (key == "roles") return ctx.roles;
  if (key == "service_roles") return ctx.service_roles;
  return {};
}

bool Eval(const Expr& e, const PolicyEnv& env, int depth) {
  switch (e.kind) {
    case Kind::kTrue:
      return true;
    case Kind::kFalse:
      return false;
    case Kind::kAnd:
      for (const auto& o : e.operands)
        if (!Eval(*o, env, depth)) return false;
      return true;
    case Kind::kOr:
      for (const auto& o : e.operands)
        if (Eval(*o, env, depth)) return true;
      return false;
    case Kind::kNot:
      return !Eval(*e.operands.front(), env, depth);
    case Kind::kRule: {
      // Loaded policies have no cycles (Policy refuses them); the bound is a second guard.
      if (depth > 32) return false;
      const PolicyExpr* r = env.rule ? env.rule(e.key) : nullptr;
      return r != nullptr && Eval(*r, env, depth + 1);
    }
    case Kind::kRole: {
      auto want = Expand(e.value, env);
      if (!want) return false;
      std::string w = Lower(*want);
      return std::any_of(env.ctx.roles.begin(), env.ctx.roles.end(),
                         [&](const std::string& r) { return Lower(r) == w; });
    }
    case Kind::kGeneric: {
      auto match = Expand(e.value, env);
      if (!match) return false;
      if (auto lit = Literal(e.key)) return *lit == *match;
      for (const std::string& v : Credential(env.ctx, e.key)) {
        if (v == *match) return true;
      }
      return false;
    }
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<PolicyExpr>> ParsePolicyRule(std::string_view text) {
  INGOT_ASSIGN_OR_RETURN(auto tokens, Tokenize(text));
  return Parser(std::move(tokens)).Parse();
}

std::string FormatPolicyRule(const PolicyExpr& e) {
  switch (e.kind) {
    case Kind::kTrue:
      return "@";
    case Kind::kFalse:
      return "!";
    case Kind::kRule:
      return "rule:" + e.key;
    case Kind::kRole:
      return "role:" + e.value;
    case Kind::kGeneric:
      return e.key + ":" + e.value;
    case Kind::kNot: {
      const PolicyExpr& o = *e.operands.front();
      bool group = o.kind == Kind::kAnd || o.kind == Kind::kOr;
      return "not " + (group ? "(" + FormatPolicyRule(o) + ")" : FormatPolicyRule(o));
    }
    case Kind::kAnd:
    case Kind::kOr: {
      std::string out;
      for (const auto& o : e.operands) {
        if (!out.empty()) out += e.kind == Kind::kAnd ? " and " : " or ";
        // "a or (b and c)" reads as Glance writes it, though "and" binds tighter anyway.
        bool group = o->kind == Kind::kOr || (e.kind == Kind::kOr && o->kind == Kind::kAnd);
        out += group ? "(" + FormatPolicyRule(*o) + ")" : FormatPolicyRule(*o);
      }
      return out;
    }
  }
  return "!";
}

bool EvaluatePolicy(const PolicyExpr& expr, const PolicyEnv& env) { return Eval(expr, env, 0); }

void CollectRuleRefs(const PolicyExpr& expr, std::vector<std::string>& out) {
  if (expr.kind == Kind::kRule) out.push_back(expr.key);
  for (const auto& o : expr.operands) CollectRuleRefs(*o, out);
}

}  // namespace ingot::auth
