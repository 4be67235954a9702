// CheckUrl and the text rules behind it: pure functions, no resolution, fuzzed by fuzz/fuzz_url.cc.
//
// The parser is deliberately narrower than RFC 3986: what it accepts is also what curl is given
// (rebuilt from the parsed pieces, never the user's text), so there is no second parser whose
// opinion of "the host" could differ from the one the rules were applied to.
#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "fetch/fetch.h"
#include "fetch/url_text.h"

namespace ingot::fetch {
namespace {

// Long enough for pre-signed object-store URLs, short enough to keep logs and curl sane.
constexpr size_t kMaxUrlLength = 16384;
constexpr size_t kMaxHostLength = 253;

char LowerChar(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = LowerChar(c);
  return out;
}

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsSchemeText(std::string_view s) {
  if (s.empty() || !IsAlpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return IsAlpha(c) || IsDigit(c) || c == '+' || c == '-' || c == '.';
  });
}

// Names are restricted to what DNS and /etc/hosts hold (no percent-encoding, no IDN in Unicode
// form: a punycode "xn--" name is plain ASCII and passes).
bool IsNameText(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return IsAlpha(c) || IsDigit(c) || c == '-' || c == '.' || c == '_';
  });
}

std::optional<std::string> CanonicalIpv6(std::string_view text) {
  if (text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);  // inet_pton wants a NUL; it refuses zone ids ("%eth0"), which we want
  in6_addr a;
  if (inet_pton(AF_INET6, s.c_str(), &a) != 1) return std::nullopt;
  char out[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, &a, out, sizeof(out)) == nullptr) return std::nullopt;
  return std::string(out);
}

Status CheckScheme(const std::string& scheme, const FilterOptions& filter) {
  const auto& allowed = filter.allowed_schemes;
  const auto& disallowed = filter.disallowed_schemes;
  auto listed = [&](const std::vector<std::string>& list) {
    return std::any_of(list.begin(), list.end(),
                       [&](const std::string& s) { return Lower(s) == scheme; });
  };
  if (!allowed.empty() && !listed(allowed))
    return Refused("fetch.scheme: " + scheme + " is not an allowed scheme");
  if (listed(disallowed)) return Refused("fetch.scheme: " + scheme + " is a disallowed scheme");
  // The filter may allow more than we speak; curl is limited to these two as well.
  if (scheme != "http" && scheme != "https")
    return Refused("fetch.scheme: " + scheme + " is not supported");
  return Status::Ok();
}

Status CheckHost(const std::string& host, const FilterOptions& filter) {
  if (internal::HostListed(host, filter.disallowed_hosts))
    return Refused("fetch.host: " + host + " is a disallowed host");
  if (!filter.allowed_hosts.empty() && !internal::HostListed(host, filter.allowed_hosts))
    return Refused("fetch.host: " + host + " is not an allowed host");
  return Status::Ok();
}

Status CheckPort(uint16_t port, const FilterOptions& filter) {
  auto listed = [&](const std::vector<uint32_t>& list) {
    return std::find(list.begin(), list.end(), uint32_t{port}) != list.end();
  };
  if (!filter.allowed_ports.empty() && !listed(filter.allowed_ports))
    return Refused("fetch.port: " + std::to_string(port) + " is not an allowed port");
  if (listed(filter.disallowed_ports))
    return Refused("fetch.port: " + std::to_string(port) + " is a disallowed port");
  return Status::Ok();
}

// RFC 3986 §5.2.4, over a path that starts with '/'.
std::string RemoveDotSegments(std::string_view path) {
  std::vector<std::string_view> out;
  std::string_view rest = path.substr(1);
  for (;;) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    bool last = slash == std::string_view::npos;
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
      if (last) out.push_back("");
    } else if (seg == ".") {
      if (last) out.push_back("");
    } else {
      out.push_back(seg);
    }
    if (last) break;
    rest = rest.substr(slash + 1);
  }
  std::string result;
  for (std::string_view seg : out) {
    result += '/';
    result += seg;
  }
  return result.empty() ? "/" : result;
}

