#include "auth/authenticator.h"

#include <toml++/toml.h>

namespace ingot::auth {
namespace {

class NoAuth final : public Authenticator {
 public:
  NoAuth(std::string project, std::string user) {
    ctx_.project = std::move(project);
    ctx_.user = std::move(user);
    ctx_.authenticated = true;
    ctx_.roles = {"admin"};
    AddImpliedRoles(ctx_.roles);
  }
  Result<RequestContext> Authenticate(const http::Headers&) override { return ctx_; }
  std::optional<Result<RequestContext>> AuthenticateNow(const http::Headers& h) override {
    return Authenticate(h);
  }

 private:
  RequestContext ctx_;
};

class TokenFileAuth final : public Authenticator {
 public:
  explicit TokenFileAuth(std::map<std::string, RequestContext> tokens) : tokens_(std::move(tokens)) {}
  std::optional<Result<RequestContext>> AuthenticateNow(const http::Headers& h) override {
    return Authenticate(h);  // a map lookup
  }
  Result<RequestContext> Authenticate(const http::Headers& headers) override {
    auto token = headers.Get("X-Auth-Token");
    if (!token || token->empty()) return Unauthenticated("This server could not verify that you are authorized to access the document you requested.");
    auto it = tokens_.find(std::string(*token));
    if (it == tokens_.end()) return Unauthenticated("Authentication required: the token is not valid.");
    return it->second;
  }

 private:
  const std::map<std::string, RequestContext> tokens_;
};

// "service": Keystone's role for other OpenStack services (Nova, Cinder); it implies no other role.
bool KnownRole(std::string_view r) {
  return r == "reader" || r == "member" || r == "admin" || r == "service";
}

}  // namespace

std::unique_ptr<Authenticator> MakeNoAuth(std::string project, std::string user) {
  return std::make_unique<NoAuth>(std::move(project), std::move(user));
}

Result<std::unique_ptr<Authenticator>> MakeTokenFileAuth(const std::string& path) {
  toml::table doc;
  try {
    doc = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return InvalidArgument("token file " + path + ": " + std::string(e.description()) + " at line " +
                           std::to_string(e.source().begin.line));
  }
  std::map<std::string, RequestContext> tokens;
  const toml::array* entries = doc["token"].as_array();
  if (entries == nullptr) return InvalidArgument("token file " + path + ": no [[token]] entries");
  int n = 0;
  for (const auto& node : *entries) {
    ++n;
    std::string where = "token file " + path + ", entry " + std::to_string(n);
    const toml::table* t = node.as_table();
    if (t == nullptr) return InvalidArgument(where + ": not a table");
    auto token = (*t)["token"].value<std::string>();
    auto project = (*t)["project"].value<std::string>();
    if (!token || token->empty()) return InvalidArgument(where + ": missing 'token'");
    if (!project || project->empty()) return InvalidArgument(where + ": missing 'project'");
    RequestContext ctx;
    ctx.user = (*t)["user"].value<std::string>();
    ctx.project = *project;
    ctx.authenticated = true;
    if (const toml::array* roles = (*t)["roles"].as_array()) {
      for (const auto& r : *roles) {
        auto name = r.value<std::string>();
        if (!name || !KnownRole(*name)) {
          return InvalidArgument(where + ": unknown role (use reader, member, admin or service)");
        }
        ctx.roles.push_back(*name);
      }
    }
    if (ctx.roles.empty()) ctx.roles.push_back("reader");
    AddImpliedRoles(ctx.roles);
    if (!tokens.emplace(*token, ctx).second) return InvalidArgument(where + ": duplicate token");
  }
  return std::unique_ptr<Authenticator>(new TokenFileAuth(std::move(tokens)));
}

}  // namespace ingot::auth
