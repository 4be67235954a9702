// The southbound request path rule: which request paths name something beneath the served root,
// and how names go back into URLs and HTML. Pure functions, no I/O.
//
// A path is refused (kInvalidArgument, answered 400) when it could mean anything but a plain walk
// down from the root: a ".." or "." component (whatever the encoding that produced it: the server
// has decoded the target once, so "%2e%2e" arrives here as ".."; a double encoding such as
// "%252e%252e" arrives as the literal name "%2e%2e", which is only ever looked up as that name),
// a backslash, a NUL or another control byte, or a target longer than kMaxTargetBytes. Empty
// components ("a//b") are dropped. What the components then name is checked by the file system
// walk (southbound.cc), which never leaves the root.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::api::boot {

inline constexpr size_t kMaxTargetBytes = 4096;

struct BootPath {
  std::vector<std::string> components;  // each non-empty, no '/', never "." or ".."
  bool trailing_slash = false;          // the request ended in '/' (a directory is wanted)
};

// `raw_target` is the request target as sent (for its length), `decoded_path` the server's
// percent-decoded path (http::Request::path).
Result<BootPath> ParseBootPath(std::string_view raw_target, std::string_view decoded_path);

// "/a%20b/c/" from {"a b", "c"} (trailing '/' when `directory`): every byte outside RFC 3986's
// unreserved set is percent-encoded, so a name can never turn into a scheme, host or query.
std::string EncodePath(const std::vector<std::string>& components, bool directory);
// One component percent-encoded as above.
std::string EncodeComponent(std::string_view name);
// Text made safe inside HTML element content and attribute values.
std::string EscapeHtml(std::string_view text);

}  // namespace ingot::api::boot
