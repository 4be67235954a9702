// Conversion pipeline (see convert.h) and the two writers: raw (holes for zeros) and qcow2 v3 (the
// layout of qemu's docs/interop/qcow2.txt, written in one forward pass; see WriteQcow2 below).
#include "formats/convert.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "formats/host_map.h"
#include "formats/mapped_image.h"
#include "formats/qcow2_format.h"
#include "io/file.h"

namespace ingot::formats {

namespace {

constexpr uint64_t kChunkBytes = 2ull << 20;
constexpr uint64_t kZeroBlock = 4096;

std::string Num(uint64_t v) { return std::to_string(v); }

bool AllZero(const uint8_t* p, size_t n) {
  // Word-at-a-time with an early exit: data blocks usually differ from zero in their first word.
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w) return false;
  }
  for (; i < n; ++i) {
    if (p[i]) return false;
  }
  return true;
}

// A stretch of bytes a writer must store: virtual [voff, voff + vlen), held at `data`. For
// compressed qcow2 clusters, `stored` is the compressed length (else equal to vlen).
struct Piece {
  uint64_t voff = 0;
  uint64_t vlen = 0;
  const uint8_t* data = nullptr;
  uint64_t stored = 0;
  bool compressed = false;
};

// A buffer aligned for O_DIRECT writes; its contents are not kept across resize().
class AlignedBuffer {
 public:
  static constexpr size_t kAlign = 4096;
  uint8_t* data() { return p_.get(); }
  size_t size() const { return n_; }
  void resize(size_t n) {
    if (n <= n_) return;
    const size_t rounded = (n + kAlign - 1) / kAlign * kAlign;
    p_.reset(static_cast<uint8_t*>(std::aligned_alloc(kAlign, rounded)));
    n_ = p_ ? rounded : 0;
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> p_;
  size_t n_ = 0;
};

struct Chunk {
  uint64_t index = 0;
  uint64_t voff = 0;
  uint64_t len = 0;
  AlignedBuffer buf;         // the chunk's virtual bytes (only where pieces say)
  std::vector<uint8_t> out;  // compressed clusters
  std::vector<Piece> pieces;
  Status status;
  bool ready = false;
};

// How a worker turns a chunk of virtual disk into pieces.
struct FillSpec {
  // When non-zero, pieces are whole clusters of this size (qcow2 output), zero-padded.
  uint64_t cluster_size = 0;
  ConvertOptions::Compression compression = ConvertOptions::Compression::kNone;
};

// Reads [chunk.voff, chunk.voff + chunk.len) of `src` into data pieces, skipping zero extents and
// all-zero 4 KiB blocks.
Status FillRaw(DiskImage& src, Chunk& c) {
  c.pieces.clear();
  c.buf.resize(c.len);
  if (c.buf.size() < c.len) return Internal("out of memory for a conversion buffer");
  const uint64_t end = c.voff + c.len;
  uint64_t pos = c.voff;
  while (pos < end) {
    INGOT_ASSIGN_OR_RETURN(Extent e, src.BlockStatus(pos, end - pos));
    if (e.length == 0 || e.offset != pos) return Internal("reader returned an empty extent");
    const uint64_t elen = std::min<uint64_t>(e.length, end - pos);
    if (!e.zero) {
      uint8_t* p = c.buf.data() + (pos - c.voff);
      INGOT_RETURN_IF_ERROR(io::ReadExact(src, pos, std::span<uint8_t>(p, elen)));
      // Split into data pieces at all-zero 4 KiB blocks (aligned to the virtual disk).
      uint64_t at = pos;
      while (at < pos + elen) {
        const uint64_t block_end =
            std::min<uint64_t>((at / kZeroBlock + 1) * kZeroBlock, pos + elen);
        const uint8_t* bp = c.buf.data() + (at - c.voff);
        if (!AllZero(bp, block_end - at)) {
          if (!c.pieces.empty() && c.pieces.back().voff + c.pieces.back().vlen == at) {
            c.pieces.back().vlen += block_end - at;
            c.pieces.back().stored = c.pieces.back().vlen;
          } else {
            c.pieces.push_back({at, block_end - at, bp, block_end - at, false});
          }
        }
        at = block_end;
      }
    }
    pos += elen;
  }
  return Status::Ok();
}

// Compresses one cluster the way qcow2 readers expect: zlib as a raw deflate stream with a 4 KiB
// window; zstd as one frame. Returns 0 when the result would not be smaller than the cluster.
size_t CompressCluster(ConvertOptions::Compression type, const uint8_t* in, size_t n, uint8_t* out,
                       size_t cap) {
  if (type == ConvertOptions::Compression::kZstd) {
    thread_local ZSTD_CCtx* cctx = ZSTD_createCCtx();
    const size_t r = ZSTD_compressCCtx(cctx, out, cap, in, n, 3);
    return ZSTD_isError(r) ? 0 : r;
  }
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    return 0;
  z.next_in = const_cast<uint8_t*>(in);
  z.avail_in = uInt(n);
  z.next_out = out;
  z.avail_out = uInt(cap);
  const int ret = deflate(&z, Z_FINISH);
  const size_t produced = cap - z.avail_out;
  deflateEnd(&z);
  return ret == Z_STREAM_END ? produced : 0;
}

// Regroups the data pieces of a cluster-aligned chunk into whole clusters (zero-filling what is not
// data) and compresses them when asked.
Status FillClusters(DiskImage& src, Chunk& c, const FillSpec& spec) {
  const uint64_t cs = spec.cluster_size;
  const uint64_t padded = (c.len + cs - 1) / cs * cs;
  c.buf.resize(padded);
  if (c.buf.size() < padded) return Internal("out of memory for a conversion buffer");
  INGOT_RETURN_IF_ERROR(FillRaw(src, c));
  std::vector<Piece> data = std::move(c.pieces);
  c.pieces.clear();
  // Zero every byte of a data cluster that no data piece covers (zero extents were never read, so
  // the buffer holds stale bytes there).
  auto zero = [&](uint64_t a, uint64_t b) {
    if (b > a) std::memset(c.buf.data() + (a - c.voff), 0, b - a);
  };
  auto up = [&](uint64_t v) { return (v + cs - 1) / cs * cs; };
  std::vector<uint64_t> clusters;  // virtual offsets of clusters holding data, ascending
  uint64_t prev_end = c.voff;      // the chunk starts on a cluster boundary
  for (const Piece& p : data) {
    zero(prev_end, std::min(p.voff, up(prev_end)));      // tail of the previous cluster
    zero(std::max(prev_end, p.voff / cs * cs), p.voff);  // head of this piece's cluster
    for (uint64_t cl = p.voff / cs * cs; cl < p.voff + p.vlen; cl += cs) {
      if (clusters.empty() || clusters.back() < cl) clusters.push_back(cl);
    }
    prev_end = p.voff + p.vlen;
  }
  zero(prev_end, up(prev_end));
  const bool compress = spec.compression != ConvertOptions::Compression::kNone;
  if (compress && c.out.size() < padded + clusters.size() * 64) {
    c.out.resize(padded + clusters.size() * 64);
  }
  uint64_t out_pos = 0;
  for (uint64_t cl : clusters) {
    const uint8_t* p = c.buf.data() + (cl - c.voff);
    Piece piece{cl, cs, p, cs, false};
    if (compress) {
      const size_t n = CompressCluster(spec.compression, p, cs, c.out.data() + out_pos, cs - 512);
      if (n > 0) {
        piece = {cl, cs, c.out.data() + out_pos, n, true};
        out_pos += n;
      }
    }
    c.pieces.push_back(piece);
  }
  return Status::Ok();
}

// Workers fill chunks in parallel; Run() hands them to `consume` in order on the calling thread.
class Pipeline {
 public:
  // `in_worker`, when set, is called on the worker right after a chunk is filled (for sinks that
  // take concurrent writes, e.g. pwrite to one file); Run's `consume` then sees chunks already
  // written.
  Pipeline(DiskImage& src, FillSpec spec, unsigned threads,
           std::function<Status(Chunk&)> in_worker = nullptr)
      : src_(src),
        spec_(spec),
        threads_(threads),
        slots_(threads + 2),
        in_worker_(std::move(in_worker)) {
    chunk_ = spec.cluster_size ? std::max(kChunkBytes, spec.cluster_size) : kChunkBytes;
    align_ = spec.cluster_size ? spec.cluster_size : kZeroBlock;
  }

