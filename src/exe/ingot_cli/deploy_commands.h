// The deploy engine's command groups of `ingot` (deploy, volume) over HPE Image Streamer's API
// (/rest/...); see deploy_commands.cc for their verbs.
#pragma once

#include <optional>

namespace ingot::cli {

// Runs argv when its command is `deploy` or `volume` and returns the exit status; nullopt for any
// other command.
std::optional<int> RunDeployCommand(int argc, char** argv);

}  // namespace ingot::cli
