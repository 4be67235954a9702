#include "iscsi/wire.h"

#include <algorithm>
#include <charconv>
#include <set>

namespace ingot::iscsi {

void PutU16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = uint8_t(v);
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = uint8_t(v);
}
uint16_t GetU16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t GetU32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
uint64_t GetU64(const uint8_t* p) { return uint64_t(GetU32(p)) << 32 | GetU32(p + 4); }

Result<BhsHeader> ParseBhs(std::span<const uint8_t> b, uint32_t max_data) {
  if (b.size() < kBhsSize) return InvalidArgument("short BHS");
  BhsHeader h;
  h.opcode = b[0] & 0x3f;
  h.immediate = (b[0] & kImmediateBit) != 0;
  h.flags = b[1];
  h.ahs_bytes = uint32_t(b[4]) * 4;
  h.data_length = uint32_t(b[5]) << 16 | uint32_t(b[6]) << 8 | b[7];
  h.lun = GetU64(&b[8]);
  h.itt = GetU32(&b[16]);
  h.word20 = GetU32(&b[20]);
  h.word24 = GetU32(&b[24]);
  h.word28 = GetU32(&b[28]);
  h.word36 = GetU32(&b[36]);
  h.word40 = GetU32(&b[40]);
  // We negotiate no AHS-bearing features (bidirectional, extended CDBs); a few bytes are skipped,
  // anything larger is not an initiator we can talk to.
  if (h.ahs_bytes > 256) return InvalidArgument("AHS too long");
  if (h.data_length > max_data)
    return InvalidArgument("data segment over MaxRecvDataSegmentLength");
  return h;
}

// ---- Text ----

Result<TextPairs> ParseText(std::span<const uint8_t> data) {
  TextPairs pairs;
  std::set<std::string, std::less<>> seen;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t end = pos;
    while (end < data.size() && data[end] != 0) ++end;
    std::string_view pair(reinterpret_cast<const char*>(data.data()) + pos, end - pos);
    pos = end + 1;
    if (pair.empty()) continue;  // padding, or a stray NUL
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return InvalidArgument("text pair without '='");
    std::string_view k = pair.substr(0, eq), v = pair.substr(eq + 1);
    if (k.empty() || k.size() > 63) return InvalidArgument("text key empty or over 63 bytes");
    if (v.size() > kMaxValueSize) return InvalidArgument("text value over 8192 bytes");
    if (pairs.size() >= 256) return InvalidArgument("over 256 text pairs");
    if (!seen.emplace(k).second) return InvalidArgument("text key '" + std::string(k) + "' twice");
    pairs.emplace_back(std::string(k), std::string(v));
  }
  return pairs;
}

void AppendText(std::vector<uint8_t>& out, std::string_view key, std::string_view value) {
  out.insert(out.end(), key.begin(), key.end());
  out.push_back('=');
  out.insert(out.end(), value.begin(), value.end());
  out.push_back(0);
}

std::string LowerName(std::string_view name) {
  std::string s(name);
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  }
  return s;
}

bool ValidIscsiName(std::string_view name) {
  if (name.size() < 5 || name.size() > kMaxNameSize) return false;
  std::string l = LowerName(name);
  if (l.rfind("iqn.", 0) != 0 && l.rfind("eui.", 0) != 0 && l.rfind("naa.", 0) != 0) return false;
  for (char c : l) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':')) {
      return false;
    }
  }
  return true;
}

// ---- Responses ----

namespace {

Bhs Header(uint8_t opcode, uint8_t flags, uint32_t itt) {
  Bhs b{};
  b[0] = opcode;
  b[1] = flags;
  PutU32(&b[16], itt);
  return b;
}

void Stamp(Bhs& b, const Sequence& seq) {
  PutU32(&b[24], seq.stat_sn);
  PutU32(&b[28], seq.exp_cmd_sn);
  PutU32(&b[32], seq.max_cmd_sn);
}

}  // namespace

std::vector<uint8_t> BuildPdu(const Bhs& bhs, std::span<const uint8_t> data) {
  std::vector<uint8_t> out(bhs.begin(), bhs.end());
  const uint32_t n = uint32_t(data.size());
  out[5] = uint8_t(n >> 16);
  out[6] = uint8_t(n >> 8);
  out[7] = uint8_t(n);
  out.insert(out.end(), data.begin(), data.end());
  out.resize(kBhsSize + Padded(n), 0);
  return out;
}

