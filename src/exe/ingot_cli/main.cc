// `ingot`: the Image API v2 from the command line, with the glance client's command names.
//
//   ingot [--url URL] [--token TOKEN] [--json] COMMAND [ARGS]
//
// Exit status: 0 success, 1 the server (or the network, or a local file) failed, 2 usage error.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "exe/ingot_cli/images_client.h"
#include "exe/ingot_cli/terminal.h"
#include "io/file.h"
#include "http/url.h"
#include "io/adapters.h"
#include "io/hash.h"

namespace ingot::cli {
namespace {

namespace json = boost::json;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// ---- Arguments ----------------------------------------------------------------------------------

struct CommandLine {
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> values;  // "--name" -> "x", repeats kept in order
  std::set<std::string> flags;

  std::optional<std::string> Value(const std::string& option) const {
    auto it = values.find(option);
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> All(const std::string& option) const {
    std::vector<std::string> out;
    auto [b, e] = values.equal_range(option);
    for (auto it = b; it != e; ++it) out.push_back(it->second);
    return out;
  }
};

struct Context {
  ImagesClient& images;
  bool json_output;
  bool progress;  // stderr is a terminal, or --progress
};

struct Command {
  const char* name;
  const char* usage;  // arguments after the name
  const char* help;
  int min_positional;
  int max_positional;
  std::vector<std::string> value_options;
  std::vector<std::string> flag_options;
  std::function<Status(Context&, const CommandLine&)> run;
};

const std::vector<std::string> kGlobalValueOptions = {"--url", "--token", "--timeout"};
const std::vector<std::string> kGlobalFlagOptions = {"--json", "--progress", "--help", "-h"};

class UsageError {
 public:
  explicit UsageError(std::string m) : message(std::move(m)) {}
  std::string message;
};

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Parses argv after the program name: global options, the command, its options and positionals.
// Returns the command name ("" when none) or a usage error message.
std::variant<std::string, UsageError> Parse(int argc, char** argv,
                                            const std::vector<Command>& commands,
                                            CommandLine& out) {
  std::string command;
  const Command* spec = nullptr;
  bool options_done = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (!options_done && arg == "--") {
      options_done = true;
      continue;
    }
    if (!options_done && arg.size() > 1 && arg[0] == '-') {
      std::string name = arg;
      std::optional<std::string> value;
      if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
      }
      bool takes_value =
          Contains(kGlobalValueOptions, name) || (spec && Contains(spec->value_options, name));
      bool is_flag =
          Contains(kGlobalFlagOptions, name) || (spec && Contains(spec->flag_options, name));
      if (takes_value) {
        if (!value) {
          if (i + 1 >= argc) return UsageError(name + " needs a value");
          value = argv[++i];
        }
        out.values.emplace(name, *value);
      } else if (is_flag && !value) {
        out.flags.insert(name);
      } else {
        return UsageError("unknown option " + name + (command.empty() ? "" : " for " + command));
      }
      continue;
    }
    if (command.empty()) {
      command = arg;
      for (const auto& c : commands) {
        if (command == c.name) spec = &c;
      }
      if (spec == nullptr && command != "help")
        return UsageError("unknown command '" + command + "'");
      continue;
    }
    out.positional.push_back(arg);
  }
  return command;
}

// "k=v" -> {k, v}.
std::pair<std::string, std::string> KeyValue(const std::string& option, const std::string& arg) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError(option + " wants KEY=VALUE, not '" + arg + "'");
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

int64_t Integer(const std::string& option, const std::string& arg) {
  char* end = nullptr;
  errno = 0;
  long long v = strtoll(arg.c_str(), &end, 10);
  if (arg.empty() || *end != '\0' || errno != 0 || v < 0) {
    throw UsageError(option + " wants a non-negative integer, not '" + arg + "'");
  }
  return v;
}

bool Boolean(const std::string& option, const std::string& arg) {
  std::string a = arg;
  std::transform(a.begin(), a.end(), a.begin(), ::tolower);
  if (a == "true" || a == "yes" || a == "1") return true;
  if (a == "false" || a == "no" || a == "0") return false;
  throw UsageError(option + " wants true or false, not '" + arg + "'");
}

// ---- Local files --------------------------------------------------------------------------------


// Writes to a descriptor while computing the MD5 the server announces in Content-MD5.
class CheckedFdWriter final : public io::Writer {
 public:
  explicit CheckedFdWriter(int fd) : fd_(fd), md5_(std::move(*io::Hasher::Create("md5"))) {}
  Status Write(std::span<const uint8_t> data) override {
    md5_->Update(data);
    return io::WriteAll(fd_, data, "writing the image data");
  }
  std::string Md5() { return md5_->HexDigest(); }

