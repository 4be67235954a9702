// The guestfish engine: the real guestfish(1) over the volume. A private nbd::Server on an
// ephemeral 127.0.0.1 port serves the volume (read-write, to 127.0.0.1 only, under a random
// export name), and `guestfish --rw --format=raw -a nbd://127.0.0.1:PORT/NAME` reads the script
// on its standard input, in the run's working directory, as a sandboxed child (common/process.h:
// clean environment, its own PID namespace when we are root, a wall-clock limit). Private to
// engine.cc.
//
// The script guestfish reads is our own rendering of the parsed, validated commands (script.h
// Unparse), each preceded by an `echo` of a per-run marker, so the log names each command (with
// Describe(): no heredoc or write contents) and a failure is tied to its line.
#pragma once

#include <chrono>
#include <string>

#include "common/result.h"
#include "deploy/guestfish/local_command.h"
#include "deploy/guestfish/script.h"
#include "deploy/os_volume.h"

namespace ingot::deploy::guestfish {

struct GuestfishOutcome {
  Status status;  // OK, or "line N: <guestfish's message>"
  std::string log;
};

// kUnavailable when guestfish is not installed or cannot start its appliance; kTimeout past
// `wall`. A script error is an OK Result with a failed `status`.
// Local commands (`!cmd`, `cmd | shell`) are given to guestfish as the command lines that run
// them in `jail` (null when the script has none).
Result<GuestfishOutcome> RunGuestfish(OsVolume& volume, const ParsedScript& script,
                                      const std::string& workdir, const LocalJail* jail,
                                      std::chrono::seconds wall = std::chrono::seconds(900));

}  // namespace ingot::deploy::guestfish