Bhs ScsiResponseHeader(uint32_t itt, uint8_t status, uint8_t residual_flags, uint32_t residual,
                       const Sequence& seq) {
  Bhs b = Header(kOpScsiResponse, kFinalBit | residual_flags, itt);
  b[2] = 0;  // command completed at target
  b[3] = status;
  Stamp(b, seq);
  PutU32(&b[44], residual_flags ? residual : 0);
  return b;
}

Bhs DataInHeader(uint32_t itt, uint64_t lun, uint32_t data_sn, uint32_t offset, bool final_pdu,
                 bool final_status, uint8_t status, uint8_t residual_flags, uint32_t residual,
                 const Sequence& seq) {
  uint8_t flags = final_pdu ? kFinalBit : 0;
  if (final_status) flags |= kDataInStatus | residual_flags;
  Bhs b = Header(kOpDataIn, flags, itt);
  if (final_status) b[3] = status;
  PutU64(&b[8], lun);
  PutU32(&b[20], kReservedTag);
  Stamp(b, seq);
  if (!final_status) PutU32(&b[24], 0);  // StatSN is reserved without the S bit
  PutU32(&b[36], data_sn);
  PutU32(&b[40], offset);
  if (final_status && residual_flags) PutU32(&b[44], residual);
  return b;
}

Bhs R2tHeader(uint32_t itt, uint64_t lun, uint32_t ttt, uint32_t r2t_sn, uint32_t offset,
              uint32_t length, const Sequence& seq) {
  Bhs b = Header(kOpR2t, kFinalBit, itt);
  PutU64(&b[8], lun);
  PutU32(&b[20], ttt);
  Stamp(b, seq);
  PutU32(&b[36], r2t_sn);
  PutU32(&b[40], offset);
  PutU32(&b[44], length);
  return b;
}

Bhs NopInHeader(uint32_t itt, uint32_t ttt, uint64_t lun, const Sequence& seq) {
  Bhs b = Header(kOpNopIn, kFinalBit, itt);
  PutU64(&b[8], lun);
  PutU32(&b[20], ttt);
  Stamp(b, seq);
  return b;
}

Bhs TextResponseHeader(uint32_t itt, bool final_pdu, uint32_t ttt, const Sequence& seq) {
  Bhs b = Header(kOpTextResponse, final_pdu ? kFinalBit : kTextContinue, itt);
  PutU32(&b[20], ttt);
  Stamp(b, seq);
  return b;
}

Bhs LogoutResponseHeader(uint32_t itt, uint8_t response, const Sequence& seq) {
  Bhs b = Header(kOpLogoutResponse, kFinalBit, itt);
  b[2] = response;
  Stamp(b, seq);
  return b;
}

Bhs TaskMgmtResponseHeader(uint32_t itt, uint8_t response, const Sequence& seq) {
  Bhs b = Header(kOpTaskMgmtResponse, kFinalBit, itt);
  b[2] = response;
  Stamp(b, seq);
  return b;
}

std::vector<uint8_t> BuildReject(uint8_t reason, std::span<const uint8_t> bad_bhs,
                                 const Sequence& seq) {
  Bhs b = Header(kOpReject, kFinalBit, kReservedTag);
  b[2] = reason;
  Stamp(b, seq);
  return BuildPdu(b, bad_bhs.subspan(0, std::min(bad_bhs.size(), kBhsSize)));
}

// ---- Login ----

namespace {

std::optional<uint32_t> Number(std::string_view v, uint32_t lo, uint32_t hi) {
  uint32_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi) return std::nullopt;
  return n;
}

bool ListHas(std::string_view list, std::string_view item) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    if (list.substr(pos, comma - pos) == item) return true;
    pos = comma + 1;
  }
  return false;
}

uint16_t LoginStatusFor(Code code) {
  switch (code) {
    case Code::kNotFound:
      return kLoginNotFound;
    case Code::kPermissionDenied:
      return kLoginForbidden;
    case Code::kUnavailable:
      return kLoginServiceUnavailable;
    default:
      return kLoginTargetError;
  }
}

}  // namespace

