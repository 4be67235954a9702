// URL text: splitting paths, and percent-encoding query components (RFC 3986). Decoding lives
// beside the request parser (PercentDecode).
#pragma once

#include <string>
#include <string_view>

namespace ingot::http {

// Percent-encodes everything but RFC 3986's unreserved characters and those in `keep` (for example
// ":," which Glance leaves readable in its list links).
std::string PercentEncode(std::string_view s, std::string_view keep = "");

}  // namespace ingot::http
