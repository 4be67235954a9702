#include "api/boot/content_api.h"

#include <boost/json.hpp>

#include "api/v2/documents.h"
#include "common/time.h"

namespace ingot::api::boot {
namespace json = boost::json;
using ingot::boot::BootFile;
using ingot::boot::ContentService;
using ingot::boot::FileSpace;
using ingot::boot::Iso;
using ingot::boot::OsTree;
using ingot::boot::Publication;

namespace {

constexpr const char* kRead = "boot_content:read";
constexpr const char* kWrite = "boot_content:write";

json::object IsoObject(const Iso& iso, std::optional<uint64_t> progress) {
  json::object o{{"name", iso.name},
                 {"size", iso.size},
                 {"uploaded", iso.uploaded > 0 ? json::value(FormatIso8601(iso.uploaded))
                                               : json::value(nullptr)},
                 {"status", ingot::boot::IsoStatusName(iso.status)},
                 {"source", iso.source},
                 {"origin", iso.origin}};
  if (!iso.error.empty()) o["error"] = iso.error;
  if (progress) o["progress"] = *progress;
  return o;
}

json::object TreeObject(const OsTree& t) {
  json::array initrds;
  for (const std::string& i : t.boot.initrds) initrds.emplace_back(i);
  json::object o{{"id", t.id},
                 {"name", t.name},
                 {"version", t.version},
                 {"iso", t.iso},
                 {"status", ingot::boot::TreeStatusName(t.status)},
                 {"layout", t.boot.layout},
                 {"kernel", t.boot.kernel},
                 {"initrds", std::move(initrds)},
                 {"args", t.boot.args},
                 {"created_at", FormatIso8601(t.created)},
                 {"url", "/" + t.name + "/" + t.version + "/"}};
  if (!t.error.empty()) o["error"] = t.error;
  if (!t.boot.kernel.empty()) o["ipxe"] = "/" + t.name + "/" + t.version + "/boot.ipxe";
  return o;
}

json::object FileObject(const BootFile& f) {
  return {{"name", f.name},
          {"size", f.size},
          {"uploaded", FormatIso8601(f.uploaded)},
          {"md5", f.md5},
          {"url", "/" + std::string(ingot::boot::FileSpaceDir(f.space)) + "/" + f.name}};
}

json::object PublicationObject(const Publication& p) {
  return {{"name", p.name},
          {"image_id", p.image_id},
          {"raw", p.raw},
          {"created_at", FormatIso8601(p.created)},
          {"urls", json::array{"/images/" + p.name, "/images/" + p.image_id}}};
}

// The JSON object body of a request; kInvalidArgument with a sentence otherwise.
Result<json::object> ObjectBody(Call& call) {
  INGOT_ASSIGN_OR_RETURN(std::string text, call.request.ReadBody(1 << 20));
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return InvalidArgument("The request body must be a JSON object.");
  return std::move(v.as_object());
}

Result<std::string> StringField(const json::object& o, std::string_view key, bool required) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) {
    if (required) return InvalidArgument("The field '" + std::string(key) + "' is required.");
    return std::string();
  }
  if (!it->value().is_string()) {
    return InvalidArgument("The field '" + std::string(key) + "' must be a string.");
  }
  return std::string(it->value().as_string());
}

http::Response Json(int status, json::object o) { return JsonResponse(status, json::value(std::move(o))); }

