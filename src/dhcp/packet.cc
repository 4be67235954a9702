#include "dhcp/packet.h"

#include <algorithm>
#include <cstdio>

namespace ingot::dhcp {
namespace {

constexpr size_t kHeader = 236;
constexpr uint8_t kCookie[4] = {99, 130, 83, 99};

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

std::string CString(const uint8_t* p, size_t max) {
  size_t n = 0;
  while (n < max && p[n] != 0) ++n;
  return std::string(reinterpret_cast<const char*>(p), n);
}

// Reads one option area into `out`. `needs_end`: the main area must end with option 255.
Status ReadOptions(std::span<const uint8_t> area, std::map<uint8_t, std::string>& out,
                   bool needs_end) {
  size_t i = 0;
  while (i < area.size()) {
    uint8_t code = area[i++];
    if (code == option::kPad) continue;
    if (code == option::kEnd) return Status::Ok();
    if (i >= area.size()) return InvalidArgument("dhcp: option " + std::to_string(code) + " has no length");
    size_t len = area[i++];
    if (len > area.size() - i) {
      return InvalidArgument("dhcp: option " + std::to_string(code) + " runs past the message");
    }
    out[code].append(reinterpret_cast<const char*>(area.data() + i), len);
    i += len;
  }
  if (needs_end) return InvalidArgument("dhcp: the options do not end with option 255");
  return Status::Ok();
}

std::string Hex2(uint8_t b) {
  char buf[3];
  std::snprintf(buf, sizeof(buf), "%02x", b);
  return buf;
}

}  // namespace

std::optional<MessageType> Packet::type() const {
  const std::string* t = Option(option::kMessageType);
  if (t == nullptr || t->size() != 1) return std::nullopt;
  uint8_t v = static_cast<uint8_t>((*t)[0]);
  if (v < 1 || v > 8) return std::nullopt;
  return static_cast<MessageType>(v);
}

const std::string* Packet::Option(uint8_t code) const {
  auto it = options.find(code);
  return it == options.end() ? nullptr : &it->second;
}

Result<Packet> Parse(std::span<const uint8_t> b) {
  if (b.size() < kHeader + 4) return InvalidArgument("dhcp: shorter than a BOOTP header");
  Packet p;
  p.op = b[0];
  p.htype = b[1];
  p.hlen = b[2];
  p.hops = b[3];
  p.xid = Be32(&b[4]);
  p.secs = Be16(&b[8]);
  p.flags = Be16(&b[10]);
  std::copy_n(&b[12], 4, p.ciaddr.begin());
  std::copy_n(&b[16], 4, p.yiaddr.begin());
  std::copy_n(&b[20], 4, p.siaddr.begin());
  std::copy_n(&b[24], 4, p.giaddr.begin());
  std::copy_n(&b[28], 16, p.chaddr.begin());
  if (p.op != 1 && p.op != 2) return InvalidArgument("dhcp: op is neither request nor reply");
  if (p.hlen > 16) return InvalidArgument("dhcp: hardware address longer than 16 bytes");
  if (!std::equal(kCookie, kCookie + 4, &b[kHeader])) {
    return InvalidArgument("dhcp: no magic cookie (a BOOTP message)");
  }
  INGOT_RETURN_IF_ERROR(ReadOptions(b.subspan(kHeader + 4), p.options, /*needs_end=*/true));
  // Option 52: more options in file (1), sname (2) or both (3); those fields are then no names.
  uint8_t overload = 0;
  if (const std::string* o = p.Option(option::kOverload); o != nullptr && o->size() == 1) {
    overload = static_cast<uint8_t>((*o)[0]);
  }
  if (overload & 1) {
    INGOT_RETURN_IF_ERROR(ReadOptions(b.subspan(108, 128), p.options, false));
  } else {
    p.file = CString(&b[108], 128);
  }
  if (overload & 2) {
    INGOT_RETURN_IF_ERROR(ReadOptions(b.subspan(44, 64), p.options, false));
  } else {
    p.sname = CString(&b[44], 64);
  }
  return p;
}

std::vector<uint8_t> Serialize(const Packet& p) {
  std::vector<uint8_t> out(kHeader, 0);
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<uint8_t>(p.xid >> (24 - 8 * i));
  out[8] = static_cast<uint8_t>(p.secs >> 8);
  out[9] = static_cast<uint8_t>(p.secs);
  out[10] = static_cast<uint8_t>(p.flags >> 8);
  out[11] = static_cast<uint8_t>(p.flags);
  std::copy(p.ciaddr.begin(), p.ciaddr.end(), &out[12]);
  std::copy(p.yiaddr.begin(), p.yiaddr.end(), &out[16]);
  std::copy(p.siaddr.begin(), p.siaddr.end(), &out[20]);
  std::copy(p.giaddr.begin(), p.giaddr.end(), &out[24]);
  std::copy(p.chaddr.begin(), p.chaddr.end(), &out[28]);
  std::copy_n(p.sname.begin(), std::min<size_t>(p.sname.size(), 63), &out[44]);
  std::copy_n(p.file.begin(), std::min<size_t>(p.file.size(), 127), &out[108]);
  out.insert(out.end(), kCookie, kCookie + 4);
  // Message type first: some clients look for it there.
  auto put = [&](uint8_t code, const std::string& v) {
    size_t pos = 0;
    do {
      size_t n = std::min<size_t>(255, v.size() - pos);
      out.push_back(code);
      out.push_back(static_cast<uint8_t>(n));
      out.insert(out.end(), v.begin() + static_cast<std::ptrdiff_t>(pos),
                 v.begin() + static_cast<std::ptrdiff_t>(pos + n));
      pos += n;
    } while (pos < v.size());
  };
  if (const std::string* t = p.Option(option::kMessageType)) put(option::kMessageType, *t);
  for (const auto& [code, v] : p.options) {
    if (code != option::kMessageType && code != option::kPad && code != option::kEnd) put(code, v);
  }
  out.push_back(option::kEnd);
  if (out.size() < 300) out.resize(300, 0);
  return out;
}

std::optional<PxeClient> ClientOf(const Packet& p) {
  if (p.op != 1) return std::nullopt;
  auto type = p.type();
  if (!type) return std::nullopt;
  PxeClient c;
  c.type = *type;
  if (p.htype == 1 && p.hlen == 6) {
    for (int i = 0; i < 6; ++i) c.mac += (i ? ":" : "") + Hex2(p.chaddr[i]);
  }
  if (const std::string* v = p.Option(option::kVendorClass)) {
    c.pxe = v->rfind("PXEClient", 0) == 0;
    c.http = v->rfind("HTTPClient", 0) == 0;
  }
  if (const std::string* a = p.Option(option::kClientArch); a != nullptr && a->size() >= 2) {
    c.arch = static_cast<uint16_t>((static_cast<uint8_t>((*a)[0]) << 8) |
                                   static_cast<uint8_t>((*a)[1]));
  }
  // Option 77 is a list of (length, class) pairs (RFC 3004); iPXE sends a bare "iPXE" too.
  if (const std::string* u = p.Option(option::kUserClass)) {
    if (*u == "iPXE") {
      c.ipxe = true;
    } else {
      for (size_t i = 0; i < u->size();) {
        size_t n = static_cast<uint8_t>((*u)[i]);
        if (n == 0 || n > u->size() - i - 1) break;
        if (u->compare(i + 1, n, "iPXE") == 0) c.ipxe = true;
        i += 1 + n;
      }
    }
  }
  if (p.Option(option::kIpxeEncap) != nullptr) c.ipxe = true;
  if (const std::string* g = p.Option(option::kClientGuid); g != nullptr && g->size() == 17 &&
                                                           (*g)[0] == 0) {
    c.raw_guid = *g;
    // PXE sends the SMBIOS UUID as it is stored: the first three fields little-endian.
    const auto* u = reinterpret_cast<const uint8_t*>(g->data() + 1);
    const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) c.guid += '-';
      c.guid += Hex2(u[order[i]]);
    }
  }
  return c;
}

}  // namespace ingot::dhcp
