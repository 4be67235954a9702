// The image builder's command groups of `ingot` (recipe, build) over Cray IMS's API (/apis/ims/v3);
// see build_commands.cc for their verbs.
#pragma once

#include <optional>

namespace ingot::cli {

// Runs argv when its command is `recipe` or `build` and returns the exit status; nullopt for any
// other command.
std::optional<int> RunBuildCommand(int argc, char** argv);

}  // namespace ingot::cli