LoginNegotiation::Next LoginNegotiation::Refuse(std::span<const uint8_t> req, uint16_t status,
                                                std::string why, std::vector<uint8_t>& out) {
  refusal_ = std::move(why);
  Bhs b = Header(kOpLoginResponse, 0, GetU32(&req[16]));
  std::copy(req.begin() + 8, req.begin() + 14, b.begin() + 8);  // ISID
  Stamp(b, seq_);
  b[36] = uint8_t(status >> 8);
  b[37] = uint8_t(status);
  auto pdu = BuildPdu(b);
  out.insert(out.end(), pdu.begin(), pdu.end());
  return Next::kClose;
}

bool LoginNegotiation::Negotiate(const std::string& key, const std::string& value, uint8_t stage,
                                 std::vector<uint8_t>& answer) {
  auto yes_no = [&](bool& target, bool is_or) -> bool {
    if (value != "Yes" && value != "No") return false;
    // Our own preference: InitialR2T=No (OR), ImmediateData=Yes (AND): the result is theirs.
    target = value == "Yes";
    (void)is_or;
    AppendText(answer, key, value);
    return true;
  };
  // Who logs in to what is settled when the first request is admitted; a later PDU must not
  // change it (the admission was for that initiator, target and session type).
  if (admitted_ && (key == "InitiatorName" || key == "TargetName" || key == "SessionType")) {
    const std::string& was = key == "InitiatorName" ? params_.initiator_name
                             : key == "TargetName"  ? params_.target_name
                                                    : (params_.discovery ? "discovery" : "normal");
    return LowerName(value) == was;
  }
  if (key == "InitiatorName") {
    if (!ValidIscsiName(value)) return false;
    params_.initiator_name = LowerName(value);
  } else if (key == "TargetName") {
    if (value.empty() || value.size() > kMaxNameSize) return false;
    params_.target_name = LowerName(value);
  } else if (key == "InitiatorAlias") {
    params_.initiator_alias = value.substr(0, 255);
  } else if (key == "SessionType") {
    if (value != "Normal" && value != "Discovery") return false;
    params_.discovery = value == "Discovery";
  } else if (key == "AuthMethod") {
    if (stage != kStageSecurity || !ListHas(value, "None")) return false;
    AppendText(answer, key, "None");
  } else if (key == "HeaderDigest" || key == "DataDigest") {
    if (!ListHas(value, "None")) return false;
    AppendText(answer, key, "None");
  } else if (key == "MaxConnections") {
    if (!Number(value, 1, 65535)) return false;
    AppendText(answer, key, "1");
  } else if (key == "InitialR2T") {
    return yes_no(params_.initial_r2t, true);
  } else if (key == "ImmediateData") {
    return yes_no(params_.immediate_data, false);
  } else if (key == "MaxRecvDataSegmentLength") {
    auto n = Number(value, 512, (1u << 24) - 1);
    if (!n) return false;
    params_.initiator_max_recv = *n;
  } else if (key == "MaxBurstLength") {
    auto n = Number(value, 512, (1u << 24) - 1);
    if (!n) return false;
    params_.max_burst = std::min(*n, limits_.max_burst);
    AppendText(answer, key, std::to_string(params_.max_burst));
  } else if (key == "FirstBurstLength") {
    auto n = Number(value, 512, (1u << 24) - 1);
    if (!n) return false;
    params_.first_burst = std::min(*n, limits_.first_burst);
    AppendText(answer, key, std::to_string(params_.first_burst));
  } else if (key == "DefaultTime2Wait") {
    if (!Number(value, 0, 3600)) return false;
    AppendText(answer, key, value);
  } else if (key == "DefaultTime2Retain") {
    if (!Number(value, 0, 3600)) return false;
    AppendText(answer, key, "0");  // min(theirs, ours): no session reinstatement
  } else if (key == "MaxOutstandingR2T") {
    if (!Number(value, 1, 65535)) return false;
    AppendText(answer, key, "1");
  } else if (key == "DataPDUInOrder" || key == "DataSequenceInOrder") {
    if (value != "Yes" && value != "No") return false;
    AppendText(answer, key, "Yes");  // OR with ours
  } else if (key == "ErrorRecoveryLevel") {
    if (!Number(value, 0, 2)) return false;
    AppendText(answer, key, "0");
  } else if (key == "IFMarker" || key == "OFMarker") {
    AppendText(answer, key, "No");
  } else if (key == "IFMarkInt" || key == "OFMarkInt") {
    AppendText(answer, key, "Irrelevant");
  } else if (key == "TargetPortalGroupTag" || key == "TargetAddress" || key == "TargetAlias") {
    // Keys only a target sends (RFC 7143 13.9, 13.10, 13.12): from an initiator, a protocol error.
    // Answering them would also repeat our own TargetPortalGroupTag in one response.
    return false;
  } else {
    AppendText(answer, key, "NotUnderstood");
  }
  return true;
}