std::string Origin(const ParsedUrl& url) {
  std::string out = url.scheme + "://";
  if (url.host.find(':') != std::string::npos) {
    out += '[' + url.host + ']';
  } else {
    out += url.host;
  }
  out += ':' + std::to_string(url.port);
  return out;
}

}  // namespace

namespace internal {

std::optional<std::string> ParseLooseIpv4(std::string_view text) {
  // glibc's inet_aton, step for step: one to four parts, each decimal, octal (leading 0) or hex
  // (0x); the last part fills the bytes that remain ("127.1" is 127.0.0.1).
  uint32_t parts[4];
  size_t count = 0;
  size_t i = 0;
  uint64_t val = 0;
  bool digit = false;
  for (;;) {
    if (i >= text.size() || !IsDigit(text[i])) return std::nullopt;
    val = 0;
    int base = 10;
    digit = false;
    if (text[i] == '0') {
      ++i;
      if (i < text.size() && (text[i] == 'x' || text[i] == 'X')) {
        base = 16;
        ++i;
      } else {
        base = 8;
        digit = true;
      }
    }
    while (i < text.size()) {
      char c = text[i];
      int d;
      if (IsDigit(c)) {
        if (base == 8 && (c == '8' || c == '9')) return std::nullopt;
        d = c - '0';
      } else if (base == 16 && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
        d = LowerChar(c) - 'a' + 10;
      } else {
        break;
      }
      val = val * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
      if (val > 0xffffffffu) return std::nullopt;
      digit = true;
      ++i;
    }
    if (i < text.size() && text[i] == '.') {
      if (count >= 3 || val > 0xff) return std::nullopt;
      parts[count++] = static_cast<uint32_t>(val);
      ++i;
      continue;
    }
    break;
  }
  if (i != text.size() || !digit) return std::nullopt;
  // The last part must fit in the bytes left after the dotted ones.
  static constexpr uint64_t kLastMax[4] = {0xffffffffu, 0xffffffu, 0xffffu, 0xffu};
  if (val > kLastMax[count]) return std::nullopt;
  uint32_t addr = static_cast<uint32_t>(val);
  for (size_t k = 0; k < count; ++k) addr |= parts[k] << (24 - 8 * k);
  return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 0xff) + "." +
         std::to_string((addr >> 8) & 0xff) + "." + std::to_string(addr & 0xff);
}

std::optional<std::string> CanonicalHost(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return CanonicalIpv6(host.substr(1, host.size() - 2));
  }
  if (host.find(':') != std::string_view::npos) return CanonicalIpv6(host);
  // Empty labels ("a..b", ".a") are no DNS name; refusing them keeps one spelling per host.
  if (host.empty() || host.front() == '.' || host.find("..") != std::string_view::npos)
    return std::nullopt;
  // "example.com." and "example.com" are one host to the resolver; the rules must agree.
  if (host.back() == '.') host.remove_suffix(1);
  if (host.size() > kMaxHostLength || !IsNameText(host)) return std::nullopt;
  if (auto v4 = ParseLooseIpv4(host)) return v4;
  return Lower(host);
}

bool HostListed(std::string_view host, const std::vector<std::string>& list) {
  for (const std::string& entry : list) {
    std::optional<std::string> canonical = CanonicalHost(entry);
    if (canonical ? *canonical == host : Lower(entry) == host) return true;
  }
  return false;
}

std::string UrlText(const ParsedUrl& url) { return Origin(url) + url.path_and_query; }

