// iSCSI on the wire: pure functions and a pure login state machine over bytes, no sockets (library
// ingot_iscsi_wire, fuzzed by fuzz/fuzz_iscsi_pdu.cc). The server (server.h) moves bytes between a
// socket and these.
//
// Every byte from an initiator is hostile: parsers never read past the span they are given, bound
// every key and value, and say which refusal the protocol expects (a login status, a Reject PDU, a
// CHECK CONDITION with sense data, or closing the connection).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "iscsi/protocol.h"

namespace ingot::iscsi {

// Big-endian helpers.
void PutU16(uint8_t* p, uint16_t v);
void PutU32(uint8_t* p, uint32_t v);
void PutU64(uint8_t* p, uint64_t v);
uint16_t GetU16(const uint8_t* p);
uint32_t GetU32(const uint8_t* p);
uint64_t GetU64(const uint8_t* p);

using Bhs = std::array<uint8_t, kBhsSize>;

// The fields every BHS has.
struct BhsHeader {
  uint8_t opcode = 0;  // low 6 bits of byte 0
  bool immediate = false;
  uint8_t flags = 0;                            // byte 1
  uint32_t ahs_bytes = 0;                       // TotalAHSLength in bytes (a multiple of 4)
  uint32_t data_length = 0;                     // DataSegmentLength, without padding
  uint64_t lun = 0;                             // bytes 8-15 (opcode-specific for some)
  uint32_t itt = 0;                             // Initiator Task Tag
  uint32_t word20 = 0, word24 = 0, word28 = 0;  // opcode-specific: e.g. EDTL/TTT, CmdSN, ExpStatSN
  uint32_t word36 = 0, word40 = 0;              // DataSN, Buffer Offset of Data-Out
};
// kInvalidArgument when the segment lengths exceed `max_data` (the connection must close: the
// stream cannot be resynchronised without digests).
Result<BhsHeader> ParseBhs(std::span<const uint8_t> bhs, uint32_t max_data);
// Bytes of a segment of `n` bytes once padded to 4.
inline uint32_t Padded(uint32_t n) { return (n + 3) & ~3u; }

// ---- Text keys (login and text PDUs): "key=value\0" ... ----

using TextPairs = std::vector<std::pair<std::string, std::string>>;
// kInvalidArgument for a pair without '=', an empty or over-long key (63) or value (kMaxValueSize),
// more than 256 pairs, or a key given twice.
Result<TextPairs> ParseText(std::span<const uint8_t> data);
void AppendText(std::vector<uint8_t>& out, std::string_view key, std::string_view value);
// A valid iSCSI name: "iqn.", "eui." or "naa." then at most kMaxNameSize bytes of lowercase
// letters, digits, '.', '-', ':' (RFC 3722's stringprep leaves these; we accept nothing else).
bool ValidIscsiName(std::string_view name);
// Lowercases ASCII (names compare case-insensitively).
std::string LowerName(std::string_view name);

// ---- Sequence numbers and responses ----

// What a target stamps on every response: StatSN (the PDU's own when it carries status),
// ExpCmdSN, MaxCmdSN.
struct Sequence {
  uint32_t stat_sn = 0;
  uint32_t exp_cmd_sn = 0;
  uint32_t max_cmd_sn = 0;
};

// Builders of target PDUs. Each returns the whole PDU (BHS then padded data).
std::vector<uint8_t> BuildPdu(const Bhs& bhs, std::span<const uint8_t> data = {});
Bhs ScsiResponseHeader(uint32_t itt, uint8_t status, uint8_t residual_flags, uint32_t residual,
                       const Sequence& seq);
// A Data-In header; `status` is used when `final_status` (the S bit: the command ends with it).
Bhs DataInHeader(uint32_t itt, uint64_t lun, uint32_t data_sn, uint32_t offset, bool final_pdu,
                 bool final_status, uint8_t status, uint8_t residual_flags, uint32_t residual,
                 const Sequence& seq);
Bhs R2tHeader(uint32_t itt, uint64_t lun, uint32_t ttt, uint32_t r2t_sn, uint32_t offset,
              uint32_t length, const Sequence& seq);
Bhs NopInHeader(uint32_t itt, uint32_t ttt, uint64_t lun, const Sequence& seq);
Bhs TextResponseHeader(uint32_t itt, bool final_pdu, uint32_t ttt, const Sequence& seq);
Bhs LogoutResponseHeader(uint32_t itt, uint8_t response, const Sequence& seq);
Bhs TaskMgmtResponseHeader(uint32_t itt, uint8_t response, const Sequence& seq);
// A Reject carries the offending BHS as its data.
std::vector<uint8_t> BuildReject(uint8_t reason, std::span<const uint8_t> bad_bhs,
                                 const Sequence& seq);

// ---- Login ----

// Our side of the operational keys, and what the login settled.
struct SessionParams {
  bool discovery = false;
  std::string initiator_name;  // lowercased
  std::string target_name;     // lowercased; empty for discovery
  std::string initiator_alias;
  std::array<uint8_t, 6> isid{};
  uint16_t tsih = 0;
  // Declarative: the largest data segment each side accepts. `initiator_max_recv` bounds what we
  // send (Data-In, text responses); `target_max_recv` what we accept.
  uint32_t initiator_max_recv = 8192;
  uint32_t target_max_recv = 262144;
  uint32_t max_burst = 262144;
  uint32_t first_burst = 65536;
  bool initial_r2t = true;
  bool immediate_data = true;
};

struct LoginLimits {
  uint32_t max_recv_data_segment = 262144;  // ours
  uint32_t max_burst = 1u << 20;            // the most we agree to
  uint32_t first_burst = 262144;
};

// The login phase of one connection (RFC 7143 §6): security stage with AuthMethod=None, then the
// operational stage, then full feature phase. Digests None only; one connection per session; error
// recovery level 0. Multi-PDU key text (the C bit) is gathered before it is answered.
class LoginNegotiation {
 public:
  // Decides whether `initiator` may log in to `target` (a normal session), or to discovery
  // (`target` empty). Refusals: kNotFound, kPermissionDenied, kUnavailable; anything else is a
  // target error.
  using Admit = std::function<Status(std::string_view initiator, std::string_view target)>;