LoginNegotiation::Next LoginNegotiation::OnRequest(std::span<const uint8_t> req,
                                                   std::span<const uint8_t> data,
                                                   std::vector<uint8_t>& out) {
  if (req.size() < kBhsSize) return Next::kClose;
  const uint8_t flags = req[1];
  const bool transit = (flags & kLoginTransit) != 0;
  const bool cont = (flags & kLoginContinue) != 0;
  const uint8_t csg = (flags >> 2) & 3, nsg = flags & 3;
  const uint32_t cmd_sn = GetU32(&req[24]);
  if (!started_) {
    started_ = true;
    std::copy(req.begin() + 8, req.begin() + 14, params_.isid.begin());
    seq_.stat_sn = 1;
    seq_.exp_cmd_sn = cmd_sn;
    seq_.max_cmd_sn = cmd_sn + 31;
    if ((req[0] & 0x3f) != kOpLoginRequest) {
      return Refuse(req, kLoginInvalidRequest, "not a login request", out);
    }
    if (req[3] > 0) return Refuse(req, 0x0205, "unsupported iSCSI version", out);
    if (GetU16(&req[14]) != 0) {
      return Refuse(req, kLoginSessionDoesNotExist, "adding a connection to a session", out);
    }
    if (csg == kStageOperational) stage_ = kStageOperational;
  }
  if ((req[0] & 0x3f) != kOpLoginRequest) {
    return Refuse(req, kLoginInvalidRequest, "not a login request", out);
  }
  if (csg != stage_ || (transit && cont)) {
    return Refuse(req, kLoginInvalidRequest, "login stage out of order", out);
  }
  if (transit && (nsg <= csg || nsg == 2)) {
    return Refuse(req, kLoginInvalidRequest, "bad next stage", out);
  }
  auto respond = [&](uint8_t rflags, std::span<const uint8_t> text, uint16_t tsih) {
    Bhs b = Header(kOpLoginResponse, rflags, GetU32(&req[16]));
    std::copy(params_.isid.begin(), params_.isid.end(), b.begin() + 8);
    PutU16(&b[14], tsih);
    Stamp(b, seq_);
    seq_.stat_sn++;
    auto pdu = BuildPdu(b, text);
    out.insert(out.end(), pdu.begin(), pdu.end());
  };
  pending_.insert(pending_.end(), data.begin(), data.end());
  if (pending_.size() > 65536) return Refuse(req, kLoginInitiatorError, "login text too long", out);
  if (cont) {
    // More of this text follows: acknowledge with an empty response in the same stage.
    respond(uint8_t(csg << 2), {}, 0);
    return Next::kContinue;
  }
  auto pairs = ParseText(pending_);
  pending_.clear();
  if (!pairs.ok()) return Refuse(req, kLoginInitiatorError, pairs.status().message(), out);
  std::vector<uint8_t> answer;
  for (const auto& [k, v] : *pairs) {
    if (!Negotiate(k, v, csg, answer)) {
      return Refuse(req, k == "AuthMethod" ? kLoginAuthFailure : kLoginInitiatorError,
                    "cannot accept " + k + "=" + v.substr(0, 64), out);
    }
  }
  if (!admitted_) {
    if (params_.initiator_name.empty()) {
      return Refuse(req, kLoginMissingParameter, "no InitiatorName", out);
    }
    if (!params_.discovery && params_.target_name.empty()) {
      return Refuse(req, kLoginMissingParameter, "no TargetName", out);
    }
    Status s = admit_(params_.initiator_name, params_.discovery ? "" : params_.target_name);
    if (!s.ok()) return Refuse(req, LoginStatusFor(s.code()), s.message(), out);
    admitted_ = true;
  }
  if (!params_.discovery && !sent_tpgt_) {
    AppendText(answer, "TargetPortalGroupTag", "1");
    sent_tpgt_ = true;
  }
  if (csg == kStageOperational && !sent_max_recv_) {
    AppendText(answer, "MaxRecvDataSegmentLength", std::to_string(limits_.max_recv_data_segment));
    sent_max_recv_ = true;
  }
  if (!transit) {
    respond(uint8_t(csg << 2), answer, 0);
    return Next::kContinue;
  }
  if (nsg != kStageFullFeature) {
    stage_ = nsg;
    respond(uint8_t(kLoginTransit | csg << 2 | nsg), answer, 0);
    return Next::kContinue;
  }
  // Full feature phase: settle what declarations we never made.
  if (!sent_max_recv_) params_.target_max_recv = 8192;  // the default the initiator assumes
  params_.first_burst = std::min(params_.first_burst, params_.max_burst);
  params_.tsih = tsih_;
  respond(uint8_t(kLoginTransit | csg << 2 | nsg), answer, tsih_);
  return Next::kFullFeature;
}

