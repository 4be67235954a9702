// TFTP on the wire: pure functions over bytes, no sockets (fuzzed by fuzz/fuzz_tftp_packet.cc).
// RFC 1350 (the protocol), RFC 2347 (option extension, OACK), RFC 2348 (blksize), RFC 2349
// (timeout, tsize), RFC 7440 (windowsize).
//
// Every packet from the network is hostile: ParsePacket never reads past the buffer, bounds every
// string by the packet, and refuses what RFC 1350 does not define. The parsed strings are views
// into the caller's buffer and live as long as it does.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::tftp {

enum class Opcode : uint16_t { kRrq = 1, kWrq = 2, kData = 3, kAck = 4, kError = 5, kOack = 6 };

// RFC 1350 §5 and RFC 2347's code 8.
enum class ErrorCode : uint16_t {
  kNotDefined = 0,
  kFileNotFound = 1,
  kAccessViolation = 2,
  kDiskFull = 3,
  kIllegalOperation = 4,
  kUnknownTransferId = 5,
  kFileExists = 6,
  kNoSuchUser = 7,
  kOptionRefused = 8,
};

enum class Mode { kOctet, kNetascii };

struct Option {
  std::string_view name;  // as sent; compare case-insensitively
  std::string_view value;
};

// RRQ or WRQ: filename, mode and the RFC 2347 options in the order sent.
struct Request {
  Opcode opcode = Opcode::kRrq;
  std::string_view filename;
  std::string_view mode;  // as sent; see ParseMode
  std::vector<Option> options;
};

struct Ack {
  uint16_t block = 0;
};

struct Data {
  uint16_t block = 0;
  std::span<const uint8_t> payload;
};

struct ErrorPacket {
  uint16_t code = 0;
  std::string_view message;
};

struct Packet {
  Opcode opcode = Opcode::kRrq;
  Request request;           // kRrq, kWrq
  Ack ack;                   // kAck
  Data data;                 // kData
  ErrorPacket error;         // kError
  std::vector<Option> oack;  // kOack
};

// Most options a request may carry; more is refused (a request is at most one datagram anyway).
inline constexpr size_t kMaxOptions = 32;

// Parses one datagram. kInvalidArgument for anything malformed: shorter than an opcode, an unknown
// opcode, a request whose strings are not NUL-terminated inside the packet, an option without a
// value, an empty filename, more than kMaxOptions options. A request may end with extra NUL padding
// (some PXE ROMs pad); anything else after its last string is malformed. ERROR messages without
// their NUL are accepted (the message is what is there).
Result<Packet> ParsePacket(std::span<const uint8_t> datagram);

// "octet" or "netascii", case-insensitively; "mail" and anything else: kUnsupported.
Result<Mode> ParseMode(std::string_view mode);

// RFC limits.
inline constexpr uint32_t kMinBlksize = 8;
inline constexpr uint32_t kMaxBlksize = 65464;
inline constexpr uint32_t kDefaultBlksize = 512;
inline constexpr uint32_t kMaxWindowsize = 65535;

// What the server is willing to give.
struct NegotiationLimits {
  uint32_t max_blksize = 1468;   // clamped to [kMinBlksize, kMaxBlksize]
  uint32_t max_windowsize = 64;  // clamped to [1, kMaxWindowsize]
  bool allow_timeout_option = true;
};

// The outcome of RFC 2347 negotiation for a read request.
struct Negotiated {
  uint32_t blksize = kDefaultBlksize;
  uint32_t windowsize = 1;
  std::optional<uint32_t> timeout_seconds;  // set when the client's timeout option was accepted
  // The OACK's options in the client's order, canonical lower-case names; empty: no OACK, the
  // transfer starts with DATA block 1 (RFC 1350).
  std::vector<std::pair<std::string, std::string>> oack;
};

// Negotiates the options of a read request (RFC 2347: unknown options are ignored; only options the
// server acts on appear in the OACK; a value may be lowered, never raised):
//  - blksize 8..65464, clamped to limits.max_blksize; larger than 65464 is clamped too.
//  - windowsize 1..65535, clamped to limits.max_windowsize.
//  - timeout 1..255 seconds, answered as asked.
//  - tsize answered with `file_size` when it is known (octet mode); omitted otherwise (netascii's
//    size is not the file's and would need a pass over it).
// A recognised option whose value is not a decimal number in its RFC range (blksize < 8, timeout 0,
// windowsize 0, garbage) is kInvalidArgument: the server answers ERROR 8. The first of duplicated
// options counts.
Result<Negotiated> Negotiate(const std::vector<Option>& options, std::optional<uint64_t> file_size,
                             const NegotiationLimits& limits);

// Serialisers. They append to `out` (cleared first) so a transfer reuses one buffer.
void EncodeData(uint16_t block, std::span<const uint8_t> payload, std::vector<uint8_t>& out);
void EncodeAck(uint16_t block, std::vector<uint8_t>& out);
void EncodeError(ErrorCode code, std::string_view message, std::vector<uint8_t>& out);
void EncodeOack(const std::vector<std::pair<std::string, std::string>>& options,
                std::vector<uint8_t>& out);
// A request, for test clients: filename, mode and options.
void EncodeRequest(Opcode opcode, std::string_view filename, std::string_view mode,
                   const std::vector<std::pair<std::string, std::string>>& options,
                   std::vector<uint8_t>& out);

}  // namespace ingot::tftp
