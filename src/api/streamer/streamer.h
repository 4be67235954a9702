// HPE Image Streamer's REST API (/rest/...) on the northbound listener, over the deploy engine's
// artifacts (deploy/artifacts/artifact_service.h). Behind the Application's authentication and
// policy (rules "streamer:read", "streamer:write"; admin by default); handlers parse, call one use
// case and render.
//
//   GET  /rest/version                                 {currentVersion, minimumVersion} (no auth)
//   GET|POST /rest/plan-scripts; GET|PUT|DELETE /rest/plan-scripts/{id}
//   POST /rest/plan-scripts/differences/{id}           body: content (string) or {planScriptUri}
//   GET  /rest/plan-scripts/{id}/usedby[/readonly]     the build plans using it
//   POST /rest/plan-scripts/{id}/copy                  {"name"} -> 201 a writable copy
//   GET|POST /rest/build-plans; GET|PUT|DELETE /rest/build-plans/{id}
//   GET|POST /rest/golden-images (POST: JSON {name, imageId} from the catalog, or the image as
//            multipart/form-data part "file" or application/octet-stream with ?name=&description=)
//   GET|PUT|DELETE /rest/golden-images/{id}; GET /rest/golden-images/download/{id}
//   GET|POST /rest/deployment-plans; GET|PUT|DELETE /rest/deployment-plans/{id}
//   GET  /rest/deployment-plans/{id}/usedby             the OS volumes made from it
//   GET|POST /rest/os-volumes (POST -> 202 + task); GET|DELETE /rest/os-volumes/{id}
//   GET  /rest/os-volumes/{id}/log, /rest/os-volumes/archive/{id or name}   the deploy log
//   GET  /rest/os-volumes/{id}/storage                  NBD export, attachment, allowed addresses
//   POST /rest/os-volumes/{id}/attach {"allow": [...]}, /rest/os-volumes/{id}/detach
//   GET  /rest/tasks, /rest/tasks/{id}
// Lists take start/count/filter/sort (query.h). DELETE takes ?force=true for read-only artifacts.
// Errors are Image Streamer's {errorCode, message, details, recommendedActions, nestedErrors,
// errorSource, data}. An X-API-Version header, when sent, must be a version this API speaks.
#pragma once

#include <boost/json.hpp>
#include <memory>

#include "api/route.h"
#include "auth/authenticator.h"
#include "deploy/artifacts/artifact_service.h"

namespace ingot::api::streamer {

inline constexpr int kMinApiVersion = 300;
inline constexpr int kCurrentApiVersion = 2400;

// Adds the routes; `service` must outlive the router.
void RegisterStreamerRoutes(ApiRouter& router, deploy::artifacts::ArtifactService& service,
                            size_t max_json_body);

// The wrapper of every /rest route (the X-API-Version check, client errors in Image Streamer's
// shape), for routes defined in other files (bundles.h).
Route StreamerRoute(const char* rule, std::function<Result<http::Response>(Call&)> handler,
                    BodyMode body = BodyMode::kNone);

// Responses every /rest route shares: a JSON body; a record as clients see it (internal fields,
// "_file", stay inside); 202 with a task and its Location.
http::Response Json(int status, const boost::json::value& v);
boost::json::object Public(boost::json::object doc);
http::Response TaskAccepted(const boost::json::object& task);

// Image Streamer's clients send their session token in an `Auth` header: this authenticator gives
// it to `inner` as X-Auth-Token (when no X-Auth-Token is sent), so the same tokens, Keystone or
// static, authenticate both APIs. `inner` must outlive it.
class AuthHeaderAuthenticator final : public auth::Authenticator {
 public:
  explicit AuthHeaderAuthenticator(auth::Authenticator& inner) : inner_(inner) {}
  Result<auth::RequestContext> Authenticate(const http::Headers& headers) override;
  std::optional<Result<auth::RequestContext>> AuthenticateNow(
      const http::Headers& headers) override;
  std::string Challenge() const override { return inner_.Challenge(); }

 private:
  auth::Authenticator& inner_;
};

}  // namespace ingot::api::streamer
