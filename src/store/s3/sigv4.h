// AWS Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html):
// the canonical request, the string to sign, the signing key and the Authorization header, as
// pure functions over their inputs. HMAC-SHA256 and SHA-256 come from OpenSSL.
//
// S3 flavour: the canonical URI is the path as sent (already percent-encoded once, '/' kept), not
// normalised or encoded again as other AWS services do. Unit-tested against AWS's published
// vectors (the SigV4 test suite and the S3 API reference's examples).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ingot::store::s3 {

struct SigningInput {
  std::string method;
  std::string canonical_uri;  // the encoded path: "/", "/bucket/key", "/test%24file.text"
  std::vector<std::pair<std::string, std::string>> query;  // decoded names and values
  // Every header to sign (host among them), any case; values are trimmed and inner runs of
  // spaces collapsed.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_hash;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
  std::string amz_date;      // "YYYYMMDDTHHMMSSZ"
  std::string region;
  std::string service = "s3";
};

struct Credentials {
  std::string access_key;
  std::string secret_key;
};

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);
std::string CanonicalRequest(const SigningInput& in);
std::string SignedHeaders(const SigningInput& in);
std::string StringToSign(const SigningInput& in);
// Hex HMAC-SHA256 of the string to sign under the derived key.
std::string Signature(const SigningInput& in, const Credentials& creds);
// "AWS4-HMAC-SHA256 Credential=<ak>/<date>/<region>/<service>/aws4_request, SignedHeaders=...,
// Signature=..."
std::string Authorization(const SigningInput& in, const Credentials& creds);

std::string Sha256Hex(std::span<const uint8_t> data);
inline std::string Sha256Hex(std::string_view s) {
  return Sha256Hex({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}
// "YYYYMMDDTHHMMSSZ" for a Unix time in seconds.
std::string AmzDate(int64_t unix_seconds);

}  // namespace ingot::store::s3
