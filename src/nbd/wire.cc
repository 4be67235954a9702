#include "nbd/wire.h"

#include <algorithm>

namespace ingot::nbd {

void PutU16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(uint8_t(v >> 8));
  out.push_back(uint8_t(v));
}
void PutU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}
void PutU64(std::vector<uint8_t>& out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}
uint16_t GetU16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t GetU32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
uint64_t GetU64(const uint8_t* p) { return uint64_t(GetU32(p)) << 32 | GetU32(p + 4); }

std::vector<uint8_t> Greeting() {
  std::vector<uint8_t> out;
  PutU64(out, kNbdMagic);
  PutU64(out, kIHaveOpt);
  PutU16(out, kFlagFixedNewstyle | kFlagNoZeroes);
  return out;
}

Result<OptionHeader> ParseOptionHeader(std::span<const uint8_t> h) {
  if (h.size() != kOptionHeaderSize) return InvalidArgument("nbd: short option header");
  if (GetU64(h.data()) != kIHaveOpt) return InvalidArgument("nbd: bad option magic");
  return OptionHeader{GetU32(h.data() + 8), GetU32(h.data() + 12)};
}

uint32_t RefusalReply(Code code) {
  switch (code) {
    case Code::kNotFound: return kRepErrUnknown;
    case Code::kPermissionDenied: return kRepErrPolicy;
    case Code::kUnavailable: return kRepErrShutdown;
    case Code::kInvalidArgument: return kRepErrInvalid;
    default: return kRepErrPlatform;
  }
}

