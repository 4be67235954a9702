#include "iscsi/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "iscsi/wire.h"

namespace ingot::iscsi {

struct Server::Connection {
  int fd = -1;
  std::string peer;       // numeric address, for resolving and limits
  std::string peer_text;  // address:port, for logs
  std::string volume;     // once logged in to a normal session
  bool in_session = false;
  bool holds_write = false;  // a claim on volume in writers_
  std::atomic<bool> done{false};
  std::thread thread;
};

namespace {

// How far ahead of ExpCmdSN an initiator may queue commands.
constexpr uint32_t kCmdWindow = 32;
// Commands of one connection that may wait for their data-out at once (each with its buffer).
constexpr size_t kMaxPendingWrites = 16;

bool RecvAll(int fd, void* buf, size_t n) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, MSG_WAITALL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
  }
  return true;
}

bool SendAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

bool SendAll(int fd, const std::vector<uint8_t>& b) { return SendAll(fd, b.data(), b.size()); }

std::string HostOf(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a)->sin_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&a);
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf);
    }
  }
  return buf;
}

uint16_t PortOf(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&a)->sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&a)->sin6_port);
  return 0;
}

std::string HostPort(const std::string& host, uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

void SetTimeout(int fd, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = t.count() / 1000;
  tv.tv_usec = (t.count() % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// One PDU as read from the socket.
struct Pdu {
  Bhs bhs{};
  BhsHeader h;
  std::vector<uint8_t> data;
};

// Reads one PDU; false when the connection is gone or the framing cannot be trusted.
bool ReadPdu(int fd, uint32_t max_data, Pdu& p) {
  if (!RecvAll(fd, p.bhs.data(), kBhsSize)) return false;
  auto h = ParseBhs(p.bhs, max_data);
  if (!h.ok()) return false;
  p.h = *h;
  uint8_t ahs[256];
  if (p.h.ahs_bytes > 0 && !RecvAll(fd, ahs, p.h.ahs_bytes)) return false;
  p.data.resize(Padded(p.h.data_length));
  if (!p.data.empty() && !RecvAll(fd, p.data.data(), p.data.size())) return false;
  p.data.resize(p.h.data_length);
  return true;
}

// A command waiting for its data-out (WRITE, UNMAP, WRITE SAME): immediate, unsolicited and
// solicited by R2T.
struct PendingWrite {
  uint64_t lun = 0;
  ScsiAction action;
  std::vector<uint8_t> buf;  // the whole transfer
  uint32_t received = 0;
  bool unsolicited_open = false;  // unsolicited Data-Out may still come
  bool r2t_open = false;          // an R2T is outstanding
  uint32_t ttt = 0;
  uint32_t r2t_sn = 0;
  uint32_t data_sn = 0;  // the next Data-Out's DataSN: from 0 in each sequence (unsolicited, R2T)
};

// Full feature phase of one normal or discovery session.
class Session {
 public:
  Session(int fd, const SessionParams& params, Sequence seq, nbd::Export* exp, Disk disk,
          internal::Counters& counters, std::string name)
      : fd_(fd),
        p_(params),
        seq_(seq),
        exp_(exp),
        disk_(disk),
        counters_(counters),
        name_(std::move(name)) {}

  using Lister = std::function<std::string()>;  // SendTargets text for this session

  // Serves until logout, disconnect or a protocol error; says why.
  const char* Run(const Lister& send_targets) {
    Pdu pdu;
    while (true) {
      if (!ReadPdu(fd_, p_.target_max_recv, pdu)) return "initiator went away";
      const BhsHeader& h = pdu.h;
      // CmdSN of non-immediate commands advances the window (Data-Out carries none); one outside
      // [ExpCmdSN, MaxCmdSN] is ignored, as RFC 7143 §4.2.2.1 requires (its data is dropped too).
      if (h.opcode != kOpDataOut && h.opcode != kOpSnackRequest && !h.immediate &&
          !(h.opcode == kOpNopOut && h.itt == kReservedTag)) {
        const uint32_t sn = h.word24;
        if (int32_t(sn - seq_.exp_cmd_sn) < 0 || int32_t(seq_.max_cmd_sn - sn) < 0) continue;
        seq_.exp_cmd_sn = sn + 1;
      }
      seq_.max_cmd_sn = seq_.exp_cmd_sn + kCmdWindow - 1;
      switch (h.opcode) {
        case kOpNopOut: {
          if (h.itt == kReservedTag) break;  // an answer to a NOP-In of ours
          auto out = BuildPdu(NopInHeader(h.itt, kReservedTag, h.lun, Next()),
                              std::span<const uint8_t>(pdu.data).subspan(
                                  0, std::min<size_t>(pdu.data.size(), p_.initiator_max_recv)));
          if (!SendAll(fd_, out)) return "initiator went away";
          break;
        }
        case kOpScsiCommand:
          if (exp_ == nullptr) {
            if (!SendAll(fd_, BuildReject(kRejectProtocolError, pdu.bhs, Current()))) {
              return "initiator went away";
            }
            break;
          }
          if (!Command(pdu)) return broken_ ? broken_ : "initiator went away";
          break;
        case kOpDataOut:
          if (!DataOut(pdu)) return broken_ ? broken_ : "initiator went away";
          break;
        case kOpTextRequest: {
          if (h.word20 != kReservedTag) {
            // The initiator asks for the rest of a long answer (RFC 7143 §11.10: its TTT is ours).
            if (h.word20 != text_ttt_ || h.itt != text_itt_ || text_left_.empty() ||
                !pdu.data.empty()) {
              if (!SendAll(fd_, BuildReject(kRejectProtocolError, pdu.bhs, Current()))) {
                return "initiator went away";
              }
              break;
            }
            if (!SendText()) return "initiator went away";
            break;
          }
          std::vector<uint8_t> text;
          auto pairs = ParseText(pdu.data);
          if (pairs.ok()) {
            for (const auto& [k, v] : *pairs) {
              if (k == "SendTargets") {
                std::string t = send_targets();
                text.insert(text.end(), t.begin(), t.end());
              } else {
                AppendText(text, k, "NotUnderstood");
              }
            }
          }
          if (!pairs.ok() || (h.flags & kTextContinue) != 0) {
            if (!SendAll(fd_, BuildReject(kRejectProtocolError, pdu.bhs, Current()))) {
              return "initiator went away";
            }
            break;
          }
          text_left_ = std::move(text);
          text_itt_ = h.itt;
          if (!SendText()) return "initiator went away";
          break;
        }
        case kOpTaskMgmtRequest: {
          const uint8_t function = h.flags & 0x7f;
          uint8_t response = kTmfComplete;
          if (function == kTmfAbortTask) {
            // Everything but a write still waiting for its data has already been answered.
            response = writes_.erase(h.word20) ? kTmfComplete : kTmfNoTask;
          } else if (function >= kTmfTaskReassign) {
            response = kTmfNotSupported;
          } else {
            writes_.clear();
          }
          if (!SendAll(fd_, BuildPdu(TaskMgmtResponseHeader(h.itt, response, Next())))) {
            return "initiator went away";
          }
          break;
        }
        case kOpLogoutRequest: {
          SendAll(fd_, BuildPdu(LogoutResponseHeader(h.itt, 0, Next())));
          return "logout";
        }
        default:
          if (!SendAll(fd_, BuildReject(kRejectNotSupported, pdu.bhs, Current()))) {
            return "initiator went away";
          }
      }
    }
  }
  uint64_t commands() const { return commands_; }

 private:
  // Sends the next piece of a text answer: at most the initiator's MaxRecvDataSegmentLength, with
  // the C bit and a TTT of ours while more follows (the initiator asks for it with that TTT).
  bool SendText() {
    const size_t n = std::min<size_t>(text_left_.size(), p_.initiator_max_recv);
    const bool last = n == text_left_.size();
    if (!last) {
      text_ttt_ = next_ttt_++;
      if (next_ttt_ == kReservedTag) next_ttt_ = 1;
    }
    auto out =
        BuildPdu(TextResponseHeader(text_itt_, last, last ? kReservedTag : text_ttt_, Next()),
                 std::span<const uint8_t>(text_left_).subspan(0, n));
    text_left_.erase(text_left_.begin(), text_left_.begin() + n);
    return SendAll(fd_, out);
  }

  // The sequence numbers of a status-bearing PDU (takes a StatSN), or of one that carries none.
  Sequence Next() {
    Sequence s = seq_;
    seq_.stat_sn++;
    return s;
  }
  Sequence Current() const { return seq_; }

  // `transferred`: the bytes the command moves (or would, for a read cut short by its EDTL); the
  // difference from the EDTL is the residual (U: less than expected, O: more).
  bool SendStatus(uint32_t itt, uint8_t status, std::span<const uint8_t> sense, uint32_t edtl,
                  uint32_t transferred) {
    uint8_t flags = 0;
    uint32_t residual = 0;
    if (transferred < edtl) flags = kResidualUnderflow, residual = edtl - transferred;
    if (transferred > edtl) flags = kResidualOverflow, residual = transferred - edtl;
    return SendAll(fd_, BuildPdu(ScsiResponseHeader(itt, status, flags, residual, Next()), sense));
  }

  bool SendCheck(uint32_t itt, const Sense& s, uint32_t edtl) {
    counters_.errors++;
    return SendStatus(itt, kStatusCheckCondition, SenseSegment(s), edtl, 0);
  }

  // Data-In PDUs of at most the initiator's MaxRecvDataSegmentLength, the F bit closing each
  // MaxBurstLength sequence, and the status in the last one (no sense: phase collapse is allowed).
  bool SendData(uint32_t itt, uint64_t lun, std::span<const uint8_t> data, uint32_t edtl,
                uint32_t available) {
    const uint32_t n = uint32_t(data.size());
    uint8_t rflags = 0;
    uint32_t residual = 0;
    if (available < edtl) rflags = kResidualUnderflow, residual = edtl - available;
    if (available > edtl) rflags = kResidualOverflow, residual = available - edtl;
    uint32_t pos = 0, data_sn = 0, burst_left = p_.max_burst;
    do {
      uint32_t len = std::min({n - pos, p_.initiator_max_recv, burst_left});
      const bool last = pos + len == n;
      burst_left -= len;
      const bool seq_end = last || burst_left == 0;
      if (burst_left == 0) burst_left = p_.max_burst;
      Sequence s = last ? Next() : Current();
      Bhs b =
          DataInHeader(itt, lun, data_sn++, pos, seq_end, last, kStatusGood, rflags, residual, s);
      auto out = BuildPdu(b, data.subspan(pos, len));
      if (!SendAll(fd_, out)) return false;
      pos += len;
    } while (pos < n);
    return true;
  }

  bool Command(const Pdu& pdu) {
    const BhsHeader& h = pdu.h;
    ++commands_;
    counters_.commands++;
    const uint32_t edtl = h.word20;
    const std::span<const uint8_t> cdb(&pdu.bhs[32], 16);
    ScsiAction a = DecodeScsi(cdb, h.lun, disk_);
    switch (a.kind) {
      case ScsiAction::Kind::kCheck:
        // Data-Out that follows for this task finds no pending write and is dropped.
        return SendCheck(h.itt, a.sense, edtl);
      case ScsiAction::Kind::kRespond: {
        if (a.data.empty() || (h.flags & kCmdRead) == 0 || edtl == 0) {
          return SendStatus(h.itt, kStatusGood, {}, edtl, 0);
        }
        const uint32_t available = uint32_t(a.data.size());
        a.data.resize(std::min<size_t>(a.data.size(), edtl));
        return SendData(h.itt, h.lun, a.data, edtl, available);
      }
      case ScsiAction::Kind::kLbaStatus: {
        // Extents from the export's block status: what reads as zeros is "deallocated" (LBPRZ),
        // the rest mapped. A bounded answer; the initiator asks again from where it stops.
        std::vector<LbaExtent> extents;
        const uint64_t end = disk_.size / kBlockSize * kBlockSize;
        const size_t room = a.length > 8 ? std::min<size_t>((a.length - 8) / 16, 64) : 0;
        uint64_t pos = a.offset;
        while (pos < end && extents.size() < std::max<size_t>(room, 1)) {
          Result<nbd::ExportExtent> e = exp_->BlockStatus(pos, end - pos);
          if (!e.ok()) return Fail(h.itt, e.status(), false, edtl);
          // Whole blocks only (pos stays block-aligned): the extent's whole blocks now, its tail
          // with the next round; a block that is partly one and partly another is mapped.
          uint64_t len = std::min<uint64_t>(std::max<uint64_t>(e->length, 1), end - pos);
          bool zero = e->zero;
          if (len < kBlockSize) {
            len = kBlockSize;
            zero = false;
          } else {
            len = len / kBlockSize * kBlockSize;
          }
          const uint64_t blocks = std::min<uint64_t>(len / kBlockSize, 0xffffffff);
          if (!extents.empty() && extents.back().deallocated == zero &&
              uint64_t(extents.back().blocks) + blocks <= 0xffffffff) {
            extents.back().blocks += uint32_t(blocks);
          } else {
            extents.push_back({pos / kBlockSize, uint32_t(blocks), zero});
          }
          pos += blocks * kBlockSize;
        }
        std::vector<uint8_t> data = LbaStatusData(extents, a.length);
        const uint32_t available = uint32_t(8 + extents.size() * 16);
        data.resize(std::min<size_t>(data.size(), edtl));
        if (data.empty()) return SendStatus(h.itt, kStatusGood, {}, edtl, available);
        return SendData(h.itt, h.lun, data, edtl, available);
      }
      case ScsiAction::Kind::kFlush: {
        Status s = exp_->Flush();
        if (!s.ok()) return Fail(h.itt, s, true, edtl);
        return SendStatus(h.itt, kStatusGood, {}, edtl, 0);
      }
      case ScsiAction::Kind::kRead: {
        if (a.length == 0) return SendStatus(h.itt, kStatusGood, {}, edtl, 0);
        const uint32_t n = std::min(a.length, edtl);
        read_buf_.resize(n);
        Status s = exp_->Read(a.offset, read_buf_);
        if (!s.ok()) return Fail(h.itt, s, false, edtl);
        counters_.read += n;
        if (n == 0) return SendStatus(h.itt, kStatusGood, {}, edtl, a.length);  // EDTL 0: overflow
        return SendData(h.itt, h.lun, read_buf_, edtl, a.length);
      }
      case ScsiAction::Kind::kWrite:
      case ScsiAction::Kind::kUnmap:
      case ScsiAction::Kind::kWriteSame:
      case ScsiAction::Kind::kVerify: {
        const uint32_t need = a.data_out();
        // An EDTL that differs from what the CDB moves is refused rather than half-written (as
        // LIO does): a partial write is never what an initiator meant.
        if (edtl != need || ((h.flags & kCmdWrite) == 0 && need > 0)) {
          return SendCheck(h.itt, {kSenseIllegalRequest, kAscInvalidFieldInCdb}, edtl);
        }
        if (pdu.data.size() > need || pdu.data.size() > p_.first_burst ||
            (!pdu.data.empty() && !p_.immediate_data)) {
          broken_ = "immediate data over the negotiated limits";
          return false;
        }
        if (writes_.size() >= kMaxPendingWrites) {
          // Each holds a buffer of up to max_transfer_bytes: an initiator that ignores the
          // command window must not make us hold more.
          broken_ = "too many commands waiting for their data";
          return false;
        }
        PendingWrite w;
        w.lun = h.lun;
        w.buf.resize(need);
        std::copy(pdu.data.begin(), pdu.data.end(), w.buf.begin());
        w.received = uint32_t(pdu.data.size());
        w.action = std::move(a);
        // F clear: unsolicited Data-Out follows (only when InitialR2T=No).
        w.unsolicited_open = (h.flags & kFinalBit) == 0;
        if (w.unsolicited_open && p_.initial_r2t) {
          broken_ = "unsolicited data with InitialR2T=Yes";
          return false;
        }
        auto [it, fresh] = writes_.insert_or_assign(h.itt, std::move(w));
        return Advance(h.itt, it->second);
      }
    }
    return false;
  }

  // Runs a command whose data-out is complete.
  Status Execute(const ScsiAction& a, std::span<const uint8_t> data, Sense& refusal) {
    switch (a.kind) {
      case ScsiAction::Kind::kWrite:
        INGOT_RETURN_IF_ERROR(exp_->Write(a.offset, data, a.fua));
        counters_.written += data.size();
        return Status::Ok();
      case ScsiAction::Kind::kUnmap: {
        UnmapList list = ParseUnmapList(data, disk_);
        if (list.refusal) {
          refusal = *list.refusal;
          return InvalidArgument("bad UNMAP parameter list");
        }
        // WriteZeroes with punching, not Trim: Trim leaves partial clusters as they were, and we
        // promise that unmapped blocks read as zeros (LBPRZ), which qemu relies on.
        for (const ByteRange& r : list.ranges) {
          INGOT_RETURN_IF_ERROR(exp_->WriteZeroes(r.offset, r.length, true, false));
        }
        return Status::Ok();
      }
      case ScsiAction::Kind::kWriteSame: {
        const bool zero =
            a.no_data || std::all_of(data.begin(), data.end(), [](uint8_t b) { return b == 0; });
        if (zero) return exp_->WriteZeroes(a.offset, a.length, a.unmap, false);
        // A pattern: the block repeated, written a bounded buffer at a time.
        std::vector<uint8_t> pattern(std::min<uint64_t>(a.length, 1u << 20));
        for (size_t i = 0; i < pattern.size(); i += kBlockSize) {
          std::copy(data.begin(), data.end(), pattern.begin() + i);
        }
        for (uint64_t pos = 0; pos < a.length; pos += pattern.size()) {
          const size_t n = size_t(std::min<uint64_t>(pattern.size(), a.length - pos));
          INGOT_RETURN_IF_ERROR(exp_->Write(a.offset + pos, {pattern.data(), n}, false));
        }
        counters_.written += a.length;
        return Status::Ok();
      }
      case ScsiAction::Kind::kVerify: {
        read_buf_.resize(a.length);
        INGOT_RETURN_IF_ERROR(exp_->Read(a.offset, read_buf_));
        if (!std::equal(read_buf_.begin(), read_buf_.end(), data.begin(), data.end())) {
          refusal = {kSenseMiscompare, kAscMiscompareDuringVerify};
          return InvalidArgument("miscompare");
        }
        return Status::Ok();
      }
      default:
        return Internal("not a data-out command");
    }
  }

  // Runs a command whose data is all here, or asks for the next burst.
  bool Advance(uint32_t itt, PendingWrite& w) {
    const uint32_t total = uint32_t(w.buf.size());
    if (w.received == total) {
      Sense refusal;
      Status s = Execute(w.action, w.buf, refusal);
      const uint32_t edtl = total;
      writes_.erase(itt);
      if (refusal.key != kSenseNoSense) return SendCheck(itt, refusal, edtl);
      if (!s.ok()) return Fail(itt, s, true, edtl);
      return SendStatus(itt, kStatusGood, {}, edtl, edtl);
    }
    if (w.unsolicited_open || w.r2t_open) return true;
    const uint32_t len = std::min(p_.max_burst, total - w.received);
    w.ttt = next_ttt_++;
    if (next_ttt_ == kReservedTag) next_ttt_ = 1;
    w.r2t_open = true;
    w.data_sn = 0;
    return SendAll(fd_,
                   BuildPdu(R2tHeader(itt, w.lun, w.ttt, w.r2t_sn++, w.received, len, Current())));
  }

  bool DataOut(const Pdu& pdu) {
    const BhsHeader& h = pdu.h;
    auto it = writes_.find(h.itt);
    if (it == writes_.end()) return true;  // a refused or aborted task's data: dropped
    PendingWrite& w = it->second;
    const uint32_t offset = h.word40, len = uint32_t(pdu.data.size());
    const bool solicited = h.word20 != kReservedTag;
    if ((solicited && (!w.r2t_open || h.word20 != w.ttt)) || (!solicited && !w.unsolicited_open) ||
        offset > w.buf.size() || len > w.buf.size() - offset) {
      broken_ = "Data-Out outside what was asked for";
      return false;
    }
    if (h.word36 != w.data_sn++) {
      // Error recovery level 0 cannot ask for the lost PDU again: the connection ends.
      broken_ = "Data-Out with a DataSN out of order";
      return false;
    }
    std::copy(pdu.data.begin(), pdu.data.end(), w.buf.begin() + offset);
    w.received += len;
    if ((h.flags & kFinalBit) != 0) {
      if (solicited) {
        w.r2t_open = false;
      } else {
        w.unsolicited_open = false;
      }
      return Advance(h.itt, w);
    }
    return true;
  }

  bool Fail(uint32_t itt, const Status& s, bool write, uint32_t edtl) {
    if (IsServerFault(s.code())) {
      log::Error("iscsi.io",
                 {{"target", name_}, {"write", write ? "yes" : "no"}, {"error", s.ToString()}});
    }
    return SendCheck(itt, SenseFor(s, write), edtl);
  }

  const int fd_;
  const SessionParams& p_;
  Sequence seq_;
  nbd::Export* exp_;
  const Disk disk_;
  internal::Counters& counters_;
  const std::string name_;
  std::map<uint32_t, PendingWrite> writes_;
  std::vector<uint8_t> read_buf_;
  uint32_t next_ttt_ = 1;
  std::vector<uint8_t> text_left_;  // the rest of a text answer too long for one PDU
  uint32_t text_itt_ = 0, text_ttt_ = kReservedTag;
  uint64_t commands_ = 0;
  const char* broken_ = nullptr;
};

}  // namespace

Server::Server(ServerOptions options, TargetResolver& resolver)
    : options_(std::move(options)),
      resolver_(resolver),
      writers_(options_.writers != nullptr ? *options_.writers : own_writers_) {
  options_.iqn_prefix = LowerName(options_.iqn_prefix);
}

Server::~Server() { Stop(); }

std::string Server::TargetName(std::string_view volume) const {
  return options_.iqn_prefix + ":" + LowerName(volume);
}

std::string Server::VolumeOf(std::string_view target_name) const {
  const std::string t = LowerName(target_name);
  if (t.size() <= options_.iqn_prefix.size() + 1 || t.rfind(options_.iqn_prefix + ":", 0) != 0) {
    return "";
  }
  // iSCSI names are lowercase, volume names are not: the volume is found by its lowercased name
  // in the resolver's list (volume names differing only in case cannot both be served).
  return std::string(target_name.substr(options_.iqn_prefix.size() + 1));
}

Status Server::Start() {
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, options_.host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(options_.port);
    len = sizeof *a4;
  } else if (inet_pton(AF_INET6, options_.host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(options_.port);
    len = sizeof *a6;
  } else {
    return InvalidArgument("iscsi listen address '" + options_.host + "' is not a numeric address");
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return FromErrno(errno, "iscsi socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 128) != 0) {
    Status s =
        FromErrno(errno, "iscsi bind " + options_.host + ":" + std::to_string(options_.port));
    ::close(fd);
    return s;
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = PortOf(bound);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    Status s = FromErrno(errno, "iscsi eventfd");
    ::close(fd);
    return s;
  }
  listen_fd_ = fd;
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void Server::Stop() {
  if (listen_fd_ < 0) return;
  uint64_t one = 1;
  (void)::write(wake_fd_, &one, sizeof one);
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : connections_) {
      if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
    }
  }
  Reap(true);
  ::close(listen_fd_);
  ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

void Server::Reap(bool all) {
  std::list<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (all || (*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) {
    if (c->thread.joinable()) c->thread.join();
  }
}

void Server::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);
    Reap(false);
    if (n < 0 && errno != EINTR) {
      log::Error("iscsi.poll", {{"error", std::strerror(errno)}});
      return;
    }
    if (fds[1].revents != 0) return;
    if (n <= 0 || (fds[0].revents & POLLIN) == 0) continue;
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
    if (fd < 0) continue;
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->peer = HostOf(peer);
    c->peer_text = HostPort(c->peer, PortOf(peer));
    std::lock_guard<std::mutex> lock(mu_);
    size_t same = 0;
    for (auto& o : connections_) same += (o->peer == c->peer && !o->done.load());
    if (connections_.size() >= options_.max_connections ||
        same >= options_.max_connections_per_client) {
      counters_.refused++;
      log::Warn("iscsi.refused", {{"peer", c->peer_text}, {"reason", "connection limit"}});
      ::close(fd);
      continue;
    }
    Connection* raw = c.get();
    connections_.push_back(std::move(c));
    raw->thread = std::thread([this, raw] {
      Serve(*raw);
      std::lock_guard<std::mutex> l(mu_);
      if (raw->holds_write) writers_.Release(raw->volume);
      ::close(raw->fd);
      raw->fd = -1;
      raw->in_session = false;
      raw->done = true;
    });
  }
}

size_t Server::CloseVolume(std::string_view volume) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (auto& c : connections_) {
    if (c->fd >= 0 && c->volume == volume) {
      ::shutdown(c->fd, SHUT_RDWR);
      ++n;
    }
  }
  return n;
}

