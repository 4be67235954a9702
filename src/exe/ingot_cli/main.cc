// `ingot`: the Image API v2 from the command line, with the glance client's command names.
//
//   ingot [--url URL] [--token TOKEN] [--json] COMMAND [ARGS]
//
// Exit status: 0 success, 1 the server (or the network, or a local file, or an import task that was
// waited for) failed, 2 usage error.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "exe/ingot_cli/boot_commands.h"
#include "exe/ingot_cli/build_commands.h"
#include "exe/ingot_cli/bundle_commands.h"
#include "exe/ingot_cli/deploy_commands.h"
#include "exe/ingot_cli/machine_commands.h"
#include "exe/ingot_cli/images_client.h"
#include "exe/ingot_cli/terminal.h"
#include "http/url.h"
#include "io/adapters.h"
#include "io/file.h"
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

// Where image data goes: the image itself (PUT …/file) or the staging area (PUT …/stage).
enum class DataTarget { kFile, kStage };

Status UploadData(Context& ctx, const std::string& id, const std::optional<std::string>& path,
                  DataTarget target = DataTarget::kFile) {
  INGOT_ASSIGN_OR_RETURN(UploadSource src, OpenUpload(path));
  io::FdReader reader(src.fd, "reading the image data");
  const bool stage = target == DataTarget::kStage;
  ProgressBar bar(stage ? "stage" : "upload", ctx.progress);
  auto progress = [&](uint64_t done, std::optional<uint64_t> total) { bar.Update(done, total); };
  Status s = stage ? ctx.images.Stage(id, reader, src.size, progress)
                   : ctx.images.Upload(id, reader, src.size, progress);
  bar.Finish();
  return s;
}

// The new image's fields from image-create's options.
json::object ImageFromOptions(const CommandLine& cl) {
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
  return image;
}

