// Who is making a request, as established by an Authenticator at the API edge.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ingot::auth {

enum class Role { kReader, kMember, kAdmin };

struct RequestContext {
  std::string request_id;              // "req-<uuid>", echoed in x-openstack-request-id
  std::optional<std::string> user;
  std::optional<std::string> project;  // nullopt: anonymous
  Role role = Role::kReader;           // the strongest role the caller holds

  bool is_admin() const { return role == Role::kAdmin; }
  bool can_write() const { return role != Role::kReader; }
};

}  // namespace ingot::auth