 private:
  int fd_;
  std::unique_ptr<io::Hasher> md5_;
};

// The upload source: a file (size known: Content-Length) or standard input (chunked).
struct UploadSource {
  io::UniqueFd owned;
  int fd = -1;
  std::optional<uint64_t> size;
};

// Data piped or redirected in from a file counts as the image; a terminal or /dev/null does not
// (the glance client's rule, so scripts run with stdin closed do not upload an empty image).
bool StdinHasData() {
  struct stat st;
  return fstat(STDIN_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode));
}

Result<UploadSource> OpenUpload(const std::optional<std::string>& path) {
  UploadSource src;
  if (!path || *path == "-") {
    if (!path && !StdinHasData()) throw UsageError("give --file PATH (or pipe the image data in)");
    src.fd = STDIN_FILENO;
  } else {
    INGOT_ASSIGN_OR_RETURN(src.owned, io::OpenFile(*path, O_RDONLY | O_CLOEXEC));
    src.fd = src.owned.get();
  }
  struct stat st;
  if (fstat(src.fd, &st) == 0 && S_ISREG(st.st_mode)) {
    off_t pos = lseek(src.fd, 0, SEEK_CUR);
    src.size = static_cast<uint64_t>(st.st_size - std::max<off_t>(pos, 0));
  }
  return src;
}

// ---- Output -------------------------------------------------------------------------------------

void PrintImage(const Context& ctx, const json::object& image) {
  if (ctx.json_output) {
    printf("%s\n", json::serialize(image).c_str());
  } else {
    PrintProperties(stdout, image);
  }
}

std::string Field(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v ? ValueText(*v) : "";
}

// ---- Commands -----------------------------------------------------------------------------------

Status UploadData(Context& ctx, const std::string& id, const std::optional<std::string>& path) {
  INGOT_ASSIGN_OR_RETURN(UploadSource src, OpenUpload(path));
  io::FdReader reader(src.fd, "reading the image data");
  ProgressBar bar("upload", ctx.progress);
  Status s = ctx.images.Upload(
      id, reader, src.size,
      [&](uint64_t done, std::optional<uint64_t> total) { bar.Update(done, total); });
  bar.Finish();
  return s;
}

Status ImageCreate(Context& ctx, const CommandLine& cl) {
  json::object image;
  auto set_string = [&](const char* option, const char* key) {
    if (auto v = cl.Value(option)) image[key] = *v;
  };
  set_string("--id", "id");
  set_string("--name", "name");
  set_string("--disk-format", "disk_format");
  set_string("--container-format", "container_format");
  set_string("--visibility", "visibility");
  if (auto v = cl.Value("--min-disk")) image["min_disk"] = Integer("--min-disk", *v);
  if (auto v = cl.Value("--min-ram")) image["min_ram"] = Integer("--min-ram", *v);
  if (auto v = cl.Value("--protected")) image["protected"] = Boolean("--protected", *v);
  if (auto tags = cl.All("--tag"); !tags.empty()) {
    json::array a;
    for (auto& t : tags) a.emplace_back(t);
    image["tags"] = std::move(a);
  }
  for (const auto& p : cl.All("--property")) {
    auto [k, v] = KeyValue("--property", p);
    image[k] = v;
  }
  auto file = cl.Value("--file");
  // Open the data before creating the image, so a typo in the path does not leave a queued image.
  if (file && *file != "-") {
    if (access(file->c_str(), R_OK) != 0) return FromErrno(errno, "open " + *file);
  }
  INGOT_ASSIGN_OR_RETURN(json::object created, ctx.images.Create(image));
  if (file || StdinHasData()) {
    std::string id = Field(created, "id");
    if (Status s = UploadData(ctx, id, file); !s.ok()) {
      return s.WithContext("image " + id + " was created but its data upload failed");
    }
    INGOT_ASSIGN_OR_RETURN(created, ctx.images.Show(id));
  }
  PrintImage(ctx, created);
  return Status::Ok();
}

