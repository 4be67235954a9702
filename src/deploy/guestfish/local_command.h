// Local commands of plan scripts: `!cmd` and the shell side of `cmd | shell`. HPE's published
// scripts use them to work on files the script took out of the volume, e.g. ESXi's
// `download /ImageStreamer/x x` then `!source ./x` (which edits files in the working directory that
// a later `upload` puts back). guestfish runs them as the deploy host's root; a plan script is an
// operator's upload, so Ingot runs them in a jail instead, the same jail for both engines:
//
//  - its own mount, PID and network namespaces (`unshare`): no network at all, and every process
//    it starts dies with it;
//  - a root of its own: an empty tmpfs holding /usr (and the /bin, /lib… links or read-only binds),
//    /dev/{null,zero,full,random,urandom}, a fresh /proc, a private /tmp, a minimal /etc/passwd —
//    nothing of the host's /etc, data or configuration is visible;
//  - the run's working directory (the script's local files) at /work, the only writable place
//    that outlives the command, and the command's current directory;
//  - user nobody, no capabilities, no_new_privs, a clean environment, a wall-clock limit;
//  - afterwards, anything in the working directory that is not a regular file or a directory
//    (a symlink pointing at a host file, a FIFO) is removed and the command fails, so a later
//    `upload` (run by root outside the jail) can only read what the command wrote.
//
// Needs root (namespaces, mounts) and util-linux's unshare/setpriv (Debian's essential set).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/process.h"
#include "common/result.h"

namespace ingot::deploy::guestfish {

class LocalJail {
 public:
  // Makes the jail's directory beside the run's working directory `workdir`: a setup script and an
  // empty mount point for the jail's root. kUnsupported when not running as root.
  static Result<LocalJail> Make(const std::string& workdir,
                                std::chrono::seconds wall = std::chrono::seconds(300));
  LocalJail(LocalJail&& o) noexcept;
  LocalJail& operator=(LocalJail&&) = delete;
  ~LocalJail();  // removes the jail's directory

  // The argument vector that runs `command` (sh syntax) in the jail.
  std::vector<std::string> Argv(std::string_view command) const;
  // The same as one line of sh, quoted: what guestfish's `!` and `|` are given.
  std::string CommandLine(std::string_view command) const;

  // Runs `command` here with `input` on its standard input; its output (stdout and stderr, in
  // order) is appended to `*output`.
  Result<process::Outcome> Run(std::string_view command, std::string input,
                               std::string* output) const;

 private:
  LocalJail(std::string dir, std::string workdir, std::chrono::seconds wall)
      : dir_(std::move(dir)), workdir_(std::move(workdir)), wall_(wall) {}
  std::string dir_;      // holds jail.sh and root/
  std::string workdir_;  // bound at /work
  std::chrono::seconds wall_;
};

// What the jail's own messages on standard error begin with.
inline constexpr std::string_view kJailPrefix = "ingot-jail: ";

// `word` quoted for sh: 'as is', with each ' written '\''.
std::string ShellQuote(std::string_view word);

}  // namespace ingot::deploy::guestfish
