// Who is making a request, as established by an Authenticator at the API edge.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ingot::auth {

struct RequestContext {
  std::string request_id;      // "req-<uuid>", echoed in the API's request-id header
  bool authenticated = false;  // false on routes that do not authenticate
  std::optional<std::string> user;
  std::optional<std::string> project;  // nullopt: anonymous or unscoped
  std::optional<std::string> domain;  // the domain a domain-scoped token is scoped to
  std::optional<std::string> user_domain;
  std::optional<std::string> project_domain;
  std::optional<std::string> system_scope;  // "all" for a system-scoped token
  // Role names as the identity service gives them, implied roles included (Keystone's defaults:
  // admin implies member, member implies reader).
  std::vector<std::string> roles;
  // Roles of a valid X-Service-Token (another OpenStack service acting for the user); empty
  // otherwise.
  std::vector<std::string> service_roles;

  bool HasRole(std::string_view role) const {
    return std::find(roles.begin(), roles.end(), role) != roles.end();
  }
  bool is_admin() const { return HasRole("admin"); }
};

// Keystone's default implied roles added to `roles`: admin -> member -> reader.
void AddImpliedRoles(std::vector<std::string>& roles);

}  // namespace ingot::auth
