// qcow2 reader (versions 2 and 3), following qemu's docs/interop/qcow2.txt (see qcow2_format.h):
// zlib- and zstd-compressed clusters, extended L2 entries (subclusters), zero clusters; internal
// snapshots are listed, never read.
//
// Safety rules (each refusal names one, with the offending value):
//   qcow2.backing_file, qcow2.data_file        the image would make us open another file
//   qcow2.encryption                           encrypted images are not readable here
//   qcow2.incompatible_features                an unknown bit: the spec says "must fail to open"
//   qcow2.version, qcow2.cluster_bits, qcow2.header_length, qcow2.refcount_order,
//   qcow2.compression_type qcow2.size, qcow2.l1_size                  sizes that overflow or do not
//   match each other qcow2.l1_table, qcow2.refcount_table, qcow2.snapshots, qcow2.l2_table,
//   qcow2.cluster
//                                              tables or clusters past the end, misaligned, or
//                                              overlapping the header cluster
// Inspect scans every L2 table (bounded memory: one table at a time) so a hostile entry is refused
// before anyone reads the image; the reader checks each entry again when it uses it.
#include <zlib.h>
#include <zstd.h>
#ifdef INGOT_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "formats/driver.h"
#include "formats/host_map.h"
#include "formats/mapped_image.h"
#include "formats/qcow2_format.h"
#include "formats/views.h"

namespace ingot::formats {

namespace {

using mapped::Be16;
using mapped::Be32;
using mapped::Be64;
using mapped::Within;
using namespace qcow2;  // NOLINT: the spec's constants

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}
std::string Num(uint64_t v) { return std::to_string(v); }

struct Header {
  uint32_t version = 0;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = 0;
  uint64_t size = 0;
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible = 0;
  uint64_t compatible = 0;
  uint64_t autoclear = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = kV2HeaderLength;
  uint8_t compression_type = kCompressionZlib;

