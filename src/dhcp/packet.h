// DHCP messages (RFC 2131/2132) as the proxyDHCP responder reads and writes them: the fixed BOOTP
// header, the magic cookie, and the options — long options split over several instances
// concatenated (RFC 3396), options in `file`/`sname` read when option 52 says they are there.
// And what a PXE client says of itself: its architecture (option 93, RFC 4578), the vendor class
// (option 60: "PXEClient…" or "HTTPClient…" for UEFI HTTP boot), its machine GUID (option 97) and
// whether it is iPXE (user class "iPXE", option 77, or iPXE's own option 175).
//
// Pure functions over bytes; every length is checked against what is there (fuzz/fuzz_dhcp.cc).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace ingot::dhcp {

enum class MessageType : uint8_t {
  kDiscover = 1, kOffer = 2, kRequest = 3, kDecline = 4, kAck = 5, kNak = 6, kRelease = 7,
  kInform = 8,
};

namespace option {
constexpr uint8_t kPad = 0, kHostname = 12, kVendorSpecific = 43, kRequestedIp = 50,
                  kOverload = 52, kMessageType = 53, kServerId = 54, kParameterList = 55,
                  kMaxMessageSize = 57, kVendorClass = 60, kClientId = 61, kTftpServer = 66,
                  kBootfile = 67, kUserClass = 77, kClientArch = 93, kClientNdi = 94,
                  kClientGuid = 97, kIpxeEncap = 175, kEnd = 255;
}

struct Packet {
  uint8_t op = 1;  // 1 request, 2 reply
  uint8_t htype = 1;
  uint8_t hlen = 6;
  uint8_t hops = 0;
  uint32_t xid = 0;
  uint16_t secs = 0;
  uint16_t flags = 0;
  std::array<uint8_t, 4> ciaddr{}, yiaddr{}, siaddr{}, giaddr{};
  std::array<uint8_t, 16> chaddr{};
  std::string sname;  // up to 63 bytes on the wire
  std::string file;   // up to 127 bytes on the wire
  std::map<uint8_t, std::string> options;  // by code; values concatenated (RFC 3396)

  std::optional<MessageType> type() const;
  const std::string* Option(uint8_t code) const;
};

// kInvalidArgument when `bytes` is not a well-formed DHCP message (short, no cookie, an option
// running past the end, an unterminated option area).
Result<Packet> Parse(std::span<const uint8_t> bytes);
// The wire form: options in code order, values over 255 bytes split (RFC 3396), padded to the
// BOOTP minimum of 300 bytes.
std::vector<uint8_t> Serialize(const Packet& p);

// RFC 4578 §2.1 and IANA's registry: the client system architecture types the responder knows.
enum class Arch : uint16_t {
  kBiosX86 = 0,
  kEfiIa32 = 6,
  kEfiBc = 7,  // x86-64 EFI byte code in the RFC; x86-64 UEFI firmware sends it
  kEfiX64 = 9,
  kEfiArm32 = 10,
  kEfiArm64 = 11,
  kEfiX64Http = 16,
  kEfiArm64Http = 19,
};

struct PxeClient {
  MessageType type = MessageType::kDiscover;
  std::string mac;                   // "aa:bb:…" (htype 1, hlen 6), else ""
  std::optional<uint16_t> arch;      // option 93 (the first one listed)
  bool pxe = false;                  // option 60 starts with "PXEClient"
  bool http = false;                 // option 60 starts with "HTTPClient"
  bool ipxe = false;                 // user class "iPXE" or option 175 present
  std::string guid;                  // option 97 type 0, as a UUID string, else ""
  std::string raw_guid;              // option 97's bytes, echoed back
};

// nullopt when the message is not a boot client's request the responder should consider.
std::optional<PxeClient> ClientOf(const Packet& p);

}  // namespace ingot::dhcp
