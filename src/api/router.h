// Maps (method, path) to a handler. Patterns are '/'-separated segments; "{name}" matches one
// segment and is passed to the handler in order. HEAD falls back to the GET route.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "auth/context.h"
#include "http/server.h"

namespace ingot::api {

using Params = std::vector<std::string>;
using RouteHandler =
    std::function<http::Response(http::Request&, const auth::RequestContext&, const Params&)>;

struct Route {
  std::string method;
  std::string pattern;  // also the route label in metrics
  bool authenticated = true;
  RouteHandler handler;
};

class Router {
 public:
  void Add(std::string method, std::string pattern, RouteHandler handler,
           bool authenticated = true);

  struct Match {
    const Route* route = nullptr;  // null: no route for this method (see allow) or path
    Params params;
    std::string allow;             // "GET, PATCH, DELETE" when the path exists for other methods
  };
  Match Find(std::string_view method, std::string_view path) const;

 private:
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;  // parallel to routes_
};

}  // namespace ingot::api