  uint64_t cluster_size() const { return 1ull << cluster_bits; }
  bool extended_l2() const { return incompatible & kIncompatExtendedL2; }
  uint32_t l2_entry_bytes() const { return extended_l2() ? 16 : 8; }
  uint64_t l2_entries() const { return cluster_size() / l2_entry_bytes(); }
};

// Everything the reader needs, learnt at open.
struct Layout {
  Header h;
  std::vector<uint64_t> l1;  // raw L1 entries
  std::string backing_format;
};

// Parses the fixed header from the first bytes of the file (pure: no I/O) and checks the rules that
// need only the header and the file's length.
Result<Header> ParseHeader(std::span<const uint8_t> b, uint64_t file_size) {
  if (b.size() < kV2HeaderLength || std::memcmp(b.data(), kMagic, 4) != 0) {
    return InvalidArgument("qcow2.magic: not a qcow2 header");
  }
  Header h;
  h.version = Be32(&b[kVersionOff]);
  h.backing_file_offset = Be64(&b[kBackingFileOffsetOff]);
  h.backing_file_size = Be32(&b[kBackingFileSizeOff]);
  h.cluster_bits = Be32(&b[kClusterBitsOff]);
  h.size = Be64(&b[kSizeOff]);
  h.crypt_method = Be32(&b[kCryptMethodOff]);
  h.l1_size = Be32(&b[kL1SizeOff]);
  h.l1_table_offset = Be64(&b[kL1TableOffsetOff]);
  h.refcount_table_offset = Be64(&b[kRefcountTableOffsetOff]);
  h.refcount_table_clusters = Be32(&b[kRefcountTableClustersOff]);
  h.nb_snapshots = Be32(&b[kNbSnapshotsOff]);
  h.snapshots_offset = Be64(&b[kSnapshotsOffsetOff]);
  if (h.version != 2 && h.version != 3) return Refused("qcow2.version: " + Num(h.version));
  if (h.version == 3) {
    if (b.size() < kV3MinHeaderLength)
      return InvalidArgument("qcow2.header_length: header truncated");
    h.incompatible = Be64(&b[kIncompatibleOff]);
    h.compatible = Be64(&b[kCompatibleOff]);
    h.autoclear = Be64(&b[kAutoclearOff]);
    h.refcount_order = Be32(&b[kRefcountOrderOff]);
    h.header_length = Be32(&b[kHeaderLengthOff]);
    if (h.header_length < kV3MinHeaderLength || h.header_length % 8 != 0) {
      return Refused("qcow2.header_length: " + Num(h.header_length));
    }
    if (h.header_length > kCompressionTypeOff) {
      if (b.size() <= kCompressionTypeOff) {
        return InvalidArgument("qcow2.header_length: header truncated");
      }
      h.compression_type = b[kCompressionTypeOff];
    }
  }
  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
    return Refused("qcow2.cluster_bits: " + Num(h.cluster_bits));
  }
  const uint64_t cs = h.cluster_size();
  if (h.header_length > cs) return Refused("qcow2.header_length: " + Num(h.header_length));
  if (h.refcount_order > 6) return Refused("qcow2.refcount_order: " + Num(h.refcount_order));
  if (h.incompatible & ~kIncompatKnown) {
    return Refused("qcow2.incompatible_features: unknown bits " +
                   Hex(h.incompatible & ~kIncompatKnown));
  }
  if ((h.incompatible & kIncompatDataFile) || (h.autoclear & kAutoclearRawDataFile)) {
    return Refused(
        "qcow2.data_file: the image keeps its data in an external file (incompatible "
        "features " +
        Hex(h.incompatible) + ")");
  }
  if (h.crypt_method != 0) return Refused("qcow2.encryption: crypt_method " + Num(h.crypt_method));
  if (h.incompatible & kIncompatCompressionType) {
    if (h.compression_type != kCompressionZlib && h.compression_type != kCompressionZstd) {
      return Refused("qcow2.compression_type: " + Num(h.compression_type));
    }
  } else if (h.compression_type != kCompressionZlib) {
    return Refused("qcow2.compression_type: " + Num(h.compression_type) +
                   " without the compression-type feature bit");
  }
  if (h.extended_l2() && h.cluster_bits < 14) {
    return Refused("qcow2.cluster_bits: " + Num(h.cluster_bits) + " with extended L2 entries");
  }
  // Sizes: the virtual size must be addressable by the L1 table it declares, with no overflow.
  if (h.size > (1ull << 62)) return Refused("qcow2.size: " + Num(h.size) + " overflows");
  const uint64_t bytes_per_l2 = h.l2_entries() << h.cluster_bits;
  const uint64_t l1_needed = (h.size + bytes_per_l2 - 1) / bytes_per_l2;
  if (h.l1_size < l1_needed) {
    return Refused("qcow2.l1_size: " + Num(h.l1_size) + " entries cannot map virtual size " +
                   Num(h.size) + " (needs " + Num(l1_needed) + ")");
  }
  const uint64_t l1_bytes = uint64_t(h.l1_size) * 8;
  if (l1_bytes > mapped::kMaxTableBytes) return Refused("qcow2.l1_size: " + Num(h.l1_size));
  if (h.l1_size > 0) {
    if (h.l1_table_offset % cs != 0 || h.l1_table_offset < cs ||
        !Within(h.l1_table_offset, l1_bytes, file_size)) {
      return Refused(
          "qcow2.l1_table: offset " + Num(h.l1_table_offset) + " (" + Num(l1_bytes) +
          " bytes) is misaligned, overlaps the header or runs past the end of the file (" +
          Num(file_size) + " bytes)");
    }
  }
  // qemu 7.2 refuses to open an image without a refcount table, or with tables above its limits
  // (QCOW_MAX_REFTABLE_SIZE 8 MiB, QCOW_MAX_L1_SIZE 32 MiB); we refuse them the same way.
  if (h.refcount_table_clusters == 0) {
    return Refused("qcow2.refcount_table_clusters: 0 (the image has no refcount table)");
  }
  if (uint64_t(h.refcount_table_clusters) > (8ull << 20) / cs) {
    return Refused("qcow2.refcount_table_clusters: " + Num(h.refcount_table_clusters) +
                   " clusters exceed qemu's 8 MiB refcount table limit");
  }
  if (l1_bytes > (32ull << 20)) {
    return Refused("qcow2.l1_size: " + Num(h.l1_size) + " entries exceed qemu's 32 MiB L1 limit");
  }
  uint64_t rt_bytes;
  if (!mapped::Mul(h.refcount_table_clusters, cs, &rt_bytes) || h.refcount_table_offset % cs != 0 ||
      h.refcount_table_offset < cs || !Within(h.refcount_table_offset, rt_bytes, file_size)) {
    return Refused("qcow2.refcount_table: offset " + Num(h.refcount_table_offset) + " (" +
                   Num(h.refcount_table_clusters) +
                   " clusters) is misaligned, overlaps the header "
                   "or runs past the end of the file (" +
                   Num(file_size) + " bytes)");
  }
  if (h.l1_size > 0 && mapped::Overlaps(h.l1_table_offset, l1_bytes, h.refcount_table_offset, rt_bytes)) {
    return Refused("qcow2.l1_table: offset " + Num(h.l1_table_offset) + " (" + Num(l1_bytes) +
                   " bytes) overlaps the refcount table at " + Num(h.refcount_table_offset));
  }
  if (h.nb_snapshots > 0 &&
      (mapped::Overlaps(h.snapshots_offset, 1, h.refcount_table_offset, rt_bytes) ||
       (h.l1_size > 0 && mapped::Overlaps(h.snapshots_offset, 1, h.l1_table_offset, l1_bytes)))) {
    return Refused("qcow2.snapshots: table offset " + Num(h.snapshots_offset) +
                   " lies inside the L1 or refcount table");
  }
  if (h.nb_snapshots > kMaxSnapshots) return Refused("qcow2.snapshots: " + Num(h.nb_snapshots));
  if (h.nb_snapshots > 0 && (h.snapshots_offset % cs != 0 || h.snapshots_offset < cs ||
                             h.snapshots_offset >= file_size)) {
    return Refused("qcow2.snapshots: table offset " + Num(h.snapshots_offset) +
                   " is misaligned, overlaps the header or lies past the end of the file");
  }
  return h;
}