// ---- SCSI ----

namespace {

ScsiAction Check(uint8_t key, uint16_t asc) {
  ScsiAction a;
  a.kind = ScsiAction::Kind::kCheck;
  a.sense = {key, asc};
  return a;
}

ScsiAction Respond(std::vector<uint8_t> data, size_t allocation) {
  ScsiAction a;
  if (data.size() > allocation) data.resize(allocation);
  a.data = std::move(data);
  return a;
}

void PutPadded(std::vector<uint8_t>& out, size_t at, std::string_view s, size_t width) {
  for (size_t i = 0; i < width; ++i) out[at + i] = i < s.size() ? uint8_t(s[i]) : ' ';
}

ScsiAction Inquiry(std::span<const uint8_t> c, bool lun_ok, const Disk& d) {
  const bool evpd = (c[1] & 1) != 0;
  const uint8_t page = c[2];
  const size_t alloc = GetU16(&c[3]);
  const uint8_t qualifier = lun_ok ? 0x00 : 0x7f;  // 0x7f: no logical unit here
  if (!evpd) {
    if (page != 0) return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);
    std::vector<uint8_t> r(66, 0);
    r[0] = qualifier;
    r[2] = 0x06;         // SPC-4
    r[3] = 0x02 | 0x10;  // response data format 2, HiSup
    r[4] = uint8_t(r.size() - 5);
    r[7] = 0x02;  // CmdQue
    PutPadded(r, 8, "INGOT", 8);
    PutPadded(r, 16, "OS volume", 16);
    PutPadded(r, 32, "1.0", 4);
    // Version descriptors: SAM-5, iSCSI, SPC-4, SBC-3.
    PutU16(&r[58], 0x00a0);
    PutU16(&r[60], 0x0960);
    PutU16(&r[62], 0x0460);
    PutU16(&r[64], 0x04c0);
    return Respond(std::move(r), alloc);
  }
  if (!lun_ok) return Check(kSenseIllegalRequest, kAscLunNotSupported);
  std::vector<uint8_t> r(4, 0);
  r[1] = page;
  switch (page) {
    case 0x00:
      for (uint8_t p : {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2}) r.push_back(p);
      break;
    case 0x80: {
      std::string_view s = d.serial.substr(0, 250);
      r.insert(r.end(), s.begin(), s.end());
      break;
    }
    case 0x83: {
      // One T10 vendor ID designator (ASCII): vendor "INGOT" padded to 8, then the target name.
      std::string id = "INGOT   " + std::string(d.name.substr(0, 240));
      r.push_back(0x02);  // code set ASCII
      r.push_back(0x01);  // association: logical unit; type: T10 vendor ID
      r.push_back(0);
      r.push_back(uint8_t(id.size()));
      r.insert(r.end(), id.begin(), id.end());
      break;
    }
    case 0xb0: {
      r.resize(4 + 0x3c, 0);
      r[4] = 0x01;                                        // WSNZ: WRITE SAME of 0 blocks refused
      PutU16(&r[6], 8);                                   // optimal transfer granularity: 4 KiB
      PutU32(&r[8], d.max_transfer_bytes / kBlockSize);   // maximum transfer length
      PutU32(&r[12], d.max_transfer_bytes / kBlockSize);  // optimal transfer length
      const uint64_t max_unmap = d.max_unmap_bytes / kBlockSize;
      PutU32(&r[20], uint32_t(std::min<uint64_t>(max_unmap, 0xffffffff)));  // max unmap LBA count
      PutU32(&r[24], kMaxUnmapDescriptors);
      PutU32(&r[28], d.unmap_granularity / kBlockSize);  // optimal unmap granularity
      PutU64(&r[36], max_unmap);                         // maximum WRITE SAME length
      break;
    }
    case 0xb1:
      // Block device characteristics: not rotating (an initiator should not schedule for seeks).
      r.resize(4 + 0x3c, 0);
      PutU16(&r[4], 1);
      break;
    case 0xb2:
      // Logical block provisioning: UNMAP and WRITE SAME(16) with UNMAP free blocks, and an
      // unmapped block reads as zeros (LBPRZ: the server unmaps with Export::WriteZeroes).
      r.resize(8, 0);
      r[5] = 0x80 | 0x40 | 0x04;  // LBPU, LBPWS, LBPRZ
      r[6] = 0x02;                // provisioning type: thin
      break;
    default:
      return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);
  }
  PutU16(&r[2], uint16_t(r.size() - 4));
  return Respond(std::move(r), alloc);
}

