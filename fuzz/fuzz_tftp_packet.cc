// A TFTP datagram as the server reads it: the packet parser, option negotiation and the file-name
// rule must give a Status for any bytes, never a crash; what they accept must satisfy the server's
// assumptions. The same bytes also go through the netascii block producer, which must agree with
// the whole-buffer conversion whatever the block size.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/memory.h"
#include "tftp/netascii.h"
#include "tftp/packet.h"
#include "tftp/path.h"

using namespace ingot::tftp;

namespace {

void CheckPath(std::string_view name) {
  auto p = NormalizePath(name);
  if (!p.ok()) return;
  const std::string& s = *p;
  // Root-relative, '/'-separated, no empty, "." or ".." component, no backslash, no NUL.
  if (s.empty() || s.front() == '/' || s.back() == '/') __builtin_trap();
  if (s.find('\\') != std::string::npos || s.find('\0') != std::string::npos) __builtin_trap();
  if (s.find("//") != std::string::npos) __builtin_trap();
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    std::string_view c = std::string_view(s).substr(
        start, slash == std::string::npos ? std::string::npos : slash - start);
    if (c == ".." || c == ".") __builtin_trap();
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
}

void CheckNetascii(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const size_t blksize = 1 + data[0] % 64;
  std::vector<uint8_t> bytes(data + 1, data + size);
  const std::vector<uint8_t> want = NetasciiEncode(bytes);
  ingot::io::MemorySource src(bytes);
  NetasciiCheckpoint cp;
  std::vector<uint8_t> out, block(blksize), scratch;
  while (true) {
    auto n = NetasciiFill(src, cp, block, scratch);
    if (!n.ok() || *n > blksize) __builtin_trap();
    out.insert(out.end(), block.begin(), block.begin() + *n);
    if (*n < blksize) break;
    if (out.size() > want.size()) __builtin_trap();
  }
  if (out != want) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> d(data, size);
  auto p = ParsePacket(d);
  if (p.ok() && (p->opcode == Opcode::kRrq || p->opcode == Opcode::kWrq)) {
    const Request& r = p->request;
    if (r.filename.empty() || r.options.size() > kMaxOptions) __builtin_trap();
    (void)ParseMode(r.mode);
    CheckPath(r.filename);
    NegotiationLimits limits{.max_blksize = size > 2 ? 8u + data[size - 1] * 256u : 1468u,
                             .max_windowsize = size > 3 ? data[size - 2] : 64u};
    auto n = Negotiate(r.options, size, limits);
    if (n.ok()) {
      if (n->blksize < kMinBlksize || n->blksize > kMaxBlksize) __builtin_trap();
      if (n->windowsize < 1 || n->windowsize > kMaxWindowsize) __builtin_trap();
      if (n->oack.size() > 4) __builtin_trap();
      std::vector<uint8_t> oack;
      EncodeOack(n->oack, oack);
      auto back = ParsePacket(oack);
      if (!back.ok() || back->oack.size() != n->oack.size()) __builtin_trap();
    }
    // A request re-encoded parses back to itself.
    std::vector<std::pair<std::string, std::string>> opts;
    for (const auto& o : r.options) opts.emplace_back(o.name, o.value);
    std::vector<uint8_t> again;
    EncodeRequest(r.opcode, r.filename, r.mode, opts, again);
    auto q = ParsePacket(again);
    if (!q.ok() || q->request.filename != r.filename || q->request.mode != r.mode ||
        q->request.options.size() != r.options.size()) {
      __builtin_trap();
    }
  }
  CheckNetascii(data, size);
  return 0;
}
