// `ingot recipe|build ...`: the image builder from the command line (the northbound API; same --url,
// --token, --json and --timeout as the image commands).
//
//   ingot recipe list | show ID | delete ID | undelete ID
//   ingot recipe create NAME --archive FILE.tgz|DIR [--type mmdebstrap|kiwi-ng] [--distro debian]
//                [--arch x86_64] [--var KEY=VALUE ...]
//   ingot build start RECIPE_ID [--name NAME] [--outputs ims,drp,disk] [--no-cache] [--detach]
//                (follows the live log to the end; exit status 0 only when the job succeeds)
//   ingot build list | show JOB | log JOB [--follow] | cancel JOB | delete JOB
//   ingot build key NAME --public-key FILE.pub          (an IMS public-keys record)
//   ingot build image NAME --rootfs FILE.squashfs [--kernel FILE] [--initrd FILE]
//   ingot build customize IMAGE_ID --key KEY_ID [--name NAME] [--jail] [--detach]
//                (prints the ssh command once the job waits on the user, then follows the log)
//   ingot build ssh JOB                                 (a waiting job's ssh command and host key)
#include "exe/ingot_cli/build_commands.h"

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
#include "exe/ingot_cli/terminal.h"
#include "http/client.h"
#include "http/url.h"
#include "io/adapters.h"
#include "io/file.h"

namespace ingot::cli {
namespace {
namespace json = boost::json;

constexpr const char* kUsage = R"(usage:
  ingot recipe list | show ID | delete ID | undelete ID
  ingot recipe create NAME --archive FILE.tgz|DIR [--type mmdebstrap|kiwi-ng] [--distro debian]
               [--arch x86_64] [--var KEY=VALUE ...]
  ingot build start RECIPE_ID [--name NAME] [--outputs ims,drp,disk] [--no-cache] [--detach]
  ingot build list | show JOB | log JOB [--follow] | cancel JOB | delete JOB
  ingot build key NAME --public-key FILE.pub
  ingot build image NAME --rootfs FILE.squashfs [--kernel FILE] [--initrd FILE]
  ingot build customize IMAGE_ID --key KEY_ID [--name NAME] [--jail] [--detach]
  ingot build ssh JOB
options: --url URL (or INGOT_URL), --token TOKEN (or OS_AUTH_TOKEN), --json, --timeout SECONDS
)";

const std::set<std::string> kValueOptions = {"--url", "--token", "--timeout", "--archive", "--type",
                                             "--distro", "--arch", "--var", "--name", "--outputs",
                                             "--key", "--public-key", "--rootfs", "--kernel",
                                             "--initrd"};

struct Args {
  std::string group, verb;
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> values;
  std::set<std::string> flags;
  std::optional<std::string> Value(const std::string& k) const {
    auto it = values.find(k);
    return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
};

// Writes a streamed body straight to stdout (the live build log), counting what it wrote.
class StdoutWriter final : public io::Writer {
 public:
  Status Write(std::span<const uint8_t> data) override {
    fwrite(data.data(), 1, data.size(), stdout);
    fflush(stdout);
    written += data.size();
    return Status::Ok();
  }
  uint64_t written = 0;
};

class ImsClient {
 public:
  ImsClient(http::Url url, std::string token, std::chrono::milliseconds timeout)
      : http_(std::move(url), timeout), token_(std::move(token)) {}
  Result<json::value> Call(const std::string& method, const std::string& target,
                           std::optional<json::object> body = std::nullopt,
                           io::Reader* stream = nullptr, std::optional<uint64_t> length = {},
                           io::Writer* sink = nullptr) {
    http::ClientRequest req;
    req.method = method;
    req.target = "/apis/ims/v3" + target;
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
    INGOT_ASSIGN_OR_RETURN(http::ClientResponse resp, http_.Send(req, sink));
    if (resp.status < 200 || resp.status >= 300) return StatusFromResponse(resp);
    if (resp.body.empty() || sink != nullptr) return json::value(nullptr);
    boost::system::error_code ec;
    json::value v = json::parse(resp.body, ec);
    if (ec) return Corruption("the server's answer is not JSON");
    return v;
  }

