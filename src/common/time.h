// Wall-clock time as microseconds since the Unix epoch, and the ISO 8601 forms Glance uses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ingot {

int64_t NowMicros();
// "2026-11-23T11:30:16Z" — the form Glance returns for created_at/updated_at.
std::string FormatIso8601(int64_t micros);
// "2026-11-23T11:30:16.123456Z" — for logs.
std::string FormatIso8601Micros(int64_t micros);
// The same, appended to `out`.
void AppendIso8601Micros(std::string& out, int64_t micros);
// Parses "YYYY-MM-DDThh:mm:ss[.ffffff][Z|±hh:mm]" (and a bare date). nullopt if malformed.
std::optional<int64_t> ParseIso8601(std::string_view text);

}  // namespace ingot
