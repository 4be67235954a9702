// Digests of image bytes: MD5 for Glance's `checksum`, and the configurable multihash (`os_hash_algo`,
// sha512 by default). OpenSSL's EVP implementations: assembly-optimised, the fastest on this hardware.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace ingot::io {

// One running digest. Not thread-safe; one per stream.
class Hasher {
 public:
  // `algo` is an OpenSSL digest name Glance accepts for os_hash_algo: md5, sha1, sha224, sha256,
  // sha384, sha512. kInvalidArgument for anything else.
  static Result<std::unique_ptr<Hasher>> Create(std::string_view algo);
  virtual ~Hasher() = default;
  virtual void Update(std::span<const uint8_t> data) = 0;
  // Lower-case hex of the digest; the hasher is finished afterwards.
  virtual std::string HexDigest() = 0;
};

// Convenience: hex digest of a whole buffer.
Result<std::string> HexDigestOf(std::string_view algo, std::span<const uint8_t> data);

// An MD5 as a client declares it in Content-MD5: base64 of the 16 bytes (RFC 1864), or 32 hex
// digits (what many clients send instead). Lower-case hex, or kInvalidArgument.
Result<std::string> Md5HexFromHeader(std::string_view value);

}  // namespace ingot::io
