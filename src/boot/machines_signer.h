// Detached signatures of boot scripts and assets, the kind iPXE's `imgverify` checks: CMS
// (PKCS#7) SignedData in DER, over the bytes as they are (binary), no signed attributes, signed
// with a configured key and certificate (which iPXE wants to carry the codeSigning extended key
// usage, chaining to a CA built into or trusted by iPXE). Made with OpenSSL's CMS API — the same
// form `openssl cms -sign -binary -noattr -outform DER` writes and `openssl cms -verify` checks.
//
// Thread-safe: Sign may run on every worker at once (the key and certificates are read-only).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "io/byte_source.h"

namespace ingot::boot {

class AssetSigner {
 public:
  // Loads the PEM certificate and private key (and, optionally, more PEM certificates to include
  // for the verifier: the intermediate chain). kInvalidArgument naming the file that cannot be
  // used, or when the key does not belong to the certificate.
  static Result<std::unique_ptr<AssetSigner>> Open(const std::string& cert_file,
                                                   const std::string& key_file,
                                                   const std::string& chain_file);
  ~AssetSigner();

  // The DER signature of `data`.
  Result<std::string> Sign(std::string_view data) const;
  // The DER signature of the whole of `source`, read in pieces (memory does not grow with it).
  Result<std::string> Sign(io::ByteSource& source) const;

 private:
  struct Keys;
  explicit AssetSigner(std::unique_ptr<Keys> keys);
  std::unique_ptr<Keys> keys_;
};

}  // namespace ingot::boot
