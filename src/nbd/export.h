// What the NBD server serves: an Export (a disk of fixed size) and the ExportResolver that decides,
// per connection, which export a name means for a client address. The server knows nothing of
// images or volumes; deploy/ implements these over OS volumes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::nbd {

// What a range of an export holds (base:allocation).
struct ExportExtent {
  uint64_t length = 0;
  bool hole = false;  // not allocated in this export (NBD_STATE_HOLE)
  bool zero = false;  // reads as zeros (NBD_STATE_ZERO)
};

// A disk served over NBD.
// Thread safety: Read, BlockStatus and Size may be called from several connections at once, and
// beside the one writer. The server calls Write/Trim/WriteZeroes from one connection at a time (the
// export's writer); Flush may come from any connection.
// Ranges are always inside [0, Size()); lengths are at most the server's max payload for Read/Write.
class Export {
 public:
  virtual ~Export() = default;
  virtual uint64_t Size() const = 0;
  virtual bool read_only() const = 0;
  // Fills all of `buf` from `offset`.
  virtual Status Read(uint64_t offset, std::span<uint8_t> buf) = 0;
  // `fua`: durable before returning (as if Flush followed).
  virtual Status Write(uint64_t offset, std::span<const uint8_t> data, bool fua) = 0;
  // Makes every completed write durable.
  virtual Status Flush() = 0;
  // The range's contents become unspecified (we make whole blocks read as zeros and free them).
  virtual Status Trim(uint64_t offset, uint64_t length, bool fua) = 0;
  // The range reads as zeros. `may_punch`: storage may be freed (no NBD_CMD_FLAG_NO_HOLE).
  virtual Status WriteZeroes(uint64_t offset, uint64_t length, bool may_punch, bool fua) = 0;
  // Describes the range from `offset` (< Size()): one extent of length in [1, max_length].
  virtual Result<ExportExtent> BlockStatus(uint64_t offset, uint64_t max_length) = 0;

  // Where the bytes from `offset` live verbatim in a file, so the server can sendfile(2) them
  // (one copy, page cache to socket, instead of two): a descriptor valid while the export lives,
  // the file offset, and a length in [1, max_length]. nullopt: use Read for this range.
  struct FileRange {
    int fd = -1;
    uint64_t file_offset = 0;
    uint64_t length = 0;
  };
  virtual std::optional<FileRange> MapToFile(uint64_t offset, uint64_t max_length) {
    return std::nullopt;
  }
};

// Resolves export names for the server. Called from connection threads, concurrently.
class ExportResolver {
 public:
  virtual ~ExportResolver() = default;
  // The export `name` for a client at `peer` (numeric address, "10.0.0.5" or "fe80::1").
  // Refusals: kNotFound (no such export, or not visible to this client — the same answer, so names
  // do not leak), kPermissionDenied, kUnavailable (e.g. detached). The message reaches the client.
  // Connections to the same export should get the same Export object, so they see each other's
  // writes; the server drops its reference when the connection ends.
  virtual Result<std::shared_ptr<Export>> Resolve(std::string_view name, std::string_view peer) = 0;
  // The names `peer` may see in NBD_OPT_LIST.
  virtual std::vector<std::string> List(std::string_view peer) = 0;
};

}  // namespace ingot::nbd
