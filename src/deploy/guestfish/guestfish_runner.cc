#include "deploy/guestfish/guestfish_runner.h"

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>

#include "common/process.h"
#include "nbd/server.h"

extern char** environ;

namespace ingot::deploy::guestfish {

namespace {

// The volume as an NBD export. The run holds the volume; nobody else writes it meanwhile.
class VolumeAsExport final : public nbd::Export {
 public:
  explicit VolumeAsExport(OsVolume& volume) : volume_(volume) {}
  uint64_t Size() const override { return volume_.Size(); }
  bool read_only() const override { return false; }
  Status Read(uint64_t offset, std::span<uint8_t> buf) override {
    return volume_.Read(offset, buf);
  }
  Status Write(uint64_t offset, std::span<const uint8_t> data, bool fua) override {
    INGOT_RETURN_IF_ERROR(volume_.Write(offset, data));
    return fua ? volume_.Flush() : Status::Ok();
  }
  Status Flush() override { return volume_.Flush(); }
  Status Trim(uint64_t offset, uint64_t length, bool fua) override {
    INGOT_RETURN_IF_ERROR(volume_.Trim(offset, length));
    return fua ? volume_.Flush() : Status::Ok();
  }
  Status WriteZeroes(uint64_t offset, uint64_t length, bool may_punch, bool fua) override {
    INGOT_RETURN_IF_ERROR(volume_.WriteZeroes(offset, length, may_punch));
    return fua ? volume_.Flush() : Status::Ok();
  }
  Result<nbd::ExportExtent> BlockStatus(uint64_t offset, uint64_t max_length) override {
    INGOT_ASSIGN_OR_RETURN(VolumeExtent e, volume_.BlockStatus(offset, max_length));
    return nbd::ExportExtent{e.length, !e.allocated, e.zero};
  }
  std::optional<FileRange> MapToFile(uint64_t offset, uint64_t max_length) override {
    auto r = volume_.MapToFile(offset, max_length);
    if (!r) return std::nullopt;
    return FileRange{r->fd, r->file_offset, r->length};
  }

 private:
  OsVolume& volume_;
};

// Serves one export, to 127.0.0.1 only.
class PrivateResolver final : public nbd::ExportResolver {
 public:
  PrivateResolver(std::string name, std::shared_ptr<nbd::Export> exp)
      : name_(std::move(name)), export_(std::move(exp)) {}
  Result<std::shared_ptr<nbd::Export>> Resolve(std::string_view name,
                                               std::string_view peer) override {
    if (name != name_ || (peer != "127.0.0.1" && peer != "::ffff:127.0.0.1")) {
      return NotFound("no such export");
    }
    return export_;
  }
  std::vector<std::string> List(std::string_view) override { return {}; }