// Reads the backing file name (for the refusal message) and walks the header extensions.
Status CheckHeaderRegion(io::ByteSource& file, const Header& h, std::string* backing_format) {
  const uint64_t head_len = std::min<uint64_t>(h.cluster_size(), file.Size());
  std::vector<uint8_t> head(head_len);
  INGOT_RETURN_IF_ERROR(io::ReadExact(file, 0, head));
  if (h.backing_file_offset != 0) {
    std::string name = "?";
    if (h.backing_file_size <= kMaxBackingFileSize &&
        Within(h.backing_file_offset, h.backing_file_size, head_len)) {
      name.assign(reinterpret_cast<const char*>(head.data() + h.backing_file_offset),
                  h.backing_file_size);
    }
    return Refused("qcow2.backing_file: '" + name + "' (offset " + Num(h.backing_file_offset) +
                   ")");
  }
  uint64_t pos = h.header_length;
  while (pos + 8 <= head_len) {
    const uint32_t type = Be32(&head[pos]);
    const uint32_t len = Be32(&head[pos + 4]);
    if (type == kExtEnd) break;
    const uint64_t data = pos + 8;
    if (!Within(data, len, head_len)) {
      return Refused("qcow2.header_extension: extension " + Hex(type) + " of " + Num(len) +
                     " bytes runs past the header cluster");
    }
    std::string value(reinterpret_cast<const char*>(head.data() + data), len);
    switch (type) {
      case kExtDataFile:
        return Refused("qcow2.data_file: '" + value + "'");
      case kExtEncryption:
        return Refused("qcow2.encryption: full-disk encryption header present");
      case kExtBackingFormat:
        *backing_format = value;
        break;
      default:
        break;  // feature names, bitmaps, unknown: harmless for reading
    }
    pos = data + ((uint64_t(len) + 7) & ~uint64_t{7});
  }
  return Status::Ok();
}

// The metadata a table or data cluster may never share bytes with: the L1 table and the refcount
// table (the header cluster is ruled out separately).
const char* OverlapsMetadata(const Header& h, uint64_t off, uint64_t len) {
  if (h.l1_size > 0 && mapped::Overlaps(off, len, h.l1_table_offset, uint64_t(h.l1_size) * 8)) {
    return "the L1 table";
  }
  if (mapped::Overlaps(off, len, h.refcount_table_offset,
                       uint64_t(h.refcount_table_clusters) << h.cluster_bits)) {
    return "the refcount table";
  }
  return nullptr;
}

