// `ingot profile|machine ...`: per-machine boot from the command line (the northbound /boot/v1 API;
// same --url, --token, --json and --timeout as the image commands).
//
//   ingot profile list | show NAME | delete NAME
//   ingot profile create NAME [PROFILE OPTIONS]      ingot profile set NAME [PROFILE OPTIONS]
//     --kernel PATH|URL  --initrd PATH|URL (repeat)  --args TEXT  --os NAME/VERSION
//     --selector EXPR  --default | --no-default  --description TEXT  --var KEY=VALUE (repeat)
//     --ipxe-file F  --grub-file F  --user-data-file F  --vendor-data-file F
//   ingot machine list [--state discovered|assigned]
//   ingot machine show|delete MACHINE                (MACHINE: its id or its MAC)
//   ingot machine add --mac MAC | --uuid UUID [MACHINE OPTIONS]
//   ingot machine set MACHINE [MACHINE OPTIONS]
//     --mac  --uuid  --serial  --hostname  --label KEY=VALUE (repeat)  --var KEY=VALUE (repeat)
//     --profile NAME
//   ingot machine assign MACHINE PROFILE | unassign MACHINE
//   ingot machine script MACHINE [--format ipxe|grub]   what it would boot now, rendered
#include "exe/ingot_cli/machine_commands.h"

#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "exe/ingot_cli/images_client.h"
#include "exe/ingot_cli/terminal.h"
#include "http/client.h"
#include "http/url.h"

namespace ingot::cli {
namespace {
namespace json = boost::json;

const char* kUsage =
    "usage: ingot [--url URL] [--token TOKEN] [--json] profile|machine VERB [ARGS]\n"
    "  ingot profile list | show NAME | delete NAME\n"
    "  ingot profile create|set NAME [--kernel PATH|URL] [--initrd PATH|URL]... [--args TEXT]\n"
    "        [--os NAME/VERSION] [--selector EXPR] [--default|--no-default] [--description TEXT]\n"
    "        [--var KEY=VALUE]... [--ipxe-file F] [--grub-file F] [--user-data-file F]\n"
    "        [--vendor-data-file F]\n"
    "  ingot machine list [--state discovered|assigned]\n"
    "  ingot machine show|delete MACHINE            (MACHINE: its id or its MAC)\n"
    "  ingot machine add (--mac MAC | --uuid UUID) [--serial S] [--hostname H] [--label K=V]...\n"
    "        [--var K=V]... [--profile NAME]\n"
    "  ingot machine set MACHINE [the same options]\n"
    "  ingot machine assign MACHINE PROFILE | unassign MACHINE\n"
    "  ingot machine script MACHINE [--format ipxe|grub]\n";

const std::set<std::string> kValueOptions = {
    "--url",   "--token",  "--timeout",   "--kernel",    "--initrd",     "--args",
    "--os",    "--selector", "--description", "--var",   "--ipxe-file",  "--grub-file",
    "--user-data-file", "--vendor-data-file", "--state", "--mac",        "--uuid",
    "--serial", "--hostname", "--label",   "--profile",  "--format"};

struct Args {
  std::string group, verb;
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> values;
  std::set<std::string> flags;
  std::optional<std::string> Value(const std::string& k) const {
    auto it = values.find(k);
    return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::vector<std::string> All(const std::string& k) const {
    std::vector<std::string> out;
    auto [b, e] = values.equal_range(k);
    for (auto it = b; it != e; ++it) out.push_back(it->second);
    return out;
  }
};

class Client {
 public:
  Client(http::Url url, std::string token, std::chrono::milliseconds timeout)
      : http_(std::move(url), timeout), token_(std::move(token)) {}
  // The answer's body; a non-2xx status becomes the server's error.
  Result<std::string> Raw(const std::string& method, const std::string& target,
                          std::optional<json::object> body = std::nullopt) {
    http::ClientRequest req;
    req.method = method;
    req.target = target;
    req.headers.Set("Accept", "application/json");
    if (!token_.empty()) req.headers.Set("X-Auth-Token", token_);
    if (body) {
      req.headers.Set("Content-Type", "application/json");
      req.body = json::serialize(*body);
    }
    INGOT_ASSIGN_OR_RETURN(http::ClientResponse resp, http_.Send(req, nullptr, {}));
    if (resp.status < 200 || resp.status >= 300) return StatusFromResponse(resp);
    return std::move(resp.body);
  }
  Result<json::value> Call(const std::string& method, const std::string& target,
                           std::optional<json::object> body = std::nullopt) {
    INGOT_ASSIGN_OR_RETURN(std::string text, Raw(method, target, std::move(body)));
    if (text.empty()) return json::value(nullptr);
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec) return Corruption("the server's answer is not JSON");
    return v;
  }

