// `ingot deploy ...` and `ingot volume ...`: HPE Image Streamer's artifacts and OS volumes from the
// command line, over the daemon's /rest API (same --url, --token, --json and --timeout as the image
// commands; the token goes in Image Streamer's `Auth` header).
//
//   ingot deploy script list | show ID | delete ID [--force] | usedby ID
//   ingot deploy script create NAME --type deploy|capture|general --file SCRIPT [--description D]
//   ingot deploy script diff ID --file SCRIPT
//   ingot deploy buildplan list | show ID | delete ID [--force]
//   ingot deploy buildplan create --file PLAN.json       (Image Streamer's build plan document)
//   ingot deploy plan list | show ID | delete ID [--force] | usedby ID
//   ingot deploy plan create NAME --build-plan ID [--golden-image ID] [--attr NAME=VALUE ...]
//   ingot deploy golden list | show ID | delete ID [--force]
//   ingot deploy golden upload NAME --file IMAGE [--description D]
//   ingot deploy golden create NAME --image-id CATALOG_IMAGE_ID
//   ingot deploy golden download ID --file OUT
//   ingot deploy golden capture NAME --volume VOL --build-plan BP [--description D] [--engine E]
//                [--detach]       (waits for the capture's task unless --detach)
//   ingot volume list | show ID | log ID | delete ID | attach ID [--allow ADDR,...] [--initiator IQN,...] | detach ID
//   ingot volume redeploy ID [--plan ID] [--attr NAME=VALUE ...] [--engine E] [--detach]
//   ingot volume deploy NAME --plan ID [--attr NAME=VALUE ...] [--allow ADDR,...] [--no-attach]
//                [--detach]       (waits for the deployment's task unless --detach)
#include "exe/ingot_cli/deploy_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
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
  ingot deploy script list | show ID | delete ID [--force] | usedby ID
  ingot deploy script create NAME --type deploy|capture|general --file SCRIPT [--description D]
  ingot deploy script diff ID --file SCRIPT
  ingot deploy buildplan list | show ID | delete ID [--force]
  ingot deploy buildplan create --file PLAN.json
  ingot deploy plan list | show ID | delete ID [--force] | usedby ID
  ingot deploy plan create NAME --build-plan ID [--golden-image ID] [--attr NAME=VALUE ...]
  ingot deploy golden list | show ID | delete ID [--force]
  ingot deploy golden upload NAME --file IMAGE [--description D]
  ingot deploy golden create NAME --image-id CATALOG_IMAGE_ID
  ingot deploy golden download ID --file OUT
  ingot deploy golden capture NAME --volume VOL --build-plan BP [--description D] [--engine E] [--detach]
  ingot volume list | show ID | log ID | delete ID | attach ID [--allow ADDR,...] [--initiator IQN,...]
  ingot volume detach ID
  ingot volume deploy NAME --plan ID [--attr NAME=VALUE ...] [--allow ADDR,...] [--engine E] [--no-attach] [--detach]
  ingot volume redeploy ID [--plan ID] [--attr NAME=VALUE ...] [--engine E] [--detach]
      (made again from the plan; recorded values kept unless given; passwords must be given again)
options: --url URL (or INGOT_URL), --token TOKEN (or OS_AUTH_TOKEN), --json, --timeout SECONDS
)";

const std::set<std::string> kValueOptions = {"--url",        "--token", "--timeout",     "--type",
                                             "--file",       "--description", "--build-plan",
                                             "--golden-image", "--attr", "--image-id", "--plan",
                                             "--allow", "--volume", "--engine", "--initiator"};

struct Args {
  std::string group, noun, verb;
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> values;
  std::set<std::string> flags;
  std::optional<std::string> Value(const std::string& k) const {
    auto it = values.find(k);
    return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
};

class StdoutWriter final : public io::Writer {
 public:
  Status Write(std::span<const uint8_t> data) override {
    fwrite(data.data(), 1, data.size(), stdout);
    return Status::Ok();
  }
};

Status Need(const Args& a, size_t n, const char* what) {
  if (a.positional.size() < n) return InvalidArgument(std::string("missing ") + what);
  return Status::Ok();
}

Result<std::string> ReadText(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_RDONLY | O_CLOEXEC));
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, size_t(n));
  if (n < 0) return FromErrno(errno, "read " + path);
  return text;
}

// An id or a /rest/... URI, as the collection's URI.
std::string UriOf(const std::string& collection, const std::string& id_or_uri) {
  return id_or_uri.rfind("/rest/", 0) == 0 ? id_or_uri : collection + "/" + id_or_uri;
}

json::array Attributes(const Args& a) {
  json::array out;
  for (auto [it, end] = a.values.equal_range("--attr"); it != end; ++it) {
    size_t eq = it->second.find('=');
    out.push_back(json::object{{"name", it->second.substr(0, eq)},
                               {"value", eq == std::string::npos ? "" : it->second.substr(eq + 1)}});
  }
  return out;
}

