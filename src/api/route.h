// What an API route is: the policy rule that guards it, how it takes its body, whether it acts on
// an image (loaded and checked for visibility before the body is read), and its handler. The
// Application (app.h) does the common part for every route, in this order: route lookup,
// authentication, the image lookup, the rule, then the body, then the handler.
#pragma once

#include <functional>
#include <string>

#include "auth/context.h"
#include "catalog/image.h"
#include "common/result.h"
#include "http/router.h"
#include "http/message.h"

namespace ingot::api {

enum class BodyMode {
  kNone,    // the route reads no body (one that is sent is drained or the connection closed)
  kJson,    // read whole, up to the JSON cap, before the handler runs
  kStream,  // image bytes: the handler streams them, up to the image size cap
};

// One request as a handler sees it: authenticated, authorized, its image loaded.
struct Call {
  http::Request& request;
  const auth::RequestContext& context;
  const http::PathParams& params;
  const catalog::Image* image = nullptr;  // set when the route names an image (image_param)
};

// A failed handler's Status becomes the error response (errors.h) in one place.
using RouteHandler = std::function<Result<http::Response>(Call&)>;

struct Route {
  std::string rule;  // the policy rule; every route names one (app_test walks them)
  RouteHandler handler;
  BodyMode body = BodyMode::kNone;
  bool authenticated = true;
  int image_param = -1;   // index of the parameter naming the image acted on: loaded for the
                          // caller (404 if invisible) and the rule's target
  int member_param = -1;  // index of a {member} parameter: the rule's target member
  // A GET whose work is a few local catalog reads and no body: it may be answered on the I/O
  // thread (Application::HandleInline) when the catalog's reads never wait.
  bool inline_read = false;
};

using ApiRouter = http::Router<Route>;

}  // namespace ingot::api
