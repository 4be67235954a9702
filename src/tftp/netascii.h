// RFC 1350 netascii on the fly: LF -> CR LF, CR -> CR NUL, every other byte as is. The expanded
// stream is cut into blocks; a block can be produced again (retransmission, a window resent from an
// earlier ACK) from a checkpoint kept per block, so nothing but the checkpoints of unacknowledged
// blocks is held in memory.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "common/result.h"
#include "io/byte_source.h"

namespace ingot::tftp {

// Where block k of the expanded stream starts in the source.
struct NetasciiCheckpoint {
  uint64_t source_offset = 0;
  // The second byte of an expanded pair that did not fit in the previous block (LF or NUL); -1:
  // none.
  int pending = -1;
};

// Expands source bytes into `out` starting from `cp`; returns how many bytes of `out` were filled
// and advances `cp` to where the next byte comes from. Fills `out` completely unless the source
// ends. `scratch` is reused between calls (at most out.size() bytes).
Result<size_t> NetasciiFill(io::ByteSource& source, NetasciiCheckpoint& cp, std::span<uint8_t> out,
                            std::vector<uint8_t>& scratch);

// Expands a whole buffer (tests and the fuzz target's cross-check).
std::vector<uint8_t> NetasciiEncode(std::span<const uint8_t> in);

}  // namespace ingot::tftp