// A comma-separated option as a JSON array (--allow addresses, --initiator iSCSI names).
json::array AllowList(const Args& a, const char* option = "--allow") {
  json::array out;
  std::string v = a.Value(option).value_or("");
  size_t p = 0;
  while (p < v.size()) {
    size_t c = v.find(',', p);
    std::string e = v.substr(p, c == std::string::npos ? std::string::npos : c - p);
    if (!e.empty()) out.emplace_back(e);
    p = c == std::string::npos ? v.size() : c + 1;
  }
  return out;
}

void Show(bool as_json, const json::value& v, const std::vector<std::string>& columns) {
  if (v.is_object() && v.as_object().contains("members")) {
    PrintList(as_json, v, "members", columns);
  } else {
    PrintObject(as_json, v);
  }
}

Result<int> RunDeploy(StreamerClient& c, const Args& a, bool as_json) {
  static const std::map<std::string, std::pair<std::string, std::vector<std::string>>> kNouns = {
      {"script", {"/rest/plan-scripts", {"id", "name", "planType", "readOnly", "modified"}}},
      {"buildplan", {"/rest/build-plans", {"id", "name", "oeBuildPlanType", "modified"}}},
      {"plan", {"/rest/deployment-plans", {"id", "name", "oeBuildPlanName", "goldenImageName"}}},
      {"golden", {"/rest/golden-images", {"id", "name", "format", "size", "checkSum"}}},
  };
  auto noun = kNouns.find(a.noun);
  if (noun == kNouns.end()) return InvalidArgument("unknown deploy noun '" + a.noun + "' (see --help)");
  const std::string& coll = noun->second.first;
  const auto& columns = noun->second.second;
  const std::string force = a.flags.count("--force") ? "?force=true" : "";
  if (a.verb == "list") {
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("GET", coll));
    Show(as_json, v, columns);
    return 0;
  }
  if (a.verb == "show") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "ID"));
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("GET", UriOf(coll, a.positional[0])));
    Show(as_json, v, columns);
    return 0;
  }
  if (a.verb == "delete") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "ID"));
    INGOT_RETURN_IF_ERROR(c.Call("DELETE", UriOf(coll, a.positional[0]) + force).status());
    return 0;
  }
  if (a.verb == "usedby" && (a.noun == "script" || a.noun == "plan")) {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "ID"));
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("GET", UriOf(coll, a.positional[0]) + "/usedby"));
    if (v.is_object() && v.as_object().contains("osVolumes")) {
      PrintList(as_json, v, "osVolumes", {"name", "state", "uri"});
    } else {
      PrintList(as_json, json::object{{"usedBy", v}}, "usedBy", {"name", "uri"});
    }
    return 0;
  }
  if (a.noun == "script" && a.verb == "create") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "NAME"));
    auto file = a.Value("--file");
    if (!file) return InvalidArgument("create needs --file SCRIPT");
    INGOT_ASSIGN_OR_RETURN(std::string text, ReadText(*file));
    json::object body{{"name", a.positional[0]},
                      {"planType", a.Value("--type").value_or("deploy")},
                      {"description", a.Value("--description").value_or("")},
                      {"content", text}};
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("POST", coll, json::value(body)));
    Show(as_json, v, columns);
    return 0;
  }
  if (a.noun == "script" && a.verb == "diff") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "ID"));
    auto file = a.Value("--file");
    if (!file) return InvalidArgument("diff needs --file SCRIPT");
    INGOT_ASSIGN_OR_RETURN(std::string text, ReadText(*file));
    std::string id = a.positional[0].substr(a.positional[0].rfind('/') + 1);
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("POST", coll + "/differences/" + id, json::value(text)));
    if (as_json) {
      printf("%s\n", json::serialize(v).c_str());
    } else {
      fputs(std::string(v.as_object().at("differences").as_string()).c_str(), stdout);
    }
    return v.as_object().at("identical").as_bool() ? 0 : 1;
  }
  if (a.noun == "buildplan" && a.verb == "create") {
    auto file = a.Value("--file");
    if (!file) return InvalidArgument("create needs --file PLAN.json");
    INGOT_ASSIGN_OR_RETURN(std::string text, ReadText(*file));
    boost::system::error_code ec;
    json::value body = json::parse(text, ec);
    if (ec || !body.is_object()) return InvalidArgument(*file + " is not a JSON object");
    if (!a.positional.empty()) body.as_object()["name"] = a.positional[0];
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("POST", coll, body));
    Show(as_json, v, columns);
    return 0;
  }
  if (a.noun == "plan" && a.verb == "create") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "NAME"));
    auto bp = a.Value("--build-plan");
    if (!bp) return InvalidArgument("create needs --build-plan ID");
    json::object body{{"name", a.positional[0]},
                      {"oeBuildPlanURI", UriOf("/rest/build-plans", *bp)},
                      {"customAttributes", Attributes(a)}};
    if (auto gi = a.Value("--golden-image")) body["goldenImageURI"] = UriOf("/rest/golden-images", *gi);
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("POST", coll, json::value(body)));
    Show(as_json, v, columns);
    return 0;
  }
  if (a.noun == "golden" && a.verb == "upload") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "NAME"));
    auto file = a.Value("--file");
    if (!file) return InvalidArgument("upload needs --file IMAGE");
    INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(*file, O_RDONLY | O_CLOEXEC));
    struct stat st{};
    if (fstat(fd.get(), &st) != 0) return FromErrno(errno, "stat " + *file);
    io::FdReader reader(fd.get(), *file);
    std::string target = coll + "?name=" + http::PercentEncode(a.positional[0]) +
                         "&description=" + http::PercentEncode(a.Value("--description").value_or(""));
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("POST", target, std::nullopt, &reader,
                                          static_cast<uint64_t>(st.st_size)));
    Show(as_json, v, columns);
    return 0;
  }
  if (a.noun == "golden" && a.verb == "create") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "NAME"));
    auto image = a.Value("--image-id");
    if (!image) return InvalidArgument("create needs --image-id CATALOG_IMAGE_ID");
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("POST", coll,
                                          json::value(json::object{{"name", a.positional[0]},
                                                                   {"imageId", *image},
                                                                   {"description", a.Value("--description").value_or("")}})));
    Show(as_json, v, columns);
    return 0;
  }
  if (a.noun == "golden" && a.verb == "capture") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "NAME"));
    auto vol = a.Value("--volume");
    auto bp = a.Value("--build-plan");
    if (!vol || !bp) return InvalidArgument("capture needs --volume OS_VOLUME_ID and --build-plan ID");
    json::object body{{"name", a.positional[0]},
                      {"description", a.Value("--description").value_or("")},
                      {"imageCapture", true},
                      {"osVolumeURI", UriOf("/rest/os-volumes", *vol)},
                      {"buildPlanUri", UriOf("/rest/build-plans", *bp)}};
    if (auto e = a.Value("--engine")) body["engine"] = *e;
    INGOT_ASSIGN_OR_RETURN(auto task, c.Call("POST", coll, json::value(body)));
    if (a.flags.count("--detach")) {
      Show(as_json, task, {});
      return 0;
    }
    const std::string task_uri(task.as_object().at("uri").as_string());
    StatusLine line("capture " + a.positional[0], isatty(2));
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(task, c.Call("GET", task_uri));
      const json::object& t = task.as_object();
      const std::string state(t.at("taskState").as_string());
      line.Update(ValueText(t.at("taskStatus")));
      if (state == "Running" || state == "New") {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        continue;
      }
      line.Finish();
      if (state != "Completed") {
        const auto& errs = t.at("taskErrors").as_array();
        fprintf(stderr, "ingot: capture %s: %s\n", state.c_str(),
                errs.empty() ? "" : ValueText(errs[0].as_object().at("message")).c_str());
        if (as_json) printf("%s\n", json::serialize(task).c_str());
        return 1;
      }
      const std::string gi(t.at("associatedResource").as_object().at("resourceUri").as_string());
      INGOT_ASSIGN_OR_RETURN(auto doc, c.Call("GET", gi));
      Show(as_json, doc, columns);
      return 0;
    }
  }
  if (a.noun == "golden" && a.verb == "download") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "ID"));
    auto file = a.Value("--file");
    if (!file) return InvalidArgument("download needs --file OUT");
    INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(*file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC));
    FileWriter out(fd.get());
    std::string id = a.positional[0].substr(a.positional[0].rfind('/') + 1);
    INGOT_RETURN_IF_ERROR(c.Call("GET", coll + "/download/" + id, std::nullopt, nullptr, {}, &out).status());
    return 0;
  }
  return InvalidArgument("unknown verb '" + a.verb + "' for deploy " + a.noun + " (see --help)");
}