  Status Run(const std::function<Status(Chunk&)>& consume, const ConvertOptions& opts) {
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < threads_; ++t) workers.emplace_back([this] { Work(); });
    Status result;
    for (uint64_t i = 0;; ++i) {
      Chunk& c = slots_[i % slots_.size()];
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return (c.ready && c.index == i) || (i >= total_); });
        if (i >= total_ && !(c.ready && c.index == i)) break;
      }
      result = c.status.ok() ? consume(c) : c.status;
      if (result.ok() && opts.progress && !opts.progress(c.voff + c.len, src_.Size())) {
        result = Cancelled("conversion cancelled");
      }
      std::lock_guard<std::mutex> lock(mu_);
      c.ready = false;
      ++consumed_;
      if (!result.ok()) stop_ = true;
      cv_.notify_all();
      if (!result.ok()) break;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    for (auto& w : workers) w.join();
    if (result.ok()) result = claim_error_;
    if (result.ok() && opts.progress && !opts.progress(src_.Size(), src_.Size())) {
      result = Cancelled("conversion cancelled");
    }
    return result;
  }

 private:
  // Under mu_: the next chunk that holds data. Zero extents are skipped here, from block status
  // alone, so a huge sparse disk costs metadata lookups, not one round trip per chunk of nothing.
  bool ClaimLocked(uint64_t* voff, uint64_t* len) {
    const uint64_t size = src_.Size();
    while (cursor_ < size) {
      Result<Extent> e = src_.BlockStatus(cursor_, size - cursor_);
      if (!e.ok() || e->length == 0) {
        claim_error_ = e.ok() ? Internal("reader returned an empty extent") : e.status();
        return false;
      }
      if (!e->zero) break;
      cursor_ += e->length;
    }
    if (cursor_ >= size) return false;
    const uint64_t start = std::max(cursor_ / align_ * align_, prev_end_);
    *voff = start;
    *len = std::min<uint64_t>(chunk_ - start % chunk_, size - start);
    cursor_ = prev_end_ = start + *len;
    return true;
  }

  void Work() {
    for (;;) {
      uint64_t i, voff, len;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock,
                 [&] { return stop_ || total_ != kUnknown || next_ < consumed_ + slots_.size(); });
        if (stop_ || total_ != kUnknown) return;
        if (!ClaimLocked(&voff, &len)) {
          total_ = next_;
          cv_.notify_all();
          return;
        }
        i = next_++;
        slots_[i % slots_.size()].index = i;
      }
      Chunk& c = slots_[i % slots_.size()];
      c.voff = voff;
      c.len = len;
      c.status = spec_.cluster_size ? FillClusters(src_, c, spec_) : FillRaw(src_, c);
      if (c.status.ok() && in_worker_) c.status = in_worker_(c);
      std::lock_guard<std::mutex> lock(mu_);
      c.ready = true;
      cv_.notify_all();
    }
  }

  static constexpr uint64_t kUnknown = UINT64_MAX;
  DiskImage& src_;
  FillSpec spec_;
  unsigned threads_;
  std::vector<Chunk> slots_;
  std::function<Status(Chunk&)> in_worker_;
  uint64_t chunk_ = kChunkBytes;
  uint64_t align_ = kZeroBlock;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_ = 0;
  uint64_t consumed_ = 0;
  uint64_t total_ = kUnknown;  // chunks in all, once the claim cursor reached the end
  uint64_t cursor_ = 0;
  uint64_t prev_end_ = 0;
  Status claim_error_;
  bool stop_ = false;
};

