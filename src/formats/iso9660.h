// An ISO 9660 file-tree reader over a ByteSource: the index the boot file service serves files
// from, straight out of the ISO (no mount, no extraction, no root). Each file is a list of extents,
// byte ranges of the ISO file itself, so a server can sendfile() them in order.
//
// Specs (read, not copied from other readers):
//   - ECMA-119 4th ed. (ISO 9660): volume descriptors (8), directory records (9.1), multi-extent
//   files
//     (6.5.1, flag bit 7), both-byte-order fields (7.2.3, 7.3.3).
//   - Joliet (Microsoft, 1995): a Supplementary Volume Descriptor whose escape sequences are %/@,
//   %/C or
//     %/E; identifiers are UCS-2 big-endian (decoded here as UTF-16, to UTF-8).
//   - IEEE P1281 SUSP 1.12 (SP, CE, ST, ER) and IEEE P1282 RRIP 1.12 / RRIP_1991A (PX, NM, SL, TF,
//   CL,
//     PL, RE; SF and ZF are refused).
//   - ECMA-167 3rd ed. / OSTA UDF 2.01, for images with no ISO 9660 volume (UDF-only): the Volume
//     Recognition Sequence (BEA01, NSR02/NSR03, TEA01), anchor, partition and logical volume
//     descriptors, the file set, (extended) file entries with short/long/embedded allocation
//     descriptors, file identifiers. An ISO/UDF bridge is read through its ISO 9660 side.
//
// Which names: Rock Ridge when the primary tree carries it (SP in the root's "." record and an RRIP
// ER or PX), else Joliet when a Joliet SVD exists, else plain ISO 9660 identifiers (";version" and
// a trailing '.' stripped, case kept). Names compare exactly as the index stores them. Deep trees:
// a Rock Ridge CL entry is followed to the relocated directory, the RE original is hidden, and so
// is a relocation directory (rr_moved) at the root that holds nothing else. Not served (skipped):
// associated files, and devices, FIFOs and sockets.
//
// Hostile input is refused at Open() with a Status naming the rule ("iso9660: ..."); whatever opens
// satisfies these invariants:
//   - every extent of every file lies inside the source; no file's extents overlap each other or
//   any
//     directory extent; directory extents never overlap one another (so the directory graph has no
//     cycles, and no directory is read twice);
//   - every name is non-empty, at most kMaxNameBytes, holds no '/' and no NUL, and is neither "."
//   nor
//     ".."; names within a directory are unique;
//   - the tree is at most Options::max_depth deep and holds at most Options::max_entries entries;
//   the
//     work done at Open() is bounded by the source size plus Options::max_continuation_bytes.
// Files may share extents (hard links and deduplicated content do, legitimately).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "io/byte_source.h"

namespace ingot::formats::iso9660 {

// A byte range of the ISO file.
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;  // >= 1
  bool operator==(const Extent&) const = default;
};

enum class EntryType { kFile, kDirectory, kSymlink };

struct Entry {
  std::string name;  // the last path component; "" for the root
  EntryType type = EntryType::kFile;
  // File: its length in bytes (the sum of its extents). Symlink: the length of its target.
  // Directory: 0.
  uint64_t size = 0;
  // Permission bits (07777): Rock Ridge PX when present, else 0444 for files and 0555 for
  // directories.
  uint32_t mode = 0;
  uint32_t uid = 0, gid = 0;  // Rock Ridge PX, else 0
  int64_t mtime = 0;  // seconds since the Unix epoch, UTC (RR TF modify time, else the record's)
  std::string symlink_target;  // kSymlink only, as recorded: never resolved or followed here
  // kFile only, in file order; empty for an empty file. Sections that follow each other on disk (as
  // the 4 GiB - 2 KiB sections of a large multi-extent file usually do) are merged into one extent.
  std::vector<Extent> extents;
};

enum class NameSource { kRockRidge, kJoliet, kPlain, kUdf };
std::string_view NameSourceName(NameSource s);  // "rock-ridge", "joliet", "iso9660", "udf"

struct Options {
  uint64_t max_entries = 1'000'000;  // files, directories and symlinks, the root included
  uint32_t max_depth = 128;          // directory levels below the root
  // Approximate memory of the index (entries, names, targets, extents).
  uint64_t max_index_bytes = 256ull << 20;
  // Rock Ridge continuation areas (CE) read over the whole tree; each record may follow at most 32.
  uint64_t max_continuation_bytes = 64ull << 20;
  uint64_t max_directory_bytes = 64ull << 20;  // one directory's extent
};

inline constexpr size_t kMaxNameBytes = 1024;
inline constexpr size_t kMaxSymlinkBytes = 4095;

// The index of one ISO's tree. Built once by Open(); immutable afterwards, so every const method
// may be called from several threads at once. It keeps no reference to the source: extents are
// offsets into whatever ByteSource holds the same bytes.
class Tree {
 public:
  // Reads the volume descriptors and the whole directory tree of `source`. Fails with:
  //   kInvalidArgument  not an ISO 9660 volume (no primary volume descriptor at 32 KiB)
  //   kUnsupported      interleaved files, zisofs/sparse Rock Ridge files; UDF-only images beyond
  //   what
  //                     the UDF reader takes (see iso9660.cc: type 1 partitions, 2048-byte blocks)
  //   kRefused          a hostile or broken structure (see the invariants above), or over a bound
  //   kIoError...       whatever the source's reads fail with
  static Result<std::unique_ptr<Tree>> Open(io::ByteSource& source, const Options& options = {});

  // The entry at `path` ("/", "", "a/b", "/a//b/" all work; "." components are skipped). Symlinks
  // are never followed, not even in the middle of a path. Fails with kInvalidArgument for a ".."
  // component or a NUL, kNotFound when there is no such entry or a middle component is not a
  // directory. The pointer lives as long as the Tree.
  Result<const Entry*> Lookup(std::string_view path) const;

  // The children of the directory at `path`, sorted by name (bytewise). kNotFound for a
  // non-directory.
  Result<std::vector<const Entry*>> ListDir(std::string_view path) const;

  // Visits every entry below the root (not the root itself) depth-first, parents before children,
  // siblings in name order, with its path ("a/b/c", no leading '/'). Stops at the first non-OK
  // Status `visit` returns and returns it.
  using Visitor = std::function<Status(const std::string& path, const Entry& entry)>;
  Status Walk(const Visitor& visit) const;

  NameSource names() const { return names_; }
  size_t entry_count() const { return nodes_.size(); }
  uint32_t block_size() const { return block_size_; }
  const std::string& volume_id() const { return volume_id_; }
  // True when the image also carries a UDF Volume Recognition Sequence (an ISO/UDF bridge).
  bool has_udf() const { return has_udf_; }

 private:
  friend class IndexBuilder;  // the builders in iso9660.cc
  struct Node {
    Entry entry;
    std::vector<uint32_t> children;  // indexes into nodes_, sorted by name
  };
  Tree() = default;
  Result<uint32_t> Find(std::string_view path) const;

  std::vector<Node> nodes_;  // nodes_[0] is the root
  NameSource names_ = NameSource::kPlain;
  uint32_t block_size_ = 2048;
  std::string volume_id_;
  bool has_udf_ = false;
};

// Reads up to buf.size() bytes of `file` (a kFile entry of a Tree over `source`) at `offset` within
// the file, following its extents. Returns how many were read: fewer only at the end of the file.
// For callers that cannot sendfile (tests, TFTP).
Result<size_t> ReadFile(io::ByteSource& source, const Entry& file, uint64_t offset,
                        std::span<uint8_t> buf);

}  // namespace ingot::formats::iso9660