// Checks one L1 entry; returns the L2 table's offset (0: none).
Result<uint64_t> L2OffsetOf(const Header& h, uint64_t entry, uint64_t index, uint64_t file_size) {
  if (entry & kL1ReservedMask) {
    return Refused("qcow2.l2_table: L1 entry " + Num(index) + " has reserved bits set (" +
                   Hex(entry) + ")");
  }
  const uint64_t off = entry & kOffsetMask;
  if (off == 0) return uint64_t{0};
  const uint64_t cs = h.cluster_size();
  if (off % cs != 0 || off < cs || !Within(off, cs, file_size)) {
    return Refused("qcow2.l2_table: L1 entry " + Num(index) + " points at " + Num(off) +
                   ", misaligned, in the header cluster or past the end of the file (" +
                   Num(file_size) + " bytes)");
  }
  if (const char* what = OverlapsMetadata(h, off, cs)) {
    return Refused("qcow2.l2_table: L1 entry " + Num(index) + " points at " + Num(off) +
                   ", inside " + what);
  }
  return off;
}

// What one cluster (or subcluster, with extended L2) of the virtual disk is.
struct Unit {
  HostRun::Kind kind = HostRun::Kind::kZero;
  uint64_t host = 0;  // kFile: host offset of the unit; kOther: the compressed entry itself
};

// Decodes L2 entry `i` of `table` (already read) at subcluster `sub` (0 without extended L2),
// checking it. `vcluster` is only for messages.
Result<Unit> DecodeL2(const Header& h, const uint8_t* table, uint64_t i, uint32_t sub,
                      uint64_t file_size, uint64_t vcluster) {
  const uint8_t* e = table + i * h.l2_entry_bytes();
  const uint64_t entry = Be64(e);
  const uint64_t cs = h.cluster_size();
  auto bad = [&](const std::string& why) {
    return Refused("qcow2.cluster: virtual cluster " + Num(vcluster) + " (L2 entry " + Hex(entry) +
                   ") " + why);
  };
  if (entry & kCompressed) {
    if (h.extended_l2() && Be64(e + 8) != 0)
      return bad("is compressed but has a subcluster bitmap");
    const uint32_t xbits = CompressedOffsetBits(h.cluster_bits);
    const uint64_t host = entry & ((1ull << xbits) - 1);
    if (host < cs || host >= file_size) {
      return bad("points at " + Num(host) + ", in the header cluster or past the end of the file");
    }
    if (const char* what = OverlapsMetadata(h, host, 1)) {
      return bad("points at " + Num(host) + ", inside " + what);
    }
    return Unit{HostRun::Kind::kOther, entry};
  }
  const uint64_t host = entry & kOffsetMask;
  if (entry & kL2StandardReservedMask) return bad("has reserved bits set");
  if (host != 0 && (host % cs != 0 || host < cs || host >= file_size)) {
    return bad("points at " + Num(host) +
               ", misaligned, in the header cluster or past the end of "
               "the file (" +
               Num(file_size) + " bytes)");
  }
  if (host != 0) {
    if (const char* what = OverlapsMetadata(h, host, cs)) {
      return bad("points at " + Num(host) + ", inside " + what);
    }
  }
  if (h.extended_l2()) {
    if (entry & kZeroFlag) return bad("sets bit 0, reserved with extended L2 entries");
    const uint64_t bitmap = Be64(e + 8);
    const uint32_t alloc = uint32_t(bitmap), zero = uint32_t(bitmap >> 32);
    if (alloc & zero) return bad("marks a subcluster both allocated and zero");
    if (host == 0 && alloc != 0) return bad("allocates subclusters without a host cluster");
    if (alloc & (1u << sub)) {
      return Unit{HostRun::Kind::kFile, host + uint64_t(sub) * (cs / kSubclustersPerCluster)};
    }
    return Unit{HostRun::Kind::kZero, 0};
  }
  if (host == 0 || (entry & kZeroFlag)) return Unit{HostRun::Kind::kZero, 0};
  return Unit{HostRun::Kind::kFile, host};
}

