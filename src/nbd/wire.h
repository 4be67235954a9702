// NBD on the wire: pure functions and a pure negotiation state machine over bytes, no sockets
// (library ingot_nbd_wire, fuzzed by fuzz/fuzz_nbd_wire.cc). The server (server.h) moves bytes
// between a socket and these.
//
// Every byte from a client is hostile: parsers never read past the span they are given, bound every
// string by the spec's 4096-byte limit, and say exactly which refusal the protocol expects
// (an option error reply, an error value on a request, or closing the connection).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "nbd/protocol.h"

namespace ingot::nbd {

// Big-endian helpers over a growing buffer.
void PutU16(std::vector<uint8_t>& out, uint16_t v);
void PutU32(std::vector<uint8_t>& out, uint32_t v);
void PutU64(std::vector<uint8_t>& out, uint64_t v);
uint16_t GetU16(const uint8_t* p);
uint32_t GetU32(const uint8_t* p);
uint64_t GetU64(const uint8_t* p);

// ---- Negotiation ----

// The 18 bytes the server sends first: NBDMAGIC, IHAVEOPT, handshake flags.
std::vector<uint8_t> Greeting();

struct OptionHeader {
  uint32_t option = 0;
  uint32_t length = 0;
};
// The 16-byte header of a client option. kInvalidArgument when the magic is wrong (close).
Result<OptionHeader> ParseOptionHeader(std::span<const uint8_t> header);

// What an export looks like to negotiation, as the server's lookup decides it for this client.
struct ExportDescription {
  uint64_t size = 0;
  uint16_t transmission_flags = 0;  // kTxHasFlags and the rest
  std::string description;          // NBD_INFO_DESCRIPTION, when asked; may be empty
  uint32_t min_block = 1;
  uint32_t preferred_block = 4096;
  uint32_t max_block = 32u << 20;
};

// How a lookup refusal reads: the Status code picks the reply (kNotFound → NBD_REP_ERR_UNKNOWN,
// kPermissionDenied → NBD_REP_ERR_POLICY, kUnavailable → NBD_REP_ERR_SHUTDOWN, anything else →
// NBD_REP_ERR_PLATFORM); the message goes to the client as the reply's text, so it must not leak.
uint32_t RefusalReply(Code code);

// The option haggling phase of fixed newstyle negotiation, one option at a time.
class Negotiation {
 public:
  // Resolves `name` for this client. `final` is true for NBD_OPT_GO / NBD_OPT_EXPORT_NAME: the
  // server commits to serving it (claims the writer slot); false for NBD_OPT_INFO / LIST_META_CONTEXT.
  using Lookup = std::function<Result<ExportDescription>(std::string_view name, bool final)>;
  // The export names this client may see (NBD_OPT_LIST).
  using Lister = std::function<std::vector<std::string>()>;

  enum class Next {
    kContinue,      // more options follow
    kTransmission,  // the export is chosen: send `out`, then serve requests
    kClose,         // send `out` (if anything), then close the connection
  };

  Negotiation(Lookup lookup, Lister lister) : lookup_(std::move(lookup)), lister_(std::move(lister)) {}

  // The client's 32-bit flags. false: unknown flags or no fixed newstyle — close at once.
  bool OnClientFlags(uint32_t flags);

  // Handles one option whose data is `data` (exactly the header's length). Appends the reply bytes
  // to `out`.
  Next OnOption(uint32_t option, std::span<const uint8_t> data, std::vector<uint8_t>& out);

  // After kTransmission.
  bool structured_replies() const { return structured_; }
  // base:allocation was selected for the chosen export.
  bool base_allocation() const { return base_allocation_ && meta_export_ == export_name_; }
  const std::string& export_name() const { return export_name_; }
  const ExportDescription& export_description() const { return export_; }

 private:
  Next Go(uint32_t option, std::span<const uint8_t> data, std::vector<uint8_t>& out);
  Next ExportName(std::span<const uint8_t> data, std::vector<uint8_t>& out);
  Next MetaContext(uint32_t option, std::span<const uint8_t> data, std::vector<uint8_t>& out);

  Lookup lookup_;
  Lister lister_;
  bool no_zeroes_ = false;
  bool structured_ = false;
  bool base_allocation_ = false;
  std::string meta_export_;
  std::string export_name_;
  ExportDescription export_;
};

// Appends one option reply: magic, option, type, length, payload.
void AppendOptionReply(std::vector<uint8_t>& out, uint32_t option, uint32_t type,
                       std::span<const uint8_t> payload = {});
void AppendOptionError(std::vector<uint8_t>& out, uint32_t option, uint32_t type,
                       std::string_view message);

// ---- Transmission ----

struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t cookie = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};
// The 28-byte request header. kInvalidArgument on a bad magic (the stream is lost: close).
Result<Request> ParseRequest(std::span<const uint8_t> header);

// What a connection negotiated, as request validation needs it.
struct TransmissionState {
  uint64_t size = 0;
  bool read_only = false;
  bool structured = false;
  bool base_allocation = false;
  uint32_t max_payload = 32u << 20;
};

struct Verdict {
  uint32_t error = 0;        // 0: serve it; else the NBD error value to answer with
  bool close = false;        // the connection cannot go on (e.g. a payload too big to skip)
  uint32_t payload = 0;      // bytes of payload that follow the header (WRITE), to read or skip
};
// Decides what to do with a request before touching the export: flags allowed for the command,
// ranges inside the export, lengths under the limits, writes to a read-only export, block status
// without a context.
Verdict CheckRequest(const Request& r, const TransmissionState& s);

// Reply headers.
void AppendSimpleReply(std::vector<uint8_t>& out, uint32_t error, uint64_t cookie);
void AppendStructuredHeader(std::vector<uint8_t>& out, uint16_t flags, uint16_t type,
                            uint64_t cookie, uint32_t length);
// A structured error chunk (NBD_REPLY_TYPE_ERROR), with the DONE flag.
void AppendStructuredError(std::vector<uint8_t>& out, uint64_t cookie, uint32_t error,
                           std::string_view message);

// Block status: one base:allocation descriptor.
struct StatusDescriptor {
  uint32_t length = 0;
  uint32_t flags = 0;  // kStateHole | kStateZero
};
// An NBD_REPLY_TYPE_BLOCK_STATUS chunk with the DONE flag.
void AppendBlockStatus(std::vector<uint8_t>& out, uint64_t cookie, uint32_t context_id,
                       std::span<const StatusDescriptor> descriptors);

}  // namespace ingot::nbd