unsigned Threads(const ConvertOptions& o) {
  if (o.threads) return o.threads;
  return std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
}

const std::vector<uint8_t>& Zeros() {
  static const std::vector<uint8_t> z(kChunkBytes);
  return z;
}

// Writes raw bytes with every gap filled by explicit zeros, in order, through `emit(offset,
// bytes)`.
Status ConvertFilled(DiskImage& src, const ConvertOptions& opts,
                     const std::function<Status(uint64_t, std::span<const uint8_t>)>& emit) {
  uint64_t written = 0;
  auto gap = [&](uint64_t to) -> Status {
    while (written < to) {
      const uint64_t n = std::min<uint64_t>(to - written, Zeros().size());
      INGOT_RETURN_IF_ERROR(emit(written, std::span<const uint8_t>(Zeros().data(), n)));
      written += n;
    }
    return Status::Ok();
  };
  Pipeline p(src, {}, Threads(opts));
  INGOT_RETURN_IF_ERROR(p.Run(
      [&](Chunk& c) -> Status {
        for (const Piece& piece : c.pieces) {
          INGOT_RETURN_IF_ERROR(gap(piece.voff));
          INGOT_RETURN_IF_ERROR(emit(piece.voff, std::span<const uint8_t>(piece.data, piece.vlen)));
          written = piece.voff + piece.vlen;
        }
        return gap(c.voff + c.len);
      },
      opts));
  return gap(src.Size());
}

// ---- qcow2 output ----

void PutBe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (24 - 8 * i));
}
void PutBe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (56 - 8 * i));
}
void PutBe16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

// The image is written front to back:
//   cluster 0               header
//   refcount table          covers every refcount block below
//   refcount blocks         enough for an upper bound of the clusters the image can need
//   L1 table
//   L2 tables               one per L1 entry whose range holds data, in order
//   data clusters           appended in virtual order (compressed ones packed at 512-byte steps)
// Positions of all metadata are fixed by a first, metadata-only pass over the source's block
// status, so each L2 table and refcount block is written once, when the data pass has moved past
// it. Allocation only moves forward, so one refcount block and one L2 table are in memory at a
// time.
class Qcow2Output {
 public:
  // qcow2 sizes are whole 512-byte sectors; like qemu-img, a source of another size is padded with
  // zeros to the next sector.
  Qcow2Output(io::ByteSink& sink, uint64_t virtual_size, const ConvertOptions& o)
      : sink_(sink), size_((virtual_size + 511) / 512 * 512), opts_(o) {
    cb_ = o.cluster_bits;
    cs_ = 1ull << cb_;
    l2_entries_ = cs_ / 8;
    rc_per_block_ = cs_ / 2;  // refcount_order 4: 16-bit refcounts
  }

