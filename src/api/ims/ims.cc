#include "api/ims/ims.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "api/v2/documents.h"
#include "build/customize.h"
#include "io/file.h"

namespace ingot::api {
namespace {

namespace json = boost::json;
using build::Kind;
using http::Response;

constexpr const char* kVersion = "3.0.0-ingot";

Result<json::object> BodyObject(Call& call, size_t limit) {
  INGOT_ASSIGN_OR_RETURN(json::value v, ReadJson(call.request, limit));
  if (!v.is_object()) return InvalidArgument("the request body must be a JSON object");
  return std::move(v.as_object());
}

Response Json(int status, const json::value& v) { return JsonResponse(status, v); }

Result<Response> FileResponse(const std::string& path, const std::string& type) {
  Response r;
  auto fd = io::OpenFile(path, O_RDONLY);
  struct stat st;
  if (!fd.ok() || fstat(fd->get(), &st) != 0) return NotFound("no such file");
  r.headers.Set("Content-Type", type);
  r.file = http::FileRange{std::move(*fd), 0, static_cast<uint64_t>(st.st_size)};
  return r;
}

// The build log as it grows: reads to the current end, then waits for more while the job runs;
// ends when the job has ended and everything it wrote has been sent — or after kQuiet without new
// output, before the listener's write timeout would cut the response: the client then continues
// with ?offset=<bytes received> (the CLI does), and every response ends cleanly.
class LogFollower final : public io::Reader {
 public:
  LogFollower(io::UniqueFd fd, build::BuildService& builder, std::string job)
      : fd_(std::move(fd)), builder_(builder), job_(std::move(job)) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    for (;;) {
      ssize_t n = read(fd_.get(), buf.data(), buf.size());
      if (n > 0) {
        quiet_since_ = std::chrono::steady_clock::now();
        return static_cast<size_t>(n);
      }
      if (n < 0 && errno != EINTR) return FromErrno(errno, "reading the build log");
      if (n == 0) {
        if (finished_) return size_t{0};
        // Read once more after the job is seen finished: its last lines came before that.
        if (!builder_.JobRunning(job_)) {
          finished_ = true;
          continue;
        }
        if (std::chrono::steady_clock::now() - quiet_since_ > kQuiet) return size_t{0};
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    }
  }

