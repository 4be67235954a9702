// Header fields, percent-decoding and the Request helpers shared by the server and its handlers.
#include <strings.h>

#include <algorithm>

#include "http/message.h"

namespace ingot::http {
namespace {

bool NameEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void Headers::Set(std::string_view name, std::string value) {
  Remove(name);
  fields_.emplace_back(std::string(name), std::move(value));
}

void Headers::Add(std::string_view name, std::string value) {
  fields_.emplace_back(std::string(name), std::move(value));
}

void Headers::Remove(std::string_view name) {
  std::erase_if(fields_, [&](const auto& f) { return NameEquals(f.first, name); });
}

std::optional<std::string_view> Headers::Get(std::string_view name) const {
  for (const auto& [n, v] : fields_) {
    if (NameEquals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string> PercentDecode(std::string_view s, bool form) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (s.size() - i < 3) return std::nullopt;  // '%' needs two hex digits after it
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && form) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::string> Request::ReadBody(size_t limit) {
  std::string out;
  if (body == nullptr) return out;
  if (content_length && *content_length > limit) {
    return TooLarge("request body of " + std::to_string(*content_length) +
                    " bytes is over the limit of " + std::to_string(limit));
  }
  if (content_length) out.reserve(*content_length);
  uint8_t buf[64 * 1024];
  for (;;) {
    INGOT_ASSIGN_OR_RETURN(size_t n, body->Read(std::span<uint8_t>(buf, sizeof(buf))));
    if (n == 0) break;
    if (n > limit - out.size()) {
      return TooLarge("request body is over the limit of " + std::to_string(limit) + " bytes");
    }
    out.append(reinterpret_cast<const char*>(buf), n);
  }
  return out;
}

Response Resolve(HeadResult head, Request& req) {
  if (auto* r = std::get_if<Response>(&head)) return std::move(*r);
  NeedBody& need = std::get<NeedBody>(head);
  if (req.content_length && *req.content_length > need.limit) return need.too_large();
  return need.next(req);
}

Handler StreamEveryBody(std::function<Response(Request&)> handler, uint64_t limit) {
  auto shared = std::make_shared<std::function<Response(Request&)>>(std::move(handler));
  return [shared, limit](Request& req) -> HeadResult {
    if (!req.has_body()) return (*shared)(req);
    return NeedBody{.mode = NeedBody::Mode::kStreamed,
                    .limit = limit,
                    .next = [shared](Request& r) { return (*shared)(r); },
                    .too_large = [] {
                      Response r;
                      r.status = 413;
                      r.headers.Set("Content-Type", "text/plain");
                      r.body = "Request Entity Too Large\n";
                      return r;
                    }};
  };
}

std::optional<std::string_view> Request::QueryValue(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

}  // namespace ingot::http