void RegisterSpace(ApiRouter& router, ContentService& content, FileSpace space,
                   const std::string& collection) {
  router.Add("GET", "/boot/v1/" + collection,
             {.rule = kRead, .handler = [&content, space](Call&) -> Result<http::Response> {
                INGOT_ASSIGN_OR_RETURN(std::vector<BootFile> files, content.ListFiles(space));
                json::array a;
                for (const BootFile& f : files) a.emplace_back(FileObject(f));
                return Json(200, {{"files", std::move(a)}});
              }});
  router.Add("PUT", "/boot/v1/" + collection + "/{name}",
             {.rule = kWrite,
              .handler = [&content, space](Call& call) -> Result<http::Response> {
                INGOT_ASSIGN_OR_RETURN(
                    BootFile f, content.PutFile(space, call.params.at(0), *call.request.body,
                                                call.request.content_length));
                return Json(201, FileObject(f));
              },
              .body = BodyMode::kStream});
  // A nested path of the files space ("a/b/c") cannot be one path segment: ?path= names it.
  router.Add("PUT", "/boot/v1/" + collection,
             {.rule = kWrite,
              .handler = [&content, space](Call& call) -> Result<http::Response> {
                auto path = call.request.QueryValue("path");
                if (!path) return InvalidArgument("Name the file: PUT .../{name} or ?path=a/b/c.");
                INGOT_ASSIGN_OR_RETURN(
                    BootFile f, content.PutFile(space, std::string(*path), *call.request.body,
                                                call.request.content_length));
                return Json(201, FileObject(f));
              },
              .body = BodyMode::kStream});
  router.Add("DELETE", "/boot/v1/" + collection,
             {.rule = kWrite, .handler = [&content, space](Call& call) -> Result<http::Response> {
                auto path = call.request.QueryValue("path");
                if (!path) return InvalidArgument("Name the file: DELETE .../{name} or ?path=a/b/c.");
                INGOT_RETURN_IF_ERROR(content.DeleteFile(space, std::string(*path)).status());
                return NoContent();
              }});
  router.Add("DELETE", "/boot/v1/" + collection + "/{name}",
             {.rule = kWrite, .handler = [&content, space](Call& call) -> Result<http::Response> {
                INGOT_RETURN_IF_ERROR(content.DeleteFile(space, call.params.at(0)).status());
                return NoContent();
              }});
}

}  // namespace

std::string IsoJson(const Iso& iso, std::optional<uint64_t> progress) {
  return json::serialize(IsoObject(iso, progress));
}