Status ImageList(Context& ctx, const CommandLine& cl) {
  std::string query;
  auto add = [&](const std::string& k, const std::string& v) {
    query += (query.empty() ? "" : "&") + http::PercentEncode(k) + "=" + http::PercentEncode(v);
  };
  static const std::vector<std::pair<const char*, const char*>> kFilters = {
      {"--name", "name"},
      {"--status", "status"},
      {"--visibility", "visibility"},
      {"--owner", "owner"},
      {"--member-status", "member_status"},
      {"--sort-key", "sort_key"},
      {"--sort-dir", "sort_dir"},
      {"--sort", "sort"},
      {"--checksum", "checksum"},
      {"--disk-format", "disk_format"},
      {"--container-format", "container_format"}};
  for (const auto& [option, key] : kFilters) {
    for (const auto& v : cl.All(option)) add(key, v);
  }
  for (const auto& t : cl.All("--tag")) add("tag", t);
  for (const auto& p : cl.All("--property-filter")) {
    auto [k, v] = KeyValue("--property-filter", p);
    add(k, v);
  }
  std::optional<int64_t> limit;
  if (auto v = cl.Value("--limit")) limit = Integer("--limit", *v);
  if (auto v = cl.Value("--page-size")) {
    add("limit", std::to_string(Integer("--page-size", *v)));
  } else if (limit && *limit > 0) {
    add("limit", std::to_string(std::min<int64_t>(*limit, 1000)));
  }
  INGOT_ASSIGN_OR_RETURN(auto images, ctx.images.List(query));
  if (limit && images.size() > static_cast<size_t>(*limit))
    images.resize(static_cast<size_t>(*limit));
  if (ctx.json_output) {
    json::array a;
    for (auto& im : images) a.emplace_back(std::move(im));
    printf("%s\n", json::serialize(json::object{{"images", std::move(a)}}).c_str());
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& im : images)
    rows.push_back({Field(im, "id"), Field(im, "name"), Field(im, "status")});
  PrintTable(stdout, {"ID", "Name", "Status"}, rows);
  return Status::Ok();
}

Status ImageShow(Context& ctx, const CommandLine& cl) {
  INGOT_ASSIGN_OR_RETURN(json::object image, ctx.images.Show(cl.positional[0]));
  PrintImage(ctx, image);
  return Status::Ok();
}

Status ImageUpdate(Context& ctx, const CommandLine& cl) {
  const std::string& id = cl.positional[0];
  // Glance's patch needs "add" for a property the image lacks and "replace" for one it has.
  INGOT_ASSIGN_OR_RETURN(json::object image, ctx.images.Show(id));
  json::array ops;
  auto set = [&](const std::string& key, json::value value) {
    ops.push_back(json::object{{"op", image.contains(key) ? "replace" : "add"},
                               {"path", "/" + key},
                               {"value", std::move(value)}});
  };
  static const std::vector<std::pair<const char*, const char*>> kStrings = {
      {"--name", "name"},
      {"--visibility", "visibility"},
      {"--disk-format", "disk_format"},
      {"--container-format", "container_format"}};
  for (const auto& [option, key] : kStrings) {
    if (auto v = cl.Value(option)) set(key, json::value(*v));
  }
  if (auto v = cl.Value("--min-disk")) set("min_disk", Integer("--min-disk", *v));
  if (auto v = cl.Value("--min-ram")) set("min_ram", Integer("--min-ram", *v));
  if (auto v = cl.Value("--protected")) set("protected", Boolean("--protected", *v));
  for (const auto& p : cl.All("--property")) {
    auto [k, v] = KeyValue("--property", p);
    set(k, json::value(v));
  }
  for (const auto& k : cl.All("--remove-property")) {
    if (!image.contains(k)) return NotFound("image " + id + " has no property '" + k + "'");
    ops.push_back(json::object{{"op", "remove"}, {"path", "/" + k}});
  }
  if (ops.empty()) {
    PrintImage(ctx, image);  // nothing to change: show it, as glance does
    return Status::Ok();
  }
  INGOT_ASSIGN_OR_RETURN(json::object updated, ctx.images.Update(id, ops));
  PrintImage(ctx, updated);
  return Status::Ok();
}