 private:
  io::UniqueFd fd_;
  build::BuildService& builder_;
  std::string job_;
  bool finished_ = false;
  static constexpr std::chrono::seconds kQuiet{40};
  std::chrono::steady_clock::time_point quiet_since_ = std::chrono::steady_clock::now();
};

// The collections that have a /deleted/ side, by their path segment.
struct Collection {
  const char* segment;
  Kind kind;
};
constexpr Collection kSoftDeleted[] = {
    {"recipes", Kind::kRecipe}, {"images", Kind::kImage}, {"public-keys", Kind::kPublicKey}};

}  // namespace

void RegisterImsRoutes(ApiRouter& r, build::BuildService& b, size_t max_json) {
  auto& repo = b.repo();
  const std::string v3 = "/apis/ims/v3";

  // ---- operations
  for (const char* path : {"/apis/ims/healthz/ready", "/apis/ims/healthz/live"}) {
    r.Add("GET", path,
          {.rule = "ims_health",
           .handler = [](Call&) -> Result<Response> { return Json(200, json::object()); },
           .authenticated = false});
  }
  r.Add("GET", "/apis/ims/version",
        {.rule = "ims_health",
         .handler = [](Call&) -> Result<Response> {
           return Json(200, json::object{{"version", kVersion}});
         },
         .authenticated = false});

  // ---- the record collections, under v3 and IMS's v2 paths. v2 deletes for good.
  struct Prefix {
    std::string base;
    bool soft_delete;
  };
  for (const Prefix& p : {Prefix{v3, true}, Prefix{"/apis/ims", false}}) {
    struct Res {
      const char* segment;
      Kind kind;
      std::function<Result<json::object>(Call&, const json::object&)> create;
      std::function<Result<json::object>(const std::string&, const json::object&)> patch;
    };
    std::vector<Res> resources = {
        {"recipes", Kind::kRecipe,
         [&b](Call&, const json::object& body) { return b.CreateRecipe(body); },
         [&b](const std::string& id, const json::object& body) {
           return b.PatchRecipe(id, body);
         }},
        {"images", Kind::kImage,
         [&b](Call&, const json::object& body) { return b.CreateImage(body); },
         [&b](const std::string& id, const json::object& body) { return b.PatchImage(id, body); }},
        {"public-keys", Kind::kPublicKey,
         [&b](Call&, const json::object& body) { return b.CreatePublicKey(body); }, nullptr},
        {"jobs", Kind::kJob,
         [&b](Call& call, const json::object& body) {
           json::object with_owner = body;
           with_owner["owner"] = call.context.project.value_or("");
           return b.CreateJob(with_owner);
         },
         nullptr},
    };
    for (const Res& res : resources) {
      std::string coll = p.base + "/" + res.segment;
      std::string one = coll + "/{id}";
      Kind kind = res.kind;
      bool soft = p.soft_delete && kind != Kind::kJob;  // IMS jobs have no deleted side
      r.Add("GET", coll,
            {.rule = "ims_read", .handler = [&repo, kind](Call&) -> Result<Response> {
               INGOT_ASSIGN_OR_RETURN(auto list, repo.List(kind));
               json::array a;
               for (auto& o : list) a.push_back(std::move(o));
               return Json(200, a);
             }});
      r.Add("POST", coll,
            {.rule = "ims_write",
             .handler = [create = res.create, max_json](Call& call) -> Result<Response> {
               INGOT_ASSIGN_OR_RETURN(auto body, BodyObject(call, max_json));
               INGOT_ASSIGN_OR_RETURN(auto created, create(call, body));
               return Json(201, created);
             },
             .body = BodyMode::kJson});
      r.Add("GET", one,
            {.rule = "ims_read", .handler = [&repo, kind](Call& call) -> Result<Response> {
               INGOT_ASSIGN_OR_RETURN(auto o, repo.Get(kind, call.params[0]));
               return Json(200, o);
             }});
      if (res.patch) {
        r.Add("PATCH", one,
              {.rule = "ims_write",
               .handler = [patch = res.patch, max_json](Call& call) -> Result<Response> {
                 INGOT_ASSIGN_OR_RETURN(auto body, BodyObject(call, max_json));
                 INGOT_ASSIGN_OR_RETURN(auto o, patch(call.params[0], body));
                 return Json(200, o);
               },
               .body = BodyMode::kJson});
      }
      auto remove_one = [&b, &repo, kind, soft](const std::string& id) -> Status {
        if (kind == Kind::kJob) return b.DeleteJob(id);
        if (soft) return repo.SetDeleted(kind, id, true);
        return repo.Remove(kind, id, false);
      };
      r.Add("DELETE", one,
            {.rule = "ims_write", .handler = [remove_one](Call& call) -> Result<Response> {
               INGOT_RETURN_IF_ERROR(remove_one(call.params[0]));
               return NoContent();
             }});
      r.Add("DELETE", coll,
            {.rule = "ims_write", .handler = [&repo, kind, remove_one](Call&) -> Result<Response> {
               INGOT_ASSIGN_OR_RETURN(auto list, repo.List(kind));
               for (auto& o : list) {
                 Status s = remove_one(std::string(o.at("id").as_string()));
                 if (!s.ok() && s.code() != Code::kNotFound) return s;
               }
               return NoContent();
             }});
    }

    // Ingot's own: the recipe archive, artifacts, the live log, cancel.
    r.Add("PUT", p.base + "/recipes/{id}/archive",
          {.rule = "ims_write",
           .handler = [&b](Call& call) -> Result<Response> {
             INGOT_ASSIGN_OR_RETURN(auto rec, b.PutRecipeArchive(call.params[0], *call.request.body));
             return Json(200, rec);
           },
           .body = BodyMode::kStream});
    r.Add("GET", p.base + "/recipes/{id}/archive",
          {.rule = "ims_read", .handler = [&b, &repo](Call& call) -> Result<Response> {
             INGOT_ASSIGN_OR_RETURN(auto rec, repo.Get(Kind::kRecipe, call.params[0]));
             INGOT_ASSIGN_OR_RETURN(std::string path, b.RecipeArchivePath(call.params[0]));
             return FileResponse(path, "application/gzip");
           }});
    // An image record's artifacts from outside (an existing SquashFS to customize): rootfs, kernel,
    // initrd, kernel-parameters; manifest.json and the record's link follow.
    r.Add("PUT", p.base + "/images/{id}/artifacts/{name}",
          {.rule = "ims_write",
           .handler = [&b](Call& call) -> Result<Response> {
             INGOT_ASSIGN_OR_RETURN(auto image,
                                    build::PutImageArtifact(b.repo(), b.options(), call.params[0],
                                                            call.params[1], *call.request.body));
             INGOT_RETURN_IF_ERROR(b.PublishArtifacts(call.params[0]));
             return Json(200, image);
           },
           .body = BodyMode::kStream});
    r.Add("GET", p.base + "/images/{id}/artifacts/{name}",
          {.rule = "ims_read", .handler = [&b](Call& call) -> Result<Response> {
             INGOT_ASSIGN_OR_RETURN(std::string path,
                                    b.ArtifactPath(call.params[0], call.params[1]));
             bool text = call.params[1].ends_with(".json") || call.params[1].ends_with(".txt") ||
                         call.params[1].ends_with(".log") || call.params[1] == "kernel-parameters";
             return FileResponse(path, text ? "text/plain; charset=utf-8"
                                            : "application/octet-stream");
           }});
    r.Add("GET", p.base + "/jobs/{id}/log",
          {.rule = "ims_read", .handler = [&b, &repo](Call& call) -> Result<Response> {
             const std::string& id = call.params[0];
             INGOT_ASSIGN_OR_RETURN(auto job, repo.Get(Kind::kJob, id));
             INGOT_ASSIGN_OR_RETURN(std::string log, b.JobLog(id));
             INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(log, O_RDONLY));
             off_t offset = 0;
             if (auto o = call.request.QueryValue("offset")) {
               offset = static_cast<off_t>(std::strtoll(std::string(*o).c_str(), nullptr, 10));
               if (offset < 0) return InvalidArgument("offset must be a byte count");
             }
             Response resp;
             resp.headers.Set("X-Ingot-Job-Status", std::string(job.at("status").as_string()));
             resp.headers.Set("Content-Type", "text/plain; charset=utf-8");
             auto follow = call.request.QueryValue("follow");
             if (follow && (*follow == "true" || *follow == "1")) {
               lseek(fd.get(), offset, SEEK_SET);
               resp.stream = std::make_unique<LogFollower>(std::move(fd), b, id);
               resp.headers.Set("Cache-Control", "no-store");
             } else {
               struct stat st;
               fstat(fd.get(), &st);
               uint64_t from = std::min<uint64_t>(static_cast<uint64_t>(offset), st.st_size);
               resp.file = http::FileRange{std::move(fd), from, st.st_size - from};
             }
             return resp;
           }});
    r.Add("POST", p.base + "/jobs/{id}/cancel",
          {.rule = "ims_write", .handler = [&b, &repo](Call& call) -> Result<Response> {
             INGOT_RETURN_IF_ERROR(b.CancelJob(call.params[0]));
             INGOT_ASSIGN_OR_RETURN(auto job, b.WaitJob(call.params[0], std::chrono::seconds(10)));
             return Json(200, job);
           }});
  }

