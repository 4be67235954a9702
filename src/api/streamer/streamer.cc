#include "api/streamer/streamer.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <charconv>

#include "api/errors.h"
#include "api/streamer/query.h"
#include "api/v2/documents.h"
#include "deploy/artifacts/multipart.h"
#include "deploy/volume_store.h"
#include "io/file.h"
#include "iscsi/wire.h"

namespace ingot::api::streamer {
namespace json = boost::json;
using deploy::artifacts::ArtifactService;
using deploy::artifacts::Kind;
using http::Response;

Result<auth::RequestContext> AuthHeaderAuthenticator::Authenticate(const http::Headers& headers) {
  if (headers.Get("X-Auth-Token") || !headers.Get("Auth")) return inner_.Authenticate(headers);
  http::Headers mapped = headers;
  mapped.Set("X-Auth-Token", std::string(*headers.Get("Auth")));
  return inner_.Authenticate(mapped);
}

std::optional<Result<auth::RequestContext>> AuthHeaderAuthenticator::AuthenticateNow(
    const http::Headers& headers) {
  if (headers.Get("X-Auth-Token") || !headers.Get("Auth")) return inner_.AuthenticateNow(headers);
  http::Headers mapped = headers;
  mapped.Set("X-Auth-Token", std::string(*headers.Get("Auth")));
  return inner_.AuthenticateNow(mapped);
}

Response Json(int status, const json::value& v) {
  Response r;
  r.status = status;
  r.body = json::serialize(v);
  r.headers.Set("Content-Type", "application/json; charset=UTF-8");
  return r;
}

json::object Public(json::object doc) {
  for (auto it = doc.begin(); it != doc.end();) {
    if (!it->key().empty() && it->key().front() == '_') {
      it = doc.erase(it);
    } else {
      ++it;
    }
  }
  return doc;
}

Response TaskAccepted(const json::object& task) {
  Response r = Json(202, Public(task));
  r.headers.Set("Location", std::string(task.at("uri").as_string()));
  return r;
}

namespace {

constexpr const char* kRead = "streamer:read";
constexpr const char* kWrite = "streamer:write";

std::string ErrorCodeOf(Code code) {
  switch (code) {
    case Code::kInvalidArgument: return "INVALID_PARAMETER";
    case Code::kNotFound: return "RESOURCE_NOT_FOUND";
    case Code::kAlreadyExists: return "DUPLICATE_NAME";
    case Code::kConflict: return "RESOURCE_IN_USE";
    case Code::kPermissionDenied: return "AUTHORIZATION_FAILED";
    case Code::kUnauthenticated: return "AUTHENTICATION_FAILED";
    case Code::kTooLarge: return "REQUEST_TOO_LARGE";
    case Code::kUnsupportedMedia: return "UNSUPPORTED_MEDIA_TYPE";
    case Code::kUnsupported: return "NOT_SUPPORTED";
    case Code::kRefused: return "INVALID_IMAGE";
    default: return "INTERNAL_ERROR";
  }
}

std::string RecommendedAction(Code code) {
  switch (code) {
    case Code::kInvalidArgument: return "Correct the request as the message says and send it again.";
    case Code::kNotFound: return "Check the URI; list the collection to find the resource.";
    case Code::kAlreadyExists: return "Choose another name.";
    case Code::kConflict: return "Remove or change what uses the resource first, or wait for its task.";
    case Code::kRefused: return "Check the image file: it failed the format's safety checks.";
    default: return "Check the request and try again.";
  }
}

// Image Streamer's error document. Its Content-Type carries a charset so the Application's HTML
// negotiation (Glance's, for the image API) leaves it as it is.
Response StreamerError(int http_status, Code code, const std::string& message) {
  json::object body{{"errorCode", ErrorCodeOf(code)},
                    {"message", message},
                    {"details", ""},
                    {"recommendedActions", json::array{RecommendedAction(code)}},
                    {"nestedErrors", json::array()},
                    {"errorSource", nullptr},
                    {"data", json::object()}};
  Response r;
  r.status = http_status;
  r.body = json::serialize(body);
  r.headers.Set("Content-Type", "application/json; charset=UTF-8");
  return r;
}

using Handler = std::function<Result<Response>(Call&)>;

// Every route: the API version check, then the handler; client errors in Image Streamer's shape,
// server faults to the Application (logged there, answered without their cause).
Route Make(const char* rule, Handler h, BodyMode body = BodyMode::kNone) {
  return Route{
      .rule = rule,
      .handler = [h = std::move(h)](Call& call) -> Result<Response> {
        if (auto v = call.request.headers.Get("X-API-Version")) {
          int version = 0;
          auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), version);
          if (ec != std::errc() || p != v->data() + v->size() || version < kMinApiVersion) {
            return StreamerError(400, Code::kInvalidArgument,
                                 "X-API-Version '" + std::string(*v) + "' is not supported: this "
                                 "Image Streamer API speaks versions " +
                                 std::to_string(kMinApiVersion) + " to " +
                                 std::to_string(kCurrentApiVersion) + ".");
          }
        }
        Result<Response> r = h(call);
        if (r.ok()) return r;
        if (IsServerFault(r.status().code())) return r.status();
        return StreamerError(HttpStatusOf(r.status().code()), r.status().code(),
                             r.status().message());
      },
      .body = body};
}