 private:
  http::Client http_;
  std::string token_;
};

void Print(bool as_json, const json::value& v, const std::vector<std::string>& columns) {
  if (as_json) {
    printf("%s\n", json::serialize(v).c_str());
    return;
  }
  if (v.is_object()) {
    PrintProperties(stdout, v.as_object());
    return;
  }
  if (!v.is_array()) return;
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : v.as_array()) {
    if (!item.is_object()) continue;
    std::vector<std::string> row;
    for (const auto& c : columns) {
      auto* f = item.as_object().if_contains(c);
      row.push_back(f ? ValueText(*f) : "");
    }
    rows.push_back(std::move(row));
  }
  PrintTable(stdout, columns, rows);
}

Status Need(const Args& a, size_t n, const char* what) {
  if (a.positional.size() < n) return InvalidArgument(std::string("missing ") + what);
  return Status::Ok();
}

// A recipe archive from --archive: a tgz as it is, or a directory packed with tar first.
Result<std::string> ArchiveFile(const std::string& path, std::string& cleanup) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return NotFound(path + ": no such file or directory");
  if (!S_ISDIR(st.st_mode)) return path;
  char tmpl[] = "/tmp/ingot-recipe-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return FromErrno(errno, "temporary file");
  close(fd);
  cleanup = tmpl;
  std::string cmd = "tar --sort=name -C '" + path + "' -czf '" + cleanup + "' .";
  if (path.find('\'') != std::string::npos || system(cmd.c_str()) != 0) {
    return InvalidArgument("cannot pack " + path + " as a tgz");
  }
  return cleanup;
}

// The server ends a follow response after a quiet spell (or a connection may drop): continue from
// the bytes already shown until the job has ended.
Status FollowLog(ImsClient& c, const std::string& job) {
  StdoutWriter out;
  for (int failures = 0;;) {
    auto got = c.Call("GET", "/jobs/" + job + "/log?follow=true&offset=" + std::to_string(out.written),
                      std::nullopt, nullptr, {}, &out);
    auto j = c.Call("GET", "/jobs/" + job);
    if (!got.ok() || !j.ok()) {
      if (++failures > 10) return got.ok() ? j.status() : got.status();
      std::this_thread::sleep_for(std::chrono::seconds(1));
      if (!j.ok()) continue;
    } else {
      failures = 0;
    }
    std::string status = ValueText(j->as_object().at("status"));
    if (status == "success" || status == "error") {
      // The last lines, if the response ended before them.
      auto rest = c.Call("GET", "/jobs/" + job + "/log?offset=" + std::to_string(out.written),
                         std::nullopt, nullptr, {}, &out);
      return rest.status();
    }
  }
}

Result<int> JobExit(ImsClient& c, const std::string& job, bool as_json) {
  INGOT_ASSIGN_OR_RETURN(json::value j, c.Call("GET", "/jobs/" + job));
  const auto& o = j.as_object();
  std::string status = o.contains("status") ? ValueText(o.at("status")) : "";
  if (as_json) {
    printf("%s\n", json::serialize(j).c_str());
  } else {
    fprintf(stderr, "job %s: %s%s%s\n", job.c_str(), status.c_str(),
            status == "error" ? ": " : "",
            status == "error" && o.contains("error") ? ValueText(o.at("error")).c_str() : "");
    if (status == "success") {
      printf("image %s\n", ValueText(o.at("resultant_image_id")).c_str());
    }
  }
  return status == "success" ? 0 : 1;
}

