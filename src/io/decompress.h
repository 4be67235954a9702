// Compressed image streams (cloud images are often published as .qcow2.xz or .raw.gz): a Reader
// that recognises gzip, zstd, xz and bzip2 by their magic bytes and hands out the decompressed
// bytes, streaming, with bounded memory. Anything else passes through unchanged.
//
// A decompression bomb is bounded by whoever reads: the ingest pass caps what it takes.
// Thread safety: one reader per stream, used by one thread.
#pragma once

#include <memory>
#include <string_view>

#include "io/byte_source.h"

namespace ingot::io {

enum class Compression { kNone, kGzip, kZstd, kXz, kBzip2 };

std::string_view CompressionName(Compression c);  // "", "gzip", "zstd", "xz", "bzip2"

// Reads the first bytes of `inner` to recognise a compression. `detected` (optional) tells which.
// Corrupt compressed data fails the Read with kInvalidArgument naming the compression.
Result<std::unique_ptr<Reader>> Decompressing(std::unique_ptr<Reader> inner,
                                              Compression* detected = nullptr);

}  // namespace ingot::io