Result<int> RunVolume(StreamerClient& c, const Args& a, bool as_json) {
  const std::string coll = "/rest/os-volumes";
  const std::vector<std::string> columns = {"id", "name", "state", "attached", "size", "deploymentPlanName"};
  if (a.verb == "list") {
    INGOT_ASSIGN_OR_RETURN(auto v, c.Call("GET", coll));
    Show(as_json, v, columns);
    return 0;
  }
  if (a.verb == "show" || a.verb == "log" || a.verb == "delete" || a.verb == "attach" ||
      a.verb == "detach") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "ID"));
    std::string uri = UriOf(coll, a.positional[0]);
    if (a.verb == "show") {
      INGOT_ASSIGN_OR_RETURN(auto v, c.Call("GET", uri));
      Show(as_json, v, columns);
    } else if (a.verb == "log") {
      StdoutWriter out;
      INGOT_RETURN_IF_ERROR(c.Call("GET", uri + "/log", std::nullopt, nullptr, {}, &out).status());
    } else if (a.verb == "delete") {
      INGOT_RETURN_IF_ERROR(c.Call("DELETE", uri).status());
    } else if (a.verb == "attach") {
      json::object body{{"allow", AllowList(a)}};
      if (a.Value("--initiator")) body["initiators"] = AllowList(a, "--initiator");
      INGOT_ASSIGN_OR_RETURN(auto v, c.Call("POST", uri + "/attach", json::value(std::move(body))));
      Show(as_json, v, columns);
    } else {
      INGOT_ASSIGN_OR_RETURN(auto v, c.Call("POST", uri + "/detach"));
      Show(as_json, v, columns);
    }
    return 0;
  }
  if (a.verb == "deploy" || a.verb == "redeploy") {
    const bool redeploy = a.verb == "redeploy";
    INGOT_RETURN_IF_ERROR(Need(a, 1, redeploy ? "ID" : "NAME"));
    auto plan = a.Value("--plan");
    if (!plan && !redeploy) return InvalidArgument("deploy needs --plan DEPLOYMENT_PLAN_ID");
    json::object body{{"customAttributes", Attributes(a)},
                      {"attach", a.flags.count("--no-attach") == 0}};
    if (!redeploy) body["name"] = a.positional[0];
    if (plan) body["deploymentPlanUri"] = UriOf("/rest/deployment-plans", *plan);
    if (a.Value("--allow")) body["allow"] = AllowList(a);
    if (auto e = a.Value("--engine")) body["engine"] = *e;
    INGOT_ASSIGN_OR_RETURN(
        auto task, c.Call("POST", redeploy ? UriOf(coll, a.positional[0]) + "/redeploy" : coll,
                          json::value(body)));
    std::string task_uri(task.as_object().at("uri").as_string());
    if (a.flags.count("--detach")) {
      Show(as_json, task, {});
      return 0;
    }
    StatusLine line("deploy " + a.positional[0], isatty(2));
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(task, c.Call("GET", task_uri));
      const json::object& t = task.as_object();
      std::string state(t.at("taskState").as_string());
      line.Update(ValueText(t.at("taskStatus")));
      if (state != "Running" && state != "New") {
        line.Finish();
        if (as_json) {
          printf("%s\n", json::serialize(task).c_str());
        } else if (state == "Completed") {
          printf("OS volume %s %s\n", a.positional[0].c_str(), redeploy ? "redeployed" : "deployed");
        } else {
          const auto& errs = t.at("taskErrors").as_array();
          fprintf(stderr, "ingot: deployment %s: %s\n", state.c_str(),
                  errs.empty() ? "" : ValueText(errs[0].as_object().at("message")).c_str());
        }
        return state == "Completed" ? 0 : 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  }
  return InvalidArgument("unknown verb '" + a.verb + "' for volume (see --help)");
}

}  // namespace