  Status Plan(DiskImage& src) {
    const uint64_t l2_span = l2_entries_ * cs_;
    l1_size_ = (size_ + l2_span - 1) / l2_span;
    if (l1_size_ * 8 > mapped::kMaxTableBytes)
      return TooLarge("qcow2 output: virtual size too large");
    std::vector<bool> need_l2(l1_size_, false);
    uint64_t data_clusters = 0, last_cluster = UINT64_MAX;
    for (uint64_t pos = 0; pos < src.Size();) {
      INGOT_ASSIGN_OR_RETURN(Extent e, src.BlockStatus(pos, src.Size() - pos));
      if (e.length == 0) return Internal("reader returned an empty extent");
      if (!e.zero) {
        uint64_t first = pos >> cb_, last = (pos + e.length - 1) >> cb_;
        if (first == last_cluster) ++first;
        if (last >= first) data_clusters += last - first + 1;
        last_cluster = last;
        for (uint64_t i = pos / l2_span; i <= (pos + e.length - 1) / l2_span; ++i)
          need_l2[i] = true;
      }
      pos += e.length;
    }
    uint64_t n_l2 = 0;
    l1_.assign(l1_size_, 0);
    // An empty disk has no L1 table at all: a reserved but unreferenced cluster would be a leak.
    const uint64_t l1_clusters = (l1_size_ * 8 + cs_ - 1) / cs_;
    // Compressed output may waste up to one cluster per cluster stored uncompressed (alignment).
    const uint64_t data_bound = opts_.compression == ConvertOptions::Compression::kNone
                                    ? data_clusters
                                    : 2 * data_clusters + 1;
    for (bool b : need_l2) n_l2 += b;
    // Fixed point: the refcount blocks must count themselves and the table that points at them.
    uint64_t rb = 1, rt = 1;
    for (;;) {
      const uint64_t meta = 1 + rt + rb + l1_clusters + n_l2;
      const uint64_t total = meta + data_bound;
      const uint64_t rb2 = (total + rc_per_block_ - 1) / rc_per_block_;
      const uint64_t rt2 = std::max<uint64_t>(1, (rb2 * 8 + cs_ - 1) / cs_);
      if (rb2 <= rb && rt2 <= rt) break;
      rb = std::max(rb, rb2);
      rt = std::max(rt, rt2);
    }
    rt_offset_ = cs_;
    rb_offset_ = rt_offset_ + rt * cs_;
    rb_count_ = rb;
    rt_clusters_ = rt;
    l1_offset_ = rb_offset_ + rb * cs_;
    uint64_t next = l1_offset_ + l1_clusters * cs_;
    for (uint64_t i = 0; i < l1_size_; ++i) {
      if (!need_l2[i]) continue;
      l1_[i] = next;
      next += cs_;
    }
    meta_clusters_ = next >> cb_;
    next_byte_ = next;
    return Status::Ok();
  }

  Status Begin() {
    INGOT_RETURN_IF_ERROR(sink_.Resize(0));
    std::vector<uint8_t> hdr(cs_, 0);
    using namespace qcow2;  // NOLINT
    std::memcpy(hdr.data(), kMagic, 4);
    PutBe32(&hdr[kVersionOff], 3);
    PutBe32(&hdr[kClusterBitsOff], cb_);
    PutBe64(&hdr[kSizeOff], size_);
    PutBe32(&hdr[kL1SizeOff], uint32_t(l1_size_));
    PutBe64(&hdr[kL1TableOffsetOff], l1_offset_);
    PutBe64(&hdr[kRefcountTableOffsetOff], rt_offset_);
    PutBe32(&hdr[kRefcountTableClustersOff], uint32_t(rt_clusters_));
    const bool zstd = opts_.compression == ConvertOptions::Compression::kZstd;
    PutBe64(&hdr[kIncompatibleOff], zstd ? kIncompatCompressionType : 0);
    PutBe32(&hdr[kRefcountOrderOff], 4);
    PutBe32(&hdr[kHeaderLengthOff], kV3HeaderLengthWithCompression);
    hdr[kCompressionTypeOff] = zstd ? kCompressionZstd : kCompressionZlib;
    // Header extensions: only the end marker (zeros) follows.
    INGOT_RETURN_IF_ERROR(sink_.WriteAt(0, hdr));
    // Refcount table: every block, in order.
    std::vector<uint8_t> rt(rt_clusters_ * cs_, 0);
    for (uint64_t i = 0; i < rb_count_; ++i) PutBe64(&rt[i * 8], rb_offset_ + i * cs_);
    INGOT_RETURN_IF_ERROR(sink_.WriteAt(rt_offset_, rt));
    // L1 table.
    std::vector<uint8_t> l1((l1_size_ * 8 + cs_ - 1) / cs_ * cs_, 0);
    for (uint64_t i = 0; i < l1_size_; ++i) {
      if (l1_[i]) PutBe64(&l1[i * 8], l1_[i] | kCopied);
    }
    if (!l1.empty()) INGOT_RETURN_IF_ERROR(sink_.WriteAt(l1_offset_, l1));
    rc_block_.assign(rc_per_block_ * 2, 0);
    l2_.assign(cs_, 0);
    return AddRef(0, meta_clusters_ - 1);
  }

