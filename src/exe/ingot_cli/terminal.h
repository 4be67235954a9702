// What the `ingot` CLI draws: tables on stdout, a progress bar on stderr.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "http/client.h"

namespace ingot::cli {

// A progress line ("upload [####    ] 45% 460.8/1024.0 MiB 312.4 MiB/s ETA 0:02") redrawn in place
// at most ten times a second. Draws nothing unless `enabled` (the CLI passes isatty(stderr)).
class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled);
  void Update(uint64_t done, std::optional<uint64_t> total);
  // Draws the final state and ends the line (if anything was drawn).
  void Finish();

  // The line for a state; exposed for tests.
  static std::string Render(const std::string& label, uint64_t done, std::optional<uint64_t> total,
                            double seconds);

 private:
  void Draw(bool force);
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  uint64_t done_ = 0;
  std::optional<uint64_t> total_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// A one-line state of something the server is doing ("import: importing to file, cold (0:07)"),
// redrawn in place when the state changes and once a second for the clock. Draws nothing unless
// `enabled`, as ProgressBar.
class StatusLine {
 public:
  StatusLine(std::string label, bool enabled);
  void Update(std::string state);
  // Draws the final state and ends the line (if anything was drawn).
  void Finish();

  // The line for a state; exposed for tests.
  static std::string Render(const std::string& label, const std::string& state, double seconds);

 private:
  void Draw(bool force);
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::string state_;
  std::string shown_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// An image's import state for a StatusLine, from its status and Glance's
// os_glance_importing_to_stores / os_glance_failed_import: "importing to file, cold; failed: b",
// "active, importing to cold" (copy-image).
std::string ImportState(const boost::json::object& image);

// A value as the glance client shows it: strings bare, lists joined with ", ", null as "None".
std::string ValueText(const boost::json::value& v);

// A boxed table, columns as wide as their widest cell.
void PrintTable(FILE* out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// An image (or any object) as a two-column Property/Value table, keys sorted.
void PrintProperties(FILE* out, const boost::json::object& object);

// A management API's answer for the command groups (iso, os, profile, machine, ...): the array under
// `key` as a table of `columns` (or as JSON), and one object as a Property/Value table (or as JSON).
void PrintList(bool as_json, const boost::json::value& v, const char* key,
               const std::vector<std::string>& columns);
void PrintObject(bool as_json, const boost::json::value& v);

// Where a command group talks to: --url (else $INGOT_URL, else http://127.0.0.1:9292), --token (else
// $OS_AUTH_TOKEN), --timeout in seconds (else `default_timeout`). nullopt after printing why.
struct Endpoint {
  http::Url url;
  std::string token;
  std::chrono::seconds timeout;
};
std::optional<Endpoint> ResolveEndpoint(std::optional<std::string> url,
                                        std::optional<std::string> token,
                                        std::optional<std::string> timeout,
                                        std::chrono::seconds default_timeout);

}  // namespace ingot::cli
