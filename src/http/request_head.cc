#include "http/request_head.h"

#include <cctype>

#include "http/message.h"

namespace ingot::http {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(item) for each comma-separated item of `value`, trimmed; empty items are skipped.
template <typename F>
void ForEachItem(std::string_view value, F f) {
  while (true) {
    size_t comma = value.find(',');
    std::string_view item = Trim(value.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

Framing Refuse(int status, std::string reason) {
  Framing f;
  f.refusal = status;
  f.reason = std::move(reason);
  return f;
}

}  // namespace

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // ASCII folding only (header names and tokens are ASCII): no locale lookup per byte.
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; };
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool HasToken(std::string_view value, std::string_view token) {
  bool found = false;
  ForEachItem(value, [&](std::string_view item) { found |= IEquals(item, token); });
  return found;
}

std::optional<uint64_t> ParseUint(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

void ParseQuery(std::string_view qs, std::vector<std::pair<std::string, std::string>>& out) {
  while (!qs.empty()) {
    size_t amp = qs.find('&');
    std::string_view item = qs.substr(0, amp);
    if (!item.empty()) {
      size_t eq = item.find('=');
      std::string_view k = item.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
      auto dk = PercentDecode(k, true);
      auto dv = PercentDecode(v, true);
      out.emplace_back(dk ? std::move(*dk) : std::string(k), dv ? std::move(*dv) : std::string(v));
    }
    if (amp == std::string_view::npos) break;
    qs.remove_prefix(amp + 1);
  }
}

std::optional<Target> ParseTarget(std::string_view target) {
  // Absolute form ("http://host/path"), which proxies send and servers must accept: keep the path.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() > scheme.size() && IEquals(target.substr(0, scheme.size()), scheme)) {
      size_t slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  if (target.empty() || (target.front() != '/' && target != "*")) return std::nullopt;
  size_t qmark = target.find('?');
  auto path = PercentDecode(target.substr(0, qmark));
  if (!path) return std::nullopt;
  Target t;
  t.path = std::move(*path);
  if (qmark != std::string_view::npos) ParseQuery(target.substr(qmark + 1), t.query);
  return t;
}

Framing CheckFraming(const FramingFields& fields) {
  if (fields.version >= 11 && fields.host_count != 1) {
    return Refuse(400, fields.host_count == 0 ? "an HTTP/1.1 request must carry a Host header"
                                              : "a request may carry only one Host header");
  }
  if (!fields.transfer_encoding.empty()) {
    if (!fields.content_length.empty())
      return Refuse(400, "Content-Length and Transfer-Encoding may not be sent together");
    std::vector<std::string_view> codings;
    for (std::string_view value : fields.transfer_encoding)
      ForEachItem(value, [&](std::string_view item) { codings.push_back(item); });
    if (codings.empty() || !IEquals(codings.back(), "chunked"))
      return Refuse(400, "the last transfer coding must be chunked");
    for (size_t i = 0; i + 1 < codings.size(); ++i) {
      if (IEquals(codings[i], "chunked"))
        return Refuse(400, "chunked may be applied only once");
      return Refuse(501, "transfer coding '" + std::string(codings[i]) + "' is not implemented");
    }
    Framing f;
    f.kind = Framing::Kind::kChunked;
    return f;
  }
  if (!fields.content_length.empty()) {
    std::optional<uint64_t> length;
    for (std::string_view value : fields.content_length) {
      bool bad = false;
      ForEachItem(value, [&](std::string_view item) {
        auto n = ParseUint(item);
        if (!n || (length && *length != *n)) bad = true;
        length = n;
      });
      if (bad || !length) return Refuse(400, "Content-Length is not one decimal number");
    }
    Framing f;
    f.kind = Framing::Kind::kLength;
    return f;
  }
  return Framing{};
}

}  // namespace ingot::http