void AppendOptionReply(std::vector<uint8_t>& out, uint32_t option, uint32_t type,
                       std::span<const uint8_t> payload) {
  PutU64(out, kOptReplyMagic);
  PutU32(out, option);
  PutU32(out, type);
  PutU32(out, uint32_t(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
}

void AppendOptionError(std::vector<uint8_t>& out, uint32_t option, uint32_t type,
                       std::string_view message) {
  AppendOptionReply(out, option, type,
                    {reinterpret_cast<const uint8_t*>(message.data()), message.size()});
}

bool Negotiation::OnClientFlags(uint32_t flags) {
  if ((flags & ~(kClientFixedNewstyle | kClientNoZeroes)) != 0) return false;
  // Plain (non-fixed) newstyle clients cannot be told about an option we do not know; every client
  // in use (qemu, libnbd, nbd-client) speaks fixed newstyle.
  if ((flags & kClientFixedNewstyle) == 0) return false;
  no_zeroes_ = (flags & kClientNoZeroes) != 0;
  return true;
}

namespace {

// A bounded reader over an option's data.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> d) : d_(d) {}
  bool U16(uint16_t& v) {
    if (d_.size() - pos_ < 2) return false;
    v = GetU16(d_.data() + pos_);
    pos_ += 2;
    return true;
  }
  bool U32(uint32_t& v) {
    if (d_.size() - pos_ < 4) return false;
    v = GetU32(d_.data() + pos_);
    pos_ += 4;
    return true;
  }
  // A u32-length-prefixed string of at most kMaxStringSize bytes.
  bool String(std::string& s) {
    uint32_t n = 0;
    if (!U32(n) || n > kMaxStringSize || d_.size() - pos_ < n) return false;
    s.assign(reinterpret_cast<const char*>(d_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  bool AtEnd() const { return pos_ == d_.size(); }

 private:
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
};

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

Negotiation::Next Negotiation::OnOption(uint32_t option, std::span<const uint8_t> data,
                                        std::vector<uint8_t>& out) {
  switch (option) {
    case kOptExportName:
      return ExportName(data, out);
    case kOptAbort:
      AppendOptionReply(out, option, kRepAck);
      return Next::kClose;
    case kOptList: {
      if (!data.empty()) {
        AppendOptionError(out, option, kRepErrInvalid, "NBD_OPT_LIST takes no data");
        return Next::kContinue;
      }
      for (const std::string& name : lister_()) {
        std::vector<uint8_t> p;
        PutU32(p, uint32_t(name.size()));
        p.insert(p.end(), name.begin(), name.end());
        AppendOptionReply(out, option, kRepServer, p);
      }
      AppendOptionReply(out, option, kRepAck);
      return Next::kContinue;
    }
    case kOptInfo:
    case kOptGo:
      return Go(option, data, out);
    case kOptStructuredReply:
      if (!data.empty()) {
        AppendOptionError(out, option, kRepErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data");
        return Next::kContinue;
      }
      structured_ = true;
      AppendOptionReply(out, option, kRepAck);
      return Next::kContinue;
    case kOptListMetaContext:
    case kOptSetMetaContext:
      return MetaContext(option, data, out);
    case kOptStartTls:
      AppendOptionError(out, option, kRepErrUnsup, "TLS is not offered on this listener");
      return Next::kContinue;
    default:
      AppendOptionError(out, option, kRepErrUnsup, "option not supported");
      return Next::kContinue;
  }
}

Negotiation::Next Negotiation::ExportName(std::span<const uint8_t> data,
                                          std::vector<uint8_t>& out) {
  // The old way: no error reply exists, so a refusal can only close the connection.
  if (data.size() > kMaxStringSize) return Next::kClose;
  std::string name(reinterpret_cast<const char*>(data.data()), data.size());
  Result<ExportDescription> e = lookup_(name, true);
  if (!e.ok()) return Next::kClose;
  export_name_ = name;
  export_ = *e;
  PutU64(out, export_.size);
  PutU16(out, export_.transmission_flags);
  if (!no_zeroes_) out.insert(out.end(), 124, 0);
  return Next::kTransmission;
}

Negotiation::Next Negotiation::Go(uint32_t option, std::span<const uint8_t> data,
                                  std::vector<uint8_t>& out) {
  Cursor c(data);
  std::string name;
  uint16_t count = 0;
  std::vector<uint16_t> infos;
  bool ok = c.String(name) && c.U16(count);
  for (uint16_t i = 0; ok && i < count; ++i) {
    uint16_t info = 0;
    ok = c.U16(info);
    infos.push_back(info);
  }
  if (!ok || !c.AtEnd()) {
    AppendOptionError(out, option, kRepErrInvalid, "malformed NBD_OPT_INFO/GO data");
    return Next::kContinue;
  }
  Result<ExportDescription> e = lookup_(name, option == kOptGo);
  if (!e.ok()) {
    AppendOptionError(out, option, RefusalReply(e.status().code()), e.status().message());
    return Next::kContinue;
  }
  std::vector<uint8_t> p;
  PutU16(p, kInfoExport);
  PutU64(p, e->size);
  PutU16(p, e->transmission_flags);
  AppendOptionReply(out, option, kRepInfo, p);
  auto asked = [&](uint16_t info) { return std::find(infos.begin(), infos.end(), info) != infos.end(); };
  if (asked(kInfoName)) {
    p.clear();
    PutU16(p, kInfoName);
    p.insert(p.end(), name.begin(), name.end());
    AppendOptionReply(out, option, kRepInfo, p);
  }
  if (asked(kInfoDescription) && !e->description.empty() &&
      e->description.size() <= kMaxStringSize) {
    p.clear();
    PutU16(p, kInfoDescription);
    p.insert(p.end(), e->description.begin(), e->description.end());
    AppendOptionReply(out, option, kRepInfo, p);
  }
  // Sent whether asked or not (the spec allows it): our minimum is 1, so no client is held to
  // anything it did not expect, and qemu learns the preferred and maximum sizes.
  p.clear();
  PutU16(p, kInfoBlockSize);
  PutU32(p, e->min_block);
  PutU32(p, e->preferred_block);
  PutU32(p, e->max_block);
  AppendOptionReply(out, option, kRepInfo, p);
  AppendOptionReply(out, option, kRepAck);
  if (option != kOptGo) return Next::kContinue;
  export_name_ = name;
  export_ = *e;
  return Next::kTransmission;
}

Negotiation::Next Negotiation::MetaContext(uint32_t option, std::span<const uint8_t> data,
                                           std::vector<uint8_t>& out) {
  if (!structured_) {
    AppendOptionError(out, option, kRepErrInvalid,
                      "metadata contexts need NBD_OPT_STRUCTURED_REPLY first");
    return Next::kContinue;
  }
  Cursor c(data);
  std::string name;
  uint32_t count = 0;
  std::vector<std::string> queries;
  bool ok = c.String(name) && c.U32(count);
  // Each query takes at least its 4-byte length, so `count` is bounded by the data already.
  if (ok && count > data.size() / 4) ok = false;
  for (uint32_t i = 0; ok && i < count; ++i) {
    std::string q;
    ok = c.String(q);
    queries.push_back(std::move(q));
  }
  if (!ok || !c.AtEnd()) {
    AppendOptionError(out, option, kRepErrInvalid, "malformed metadata context request");
    return Next::kContinue;
  }
  Result<ExportDescription> e = lookup_(name, false);
  if (!e.ok()) {
    AppendOptionError(out, option, RefusalReply(e.status().code()), e.status().message());
    return Next::kContinue;
  }
  bool match = false;
  if (option == kOptListMetaContext && queries.empty()) match = true;
  for (const std::string& q : queries) {
    if (q == kBaseAllocation || (option == kOptListMetaContext && q == "base:")) match = true;
  }
  if (option == kOptSetMetaContext) {
    base_allocation_ = match;
    meta_export_ = name;
  }
  if (match) {
    std::vector<uint8_t> p;
    PutU32(p, option == kOptSetMetaContext ? kBaseAllocationId : 0);
    std::string_view ctx = kBaseAllocation;
    p.insert(p.end(), ctx.begin(), ctx.end());
    AppendOptionReply(out, option, kRepMetaContext, p);
  }
  AppendOptionReply(out, option, kRepAck);
  return Next::kContinue;
}

Result<Request> ParseRequest(std::span<const uint8_t> h) {
  if (h.size() != kRequestSize) return InvalidArgument("nbd: short request header");
  if (GetU32(h.data()) != kRequestMagic) return InvalidArgument("nbd: bad request magic");
  Request r;
  r.flags = GetU16(h.data() + 4);
  r.type = GetU16(h.data() + 6);
  r.cookie = GetU64(h.data() + 8);
  r.offset = GetU64(h.data() + 16);
  r.length = GetU32(h.data() + 24);
  return r;
}

Verdict CheckRequest(const Request& r, const TransmissionState& s) {
  Verdict v;
  if (r.type == kCmdWrite) {
    v.payload = r.length;
    // A payload we will not buffer cannot be skipped safely either (it may be a lie): close.
    if (r.length > s.max_payload) return Verdict{kEinval, true, 0};
  }
  uint16_t allowed = kCmdFlagFua;
  switch (r.type) {
    case kCmdRead:
      if (s.structured) allowed |= kCmdFlagDf;
      break;
    case kCmdWriteZeroes:
      allowed |= kCmdFlagNoHole;
      break;
    case kCmdBlockStatus:
      allowed |= kCmdFlagReqOne;
      break;
    case kCmdWrite:
    case kCmdDisc:
    case kCmdFlush:
    case kCmdTrim:
      break;
    default:
      v.error = kEinval;  // NBD_CMD_CACHE, RESIZE and unknown commands: not advertised
      return v;
  }
  if ((r.flags & ~allowed) != 0) {
    v.error = kEinval;
    return v;
  }
  if (r.type == kCmdDisc) return v;
  if (r.type == kCmdFlush) {
    if (r.offset != 0 || r.length != 0) v.error = kEinval;
    return v;
  }
  const bool writes = r.type == kCmdWrite || r.type == kCmdTrim || r.type == kCmdWriteZeroes;
  if (writes && s.read_only) {
    v.error = kEperm;
    return v;
  }
  if (r.offset > s.size || r.length > s.size - r.offset) {
    v.error = (r.type == kCmdWrite || r.type == kCmdWriteZeroes) ? kEnospc : kEinval;
    return v;
  }
  if (r.type == kCmdRead && r.length > s.max_payload) {
    v.error = kEinval;
    return v;
  }
  if (r.type == kCmdBlockStatus && (!s.base_allocation || r.length == 0)) {
    v.error = kEinval;
    return v;
  }
  return v;
}

void AppendSimpleReply(std::vector<uint8_t>& out, uint32_t error, uint64_t cookie) {
  PutU32(out, kSimpleReplyMagic);
  PutU32(out, error);
  PutU64(out, cookie);
}

void AppendStructuredHeader(std::vector<uint8_t>& out, uint16_t flags, uint16_t type,
                            uint64_t cookie, uint32_t length) {
  PutU32(out, kStructuredReplyMagic);
  PutU16(out, flags);
  PutU16(out, type);
  PutU64(out, cookie);
  PutU32(out, length);
}

void AppendStructuredError(std::vector<uint8_t>& out, uint64_t cookie, uint32_t error,
                           std::string_view message) {
  message = message.substr(0, 4096);
  AppendStructuredHeader(out, kReplyFlagDone, kReplyTypeError, cookie,
                         uint32_t(6 + message.size()));
  PutU32(out, error);
  PutU16(out, uint16_t(message.size()));
  auto b = Bytes(message);
  out.insert(out.end(), b.begin(), b.end());
}

void AppendBlockStatus(std::vector<uint8_t>& out, uint64_t cookie, uint32_t context_id,
                       std::span<const StatusDescriptor> descriptors) {
  AppendStructuredHeader(out, kReplyFlagDone, kReplyTypeBlockStatus, cookie,
                         uint32_t(4 + 8 * descriptors.size()));
  PutU32(out, context_id);
  for (const StatusDescriptor& d : descriptors) {
    PutU32(out, d.length);
    PutU32(out, d.flags);
  }
}

}  // namespace ingot::nbd
