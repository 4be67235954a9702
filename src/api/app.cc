#include "api/app.h"

#include <exception>

#include "api/errors.h"
#include "api/v2/documents.h"
#include "api/v2/info.h"
#include "api/v2/metadef_schemas.h"
#include "api/v2/schemas.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/uuid.h"
#include "io/memory.h"

namespace ingot::api {

using http::Request;
using http::Response;

Application::Application(AppDeps deps)
    : deps_(std::move(deps)),
      images_(deps_.images, deps_.policy, deps_.options, deps_.locations),
      members_(deps_.images, deps_.policy, deps_.options) {
  RegisterOperations();
  images_.Register(router_);
  members_.Register(router_);
  if (deps_.imports != nullptr) {
    deps_.options.import_methods = deps_.imports->options().methods;
    imports_.emplace(*deps_.imports, deps_.policy, deps_.options);
    imports_->Register(router_);
  }
  if (deps_.locations != nullptr) {
    locations_.emplace(*deps_.locations, deps_.options);
    locations_->Register(router_);
  }
  RegisterInfoRoutes(router_, deps_.images, deps_.options);
  RegisterMetadefSchemaRoutes(router_);
  for (const auto& add : deps_.route_sets) add(router_);
}

// Versions, health and metrics: unauthenticated, and cheap enough to answer under any load.
void Application::RegisterOperations() {
  std::string versions = VersionsJson(deps_.options.public_url, deps_.options.image_cache);
  router_.Add(
      "GET", "/",
      {.rule = "versions",
       .handler = [versions](Call&) -> Result<Response> { return JsonResponse(300, versions); },
       .authenticated = false});
  router_.Add(
      "GET", "/versions",
      {.rule = "versions",
       .handler = [versions](Call&) -> Result<Response> { return JsonResponse(200, versions); },
       .authenticated = false});
  router_.Add("GET", "/healthcheck",
              {.rule = "healthcheck",
               .handler = [this](Call&) -> Result<Response> {
                 Response r;
                 r.headers.Set("Content-Type", "text/plain");
                 int64_t missing = deps_.images.missing_data_count();
                 r.body = missing == 0 ? "OK"
                                       : "OK (degraded: " + std::to_string(missing) +
                                             " image(s) missing their data; see the log)";
                 return r;
               },
               .authenticated = false});
  router_.Add("GET", "/metrics",
              {.rule = "metrics",
               .handler = [this](Call&) -> Result<Response> {
                 Response r;
                 r.headers.Set("Content-Type", "text/plain; version=0.0.4");
                 r.body = metrics_.Render();
                 for (const auto& more : deps_.metrics) r.body += more();
                 r.body +=
                     "# HELP ingot_images Images in the catalog by status.\n"
                     "# TYPE ingot_images gauge\n";
                 if (auto counts = deps_.images.CountByStatus(); counts.ok()) {
                   for (const auto& [status, n] : *counts) {
                     r.body += "ingot_images{status=\"" + std::string(catalog::StatusName(status)) +
                               "\"} " + std::to_string(n) + "\n";
                   }
                 }
                 r.body +=
                     "# HELP ingot_images_missing_data Images whose bytes are missing or short.\n"
                     "# TYPE ingot_images_missing_data gauge\n"
                     "ingot_images_missing_data " +
                     std::to_string(deps_.images.missing_data_count()) + "\n";
                 return r;
               },
               .authenticated = false});
}

http::HeadResult Application::Handle(Request& req) { return Respond(req, nullptr); }

std::optional<Response> Application::HandleInline(Request& req) {
  if (!deps_.options.inline_reads || req.has_body() || (req.method != "GET" && req.method != "HEAD"))
    return std::nullopt;
  ApiRouter::Match m = router_.Find(req.method, req.path);
  if (m.route == nullptr || !m.route->value.inline_read) return std::nullopt;
  std::optional<Result<auth::RequestContext>> who;
  if (m.route->value.authenticated) {
    who = deps_.authenticator.AuthenticateNow(req.headers);
    if (!who) return std::nullopt;  // Keystone must be asked: a worker may wait for it
  }
  http::HeadResult h = Respond(req, who ? &*who : nullptr);
  if (auto* r = std::get_if<Response>(&h)) return std::move(*r);
  return std::nullopt;  // unreachable: an inline_read route takes no body
}

http::HeadResult Application::Respond(Request& req, const Result<auth::RequestContext>* who) {
  std::string request_id = "req-" + NewUuid();
  std::string accept(req.headers.Get("Accept").value_or(""));
  std::shared_ptr<Prepared> p;
  try {
    auto prepared = Prepare(req, request_id, who);
    if (auto* answered = std::get_if<Response>(&prepared)) {
      Complete(accept, request_id, "", *answered);
      return std::move(*answered);
    }
    p = std::move(std::get<std::shared_ptr<Prepared>>(prepared));
  } catch (const std::exception& e) {
    log::Error("request.exception", {{"request_id", request_id}, {"what", e.what()}});
    auth::RequestContext ctx;
    ctx.request_id = request_id;
    Response r = Fail(Internal(e.what()), ctx);
    Complete(accept, request_id, "", r);
    return r;
  }
  BodyMode mode = p->route->value.body;
  if (mode == BodyMode::kNone || !req.has_body()) {
    io::StringReader empty("");  // handlers may read the body of any route; here it is empty
    req.body = &empty;
    Response r = Finish(*p, req);
    req.body = nullptr;
    return r;
  }
  bool json = mode == BodyMode::kJson;
  return http::NeedBody{
      .mode = json ? http::NeedBody::Mode::kBuffered : http::NeedBody::Mode::kStreamed,
      .limit = json ? deps_.options.max_json_body : deps_.options.max_image_size,
      .next = [this, p](Request& r) { return Finish(*p, r); },
      .too_large = [this, p, accept] { return TooLargeFor(*p, accept); }};
}

Response Application::TooLargeFor(const Prepared& p, const std::string& accept) const {
  Response r =
      p.route->value.body == BodyMode::kJson
          ? Fail(TooLarge("Request body is larger than " +
                          std::to_string(deps_.options.max_json_body >> 10) + " KiB."),
                 p.context)
          : Fail(TooLarge("Image exceeds the storage quota: the limit is " +
                          std::to_string(deps_.options.max_image_size) + " bytes."),
                 p.context);
  Complete(accept, p.context.request_id, p.route->pattern, r);
  return r;
}

std::variant<Response, std::shared_ptr<Application::Prepared>> Application::Prepare(
    Request& req, std::string request_id, const Result<auth::RequestContext>* known) {
  auto p = std::make_shared<Prepared>();
  p->context.request_id = std::move(request_id);
  // The router drops empty segments, so "/v2/images/" would read as the collection and a DELETE
  // of it would be answered 405; Glance's mapper matches no /v2 route for a path that ends in '/'
  // or holds an empty segment (an empty image id): 404 (tempest's *_image_null_id tests).
  if (req.path.starts_with("/v2/") &&
      (req.path.back() == '/' || req.path.find("//", 4) != std::string::npos)) {
    return ErrorResponse(404, "The resource could not be found.");
  }
  ApiRouter::Match m = router_.Find(req.method, req.path);
  if (m.route == nullptr) {
    if (!m.allow.empty()) {
      Response r = ErrorResponseVerbatim(
          405, "The method " + req.method + " is not allowed for this resource. <br /><br />\n");
      r.headers.Set("Allow", m.allow);
      return r;
    }
    return ErrorResponse(404, "The resource could not be found.");
  }
  // Client text becomes data (tags, filters, member ids) only as well-formed UTF-8, as in Glance.
  for (const std::string& param : m.params) {
    if (!IsValidUtf8(param))
      return Fail(InvalidArgument("The request path is not valid UTF-8."), p->context);
  }
  for (const auto& [k, v] : req.query) {
    if (!IsValidUtf8(k) || !IsValidUtf8(v)) {
      return Fail(InvalidArgument("The query string is not valid UTF-8."), p->context);
    }
  }
  const Route& route = m.route->value;
  if (route.authenticated) {
    auto who = known != nullptr ? *known : deps_.authenticator.Authenticate(req.headers);
    if (!who.ok()) {
      Response r = Fail(who.status(), p->context);
      r.headers.Set("WWW-Authenticate", deps_.authenticator.Challenge());
      return r;
    }
    std::string id = std::move(p->context.request_id);
    p->context = std::move(*who);
    p->context.request_id = std::move(id);
  }
  if (route.image_param >= 0) {
    auto image = deps_.images.Get(m.params.at(route.image_param),
                                  catalog::Viewer{p->context.project, p->context.is_admin()});
    if (!image.ok()) return Fail(image.status(), p->context);
    p->image = std::move(*image);
  }
  auth::Target target{.image = p->image ? &*p->image : nullptr};
  if (route.member_param >= 0) target.member = m.params.at(route.member_param);
  if (Status s = deps_.policy.Authorize(route.rule, p->context, target); !s.ok()) {
    return Fail(s, p->context);
  }
  p->route = m.route;
  p->params = std::move(m.params);
  return p;
}

Response Application::Finish(Prepared& p, Request& req) {
  Response r;
  try {
    Call call{req, p.context, p.params, p.image ? &*p.image : nullptr};
    Result<Response> result = p.route->value.handler(call);
    r = result.ok() ? std::move(*result) : Fail(result.status(), p.context);
  } catch (const std::exception& e) {
    log::Error("request.exception", {{"request_id", p.context.request_id}, {"what", e.what()}});
    r = Fail(Internal(e.what()), p.context);
  }
  Complete(req.headers.Get("Accept").value_or(""), p.context.request_id, p.route->pattern, r);
  return r;
}

Response Application::Fail(const Status& status, const auth::RequestContext& ctx) const {
  if (!IsServerFault(status.code())) return ErrorResponse(status);
  log::Error("request.failed", {{"request_id", ctx.request_id},
                                {"code", CodeName(status.code())},
                                {"cause", status.message()}});
  std::string_view what = status.code() == Code::kStorageFull
                              ? "The image store or the catalog is out of space"
                          : status.code() == Code::kUnavailable
                              ? "The service is temporarily unable to handle the request"
                              : "The server failed to handle the request";
  Response r = ErrorResponse(
      HttpStatusOf(status.code()),
      std::string(what) + " (request " + ctx.request_id + "); the cause is in the server log.");
  // 503 is a promise that retrying may work (the catalog's database restarting, its disk full or
  // read-only for a while): say when, as the admission limits do.
  if (status.code() == Code::kUnavailable) r.headers.Set("Retry-After", "1");
  return r;
}

void Application::Complete(std::string_view accept, const std::string& request_id,
                           const std::string& route, Response& r) const {
  NegotiateErrorBody(accept, r);
  r.headers.Set(deps_.options.request_id_header, request_id);
  r.route = route;
}

void Application::Observe(const http::Exchange& e) {
  metrics_.Record(e);
  log::Info("request", {{"method", e.method},
                        {"path", e.target},
                        {"status", e.status},
                        {"bytes_in", e.bytes_in},
                        {"bytes_out", e.bytes_out},
                        {"duration_ms", static_cast<double>(e.duration.count()) / 1000.0},
                        {"request_id", e.request_id},
                        {"remote", e.remote_address},
                        {"completed", e.completed ? "true" : "false"}});
}

}  // namespace ingot::api
