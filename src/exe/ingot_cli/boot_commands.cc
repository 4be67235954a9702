// `ingot iso|os|files|microkernel|publish ...`: the boot content's /boot/v1 API from the command
// line (the northbound API; same --url, --token, --json, --progress and --timeout as the image
// commands).
//
//   ingot iso list | show NAME | delete NAME
//   ingot iso add NAME (--file PATH | --from-url URL | --path SERVER_PATH | --copy-from NAME) [--wait]
//   ingot os list | show NAME VERSION | delete NAME VERSION | add NAME VERSION --iso ISO
//   ingot files list | delete NAME | upload NAME --file PATH        (also: ingot microkernel ...)
//   ingot publish list | add NAME --image ID [--raw] | delete NAME
#include "exe/ingot_cli/boot_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "exe/ingot_cli/images_client.h"
#include "exe/ingot_cli/terminal.h"
#include "http/client.h"
#include "http/url.h"
#include "io/adapters.h"
#include "io/file.h"

namespace ingot::cli {
namespace {
namespace json = boost::json;

const std::set<std::string> kGroups = {"iso", "os", "files", "microkernel", "publish"};
const std::set<std::string> kValueOptions = {"--url",  "--token", "--timeout",   "--file",
                                             "--path", "--copy-from", "--iso", "--image", "--from-url"};
const std::set<std::string> kGlobalValues = {"--url", "--token", "--timeout"};

struct Args {
  std::string group, verb;
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
  std::set<std::string> flags;
  std::optional<std::string> Value(const std::string& k) const {
    auto it = values.find(k);
    return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
};

class BootClient {
 public:
  BootClient(http::Url url, std::string token, std::chrono::milliseconds timeout)
      : http_(std::move(url), timeout), token_(std::move(token)) {}
  Result<json::value> Call(const std::string& method, const std::string& target,
                           std::optional<json::object> body = std::nullopt,
                           io::Reader* stream = nullptr, std::optional<uint64_t> length = {},
                           const http::Progress& progress = {}) {
    http::ClientRequest req;
    req.method = method;
    req.target = target;
    req.headers.Set("Accept", "application/json");
    if (!token_.empty()) req.headers.Set("X-Auth-Token", token_);
    if (body) {
      req.headers.Set("Content-Type", "application/json");
      req.body = json::serialize(*body);
    }
    if (stream) {
      req.headers.Set("Content-Type", "application/octet-stream");
      req.body_stream = stream;
      req.body_length = length;
    }
    INGOT_ASSIGN_OR_RETURN(http::ClientResponse resp, http_.Send(req, nullptr, progress));
    if (resp.status < 200 || resp.status >= 300) return StatusFromResponse(resp);
    if (resp.body.empty()) return json::value(nullptr);
    boost::system::error_code ec;
    json::value v = json::parse(resp.body, ec);
    if (ec) return Corruption("the server's answer is not JSON");
    return v;
  }