// How to reach a job's SSH server, from its ssh_containers; kUnavailable while it has none yet.
Result<std::string> SshAccess(const json::object& job) {
  const json::value* cs = job.if_contains("ssh_containers");
  if (cs && cs->is_array()) {
    for (const auto& c : cs->as_array()) {
      if (!c.is_object()) continue;
      const json::object& o = c.as_object();
      const json::value* info = o.if_contains("connection_info");
      const json::value* where = info && info->is_object()
                                     ? info->as_object().if_contains("customer_access")
                                     : nullptr;
      if (!where || !where->is_object() || !where->as_object().contains("port")) continue;
      bool jail = o.contains("jail") && o.at("jail").is_bool() && o.at("jail").as_bool();
      std::string text = "ssh -p " + ValueText(where->as_object().at("port")) + " root@" +
                         ValueText(where->as_object().at("host")) + "\n";
      if (o.contains("host_key_fingerprint")) {
        text += "# host key " + ValueText(o.at("host_key_fingerprint")) + "\n";
      }
      text += std::string("# when done: touch ") +
              (jail ? "/tmp/complete" : "/mnt/image/complete") + "\n";
      return text;
    }
  }
  return Unavailable("the job has no SSH access open (status " +
                     (job.contains("status") ? ValueText(job.at("status")) : "?") + ")");
}

// PUTs a local file as an image artifact.
Result<json::value> PutArtifact(ImsClient& c, const std::string& image, const std::string& name,
                                const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_RDONLY));
  struct stat st;
  fstat(fd.get(), &st);
  io::FdReader reader(fd.get(), path);
  return c.Call("PUT", "/images/" + image + "/artifacts/" + name, std::nullopt, &reader,
                static_cast<uint64_t>(st.st_size));
}

