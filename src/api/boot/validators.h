// What a southbound response says about its bytes: the media type by file name, the validators
// (ETag, Last-Modified) and the conditional-request rules of RFC 9110 §13 over them. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/message.h"

namespace ingot::api::boot {

// The Content-Type for a file name, by its extension (case-insensitive); names with no known
// extension (vmlinuz, initrd, linux, ...) are application/octet-stream.
std::string_view ContentTypeFor(std::string_view name);

// "Sun, 06 Nov 1994 08:49:37 GMT" (IMF-fixdate) for seconds since the epoch.
std::string FormatHttpDate(int64_t seconds);
// Parses an IMF-fixdate (the only form senders may generate, RFC 9110 §5.6.7); nullopt otherwise.
std::optional<int64_t> ParseHttpDate(std::string_view text);

// The validators of one representation.
struct Validators {
  std::string etag;       // strong, quoted: "\"...\""
  int64_t last_modified;  // seconds since the epoch
};

enum class Precondition {
  kServe,        // answer as usual (200, or 206 if a Range is honoured)
  kNotModified,  // 304
  kFailed,       // 412 (If-Match / If-Unmodified-Since failed)
};

// Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since in RFC 9110
// §13.2.2's order for a GET or HEAD.
Precondition EvaluatePreconditions(const http::Headers& request, const Validators& v);

// Whether a Range header may be honoured given If-Range (§13.1.5): true without If-Range, or when
// If-Range holds this representation's strong ETag or exactly its Last-Modified date.
bool RangeAllowed(const http::Headers& request, const Validators& v);

}  // namespace ingot::api::boot