Status ImageCreate(Context& ctx, const CommandLine& cl) {
  json::object image = ImageFromOptions(cl);
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

// ---- Import and tasks ---------------------------------------------------------------------------

constexpr const char* kImportingTo = "os_glance_importing_to_stores";
constexpr const char* kFailedImport = "os_glance_failed_import";

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// The body of POST /v2/images/{id}/import from the command line. Combinations the server would
// refuse are usage errors here, before anything is sent (the glance client's checks).
json::object ImportRequestFrom(const CommandLine& cl, const std::string& method) {
  auto uri = cl.Value("--uri");
  auto region = cl.Value("--remote-region");
  auto remote_id = cl.Value("--remote-image-id");
  if (method == "web-download" && !uri) throw UsageError("web-download needs --uri URI");
  if (uri && method != "web-download")
    throw UsageError("--uri goes with --import-method web-download");
  if (method == "glance-download" && (!region || !remote_id)) {
    throw UsageError("glance-download needs --remote-region and --remote-image-id");
  }
  if ((region || remote_id) && method != "glance-download") {
    throw UsageError(
        "--remote-region and --remote-image-id go with --import-method glance-download");
  }
  json::array stores;
  for (const auto& list : cl.All("--stores")) {
    size_t start = 0;
    for (;;) {
      size_t comma = list.find(',', start);
      std::string id = list.substr(start, comma == std::string::npos ? comma : comma - start);
      if (id.empty())
        throw UsageError("--stores wants store ids separated by commas, not '" + list + "'");
      stores.emplace_back(id);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  const bool all_stores = cl.flags.count("--all-stores") > 0;
  if (all_stores && !stores.empty()) throw UsageError("give --stores or --all-stores, not both");

  json::object m{{"name", method}};
  if (uri) m["uri"] = *uri;
  if (region) m["glance_region"] = *region;
  if (remote_id) m["glance_image_id"] = *remote_id;
  json::object request{{"method", std::move(m)}};
  if (!stores.empty()) request["stores"] = std::move(stores);
  if (all_stores) request["all_stores"] = true;
  // Sent only when asked: the server's default (every store must succeed) is the safe one.
  if (cl.flags.count("--allow-failure")) request["all_stores_must_succeed"] = false;
  return request;
}

// The import methods the server offers (GET /v2/info/import).
Result<std::vector<std::string>> OfferedMethods(Context& ctx) {
  INGOT_ASSIGN_OR_RETURN(json::object info, ctx.images.ImportInfo());
  std::vector<std::string> out;
  if (auto* methods = info.if_contains("import-methods"); methods && methods->is_object()) {
    if (auto* value = methods->as_object().if_contains("value"); value && value->is_array()) {
      for (const auto& m : value->as_array()) {
        if (m.is_string()) out.emplace_back(m.as_string());
      }
    }
  }
  return out;
}

// How an import ended, as --wait saw it.
struct ImportOutcome {
  json::object image;                // the image once the import was over
  std::optional<json::object> task;  // the task that ran it; none when there was nothing to do
};

// Polls the image every half second, drawing its import state, until the import is over: the image
// has left `importing` (copy-image: os_glance_importing_to_stores is empty) and the task the import
// added has ended (the server moves the image before it closes the task). `earlier_tasks` are the
// image's tasks before the import, so the new one can be told apart.
Result<ImportOutcome> WaitForImport(Context& ctx, const std::string& id, bool copy,
                                    const std::set<std::string>& earlier_tasks) {
  StatusLine line("import", ctx.progress);
  for (;;) {
    auto image = ctx.images.Show(id);
    if (!image.ok()) {
      line.Finish();
      return image.status();
    }
    line.Update(ImportState(*image));
    const bool moved =
        copy ? Field(*image, kImportingTo).empty() : Field(*image, "status") != "importing";
    if (moved) {
      auto tasks = ctx.images.ImageTasks(id);
      if (!tasks.ok()) {
        line.Finish();
        return tasks.status();
      }
      std::optional<json::object> task;
      for (auto& t : *tasks) {  // newest first
        if (!earlier_tasks.count(Field(t, "id"))) {
          task = std::move(t);
          break;
        }
      }
      const std::string status = task ? Field(*task, "status") : "";
      if (!task || status == "success" || status == "failure") {
        line.Finish();
        return ImportOutcome{std::move(*image), std::move(task)};
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// Prints how the task ended (standard error: standard output is the image); a failed task fails the
// command.
Status ReportImport(const ImportOutcome& outcome) {
  std::string failed = Field(outcome.image, kFailedImport);
  std::string failed_text = failed.empty() ? "" : "; failed stores: " + failed;
  if (!outcome.task) {
    fprintf(stderr, "nothing to import: every store asked for has the image already\n");
    return Status::Ok();
  }
  const json::object& task = *outcome.task;
  std::string message = Field(task, "message");
  std::string message_text = message.empty() ? "" : ": " + message;
  if (Field(task, "status") != "success") {
    return Status(Code::kIoError,
                  "import task " + Field(task, "id") + " failed" + message_text + failed_text);
  }
  fprintf(stderr, "import task %s: success%s%s\n", Field(task, "id").c_str(), message_text.c_str(),
          failed_text.c_str());
  return Status::Ok();
}

// Posts the import and, with `wait`, watches it to its end. Returns the image as it is then.
Result<json::object> Import(Context& ctx, const std::string& id, const json::object& request,
                            bool wait) {
  if (!wait) {
    INGOT_RETURN_IF_ERROR(ctx.images.Import(id, request));
    return ctx.images.Show(id);
  }
  std::set<std::string> earlier;
  INGOT_ASSIGN_OR_RETURN(auto tasks, ctx.images.ImageTasks(id));
  for (const auto& t : tasks) earlier.insert(Field(t, "id"));
  INGOT_RETURN_IF_ERROR(ctx.images.Import(id, request));
  const bool copy = request.at("method").as_object().at("name") == "copy-image";
  INGOT_ASSIGN_OR_RETURN(ImportOutcome outcome, WaitForImport(ctx, id, copy, earlier));
  INGOT_RETURN_IF_ERROR(ReportImport(outcome));
  return std::move(outcome.image);
}

Status ImageImport(Context& ctx, const CommandLine& cl) {
  const std::string& id = cl.positional[0];
  // glance-direct is the glance client's default too.
  json::object request =
      ImportRequestFrom(cl, cl.Value("--import-method").value_or("glance-direct"));
  INGOT_ASSIGN_OR_RETURN(json::object image,
                         Import(ctx, id, request, cl.flags.count("--wait") > 0));
  PrintImage(ctx, image);
  return Status::Ok();
}

Status ImageCreateViaImport(Context& ctx, const CommandLine& cl) {
  json::object image = ImageFromOptions(cl);
  auto file = cl.Value("--file");
  const bool has_data = file.has_value() || StdinHasData();
  auto method = cl.Value("--import-method");
  if (!method && has_data) method = "glance-direct";
  std::optional<json::object> request;
  if (method) {
    if (*method == "copy-image") throw UsageError("copy-image cannot be used to create an image");
    if (*method == "glance-direct" && !has_data) {
      throw UsageError("glance-direct needs --file PATH (or the image data piped in)");
    }
    if (*method != "glance-direct" && has_data) {
      throw UsageError("image data (--file or piped in) goes with --import-method glance-direct");
    }
    request = ImportRequestFrom(cl, *method);
  } else {
    for (const char* option : {"--uri", "--stores", "--remote-region", "--remote-image-id"}) {
      if (cl.Value(option)) throw UsageError(std::string(option) + " needs --import-method");
    }
    for (const char* flag : {"--all-stores", "--allow-failure", "--wait"}) {
      if (cl.flags.count(flag)) throw UsageError(std::string(flag) + " needs --import-method");
    }
  }
  // Everything that can be checked is checked before the image is created, so a typo does not
  // leave a queued image behind: the data file, and that the server offers the method.
  if (file && *file != "-") {
    if (access(file->c_str(), R_OK) != 0) return FromErrno(errno, "open " + *file);
  }
  if (method) {
    INGOT_ASSIGN_OR_RETURN(auto offered, OfferedMethods(ctx));
    if (!Contains(offered, *method)) {
      return InvalidArgument("the server does not offer the import method '" + *method +
                             "' (it offers: " + (offered.empty() ? "none" : Join(offered)) + ")");
    }
  }
  INGOT_ASSIGN_OR_RETURN(json::object created, ctx.images.Create(image));
  if (method) {
    std::string id = Field(created, "id");
    if (*method == "glance-direct") {
      if (Status s = UploadData(ctx, id, file, DataTarget::kStage); !s.ok()) {
        return s.WithContext("image " + id + " was created but staging its data failed");
      }
    }
    auto imported = Import(ctx, id, *request, cl.flags.count("--wait") > 0);
    if (!imported.ok()) {
      return imported.status().WithContext("image " + id + " was created but its import failed");
    }
    created = std::move(*imported);
  }
  PrintImage(ctx, created);
  return Status::Ok();
}

Status ImportInfo(Context& ctx, const CommandLine&) {
  if (ctx.json_output) {
    INGOT_ASSIGN_OR_RETURN(json::object info, ctx.images.ImportInfo());
    printf("%s\n", json::serialize(info).c_str());
    return Status::Ok();
  }
  INGOT_ASSIGN_OR_RETURN(auto methods, OfferedMethods(ctx));
  PrintTable(stdout, {"Property", "Value"}, {{"import-methods", Join(methods)}});
  return Status::Ok();
}

Status TaskList(Context& ctx, const CommandLine& cl) {
  int64_t limit = 0;
  if (auto v = cl.Value("--limit")) limit = Integer("--limit", *v);
  INGOT_ASSIGN_OR_RETURN(auto tasks, ctx.images.ListTasks(limit));
  if (ctx.json_output) {
    json::array a;
    for (auto& t : tasks) a.emplace_back(std::move(t));
    printf("%s\n", json::serialize(json::object{{"tasks", std::move(a)}}).c_str());
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : tasks) {
    rows.push_back({Field(t, "id"), Field(t, "type"), Field(t, "status"), Field(t, "owner")});
  }
  PrintTable(stdout, {"ID", "Type", "Status", "Owner"}, rows);
  return Status::Ok();
}

Status TaskShow(Context& ctx, const CommandLine& cl) {
  INGOT_ASSIGN_OR_RETURN(json::object task, ctx.images.ShowTask(cl.positional[0]));
  if (ctx.json_output) {
    printf("%s\n", json::serialize(task).c_str());
  } else {
    PrintProperties(stdout, task);  // input and result are objects: shown as compact JSON
  }
  return Status::Ok();
}

Status StoresInfo(Context& ctx, const CommandLine&) {
  INGOT_ASSIGN_OR_RETURN(auto stores, ctx.images.ListStores());
  if (ctx.json_output) {
    json::array a;
    for (auto& st : stores) a.emplace_back(std::move(st));
    printf("%s\n", json::serialize(json::object{{"stores", std::move(a)}}).c_str());
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& st : stores) {
    // Glance marks the default store with the text "true" and leaves the others unmarked.
    rows.push_back(
        {Field(st, "id"), Field(st, "default") == "true" ? "yes" : "", Field(st, "description")});
  }
  PrintTable(stdout, {"ID", "Default", "Description"}, rows);
  return Status::Ok();
}

std::vector<Command> Commands() {
  const std::vector<std::string> kImageFields = {
      "--name",     "--disk-format", "--container-format", "--visibility",
      "--property", "--min-disk",    "--min-ram",          "--protected"};
  const std::vector<std::string> kImportOptions = {"--import-method", "--uri", "--stores",
                                                   "--remote-region", "--remote-image-id"};
  const std::vector<std::string> kImportFlags = {"--all-stores", "--allow-failure", "--wait"};
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
      {"image-stage",
       "ID [--file PATH]",
       "Stage an image's data for import (from PATH, or standard input).",
       1,
       1,
       {"--file"},
       {},
       [](Context& ctx, const CommandLine& cl) {
         return UploadData(ctx, cl.positional[0], cl.Value("--file"), DataTarget::kStage);
       }},
      {"image-import",
       "ID [--import-method glance-direct|web-download|copy-image|glance-download] [--uri URI] "
       "[--stores S1,S2] [--all-stores] [--allow-failure] [--remote-region R --remote-image-id "
       "ID] [--wait]",
       "Import an image's data; with --wait, follow the import to its end.",
       1,
       1,
       kImportOptions,
       kImportFlags,
       ImageImport},
      {"image-create-via-import",
       "--name NAME --disk-format FMT --container-format FMT [image-create's options] "
       "[--import-method M] [--file PATH] [--uri URI] [--stores S1,S2] [--all-stores] "
       "[--allow-failure] [--remote-region R --remote-image-id ID] [--wait]",
       "Create an image and import its data (glance-direct stages --file or piped data first).",
       0,
       0,
       with(with(kImageFields, {"--file", "--id", "--tag"}), kImportOptions),
       kImportFlags,
       ImageCreateViaImport},
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
      {"import-info", "", "Show the import methods the server offers.", 0, 0, {}, {}, ImportInfo},
      {"stores-info", "", "List the stores images can be imported to.", 0, 0, {}, {}, StoresInfo},
      {"task-list",
       "[--limit N]",
       "List tasks (admin): ID, type, status, owner.",
       0,
       0,
       {"--limit"},
       {},
       TaskList},
      {"task-show", "ID", "Show a task: its input, result and message.", 1, 1, {}, {}, TaskShow},
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
  for (const auto& c : commands) fprintf(out, "  %-23s %s\n", c.name, c.help);
  fprintf(out, "\n`ingot help COMMAND` shows a command's arguments.\n");
}

int Main(int argc, char** argv) {
  if (auto rc = RunBuildCommand(argc, argv)) return *rc;  // recipe, build (exe/ingot_cli/build_commands.h)
  if (auto rc = RunBootCommand(argc, argv)) return *rc;  // iso, os, files, microkernel, publish
  if (auto rc = RunMachineCommand(argc, argv)) return *rc;  // profile, machine
  if (auto rc = RunDeployCommand(argc, argv)) return *rc;  // deploy, volume (Image Streamer's /rest)
  if (auto rc = RunBundleCommand(argc, argv)) return *rc;  // bundle (/rest/artifact-bundles)
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