Result<std::string> ResolveReference(const ParsedUrl& base, std::string_view reference) {
  std::string_view ref = reference.substr(0, reference.find('#'));
  size_t end_of_scheme = ref.find_first_of(":/?");
  if (end_of_scheme != std::string_view::npos && ref[end_of_scheme] == ':' &&
      IsSchemeText(ref.substr(0, end_of_scheme))) {
    return std::string(ref);  // absolute
  }
  if (ref.substr(0, 2) == "//") return base.scheme + ":" + std::string(ref);
  std::string_view base_path = base.path_and_query;
  base_path = base_path.substr(0, base_path.find('?'));
  if (ref.empty()) return UrlText(base);
  if (ref.front() == '?') return Origin(base) + std::string(base_path) + std::string(ref);
  size_t q = ref.find('?');
  std::string_view ref_path = ref.substr(0, q);
  std::string_view query = q == std::string_view::npos ? "" : ref.substr(q);
  std::string merged;
  if (ref_path.front() == '/') {
    merged = ref_path;
  } else {
    merged = std::string(base_path.substr(0, base_path.rfind('/') + 1));
    if (merged.empty()) merged = "/";
    merged += ref_path;
  }
  return Origin(base) + RemoveDotSegments(merged) + std::string(query);
}

}  // namespace internal

namespace {

Result<ParsedUrl> CheckUrlImpl(std::string_view url, const FilterOptions& filter) {
  if (url.size() > kMaxUrlLength)
    return InvalidArgument("fetch.url: longer than " + std::to_string(kMaxUrlLength) + " bytes");
  // Spaces, control characters and raw non-ASCII bytes have no place in a URL on the wire; a
  // parser that tolerated them would disagree with some other parser about where the host is.
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return InvalidArgument(
          "fetch.url: spaces, control characters and non-ASCII bytes must be percent-encoded");
    }
  }
  size_t colon = url.find(':');
  if (colon == std::string_view::npos || !IsSchemeText(url.substr(0, colon)))
    return InvalidArgument("fetch.url: not an absolute URL");
  ParsedUrl out;
  out.scheme = Lower(url.substr(0, colon));
  // The scheme rule first, so "file:///etc/passwd" is refused by name rather than as malformed.
  INGOT_RETURN_IF_ERROR(CheckScheme(out.scheme, filter));

  std::string_view rest = url.substr(colon + 1);
  if (rest.substr(0, 2) != "//") return InvalidArgument("fetch.url: no //host after the scheme");
  rest.remove_prefix(2);
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  // user:password@ is how "http://allowed.example@evil/" tricks are spelled, and credentials
  // do not belong in an image's URL anyway.
  if (authority.find('@') != std::string_view::npos)
    return InvalidArgument("fetch.url: user information in the URL is not allowed");

  std::string_view host_text;
  std::optional<std::string_view> port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("fetch.url: unclosed [ in host");
    host_text = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgument("fetch.url: text after ] in host");
      port_text = after.substr(1);
    }
  } else {
    size_t port_colon = authority.find(':');
    host_text = authority.substr(0, port_colon);
    if (port_colon != std::string_view::npos) port_text = authority.substr(port_colon + 1);
  }
  if (host_text.empty()) return InvalidArgument("fetch.url: no host");
  std::optional<std::string> host = internal::CanonicalHost(host_text);
  if (!host) return InvalidArgument("fetch.url: " + std::string(host_text) + " is not a host");
  out.host = std::move(*host);

  out.port = out.scheme == "https" ? 443 : 80;
  if (port_text && !port_text->empty()) {  // "host:" is the default port (RFC 3986 §3.2.3)
    uint32_t port = 0;
    if (port_text->size() > 5) return InvalidArgument("fetch.url: bad port");
    for (char c : *port_text) {
      if (!IsDigit(c)) return InvalidArgument("fetch.url: bad port");
      port = port * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535) return InvalidArgument("fetch.url: bad port");
    out.port = static_cast<uint16_t>(port);
  }

  tail = tail.substr(0, tail.find('#'));  // the fragment is the client's, never sent
  out.path_and_query =
      (tail.empty() || tail.front() != '/') ? "/" + std::string(tail) : std::string(tail);

  INGOT_RETURN_IF_ERROR(CheckHost(out.host, filter));
  INGOT_RETURN_IF_ERROR(CheckPort(out.port, filter));
  return out;
}

}  // namespace

Result<ParsedUrl> CheckUrl(std::string_view url, const FilterOptions& filter) {
  try {
    return CheckUrlImpl(url, filter);
  } catch (...) {  // std::bad_alloc is the only one there can be
    return Internal("fetch.url: out of memory");
  }
}

}  // namespace ingot::fetch