 private:
  std::string name_;
  std::shared_ptr<nbd::Export> export_;
};

std::string RandomToken() {
  std::random_device rd;
  static const char kHex[] = "0123456789abcdef";
  std::string t;
  for (int i = 0; i < 16; ++i) t.push_back(kHex[rd() % 16]);
  return t;
}

}  // namespace

Result<GuestfishOutcome> RunGuestfish(OsVolume& volume, const ParsedScript& script,
                                      const std::string& workdir, const LocalJail* jail,
                                      std::chrono::seconds wall) {
  const std::string token = RandomToken();
  const std::string export_name = "ingot-plan-" + token;
  auto exp = std::make_shared<VolumeAsExport>(volume);
  PrivateResolver resolver(export_name, exp);
  nbd::ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.max_connections = 8;
  options.max_connections_per_client = 8;
  nbd::Server server(options, resolver);
  INGOT_RETURN_IF_ERROR(server.Start());

  // What guestfish reads: launch, then each command after an echo of its marker.
  const std::string marker = "@@ingot-" + token + "-line-";
  std::string text = "run\n";
  std::map<int, const Command*> by_line;
  for (const Command& c : script.commands) {
    if (c.name == "run") continue;  // the handle is launched already
    text += "echo " + marker + std::to_string(c.line) + "@@\n";
    if (c.kind == Command::Kind::kLocal || c.pipe) {
      // Local commands run in the jail, as with the native engine; `!` must not read the rest of
      // the script from guestfish's standard input.
      if (!jail) return Internal("a local command without a jail");
      Command jailed = c;
      if (c.kind == Command::Kind::kLocal) jailed.local = jail->CommandLine(c.local) + " </dev/null";
      if (c.pipe) jailed.pipe = " " + jail->CommandLine(*c.pipe);
      text += Unparse(jailed);
    } else {
      text += Unparse(c);
    }
    by_line[c.line] = &c;
  }

  process::Spec spec;
  spec.argv = {"guestfish",
               "--rw",
               "--no-progress-bars",
               "--format=raw",
               "-a",
               "nbd://127.0.0.1:" + std::to_string(server.port()) + "/" + export_name};
  spec.env = process::CleanEnv({{"HOME", workdir}});
  // The operator's libguestfs settings (backend, cache directory, …) pass through.
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    if (kv.rfind("LIBGUESTFS_", 0) == 0 && kv.find('=') != std::string::npos) {
      spec.env[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
    }
  }
  if (!spec.env.count("LIBGUESTFS_BACKEND")) spec.env["LIBGUESTFS_BACKEND"] = "direct";
  if (!spec.env.count("LIBGUESTFS_BACKEND_SETTINGS") && ::access("/dev/kvm", R_OK | W_OK) != 0) {
    spec.env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg";  // no KVM here: emulate
  }
  if (const char* tmp = std::getenv("TMPDIR")) spec.env["TMPDIR"] = tmp;
  spec.cwd = workdir;
  spec.new_mount_ns = false;
  spec.new_pid_ns = ::geteuid() == 0;  // the appliance dies with the run
  spec.new_net_ns = false;             // it reaches our NBD server on 127.0.0.1
  spec.limits.wall = wall;
  spec.stdin_data = text;

  GuestfishOutcome outcome;
  int current_line = 0;
  std::string last_error;
  int error_line = 0;
  spec.on_line = [&](std::string_view line) {
    if (line.rfind(marker, 0) == 0) {
      current_line = std::atoi(std::string(line.substr(marker.size())).c_str());
      auto it = by_line.find(current_line);
      if (it != by_line.end()) outcome.log += "> " + Describe(*it->second) + "\n";
      return;
    }
    outcome.log.append(line);
    outcome.log.push_back('\n');
    // guestfish prefixes errors with where in its input they happened ("*stdin*:12: "): our
    // rendering's line, not the script's; the marker says which command it was.
    if (line.rfind("*stdin*:", 0) == 0) {
      size_t colon = line.find(": ", 8);
      if (colon != std::string_view::npos) line = line.substr(colon + 2);
    }
    static constexpr std::string_view kError = "libguestfs: error: ";
    if (line.rfind(kJailPrefix, 0) == 0) {
      last_error = "local command: " + std::string(line.substr(kJailPrefix.size()));
      error_line = current_line;
    } else if (line.rfind(kError, 0) == 0) {
      last_error = std::string(line.substr(kError.size()));
      error_line = current_line;
    } else if (line.rfind("guestfish: ", 0) == 0 && last_error.empty()) {
      last_error = std::string(line.substr(11));
      error_line = current_line;
    }
  };
  process::Sandbox sandbox;
  auto ran = sandbox.Run(spec);
  server.Stop();
  if (!ran.ok()) return ran.status();
  if (ran->exit_code == 127) {
    return Unavailable("guestfish is not installed (Debian package libguestfs-tools)");
  }
  if (ran->timed_out) return Timeout("guestfish did not finish within " + ran->Describe());
  if (!ran->ok()) {
    if (current_line == 0) {
      // Nothing of the script ran: the appliance did not start.
      return Unavailable("guestfish could not launch its appliance (" + ran->Describe() +
                         "): " + (last_error.empty() ? outcome.log.substr(0, 2000) : last_error));
    }
    outcome.status = InvalidArgument(
        "line " + std::to_string(error_line ? error_line : current_line) + ": " +
        (last_error.empty() ? "guestfish failed (" + ran->Describe() + ")" : last_error));
  }
  return outcome;
}

}  // namespace ingot::deploy::guestfish