  Status Put(const Piece& p) {
    const uint64_t vcluster = p.voff >> cb_;
    const uint64_t l1_index = vcluster / l2_entries_;
    if (l1_index >= l1_size_ || l1_[l1_index] == 0) {
      return Internal("qcow2 output: data in an L2 range the plan found empty at " + Num(p.voff));
    }
    if (l2_index_ != l1_index) {
      INGOT_RETURN_IF_ERROR(FlushL2());
      l2_index_ = l1_index;
    }
    uint64_t entry;
    if (p.compressed) {
      uint64_t host = (next_byte_ + 511) & ~uint64_t{511};
      const uint64_t sectors = (p.stored + 511) / 512;
      INGOT_RETURN_IF_ERROR(sink_.WriteAt(host, std::span<const uint8_t>(p.data, p.stored)));
      INGOT_RETURN_IF_ERROR(AddRef(host >> cb_, (host + sectors * 512 - 1) >> cb_));
      const uint32_t xbits = qcow2::CompressedOffsetBits(cb_);
      entry = qcow2::kCompressed | ((sectors - 1) << xbits) | host;
      next_byte_ = host + sectors * 512;
    } else {
      const uint64_t host = (next_byte_ + cs_ - 1) & ~(cs_ - 1);
      INGOT_RETURN_IF_ERROR(sink_.WriteAt(host, std::span<const uint8_t>(p.data, cs_)));
      INGOT_RETURN_IF_ERROR(AddRef(host >> cb_, host >> cb_));
      entry = host | qcow2::kCopied;
      next_byte_ = host + cs_;
    }
    PutBe64(&l2_[(vcluster % l2_entries_) * 8], entry);
    l2_dirty_ = true;
    return Status::Ok();
  }

  Status Finish() {
    INGOT_RETURN_IF_ERROR(FlushL2());
    INGOT_RETURN_IF_ERROR(FlushRefcounts());
    // Pad to a whole cluster so every compressed run's last sector lies inside the file.
    const uint64_t end = (next_byte_ + cs_ - 1) & ~(cs_ - 1);
    INGOT_RETURN_IF_ERROR(sink_.Resize(end));
    if (opts_.flush) INGOT_RETURN_IF_ERROR(sink_.Flush());
    return Status::Ok();
  }

 private:
  Status FlushL2() {
    if (l2_index_ != UINT64_MAX && l2_dirty_) {
      INGOT_RETURN_IF_ERROR(sink_.WriteAt(l1_[l2_index_], l2_));
    }
    std::fill(l2_.begin(), l2_.end(), 0);
    l2_dirty_ = false;
    l2_index_ = UINT64_MAX;
    return Status::Ok();
  }

  // Counts one more reference to each of host clusters [first, last]. Clusters only move forward.
  Status AddRef(uint64_t first, uint64_t last) {
    for (uint64_t c = first; c <= last; ++c) {
      const uint64_t block = c / rc_per_block_;
      if (block >= rb_count_) return Internal("qcow2 output: refcount blocks undersized");
      if (block != rc_index_) {
        INGOT_RETURN_IF_ERROR(FlushRefcounts());
        rc_index_ = block;
      }
      uint8_t* e = &rc_block_[(c % rc_per_block_) * 2];
      const uint16_t v = uint16_t((e[0] << 8) | e[1]) + 1;
      PutBe16(e, v);
      rc_dirty_ = true;
    }
    return Status::Ok();
  }

  Status FlushRefcounts() {
    if (rc_dirty_) INGOT_RETURN_IF_ERROR(sink_.WriteAt(rb_offset_ + rc_index_ * cs_, rc_block_));
    std::fill(rc_block_.begin(), rc_block_.end(), 0);
    rc_dirty_ = false;
    return Status::Ok();
  }

  io::ByteSink& sink_;
  uint64_t size_;
  ConvertOptions opts_;
  uint32_t cb_;
  uint64_t cs_, l2_entries_, rc_per_block_;
  uint64_t l1_size_ = 0, l1_offset_ = 0, rt_offset_ = 0, rt_clusters_ = 0, rb_offset_ = 0,
           rb_count_ = 0, meta_clusters_ = 0, next_byte_ = 0;
  std::vector<uint64_t> l1_;
  std::vector<uint8_t> l2_;
  uint64_t l2_index_ = UINT64_MAX;
  bool l2_dirty_ = false;
  std::vector<uint8_t> rc_block_;
  uint64_t rc_index_ = 0;
  bool rc_dirty_ = false;
};

}  // namespace

Status ConvertToRaw(DiskImage& src, io::ByteSink& sink, const ConvertOptions& opts) {
  INGOT_RETURN_IF_ERROR(sink.Resize(src.Size()));
  Pipeline p(src, {}, Threads(opts));
  INGOT_RETURN_IF_ERROR(p.Run(
      [&](Chunk& c) -> Status {
        for (const Piece& piece : c.pieces) {
          INGOT_RETURN_IF_ERROR(
              sink.WriteAt(piece.voff, std::span<const uint8_t>(piece.data, piece.vlen)));
        }
        return Status::Ok();
      },
      opts));
  if (opts.flush) INGOT_RETURN_IF_ERROR(sink.Flush());
  return Status::Ok();
}

