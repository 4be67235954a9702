// `ingot bundle ...`: HPE Image Streamer's artifact bundles over the daemon's
// /rest/artifact-bundles (same --url, --token, --json and --timeout as the other commands; the
// token goes in Image Streamer's `Auth` header).
//
//   ingot bundle list | show ID | delete ID
//   ingot bundle import FILE.zip [--name NAME] [--no-extract]   upload (and extract) a bundle
//   ingot bundle extract ID                                     import an uploaded bundle's
//   artifacts ingot bundle export NAME [--plan ID ...] [--build-plan ID ...] [--script ID ...]
//                [--golden-image ID ...] [--description D] [--read-only]
//   ingot bundle download ID --file OUT.zip
//   ingot bundle backup create | list | download ID --file OUT.zip | restore [--file BACKUP.zip]
#include "exe/ingot_cli/bundle_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "exe/ingot_cli/images_client.h"
#include "exe/ingot_cli/streamer_client.h"
#include "exe/ingot_cli/terminal.h"
#include "http/client.h"
#include "http/url.h"
#include "io/adapters.h"
#include "io/file.h"

namespace ingot::cli {
namespace {
namespace json = boost::json;

constexpr const char* kUsage = R"(usage:
  ingot bundle list | show ID | delete ID
  ingot bundle import FILE.zip [--name NAME] [--no-extract]
  ingot bundle extract ID
  ingot bundle export NAME [--plan ID ...] [--build-plan ID ...] [--script ID ...]
               [--golden-image ID ...] [--description D] [--read-only]
  ingot bundle download ID --file OUT.zip
  ingot bundle backup create | list | download ID --file OUT.zip | restore [--file BACKUP.zip]
options: --url URL (or INGOT_URL), --token TOKEN (or OS_AUTH_TOKEN), --json, --timeout SECONDS
)";

const std::set<std::string> kValueOptions = {
    "--url",         "--token", "--timeout",    "--file",   "--name",
    "--description", "--plan",  "--build-plan", "--script", "--golden-image"};
const std::vector<std::string> kColumns = {"id", "name", "artifactsCount", "extracted", "readOnly"};

struct Args {
  std::string verb, sub;
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> values;
  std::set<std::string> flags;
  std::optional<std::string> Value(const std::string& k) const {
    auto it = values.find(k);
    return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
};

std::string Id(const std::string& id_or_uri) { return id_or_uri.substr(id_or_uri.rfind('/') + 1); }

// A task answer (202): waits for it to end; its error, or the resource it names.
Result<json::value> Finish(StreamerClient& c, json::value task) {
  if (!task.is_object()) return task;
  for (;;) {
    const json::value* st = task.as_object().if_contains("taskState");
    if (st == nullptr || !st->is_string() ||
        (st->as_string() != "Running" && st->as_string() != "New"))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    INGOT_ASSIGN_OR_RETURN(task,
                           c.Call("GET", std::string(task.as_object().at("uri").as_string())));
    if (!task.is_object()) return InvalidArgument("the task is not a JSON object");
  }
  const json::object& t = task.as_object();
  if (const json::value* st = t.if_contains("taskState");
      st && st->is_string() && st->as_string() != "Completed") {
    std::string msg = "the task ended " + std::string(st->as_string());
    if (const json::value* e = t.if_contains("taskErrors");
        e && e->is_array() && !e->as_array().empty()) {
      msg += ": " + json::serialize(e->as_array()[0].as_object().at("message"));
    }
    return Internal(msg);
  }
  if (const json::value* r = t.if_contains("associatedResource"); r && r->is_object()) {
    return c.Call("GET", std::string(r->as_object().at("resourceUri").as_string()));
  }
  return task;
}

Result<json::value> UploadFile(StreamerClient& c, const std::string& target, const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return FromErrno(errno, "stat " + path);
  io::FdReader reader(fd.get(), path);
  return c.Call("POST", target, std::nullopt, &reader, static_cast<uint64_t>(st.st_size), nullptr,
                "application/zip");
}

Status Download(StreamerClient& c, const std::string& target, const std::optional<std::string>& file) {
  if (!file) return InvalidArgument("download needs --file OUT.zip");
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd,
                         io::OpenFile(*file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC));
  FileWriter out(fd.get());
  return c.Call("GET", target, std::nullopt, nullptr, {}, &out).status();
}

Result<int> Run(StreamerClient& c, const Args& a, bool as_json) {
  const std::string coll = "/rest/artifact-bundles";
  auto need = [&](size_t n, const char* what) -> Status {
    if (a.positional.size() < n) return InvalidArgument(std::string("missing ") + what);
    return Status::Ok();
  };
  auto show = [&](const json::value& v) {
    if (v.is_object() && v.as_object().contains("members")) {
      PrintList(as_json, v, "members", kColumns);
    } else {
      PrintObject(as_json, v);
    }
  };
  if (a.verb == "list") {
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("GET", coll));
    show(v);
    return 0;
  }
  if (a.verb == "show") {
    INGOT_RETURN_IF_ERROR(need(1, "ID"));
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("GET", coll + "/" + Id(a.positional[0])));
    show(v);
    return 0;
  }
  if (a.verb == "delete") {
    INGOT_RETURN_IF_ERROR(need(1, "ID"));
    INGOT_RETURN_IF_ERROR(c.Call("DELETE", coll + "/" + Id(a.positional[0])).status());
    return 0;
  }
  if (a.verb == "import") {
    INGOT_RETURN_IF_ERROR(need(1, "FILE.zip"));
    std::string name = a.Value("--name").value_or("");
    if (name.empty()) {
      name = a.positional[0].substr(a.positional[0].rfind('/') + 1);
      if (name.size() > 4 && name.ends_with(".zip")) name.resize(name.size() - 4);
    }
    std::string target = coll + "?name=" + http::PercentEncode(name) +
                         (a.flags.count("--no-extract") ? "" : "&extract=true");
    INGOT_ASSIGN_OR_RETURN(auto task, UploadFile(c, target, a.positional[0]));
    INGOT_ASSIGN_OR_RETURN(auto v, Finish(c, task));
    show(v);
    return 0;
  }
  if (a.verb == "extract") {
    INGOT_RETURN_IF_ERROR(need(1, "ID"));
    INGOT_ASSIGN_OR_RETURN(auto task, c.Call("PUT", coll + "/" + Id(a.positional[0]), std::nullopt,
                                             nullptr, {}, nullptr, "text/plain"));
    INGOT_ASSIGN_OR_RETURN(auto v, Finish(c, task));
    show(v);
    return 0;
  }
  if (a.verb == "export") {
    INGOT_RETURN_IF_ERROR(need(1, "NAME"));
    json::object body{{"name", a.positional[0]},
                      {"description", a.Value("--description").value_or("")},
                      {"readOnly", a.flags.count("--read-only") > 0}};
    for (auto [opt, field, prefix] :
         {std::tuple{"--plan", "deploymentPlans", "/rest/deployment-plans/"},
          std::tuple{"--build-plan", "buildPlans", "/rest/build-plans/"},
          std::tuple{"--script", "planScripts", "/rest/plan-scripts/"},
          std::tuple{"--golden-image", "goldenImages", "/rest/golden-images/"}}) {
      json::array list;
      for (auto [it, end] = a.values.equal_range(opt); it != end; ++it) {
        list.push_back(json::object{{"resourceUri", std::string(prefix) + Id(it->second)}});
      }
      if (!list.empty()) body[field] = std::move(list);
    }
    INGOT_ASSIGN_OR_RETURN(auto task, c.Call("POST", coll, json::value(body)));
    INGOT_ASSIGN_OR_RETURN(auto v, Finish(c, task));
    show(v);
    return 0;
  }
  if (a.verb == "download") {
    INGOT_RETURN_IF_ERROR(need(1, "ID"));
    INGOT_RETURN_IF_ERROR(
        Download(c, coll + "/download/" + Id(a.positional[0]), a.Value("--file")));
    return 0;
  }
  if (a.verb == "backup") {
    if (a.sub == "list") {
      INGOT_ASSIGN_OR_RETURN(auto v, c.Call("GET", coll + "/backups"));
      show(v);
      return 0;
    }
    if (a.sub == "create") {
      INGOT_ASSIGN_OR_RETURN(auto task,
                             c.Call("POST", coll + "/backups", json::value(json::object{})));
      INGOT_ASSIGN_OR_RETURN(auto v, Finish(c, task));
      show(v);
      return 0;
    }
    if (a.sub == "download") {
      INGOT_RETURN_IF_ERROR(need(1, "ID"));
      INGOT_RETURN_IF_ERROR(
          Download(c, coll + "/backups/archive/" + Id(a.positional[0]), a.Value("--file")));
      return 0;
    }
    if (a.sub == "restore") {
      json::value task;
      if (auto file = a.Value("--file")) {
        INGOT_ASSIGN_OR_RETURN(task, UploadFile(c, coll + "/backups/archive", *file));
      } else {
        INGOT_ASSIGN_OR_RETURN(
            task, c.Call("PUT", coll + "/backups/archive", json::value(json::object{})));
      }
      INGOT_ASSIGN_OR_RETURN(auto v, Finish(c, task));
      show(v);
      return 0;
    }
    return InvalidArgument("unknown verb '" + a.sub + "' for bundle backup (see --help)");
  }
  return InvalidArgument("unknown verb '" + a.verb + "' for bundle (see --help)");
}

}  // namespace

