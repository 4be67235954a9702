#include "api/streamer/bundles.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "api/streamer/query.h"
#include "api/streamer/streamer.h"
#include "api/v2/documents.h"
#include "deploy/artifacts/multipart.h"
#include "io/file.h"

namespace ingot::api::streamer {
namespace json = boost::json;
using deploy::artifacts::ArtifactService;
using deploy::artifacts::BundleService;
using deploy::artifacts::Kind;
using http::Response;

namespace {

constexpr const char* kRead = "streamer:read";
constexpr const char* kWrite = "streamer:write";

std::string Owner(const Call& call) {
  return call.context.user.value_or(call.context.project.value_or(""));
}

Result<Response> ZipFile(const std::string& path, std::string name) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return FromErrno(errno, "stat " + path);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  }
  Response r;
  r.headers.Set("Content-Type", "application/zip");
  r.headers.Set("Content-Disposition", "attachment; filename=\"" + name + ".zip\"");
  r.file = http::FileRange{std::move(fd), 0, static_cast<uint64_t>(st.st_size)};
  return r;
}

Result<Response> List(ArtifactService& s, Kind kind, const char* type, Call& call) {
  INGOT_ASSIGN_OR_RETURN(ListQuery q, ParseListQuery(call.request.query));
  INGOT_ASSIGN_OR_RETURN(auto docs, s.List(kind));
  for (auto& d : docs) d = Public(std::move(d));
  return Json(200,
              Page(std::move(docs), q, std::string(deploy::artifacts::CollectionUri(kind)), type));
}

// An uploaded zip: multipart/form-data (part "file", as the SDKs send it) or the bytes themselves.
// The name: ?name=, else the file's name without ".zip", else the manifest's.
Result<json::object> UploadFrom(BundleService& b, Call& call, bool backup) {
  std::string ctype(call.request.headers.Get("Content-Type").value_or(""));
  std::string name(call.request.QueryValue("name").value_or(""));
  if (auto boundary = deploy::artifacts::MultipartBoundary(ctype)) {
    deploy::artifacts::MultipartFileReader file(*call.request.body, *boundary);
    INGOT_RETURN_IF_ERROR(file.Open());
    if (name.empty() && file.fields().count("name")) name = file.fields().at("name");
    if (name.empty() && !backup) {
      name = file.filename();
      if (size_t slash = name.find_last_of("/\\"); slash != std::string::npos)
        name = name.substr(slash + 1);
      if (name.size() > 4 && name.ends_with(".zip")) name.resize(name.size() - 4);
    }
    return b.Upload(name, file, backup);
  }
  std::string_view media = MediaType(ctype);
  if (media == "application/zip" || media == "application/octet-stream" ||
      media == "application/x-zip-compressed") {
    return b.Upload(name, *call.request.body, backup);
  }
  return UnsupportedMedia(
      "send the bundle as multipart/form-data (part \"file\") or application/zip");
}

}  // namespace