// Inflates one compressed cluster's bytes into `out` (exactly one cluster).
Status Decompress(uint8_t type, std::span<const uint8_t> in, std::span<uint8_t> out) {
  if (type == kCompressionZlib) {
#ifdef INGOT_HAVE_LIBDEFLATE
    // Whole-buffer inflate, much faster than zlib's. It wants a complete stream; the rare stream
    // that fills the cluster without its end marker (which qemu accepts) falls through to zlib.
    thread_local libdeflate_decompressor* d = libdeflate_alloc_decompressor();
    size_t in_used = 0, out_got = 0;
    if (d &&
        libdeflate_deflate_decompress_ex(d, in.data(), in.size(), out.data(), out.size(), &in_used,
                                         &out_got) == LIBDEFLATE_SUCCESS &&
        out_got == out.size()) {
      return Status::Ok();
    }
#endif
    z_stream z{};
    if (inflateInit2(&z, -12) != Z_OK) return Internal("inflateInit2 failed");
    z.next_in = const_cast<uint8_t*>(in.data());
    z.avail_in = uInt(in.size());
    z.next_out = out.data();
    z.avail_out = uInt(out.size());
    const int ret = inflate(&z, Z_FINISH);
    const bool full = z.avail_out == 0;
    inflateEnd(&z);
    // The sectors holding a compressed cluster may carry trailing bytes, so a full output buffer is
    // success even when the stream's end marker was not reached.
    if (full && (ret == Z_STREAM_END || ret == Z_BUF_ERROR || ret == Z_OK)) return Status::Ok();
    return Corruption("qcow2.compressed_cluster: zlib data does not inflate to one cluster");
  }
  thread_local ZSTD_DCtx* dctx = ZSTD_createDCtx();
  if (!dctx) return Internal("ZSTD_createDCtx failed");
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  while (ob.pos < ob.size) {
    const size_t ret = ZSTD_decompressStream(dctx, &ob, &ib);
    if (ZSTD_isError(ret)) {
      return Corruption(std::string("qcow2.compressed_cluster: zstd: ") + ZSTD_getErrorName(ret));
    }
    if (ret == 0 || ib.pos == ib.size) break;  // frame done, or input exhausted
  }
  if (ob.pos != ob.size) {
    return Corruption("qcow2.compressed_cluster: zstd data does not decompress to one cluster");
  }
  return Status::Ok();
}

class Qcow2Image final : public DiskImage, public HostMapped {
 public:
  Qcow2Image(io::ByteSource& file, Layout layout) : file_(file), l_(std::move(layout)) {
    const Header& h = l_.h;
    unit_bits_ = h.extended_l2() ? h.cluster_bits - 5 : h.cluster_bits;
    // Keep at most ~8 MiB of L2 tables (at least 4): conversion walks the disk in order, so a small
    // cache hits almost always and memory does not grow with the image.
    max_cached_ = std::max<size_t>(4, (8u << 20) >> h.cluster_bits);
  }

  uint64_t Size() const override { return l_.h.size; }

  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override {
    if (offset >= Size()) return size_t{0};
    const uint64_t want = std::min<uint64_t>(buf.size(), Size() - offset);
    uint64_t done = 0;
    while (done < want) {
      INGOT_ASSIGN_OR_RETURN(HostRun run, MapToHost(offset + done, want - done));
      std::span<uint8_t> out = buf.subspan(done, run.length);
      switch (run.kind) {
        case HostRun::Kind::kZero:
          std::memset(out.data(), 0, out.size());
          break;
        case HostRun::Kind::kFile:
          INGOT_RETURN_IF_ERROR(ReadHost(run.file_offset, out));
          break;
        case HostRun::Kind::kOther:
          INGOT_RETURN_IF_ERROR(ReadCompressed(offset + done, run.file_offset, out));
          break;
      }
      done += run.length;
    }
    return size_t(want);
  }

  Result<Extent> BlockStatus(uint64_t offset, uint64_t max_length) override {
    if (offset >= Size() || max_length == 0) {
      return OutOfRange("block status at " + Num(offset) + " outside virtual size " + Num(Size()));
    }
    const uint64_t want = std::min<uint64_t>(max_length, Size() - offset);
    Extent e{offset, 0, false};
    for (int i = 0; i < 4096 && e.length < want; ++i) {
      INGOT_ASSIGN_OR_RETURN(HostRun run, MapToHost(offset + e.length, want - e.length));
      const bool zero = run.kind == HostRun::Kind::kZero;
      if (e.length == 0) {
        e.zero = zero;
      } else if (zero != e.zero) {
        break;
      }
      e.length += run.length;
    }
    return e;
  }

