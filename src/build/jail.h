// SSH access to an image root being worked on: IMS's ssh_containers. One OpenSSH server per job,
// started through common/process.h, that accepts exactly one public key (the job's public-keys
// record) and gives its holder a root shell either
//   * jailed (jail = true): chrooted in the image root (sshd's ChrootDirectory), with the job's own
//     /proc (its PID namespace: no host process is visible) and a minimal /dev; the user ends the
//     session with `touch /tmp/complete`; or
//   * not jailed (jail = false): in the builder host's file system view with the image root at
//     /mnt/image; the user ends it with `touch /mnt/image/complete`.
//
// Isolation comes from the sandbox, not from cleanup code: sshd, every session and every mount the
// jail needs live in the run's private mount and PID namespaces, so whatever ends the run — the
// user's completion file, a cancel, the job's deadline, or a SIGKILL of ingotd — ends every shell
// with it and leaves nothing mounted. sshd's ChrootDirectory wants every component of its path
// root-owned and not writable by group or others, which a data directory under /tmp is not; the
// root is therefore bind-mounted inside the namespace at /run/ingot-jail/root, on a tmpfs mounted
// over /run there (the host's /run is untouched). The sshd configuration, the accepted key, and a
// private /etc/passwd and /etc/shadow (root's shell /bin/sh, present in every image; root not locked
// for key logins) live there too, so the host's accounts and sshd configuration are never changed.
//
// What a jail does not do: a root shell in a chroot can, with effort, leave it (it is root); the
// namespaces bound what it then sees (no host processes, no host mounts beyond the host's file
// system view). jail = false hands out exactly that view on purpose, as IMS's non-jailed
// containers hand out their build pod. The key holder is an IMS administrator either way.
//
// Threads: Start() returns once sshd accepts connections; Wait() blocks its caller; Stop() may be
// called from any thread and is idempotent.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/process.h"
#include "common/result.h"

namespace ingot::build {

struct SshOptions {
  std::string sshd = "/usr/sbin/sshd";
  std::string ssh_keygen = "ssh-keygen";
  std::string listen = "127.0.0.1";  // the address sshd listens on (a free port is chosen)
  std::string advertised_host;       // what connection_info names; empty: `listen`
};

struct JailSpec {
  std::string dir;         // the job's private directory (host key, sshd_config); owned by root
  std::string root;        // the image root, a directory (jail = the user's /)
  // Instead of `root`: an overlay of these (a failed build's layers kept for debugging). The
  // completion file then appears in `overlay_upper`.
  std::string overlay_lower, overlay_upper, overlay_work;
  bool jail = true;
  std::string public_key;  // the only key accepted: one OpenSSH public key line
};

class SshJail {
 public:
  // Generates the host key, writes the configuration, starts sshd and waits (up to 30 s) until it
  // accepts connections. Every line sshd prints (logins, refusals) goes to `on_line`.
  static Result<std::unique_ptr<SshJail>> Start(const SshOptions& options, const JailSpec& spec,
                                                std::function<void(std::string_view)> on_line);
  ~SshJail();  // Stop()

  int port() const { return port_; }
  const std::string& host() const { return host_; }
  const std::string& host_key_fingerprint() const { return fingerprint_; }
  // The file whose appearance ends the session, as the user names it.
  std::string completion_path() const { return jail_ ? "/tmp/complete" : "/mnt/image/complete"; }

  enum class End { kCompleted, kCancelled, kTimedOut, kServerDied };
  // Blocks until the completion file appears in the root (then removes it), `cancelled` becomes
  // true, `deadline` passes, or sshd dies. Polls twice a second: a file touched over SSH is not an
  // event worth an inotify watch that would have to follow the user's renames of /tmp.
  End Wait(const std::atomic<bool>& cancelled, std::chrono::steady_clock::time_point deadline);
  // Ends sshd and every session (SIGKILL to the sandbox), waits for its thread. What sshd printed
  // last (for an error message) stays in last_output().
  void Stop();
  std::string last_output();

 private:
  SshJail() = default;
  bool CompletionFileExists(bool remove) const;

  process::Sandbox sandbox_;
  std::thread thread_;
  std::atomic<bool> exited_{false};
  std::mutex out_mu_;
  std::string tail_;  // the last few KiB of sshd's output
  std::function<void(std::string_view)> on_line_;
  std::string watch_dir_;  // where the completion file appears on the host side
  bool jail_ = true;
  int port_ = 0;
  std::string host_;
  std::string fingerprint_;
};

}  // namespace ingot::build
