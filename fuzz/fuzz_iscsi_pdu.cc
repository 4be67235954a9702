// iSCSI bytes as the target reads them: login PDUs (BHS, data segment, key text) fed to the login
// state machine, then full-feature PDUs whose CDBs are decoded. Whatever the bytes, no crash, and
// what is accepted satisfies the server's assumptions: every login response is one well-framed PDU,
// a login that reaches full feature phase was admitted with an initiator name (and a target for a
// normal session), the negotiated limits are within what we offered, and a READ or WRITE judged
// servable lies inside the disk and under the transfer limit, never writing a read-only disk; UNMAP
// lists and WRITE SAME ranges likewise.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "iscsi/wire.h"

using namespace ingot;
using namespace ingot::iscsi;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  size_t pos = 0;
  auto take = [&](size_t n) -> std::span<const uint8_t> {
    if (in.size() - pos < n) return {};
    auto s = in.subspan(pos, n);
    pos += n;
    return s;
  };
  bool admitted = false;
  const LoginLimits limits{
      .max_recv_data_segment = 65536, .max_burst = 262144, .first_burst = 65536};
  LoginNegotiation login(limits, 1, [&](std::string_view initiator, std::string_view target) {
    if (!ValidIscsiName(initiator)) __builtin_trap();
    admitted = true;
    if (target == "iqn.x:denied") return PermissionDenied("no");
    return Status::Ok();
  });
  bool full = false;
  for (int i = 0; i < 16 && !full; ++i) {
    auto bhs = take(kBhsSize);
    if (bhs.empty()) return 0;
    auto h = ParseBhs(bhs, 8192);
    if (!h.ok()) return 0;
    if (h->ahs_bytes % 4 != 0 || h->data_length > 8192) __builtin_trap();
    take(h->ahs_bytes);
    auto d = take(std::min<size_t>(h->data_length, in.size() - pos));
    std::vector<uint8_t> out;
    auto next = login.OnRequest(bhs, d, out);
    if (out.size() < kBhsSize) __builtin_trap();
    auto r = ParseBhs(out, 1 << 24);
    if (!r.ok() || r->opcode != kOpLoginResponse ||
        out.size() != kBhsSize + Padded(r->data_length)) {
      __builtin_trap();
    }
    if (next == LoginNegotiation::Next::kClose) return 0;
    if (r->data_length > 0 &&
        !ParseText(std::span<const uint8_t>(out).subspan(kBhsSize, r->data_length)).ok()) {
      __builtin_trap();
    }
    full = next == LoginNegotiation::Next::kFullFeature;
  }
  if (!full) return 0;
  const SessionParams& p = login.params();
  if (!admitted || p.initiator_name.empty() || (!p.discovery && p.target_name.empty()))
    __builtin_trap();
  if (p.max_burst > limits.max_burst || p.first_burst > limits.first_burst ||
      p.first_burst > p.max_burst || p.initiator_max_recv < 512) {
    __builtin_trap();
  }
  const Disk disk{.size = (1 << 20) + 100,
                  .read_only = (pos & 1) != 0,
                  .name = p.target_name,
                  .serial = "s",
                  .max_transfer_bytes = 65536};
  while (true) {
    auto bhs = take(kBhsSize);
    if (bhs.empty()) break;
    auto h = ParseBhs(bhs, p.target_max_recv);
    if (!h.ok()) break;
    take(h->ahs_bytes);
    auto text = take(std::min<size_t>(h->data_length, in.size() - pos));
    if (h->opcode == kOpTextRequest) (void)ParseText(text);
    if (h->opcode != kOpScsiCommand) continue;
    ScsiAction a = DecodeScsi(bhs.subspan(32, 16), h->lun, disk);
    switch (a.kind) {
      case ScsiAction::Kind::kRead:
      case ScsiAction::Kind::kWrite:
        if (a.offset % kBlockSize != 0 || a.offset > disk.size || a.length > disk.size - a.offset ||
            a.length > disk.max_transfer_bytes || h->lun != 0) {
          __builtin_trap();
        }
        if (a.kind == ScsiAction::Kind::kWrite && disk.read_only) __builtin_trap();
        break;
      case ScsiAction::Kind::kRespond:
        if (a.data.size() > 65535 + 8) __builtin_trap();
        break;
      case ScsiAction::Kind::kCheck:
        if (SenseSegment(a.sense).size() != 20) __builtin_trap();
        break;
      case ScsiAction::Kind::kFlush:
        break;
      case ScsiAction::Kind::kLbaStatus:
        if (a.offset >= disk.size || a.offset % kBlockSize != 0) __builtin_trap();
        break;
      case ScsiAction::Kind::kVerify:
        if (a.offset > disk.size || a.length > disk.size - a.offset || a.length == 0 ||
            a.length > disk.max_transfer_bytes || a.data_out() != a.length) {
          __builtin_trap();
        }
        break;
      case ScsiAction::Kind::kUnmap: {
        if (disk.read_only || a.data_out() != a.length) __builtin_trap();
        // The rest of the input as the parameter list.
        UnmapList l = ParseUnmapList(in.subspan(pos), disk);
        uint64_t total = 0;
        for (const ByteRange& r : l.ranges) {
          if (r.offset > disk.size || r.length > disk.size - r.offset) __builtin_trap();
          total += r.length;
        }
        if (total > disk.max_unmap_bytes || (l.refusal && !l.ranges.empty())) __builtin_trap();
        break;
      }
      case ScsiAction::Kind::kWriteSame:
        if (disk.read_only || a.offset > disk.size || a.length > disk.size - a.offset ||
            a.length == 0 || a.data_out() > kBlockSize) {
          __builtin_trap();
        }
        break;
    }
  }
  return 0;
}
