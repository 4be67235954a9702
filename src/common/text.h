// Small text helpers for hot paths that build strings by appending (response heads, log lines).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>

namespace ingot {

// `v` in decimal, appended to `out` (no temporary string, no locale).
inline void AppendDecimal(std::string& out, uint64_t v) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, static_cast<size_t>(end - buf));
}

}  // namespace ingot