// Early write-back for page-cache output: written ranges are handed, in order, to one thread that
// asks the kernel to start writing them (sync_file_range SYNC_FILE_RANGE_WRITE), so the disk is
// busy from the first chunk while the workers never wait on the device queue themselves (measured:
// calling it on the workers made the time to exit that of a durable write). Advisory only: a range
// that is never started is written back by the kernel on its own.
class EarlyWriteback {
 public:
  explicit EarlyWriteback(int fd) : fd_(fd), thread_([this] { Run(); }) {}
  ~EarlyWriteback() { Stop(false); }
  void Start(uint64_t offset, uint64_t length) {
    std::lock_guard<std::mutex> lock(mu_);
    ranges_.push_back({offset, length});
    cv_.notify_one();
  }
  // drain: start every queued range before returning (a flush follows); else drop them.
  void Stop(bool drain) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      if (!drain) ranges_.clear();
      cv_.notify_one();
    }
    thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !ranges_.empty(); });
      if (ranges_.empty()) return;
      auto [off, len] = ranges_.front();
      ranges_.erase(ranges_.begin());
      lock.unlock();
      (void)::sync_file_range(fd_, off_t(off), off_t(len), SYNC_FILE_RANGE_WRITE);
      lock.lock();
    }
  }
  int fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;
  bool stopping_ = false;
  std::thread thread_;
};

// The output file mapped shared and writable, for WriteFromMapping's helper workers on a tmpfs.
//
// Why: a tmpfs write() holds the inode lock while it allocates, charges and fills each new page
// (about 1.5 us per 4 KiB page here, three quarters of the whole conversion; the copy is the
// smaller part), so workers that all pwrite() take turns and the conversion runs at one core's
// speed, as qemu-img's does. A page fault on a shared mapping of the same file takes no inode
// lock: a helper that populates its run with MADV_POPULATE_WRITE and copies into the mapping
// allocates its pages beside the pwrite() worker, not after it. That way costs about twice as
// much CPU per page (the fault path zeroes every page before the copy, and the page-table entries
// are set up and torn down), so exactly one worker keeps pwrite() and the others take runs through
// the mapping; they claim chunks from the same counter, so each takes what its speed allows. Only
// verbatim runs: where decoding is the bottleneck (compressed clusters) the extra CPU costs time.
// Measured (bench/formats/write_path.sh's plain image, 768 MiB of data, 2-core VM, interleaved
// runs, medians of 11): 0.33 s against 0.37 s with pwrite only and qemu-img's 0.43 s at load
// average 1.5; 0.46 / 0.49 / 0.50 s at load 4. Other file systems keep pwrite only: there the
// disk bounds the copy (bench/formats/README.md), and a shared writable mapping would bring
// page_mkwrite, dirty-page throttling and write-back of its own into the workers.
class TmpfsOutputMap {
 public:
  // Null (every worker uses pwrite) unless `fd`, opened on `path`, is on a tmpfs and mappable.
  static std::unique_ptr<TmpfsOutputMap> Open(const std::string& path, int fd, uint64_t size) {
    struct statfs fs;
    if (size == 0 || ::fstatfs(fd, &fs) != 0 || fs.f_type != TMPFS_MAGIC) return nullptr;
    // The sink's descriptor is write-only; a shared writable mapping needs one opened for
    // reading too, on the same file.
    io::UniqueFd rw(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    struct stat a, b;
    if (rw.get() < 0 || ::fstat(rw.get(), &a) != 0 || ::fstat(fd, &b) != 0 ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
      return nullptr;
    }
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, rw.get(), 0);
    if (p == MAP_FAILED) return nullptr;
    return std::unique_ptr<TmpfsOutputMap>(new TmpfsOutputMap(static_cast<uint8_t*>(p), size));
  }
  ~TmpfsOutputMap() { ::munmap(base_, size_); }

  // Writes [p, p + len) at `off`: allocates the pages first (MADV_POPULATE_WRITE), so a full
  // tmpfs is an error here, never a SIGBUS in the copy; then copies and drops the page-table
  // entries again (the pages stay in the file), so the mapping never holds more than a run.
  // False when the pages could not be allocated: the caller writes the run with pwrite, which
  // reports why.
  bool Write(const uint8_t* p, uint64_t len, uint64_t off) {
    if (len == 0 || off > size_ || len > size_ - off) return false;
    const uint64_t first = off / kZeroBlock * kZeroBlock;
    const uint64_t last = std::min(size_, (off + len + kZeroBlock - 1) / kZeroBlock * kZeroBlock);
    if (::madvise(base_ + first, last - first, MADV_POPULATE_WRITE) != 0) return false;
    std::memcpy(base_ + off, p, len);
    (void)::madvise(base_ + first, last - first, MADV_DONTNEED);
    return true;
  }

 private:
  TmpfsOutputMap(uint8_t* base, uint64_t size) : base_(base), size_(size) {}
  uint8_t* base_;
  uint64_t size_;
};

