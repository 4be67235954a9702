#include "deploy/guestfish/engine.h"

#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <vector>

#include "deploy/guestfish/guestfish_runner.h"
#include "deploy/guestfish/native.h"
#include "deploy/guestfish/script.h"

namespace ingot::deploy::guestfish {

namespace {

// The run's private working directory: where local files (upload's sources, download's
// destinations) live. Removed when the run ends.
class WorkDir {
 public:
  static Result<WorkDir> Make() {
    std::string base = "/tmp";
    if (const char* t = getenv("TMPDIR"); t && *t) base = t;
    std::string templ = base + "/ingot-plan-XXXXXX";
    if (!mkdtemp(templ.data())) return FromErrno(errno, "mkdtemp " + templ);
    return WorkDir(templ);
  }
  WorkDir(WorkDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ~WorkDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit WorkDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

// The script's own errors are the caller's bad input; the volume's and the host's stay theirs.
Code CallerCode(Code code) {
  if (code != Code::kIoError && code != Code::kStorageFull && code != Code::kRefused &&
      code != Code::kTooLarge && code != Code::kUnsupported && code != Code::kCorruption) {
    return Code::kInvalidArgument;
  }
  return code;
}

Status Named(const Script& script, const Status& s) {
  return Status(CallerCode(s.code()), script.name + " " + s.message());
}

// Several scripts joined into one session: where each one's lines start in the joined text, so a
// "line N: …" message of the joined run names the script and the line the operator wrote.
class Joined {
 public:
  explicit Joined(std::span<const Script> scripts) : scripts_(scripts) {
    int line = 1;
    for (const Script& s : scripts) {
      first_line_.push_back(line);
      text_ += s.text;
      if (!s.text.empty() && s.text.back() != '\n') text_ += '\n';
      for (char c : s.text) line += c == '\n';
      if (!s.text.empty() && s.text.back() != '\n') ++line;
    }
  }
  const std::string& text() const { return text_; }

  // "line N: rest" (N in the joined text) -> "<script> line <n>: rest".
  std::string Locate(std::string_view message) const {
    int n = 0;
    size_t colon = message.find(": ");
    if (message.starts_with("line ") && colon != std::string_view::npos) {
      for (char c : message.substr(5, colon - 5))
        n = c >= '0' && c <= '9' ? n * 10 + (c - '0') : -1;
    }
    if (n <= 0) return std::string(Names()) + " " + std::string(message);
    size_t k = first_line_.size() - 1;
    while (k > 0 && first_line_[k] > n) --k;
    return scripts_[k].name + " line " + std::to_string(n - first_line_[k] + 1) +
           std::string(message.substr(colon));
  }
  Status Named(const Status& s) const { return Status(CallerCode(s.code()), Locate(s.message())); }

 private:
  std::string Names() const {
    std::string names;
    for (const Script& s : scripts_) names += (names.empty() ? "" : "+") + s.name;
    return names;
  }
  std::span<const Script> scripts_;
  std::vector<int> first_line_;
  std::string text_;
};

}  // namespace

std::optional<Engine> ParseEngine(std::string_view name) {
  if (name == "auto") return Engine::kAuto;
  if (name == "native") return Engine::kNative;
  if (name == "guestfish") return Engine::kGuestfish;
  return std::nullopt;
}

std::string_view EngineName(Engine engine) {
  switch (engine) {
    case Engine::kAuto:
      return "auto";
    case Engine::kNative:
      return "native";
    case Engine::kGuestfish:
      return "guestfish";
  }
  return "auto";
}

Result<RunReport> Run(OsVolume& volume, const Script& script, Engine engine) {
  return Run(volume, std::span<const Script>(&script, 1), engine);
}

Result<RunReport> Run(OsVolume& volume, std::span<const Script> scripts, Engine engine) {
  // Each script on its own first: an unterminated heredoc must not swallow the next script.
  for (const Script& script : scripts) {
    auto parsed = ParseScript(script.text);
    if (!parsed.ok()) return Named(script, parsed.status());
    if (Status s = Validate(*parsed); !s.ok()) return Named(script, s);
  }
  const Joined joined(scripts);
  auto parsed = ParseScript(joined.text());
  if (!parsed.ok()) return joined.Named(parsed.status());
  INGOT_ASSIGN_OR_RETURN(WorkDir dir, WorkDir::Make());
  std::optional<LocalJail> jail;
  for (const Command& c : parsed->commands) {
    if (c.kind != Command::Kind::kLocal && !c.pipe) continue;
    auto made = LocalJail::Make(dir.path());
    if (!made.ok())
      return joined.Named(Status(
          made.status().code(), "line " + std::to_string(c.line) + ": " + made.status().message()));
    jail.emplace(std::move(*made));
    break;
  }
  const LocalJail* local = jail ? &*jail : nullptr;

  RunReport report;
  if (engine != Engine::kGuestfish) {
    INGOT_ASSIGN_OR_RETURN(NativeOutcome native, RunNative(volume, *parsed, dir.path(), local));
    if (!native.needs_guestfish) {
      report.used = Engine::kNative;
      report.log = std::move(native.log);
      if (!native.status.ok()) return joined.Named(native.status);
      return report;
    }
    const std::string why =
        joined.Locate("line " + std::to_string(native.line) + ": " + native.reason);
    if (engine == Engine::kNative) {
      return Unsupported(why + " (the script needs the guestfish engine)");
    }
    report.log = "native engine: " + why + "; running guestfish instead\n";
  }
  auto run = RunGuestfish(volume, *parsed, dir.path(), local);
  if (!run.ok()) return Status(run.status().code(), joined.Locate(run.status().message()));
  report.used = Engine::kGuestfish;
  report.log += run->log;
  if (!run->status.ok()) return joined.Named(run->status);
  return report;
}

}  // namespace ingot::deploy::guestfish
