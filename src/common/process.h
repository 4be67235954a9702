// Running an external tool (mmdebstrap, mksquashfs, a build step's script) as a sandboxed child:
// its own process group, optionally its own mount, PID and network namespaces, a clean environment
// (only what the caller passes), resource limits, and its output captured line by line.
//
// The guarantee the build engine relies on: when a Sandbox run ends — normally, by Kill(), or
// because the parent process itself died (SIGKILL of ingotd included) — nothing it started keeps
// running and nothing it mounted stays mounted. That is the kernel's doing, not cleanup code:
//   * with `new_pid_ns`, the tool runs as PID 1 of a fresh PID namespace; when PID 1 dies, the
//     kernel kills every other process in the namespace;
//   * PID 1 has PR_SET_PDEATHSIG = SIGKILL, so the parent's death kills it (and so the namespace);
//   * with `new_mount_ns`, mounts made inside (overlays, chroot binds of /proc, /sys, /dev) live in
//     a private namespace that disappears with its last process; nothing propagates to the host.
//
// Threads: Run() blocks its caller; Kill() may be called from any thread while Run() runs.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace ingot::process {

struct Limits {
  uint64_t address_space = 0;  // RLIMIT_AS bytes, 0 = unlimited
  uint64_t open_files = 4096;  // RLIMIT_NOFILE
  uint64_t file_size = 0;      // RLIMIT_FSIZE bytes, 0 = unlimited
  uint64_t cpu_seconds = 0;    // RLIMIT_CPU, 0 = unlimited
  std::chrono::seconds wall{0};  // killed after this long, 0 = no deadline
};

struct Spec {
  std::vector<std::string> argv;              // argv[0] is looked up in env PATH
  std::map<std::string, std::string> env;     // the whole environment; nothing is inherited
  std::string cwd = "/";
  bool new_mount_ns = true;   // private mount namespace (mounts vanish with the run)
  bool new_pid_ns = true;     // the tool is PID 1 of its own PID namespace, /proc remounted
  bool new_net_ns = false;    // no network at all (only a down loopback)
  Limits limits;
  // Each line of the combined stdout and stderr (without its newline), as it arrives.
  std::function<void(std::string_view line)> on_line;
  // Bytes written to the tool's stdin, then closed (empty: /dev/null).
  std::string stdin_data;
};

struct Outcome {
  int exit_code = -1;      // the tool's exit status, when it exited
  int signal = 0;          // the signal that ended it, when it was killed
  bool killed = false;     // ended by Kill() or the wall deadline
  bool timed_out = false;  // ended by the wall deadline
  bool ok() const { return exit_code == 0 && signal == 0; }
  std::string Describe() const;  // "exit code 3", "killed by signal 9", "timed out after ..."
};

// A handle that can end a run from another thread.
class Sandbox {
 public:
  Sandbox() = default;
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Starts the tool and waits for it. A Status only when it could not be started at all
  // (fork/exec failure, a tool not found is exit code 127 in the Outcome).
  Result<Outcome> Run(const Spec& spec);
  // Ends the current run (and any later Run() on this object) with SIGKILL to its process group;
  // its PID namespace takes every descendant with it.
  void Kill();
  bool killed() const { return killed_.load(); }

 private:
  std::atomic<pid_t> pgid_{0};
  std::atomic<bool> killed_{false};
};

// The environment every build tool gets: PATH, a C.UTF-8 locale, HOME=/root, TMPDIR, plus `extra`.
std::map<std::string, std::string> CleanEnv(std::map<std::string, std::string> extra = {});

}  // namespace ingot::process
