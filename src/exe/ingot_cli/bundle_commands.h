// `ingot bundle ...`: HPE Image Streamer's artifact bundles (/rest/artifact-bundles); see
// bundle_commands.cc for its verbs.
#pragma once

#include <optional>

namespace ingot::cli {

// Runs argv when its command is `bundle` and returns the exit status; nullopt for any other.
std::optional<int> RunBundleCommand(int argc, char** argv);

}  // namespace ingot::cli
