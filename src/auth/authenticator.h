// Turns request headers into a RequestContext. Back ends are chosen by name (--auth) in ingotd.
//
//  - noauth: every request is an admin of one fixed project (development; like Glance's noauth pipeline
//    but with an owner, so ownership rules can be exercised).
//  - tokens: `X-Auth-Token` looked up in a TOML file of static tokens:
//        [[token]]
//        token = "s3cret"
//        user = "alice"
//        project = "proj-a"
//        roles = ["member"]      # reader | member | admin (implying the ones before) | service
//
// Thread safety: Authenticate may be called from many threads at once.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "auth/context.h"
#include "common/result.h"
#include "http/message.h"

namespace ingot::auth {

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // kUnauthenticated when credentials are missing or unknown. Never fills request_id.
  virtual Result<RequestContext> Authenticate(const http::Headers& headers) = 0;
  // Authenticate's answer when it can be had without waiting on the network (a cached
  // validation), else nullopt: the caller then calls Authenticate where it may wait. Back ends
  // that never wait always answer; the default never does.
  virtual std::optional<Result<RequestContext>> AuthenticateNow(const http::Headers&) {
    return std::nullopt;
  }
  // The WWW-Authenticate value of a 401: where a client gets a token (Keystone's public URI).
  virtual std::string Challenge() const { return "Keystone uri=\"\""; }
};

std::unique_ptr<Authenticator> MakeNoAuth(std::string project = "ingot-dev", std::string user = "dev");

// Loads the token file; kInvalidArgument naming the line/field for a malformed file.
Result<std::unique_ptr<Authenticator>> MakeTokenFileAuth(const std::string& path);

}  // namespace ingot::auth
