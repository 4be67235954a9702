// The address rule: which resolved addresses a fetch may connect to. Fails closed: text that is no
// address, and IPv6 outside global unicast, are refused.
//
// Ranges from the IANA special-purpose registries (RFC 6890 and its updates).
#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fetch/fetch.h"
#include "fetch/url_text.h"

namespace ingot::fetch {
namespace {

struct V4Range {
  uint32_t base;
  int prefix;
};

constexpr V4Range kV4NonPublic[] = {
    {0x00000000, 8},   // 0/8 "this network", 0.0.0.0
    {0x0a000000, 8},   // 10/8 RFC 1918
    {0x64400000, 10},  // 100.64/10 CGNAT
    {0x7f000000, 8},   // 127/8 loopback
    {0xa9fe0000, 16},  // 169.254/16 link-local (cloud metadata lives here)
    {0xac100000, 12},  // 172.16/12 RFC 1918
    {0xc0000000, 24},  // 192.0.0/24 IETF protocol assignments
    {0xc0000200, 24},  // 192.0.2/24 TEST-NET-1
    {0xc0a80000, 16},  // 192.168/16 RFC 1918
    {0xc6120000, 15},  // 198.18/15 benchmarking
    {0xc6336400, 24},  // 198.51.100/24 TEST-NET-2
    {0xcb007100, 24},  // 203.0.113/24 TEST-NET-3
    {0xe0000000, 4},   // 224/4 multicast
    {0xf0000000, 4},   // 240/4 reserved, with 255.255.255.255 broadcast
};

bool V4NonPublic(uint32_t a) {
  for (const V4Range& r : kV4NonPublic) {
    uint32_t mask = ~uint32_t{0} << (32 - r.prefix);
    if ((a & mask) == r.base) return true;
  }
  return false;
}

uint32_t V4At(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

bool V6NonPublic(const uint8_t b[16]) {
  // ::/96: the unspecified address, ::1 and the deprecated IPv4-compatible ::a.b.c.d, which no
  // public server uses and some stacks still route to the embedded IPv4 address.
  if (AllZero(b, 12)) return true;
  // ::ffff:a.b.c.d (IPv4-mapped; a dual-stack socket connects to the IPv4 address) and
  // ::ffff:0:a.b.c.d (IPv4-translated): as public as the IPv4 address they carry.
  if (AllZero(b, 10) && b[10] == 0xff && b[11] == 0xff) return V4NonPublic(V4At(b + 12));
  if (AllZero(b, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0)
    return V4NonPublic(V4At(b + 12));
  // 64:ff9b::/96 well-known NAT64 prefix: the gateway forwards to the embedded IPv4 address.
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) {
    if (AllZero(b + 4, 8)) return V4NonPublic(V4At(b + 12));
    return true;  // 64:ff9b:1::/48 local-use NAT64 and the rest of 64:ff9b::/32
  }
  // 2002::/16 6to4: the relay forwards to the IPv4 address in bits 16..48.
  if (b[0] == 0x20 && b[1] == 0x02) return V4NonPublic(V4At(b + 2));
  // Only 2000::/3 is global unicast; everything else (fc00::/7 unique local, fe80::/10 link-local,
  // fec0::/10 site-local, ff00::/8 multicast, 100::/64 discard, ...) is not public.
  if ((b[0] & 0xe0) != 0x20) return true;
  if (b[0] == 0x20 && b[1] == 0x01) {
    if (b[2] == 0x00 && b[3] == 0x00) return true;                            // 2001::/32 Teredo
    if (b[2] == 0x00 && b[3] == 0x02 && b[4] == 0 && b[5] == 0) return true;  // 2001:2::/48
    if (b[2] == 0x00 && (b[3] & 0xf0) == 0x10) return true;                   // 2001:10::/28 ORCHID
    if (b[2] == 0x00 && (b[3] & 0xf0) == 0x20) return true;  // 2001:20::/28 ORCHIDv2
    if (b[2] == 0x0d && b[3] == 0xb8) return true;           // 2001:db8::/32 documentation
  }
  if (b[0] == 0x3f && (b[1] & 0xf0) == 0xf0) return true;  // 3fff::/20 documentation (RFC 9637)
  return false;
}

}  // namespace

namespace {

bool IsNonPublicAddressImpl(std::string_view address) {
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  if (address.find(':') == std::string_view::npos) {
    // The shorthand forms too ("127.1", "2130706433"): the resolver takes them as numbers.
    std::optional<std::string> v4 = internal::ParseLooseIpv4(address);
    if (!v4) return true;
    in_addr a;
    if (inet_pton(AF_INET, v4->c_str(), &a) != 1) return true;
    return V4NonPublic(ntohl(a.s_addr));
  }
  if (address.size() >= INET6_ADDRSTRLEN) return true;
  std::string text(address);
  in6_addr a;
  if (inet_pton(AF_INET6, text.c_str(), &a) != 1) return true;
  return V6NonPublic(a.s6_addr);
}

}  // namespace

namespace {

// An address of either family as 16 bytes: IPv4 as its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so
// one comparison covers both and a mapped address matches its IPv4 network.
struct Address16 {
  uint8_t b[16];
};

std::optional<Address16> ParseStrictAddress(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  Address16 out{};
  if (s.find(':') == std::string::npos) {
    in_addr a;
    if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;  // dotted quads only
    out.b[10] = out.b[11] = 0xff;
    std::memcpy(out.b + 12, &a.s_addr, 4);
    return out;
  }
  in6_addr a;
  if (inet_pton(AF_INET6, s.c_str(), &a) != 1) return std::nullopt;
  std::memcpy(out.b, a.s6_addr, 16);
  return out;
}

bool IsMappedV4(const Address16& a) {
  return AllZero(a.b, 10) && a.b[10] == 0xff && a.b[11] == 0xff;
}

struct Network16 {
  Address16 base;
  int prefix;  // of the 128 bits
};

// "address/prefix" or a bare address; the reason it is refused otherwise.
Result<Network16> ParseNetwork(std::string_view cidr) {
  const std::string shown(cidr);
  size_t slash = cidr.find('/');
  std::optional<Address16> base = ParseStrictAddress(cidr.substr(0, slash));
  if (!base) {
    return InvalidArgument("'" + shown + "' is not a network: expected an IPv4 or IPv6 address, " +
                           "optionally with /prefix (e.g. \"127.0.0.0/8\")");
  }
  const bool v4 = IsMappedV4(*base) && cidr.substr(0, slash).find(':') == std::string_view::npos;
  const int max = v4 ? 32 : 128;
  int prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view digits = cidr.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) {
      return InvalidArgument("'" + shown + "': the prefix length must be 0.." +
                             std::to_string(max));
    }
    prefix = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') {
        return InvalidArgument("'" + shown + "': the prefix length must be 0.." +
                               std::to_string(max));
      }
      prefix = prefix * 10 + (c - '0');
    }
    if (prefix > max) {
      return InvalidArgument("'" + shown + "': the prefix length must be 0.." +
                             std::to_string(max));
    }
  }
  Network16 n{*base, prefix + (v4 ? 96 : 0)};
  for (int bit = n.prefix; bit < 128; ++bit) {
    if (n.base.b[bit / 8] & (0x80 >> (bit % 8))) {
      return InvalidArgument("'" + shown + "' has host bits set past its /" +
                             std::to_string(prefix) + " prefix");
    }
  }
  return n;
}

bool Contains(const Network16& n, const Address16& a) {
  for (int bit = 0; bit < n.prefix; ++bit) {
    const uint8_t mask = 0x80 >> (bit % 8);
    if ((n.base.b[bit / 8] & mask) != (a.b[bit / 8] & mask)) return false;
  }
  return true;
}

}  // namespace

Status CheckNetwork(std::string_view cidr) {
  try {
    return ParseNetwork(cidr).status();
  } catch (...) {
    return Internal("fetch: out of memory");
  }
}

bool InNetworks(std::string_view address, const std::vector<std::string>& networks) {
  try {
    if (networks.empty()) return false;
    std::optional<Address16> a = ParseStrictAddress(address);
    if (!a) return false;
    for (const std::string& entry : networks) {
      Result<Network16> n = ParseNetwork(entry);
      if (n.ok() && Contains(*n, *a)) return true;
    }
    return false;
  } catch (...) {  // out of memory: allow nothing
    return false;
  }
}

bool IsNonPublicAddress(std::string_view address) {
  try {
    return IsNonPublicAddressImpl(address);
  } catch (...) {  // out of memory: fail closed
    return true;
  }
}

}  // namespace ingot::fetch