 private:
  http::Client http_;
  std::string token_;
};

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

// The bytes of a local file as a streamed body with a progress bar.
Status Upload(BootClient& client, bool progress, const std::string& target,
              const std::string& path, json::value& out) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return FromErrno(errno, path);
  io::FdReader reader(fd.get(), path);
  ProgressBar bar("upload", progress);
  auto r = client.Call("PUT", target, std::nullopt, &reader, static_cast<uint64_t>(st.st_size),
                       [&](uint64_t done, std::optional<uint64_t> total) { bar.Update(done, total); });
  bar.Finish();
  if (!r.ok()) return r.status();
  out = std::move(*r);
  return Status::Ok();
}

Status Run(BootClient& client, const Args& a, bool as_json, bool progress) {
  auto need = [&](size_t n, const char* usage) -> Status {
    if (a.positional.size() != n) return InvalidArgument(std::string("usage: ingot ") + usage);
    return Status::Ok();
  };
  const std::string& g = a.group;
  const std::string& v = a.verb;
  json::value out;
  if (g == "iso") {
    if (v == "list") {
      INGOT_ASSIGN_OR_RETURN(out, client.Call("GET", "/boot/v1/isos"));
      PrintList(as_json, out, "isos", {"name", "size", "status", "uploaded", "source"});
      return Status::Ok();
    }
    if (v == "show" || v == "delete") {
      INGOT_RETURN_IF_ERROR(need(1, "iso show|delete NAME"));
      const std::string target = "/boot/v1/isos/" + Enc(a.positional[0]);
      INGOT_ASSIGN_OR_RETURN(out, client.Call(v == "show" ? "GET" : "DELETE", target));
      PrintObject(as_json, out);
      return Status::Ok();
    }
    if (v == "add") {
      INGOT_RETURN_IF_ERROR(
          need(1, "iso add NAME (--file PATH | --from-url URL | --path SERVER_PATH | --copy-from NAME)"));
      const std::string& name = a.positional[0];
      if (auto file = a.Value("--file")) {
        INGOT_RETURN_IF_ERROR(Upload(client, progress, "/boot/v1/isos/" + Enc(name), *file, out));
      } else {
        json::object body{{"name", name}};
        if (auto u = a.Value("--from-url")) body["url"] = *u;
        if (auto p = a.Value("--path")) body["path"] = *p;
        if (auto c = a.Value("--copy-from")) body["copy_from"] = *c;
        if (body.size() != 2) {
          return InvalidArgument("give one of --file, --from-url, --path or --copy-from");
        }
        INGOT_ASSIGN_OR_RETURN(out, client.Call("POST", "/boot/v1/isos", body));
        // A download runs on the server: --wait follows it with a progress bar.
        if (a.flags.count("--wait") && out.is_object() &&
            json::value_to<std::string>(out.at("status")) == "downloading") {
          ProgressBar bar("download", progress);
          for (;;) {
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            INGOT_ASSIGN_OR_RETURN(out, client.Call("GET", "/boot/v1/isos/" + Enc(name)));
            const json::object& o = out.as_object();
            if (auto* p = o.if_contains("progress"); p && p->is_number()) {
              bar.Update(p->to_number<uint64_t>(), std::nullopt);
            }
            if (json::value_to<std::string>(o.at("status")) != "downloading") break;
          }
          bar.Finish();
          if (json::value_to<std::string>(out.at("status")) == "failed") {
            PrintObject(as_json, out);
            return Unavailable("the download failed");
          }
        }
      }
      PrintObject(as_json, out);
      return Status::Ok();
    }
  } else if (g == "os") {
    if (v == "list") {
      INGOT_ASSIGN_OR_RETURN(out, client.Call("GET", "/boot/v1/os"));
      PrintList(as_json, out, "os", {"name", "version", "iso", "status", "layout", "url"});
      return Status::Ok();
    }
    if (v == "show" || v == "delete") {
      INGOT_RETURN_IF_ERROR(need(2, "os show|delete NAME VERSION"));
      const std::string target =
          "/boot/v1/os/" + Enc(a.positional[0]) + "/" + Enc(a.positional[1]);
      INGOT_ASSIGN_OR_RETURN(out, client.Call(v == "show" ? "GET" : "DELETE", target));
      PrintObject(as_json, out);
      return Status::Ok();
    }
    if (v == "add") {
      INGOT_RETURN_IF_ERROR(need(2, "os add NAME VERSION --iso ISO"));
      auto iso = a.Value("--iso");
      if (!iso) return InvalidArgument("give --iso ISO (a stored ISO's name)");
      INGOT_ASSIGN_OR_RETURN(
          out, client.Call("POST", "/boot/v1/os",
                           json::object{{"name", a.positional[0]},
                                        {"version", a.positional[1]},
                                        {"iso", *iso}}));
      PrintObject(as_json, out);
      return Status::Ok();
    }
  } else if (g == "files" || g == "microkernel") {
    const std::string base = g == "files" ? "/boot/v1/files" : "/boot/v1/microkernels";
    auto target = [&](const std::string& name) {
      return name.find('/') == std::string::npos ? base + "/" + Enc(name)
                                                 : base + "?path=" + Enc(name);
    };
    if (v == "list") {
      INGOT_ASSIGN_OR_RETURN(out, client.Call("GET", base));
      PrintList(as_json, out, "files", {"name", "size", "uploaded", "md5", "url"});
      return Status::Ok();
    }
    if (v == "delete") {
      INGOT_RETURN_IF_ERROR(need(1, "files|microkernel delete NAME"));
      INGOT_ASSIGN_OR_RETURN(out, client.Call("DELETE", target(a.positional[0])));
      return Status::Ok();
    }
    if (v == "upload") {
      INGOT_RETURN_IF_ERROR(need(1, "files|microkernel upload NAME --file PATH"));
      auto file = a.Value("--file");
      if (!file) return InvalidArgument("give --file PATH");
      INGOT_RETURN_IF_ERROR(Upload(client, progress, target(a.positional[0]), *file, out));
      PrintObject(as_json, out);
      return Status::Ok();
    }
  } else if (g == "publish") {
    if (v == "list") {
      INGOT_ASSIGN_OR_RETURN(out, client.Call("GET", "/boot/v1/published"));
      PrintList(as_json, out, "published", {"name", "image_id", "raw", "urls"});
      return Status::Ok();
    }
    if (v == "add") {
      INGOT_RETURN_IF_ERROR(need(1, "publish add NAME --image ID [--raw]"));
      auto image = a.Value("--image");
      if (!image) return InvalidArgument("give --image ID");
      INGOT_ASSIGN_OR_RETURN(
          out, client.Call("PUT", "/boot/v1/published/" + Enc(a.positional[0]),
                           json::object{{"image_id", *image}, {"raw", a.flags.count("--raw") > 0}}));
      PrintObject(as_json, out);
      return Status::Ok();
    }
    if (v == "delete") {
      INGOT_RETURN_IF_ERROR(need(1, "publish delete NAME"));
      INGOT_ASSIGN_OR_RETURN(out,
                             client.Call("DELETE", "/boot/v1/published/" + Enc(a.positional[0])));
      return Status::Ok();
    }
  }
  return InvalidArgument("unknown command: ingot " + g + " " + v +
                         " (see `ingot " + g + " help`)");
}

const char* kUsage =
    "usage: ingot [--url URL] [--token TOKEN] [--json] [--progress] GROUP VERB [ARGS]\n"
    "  ingot iso list | show NAME | delete NAME\n"
    "  ingot iso add NAME (--file PATH | --from-url URL | --path SERVER_PATH | --copy-from NAME) "
    "[--wait]\n"
    "  ingot os list | show NAME VERSION | delete NAME VERSION | add NAME VERSION --iso ISO\n"
    "  ingot files list | upload NAME --file PATH | delete NAME\n"
    "  ingot microkernel list | upload NAME --file PATH | delete NAME\n"
    "  ingot publish list | add NAME --image ID [--raw] | delete NAME\n";

}  // namespace

std::optional<int> RunBootCommand(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() > 1 && arg[0] == '-') {
      std::string name = arg;
      std::optional<std::string> value;
      if (size_t eq = arg.find('='); eq != std::string::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
      }
      if (kValueOptions.count(name)) {
        if (!value) {
          if (i + 1 >= argc) {
            if (a.group.empty()) return std::nullopt;
            fprintf(stderr, "ingot: %s needs a value\n", name.c_str());
            return 2;
          }
          value = argv[++i];
        }
        a.values[name] = *value;
      } else {
        a.flags.insert(name);
      }
      continue;
    }
    if (a.group.empty()) {
      if (!kGroups.count(arg)) return std::nullopt;  // an image command: main.cc's parser
      a.group = arg;
    } else if (a.verb.empty()) {
      a.verb = arg;
    } else {
      a.positional.push_back(arg);
    }
  }
  if (a.group.empty()) return std::nullopt;
  if (a.verb.empty() || a.verb == "help" || a.flags.count("--help") || a.flags.count("-h")) {
    fputs(kUsage, a.verb.empty() && !a.flags.count("--help") ? stderr : stdout);
    return a.verb.empty() && !a.flags.count("--help") ? 2 : 0;
  }
  auto endpoint = ResolveEndpoint(a.Value("--url"), a.Value("--token"), a.Value("--timeout"),
                                  std::chrono::seconds(300));
  if (!endpoint) return 2;
  BootClient client(std::move(endpoint->url), endpoint->token, endpoint->timeout);
  Status s = Run(client, a, a.flags.count("--json") > 0,
                 a.flags.count("--progress") > 0 || isatty(STDERR_FILENO));
  if (!s.ok()) {
    fprintf(stderr, "ingot: %s\n", s.message().c_str());
    return s.code() == Code::kInvalidArgument && s.message().rfind("usage:", 0) == 0 ? 2 : 1;
  }
  return fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace ingot::cli