// Mode pages: caching (0x08: write cache enabled, so SYNCHRONIZE CACHE matters) and control
// (0x0a). The device-specific byte carries WP (0x80) and DPOFUA (0x10: FUA is honoured).
ScsiAction ModeSense(std::span<const uint8_t> c, bool ten, const Disk& d) {
  const uint8_t pc = c[2] >> 6, page = c[2] & 0x3f;
  const size_t alloc = ten ? GetU16(&c[7]) : c[4];
  if (pc == 3) return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);  // saved: none
  std::vector<uint8_t> pages;
  const bool changeable = pc == 1;
  if (page == 0x08 || page == 0x3f) {
    std::vector<uint8_t> p(20, 0);
    p[0] = 0x08;
    p[1] = 0x12;
    if (!changeable) p[2] = 0x04;  // WCE
    pages.insert(pages.end(), p.begin(), p.end());
  }
  if (page == 0x0a || page == 0x3f) {
    std::vector<uint8_t> p(12, 0);
    p[0] = 0x0a;
    p[1] = 0x0a;
    pages.insert(pages.end(), p.begin(), p.end());
  }
  if (pages.empty()) return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);
  const uint8_t device = uint8_t((d.read_only ? 0x80 : 0) | 0x10);
  std::vector<uint8_t> r;
  if (ten) {
    r.assign(8, 0);
    PutU16(&r[0], uint16_t(6 + pages.size()));
    r[3] = device;
  } else {
    r.assign(4, 0);
    r[0] = uint8_t(3 + pages.size());
    r[2] = device;
  }
  r.insert(r.end(), pages.begin(), pages.end());
  return Respond(std::move(r), alloc);
}

}  // namespace

