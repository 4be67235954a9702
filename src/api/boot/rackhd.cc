#include "api/boot/rackhd.h"

#include <boost/json.hpp>
#include <ctime>
#include <map>

#include "api/errors.h"
#include "common/log.h"
#include "io/memory.h"

namespace ingot::api::boot {
namespace json = boost::json;
using ingot::boot::BootFile;
using ingot::boot::FileSpace;
using ingot::boot::Iso;
using ingot::boot::IsoStatus;
using ingot::boot::OsTree;

namespace {

using Params = std::map<std::string, std::string>;

http::Response JsonOut(int status, const json::value& v) {
  http::Response r;
  r.status = status;
  r.headers.Set("Content-Type", "application/json; charset=utf-8");
  r.body = json::serialize(v);
  return r;
}

http::Response Message(int status, const std::string& message) {
  return JsonOut(status, json::object{{"message", message}});
}

http::Response Failure(const Status& s) {
  int status = HttpStatusOf(s.code());
  if (IsServerFault(s.code())) {
    log::Error("rackhd.error", {{"error", s.ToString()}});
    return Message(status, "Internal Server Error");
  }
  // RackHD answers a name already taken with 400, as every refusal of a request.
  if (s.code() == Code::kAlreadyExists) status = 400;
  return Message(status, s.message());
}

// JavaScript's Date.toISOString(): millisecond precision, 'Z'.
std::string JsDate(int64_t micros) {
  time_t secs = static_cast<time_t>(micros / 1'000'000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>((micros / 1000) % 1000));
  return buf;
}

json::object FileObject(const std::string& name, uint64_t size, int64_t uploaded) {
  return {{"name", name}, {"size", PrettySize(size)}, {"uploaded", JsDate(uploaded)}};
}

json::object ImageObject(const OsTree& t) {
  return {{"id", t.id},
          {"iso", t.iso},
          {"name", t.name},
          {"version", t.version},
          {"status", t.status == ingot::boot::TreeStatus::kFailed
                         ? "error: " + t.error
                         : std::string(ingot::boot::TreeStatusName(t.status))}};
}

bool Matches(const OsTree& t, const Params& q) {
  auto want = [&](const char* key, const std::string& value) {
    auto it = q.find(key);
    return it == q.end() || it->second == value;
  };
  return want("id", t.id) && want("name", t.name) && want("version", t.version) &&
         want("iso", t.iso) && want("status", std::string(ingot::boot::TreeStatusName(t.status)));
}

// The last component of a path or URL (query and fragment dropped).
std::string BaseName(std::string s) {
  if (size_t q = s.find_first_of("?#"); q != std::string::npos) s.resize(q);
  size_t slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

}  // namespace

std::string PrettySize(uint64_t size) {
  char buf[64];
  double s = static_cast<double>(size);
  if (size > 1000000000) {
    std::snprintf(buf, sizeof(buf), "%.2f GB", s / 1e9);
  } else if (size > 1000000) {
    std::snprintf(buf, sizeof(buf), "%.2f MB", s / 1e6);
  } else if (size > 1000) {
    std::snprintf(buf, sizeof(buf), "%.2f KB", s / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%llu Byte", static_cast<unsigned long long>(size));
  }
  return buf;
}

http::HeadResult RackHdApi::Handle(http::Request& req) {
  Params params;
  for (const auto& [k, v] : req.query) params.emplace(k, v);
  const bool known = req.path == "/images" || req.path == "/iso" || req.path == "/microkernel";
  if (!known) return Message(404, "Cannot " + req.method + " " + req.path);
  if (req.method != "GET" && req.method != "PUT" && req.method != "DELETE") {
    return Message(404, "Cannot " + req.method + " " + req.path);
  }
  std::string type(req.headers.Get("Content-Type").value_or(""));
  const bool json_body = type.rfind("application/json", 0) == 0;
  if (!req.has_body()) {
    io::StringReader empty("");
    req.body = &empty;
    http::Response r = Dispatch(req, params);
    req.body = nullptr;
    return r;
  }
  if (json_body) {
    // Parameters in a JSON body, as body-parser gives them to RackHD.
    return http::NeedBody{
        .mode = http::NeedBody::Mode::kBuffered,
        .limit = 1 << 20,
        .next = [this, params](http::Request& r) mutable {
          auto text = r.ReadBody(1 << 20);
          if (text.ok() && !text->empty()) {
            boost::system::error_code ec;
            json::value v = json::parse(*text, ec);
            if (ec) return Message(400, "Error parsing JSON: " + ec.message());
            if (v.is_object()) {
              for (const auto& kv : v.as_object()) {
                if (kv.value().is_string()) {
                  params.emplace(std::string(kv.key()), std::string(kv.value().as_string()));
                }
              }
            }
          }
          io::StringReader empty("");
          r.body = &empty;
          http::Response out = Dispatch(r, params);
          r.body = nullptr;
          return out;
        },
        .too_large = [] { return Message(413, "Request body is too large."); }};
  }
  return http::NeedBody{.mode = http::NeedBody::Mode::kStreamed,
                        .limit = options_.max_upload,
                        .next = [this, params](http::Request& r) { return Dispatch(r, params); },
                        .too_large = [] { return Message(413, "The upload is too large."); }};
}

http::Response RackHdApi::Dispatch(http::Request& req, const Params& q) {
  auto param = [&](const char* key) -> std::string {
    auto it = q.find(key);
    return it == q.end() ? std::string() : it->second;
  };
  const std::string& m = req.method;
  if (req.path == "/images") {
    if (m == "GET" || m == "DELETE") {
      auto trees = content_.ListTrees();
      if (!trees.ok()) return Failure(trees.status());
      json::array out;
      for (const OsTree& t : *trees) {
        if (!Matches(t, q)) continue;
        if (m == "DELETE") {
          if (auto d = content_.DeleteTree(t.name, t.version); !d.ok()) return Failure(d.status());
        }
        out.emplace_back(ImageObject(t));
      }
      if (m == "DELETE" && out.empty()) return Message(404, "No image matching query");
      return JsonOut(200, out);
    }
    // PUT
    const std::string name = param("name"), version = param("version");
    const std::string isostore = param("isostore"), isolocal = param("isolocal"),
                      isoweb = param("isoweb"), isoclient = param("isoclient");
    if (name.empty()) return Message(400, "OS name (string) is required");
    if (version.empty()) return Message(400, "OS version (string) is required");
    if (isostore.empty() && isolocal.empty() && isoweb.empty() && isoclient.empty()) {
      return Message(400,
                     "At least one iso source should be specified: isostore, isolocal, isoweb "
                     "(string) is required");
    }
    if (auto existing = content_.GetTree(name, version); existing.ok()) {
      return Message(400, "Image already exists");
    }
    std::string iso;
    // An ISO already stored under the name a source gives is used as it is.
    auto stored = [&](const std::string& n) {
      auto i = content_.GetIso(n);
      return i.ok() && i->status == IsoStatus::kReady;
    };
    if (!isostore.empty()) {
      iso = isostore;
      if (!stored(iso)) return Message(404, "No ISO named '" + iso + "' in the store");
    } else if (!isolocal.empty()) {
      iso = BaseName(isolocal);
      if (iso.size() < 5 || iso.substr(iso.size() - 4) != ".iso") {
        return Message(400, "ISO path should end with .iso");
      }
      if (!stored(iso)) {
        if (auto added = content_.AddIsoFromPath(iso, isolocal); !added.ok()) {
          return added.status().code() == Code::kPermissionDenied ||
                         added.status().code() == Code::kNotFound
                     ? Message(400, "Path is not readable")
                     : Failure(added.status());
        }
      }
    } else if (!isoweb.empty()) {
      iso = BaseName(isoweb);
      if (iso.size() < 5 || iso.substr(iso.size() - 4) != ".iso") iso = name + "-" + version + ".iso";
      if (!stored(iso)) {
        auto started = content_.AddIsoFromUrl(iso, isoweb);
        if (!started.ok()) {
          return started.status().code() == Code::kAlreadyExists ? Failure(started.status())
                                                                 : Message(400, "Error downloading ISO file");
        }
        auto done = content_.WaitIso(iso);
        if (!done.ok() || done->status != IsoStatus::kReady) {
          (void)content_.DeleteIso(iso);
          return Message(400, "Error downloading ISO file");
        }
      }
    } else {
      iso = isoclient;
      auto up = content_.UploadIso(iso, *req.body, req.content_length);
      if (!up.ok()) {
        if (up.status().code() == Code::kAlreadyExists) {
          return Message(400, "An ISO named '" + iso + "' is already stored; use isostore");
        }
        return up.status().code() == Code::kInvalidArgument ? Message(400, up.status().message())
                                                            : Message(400, "Error uploading file.");
      }
    }
    auto tree = content_.AddTree(name, version, iso);
    if (!tree.ok()) {
      if (tree.status().code() == Code::kAlreadyExists) return Message(400, "Image already exists");
      return Failure(tree.status());
    }
    if (tree->status == ingot::boot::TreeStatus::kFailed) {
      (void)content_.DeleteTree(name, version);
      return Message(500, "error: Fail mounting ISO");
    }
    return JsonOut(200, ImageObject(*tree));
  }

  // /iso and /microkernel
  const bool is_iso = req.path == "/iso";
  if (m == "GET") {
    json::array out;
    if (is_iso) {
      auto isos = content_.ListIsos();
      if (!isos.ok()) return Failure(isos.status());
      for (const Iso& i : *isos) {
        if (i.status == IsoStatus::kReady) out.emplace_back(FileObject(i.name, i.size, i.uploaded));
      }
    } else {
      auto files = content_.ListFiles(FileSpace::kMicrokernel);
      if (!files.ok()) return Failure(files.status());
      for (const BootFile& f : *files) out.emplace_back(FileObject(f.name, f.size, f.uploaded));
    }
    return JsonOut(200, out);
  }
  const std::string name = param("name");
  if (name.empty()) return Message(400, "name (string) is required");
  if (m == "PUT") {
    Status s = is_iso ? content_.UploadIso(name, *req.body, req.content_length).status()
                      : content_.PutFile(FileSpace::kMicrokernel, name, *req.body,
                                         req.content_length)
                            .status();
    if (!s.ok()) {
      return IsServerFault(s.code()) ? Failure(s) : Message(400, "Error uploading file. " + s.message());
    }
    http::Response r;
    r.status = 204;
    return r;
  }
  // DELETE
  if (is_iso) {
    auto d = content_.DeleteIso(name);
    if (!d.ok()) {
      return d.status().code() == Code::kNotFound ? Message(404, "No file match query")
                                                  : Failure(d.status());
    }
    return JsonOut(200, FileObject(d->name, d->size, d->uploaded));
  }
  auto d = content_.DeleteFile(FileSpace::kMicrokernel, name);
  if (!d.ok()) {
    return d.status().code() == Code::kNotFound || d.status().code() == Code::kInvalidArgument
               ? Message(404, "No file match query")
               : Failure(d.status());
  }
  return JsonOut(200, FileObject(d->name, d->size, d->uploaded));
}

void RackHdApi::Observe(const http::Exchange& e) {
  log::Info("rackhd.request", {{"method", e.method},
                               {"path", e.target},
                               {"status", e.status},
                               {"bytes_in", e.bytes_in},
                               {"bytes_out", e.bytes_out},
                               {"remote", e.remote_address}});
}

}  // namespace ingot::api::boot
