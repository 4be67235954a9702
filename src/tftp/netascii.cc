#include "tftp/netascii.h"

#include <algorithm>

namespace ingot::tftp {

Result<size_t> NetasciiFill(io::ByteSource& source, NetasciiCheckpoint& cp, std::span<uint8_t> out,
                            std::vector<uint8_t>& scratch) {
  size_t filled = 0;
  if (cp.pending >= 0 && filled < out.size()) {
    out[filled++] = static_cast<uint8_t>(cp.pending);
    cp.pending = -1;
  }
  while (filled < out.size()) {
    // Each source byte expands to at least one output byte: never read more than the room left.
    const size_t want = out.size() - filled;
    scratch.resize(want);
    INGOT_ASSIGN_OR_RETURN(size_t got, source.ReadAt(cp.source_offset, scratch));
    if (got == 0) break;
    size_t used = 0;
    while (used < got && filled < out.size()) {
      const uint8_t b = scratch[used++];
      if (b == '\n' || b == '\r') {
        out[filled++] = '\r';
        const uint8_t second = b == '\n' ? '\n' : '\0';
        if (filled < out.size()) {
          out[filled++] = second;
        } else {
          cp.pending = second;
        }
      } else {
        out[filled++] = b;
      }
    }
    cp.source_offset += used;
  }
  return filled;
}

std::vector<uint8_t> NetasciiEncode(std::span<const uint8_t> in) {
  std::vector<uint8_t> out;
  out.reserve(in.size());
  for (uint8_t b : in) {
    if (b == '\n') {
      out.push_back('\r');
      out.push_back('\n');
    } else if (b == '\r') {
      out.push_back('\r');
      out.push_back('\0');
    } else {
      out.push_back(b);
    }
  }
  return out;
}

}  // namespace ingot::tftp
