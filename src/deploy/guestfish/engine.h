// Plan scripts: HPE Image Streamer's personalisation step. A plan script is guestfish(1) text
// (the golden image's OS volume is the one disk, `-a` already given), run once against a freshly
// cloned OS volume to set its host name, network files, users and so on.
//
// Two engines give the same results:
//  - kNative: Ingot's own interpreter of the guestfish commands plan scripts use, acting on the
//    volume's file systems directly (partitions found through the GPT/MBR, ext2/3/4 through
//    libext2fs over the volume), so a deploy takes milliseconds. Writes go through OsVolume, so
//    they land in the volume's copy-on-write overlay and the golden image is never touched.
//  - kGuestfish: the real `guestfish --rw` (libguestfs appliance) over the volume, exported by a
//    private NBD server on 127.0.0.1; needed for commands that run inside the guest (sh, command)
//    or that the native interpreter does not implement, and for file systems it cannot write.
//  - kAuto: native when every command of the script (and every file system it touches) is one the
//    interpreter handles, else guestfish. The native engine keeps its writes in memory until the
//    script ends, so when it finds half-way that it needs guestfish (a vfat mount, LVM, a journal
//    to replay, over 512 MiB written), nothing has reached the volume and guestfish runs the whole
//    script from the start. RunReport.log then begins with the reason.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "deploy/os_volume.h"

namespace ingot::deploy::guestfish {

enum class Engine { kAuto, kNative, kGuestfish };  // kAuto: native unless a command needs guestfish

// A plan script to run. `text` has its @attributes@ already substituted (the caller's job).
struct Script {
  std::string name;
  std::string text;
};

struct RunReport {
  Engine used = Engine::kNative;  // never kAuto
  std::string log;                // each command and its output
};

// Runs the script against the open volume and flushes it. The volume must not be written by anyone
// else meanwhile (the caller holds it open; the guestfish engine serves it itself).
// One Run is one guestfish session: what a script mounts is unmounted when it ends. A build plan's
// scripts rely on each other's mounts (HPE's mount / personalise / unmount plans), so they are run
// together by the span overload: one session, in order, each script parsed and checked on its own
// first, an error still naming its own script and line. Local files (upload's sources, download's destinations) live in a
// private working directory made and removed by the run.
// On failure the Status message is "<script name> line <N>: <guestfish's message>"
// (kInvalidArgument for a script that does not parse or a command refused by the script's own
// mistakes, kUnsupported when kNative is forced and the script needs guestfish, kUnavailable when
// guestfish is not installed, kIoError for the volume). Passwords are never written to the log by
// this code: the text of upload heredocs and of write/write-append contents are logged by size
// only.
Result<RunReport> Run(OsVolume& volume, const Script& script, Engine engine);
Result<RunReport> Run(OsVolume& volume, std::span<const Script> scripts, Engine engine);

// "auto", "native", "guestfish" (for flags and API fields); nullopt for anything else.
std::optional<Engine> ParseEngine(std::string_view name);
std::string_view EngineName(Engine engine);

}  // namespace ingot::deploy::guestfish
