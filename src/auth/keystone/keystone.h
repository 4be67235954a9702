// `--auth keystone`: X-Auth-Token validated against Keystone v3, as keystonemiddleware's auth_token
// does it for Glance.
//
//  - GET /v3/auth/tokens with the service's own token and X-Subject-Token; the token's project,
//    user, domains and roles (Keystone has already expanded implied roles) become the context.
//  - Validations are cached for token_cache_time, never past the token's expires_at; invalid tokens
//    are cached too (a flood of bad tokens does not become a flood on Keystone).
//  - Revocation: revocation events are polled every revocation_poll_seconds and every cached
//    validation they match is dropped, so a revoked token stops working within that time.
//  - X-Service-Token (another OpenStack service calling on a user's behalf): validated too; a bad
//    one is 401. A valid one lets the user token be validated with allow_expired (Keystone decides
//    how long past expiry), and its roles become the context's service_roles.
//  - Keystone unreachable: kUnavailable (503), never a pass.
//
// Thread safety: Authenticate may be called from many threads at once; cache lookups take a shared
// lock only.
#pragma once

#include <memory>
#include <string>

#include "auth/authenticator.h"
#include "auth/keystone/identity.h"

namespace ingot::auth::keystone {

// One validated token as Keystone described it (a pure parse of the JSON body, fuzzed).
struct TokenInfo {
  RequestContext context;  // user, project, domain, roles, service_roles untouched
  int64_t expires_us = 0;
  int64_t issued_us = 0;
  std::vector<std::string> audit_ids;
  std::vector<std::string> role_ids;
  std::string user_domain_id;
  std::string project_domain_id;
};
Result<TokenInfo> ParseTokenBody(std::string_view body);

// Starts the revocation poller (a thread stopped by the destructor).
std::unique_ptr<Authenticator> MakeKeystoneAuth(std::shared_ptr<Identity> identity);

}  // namespace ingot::auth::keystone
