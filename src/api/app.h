// The northbound API edge: request ids, authentication, routing, the policy table (through the
// resource handlers), error shaping, access logs and metrics. One instance per daemon.
#pragma once

#include <memory>

#include "api/images_v2.h"
#include "api/metrics.h"
#include "api/router.h"
#include "auth/authenticator.h"

namespace ingot::api {

struct AppDeps {
  catalog::ImageRepository& repo;
  service::ImageService& images;
  auth::Authenticator& authenticator;
  const service::Config& config;
};

class Application {
 public:
  explicit Application(AppDeps deps);
  // The http::Handler: thread-safe.
  http::Response Handle(http::Request& req);
  // The http::ExchangeObserver: access log line and metrics.
  void Observe(const http::Exchange& exchange);

 private:
  http::Response Dispatch(http::Request& req, auth::RequestContext& ctx);

  AppDeps deps_;
  Router router_;
  ImagesApi images_api_;
  Metrics metrics_;
};

}  // namespace ingot::api