Result<int> Run(ImsClient& c, const Args& a, bool as_json) {
  const std::string& g = a.group;
  const std::string& v = a.verb;
  if (g == "recipe") {
    if (v == "list") {
      INGOT_ASSIGN_OR_RETURN(auto r, c.Call("GET", "/recipes"));
      Print(as_json, r, {"id", "name", "recipe_type", "linux_distribution", "arch"});
    } else if (v == "show") {
      INGOT_RETURN_IF_ERROR(Need(a, 1, "recipe id"));
      INGOT_ASSIGN_OR_RETURN(auto r, c.Call("GET", "/recipes/" + a.positional[0]));
      Print(as_json, r, {});
    } else if (v == "delete") {
      INGOT_RETURN_IF_ERROR(Need(a, 1, "recipe id"));
      INGOT_RETURN_IF_ERROR(c.Call("DELETE", "/recipes/" + a.positional[0]).status());
    } else if (v == "undelete") {
      INGOT_RETURN_IF_ERROR(Need(a, 1, "recipe id"));
      INGOT_RETURN_IF_ERROR(c.Call("PATCH", "/deleted/recipes/" + a.positional[0],
                                   json::object{{"operation", "undelete"}})
                                .status());
    } else if (v == "create") {
      INGOT_RETURN_IF_ERROR(Need(a, 1, "recipe name"));
      auto archive = a.Value("--archive");
      if (!archive) return InvalidArgument("recipe create needs --archive FILE.tgz|DIR");
      json::array dict;
      for (auto [it, end] = a.values.equal_range("--var"); it != end; ++it) {
        size_t eq = it->second.find('=');
        if (eq == std::string::npos) return InvalidArgument("--var takes KEY=VALUE");
        dict.push_back(json::object{{"key", it->second.substr(0, eq)},
                                    {"value", it->second.substr(eq + 1)}});
      }
      json::object body{{"name", a.positional[0]},
                        {"recipe_type", a.Value("--type").value_or("mmdebstrap")},
                        {"linux_distribution", a.Value("--distro").value_or("debian")},
                        {"arch", a.Value("--arch").value_or("x86_64")},
                        {"template_dictionary", dict}};
      std::string cleanup;
      auto file = ArchiveFile(*archive, cleanup);
      if (!file.ok()) return file.status();
      INGOT_ASSIGN_OR_RETURN(auto created, c.Call("POST", "/recipes", body));
      std::string id = ValueText(created.as_object().at("id"));
      auto fd = io::OpenFile(*file, O_RDONLY);
      if (!fd.ok()) return fd.status();
      struct stat st;
      fstat(fd->get(), &st);
      io::FdReader reader(fd->get(), "the recipe archive");
      auto stored = c.Call("PUT", "/recipes/" + id + "/archive", std::nullopt, &reader,
                           static_cast<uint64_t>(st.st_size));
      if (!cleanup.empty()) unlink(cleanup.c_str());
      if (!stored.ok()) {
        // A recipe whose archive was refused is of no use: remove it, and say why.
        (void)c.Call("DELETE", "/recipes/" + id);
        (void)c.Call("DELETE", "/deleted/recipes/" + id);
        return stored.status();
      }
      Print(as_json, *stored, {});
    } else {
      return InvalidArgument("unknown verb 'recipe " + v + "'");
    }
    return 0;
  }
  // build
  if (v == "list") {
    INGOT_ASSIGN_OR_RETURN(auto r, c.Call("GET", "/jobs"));
    Print(as_json, r, {"id", "job_type", "artifact_id", "status", "resultant_image_id"});
  } else if (v == "show") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "job id"));
    INGOT_ASSIGN_OR_RETURN(auto r, c.Call("GET", "/jobs/" + a.positional[0]));
    Print(as_json, r, {});
  } else if (v == "log") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "job id"));
    if (a.flags.count("--follow")) {
      INGOT_RETURN_IF_ERROR(FollowLog(c, a.positional[0]));
    } else {
      StdoutWriter out;
      INGOT_RETURN_IF_ERROR(
          c.Call("GET", "/jobs/" + a.positional[0] + "/log", std::nullopt, nullptr, {}, &out)
              .status());
    }
  } else if (v == "cancel") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "job id"));
    INGOT_ASSIGN_OR_RETURN(auto r, c.Call("POST", "/jobs/" + a.positional[0] + "/cancel"));
    Print(as_json, r, {});
  } else if (v == "delete") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "job id"));
    INGOT_RETURN_IF_ERROR(c.Call("DELETE", "/jobs/" + a.positional[0]).status());
  } else if (v == "key") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "key name"));
    auto file = a.Value("--public-key");
    if (!file) return InvalidArgument("build key needs --public-key FILE.pub");
    FILE* f = fopen(file->c_str(), "re");
    if (f == nullptr) return NotFound(*file + ": cannot be read");
    char line[16384];
    std::string text = fgets(line, sizeof(line), f) ? line : "";
    fclose(f);
    INGOT_ASSIGN_OR_RETURN(auto r, c.Call("POST", "/public-keys",
                                          json::object{{"name", a.positional[0]},
                                                       {"public_key", text}}));
    Print(as_json, r, {});
  } else if (v == "image") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "image name"));
    auto rootfs = a.Value("--rootfs");
    if (!rootfs) return InvalidArgument("build image needs --rootfs FILE (a SquashFS)");
    INGOT_ASSIGN_OR_RETURN(auto r, c.Call("POST", "/images", json::object{{"name", a.positional[0]}}));
    std::string id = ValueText(r.as_object().at("id"));
    json::value last = r;
    for (const char* name : {"rootfs", "kernel", "initrd"}) {
      auto path = a.Value(std::string("--") + name);
      if (!path) continue;
      auto put = PutArtifact(c, id, name, *path);
      if (!put.ok()) {
        (void)c.Call("DELETE", "/images/" + id);
        (void)c.Call("DELETE", "/deleted/images/" + id);
        return put.status();
      }
      last = *put;
    }
    Print(as_json, last, {});
  } else if (v == "ssh") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "job id"));
    INGOT_ASSIGN_OR_RETURN(auto r, c.Call("GET", "/jobs/" + a.positional[0]));
    if (as_json) {
      printf("%s\n", json::serialize(r.as_object().contains("ssh_containers")
                                          ? r.as_object().at("ssh_containers")
                                          : json::value(json::array()))
                         .c_str());
      return 0;
    }
    INGOT_ASSIGN_OR_RETURN(std::string text, SshAccess(r.as_object()));
    fputs(text.c_str(), stdout);
  } else if (v == "customize") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "image id"));
    auto key = a.Value("--key");
    if (!key) return InvalidArgument("build customize needs --key PUBLIC_KEY_ID");
    json::object body{
        {"job_type", "customize"},
        {"artifact_id", a.positional[0]},
        {"public_key_id", *key},
        {"ssh_containers",
         json::array{json::object{{"name", "customize"}, {"jail", a.flags.count("--jail") > 0}}}}};
    if (auto n = a.Value("--name")) body["image_root_archive_name"] = *n;
    INGOT_ASSIGN_OR_RETURN(auto job, c.Call("POST", "/jobs", body));
    std::string id = ValueText(job.as_object().at("id"));
    fprintf(stderr, "job %s\n", id.c_str());
    // Until its SSH server is up (or the job ended before).
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(auto j, c.Call("GET", "/jobs/" + id));
      std::string status = ValueText(j.as_object().at("status"));
      if (status == "success" || status == "error") return JobExit(c, id, as_json);
      if (status == "waiting_on_user") {
        INGOT_ASSIGN_OR_RETURN(std::string text, SshAccess(j.as_object()));
        fputs(text.c_str(), stdout);
        fflush(stdout);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    if (a.flags.count("--detach")) return 0;
    INGOT_RETURN_IF_ERROR(FollowLog(c, id));
    return JobExit(c, id, as_json);
  } else if (v == "start") {
    INGOT_RETURN_IF_ERROR(Need(a, 1, "recipe id"));
    json::object body{{"job_type", "create"}, {"artifact_id", a.positional[0]}};
    if (auto n = a.Value("--name")) body["image_root_archive_name"] = *n;
    if (auto o = a.Value("--outputs")) {
      json::array outs;
      size_t start = 0;
      while (start <= o->size()) {
        size_t comma = o->find(',', start);
        if (comma == std::string::npos) comma = o->size();
        if (comma > start) outs.push_back(json::value(o->substr(start, comma - start)));
        start = comma + 1;
      }
      body["outputs"] = outs;
    }
    if (a.flags.count("--no-cache")) body["use_cache"] = false;
    INGOT_ASSIGN_OR_RETURN(auto job, c.Call("POST", "/jobs", body));
    std::string id = ValueText(job.as_object().at("id"));
    fprintf(stderr, "job %s\n", id.c_str());
    if (a.flags.count("--detach")) {
      Print(as_json, job, {});
      return 0;
    }
    INGOT_RETURN_IF_ERROR(FollowLog(c, id));
    return JobExit(c, id, as_json);
  } else {
    return InvalidArgument("unknown verb 'build " + v + "'");
  }
  return 0;
}

}  // namespace