// Page-cache raw output from an image that says where its bytes live in a plain file (raw,
// uncompressed qcow2): runs stored verbatim are written straight from a read-only mapping of the
// image file, so each byte is copied once (page cache to page cache) instead of twice (pread into
// a buffer, then pwrite); their all-zero 4 KiB blocks are still skipped (the mapping is scanned,
// not copied). Runs that read as zeros are skipped; anything else (compressed clusters) is read,
// zero-checked and written. Workers claim chunks of the virtual disk in order. With `out_map`
// (tmpfs), every worker but the first writes through it instead of pwrite (see TmpfsOutputMap).
// *used is false when the image cannot be mapped, and nothing was written.
Status WriteFromMapping(DiskImage& src, int out_fd, TmpfsOutputMap* out_map, unsigned threads,
                        EarlyWriteback* writeback, bool* used) {
  *used = false;
  auto* mapped = dynamic_cast<HostMapped*>(&src);
  if (!mapped) return Status::Ok();
  auto* host = dynamic_cast<io::FileSource*>(&mapped->host_file());
  if (!host || host->Size() == 0) return Status::Ok();
  struct stat st;
  if (::fstat(host->fd(), &st) != 0 || !S_ISREG(st.st_mode) || uint64_t(st.st_size) != host->Size())
    return Status::Ok();
  void* base = ::mmap(nullptr, host->Size(), PROT_READ, MAP_SHARED, host->fd(), 0);
  if (base == MAP_FAILED) return Status::Ok();
  (void)::madvise(base, host->Size(), MADV_SEQUENTIAL);
  *used = true;
  const uint8_t* file = static_cast<const uint8_t*>(base);
  const uint64_t file_size = host->Size();
  const uint64_t size = src.Size();
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  Status first_error;
  auto fail = [&](Status e) {
    std::lock_guard<std::mutex> lock(mu);
    if (first_error.ok()) first_error = std::move(e);
  };
  auto write_all = [&](const uint8_t* p, uint64_t len, uint64_t off, bool via_map) -> Status {
    if (via_map && out_map->Write(p, len, off)) return Status::Ok();
    while (len > 0) {
      const ssize_t n = ::pwrite(out_fd, p, len, off_t(off));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return FromErrno(n < 0 ? errno : EIO, "write");
      p += n;
      off += uint64_t(n);
      len -= uint64_t(n);
    }
    return Status::Ok();
  };
  // Writes the non-zero 4 KiB blocks (aligned to the virtual disk) of [p, p + len) at voff.
  auto write_data = [&](const uint8_t* p, uint64_t len, uint64_t voff, bool via_map) -> Status {
    uint64_t run_start = 0, run_len = 0;
    for (uint64_t at = 0; at < len;) {
      const uint64_t n = std::min<uint64_t>(kZeroBlock - (voff + at) % kZeroBlock, len - at);
      if (!AllZero(p + at, n)) {
        if (run_len == 0) run_start = at;
        run_len += n;
      } else if (run_len) {
        INGOT_RETURN_IF_ERROR(write_all(p + run_start, run_len, voff + run_start, via_map));
        run_len = 0;
      }
      at += n;
    }
    if (run_len) {
      INGOT_RETURN_IF_ERROR(write_all(p + run_start, run_len, voff + run_start, via_map));
    }
    if (writeback) writeback->Start(voff, len);
    return Status::Ok();
  };
  auto work = [&](bool via_map) {
    std::vector<uint8_t> buf;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!first_error.ok()) return;
      }
      const uint64_t start = next.fetch_add(kChunkBytes);
      if (start >= size) return;
      const uint64_t end = std::min(size, start + kChunkBytes);
      for (uint64_t pos = start; pos < end;) {
        Result<HostRun> run = mapped->MapToHost(pos, end - pos);
        if (!run.ok()) return fail(run.status());
        const uint64_t len = std::min<uint64_t>(run->length, end - pos);
        if (len == 0) return fail(Internal("reader returned an empty host run"));
        Status e;
        if (run->kind == HostRun::Kind::kFile) {
          if (!mapped::Within(run->file_offset, len, file_size)) {
            return fail(Corruption("host run past the end of the image file"));
          }
          e = write_data(file + run->file_offset, len, pos, via_map);
        } else if (run->kind == HostRun::Kind::kOther) {
          buf.resize(len);
          e = io::ReadExact(src, pos, buf);
          // Decoding, not the inode lock, bounds these runs: the cheaper pwrite path.
          if (e.ok()) e = write_data(buf.data(), len, pos, /*via_map=*/false);
        }
        if (!e.ok()) return fail(e);
        pos += len;
      }
    }
  };
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) workers.emplace_back(work, out_map && t > 0);
  for (auto& w : workers) w.join();
  ::munmap(base, file_size);
  return first_error;
}

