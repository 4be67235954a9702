// fetch::CheckUrl (the SSRF rules' URL parser) and the address rule over arbitrary text. The first
// byte picks the filter, the rest is the URL.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fetch/fetch.h"
#include "fetch/url_text.h"

namespace {

bool Canonical(std::string_view host) {
  for (char c : host) {
    if (c >= 'A' && c <= 'Z') return false;
  }
  return !host.empty() && host.front() != '[' && host.back() != '.';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  using ingot::fetch::FilterOptions;
  FilterOptions filter;
  switch (data[0] % 3) {
    case 0:
      break;  // the defaults
    case 1:
      filter.allowed_ports = {};
      filter.disallowed_hosts = {"127.0.0.1", "::1", "Metadata.Internal"};
      break;
    case 2:
      filter.allowed_hosts = {"127.0.0.1", "images.example"};
      filter.allowed_ports = {};
      break;
  }
  std::string_view url(reinterpret_cast<const char*>(data + 1), size - 1);
  auto parsed = ingot::fetch::CheckUrl(url, filter);
  (void)ingot::fetch::IsNonPublicAddress(url);
  // allowed_networks: the text as a network (checked at start) and as an address (after
  // resolution); an entry CheckNetwork accepts always contains its own base address.
  if (ingot::fetch::CheckNetwork(url).ok()) {
    std::string_view base = url.substr(0, url.find('/'));
    if (!ingot::fetch::InNetworks(base, {std::string(url)})) __builtin_trap();
  }
  (void)ingot::fetch::InNetworks(url, {"127.0.0.0/8", "fd00::/8", "::ffff:10.0.0.0/104"});
  if (!parsed.ok()) {
    // Every refusal names its rule.
    const std::string& m = parsed.status().message();
    if (m.rfind("fetch.", 0) != 0) __builtin_trap();
    return 0;
  }
  const auto& u = *parsed;
  if (u.scheme != "http" && u.scheme != "https") __builtin_trap();
  if (u.port == 0 || !Canonical(u.host)) __builtin_trap();
  if (u.path_and_query.empty() || u.path_and_query.front() != '/') __builtin_trap();
  for (char c : u.host + u.path_and_query) {
    auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b >= 0x7f || c == '#') __builtin_trap();
  }
  if (u.host.find_first_of("/?@%") != std::string::npos) __builtin_trap();
  // What curl is given parses back to the same pieces under the same rules.
  auto again = ingot::fetch::CheckUrl(ingot::fetch::internal::UrlText(u), filter);
  if (!again.ok() || again->scheme != u.scheme || again->host != u.host || again->port != u.port ||
      again->path_and_query != u.path_and_query) {
    __builtin_trap();
  }
  // A redirect resolved against it is well-formed text for CheckUrl to judge, never a crash.
  (void)ingot::fetch::internal::ResolveReference(u, url);
  return 0;
}