void RegisterBundleRoutes(ApiRouter& r, BundleService& b, ArtifactService& s, size_t max_json) {
  const std::string coll = "/rest/artifact-bundles";
  // Literal paths before {id}: the router takes the first pattern that fits.
  r.Add("GET", coll + "/backups", StreamerRoute(kRead, [&s](Call& call) {
          return List(s, Kind::kBackup, "ArtifactsBundleBackupCollection", call);
        }));
  r.Add("POST", coll + "/backups",
        StreamerRoute(
            kWrite,
            [&b](Call& call) -> Result<Response> {
              if (call.request.has_body())
                (void)call.request.ReadBody(64 << 10);  // {deploymentGroupURI}
              INGOT_ASSIGN_OR_RETURN(auto task, b.CreateBackup(Owner(call), true));
              return TaskAccepted(task);
            },
            BodyMode::kJson));
  r.Add("POST", coll + "/backups/archive",
        StreamerRoute(
            kWrite,
            [&b](Call& call) -> Result<Response> {
              INGOT_ASSIGN_OR_RETURN(auto backup, UploadFrom(b, call, true));
              INGOT_ASSIGN_OR_RETURN(auto task, b.Restore(std::string(backup.at("id").as_string()),
                                                          Owner(call), true));
              return TaskAccepted(task);
            },
            BodyMode::kStream));
  r.Add("PUT", coll + "/backups/archive",
        StreamerRoute(
            kWrite,
            [&b](Call& call) -> Result<Response> {
              if (call.request.has_body())
                (void)call.request.ReadBody(64 << 10);  // {deploymentGroupURI}
              INGOT_ASSIGN_OR_RETURN(auto task, b.Restore("", Owner(call), true));
              return TaskAccepted(task);
            },
            BodyMode::kJson));
  r.Add("GET", coll + "/backups/archive/{id}",
        StreamerRoute(kRead, [&b, &s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(auto doc, s.Get(Kind::kBackup, call.params[0]));
          INGOT_ASSIGN_OR_RETURN(std::string path, b.PathOf(Kind::kBackup, call.params[0]));
          return ZipFile(path, std::string(doc.at("name").as_string()));
        }));
  r.Add("GET", coll + "/backups/{id}", StreamerRoute(kRead, [&s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(auto doc, s.Get(Kind::kBackup, call.params[0]));
          return Json(200, Public(std::move(doc)));
        }));
  r.Add("DELETE", coll + "/backups/{id}",
        StreamerRoute(kWrite, [&b](Call& call) -> Result<Response> {
          INGOT_RETURN_IF_ERROR(b.Delete(call.params[0], Kind::kBackup));
          Response resp;
          resp.status = 204;
          return resp;
        }));
  r.Add("GET", coll + "/download/{id}",
        StreamerRoute(kRead, [&b, &s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(auto doc, s.Get(Kind::kArtifactBundle, call.params[0]));
          INGOT_ASSIGN_OR_RETURN(std::string path, b.PathOf(Kind::kArtifactBundle, call.params[0]));
          return ZipFile(path, std::string(doc.at("name").as_string()));
        }));

  r.Add("GET", coll, StreamerRoute(kRead, [&s](Call& call) {
          return List(s, Kind::kArtifactBundle, "ArtifactsBundleCollection", call);
        }));
  r.Add("POST", coll,
        StreamerRoute(
            kWrite,
            [&b, max_json](Call& call) -> Result<Response> {
              std::string ctype(call.request.headers.Get("Content-Type").value_or(""));
              if (MediaType(ctype) == "application/json") {
                INGOT_ASSIGN_OR_RETURN(json::value body, ReadJson(call.request, max_json));
                if (!body.is_object())
                  return InvalidArgument("the request body must be a JSON object");
                INGOT_ASSIGN_OR_RETURN(auto task, b.Create(body.as_object(), Owner(call), true));
                return TaskAccepted(task);
              }
              INGOT_ASSIGN_OR_RETURN(auto bundle, UploadFrom(b, call, false));
              auto extract = call.request.QueryValue("extract");
              if (extract && (*extract == "true" || *extract == "1")) {
                INGOT_ASSIGN_OR_RETURN(
                    auto task,
                    b.Extract(std::string(bundle.at("id").as_string()), Owner(call), true));
                return TaskAccepted(task);
              }
              INGOT_ASSIGN_OR_RETURN(auto task,
                                     b.RecordTask("Upload artifact bundle", Owner(call), bundle));
              return TaskAccepted(task);
            },
            BodyMode::kStream));
  r.Add("GET", coll + "/{id}", StreamerRoute(kRead, [&s](Call& call) -> Result<Response> {
          INGOT_ASSIGN_OR_RETURN(auto doc, s.Get(Kind::kArtifactBundle, call.params[0]));
          return Json(200, Public(std::move(doc)));
        }));
  r.Add("PUT", coll + "/{id}",
        StreamerRoute(
            kWrite,
            [&b, max_json](Call& call) -> Result<Response> {
              std::string ctype(call.request.headers.Get("Content-Type").value_or(""));
              if (MediaType(ctype) == "application/json") {
                INGOT_ASSIGN_OR_RETURN(json::value body, ReadJson(call.request, max_json));
                if (!body.is_object())
                  return InvalidArgument("the request body must be a JSON object");
                INGOT_ASSIGN_OR_RETURN(auto doc, b.Rename(call.params[0], body.as_object()));
                return Json(200, Public(std::move(doc)));
              }
              // Image Streamer's extract: a PUT with Content-Type text/plain (its body is not
              // read).
              if (call.request.has_body()) (void)call.request.ReadBody(max_json);
              INGOT_ASSIGN_OR_RETURN(auto task, b.Extract(call.params[0], Owner(call), true));
              return TaskAccepted(task);
            },
            BodyMode::kStream));
  r.Add("DELETE", coll + "/{id}", StreamerRoute(kWrite, [&b](Call& call) -> Result<Response> {
          INGOT_RETURN_IF_ERROR(b.Delete(call.params[0]));
          Response resp;
          resp.status = 204;
          return resp;
        }));
}

}  // namespace ingot::api::streamer
