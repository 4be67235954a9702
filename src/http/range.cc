#include "http/range.h"

#include <charconv>

namespace ingot::http {
namespace {

bool Number(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::optional<ByteRange> ParseRange(std::string_view h, uint64_t size) {
  auto eq = h.find('=');
  if (eq == std::string_view::npos || h.substr(0, eq) != "bytes") return std::nullopt;
  std::string_view spec = h.substr(eq + 1);
  while (!spec.empty() && spec.front() == ' ') spec.remove_prefix(1);
  if (spec.find(',') != std::string_view::npos) return std::nullopt;
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  ByteRange r;
  if (a.empty()) {
    uint64_t n;
    if (!Number(b, n) || n == 0 || size == 0) return std::nullopt;
    r.first = n >= size ? 0 : size - n;
    r.last = size - 1;
    return r;
  }
  if (!Number(a, r.first) || r.first >= size) return std::nullopt;
  if (b.empty()) {
    r.last = size - 1;
  } else {
    if (!Number(b, r.last) || r.last < r.first) return std::nullopt;
    if (r.last >= size) r.last = size - 1;
  }
  return r;
}

}  // namespace ingot::http