  // One run of units of the same kind, inside one L2 table; kFile runs are contiguous in the file;
  // a kOther run is one compressed cluster (file_offset carries its L2 entry).
  Result<HostRun> MapToHost(uint64_t offset, uint64_t max_length) override {
    const Header& h = l_.h;
    const uint64_t cs = h.cluster_size();
    const uint64_t unit = 1ull << unit_bits_;
    max_length = std::min<uint64_t>(max_length, Size() - offset);
    const uint64_t vcluster = offset >> h.cluster_bits;
    const uint64_t l1_index = vcluster / h.l2_entries();
    // The run may not leave this L2 table's range.
    const uint64_t table_end_v = (l1_index + 1) * h.l2_entries() * cs;
    const uint64_t limit = std::min<uint64_t>(max_length, table_end_v - offset);
    if (l1_index >= l_.l1.size()) return HostRun{HostRun::Kind::kZero, limit, 0};
    INGOT_ASSIGN_OR_RETURN(uint64_t l2_off, L2OffsetOf(h, l_.l1[l1_index], l1_index, file_.Size()));
    if (l2_off == 0) return HostRun{HostRun::Kind::kZero, limit, 0};
    INGOT_ASSIGN_OR_RETURN(std::shared_ptr<const std::vector<uint8_t>> table, L2Table(l2_off));
    const uint8_t* t = table->data();

    auto unit_at = [&](uint64_t voff) -> Result<Unit> {
      const uint64_t c = voff >> h.cluster_bits;
      const uint32_t sub = h.extended_l2() ? uint32_t((voff & (cs - 1)) >> unit_bits_) : 0;
      return DecodeL2(h, t, c % h.l2_entries(), sub, file_.Size(), c);
    };
    INGOT_ASSIGN_OR_RETURN(Unit first, unit_at(offset));
    const uint64_t in_unit = offset & (unit - 1);
    if (first.kind == HostRun::Kind::kOther) {
      return HostRun{HostRun::Kind::kOther, std::min<uint64_t>(limit, cs - (offset & (cs - 1))),
                     first.host};
    }
    uint64_t len = std::min<uint64_t>(limit, unit - in_unit);
    uint64_t next_host = first.host + unit;
    while (len < limit) {
      INGOT_ASSIGN_OR_RETURN(Unit u, unit_at(offset + len));
      if (u.kind != first.kind) break;
      if (u.kind == HostRun::Kind::kFile && u.host != next_host) break;
      len += std::min<uint64_t>(unit, limit - len);
      next_host += unit;
    }
    return HostRun{first.kind, len, first.kind == HostRun::Kind::kFile ? first.host + in_unit : 0};
  }

  io::ByteSource& host_file() override { return file_; }

 private:
  // Data clusters whose start lies inside the file may end past it (qemu writes only the
  // subclusters it needs); like qemu, the missing tail reads as zeros.
  Status ReadHost(uint64_t host, std::span<uint8_t> out) {
    INGOT_ASSIGN_OR_RETURN(size_t n, file_.ReadAt(host, out));
    if (n < out.size()) std::memset(out.data() + n, 0, out.size() - n);
    return Status::Ok();
  }

  Status ReadCompressed(uint64_t voff, uint64_t entry, std::span<uint8_t> out) {
    const Header& h = l_.h;
    const uint64_t cs = h.cluster_size();
    const uint32_t xbits = CompressedOffsetBits(h.cluster_bits);
    const uint64_t host = entry & ((1ull << xbits) - 1);
    const uint64_t sectors = ((entry & ~kCompressed & ~kCopied) >> xbits) + 1;
    const uint64_t csize = sectors * 512 - (host & 511);
    thread_local std::vector<uint8_t> in, cluster;
    in.resize(csize);
    INGOT_ASSIGN_OR_RETURN(size_t n, file_.ReadAt(host, in));
    if (n < csize) std::memset(in.data() + n, 0, csize - n);
    cluster.resize(cs);
    INGOT_RETURN_IF_ERROR(
        Decompress(h.compression_type, in, cluster).WithContext("virtual offset " + Num(voff)));
    std::memcpy(out.data(), cluster.data() + (voff & (cs - 1)), out.size());
    return Status::Ok();
  }

  Result<std::shared_ptr<const std::vector<uint8_t>>> L2Table(uint64_t off) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(off);
      if (it != cache_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.second);
        return it->second.first;
      }
    }
    auto table = std::make_shared<std::vector<uint8_t>>(l_.h.cluster_size());
    INGOT_RETURN_IF_ERROR(io::ReadExact(file_, off, *table));
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.count(off) == 0) {
      lru_.push_front(off);
      cache_[off] = {table, lru_.begin()};
      while (cache_.size() > max_cached_) {
        cache_.erase(lru_.back());
        lru_.pop_back();
      }
    }
    return std::shared_ptr<const std::vector<uint8_t>>(table);
  }

  io::ByteSource& file_;
  Layout l_;
  uint32_t unit_bits_;
  size_t max_cached_;
  std::mutex mu_;
  std::list<uint64_t> lru_;
  std::unordered_map<uint64_t, std::pair<std::shared_ptr<const std::vector<uint8_t>>,
                                         std::list<uint64_t>::iterator>>
      cache_;
};