Result<json::object> BodyObject(Call& call, size_t limit) {
  INGOT_ASSIGN_OR_RETURN(json::value v, ReadJson(call.request, limit));
  if (!v.is_object()) return InvalidArgument("the request body must be a JSON object");
  return std::move(v.as_object());
}

bool Force(const Call& call) {
  auto f = call.request.QueryValue("force");
  return f && (*f == "true" || *f == "1");
}

Result<Response> ListOf(ArtifactService& s, Kind kind, const char* type, Call& call) {
  INGOT_ASSIGN_OR_RETURN(ListQuery q, ParseListQuery(call.request.query));
  INGOT_ASSIGN_OR_RETURN(auto docs, s.List(kind));
  for (auto& d : docs) d = Public(std::move(d));
  return Json(200, Page(std::move(docs), q, std::string(deploy::artifacts::CollectionUri(kind)), type));
}

Result<Response> Created(const json::object& doc) {
  Response r = Json(201, Public(doc));
  r.headers.Set("Location", std::string(doc.at("uri").as_string()));
  return r;
}

Result<Response> FileResponse(const std::string& path, const std::string& download_name) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_RDONLY | O_CLOEXEC));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return FromErrno(errno, "stat " + path);
  Response r;
  r.headers.Set("Content-Type", "application/octet-stream");
  if (!download_name.empty()) {
    r.headers.Set("Content-Disposition", "attachment; filename=\"" + download_name + "\"");
  }
  r.file = http::FileRange{std::move(fd), 0, static_cast<uint64_t>(st.st_size)};
  return r;
}

std::string SafeFileName(std::string_view name) {
  std::string out;
  for (char c : name) out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ? c : '_';
  return out.empty() ? "golden-image" : out;
}

}  // namespace