std::optional<int> RunBuildCommand(int argc, char** argv) {
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
        a.values.emplace(name, *value);
      } else {
        a.flags.insert(name);
      }
      continue;
    }
    if (a.group.empty()) {
      if (arg != "recipe" && arg != "build") return std::nullopt;
      a.group = arg;
    } else if (a.verb.empty()) {
      a.verb = arg;
    } else {
      a.positional.push_back(arg);
    }
  }
  if (a.group.empty()) return std::nullopt;
  if (a.verb.empty() || a.verb == "help" || a.flags.count("--help") || a.flags.count("-h")) {
    bool asked = a.flags.count("--help") || a.verb == "help";
    fputs(kUsage, asked ? stdout : stderr);
    return asked ? 0 : 2;
  }
  // Following a build's log takes as long as the build: the timeout is per read, not per call.
  auto endpoint = ResolveEndpoint(a.Value("--url"), a.Value("--token"), a.Value("--timeout"),
                                  std::chrono::seconds(7200));
  if (!endpoint) return 2;
  ImsClient client(std::move(endpoint->url), endpoint->token, endpoint->timeout);
  auto rc = Run(client, a, a.flags.count("--json") > 0);
  if (!rc.ok()) {
    fprintf(stderr, "ingot: %s\n", rc.status().message().c_str());
    return 1;
  }
  return *rc;
}

}  // namespace ingot::cli
