#include "common/regex.h"

#include <string>

namespace ingot {

namespace {

constexpr size_t kMaxDigits = 6;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The length of the run of digits starting at `i`.
size_t DigitsAt(std::string_view s, size_t i) {
  size_t n = 0;
  while (i + n < s.size() && IsDigit(s[i + n])) ++n;
  return n;
}

}  // namespace

Result<std::regex> CompileUntrustedRegex(std::string_view pattern, size_t max_length,
                                         std::regex::flag_type flags) {
  if (pattern.size() > max_length) {
    return InvalidArgument("the pattern is longer than " + std::to_string(max_length) +
                           " characters");
  }
  for (size_t i = 0; i < pattern.size(); ++i) {
    // `\N` (a back-reference) and `{N}`, `{N,}`, `{N,M}` (a repetition count).
    if (pattern[i] != '\\' && pattern[i] != '{') continue;
    size_t n = DigitsAt(pattern, i + 1);
    if (n <= kMaxDigits && pattern[i] == '{' && i + 1 + n < pattern.size() &&
        pattern[i + 1 + n] == ',') {
      n = DigitsAt(pattern, i + 2 + n);
    }
    if (n > kMaxDigits) {
      return InvalidArgument("the pattern has a repetition count or back-reference of more than " +
                             std::to_string(kMaxDigits) + " digits");
    }
  }
  try {
    return std::regex(std::string(pattern), flags);
  } catch (const std::regex_error& e) {
    return InvalidArgument(std::string("the pattern does not compile: ") + e.what());
  }
}

}  // namespace ingot
