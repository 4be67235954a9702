// NBD bytes as the server reads them: a client's option phase (headers and option data, fed to the
// negotiation state machine) and then request headers. Whatever the bytes, no crash, and what is
// accepted satisfies the server's assumptions: replies are well-framed, a chosen export is one the
// lookup offered, and a request judged servable lies inside the export and under the payload limit.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "nbd/wire.h"

using namespace ingot;
using namespace ingot::nbd;

namespace {

// Every option reply in `out` is framed: magic, option, type, length, then exactly length bytes.
void CheckReplies(const std::vector<uint8_t>& out, size_t from) {
  size_t pos = from;
  while (pos < out.size()) {
    if (out.size() - pos < 20) __builtin_trap();
    if (GetU64(&out[pos]) != kOptReplyMagic) __builtin_trap();
    uint32_t len = GetU32(&out[pos + 16]);
    if (out.size() - pos - 20 < len) __builtin_trap();
    pos += 20 + len;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  size_t pos = 0;
  auto take = [&](size_t n) -> std::span<const uint8_t> {
    if (in.size() - pos < n) return {};
    auto s = in.subspan(pos, n);
    pos += n;
    return s;
  };
  Negotiation n(
      [](std::string_view name, bool) -> Result<ExportDescription> {
        if (name == "disk") {
          return ExportDescription{.size = 1 << 20, .transmission_flags = kTxHasFlags | kTxSendFlush};
        }
        if (name == "x") return PermissionDenied("no");
        return NotFound("unknown");
      },
      [] { return std::vector<std::string>{"disk"}; });
  auto flags = take(4);
  if (flags.empty() || !n.OnClientFlags(GetU32(flags.data()))) return 0;
  std::vector<uint8_t> out;
  bool transmission = false;
  for (int i = 0; i < 64 && !transmission; ++i) {
    auto h = take(kOptionHeaderSize);
    if (h.empty()) return 0;
    auto header = ParseOptionHeader(h);
    if (!header.ok()) return 0;
    // The server refuses option data over 64 KiB; here, whatever is left.
    uint32_t len = std::min<uint32_t>(header->length, uint32_t(in.size() - pos));
    auto d = take(len);
    size_t before = out.size();
    auto next = n.OnOption(header->option, d, out);
    if (header->option != kOptExportName) CheckReplies(out, before);
    if (next == Negotiation::Next::kClose) return 0;
    if (next == Negotiation::Next::kTransmission) {
      if (n.export_name() != "disk") __builtin_trap();
      transmission = true;
    }
  }
  if (!transmission) return 0;
  TransmissionState s{.size = n.export_description().size,
                      .read_only = (pos & 1) != 0,
                      .structured = n.structured_replies(),
                      .base_allocation = n.base_allocation(),
                      .max_payload = 65536};
  if (s.base_allocation && !s.structured) __builtin_trap();
  while (true) {
    auto h = take(kRequestSize);
    if (h.empty()) break;
    auto r = ParseRequest(h);
    if (!r.ok()) break;
    Verdict v = CheckRequest(*r, s);
    if (v.close) break;
    if (v.error == 0) {
      if (r->type != kCmdDisc && r->type != kCmdFlush) {
        if (r->offset > s.size || r->length > s.size - r->offset) __builtin_trap();
      }
      if ((r->type == kCmdRead || r->type == kCmdWrite) && r->length > s.max_payload) __builtin_trap();
      if (s.read_only && (r->type == kCmdWrite || r->type == kCmdTrim || r->type == kCmdWriteZeroes)) {
        __builtin_trap();
      }
      if (r->type == kCmdBlockStatus && !s.base_allocation) __builtin_trap();
    }
    if (r->type == kCmdWrite) take(std::min<size_t>(v.payload, in.size() - pos));
  }
  return 0;
}
