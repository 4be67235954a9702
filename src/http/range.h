// The Range request header (RFC 9110 §14): a single byte range against a representation's size.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ingot::http {

struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
};

// Parses "bytes=a-b", "bytes=a-" or "bytes=-n" against `size`; the end is clamped to the size.
// nullopt when malformed, unsatisfiable or a multi-range (answered 416, as Glance does).
std::optional<ByteRange> ParseRange(std::string_view header, uint64_t size);

}  // namespace ingot::http