ScsiAction DecodeScsi(std::span<const uint8_t> c, uint64_t lun, const Disk& d) {
  if (c.size() < 16) return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);
  const uint8_t op = c[0];
  // LUN 0 in any of the SAM addressing methods is all zero bytes.
  const bool lun_ok = lun == 0;
  if (op == kScsiInquiry) return Inquiry(c, lun_ok, d);
  if (op == kScsiReportLuns) {
    const size_t alloc = GetU32(&c[6]);
    std::vector<uint8_t> r(16, 0);
    PutU32(&r[0], 8);  // one LUN: 0
    return Respond(std::move(r), alloc);
  }
  if (op == kScsiRequestSense) {
    std::vector<uint8_t> r(18, 0);
    r[0] = 0x70;
    r[7] = 10;
    if (!lun_ok) {
      r[2] = kSenseIllegalRequest;
      r[12] = kAscLunNotSupported >> 8;
    }
    return Respond(std::move(r), c[4]);
  }
  if (!lun_ok) return Check(kSenseIllegalRequest, kAscLunNotSupported);

  const uint64_t blocks = d.size / kBlockSize;
  uint64_t lba = 0;
  uint64_t count = 0;
  bool fua = false;
  bool write = false;
  switch (op) {
    case kScsiTestUnitReady:
    case kScsiStartStopUnit:
    case kScsiPreventAllow:
      return Respond({}, 0);
    case kScsiVerify10:
    case kScsiVerify16: {
      // BYTCHK 0: the medium is fine if it reads (a file: nothing to check); 1: compare with the
      // data-out. BYTCHK 3 (one block against each) and protection information are not offered.
      const uint8_t bytchk = (c[1] >> 1) & 3;
      if ((c[1] & 0xe0) != 0 || bytchk > 1)
        return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);
      const bool ten = op == kScsiVerify10;
      const uint64_t first = ten ? GetU32(&c[2]) : GetU64(&c[2]);
      const uint64_t n = ten ? GetU16(&c[7]) : GetU32(&c[10]);
      if (first > blocks || n > blocks - first)
        return Check(kSenseIllegalRequest, kAscLbaOutOfRange);
      if (n * kBlockSize > d.max_transfer_bytes) {
        return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);
      }
      if (bytchk == 0 || n == 0) return Respond({}, 0);
      ScsiAction a;
      a.kind = ScsiAction::Kind::kVerify;
      a.offset = first * kBlockSize;
      a.length = uint32_t(n * kBlockSize);
      return a;
    }
    case kScsiReadCapacity10: {
      std::vector<uint8_t> r(8, 0);
      PutU32(&r[0], blocks == 0 ? 0 : uint32_t(std::min<uint64_t>(blocks - 1, 0xffffffff)));
      PutU32(&r[4], kBlockSize);
      return Respond(std::move(r), 8);
    }
    case kScsiServiceActionIn16: {
      if ((c[1] & 0x1f) == kScsiGetLbaStatusAction) {
        const uint64_t first = GetU64(&c[2]);
        if (first >= blocks) return Check(kSenseIllegalRequest, kAscLbaOutOfRange);
        ScsiAction a;
        a.kind = ScsiAction::Kind::kLbaStatus;
        a.offset = first * kBlockSize;
        a.length = GetU32(&c[10]);
        return a;
      }
      if ((c[1] & 0x1f) != kScsiReadCapacity16Action) {
        return Check(kSenseIllegalRequest, kAscInvalidOpcode);
      }
      std::vector<uint8_t> r(32, 0);
      PutU64(&r[0], blocks == 0 ? 0 : blocks - 1);
      PutU32(&r[8], kBlockSize);
      r[13] = 3;            // 8 logical blocks per physical block: 4 KiB, the volume's write unit
      r[14] = 0x80 | 0x40;  // LBPME: thin provisioned, UNMAP honoured; LBPRZ: unmapped reads 0
      return Respond(std::move(r), GetU32(&c[10]));
    }
    case kScsiModeSense6:
      return ModeSense(c, false, d);
    case kScsiModeSense10:
      return ModeSense(c, true, d);
    case kScsiSynchronizeCache10:
    case kScsiSynchronizeCache16: {
      ScsiAction a;
      a.kind = ScsiAction::Kind::kFlush;
      return a;
    }
    case kScsiUnmap: {
      if (d.read_only) return Check(kSenseDataProtect, kAscWriteProtected);
      ScsiAction a;
      a.kind = ScsiAction::Kind::kUnmap;
      a.length = GetU16(&c[7]);  // parameter list length
      if (a.length == 0) return Respond({}, 0);
      if (a.length < 8) return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);
      return a;
    }
    case kScsiWriteSame16: {
      if (d.read_only) return Check(kSenseDataProtect, kAscWriteProtected);
      // Protection information, ANCHOR (no anchored blocks), PBDATA/LBDATA: not offered.
      if ((c[1] & 0xf6) != 0) return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);
      const uint64_t first = GetU64(&c[2]), n = GetU32(&c[10]);
      if (n == 0) return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);  // WSNZ
      if (first > blocks || n > blocks - first)
        return Check(kSenseIllegalRequest, kAscLbaOutOfRange);
      if (n * kBlockSize > d.max_unmap_bytes)
        return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);
      ScsiAction a;
      a.kind = ScsiAction::Kind::kWriteSame;
      a.offset = first * kBlockSize;
      a.length = uint32_t(n * kBlockSize);
      a.unmap = (c[1] & 0x08) != 0;
      a.no_data = (c[1] & 0x01) != 0;
      return a;
    }
    case kScsiRead6:
    case kScsiWrite6:
      lba = (uint64_t(c[1] & 0x1f) << 16) | GetU16(&c[2]);
      count = c[4] == 0 ? 256 : c[4];
      write = op == kScsiWrite6;
      break;
    case kScsiRead10:
    case kScsiWrite10:
      if ((c[1] & 0xe0) != 0) return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);  // no PI
      lba = GetU32(&c[2]);
      count = GetU16(&c[7]);
      fua = (c[1] & 0x08) != 0;
      write = op == kScsiWrite10;
      break;
    case kScsiRead16:
    case kScsiWrite16:
      if ((c[1] & 0xe0) != 0) return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);  // no PI
      lba = GetU64(&c[2]);
      count = GetU32(&c[10]);
      fua = (c[1] & 0x08) != 0;
      write = op == kScsiWrite16;
      break;
    default:
      return Check(kSenseIllegalRequest, kAscInvalidOpcode);
  }
  if (write && d.read_only) return Check(kSenseDataProtect, kAscWriteProtected);
  if (lba > blocks || count > blocks - lba) return Check(kSenseIllegalRequest, kAscLbaOutOfRange);
  if (count * kBlockSize > d.max_transfer_bytes) {
    return Check(kSenseIllegalRequest, kAscInvalidFieldInCdb);
  }
  ScsiAction a;
  a.kind = write ? ScsiAction::Kind::kWrite : ScsiAction::Kind::kRead;
  a.offset = lba * kBlockSize;
  a.length = uint32_t(count * kBlockSize);
  a.fua = fua;
  return a;
}

