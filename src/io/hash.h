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

}  // namespace ingot::io
