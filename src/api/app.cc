#include "api/app.h"

#include <boost/json.hpp>
#include <exception>

#include "api/errors.h"
#include "common/log.h"
#include "common/uuid.h"

namespace ingot::api {

using http::Request;
using http::Response;

Application::Application(AppDeps deps)
    : deps_(deps), images_api_(deps.repo, deps.images, deps.config) {
  auto versions = [this](Request&, const auth::RequestContext&, const Params&) {
    Response r;
    r.status = 300;
    r.body = VersionsJson(deps_.config.public_url);
    r.headers.Set("Content-Type", "application/json");
    return r;
  };
  router_.Add("GET", "/", versions, /*authenticated=*/false);
  router_.Add(
      "GET", "/versions",
      [this](Request&, const auth::RequestContext&, const Params&) {
        Response r;
        r.body = VersionsJson(deps_.config.public_url);
        r.headers.Set("Content-Type", "application/json");
        return r;
      },
      false);
  router_.Add(
      "GET", "/healthcheck",
      [this](Request&, const auth::RequestContext&, const Params&) {
        Response r;
        r.headers.Set("Content-Type", "text/plain");
        int64_t missing = deps_.images.missing_data_count();
        r.body = missing == 0 ? "OK"
                              : "OK (degraded: " + std::to_string(missing) +
                                    " image(s) missing their data; see the log)";
        return r;
      },
      false);
  router_.Add(
      "GET", "/metrics",
      [this](Request&, const auth::RequestContext&, const Params&) {
        Response r;
        r.headers.Set("Content-Type", "text/plain; version=0.0.4");
        r.body = metrics_.Render();
        r.body += "# HELP ingot_images Images in the catalog by status.\n# TYPE ingot_images gauge\n";
        if (auto counts = deps_.repo.CountByStatus(); counts.ok()) {
          for (const auto& [status, n] : *counts) {
            r.body += "ingot_images{status=\"" + std::string(catalog::StatusName(status)) + "\"} " +
                      std::to_string(n) + "\n";
          }
        }
        r.body += "# HELP ingot_images_missing_data Images whose bytes are missing or short.\n"
                  "# TYPE ingot_images_missing_data gauge\n"
                  "ingot_images_missing_data " +
                  std::to_string(deps_.images.missing_data_count()) + "\n";
        return r;
      },
      false);
  // Discovery of what this deployment offers (the glance client's import-info and stores-info).
  auto json_response = [](std::string body) {
    Response r;
    r.body = std::move(body);
    r.headers.Set("Content-Type", "application/json");
    return r;
  };
  router_.Add("GET", "/v2/info/import",
              [json_response](Request&, const auth::RequestContext&, const Params&) {
                // No interoperable import method is offered yet: clients fall back to PUT …/file.
                return json_response(R"({"import-methods": {"description": "Import methods available.", "type": "array", "value": []}})");
              });
  auto stores = [this](bool detail) {
    boost::json::object store{{"id", deps_.images.store().id()},
                              {"description", "embedded file store"},
                              {"default", "true"}};
    if (detail) {
      store["type"] = "file";
      store["weight"] = 0;
      store["properties"] = boost::json::object{{"data_dir", deps_.config.data_dir + "/images"}};
    }
    return boost::json::serialize(boost::json::object{{"stores", boost::json::array{store}}});
  };
  router_.Add("GET", "/v2/info/stores",
              [stores, json_response](Request&, const auth::RequestContext&, const Params&) {
                return json_response(stores(false));
              });
  router_.Add("GET", "/v2/info/stores/detail",
              [stores, json_response](Request&, const auth::RequestContext& ctx, const Params&) {
                if (!ctx.is_admin()) {
                  return ErrorResponse(PermissionDenied(
                      "You are not authorized to complete stores_info_detail action."));
                }
                return json_response(stores(true));
              });
  router_.Add("GET", "/v2/info/usage",
              [json_response](Request&, const auth::RequestContext&, const Params&) {
                return json_response(R"({"usage": {}})");
              });
  images_api_.Register(router_);
}

Response Application::Handle(Request& req) {
  auth::RequestContext ctx;
  ctx.request_id = "req-" + NewUuid();
  Response r;
  try {
    r = Dispatch(req, ctx);
  } catch (const std::exception& e) {
    log::Error("request.exception", {{"request_id", ctx.request_id}, {"what", e.what()}});
    r = ErrorResponse(Internal("The server failed to handle the request (" + ctx.request_id + ")."));
  }
  NegotiateErrorBody(req.headers.Get("Accept").value_or(""), r);
  r.headers.Set("x-openstack-request-id", ctx.request_id);
  return r;
}

Response Application::Dispatch(Request& req, auth::RequestContext& ctx) {
  Router::Match m = router_.Find(req.method, req.path);
  if (m.route == nullptr) {
    if (!m.allow.empty()) {
      Response r = ErrorResponseVerbatim(
          405, "The method " + req.method + " is not allowed for this resource. <br /><br />\n");
      r.headers.Set("Allow", m.allow);
      return r;
    }
    Response r = ErrorResponse(404, "The resource could not be found.");
    return r;
  }
  if (m.route->authenticated) {
    auto who = deps_.authenticator.Authenticate(req.headers);
    if (!who.ok()) {
      Response r = ErrorResponse(who.status());
      r.headers.Set("WWW-Authenticate", "Keystone uri=\"\"");
      r.route = m.route->pattern;
      return r;
    }
    std::string id = std::move(ctx.request_id);
    ctx = std::move(*who);
    ctx.request_id = std::move(id);
  }
  Response r = m.route->handler(req, ctx, m.params);
  r.route = m.route->pattern;
  return r;
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