  enum class Next { kContinue, kFullFeature, kClose };

  LoginNegotiation(LoginLimits limits, uint16_t tsih, Admit admit)
      : limits_(limits), tsih_(tsih), admit_(std::move(admit)) {
    params_.target_max_recv = limits.max_recv_data_segment;
  }

  // One Login Request (its BHS and data). Appends the response PDU to `out`.
  Next OnRequest(std::span<const uint8_t> bhs, std::span<const uint8_t> data,
                 std::vector<uint8_t>& out);

  const SessionParams& params() const { return params_; }
  // Sequence numbers to continue from in full feature phase (stat_sn: the next to use).
  Sequence sequence() const { return seq_; }
  // Why a login was refused, for the log.
  const std::string& refusal() const { return refusal_; }

 private:
  Next Refuse(std::span<const uint8_t> bhs, uint16_t status, std::string why,
              std::vector<uint8_t>& out);
  // Answers one key; appends the answer (if any) to `answer`. false: refuse the login.
  bool Negotiate(const std::string& key, const std::string& value, uint8_t stage,
                 std::vector<uint8_t>& answer);

  LoginLimits limits_;
  uint16_t tsih_;
  Admit admit_;
  SessionParams params_;
  Sequence seq_;
  bool started_ = false;
  bool admitted_ = false;
  bool sent_tpgt_ = false;
  bool sent_max_recv_ = false;
  uint8_t stage_ = kStageSecurity;
  std::vector<uint8_t> pending_;  // key text of PDUs with the C bit
  std::string refusal_;
};

// ---- SCSI ----

// The logical unit as the SCSI layer answers for it.
struct Disk {
  uint64_t size = 0;  // bytes; the last partial block, if any, is not served
  bool read_only = false;
  std::string_view name;    // the target name (VPD 0x83)
  std::string_view serial;  // VPD 0x80
  uint32_t max_transfer_bytes = 1u << 20;
  // UNMAP and WRITE SAME(16) (the export's Trim and WriteZeroes): granularity in bytes, and the
  // most one command may cover.
  uint32_t unmap_granularity = 65536;
  uint64_t max_unmap_bytes = 256ull << 20;
};
// At most this many UNMAP block descriptors per command (VPD 0xB0).
inline constexpr uint32_t kMaxUnmapDescriptors = 256;
inline constexpr uint32_t kBlockSize = 512;

struct Sense {
  uint8_t key = kSenseNoSense;
  uint16_t asc = kAscNone;
};

// What a SCSI command asks of the target.
struct ScsiAction {
  enum class Kind {
    kRespond,    // answer `data` (already built, cut to the allocation length) with status GOOD
    kCheck,      // CHECK CONDITION with `sense`
    kRead,       // read [offset, offset+length) of the disk
    kWrite,      // write `length` bytes at `offset` from the command's data-out
    kFlush,      // make written data durable
    kUnmap,      // data-out is an UNMAP parameter list of `length` bytes (ParseUnmapList)
    kWriteSame,  // [offset, offset+length) gets the one block of data-out (`unmap`: may free it);
                 // `no_data`: there is none, the block is zeros
    kVerify,     // compare [offset, offset+length) with the data-out (VERIFY with BYTCHK=1):
                 // MISCOMPARE when they differ
    kLbaStatus,  // GET LBA STATUS from `offset`; `length` is the allocation length (LbaStatusData)
  };
  Kind kind = Kind::kRespond;
  std::vector<uint8_t> data;
  Sense sense;
  uint64_t offset = 0;
  uint32_t length = 0;
  bool fua = false;
  bool unmap = false;
  bool no_data = false;
  // Bytes of data-out the command must carry (the Expected Data Transfer Length it needs).
  uint32_t data_out() const {
    if (kind == Kind::kWrite || kind == Kind::kUnmap || kind == Kind::kVerify) return length;
    if (kind == Kind::kWriteSame && !no_data) return kBlockSize;
    return 0;
  }
};

// The byte ranges of an UNMAP parameter list, checked against the disk: kCheck-worthy refusals come
// back as the Sense to answer (LBA OUT OF RANGE, INVALID FIELD IN PARAMETER LIST).
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};
struct UnmapList {
  std::vector<ByteRange> ranges;
  std::optional<Sense> refusal;
};
UnmapList ParseUnmapList(std::span<const uint8_t> list, const Disk& disk);

// GET LBA STATUS parameter data: descriptors from the requested LBA on, cut to `allocation`.
// `deallocated` is said only of blocks that read as zeros (we report LBPRZ).
struct LbaExtent {
  uint64_t lba = 0;
  uint32_t blocks = 0;
  bool deallocated = false;
};
std::vector<uint8_t> LbaStatusData(std::span<const LbaExtent> extents, uint32_t allocation);

// Decodes a CDB sent to `lun` (only LUN 0 exists). Reads and writes are range-checked against the
// disk and `max_transfer_bytes`; writes to a read-only disk get DATA PROTECT / WRITE PROTECTED.
ScsiAction DecodeScsi(std::span<const uint8_t> cdb, uint64_t lun, const Disk& disk);
// The SCSI Response data segment of a CHECK CONDITION: SenseLength then fixed-format sense.
std::vector<uint8_t> SenseSegment(const Sense& sense);
// The sense a failed export call turns into (MEDIUM ERROR, DATA PROTECT, ...).
Sense SenseFor(const Status& s, bool write);

}  // namespace ingot::iscsi
