// The northbound API edge: request ids, routing, authentication, the image lookup, the policy rule,
// the body, then one resource handler; error shaping, access logs and metrics. One instance per
// daemon.
//
// Every route names a policy rule (route.h); the rule is checked here, once, before the handler and
// before any body is read, against the image the route names (loaded here, so a handler and its use
// case see the one record read for this request).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "api/metrics.h"
#include "api/options.h"
#include "api/route.h"
#include "api/v2/images.h"
#include "api/v2/imports.h"
#include "api/v2/locations.h"
#include "api/v2/members.h"
#include "auth/authenticator.h"
#include "auth/policy.h"
#include "service/image_service.h"

namespace ingot::api {

struct AppDeps {
  service::ImageService& images;
  auth::Authenticator& authenticator;
  const auth::Policy& policy;
  ApiOptions options;
  // Import and tasks; without it the import routes are not offered.
  service::ImportService* imports = nullptr;
  // The locations API (POST/GET /v2/images/{id}/locations); without it those routes are not
  // offered.
  service::LocationService* locations = nullptr;
  // More resources (the boot service's /boot/v1, ...): each adds its routes to the one router,
  // so they pass the same authentication, policy rule and error shaping as the image API.
  std::vector<std::function<void(ApiRouter&)>> route_sets;
  // More lines for /metrics (Prometheus text, each with its HELP and TYPE), e.g. the image cache's.
  std::vector<std::function<std::string()>> metrics;
};

class Application {
 public:
  explicit Application(AppDeps deps);
  // The http::Handler (thread-safe): everything up to the body. A route that reads a body answers
  // NeedBody — buffered up to the JSON cap, streamed up to the image size cap — so that a body is
  // only ever read for a request that has passed routing, authentication, the image lookup and
  // the rule.
  http::HeadResult Handle(http::Request& req);
  // The http::InlineHandler: Handle's answer on the I/O thread, for a route marked `inline_read`
  // when nothing on its way can wait (ApiOptions::inline_reads, a cached token validation);
  // nullopt hands the request to a worker. It saves the two thread hand-offs that otherwise cost
  // more than the whole GET of an image.
  std::optional<http::Response> HandleInline(http::Request& req);
  // The http::ExchangeObserver: access log line and metrics.
  void Observe(const http::Exchange& exchange);

  const ApiRouter& router() const { return router_; }

 private:
  // A request past routing, authentication, the image lookup and the rule: what the handler needs.
  struct Prepared {
    const ApiRouter::Route* route = nullptr;
    http::PathParams params;
    auth::RequestContext context;
    std::optional<catalog::Image> image;
  };
  // Everything up to the body: a response when the request is answered already (404, 401, 403...).
  // `who`: the caller's authentication when it is known already (HandleInline).
  std::variant<http::Response, std::shared_ptr<Prepared>> Prepare(
      http::Request& req, std::string request_id, const Result<auth::RequestContext>* who);
  http::HeadResult Respond(http::Request& req, const Result<auth::RequestContext>* who);
  // The handler, its error shaping and Complete; exceptions become 500.
  http::Response Finish(Prepared& prepared, http::Request& req);
  // The 413 for a body over the route's cap, shaped as Glance shapes it.
  http::Response TooLargeFor(const Prepared& prepared, const std::string& accept) const;
  // A Status as the client sees it. Server faults are logged with their cause and answered with a
  // generic text naming the request id: paths, SQL and driver messages never reach a client.
  http::Response Fail(const Status& status, const auth::RequestContext& ctx) const;
  // Request id header, HTML/JSON error negotiation, route label.
  void Complete(std::string_view accept, const std::string& request_id, const std::string& route,
                http::Response& r) const;
  void RegisterOperations();

  AppDeps deps_;
  ApiRouter router_;
  ImagesResource images_;
  MembersResource members_;
  std::optional<ImportsResource> imports_;
  std::optional<LocationsResource> locations_;
  Metrics metrics_;
};

}  // namespace ingot::api
