// The native engine: guestfish commands carried out by Ingot itself on the volume's file systems
// (disk.h finds them, ext_fs.h reads and writes ext2/3/4), with guestfish's behaviour — its
// messages, its modes for new files (the appliance's umask 022), `ln -s`'s "into a directory"
// rule, errors stopping the script unless the command has the `-` prefix. Private to engine.cc.
//
// Everything the run writes stays in a VolumeBuffer until the script ends; so when a command or a
// file system turns out to need guestfish, the volume is still untouched and the caller runs the
// whole script through guestfish instead.
#pragma once

#include <string>

#include "common/result.h"
#include "deploy/guestfish/local_command.h"
#include "deploy/guestfish/script.h"
#include "deploy/os_volume.h"

namespace ingot::deploy::guestfish {

// True for the commands the native engine carries out.
bool NativeCommand(const std::string& name);

struct NativeOutcome {
  // The script needs guestfish (a command or file system the native engine does not handle);
  // nothing was written to the volume. `line` and `reason` say why.
  bool needs_guestfish = false;
  int line = 0;
  std::string reason;
  // Otherwise: OK, or the script's first fatal error as "line N: <message>" (what the script did
  // before it is committed, as guestfish would have left it).
  Status status;
  std::string log;
};

// Runs a validated script (script.h Validate()). Local files (upload's sources, download's
// destinations) are relative to `workdir`; local commands (`!cmd`, `cmd | shell`) run in `jail`
// (null when the script has none). Returns a Status only for failures of the volume itself.
Result<NativeOutcome> RunNative(OsVolume& volume, const ParsedScript& script,
                                const std::string& workdir, const LocalJail* jail);

}  // namespace ingot::deploy::guestfish