Status ImageDownload(Context& ctx, const CommandLine& cl) {
  const std::string& id = cl.positional[0];
  auto path = cl.Value("--file");
  if (!path && isatty(STDOUT_FILENO)) {
    throw UsageError("give --file OUT, or redirect standard output");
  }
  io::UniqueFd owned;
  int fd = STDOUT_FILENO;
  if (path && *path != "-") {
    INGOT_ASSIGN_OR_RETURN(owned,
                           io::OpenFile(*path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    fd = owned.get();
  }
  CheckedFdWriter sink(fd);
  ProgressBar bar("download", ctx.progress);
  auto headers = ctx.images.Download(
      id, sink, [&](uint64_t done, std::optional<uint64_t> total) { bar.Update(done, total); });
  bar.Finish();
  Status result = headers.status();
  if (headers.ok()) {
    auto expected = headers->Get("Content-MD5");
    std::string got = sink.Md5();
    if (expected && !expected->empty() && *expected != got) {
      result = Corruption("downloaded data has MD5 " + got + " but the server announced " +
                          std::string(*expected));
    }
  }
  if (!result.ok() && owned) {
    unlink(
        path->c_str());  // never leave a truncated or corrupt image behind under the asked-for name
  }
  return result;
}

std::vector<Command> Commands() {
  const std::vector<std::string> kImageFields = {
      "--name",     "--disk-format", "--container-format", "--visibility",
      "--property", "--min-disk",    "--min-ram",          "--protected"};
  auto with = [](std::vector<std::string> a, std::vector<std::string> b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  return {
      {"image-create",
       "--name NAME --disk-format FMT --container-format FMT [--visibility V] [--property K=V]... "
       "[--tag T]... [--min-disk GB] [--min-ram MB] [--protected BOOL] [--id UUID] [--file PATH]",
       "Create an image; with --file (or data piped in) upload its data too.",
       0,
       0,
       with(kImageFields, {"--file", "--id", "--tag"}),
       {},
       ImageCreate},
      {"image-list",
       "[--name N] [--status S] [--visibility V] [--owner O] [--tag T]... [--property-filter "
       "K=V]... "
       "[--sort-key K] [--sort-dir asc|desc] [--sort K:DIR,...] [--limit N] [--page-size N]",
       "List the images visible to you (all pages).",
       0,
       0,
       {"--name", "--status", "--visibility", "--owner", "--member-status", "--tag",
        "--property-filter", "--sort-key", "--sort-dir", "--sort", "--limit", "--page-size",
        "--checksum", "--disk-format", "--container-format"},
       {},
       ImageList},
      {"image-show", "ID", "Show an image's properties.", 1, 1, {}, {}, ImageShow},
      {"image-update",
       "ID [--name N] [--property K=V]... [--remove-property K]... [--visibility V] ...",
       "Change an image's properties (JSON patch).",
       1,
       1,
       with(kImageFields, {"--remove-property"}),
       {},
       ImageUpdate},
      {"image-tag-update",
       "ID TAG",
       "Add a tag to an image.",
       2,
       2,
       {},
       {},
       [](Context& ctx, const CommandLine& cl) {
         return ctx.images.AddTag(cl.positional[0], cl.positional[1]);
       }},
      {"image-tag-delete",
       "ID TAG",
       "Remove a tag from an image.",
       2,
       2,
       {},
       {},
       [](Context& ctx, const CommandLine& cl) {
         return ctx.images.DeleteTag(cl.positional[0], cl.positional[1]);
       }},
      {"image-upload",
       "ID [--file PATH]",
       "Upload an image's data (from PATH, or standard input).",
       1,
       1,
       {"--file"},
       {},
       [](Context& ctx, const CommandLine& cl) {
         return UploadData(ctx, cl.positional[0], cl.Value("--file"));
       }},
      {"image-download",
       "ID [--file OUT]",
       "Download an image's data (to OUT, or standard output); checks MD5.",
       1,
       1,
       {"--file"},
       {},
       ImageDownload},
      {"image-deactivate",
       "ID",
       "Deactivate an image (admin).",
       1,
       1,
       {},
       {},
       [](Context& ctx, const CommandLine& cl) { return ctx.images.Deactivate(cl.positional[0]); }},
      {"image-reactivate",
       "ID",
       "Reactivate a deactivated image (admin).",
       1,
       1,
       {},
       {},
       [](Context& ctx, const CommandLine& cl) { return ctx.images.Reactivate(cl.positional[0]); }},
      {"image-delete",
       "ID [ID...]",
       "Delete images.",
       1,
       1000,
       {},
       {},
       [](Context& ctx, const CommandLine& cl) {
         if (cl.positional.size() == 1) return ctx.images.Delete(cl.positional[0]);
         // Several: try them all, name each failure, then fail as a whole.
         Status first;
         for (const auto& id : cl.positional) {
           Status s = ctx.images.Delete(id);
           if (!s.ok()) {
             fprintf(stderr, "ingot: failed to delete %s: %s\n", id.c_str(), s.message().c_str());
             if (first.ok()) first = s;
           }
         }
         return first.ok() ? first : Status(first.code(), "not every image could be deleted");
       }},
  };
}

void PrintUsage(FILE* out, const std::vector<Command>& commands, const Command* only) {
  if (only) {
    fprintf(out, "usage: ingot [global options] %s %s\n\n%s\n", only->name, only->usage,
            only->help);
    return;
  }
  fprintf(
      out,
      "usage: ingot [--url URL] [--token TOKEN] [--json] [--progress] [--timeout SECONDS] COMMAND "
      "[ARGS]\n\n"
      "  --url URL      the Image API endpoint (default $INGOT_URL, else http://127.0.0.1:9292)\n"
      "  --token TOKEN  sent as X-Auth-Token (default $OS_AUTH_TOKEN)\n"
      "  --json         print JSON instead of tables\n"
      "  --progress     draw progress bars even when standard error is not a terminal\n"
      "  --timeout S    give up when the server makes no progress for S seconds (default 300)\n\n"
      "commands:\n");
  for (const auto& c : commands) fprintf(out, "  %-18s %s\n", c.name, c.help);
  fprintf(out, "\n`ingot help COMMAND` shows a command's arguments.\n");
}

int Main(int argc, char** argv) {
  const std::vector<Command> commands = Commands();
  CommandLine cl;
  auto parsed = Parse(argc - 1, argv + 1, commands, cl);
  if (auto* err = std::get_if<UsageError>(&parsed)) {
    fprintf(stderr, "ingot: %s\n", err->message.c_str());
    fprintf(stderr, "Run `ingot --help` for usage.\n");
    return kExitUsage;
  }
  const std::string& name = std::get<std::string>(parsed);
  const Command* command = nullptr;
  for (const auto& c : commands) {
    if (name == c.name) command = &c;
  }
  bool help = cl.flags.count("--help") || cl.flags.count("-h");
  if (name == "help") {
    const Command* about = nullptr;
    for (const auto& c : commands) {
      if (!cl.positional.empty() && cl.positional[0] == c.name) about = &c;
    }
    PrintUsage(stdout, commands, about);
    return kExitOk;
  }
  if (help || command == nullptr) {
    PrintUsage(help ? stdout : stderr, commands, command);
    return help ? kExitOk : kExitUsage;
  }
  int n = static_cast<int>(cl.positional.size());
  if (n < command->min_positional || n > command->max_positional) {
    fprintf(stderr, "ingot: wrong number of arguments\n");
    PrintUsage(stderr, commands, command);
    return kExitUsage;
  }

  std::string url_text = cl.Value("--url").value_or("");
  if (url_text.empty()) {
    const char* env = getenv("INGOT_URL");
    url_text = env && *env ? env : "http://127.0.0.1:9292";
  }
  auto url = http::ParseUrl(url_text);
  if (!url.ok()) {
    fprintf(stderr, "ingot: %s\n", url.status().message().c_str());
    return kExitUsage;
  }
  std::string token = cl.Value("--token").value_or("");
  if (token.empty()) {
    if (const char* env = getenv("OS_AUTH_TOKEN")) token = env;
  }
  std::chrono::milliseconds timeout(300000);
  try {
    if (auto t = cl.Value("--timeout")) timeout = std::chrono::seconds(Integer("--timeout", *t));
    ImagesClient images(std::move(*url), token, timeout);
    Context ctx{images, cl.flags.count("--json") > 0,
                cl.flags.count("--progress") > 0 || isatty(STDERR_FILENO)};
    Status s = command->run(ctx, cl);
    if (!s.ok()) {
      fprintf(stderr, "ingot: %s\n", s.message().c_str());
      return kExitFailed;
    }
  } catch (const UsageError& e) {
    fprintf(stderr, "ingot: %s\n", e.message.c_str());
    PrintUsage(stderr, commands, command);
    return kExitUsage;
  }
  if (fflush(stdout) != 0) {
    perror("ingot: writing standard output");
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace
}  // namespace ingot::cli

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  return ingot::cli::Main(argc, argv);
}
