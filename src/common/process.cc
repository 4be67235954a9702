#include "common/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ingot::process {
namespace {

// The exit status a waiter passes on: the code, or 128 + the signal (as shells do).
int StatusCode(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 255;
}

// Looks `name` up in the child's PATH (not ours: the child's environment is the spec's only).
std::string Resolve(const std::string& name, const std::map<std::string, std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  auto it = env.find("PATH");
  std::string path = it == env.end() ? "/usr/bin:/bin" : it->second;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string candidate = path.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return name;
}

void SetLimit(int resource, uint64_t value) {
  if (value == 0) return;
  rlimit r{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
  setrlimit(resource, &r);
}

// Runs in the forked child (only async-signal-safe calls until exec). Never returns.
[[noreturn]] void Child(const Spec& spec, const char* path, char* const* argv, char* const* envp,
                        int in_fd, int out_fd, pid_t parent) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(126);  // the parent died before the death signal was armed
  dup2(in_fd, 0);
  dup2(out_fd, 1);
  dup2(out_fd, 2);
  // Only 0, 1, 2 survive into the tool: the daemon's sockets and files are not its business.
  for (int fd = 3; fd < 4096; ++fd) close(fd);
  int flags = 0;
  if (spec.new_mount_ns) flags |= CLONE_NEWNS;
  if (spec.new_net_ns) flags |= CLONE_NEWNET;
  if (spec.new_pid_ns) flags |= CLONE_NEWPID;
  if (flags != 0 && unshare(flags) != 0) {
    static const char kMsg[] = "ingot: cannot create the build namespaces (unshare)\n";
    (void)!write(2, kMsg, sizeof(kMsg) - 1);
    _exit(125);
  }
  if (spec.new_mount_ns) mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  SetLimit(RLIMIT_AS, spec.limits.address_space);
  SetLimit(RLIMIT_NOFILE, spec.limits.open_files);
  SetLimit(RLIMIT_FSIZE, spec.limits.file_size);
  SetLimit(RLIMIT_CPU, spec.limits.cpu_seconds);
  if (spec.new_pid_ns) {
    // This process stays in the host's PID namespace as the waiter; its child is PID 1 of the new
    // one: a minimal init that reaps orphans and ends with the tool (ending the namespace).
    pid_t init = fork();
    if (init < 0) _exit(125);
    if (init > 0) {
      int ws = 0;
      while (waitpid(init, &ws, 0) < 0 && errno == EINTR) {
      }
      _exit(StatusCode(ws));
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (spec.new_mount_ns) {
      mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
    }
    pid_t tool = fork();
    if (tool < 0) _exit(125);
    if (tool > 0) {
      for (;;) {
        int ws = 0;
        pid_t done = wait(&ws);
        if (done == tool) _exit(StatusCode(ws));  // the kernel kills the rest of the namespace
        if (done < 0 && errno != EINTR) _exit(125);
      }
    }
  }
  if (chdir(spec.cwd.c_str()) != 0) _exit(125);
  execve(path, argv, envp);
  _exit(127);
}

}  // namespace

std::string Outcome::Describe() const {
  if (timed_out) return "timed out";
  if (killed) return "cancelled";
  if (signal != 0) return "killed by signal " + std::to_string(signal);
  return "exit code " + std::to_string(exit_code);
}

std::map<std::string, std::string> CleanEnv(std::map<std::string, std::string> extra) {
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"LC_ALL", "C.UTF-8"},
      {"LANG", "C.UTF-8"},
      {"HOME", "/root"},
      {"TMPDIR", "/tmp"},
  };
  for (auto& [k, v] : extra) env[k] = std::move(v);
  return env;
}

Result<Outcome> Sandbox::Run(const Spec& spec) {
  if (spec.argv.empty()) return InvalidArgument("no command to run");
  if (killed_.load()) {
    Outcome o;
    o.killed = true;
    o.signal = SIGKILL;
    return o;
  }
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::string path = Resolve(spec.argv[0], spec.env);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out[2], in[2];
  if (pipe2(out, O_CLOEXEC) != 0) return FromErrno(errno, "pipe");
  if (pipe2(in, O_CLOEXEC) != 0) {
    int e = errno;
    close(out[0]);
    close(out[1]);
    return FromErrno(e, "pipe");
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {out[0], out[1], in[0], in[1]}) close(fd);
    return FromErrno(e, "fork");
  }
  if (pid == 0) Child(spec, path.c_str(), argv.data(), envp.data(), in[0], out[1], parent);
  setpgid(pid, pid);  // both sides set it, so Kill() works whichever runs first
  pgid_.store(pid);
  close(out[1]);
  close(in[0]);
  if (killed_.load()) kill(-pid, SIGKILL);  // Kill() raced with the start
  if (!spec.stdin_data.empty() && spec.stdin_data.size() <= 65536) {
    (void)!write(in[1], spec.stdin_data.data(), spec.stdin_data.size());
  }
  close(in[1]);

  auto start = std::chrono::steady_clock::now();
  Outcome outcome;
  std::string pending;
  char buf[16384];
  bool exited = false;
  int wstatus = 0;
  auto deliver = [&](bool all) {
    size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      if (spec.on_line) spec.on_line(std::string_view(pending).substr(0, pos));
      pending.erase(0, pos + 1);
    }
    if (all && !pending.empty()) {
      if (spec.on_line) spec.on_line(pending);
      pending.clear();
    }
  };
  for (;;) {
    pollfd p{out[0], POLLIN, 0};
    int n = poll(&p, 1, 200);
    if (n > 0) {
      ssize_t got = read(out[0], buf, sizeof(buf));
      if (got > 0) {
        pending.append(buf, static_cast<size_t>(got));
        deliver(false);
        continue;
      }
      if (got == 0) break;  // every writer (the whole process tree) is gone
      if (errno != EINTR && errno != EAGAIN) break;
    }
    if (!exited && waitpid(pid, &wstatus, WNOHANG) == pid) {
      exited = true;
      // A tool without a PID namespace may leave a daemon holding the pipe: its group goes too.
      kill(-pid, SIGKILL);
    }
    if (spec.limits.wall.count() > 0 && !outcome.timed_out &&
        std::chrono::steady_clock::now() - start > spec.limits.wall) {
      outcome.timed_out = true;
      kill(-pid, SIGKILL);
    }
  }
  deliver(true);
  close(out[0]);
  if (!exited) {
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
  }
  pgid_.store(0);
  int code = StatusCode(wstatus);
  if (WIFSIGNALED(wstatus)) {
    outcome.signal = WTERMSIG(wstatus);
  } else if (spec.new_pid_ns && code > 128 && code < 128 + 65) {
    outcome.signal = code - 128;  // the init relays a killed tool as 128 + signal
  }
  outcome.exit_code = WIFEXITED(wstatus) ? code : -1;
  outcome.killed = killed_.load() || outcome.timed_out;
  return outcome;
}

void Sandbox::Kill() {
  killed_.store(true);
  pid_t pg = pgid_.load();
  if (pg > 0) kill(-pg, SIGKILL);
}

}  // namespace ingot::process
