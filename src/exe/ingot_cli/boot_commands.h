// The boot content's command groups of `ingot` (iso, os, files, microkernel, publish) over
// /boot/v1; see boot_commands.cc for their verbs.
#pragma once

#include <optional>

namespace ingot::cli {

// Runs argv when its command is one of the boot groups and returns the exit status; nullopt when
// it is another command (main.cc's image commands handle it).
std::optional<int> RunBootCommand(int argc, char** argv);

}  // namespace ingot::cli