UnmapList ParseUnmapList(std::span<const uint8_t> list, const Disk& d) {
  UnmapList out;
  const Sense bad{kSenseIllegalRequest, kAscInvalidFieldInParameterList};
  if (list.size() < 8) {
    out.refusal = bad;
    return out;
  }
  const size_t descriptors = GetU16(&list[2]);
  if (descriptors % 16 != 0 || descriptors > list.size() - 8 ||
      descriptors / 16 > kMaxUnmapDescriptors) {
    out.refusal = bad;
    return out;
  }
  const uint64_t blocks = d.size / kBlockSize;
  uint64_t total = 0;
  for (size_t i = 8; i < 8 + descriptors; i += 16) {
    const uint64_t lba = GetU64(&list[i]), n = GetU32(&list[i + 8]);
    if (lba > blocks || n > blocks - lba) {
      out.ranges.clear();
      out.refusal = Sense{kSenseIllegalRequest, kAscLbaOutOfRange};
      return out;
    }
    total += n;
    if (total * kBlockSize > d.max_unmap_bytes) {
      out.ranges.clear();
      out.refusal = bad;
      return out;
    }
    if (n > 0) out.ranges.push_back({lba * kBlockSize, n * kBlockSize});
  }
  return out;
}

std::vector<uint8_t> LbaStatusData(std::span<const LbaExtent> extents, uint32_t allocation) {
  std::vector<uint8_t> r(8, 0);
  for (const LbaExtent& e : extents) {
    const size_t at = r.size();
    r.resize(at + 16, 0);
    PutU64(&r[at], e.lba);
    PutU32(&r[at + 8], e.blocks);
    r[at + 12] = e.deallocated ? 1 : 0;
  }
  PutU32(&r[0], uint32_t(r.size() - 4));
  if (r.size() > allocation) r.resize(allocation);
  return r;
}

std::vector<uint8_t> SenseSegment(const Sense& s) {
  std::vector<uint8_t> r(2 + 18, 0);
  PutU16(&r[0], 18);
  r[2] = 0x70;  // current error, fixed format
  r[4] = s.key;
  r[9] = 10;  // additional sense length
  r[14] = uint8_t(s.asc >> 8);
  r[15] = uint8_t(s.asc);
  return r;
}

Sense SenseFor(const Status& s, bool write) {
  switch (s.code()) {
    case Code::kStorageFull:
    case Code::kTooLarge:
      return {kSenseDataProtect, kAscSpaceAllocationFailed};
    case Code::kPermissionDenied:
    case Code::kRefused:
      return {kSenseDataProtect, kAscWriteProtected};
    case Code::kInvalidArgument:
    case Code::kOutOfRange:
      return {kSenseIllegalRequest, kAscLbaOutOfRange};
    case Code::kUnavailable:
    case Code::kCancelled:
      return {kSenseNotReady, kAscNone};
    case Code::kUnsupported:
      return {kSenseIllegalRequest, kAscInvalidOpcode};
    default:
      return write ? Sense{kSenseMediumError, kAscWriteError}
                   : Sense{kSenseMediumError, kAscUnrecoveredReadError};
  }
}

}  // namespace ingot::iscsi