 private:
  http::Client http_;
  std::string token_;
};

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<json::object> Pairs(const std::vector<std::string>& items, const char* option) {
  json::object o;
  for (const std::string& kv : items) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument(std::string(option) + " takes KEY=VALUE, not '" + kv + "'");
    }
    o[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return o;
}

Result<json::object> ProfileBody(const Args& a) {
  json::object b;
  if (auto v = a.Value("--kernel")) b["kernel"] = *v;
  if (auto all = a.All("--initrd"); !all.empty()) {
    json::array arr;
    for (const std::string& i : all) arr.emplace_back(i);
    b["initrds"] = std::move(arr);
  }
  if (auto v = a.Value("--args")) b["args"] = *v;
  if (auto v = a.Value("--selector")) b["selector"] = *v;
  if (auto v = a.Value("--description")) b["description"] = *v;
  if (auto v = a.Value("--os")) {
    size_t slash = v->find('/');
    if (slash == std::string::npos) return InvalidArgument("--os takes NAME/VERSION");
    b["os"] = json::object{{"name", v->substr(0, slash)}, {"version", v->substr(slash + 1)}};
  }
  if (a.flags.count("--default")) b["default"] = true;
  if (a.flags.count("--no-default")) b["default"] = false;
  if (auto all = a.All("--var"); !all.empty()) {
    INGOT_ASSIGN_OR_RETURN(b["variables"], Pairs(all, "--var"));
  }
  for (auto [option, key] : {std::pair{"--ipxe-file", "ipxe"}, std::pair{"--grub-file", "grub"},
                             std::pair{"--user-data-file", "user_data"},
                             std::pair{"--vendor-data-file", "vendor_data"}}) {
    if (auto f = a.Value(option)) {
      INGOT_ASSIGN_OR_RETURN(std::string text, ReadFile(*f));
      b[key] = text;
    }
  }
  return b;
}

Result<json::object> MachineBody(const Args& a) {
  json::object b;
  for (auto [option, key] : {std::pair{"--mac", "mac"}, std::pair{"--uuid", "uuid"},
                             std::pair{"--serial", "serial"}, std::pair{"--hostname", "hostname"},
                             std::pair{"--profile", "profile"}}) {
    if (auto v = a.Value(option)) b[key] = *v;
  }
  if (auto all = a.All("--label"); !all.empty()) {
    INGOT_ASSIGN_OR_RETURN(b["labels"], Pairs(all, "--label"));
  }
  if (auto all = a.All("--var"); !all.empty()) {
    INGOT_ASSIGN_OR_RETURN(b["variables"], Pairs(all, "--var"));
  }
  return b;
}

Status Run(Client& client, const Args& a, bool as_json) {
  auto need = [&](size_t n, const char* usage) -> Status {
    if (a.positional.size() != n) return InvalidArgument(std::string("usage: ingot ") + usage);
    return Status::Ok();
  };
  const std::string& v = a.verb;
  json::value out;
  if (a.group == "profile") {
    if (v == "list") {
      INGOT_ASSIGN_OR_RETURN(out, client.Call("GET", "/boot/v1/profiles"));
      PrintList(as_json, out, "profiles", {"name", "selector", "default", "kernel", "os"});
      return Status::Ok();
    }
    if (v == "show") {
      INGOT_RETURN_IF_ERROR(need(1, "profile show NAME"));
      INGOT_ASSIGN_OR_RETURN(out, client.Call("GET", "/boot/v1/profiles/" + Enc(a.positional[0])));
      PrintObject(as_json, out);
      return Status::Ok();
    }
    if (v == "delete") {
      INGOT_RETURN_IF_ERROR(need(1, "profile delete NAME"));
      INGOT_ASSIGN_OR_RETURN(out, client.Call("DELETE", "/boot/v1/profiles/" + Enc(a.positional[0])));
      return Status::Ok();
    }
    if (v == "create" || v == "set") {
      INGOT_RETURN_IF_ERROR(need(1, "profile create|set NAME [OPTIONS]"));
      INGOT_ASSIGN_OR_RETURN(json::object body, ProfileBody(a));
      if (v == "create") {
        body["name"] = a.positional[0];
        INGOT_ASSIGN_OR_RETURN(out, client.Call("POST", "/boot/v1/profiles", body));
      } else {
        INGOT_ASSIGN_OR_RETURN(
            out, client.Call("PATCH", "/boot/v1/profiles/" + Enc(a.positional[0]), body));
      }
      PrintObject(as_json, out);
      return Status::Ok();
    }
  } else {
    if (v == "list") {
      std::string target = "/boot/v1/machines";
      if (auto s = a.Value("--state")) target += "?state=" + Enc(*s);
      INGOT_ASSIGN_OR_RETURN(out, client.Call("GET", target));
      PrintList(as_json, out, "machines",
                {"id", "mac", "hostname", "state", "profile", "last_profile", "last_seen"});
      return Status::Ok();
    }
    if (v == "show" || v == "delete") {
      INGOT_RETURN_IF_ERROR(need(1, "machine show|delete MACHINE"));
      INGOT_ASSIGN_OR_RETURN(out, client.Call(v == "show" ? "GET" : "DELETE",
                                              "/boot/v1/machines/" + Enc(a.positional[0])));
      PrintObject(as_json, out);
      return Status::Ok();
    }
    if (v == "add") {
      INGOT_RETURN_IF_ERROR(need(0, "machine add (--mac MAC | --uuid UUID) [OPTIONS]"));
      INGOT_ASSIGN_OR_RETURN(json::object body, MachineBody(a));
      INGOT_ASSIGN_OR_RETURN(out, client.Call("POST", "/boot/v1/machines", body));
      PrintObject(as_json, out);
      return Status::Ok();
    }
    if (v == "set" || v == "assign" || v == "unassign") {
      json::object body;
      if (v == "set") {
        INGOT_RETURN_IF_ERROR(need(1, "machine set MACHINE [OPTIONS]"));
        INGOT_ASSIGN_OR_RETURN(body, MachineBody(a));
      } else if (v == "assign") {
        INGOT_RETURN_IF_ERROR(need(2, "machine assign MACHINE PROFILE"));
        body["profile"] = a.positional[1];
      } else {
        INGOT_RETURN_IF_ERROR(need(1, "machine unassign MACHINE"));
        body["profile"] = nullptr;
      }
      INGOT_ASSIGN_OR_RETURN(
          out, client.Call("PATCH", "/boot/v1/machines/" + Enc(a.positional[0]), body));
      PrintObject(as_json, out);
      return Status::Ok();
    }
    if (v == "script") {
      INGOT_RETURN_IF_ERROR(need(1, "machine script MACHINE [--format ipxe|grub]"));
      INGOT_ASSIGN_OR_RETURN(std::string script,
                             client.Raw("GET", "/boot/v1/machines/" + Enc(a.positional[0]) +
                                                   "/boot?format=" +
                                                   Enc(a.Value("--format").value_or("ipxe"))));
      fputs(script.c_str(), stdout);
      return Status::Ok();
    }
  }
  return InvalidArgument(std::string("usage: ingot ") + a.group + ": unknown verb '" + v +
                         "' (ingot " + a.group + " help)");
}

}  // namespace

std::optional<int> RunMachineCommand(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() > 1 && arg[0] == '-') {
      std::string name = arg;
      std::optional<std::string> value;
      if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
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
      if (arg != "profile" && arg != "machine") return std::nullopt;
      a.group = arg;
    } else if (a.verb.empty()) {
      a.verb = arg;
    } else {
      a.positional.push_back(arg);
    }
  }
  if (a.group.empty()) return std::nullopt;
  if (a.verb.empty() || a.verb == "help" || a.flags.count("--help") || a.flags.count("-h")) {
    bool asked = a.verb == "help" || a.flags.count("--help") || a.flags.count("-h");
    fputs(kUsage, asked ? stdout : stderr);
    return asked ? 0 : 2;
  }
  auto endpoint = ResolveEndpoint(a.Value("--url"), a.Value("--token"), a.Value("--timeout"),
                                  std::chrono::seconds(60));
  if (!endpoint) return 2;
  Client client(std::move(endpoint->url), endpoint->token, endpoint->timeout);
  Status s = Run(client, a, a.flags.count("--json") > 0);
  if (!s.ok()) {
    fprintf(stderr, "ingot: %s\n", s.message().c_str());
    return s.code() == Code::kInvalidArgument && s.message().rfind("usage:", 0) == 0 ? 2 : 1;
  }
  return fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace ingot::cli
