// The operator's policy file: oslo.policy's policy.yaml (a mapping of rule name to rule text; JSON
// is accepted too, being YAML), read over the defaults at start-up and re-read when it changes.
//
// The file is untrusted text (fuzzed): only a flat mapping of strings to strings is accepted, and
// every error names the file and line. At start-up an error stops the daemon; on a reload it is
// logged and the rules in force stay.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "auth/policy.h"
#include "common/result.h"

namespace ingot::auth {

// kInvalidArgument "<origin>:<line>: ..." for anything but a mapping of scalars to scalars.
Result<std::vector<PolicyFileRule>> ParsePolicyYaml(std::string_view text,
                                                    const std::string& origin);

// Reads `path` and applies it over the defaults (Policy::Override).
Status LoadPolicyFile(Policy& policy, const std::string& path);

// Watches the file's modification time and size every `interval`; applies a changed file.
class PolicyFileWatcher {
 public:
  PolicyFileWatcher(Policy& policy, std::string path, std::chrono::milliseconds interval);
  ~PolicyFileWatcher();
  PolicyFileWatcher(const PolicyFileWatcher&) = delete;
  PolicyFileWatcher& operator=(const PolicyFileWatcher&) = delete;

  uint64_t reloads() const { return reloads_.load(); }

 private:
  void Run();

  Policy& policy_;
  const std::string path_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<uint64_t> reloads_{0};
  std::thread thread_;
};

}  // namespace ingot::auth