Status ConvertToRawFile(DiskImage& src, const std::string& path, const ConvertOptions& opts) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_WRONLY | O_CREAT, 0644));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return FromErrno(errno, "stat " + path);
  const int raw_fd = fd.get();
  io::FileSink sink(std::move(fd), path);
  if (!S_ISREG(st.st_mode)) {
    INGOT_RETURN_IF_ERROR(ConvertFilled(
        src, opts, [&](uint64_t off, std::span<const uint8_t> b) { return sink.WriteAt(off, b); }));
    if (opts.flush) INGOT_RETURN_IF_ERROR(sink.Flush());
    return Status::Ok();
  }
  // Truncating to zero first turns every byte into a hole; only data is then written.
  INGOT_RETURN_IF_ERROR(sink.Resize(0));
  INGOT_RETURN_IF_ERROR(sink.Resize(src.Size()));
  // Data goes out with O_DIRECT where the file system takes it: a conversion writes gigabytes once,
  // and through the page cache they would be copied an extra time, then throttled as dirty pages
  // and flushed in one burst at the end. Direct writes keep the disk busy from the start, leave the
  // cache to others, and need block-aligned pieces: chunks are then cut into 4 KiB blocks
  // (zero-padded). Workers write their own chunks (pwrite at distinct offsets), so several writes
  // are in flight.
  std::atomic<bool> direct = opts.direct_io && ::fcntl(raw_fd, F_SETFL, O_DIRECT) == 0;
  std::unique_ptr<EarlyWriteback> writeback;
  if (!direct && opts.early_writeback) writeback = std::make_unique<EarlyWriteback>(raw_fd);
  if (!direct && !opts.progress && opts.write_from_mapping) {
    bool used = false;
    const unsigned threads = opts.threads ? opts.threads : Threads(opts);
    std::unique_ptr<TmpfsOutputMap> out_map;
    if (threads > 1) out_map = TmpfsOutputMap::Open(path, raw_fd, src.Size());
    INGOT_RETURN_IF_ERROR(
        WriteFromMapping(src, raw_fd, out_map.get(), threads, writeback.get(), &used));
    if (used) {
      if (writeback) writeback->Stop(/*drain=*/opts.flush);
      INGOT_RETURN_IF_ERROR(sink.Resize(src.Size()));
      if (opts.flush) INGOT_RETURN_IF_ERROR(sink.Flush());
      return Status::Ok();
    }
  }
  const FillSpec spec = direct ? FillSpec{AlignedBuffer::kAlign} : FillSpec{};
  auto write_chunk = [&](Chunk& c) -> Status {
    const std::vector<Piece>& ps = c.pieces;
    for (size_t i = 0; i < ps.size();) {
      // Coalesce pieces adjacent both on the disk and in the buffer into one write.
      size_t j = i + 1;
      uint64_t len = ps[i].vlen;
      while (j < ps.size() && ps[j].voff == ps[i].voff + len && ps[j].data == ps[i].data + len) {
        len += ps[j].vlen;
        ++j;
      }
      std::span<const uint8_t> bytes(ps[i].data, len);
      Status st = sink.WriteAt(ps[i].voff, bytes);
      if (!st.ok() && direct.exchange(false)) {
        // The file system refused direct I/O after all: carry on through the page cache.
        (void)::fcntl(raw_fd, F_SETFL, 0);
        st = sink.WriteAt(ps[i].voff, bytes);
      }
      INGOT_RETURN_IF_ERROR(st);
      if (!direct && writeback) writeback->Start(ps[i].voff, len);
      i = j;
    }
    return Status::Ok();
  };
  const unsigned threads = opts.threads ? opts.threads : std::max(4u, Threads(opts));
  Pipeline p(src, spec, threads, write_chunk);
  INGOT_RETURN_IF_ERROR(p.Run([](Chunk&) { return Status::Ok(); }, opts));
  // Without a flush to follow, ranges not yet handed to the kernel are left to its own write-back:
  // returning does not wait for the disk.
  if (writeback) writeback->Stop(/*drain=*/opts.flush);
  // The last block may have been written whole past the end; cut back to the virtual size.
  INGOT_RETURN_IF_ERROR(sink.Resize(src.Size()));
  if (opts.flush) INGOT_RETURN_IF_ERROR(sink.Flush());
  return Status::Ok();
}

Status ConvertToRawStream(DiskImage& src, io::Writer& out, const ConvertOptions& opts) {
  return ConvertFilled(src, opts,
                       [&](uint64_t, std::span<const uint8_t> b) { return out.Write(b); });
}

Status ConvertToQcow2(DiskImage& src, io::ByteSink& sink, const ConvertOptions& opts) {
  if (opts.cluster_bits < 9 || opts.cluster_bits > 21) {
    return InvalidArgument("qcow2 output: cluster_bits " + Num(opts.cluster_bits));
  }
  Qcow2Output q(sink, src.Size(), opts);
  INGOT_RETURN_IF_ERROR(q.Plan(src));
  INGOT_RETURN_IF_ERROR(q.Begin());
  // Compression is the bottleneck of compressed output: give it at least four workers, so it keeps
  // its share of the cores when the machine is busy with other work.
  const bool compress = opts.compression != ConvertOptions::Compression::kNone;
  const unsigned threads =
      opts.threads ? opts.threads : (compress ? std::max(4u, Threads(opts)) : Threads(opts));
  Pipeline p(src, {uint64_t{1} << opts.cluster_bits, opts.compression}, threads);
  INGOT_RETURN_IF_ERROR(p.Run(
      [&](Chunk& c) -> Status {
        for (const Piece& piece : c.pieces) INGOT_RETURN_IF_ERROR(q.Put(piece));
        return Status::Ok();
      },
      opts));
  return q.Finish();
}

}  // namespace ingot::formats