std::optional<int> RunDeployCommand(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() > 1 && arg[0] == '-') {
      std::string name = arg;
      std::optional<std::string> value;
      if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--attr", 0) != 0) {
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
        a.values.emplace(name, *value);
      } else {
        a.flags.insert(name);
      }
      continue;
    }
    if (a.group.empty()) {
      if (arg != "deploy" && arg != "volume") return std::nullopt;
      a.group = arg;
    } else if (a.group == "deploy" && a.noun.empty()) {
      a.noun = arg;
    } else if (a.verb.empty()) {
      a.verb = arg;
    } else {
      a.positional.push_back(arg);
    }
  }
  if (a.group.empty()) return std::nullopt;
  if (a.verb.empty() || a.verb == "help" || a.flags.count("--help") || a.flags.count("-h")) {
    bool asked = a.flags.count("--help") || a.verb == "help" || a.noun == "help";
    fputs(kUsage, asked ? stdout : stderr);
    return asked ? 0 : 2;
  }
  auto endpoint = ResolveEndpoint(a.Value("--url"), a.Value("--token"), a.Value("--timeout"),
                                  std::chrono::seconds(3600));
  if (!endpoint) return 2;
  StreamerClient client(std::move(endpoint->url), endpoint->token, endpoint->timeout);
  const bool as_json = a.flags.count("--json") > 0;
  auto rc = a.group == "deploy" ? RunDeploy(client, a, as_json) : RunVolume(client, a, as_json);
  if (!rc.ok()) {
    fprintf(stderr, "ingot: %s\n", rc.status().message().c_str());
    return 1;
  }
  return *rc;
}

}  // namespace ingot::cli
