// Private to ingot_fetch (and its test and fuzz target): the pure text pieces behind CheckUrl.
// The public contract is fetch.h.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "fetch/fetch.h"

namespace ingot::fetch::internal {

// The one spelling of a host used for the host rule, for resolution and for the URL curl gets:
// IPv6 (with or without brackets) as inet_ntop writes it; IPv4 in any form the resolver takes as a
// number ("127.1", "0x7f.1", "2130706433", octal) as a dotted quad; a name in lower case without a
// trailing dot. nullopt when the text is no host (empty, bad characters, a zone id).
std::optional<std::string> CanonicalHost(std::string_view host);

// The IPv4 forms glibc's inet_aton accepts, which is what getaddrinfo takes as a numeric host.
std::optional<std::string> ParseLooseIpv4(std::string_view text);

// True when `host` (already canonical) matches an entry of `list` (canonicalized the same way).
bool HostListed(std::string_view host, const std::vector<std::string>& list);

// The absolute URL for a parsed one: scheme://host:port/path?query (IPv6 in brackets).
std::string UrlText(const ParsedUrl& url);

// RFC 3986 §5.2 reference resolution of a Location header against the URL that answered with it.
// The result is checked again by CheckUrl, so this only has to be right, not safe.
Result<std::string> ResolveReference(const ParsedUrl& base, std::string_view reference);

}  // namespace ingot::fetch::internal