bool IsPartial(io::ByteSource& file) { return dynamic_cast<PartialSource*>(&file) != nullptr; }

// With a streaming inspector only the head and tail of the upload are held: a check that needs
// bytes outside them is left to open time rather than failing inspection.
bool Deferred(const Status& s, bool partial) { return partial && s.code() == Code::kUnavailable; }

Result<Layout> ReadLayout(io::ByteSource& file) {
  uint8_t hb[kV3HeaderLengthWithCompression] = {};
  const uint64_t n = std::min<uint64_t>(sizeof hb, file.Size());
  INGOT_RETURN_IF_ERROR(io::ReadExact(file, 0, std::span<uint8_t>(hb, n)));
  Layout l;
  INGOT_ASSIGN_OR_RETURN(l.h, ParseHeader(std::span<const uint8_t>(hb, n), file.Size()));
  INGOT_RETURN_IF_ERROR(CheckHeaderRegion(file, l.h, &l.backing_format));
  std::vector<uint8_t> l1(uint64_t(l.h.l1_size) * 8);
  Status s = io::ReadExact(file, l.h.l1_table_offset, l1);
  if (Deferred(s, IsPartial(file))) return l;  // L1 unknown: entries are checked when read
  INGOT_RETURN_IF_ERROR(s);
  l.l1.resize(l.h.l1_size);
  for (uint32_t i = 0; i < l.h.l1_size; ++i) {
    l.l1[i] = Be64(&l1[uint64_t(i) * 8]);
    INGOT_RETURN_IF_ERROR(L2OffsetOf(l.h, l.l1[i], i, file.Size()).status());
  }
  return l;
}

Status ReadSnapshots(io::ByteSource& file, const Header& h, std::vector<Snapshot>* out) {
  uint64_t pos = h.snapshots_offset;
  uint64_t total = 0;
  for (uint32_t i = 0; i < h.nb_snapshots; ++i) {
    uint8_t fixed[40];
    if (!Within(pos, sizeof fixed, file.Size())) {
      return Refused("qcow2.snapshots: entry " + Num(i) + " runs past the end of the file");
    }
    INGOT_RETURN_IF_ERROR(io::ReadExact(file, pos, fixed));
    const uint64_t l1_off = Be64(fixed);
    const uint32_t l1_size = Be32(fixed + 8);
    const uint16_t id_size = Be16(fixed + 12), name_size = Be16(fixed + 14);
    const uint32_t date_sec = Be32(fixed + 16);
    const uint32_t vm_state32 = Be32(fixed + 32);
    const uint32_t extra_size = Be32(fixed + 36);
    // Entries are padded to 8 bytes, but the last entry's padding need not be in the file.
    const uint64_t used_len = 40 + uint64_t(extra_size) + id_size + name_size;
    const uint64_t entry_len = (used_len + 7) & ~uint64_t{7};
    total += entry_len;
    if (extra_size > 1024 || total > mapped::kMaxTableBytes ||
        !Within(pos, used_len, file.Size())) {
      return Refused("qcow2.snapshots: entry " + Num(i) + " (" + Num(entry_len) +
                     " bytes) runs past the end of the file or the size bound");
    }
    if (l1_size > 0 && (l1_off % h.cluster_size() != 0 || l1_off < h.cluster_size() ||
                        !Within(l1_off, uint64_t(l1_size) * 8, file.Size()))) {
      return Refused("qcow2.snapshots: snapshot " + Num(i) + " L1 table at " + Num(l1_off) +
                     " is misaligned, in the header cluster or past the end of the file");
    }
    std::vector<uint8_t> rest(used_len - 40);
    INGOT_RETURN_IF_ERROR(io::ReadExact(file, pos + 40, rest));
    Snapshot snap;
    snap.vm_state_size = vm_state32;
    snap.virtual_size = h.size;
    snap.date_sec = date_sec;
    if (extra_size >= 8) snap.vm_state_size = Be64(rest.data());
    if (extra_size >= 16) snap.virtual_size = Be64(rest.data() + 8);
    const char* strs = reinterpret_cast<const char*>(rest.data()) + extra_size;
    snap.id.assign(strs, id_size);
    snap.name.assign(strs + id_size, name_size);
    out->push_back(std::move(snap));
    pos += entry_len;
  }
  return Status::Ok();
}

