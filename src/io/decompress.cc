#include "io/decompress.h"

#include <bzlib.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <vector>

namespace ingot::io {
namespace {

// One decoding step: how much input it took, how much output it made, whether a stream (member,
// frame) ended exactly there.
struct Step {
  size_t consumed = 0;
  size_t produced = 0;
  bool ended = false;
};

// The four libraries behind one small interface; each owns its library state.
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual Result<Step> Run(std::span<const uint8_t> in, std::span<uint8_t> out) = 0;
  // Readies the decoder for another concatenated stream (gzip members, bzip2 streams).
  virtual Status Restart() = 0;
};

class GzipDecoder final : public Decoder {
 public:
  GzipDecoder() { Init(); }
  ~GzipDecoder() override { inflateEnd(&z_); }
  Result<Step> Run(std::span<const uint8_t> in, std::span<uint8_t> out) override {
    z_.next_in = const_cast<uint8_t*>(in.data());
    z_.avail_in = static_cast<uInt>(in.size());
    z_.next_out = out.data();
    z_.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&z_, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      return InvalidArgument(std::string("gzip: the compressed data is corrupt (") +
                             (z_.msg ? z_.msg : "inflate failed") + ")");
    }
    return Step{in.size() - z_.avail_in, out.size() - z_.avail_out, rc == Z_STREAM_END};
  }
  Status Restart() override {
    inflateReset(&z_);
    return Status::Ok();
  }

 private:
  void Init() {
    std::memset(&z_, 0, sizeof z_);
    inflateInit2(&z_, 16 + MAX_WBITS);  // gzip wrapper only
  }
  z_stream z_;
};

class ZstdDecoder final : public Decoder {
 public:
  ZstdDecoder() : d_(ZSTD_createDStream()) { ZSTD_initDStream(d_); }
  ~ZstdDecoder() override { ZSTD_freeDStream(d_); }
  Result<Step> Run(std::span<const uint8_t> in, std::span<uint8_t> out) override {
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    size_t rc = ZSTD_decompressStream(d_, &ob, &ib);
    if (ZSTD_isError(rc)) {
      return InvalidArgument(std::string("zstd: the compressed data is corrupt (") +
                             ZSTD_getErrorName(rc) + ")");
    }
    return Step{ib.pos, ob.pos, rc == 0};  // frames simply follow each other
  }
  Status Restart() override { return Status::Ok(); }

 private:
  ZSTD_DStream* d_;
};

class XzDecoder final : public Decoder {
 public:
  XzDecoder() {
    // Concatenated .xz streams are one file; memory bounded by the stream's own dictionary.
    lzma_stream_decoder(&s_, UINT64_MAX, LZMA_CONCATENATED);
  }
  ~XzDecoder() override { lzma_end(&s_); }
  Result<Step> Run(std::span<const uint8_t> in, std::span<uint8_t> out) override {
    s_.next_in = in.data();
    s_.avail_in = in.size();
    s_.next_out = out.data();
    s_.avail_out = out.size();
    // LZMA_CONCATENATED needs LZMA_FINISH to know the input ended; Read passes empty input then.
    lzma_ret rc = lzma_code(&s_, in.empty() ? LZMA_FINISH : LZMA_RUN);
    if (rc != LZMA_OK && rc != LZMA_STREAM_END && rc != LZMA_BUF_ERROR) {
      return InvalidArgument("xz: the compressed data is corrupt (lzma error " +
                             std::to_string(rc) + ")");
    }
    return Step{in.size() - s_.avail_in, out.size() - s_.avail_out, rc == LZMA_STREAM_END};
  }
  Status Restart() override { return Status::Ok(); }

 private:
  lzma_stream s_ = LZMA_STREAM_INIT;
};

class Bzip2Decoder final : public Decoder {
 public:
  Bzip2Decoder() { Init(); }
  ~Bzip2Decoder() override { BZ2_bzDecompressEnd(&s_); }
  Result<Step> Run(std::span<const uint8_t> in, std::span<uint8_t> out) override {
    s_.next_in = reinterpret_cast<char*>(const_cast<uint8_t*>(in.data()));
    s_.avail_in = static_cast<unsigned>(in.size());
    s_.next_out = reinterpret_cast<char*>(out.data());
    s_.avail_out = static_cast<unsigned>(out.size());
    int rc = BZ2_bzDecompress(&s_);
    if (rc != BZ_OK && rc != BZ_STREAM_END) {
      return InvalidArgument("bzip2: the compressed data is corrupt (error " +
                             std::to_string(rc) + ")");
    }
    return Step{in.size() - s_.avail_in, out.size() - s_.avail_out, rc == BZ_STREAM_END};
  }
  Status Restart() override {
    BZ2_bzDecompressEnd(&s_);
    Init();
    return Status::Ok();
  }