void RegisterStreamerRoutes(ApiRouter& r, ArtifactService& s, size_t max_json) {
  r.Add("GET", "/rest/version",
        {.rule = "streamer:version",
         .handler = [](Call&) -> Result<Response> {
           return Json(200, json::object{{"currentVersion", kCurrentApiVersion},
                                         {"minimumVersion", kMinApiVersion}});
         },
         .authenticated = false});

  // The four artifact collections share list, get, create, update and delete.
  struct Collection {
    Kind kind;
    const char* list_type;
    std::function<Result<json::object>(const json::object&)> create;
    std::function<Result<json::object>(const std::string&, const json::object&, bool)> update;
    std::function<Status(const std::string&, bool)> remove;
  };
  std::vector<Collection> collections = {
      {Kind::kPlanScript, "PlanScriptCollectionV2",
       [&s](const json::object& b) { return s.CreatePlanScript(b); },
       [&s](const std::string& id, const json::object& b, bool f) { return s.UpdatePlanScript(id, b, f); },
       [&s](const std::string& id, bool f) { return s.DeletePlanScript(id, f); }},
      {Kind::kBuildPlan, "OeBuildPlanCollectionV5",
       [&s](const json::object& b) { return s.CreateBuildPlan(b); },
       [&s](const std::string& id, const json::object& b, bool f) { return s.UpdateBuildPlan(id, b, f); },
       [&s](const std::string& id, bool f) { return s.DeleteBuildPlan(id, f); }},
      {Kind::kDeploymentPlan, "OEDeploymentPlanCollectionV5",
       [&s](const json::object& b) { return s.CreateDeploymentPlan(b); },
       [&s](const std::string& id, const json::object& b, bool f) {
         return s.UpdateDeploymentPlan(id, b, f);
       },
       [&s](const std::string& id, bool f) { return s.DeleteDeploymentPlan(id, f); }},
      {Kind::kGoldenImage, "GoldenImageCollection", nullptr,
       [&s](const std::string& id, const json::object& b, bool f) { return s.UpdateGoldenImage(id, b, f); },
       [&s](const std::string& id, bool f) { return s.DeleteGoldenImage(id, f); }},
  };

  // Literal sub-paths first: the router takes the first pattern that fits.
  r.Add("POST", "/rest/plan-scripts/differences/{id}",
        Make(kRead, [&s, max_json](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(json::value body, ReadJson(call.request, max_json));
          INGOT_ASSIGN_OR_RETURN(auto diff, s.PlanScriptDifferences(call.params[0], body));
          return Json(200, diff);
        }, BodyMode::kJson));
  r.Add("GET", "/rest/golden-images/download/{id}",
        Make(kRead, [&s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(auto doc, s.Get(Kind::kGoldenImage, call.params[0]));
          INGOT_ASSIGN_OR_RETURN(std::string path, s.GoldenImagePath(call.params[0]));
          return FileResponse(path, SafeFileName(doc.at("name").as_string()) + "." +
                                        std::string(doc.at("format").as_string()));
        }));
  r.Add("GET", "/rest/golden-images/archive/{id}",
        Make(kRead, [&s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(std::string text, s.GoldenImageArchive(call.params[0]));
          Response r;
          r.status = 200;
          r.headers.Set("Content-Type", "text/plain; charset=utf-8");
          r.body = std::move(text);
          return r;
        }));
  r.Add("GET", "/rest/os-volumes/archive/{id}",
        Make(kRead, [&s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(std::string path, s.DeployLogPath(call.params[0]));
          auto resp = FileResponse(path, "");
          if (!resp.ok() && resp.status().code() == Code::kNotFound) {
            return NotFound("no deploy log for " + call.params[0]);
          }
          if (resp.ok()) resp->headers.Set("Content-Type", "text/plain; charset=utf-8");
          return resp;
        }));

  for (const Collection& c : collections) {
    const std::string coll(deploy::artifacts::CollectionUri(c.kind));
    const Kind kind = c.kind;
    const char* type = c.list_type;
    r.Add("GET", coll, Make(kRead, [&s, kind, type](Call& call) { return ListOf(s, kind, type, call); }));
    if (c.create) {
      r.Add("POST", coll,
            Make(kWrite, [create = c.create, max_json](Call& call) -> Result<Response> {
              INGOT_ASSIGN_OR_RETURN(auto body, BodyObject(call, max_json));
              INGOT_ASSIGN_OR_RETURN(auto doc, create(body));
              return Created(doc);
            }, BodyMode::kJson));
    }
    r.Add("GET", coll + "/{id}", Make(kRead, [&s, kind](Call& call) -> Result<Response> {
            INGOT_ASSIGN_OR_RETURN(auto doc, s.Get(kind, call.params[0]));
            return Json(200, Public(std::move(doc)));
          }));
    r.Add("PUT", coll + "/{id}",
          Make(kWrite, [update = c.update, max_json](Call& call) -> Result<Response> {
            INGOT_ASSIGN_OR_RETURN(auto body, BodyObject(call, max_json));
            INGOT_ASSIGN_OR_RETURN(auto doc, update(call.params[0], body, Force(call)));
            return Json(200, Public(std::move(doc)));
          }, BodyMode::kJson));
    r.Add("DELETE", coll + "/{id}", Make(kWrite, [remove = c.remove](Call& call) -> Result<Response> {
            INGOT_RETURN_IF_ERROR(remove(call.params[0], Force(call)));
            Response resp;
            resp.status = 204;
            return resp;
          }));
  }

  // ---- plan scripts
  for (const char* path : {"/rest/plan-scripts/{id}/usedby/readonly", "/rest/plan-scripts/{id}/usedby"}) {
    r.Add("GET", path, Make(kRead, [&s](Call& call) -> Result<Response> {
            INGOT_ASSIGN_OR_RETURN(auto users, s.PlanScriptUsedBy(call.params[0]));
            return Json(200, users);
          }));
  }
  r.Add("POST", "/rest/plan-scripts/{id}/copy",
        Make(kWrite, [&s, max_json](Call& call) -> Result<Response> {
          std::string name;
          if (call.request.has_body()) {
            INGOT_ASSIGN_OR_RETURN(auto body, BodyObject(call, max_json));
            if (auto* n = body.if_contains("name"); n != nullptr && n->is_string()) {
              name = std::string(n->as_string());
            }
          }
          INGOT_ASSIGN_OR_RETURN(auto doc, s.CopyPlanScript(call.params[0], name));
          return Created(doc);
        }, BodyMode::kJson));

  // ---- golden images: JSON (from the catalog) or the image itself.
  r.Add("POST", "/rest/golden-images",
        Make(kWrite, [&s, max_json](Call& call) -> Result<Response> {
          std::string ctype(call.request.headers.Get("Content-Type").value_or(""));
          std::string_view media = MediaType(ctype);
          if (media == "application/json") {
            INGOT_ASSIGN_OR_RETURN(auto body, BodyObject(call, max_json));
            if (body.contains("osVolumeURI") || body.contains("osVolumeUri")) {
              // Capture from an OS volume with a capture build plan: a task (capture.h).
              std::string owner = call.context.user.value_or(call.context.project.value_or(""));
              INGOT_ASSIGN_OR_RETURN(auto task, s.CaptureGoldenImage(body, owner));
              return TaskAccepted(task);
            }
            INGOT_ASSIGN_OR_RETURN(auto doc, s.CreateGoldenImage(body));
            return Created(doc);
          }
          std::string name(call.request.QueryValue("name").value_or(""));
          std::string description(call.request.QueryValue("description").value_or(""));
          json::object doc;
          if (auto boundary = deploy::artifacts::MultipartBoundary(ctype)) {
            deploy::artifacts::MultipartFileReader file(*call.request.body, *boundary);
            INGOT_RETURN_IF_ERROR(file.Open());
            if (name.empty() && file.fields().count("name")) name = file.fields().at("name");
            if (description.empty() && file.fields().count("description")) {
              description = file.fields().at("description");
            }
            if (name.empty()) name = file.filename();
            INGOT_ASSIGN_OR_RETURN(doc, s.UploadGoldenImage(name, description, file));
          } else if (media == "application/octet-stream") {
            INGOT_ASSIGN_OR_RETURN(doc, s.UploadGoldenImage(name, description, *call.request.body));
          } else {
            return UnsupportedMedia("send JSON {\"name\", \"imageId\"}, or the image as "
                                    "multipart/form-data (part \"file\") or "
                                    "application/octet-stream with ?name=");
          }
          return Created(doc);
        }, BodyMode::kStream));

  // ---- deployment plans
  r.Add("GET", "/rest/deployment-plans/{id}/usedby", Make(kRead, [&s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(auto users, s.DeploymentPlanUsedBy(call.params[0]));
          return Json(200, json::object{{"osVolumes", users}});
        }));

  // ---- OS volumes
  const std::string vols = "/rest/os-volumes";
  r.Add("GET", vols, Make(kRead, [&s](Call& call) {
          return ListOf(s, Kind::kOsVolume, "OSVolumeCollectionV2", call);
        }));
  r.Add("POST", vols, Make(kWrite, [&s, max_json](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(auto body, BodyObject(call, max_json));
          std::string owner = call.context.user.value_or(call.context.project.value_or(""));
          INGOT_ASSIGN_OR_RETURN(auto task, s.CreateOsVolume(body, owner));
          return TaskAccepted(task);
        }, BodyMode::kJson));
  r.Add("GET", vols + "/{id}", Make(kRead, [&s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(auto doc, s.Get(Kind::kOsVolume, call.params[0]));
          return Json(200, Public(std::move(doc)));
        }));
  r.Add("DELETE", vols + "/{id}", Make(kWrite, [&s](Call& call) -> Result<Response> {
          INGOT_RETURN_IF_ERROR(s.DeleteOsVolume(call.params[0]));
          Response resp;
          resp.status = 204;
          return resp;
        }));
  r.Add("GET", vols + "/{id}/log", Make(kRead, [&s](Call& call) -> Result<Response> {
          INGOT_RETURN_IF_ERROR(s.Get(Kind::kOsVolume, call.params[0]).status());
          INGOT_ASSIGN_OR_RETURN(std::string path, s.DeployLogPath(call.params[0]));
          auto resp = FileResponse(path, "");
          if (!resp.ok() && resp.status().code() == Code::kNotFound) {
            return NotFound("no deploy log yet for " + call.params[0]);
          }
          if (resp.ok()) resp->headers.Set("Content-Type", "text/plain; charset=utf-8");
          return resp;
        }));
  r.Add("GET", vols + "/{id}/storage", Make(kRead, [&s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(auto doc, s.Get(Kind::kOsVolume, call.params[0]));
          json::object out{{"name", doc["name"]},
                           {"protocol", "nbd"},
                           {"nbdExport", doc["nbdExport"]},
                           {"attached", doc["attached"]},
                           {"allow", doc.contains("allow") ? doc["allow"] : json::array()},
                           {"initiators",
                            doc.contains("initiators") ? doc["initiators"] : json::array()},
                           {"size", doc.contains("size") ? doc["size"] : json::value(0)},
                           {"state", doc["state"]}};
          return Json(200, out);
        }));
  r.Add("POST", vols + "/{id}/attach", Make(kWrite, [&s, max_json](Call& call) -> Result<Response> {
          std::vector<std::string> allow, initiators;
          if (call.request.has_body()) {
            INGOT_ASSIGN_OR_RETURN(auto body, BodyObject(call, max_json));
            if (auto* a = body.if_contains("allow"); a != nullptr && !a->is_null()) {
              if (!a->is_array()) return InvalidArgument("allow must be an array of addresses");
              for (const json::value& e : a->as_array()) {
                if (!e.is_string()) return InvalidArgument("allow must be an array of addresses");
                allow.emplace_back(e.as_string());
              }
            }
            // iSCSI initiator names the volume is served to (empty or absent: any).
            if (auto* a = body.if_contains("initiators"); a != nullptr && !a->is_null()) {
              const char* what = "initiators must be an array of iSCSI names";
              if (!a->is_array()) return InvalidArgument(what);
              for (const json::value& e : a->as_array()) {
                if (!e.is_string()) return InvalidArgument(what);
                initiators.emplace_back(iscsi::LowerName(e.as_string()));
              }
              INGOT_RETURN_IF_ERROR(deploy::CheckInitiatorList(initiators));
            }
          }
          INGOT_ASSIGN_OR_RETURN(auto doc, s.SetAttached(call.params[0], true, allow, initiators));
          return Json(200, Public(std::move(doc)));
        }, BodyMode::kJson));
  // Ingot's route for what a OneView server profile's re-apply does: the volume made again.
  r.Add("POST", vols + "/{id}/redeploy", Make(kWrite, [&s, max_json](Call& call) -> Result<Response> {
          json::object body;
          if (call.request.has_body()) {
            INGOT_ASSIGN_OR_RETURN(body, BodyObject(call, max_json));
          }
          std::string owner = call.context.user.value_or(call.context.project.value_or(""));
          INGOT_ASSIGN_OR_RETURN(auto task, s.RedeployOsVolume(call.params[0], body, owner));
          return TaskAccepted(task);
        }, BodyMode::kJson));
  r.Add("POST", vols + "/{id}/detach", Make(kWrite, [&s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(auto doc, s.SetAttached(call.params[0], false, {}));
          return Json(200, Public(std::move(doc)));
        }));

  // ---- tasks
  r.Add("GET", "/rest/tasks", Make(kRead, [&s](Call& call) {
          return ListOf(s, Kind::kTask, "TaskResourceCollectionV2", call);
        }));
  r.Add("GET", "/rest/tasks/{id}", Make(kRead, [&s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(auto doc, s.Get(Kind::kTask, call.params[0]));
          return Json(200, Public(std::move(doc)));
        }));
}

Route StreamerRoute(const char* rule, std::function<Result<Response>(Call&)> handler, BodyMode body) {
  return Make(rule, std::move(handler), body);
}

}  // namespace ingot::api::streamer
