// The DHCP message parser and the proxyDHCP decision over arbitrary bytes (dhcp/packet.h).
#include <cstddef>
#include <cstdint>

#include "dhcp/packet.h"
#include "dhcp/proxy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto p = ingot::dhcp::Parse(std::span<const uint8_t>(data, size));
  if (!p.ok()) return 0;
  ingot::dhcp::ProxyOptions o;
  o.server = {192, 0, 2, 1};
  o.http_base = "http://192.0.2.1:9090";
  for (bool port : {false, true}) {
    if (auto a = ingot::dhcp::Answer(*p, o, port, nullptr)) {
      auto wire = ingot::dhcp::Serialize(a->reply);
      auto back = ingot::dhcp::Parse(wire);
      if (!back.ok()) __builtin_trap();  // what we send must parse
    }
  }
  (void)ingot::dhcp::Serialize(*p);
  return 0;
}