 private:
  void Init() {
    std::memset(&s_, 0, sizeof s_);
    BZ2_bzDecompressInit(&s_, 0, 0);
  }
  bz_stream s_;
};

// Hands out the head bytes that were read to recognise the compression, then the rest.
class PrefixedReader final : public Reader {
 public:
  PrefixedReader(std::vector<uint8_t> head, std::unique_ptr<Reader> inner)
      : head_(std::move(head)), inner_(std::move(inner)) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    if (pos_ < head_.size()) {
      size_t n = std::min(buf.size(), head_.size() - pos_);
      std::memcpy(buf.data(), head_.data() + pos_, n);
      pos_ += n;
      return n;
    }
    return inner_->Read(buf);
  }

 private:
  std::vector<uint8_t> head_;
  size_t pos_ = 0;
  std::unique_ptr<Reader> inner_;
};

class DecompressingReader final : public Reader {
 public:
  DecompressingReader(std::unique_ptr<Reader> inner, std::unique_ptr<Decoder> decoder,
                      Compression c)
      : inner_(std::move(inner)), decoder_(std::move(decoder)), name_(CompressionName(c)),
        in_(256 << 10) {}

  Result<size_t> Read(std::span<uint8_t> out) override {
    if (out.empty()) return size_t{0};
    for (;;) {
      if (begin_ == end_ && !eof_) {
        INGOT_ASSIGN_OR_RETURN(size_t n, inner_->Read(in_));
        begin_ = 0;
        end_ = n;
        eof_ = n == 0;
      }
      std::span<const uint8_t> in(in_.data() + begin_, end_ - begin_);
      if (in.empty() && ended_) return size_t{0};  // the input ended where a stream ended
      INGOT_ASSIGN_OR_RETURN(Step step, decoder_->Run(in, out));
      begin_ += step.consumed;
      if (step.ended) {
        ended_ = true;
        // More input after the end of a stream: a concatenated one follows.
        if (begin_ < end_) {
          INGOT_RETURN_IF_ERROR(decoder_->Restart());
          ended_ = false;
        }
      } else if (step.produced > 0 || step.consumed > 0) {
        ended_ = false;
      }
      if (step.produced > 0) return step.produced;
      if (eof_ && begin_ == end_ && !ended_ && step.consumed == 0) {
        return InvalidArgument(std::string(name_) + ": the compressed data ends early (truncated)");
      }
    }
  }

 private:
  std::unique_ptr<Reader> inner_;
  std::unique_ptr<Decoder> decoder_;
  std::string_view name_;
  std::vector<uint8_t> in_;
  size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
  bool ended_ = false;
};

}  // namespace

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
    case Compression::kXz: return "xz";
    case Compression::kBzip2: return "bzip2";
    case Compression::kNone: break;
  }
  return "";
}

Result<std::unique_ptr<Reader>> Decompressing(std::unique_ptr<Reader> inner,
                                              Compression* detected) {
  std::vector<uint8_t> head(6);
  size_t got = 0;
  while (got < head.size()) {
    INGOT_ASSIGN_OR_RETURN(size_t n, inner->Read(std::span<uint8_t>(head).subspan(got)));
    if (n == 0) break;
    got += n;
  }
  head.resize(got);
  auto starts = [&](std::initializer_list<uint8_t> magic) {
    return head.size() >= magic.size() && std::equal(magic.begin(), magic.end(), head.begin());
  };
  Compression c = Compression::kNone;
  std::unique_ptr<Decoder> decoder;
  if (starts({0x1f, 0x8b})) {
    c = Compression::kGzip;
    decoder = std::make_unique<GzipDecoder>();
  } else if (starts({0x28, 0xb5, 0x2f, 0xfd})) {
    c = Compression::kZstd;
    decoder = std::make_unique<ZstdDecoder>();
  } else if (starts({0xfd, '7', 'z', 'X', 'Z', 0x00})) {
    c = Compression::kXz;
    decoder = std::make_unique<XzDecoder>();
  } else if (starts({'B', 'Z', 'h'})) {
    c = Compression::kBzip2;
    decoder = std::make_unique<Bzip2Decoder>();
  }
  if (detected != nullptr) *detected = c;
  auto prefixed = std::make_unique<PrefixedReader>(std::move(head), std::move(inner));
  if (c == Compression::kNone) return std::unique_ptr<Reader>(std::move(prefixed));
  return std::unique_ptr<Reader>(
      std::make_unique<DecompressingReader>(std::move(prefixed), std::move(decoder), c));
}

}  // namespace ingot::io