// Walks every L2 table, checking every entry; notes whether any cluster is compressed.
Status ScanL2Tables(io::ByteSource& file, const Layout& l, bool* any_compressed) {
  const Header& h = l.h;
  std::vector<uint8_t> table(h.cluster_size());
  const uint32_t subs = h.extended_l2() ? kSubclustersPerCluster : 1;
  // Each distinct table is scanned once: L1 entries that all name the same L2 table must not turn a
  // small file into terabytes of reading. Distinct tables are distinct clusters of the file, so the
  // scan reads at most the file's length.
  std::unordered_set<uint64_t> scanned;
  for (uint64_t i = 0; i < l.l1.size(); ++i) {
    INGOT_ASSIGN_OR_RETURN(uint64_t off, L2OffsetOf(h, l.l1[i], i, file.Size()));
    if (off == 0 || !scanned.insert(off).second) continue;
    INGOT_RETURN_IF_ERROR(io::ReadExact(file, off, table));
    for (uint64_t j = 0; j < h.l2_entries(); ++j) {
      const uint64_t vcluster = i * h.l2_entries() + j;
      for (uint32_t s = 0; s < subs; ++s) {
        INGOT_ASSIGN_OR_RETURN(Unit u, DecodeL2(h, table.data(), j, s, file.Size(), vcluster));
        if (u.kind == HostRun::Kind::kOther) {
          *any_compressed = true;
          break;
        }
      }
    }
  }
  return Status::Ok();
}

Result<ImageInfo> InspectQcow2(io::ByteSource& file) {
  const bool partial = IsPartial(file);
  INGOT_ASSIGN_OR_RETURN(Layout l, ReadLayout(file));
  const Header& h = l.h;
  ImageInfo info;
  info.format = Format::kQcow2;
  info.virtual_size = h.size;
  info.actual_size = file.Size();
  info.cluster_size = uint32_t(h.cluster_size());
  const std::string ctype = h.compression_type == kCompressionZstd ? "zstd" : "zlib";
  Status s = ReadSnapshots(file, h, &info.snapshots);
  if (!Deferred(s, partial)) INGOT_RETURN_IF_ERROR(s);
  bool compressed = false;
  s = ScanL2Tables(file, l, &compressed);
  if (!Deferred(s, partial)) INGOT_RETURN_IF_ERROR(s);
  if (compressed) info.compression = ctype;
  auto& fs = info.format_specific;
  fs["compat"] = h.version == 2 ? "0.10" : "1.1";
  fs["compression-type"] = ctype;
  fs["refcount-bits"] = Num(1ull << h.refcount_order);
  if (h.version == 3) {
    fs["lazy-refcounts"] = (h.compatible & kCompatLazyRefcounts) ? "true" : "false";
    fs["corrupt"] = (h.incompatible & kIncompatCorrupt) ? "true" : "false";
    fs["extended-l2"] = h.extended_l2() ? "true" : "false";
  }
  return info;
}

Result<std::unique_ptr<DiskImage>> OpenQcow2(io::ByteSource& file) {
  INGOT_ASSIGN_OR_RETURN(ImageInfo info, InspectQcow2(file));
  (void)info;
  INGOT_ASSIGN_OR_RETURN(Layout l, ReadLayout(file));
  return std::unique_ptr<DiskImage>(std::make_unique<Qcow2Image>(file, std::move(l)));
}

// qemu's qcow2_probe takes the magic with version >= 2 and qcow_probe version 1; a file with the
// magic and any other version (0, or too short to hold one) is raw to qemu but is no plain disk:
// we take it as qcow2, so that Inspect refuses it by its version or length instead of passing it
// as raw.
bool ProbeQcow2(io::ByteSource& file) {
  uint8_t head[8];
  if (file.Size() < 4 || !io::ReadExact(file, 0, std::span(head, 4)).ok()) return false;
  if (std::memcmp(head, kMagic, 4) != 0) return false;
  if (file.Size() >= 8 && io::ReadExact(file, 0, head).ok() && mapped::Be32(head + 4) == 1) {
    return false;  // qcow version 1: unsupported.cc
  }
  return true;
}

}  // namespace

const Driver& Qcow2Driver() {
  static const Driver d{Format::kQcow2, ProbeQcow2, InspectQcow2, OpenQcow2};
  return d;
}

}  // namespace ingot::formats