void RegisterContentRoutes(ApiRouter& router, ContentService& content) {
  // ---- ISOs
  router.Add("GET", "/boot/v1/isos",
             {.rule = kRead, .handler = [&content](Call&) -> Result<http::Response> {
                INGOT_ASSIGN_OR_RETURN(std::vector<Iso> isos, content.ListIsos());
                json::array a;
                for (const Iso& i : isos) a.emplace_back(IsoObject(i, content.Progress(i.name)));
                return Json(200, {{"isos", std::move(a)}});
              }});
  router.Add("GET", "/boot/v1/isos/{name}",
             {.rule = kRead, .handler = [&content](Call& call) -> Result<http::Response> {
                INGOT_ASSIGN_OR_RETURN(Iso iso, content.GetIso(call.params.at(0)));
                return Json(200, IsoObject(iso, content.Progress(iso.name)));
              }});
  router.Add("PUT", "/boot/v1/isos/{name}",
             {.rule = kWrite,
              .handler = [&content](Call& call) -> Result<http::Response> {
                INGOT_ASSIGN_OR_RETURN(Iso iso,
                                       content.UploadIso(call.params.at(0), *call.request.body,
                                                         call.request.content_length));
                return Json(201, IsoObject(iso, std::nullopt));
              },
              .body = BodyMode::kStream});
  router.Add("POST", "/boot/v1/isos",
             {.rule = kWrite,
              .handler = [&content](Call& call) -> Result<http::Response> {
                INGOT_ASSIGN_OR_RETURN(json::object body, ObjectBody(call));
                INGOT_ASSIGN_OR_RETURN(std::string name, StringField(body, "name", true));
                INGOT_ASSIGN_OR_RETURN(std::string url, StringField(body, "url", false));
                INGOT_ASSIGN_OR_RETURN(std::string path, StringField(body, "path", false));
                INGOT_ASSIGN_OR_RETURN(std::string from, StringField(body, "copy_from", false));
                int given = !url.empty() + !path.empty() + !from.empty();
                if (given != 1) {
                  return InvalidArgument(
                      "Give exactly one source: \"url\", \"path\" or \"copy_from\" (to upload, "
                      "PUT the bytes to /boot/v1/isos/{name}).");
                }
                if (!url.empty()) {
                  INGOT_ASSIGN_OR_RETURN(Iso iso, content.AddIsoFromUrl(name, url));
                  return Json(202, IsoObject(iso, content.Progress(name)));
                }
                INGOT_ASSIGN_OR_RETURN(Iso iso, path.empty() ? content.CopyIso(from, name)
                                                             : content.AddIsoFromPath(name, path));
                return Json(201, IsoObject(iso, std::nullopt));
              },
              .body = BodyMode::kJson});
  router.Add("DELETE", "/boot/v1/isos/{name}",
             {.rule = kWrite, .handler = [&content](Call& call) -> Result<http::Response> {
                INGOT_RETURN_IF_ERROR(content.DeleteIso(call.params.at(0)).status());
                return NoContent();
              }});

  // ---- OS trees
  router.Add("GET", "/boot/v1/os",
             {.rule = kRead, .handler = [&content](Call&) -> Result<http::Response> {
                INGOT_ASSIGN_OR_RETURN(std::vector<OsTree> trees, content.ListTrees());
                json::array a;
                for (const OsTree& t : trees) a.emplace_back(TreeObject(t));
                return Json(200, {{"os", std::move(a)}});
              }});
  router.Add("POST", "/boot/v1/os",
             {.rule = kWrite,
              .handler = [&content](Call& call) -> Result<http::Response> {
                INGOT_ASSIGN_OR_RETURN(json::object body, ObjectBody(call));
                INGOT_ASSIGN_OR_RETURN(std::string name, StringField(body, "name", true));
                INGOT_ASSIGN_OR_RETURN(std::string version, StringField(body, "version", true));
                INGOT_ASSIGN_OR_RETURN(std::string iso, StringField(body, "iso", true));
                INGOT_ASSIGN_OR_RETURN(OsTree t, content.AddTree(name, version, iso));
                return Json(t.status == ingot::boot::TreeStatus::kPreparing ? 202 : 201,
                            TreeObject(t));
              },
              .body = BodyMode::kJson});
  router.Add("GET", "/boot/v1/os/{name}/{version}",
             {.rule = kRead, .handler = [&content](Call& call) -> Result<http::Response> {
                INGOT_ASSIGN_OR_RETURN(OsTree t,
                                       content.GetTree(call.params.at(0), call.params.at(1)));
                return Json(200, TreeObject(t));
              }});
  router.Add("DELETE", "/boot/v1/os/{name}/{version}",
             {.rule = kWrite, .handler = [&content](Call& call) -> Result<http::Response> {
                INGOT_RETURN_IF_ERROR(
                    content.DeleteTree(call.params.at(0), call.params.at(1)).status());
                return NoContent();
              }});

  // ---- Boot files
  RegisterSpace(router, content, FileSpace::kFiles, "files");
  RegisterSpace(router, content, FileSpace::kMicrokernel, "microkernels");

  // ---- Publications
  router.Add("GET", "/boot/v1/published",
             {.rule = kRead, .handler = [&content](Call&) -> Result<http::Response> {
                INGOT_ASSIGN_OR_RETURN(std::vector<Publication> pubs, content.ListPublications());
                json::array a;
                for (const Publication& p : pubs) a.emplace_back(PublicationObject(p));
                return Json(200, {{"published", std::move(a)}});
              }});
  router.Add("PUT", "/boot/v1/published/{name}",
             {.rule = kWrite,
              .handler = [&content](Call& call) -> Result<http::Response> {
                INGOT_ASSIGN_OR_RETURN(json::object body, ObjectBody(call));
                INGOT_ASSIGN_OR_RETURN(std::string id, StringField(body, "image_id", true));
                bool raw = false;
                if (auto it = body.find("raw"); it != body.end()) {
                  if (!it->value().is_bool()) return InvalidArgument("'raw' must be true or false.");
                  raw = it->value().as_bool();
                }
                INGOT_ASSIGN_OR_RETURN(Publication p, content.Publish(call.params.at(0), id, raw));
                return Json(201, PublicationObject(p));
              },
              .body = BodyMode::kJson});
  router.Add("DELETE", "/boot/v1/published/{name}",
             {.rule = kWrite, .handler = [&content](Call& call) -> Result<http::Response> {
                INGOT_RETURN_IF_ERROR(content.Unpublish(call.params.at(0)).status());
                return NoContent();
              }});
}

}  // namespace ingot::api::boot
