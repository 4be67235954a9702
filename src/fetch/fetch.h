// Fetching a URL on a user's behalf (web-download and glance-download imports), safely. The user
// names the URL, so every fetch is a possible server-side request forgery: the rules below decide,
// before any byte is sent, whether the server may go there, and they are applied again to every
// redirect.
//
// Rules, in order (each refusal names its rule, as "fetch.<rule>: <value>"):
//  - scheme: `allowed_schemes` (default http, https) and not in `disallowed_schemes`;
//  - host: not in `disallowed_hosts`; if `allowed_hosts` is non-empty, in it (names compared
//    case-insensitively, addresses in their canonical text);
//  - port: in `allowed_ports` when non-empty (default 80, 443), not in `disallowed_ports`;
//  - address: the host is resolved once, and every address it resolves to must be public: loopback,
//    private (RFC 1918, fc00::/7), link-local, CGNAT (100.64/10), multicast, unspecified,
//    broadcast, documentation and IPv4-mapped/-compatible/NAT64 forms of those are refused, unless
//    the host (name or address) is listed in `allowed_hosts`, or the address lies in one of
//    `allowed_networks` (CIDR) — the operator's explicit choice (test beds allow 127.0.0.0/8 that
//    way, which, unlike allowed_hosts, leaves every host name allowed). The connection goes to the
//    address that was checked, never to a second resolution (no DNS rebinding).
// These are Glance's [import_filtering_opts] (same names), plus the address rule Glance lacks.
//
// Threads: a Download is used by one thread at a time; Open may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "io/byte_source.h"

namespace ingot::fetch {

struct FilterOptions {
  std::vector<std::string> allowed_schemes{"http", "https"};
  std::vector<std::string> disallowed_schemes;
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> disallowed_hosts;
  std::vector<uint32_t> allowed_ports{80, 443};
  std::vector<uint32_t> disallowed_ports;
  // Networks ("127.0.0.0/8", "fd00::/8") whose addresses the address rule lets through. Each entry
  // must pass CheckNetwork (the configuration checks them at start); one that does not matches
  // nothing.
  std::vector<std::string> allowed_networks;
};

struct FetchOptions {
  FilterOptions filter;
  int max_redirects = 5;                            // each hop is checked by the rules
  uint64_t max_bytes = uint64_t{1} << 40;           // body cap; past it the read fails kTooLarge
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds header_timeout{30000};  // until the response head is in
  std::chrono::milliseconds stall_timeout{60000};   // a body that makes no progress this long
  // Extra request headers (e.g. X-Auth-Token for glance-download).
  std::vector<std::pair<std::string, std::string>> headers;
};

// The URL, checked against the scheme, host and port rules (no resolution). Pure; fuzzed.
// kRefused naming the rule ("fetch.scheme: ftp", "fetch.port: 22"); kInvalidArgument "fetch.url: ..."
// for text that is not an absolute http(s)-style URL.
struct ParsedUrl {
  std::string scheme;  // lower case
  std::string host;    // lower case; IPv6 without brackets
  uint16_t port = 0;   // the scheme's default when absent
  std::string path_and_query;
};
Result<ParsedUrl> CheckUrl(std::string_view url, const FilterOptions& filter);

// True when `address` (numeric IPv4 or IPv6 text) is one the address rule refuses.
bool IsNonPublicAddress(std::string_view address);

// A network as allowed_networks takes it: "address/prefix" (IPv4 dotted quad with a prefix of
// 0..32, or IPv6 with 0..128), or a bare address (one host). kInvalidArgument naming the entry and
// what is wrong; host bits set past the prefix ("127.0.0.1/8") are refused, so that a typo does
// not silently widen or narrow what is allowed.
Status CheckNetwork(std::string_view cidr);
// True when `address` (numeric IPv4 or IPv6 text; an IPv4-mapped IPv6 address counts as its IPv4
// address) lies in one of `networks`. Entries CheckNetwork refuses match nothing. Pure; fuzzed with
// the URL rules.
bool InNetworks(std::string_view address, const std::vector<std::string>& networks);

// A response whose head has arrived with a 2xx status; Read streams the body (0 at its end).
// Read fails kTooLarge past max_bytes, kUnavailable when the peer stalls or the connection drops.
class Download : public io::Reader {
 public:
  virtual int status() const = 0;
  virtual std::optional<uint64_t> content_length() const = 0;
  virtual std::string_view final_url() const = 0;  // after redirects
  virtual std::string_view header(std::string_view name) const = 0;  // "" when absent
};

// Opens `url` under `options`: kRefused when a rule refuses it or a redirect (naming the
// rule and the hop), kUnavailable when the server cannot be reached or answers 5xx, kNotFound for
// 404, kInvalidArgument for another non-2xx status or too many redirects.
Result<std::unique_ptr<Download>> Open(const std::string& url, const FetchOptions& options);

// Convenience for small documents (JSON metadata): the whole body, at most `max_bytes`.
Result<std::string> GetText(const std::string& url, const FetchOptions& options,
                            uint64_t max_bytes = 1 << 20);

}  // namespace ingot::fetch
