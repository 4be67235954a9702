// The checks a request head must pass before anything is done with it, as pure functions over
// text (no sockets, no Beast), so they can be fuzzed alone. The server applies them to every head
// Beast has parsed:
//  - the target: origin form "/path?query" or absolute form "http://host/path"; the path is
//    percent-decoded, the query split into decoded pairs;
//  - the framing (RFC 9112 §6.1, §6.3): a Transfer-Encoding whose last coding is not `chunked` is
//    400 (the body length would be unknowable, the root of request smuggling), a coding we do not
//    implement beside it is 501, and Content-Length beside Transfer-Encoding is 400;
//  - Host (RFC 9112 §3.2): an HTTP/1.1 request without one, or with several, is 400.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ingot::http {

// True when `a` and `b` are equal ignoring ASCII case.
bool IEquals(std::string_view a, std::string_view b);
// True when a comma-separated header value (e.g. Connection) lists `token`.
bool HasToken(std::string_view value, std::string_view token);
// A decimal of at most 19 digits; nullopt otherwise.
std::optional<uint64_t> ParseUint(std::string_view s);

// Splits "a=1&b=x+y" into decoded pairs; a malformed escape keeps the raw text (as webob does).
void ParseQuery(std::string_view qs, std::vector<std::pair<std::string, std::string>>& out);

struct Target {
  std::string path;  // decoded
  std::vector<std::pair<std::string, std::string>> query;
};
// nullopt when the target is not origin or absolute form or its path has a malformed escape.
std::optional<Target> ParseTarget(std::string_view target);

// What the head says of the body, or why it is refused.
struct Framing {
  enum class Kind { kNone, kLength, kChunked };
  Kind kind = Kind::kNone;
  int refusal = 0;        // 0, or the status to answer (400, 501) before closing the connection
  std::string reason;     // for the log and the error body
};

// The head fields that decide framing, as received (every occurrence, in order).
struct FramingFields {
  int version = 11;                            // 10 or 11
  std::vector<std::string_view> transfer_encoding;
  std::vector<std::string_view> content_length;
  size_t host_count = 0;
};
Framing CheckFraming(const FramingFields& fields);

// Collects the framing fields of a parsed head: `fields` iterates entries with name_string() and
// value() (Beast's header fields do), so this header needs no Beast.
template <typename Fields>
FramingFields FramingFieldsOf(int version, const Fields& fields) {
  FramingFields out;
  out.version = version;
  for (const auto& field : fields) {
    std::string_view name = field.name_string();
    if (IEquals(name, "Transfer-Encoding")) {
      out.transfer_encoding.push_back(field.value());
    } else if (IEquals(name, "Content-Length")) {
      out.content_length.push_back(field.value());
    } else if (IEquals(name, "Host")) {
      ++out.host_count;
    }
  }
  return out;
}

}  // namespace ingot::http