std::vector<std::string> Server::ActiveVolumes() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (auto& c : connections_) {
    if (c->in_session && std::find(names.begin(), names.end(), c->volume) == names.end()) {
      names.push_back(c->volume);
    }
  }
  return names;
}

ServerStats Server::stats() const {
  ServerStats s;
  s.sessions = counters_.sessions;
  s.refused = counters_.refused;
  s.commands = counters_.commands;
  s.command_errors = counters_.errors;
  s.bytes_read = counters_.read;
  s.bytes_written = counters_.written;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& c : connections_) s.active += c->in_session;
  return s;
}

void Server::Serve(Connection& c) {
  const int fd = c.fd;
  SetTimeout(fd, options_.login_timeout);
  std::shared_ptr<nbd::Export> chosen;
  bool writable = false;
  std::string volume;

  auto admit = [&](std::string_view initiator, std::string_view target) -> Status {
    if (target.empty()) return Status::Ok();  // discovery: the list is filtered instead
    volume = VolumeOf(target);
    if (volume.empty()) return NotFound("no target '" + std::string(target) + "' here");
    // Target names are lowercase; find the volume whose lowercased name this is.
    for (const std::string& v : resolver_.ListTargets(initiator, c.peer)) {
      if (LowerName(v) == LowerName(volume)) volume = v;
    }
    INGOT_ASSIGN_OR_RETURN(std::shared_ptr<nbd::Export> e,
                           resolver_.ResolveTarget(volume, initiator, c.peer));
    bool ro = e->read_only();
    const std::string who = "iscsi " + c.peer + " " + std::string(initiator);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ro) {
        ro = !writers_.Claim(volume, who);
        c.holds_write = !ro;
      }
      c.volume = volume;
    }
    chosen = std::move(e);
    writable = !ro;
    return Status::Ok();
  };
  uint16_t tsih;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tsih = next_tsih_++;
    if (next_tsih_ == 0) next_tsih_ = 1;
  }
  LoginNegotiation login(LoginLimits{.max_recv_data_segment = options_.max_recv_data_segment,
                                     .max_burst = options_.max_burst,
                                     .first_burst = options_.first_burst},
                         tsih, admit);
  std::vector<uint8_t> out;
  Pdu pdu;
  while (true) {
    // Login PDUs carry at most 8192 bytes of data until MaxRecvDataSegmentLength is declared.
    if (!ReadPdu(fd, 8192, pdu)) {
      counters_.refused++;
      return;
    }
    out.clear();
    LoginNegotiation::Next next = login.OnRequest(pdu.bhs, pdu.data, out);
    // Counted before the answer goes out, so whoever reads the refusal sees it in stats().
    if (next == LoginNegotiation::Next::kClose) counters_.refused++;
    if (!SendAll(fd, out)) return;
    if (next == LoginNegotiation::Next::kClose) {
      log::Info("iscsi.login", {{"peer", c.peer_text},
                                {"initiator", login.params().initiator_name},
                                {"target", login.params().target_name},
                                {"result", "refused"},
                                {"reason", login.refusal()}});
      return;
    }
    if (next == LoginNegotiation::Next::kFullFeature) break;
  }
  const SessionParams& params = login.params();
  SetTimeout(fd, std::chrono::milliseconds(0));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);

  // SendTargets answers name the portal this connection came in on.
  sockaddr_storage local{};
  socklen_t llen = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen);
  const std::string portal = HostPort(HostOf(local), PortOf(local)) + ",1";
  auto send_targets = [&]() {
    std::vector<uint8_t> text;
    std::vector<std::string> names;
    if (params.discovery) {
      names = resolver_.ListTargets(params.initiator_name, c.peer);
    } else {
      names.push_back(volume);
    }
    for (const std::string& v : names) {
      AppendText(text, "TargetName", TargetName(v));
      AppendText(text, "TargetAddress", portal);
    }
    return std::string(text.begin(), text.end());
  };

  std::string serial;
  Disk disk;
  if (!params.discovery) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      c.in_session = true;
    }
    counters_.sessions++;
    // The serial: a stable hash of the volume name (VPD 0x80 is at most a few dozen bytes for
    // most initiators, volume names are up to 128).
    uint64_t h = 1469598103934665603ull;
    for (char ch : volume) h = (h ^ uint8_t(ch)) * 1099511628211ull;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    serial = buf;
    disk = Disk{.size = chosen->Size(),
                .read_only = !writable,
                .name = params.target_name,
                .serial = serial,
                .max_transfer_bytes = options_.max_transfer_bytes};
  }
  log::Info("iscsi.login", {{"peer", c.peer_text},
                            {"initiator", params.initiator_name},
                            {"target", params.discovery ? "" : params.target_name},
                            {"session", params.discovery ? "discovery" : "normal"},
                            {"mode", params.discovery ? "-"
                                     : writable       ? "rw"
                                                      : "ro"},
                            {"result", "ok"}});
  Session s(fd, params, login.sequence(), chosen.get(), disk, counters_, params.target_name);
  const char* why = s.Run(send_targets);
  log::Info("iscsi.logout", {{"peer", c.peer_text},
                             {"initiator", params.initiator_name},
                             {"target", params.discovery ? "" : params.target_name},
                             {"commands", s.commands()},
                             {"reason", why}});
}

}  // namespace ingot::iscsi