  // ---- /deleted/: list, undelete, purge.
  for (const Collection& c : kSoftDeleted) {
    std::string coll = v3 + "/deleted/" + c.segment;
    std::string one = coll + "/{id}";
    Kind kind = c.kind;
    auto undelete_body = [max_json](Call& call) -> Status {
      INGOT_ASSIGN_OR_RETURN(auto body, BodyObject(call, max_json));
      auto it = body.find("operation");
      if (it == body.end() || !it->value().is_string() || it->value().as_string() != "undelete") {
        return InvalidArgument("the only operation on a deleted record is {\"operation\": "
                               "\"undelete\"}");
      }
      return Status::Ok();
    };
    r.Add("GET", coll, {.rule = "ims_read", .handler = [&repo, kind](Call&) -> Result<Response> {
                          INGOT_ASSIGN_OR_RETURN(auto list, repo.List(kind, true));
                          json::array a;
                          for (auto& o : list) a.push_back(std::move(o));
                          return Json(200, a);
                        }});
    r.Add("GET", one, {.rule = "ims_read", .handler = [&repo, kind](Call& call) -> Result<Response> {
                         INGOT_ASSIGN_OR_RETURN(auto o, repo.Get(kind, call.params[0], true));
                         return Json(200, o);
                       }});
    r.Add("PATCH", one,
          {.rule = "ims_write",
           .handler = [&repo, kind, undelete_body](Call& call) -> Result<Response> {
             INGOT_RETURN_IF_ERROR(undelete_body(call));
             INGOT_RETURN_IF_ERROR(repo.SetDeleted(kind, call.params[0], false));
             return NoContent();
           },
           .body = BodyMode::kJson});
    r.Add("PATCH", coll,
          {.rule = "ims_write",
           .handler = [&repo, kind, undelete_body](Call& call) -> Result<Response> {
             INGOT_RETURN_IF_ERROR(undelete_body(call));
             INGOT_ASSIGN_OR_RETURN(auto list, repo.List(kind, true));
             for (auto& o : list) {
               INGOT_RETURN_IF_ERROR(repo.SetDeleted(kind, std::string(o.at("id").as_string()), false));
             }
             return NoContent();
           },
           .body = BodyMode::kJson});
    r.Add("DELETE", one,
          {.rule = "ims_write", .handler = [&repo, kind](Call& call) -> Result<Response> {
             INGOT_RETURN_IF_ERROR(repo.Remove(kind, call.params[0], true));
             return NoContent();
           }});
    r.Add("DELETE", coll, {.rule = "ims_write", .handler = [&repo, kind](Call&) -> Result<Response> {
                             INGOT_ASSIGN_OR_RETURN(auto list, repo.List(kind, true));
                             for (auto& o : list) {
                               INGOT_RETURN_IF_ERROR(
                                   repo.Remove(kind, std::string(o.at("id").as_string()), true));
                             }
                             return NoContent();
                           }});
  }
}

}  // namespace ingot::api
