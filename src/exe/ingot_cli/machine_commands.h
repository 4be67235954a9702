// `ingot profile …` and `ingot machine …`: per-machine boot over /boot/v1/profiles and
// /boot/v1/machines (machine_commands.cc lists the verbs).
#pragma once

#include <optional>

namespace ingot::cli {

// Runs argv when its command is `profile` or `machine` and returns the exit status; nullopt for
// any other command.
std::optional<int> RunMachineCommand(int argc, char** argv);

}  // namespace ingot::cli