std::optional<int> RunBundleCommand(int argc, char** argv) {
  Args a;
  bool ours = false;
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
            if (!ours) return std::nullopt;
            fprintf(stderr, "ingot: %s needs a value\n", name.c_str());
            return 2;
          }
          value = argv[++i];
        }
        a.values.emplace(name, *value);
      } else {
        a.flags.insert(name);
      }
      continue;
    }
    if (!ours) {
      if (arg != "bundle") return std::nullopt;
      ours = true;
    } else if (a.verb.empty()) {
      a.verb = arg;
    } else if (a.verb == "backup" && a.sub.empty()) {
      a.sub = arg;
    } else {
      a.positional.push_back(arg);
    }
  }
  if (!ours) return std::nullopt;
  if (a.verb.empty() || a.verb == "help" || a.flags.count("--help") || a.flags.count("-h")) {
    bool asked = a.flags.count("--help") || a.verb == "help";
    fputs(kUsage, asked ? stdout : stderr);
    return asked ? 0 : 2;
  }
  auto endpoint = ResolveEndpoint(a.Value("--url"), a.Value("--token"), a.Value("--timeout"),
                                  std::chrono::seconds(3600));
  if (!endpoint) return 2;
  StreamerClient client(std::move(endpoint->url), endpoint->token, endpoint->timeout);
  auto rc = Run(client, a, a.flags.count("--json") > 0);
  if (!rc.ok()) {
    fprintf(stderr, "ingot: %s\n", rc.status().message().c_str());
    return 1;
  }
  return *rc;
}

}  // namespace ingot::cli
