#include "store/s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>

#include "store/remote/transport.h"

namespace ingot::store::s3 {
namespace {

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Trimmed, with each run of spaces inside the value made one space.
std::string CanonicalValue(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Sorted lower-case names with their values (same names joined by ',').
std::vector<std::pair<std::string, std::string>> CanonicalHeaders(const SigningInput& in) {
  std::vector<std::pair<std::string, std::string>> h;
  for (const auto& [k, v] : in.headers) h.emplace_back(Lower(k), CanonicalValue(v));
  std::stable_sort(h.begin(), h.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [k, v] : h) {
    if (!out.empty() && out.back().first == k) {
      out.back().second += "," + v;
    } else {
      out.emplace_back(std::move(k), std::move(v));
    }
  }
  return out;
}

std::string Scope(const SigningInput& in) {
  return in.amz_date.substr(0, 8) + "/" + in.region + "/" + in.service + "/aws4_request";
}

}  // namespace

std::string Sha256Hex(std::span<const uint8_t> data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

std::string AmzDate(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> q;
  for (const auto& [k, v] : query) {
    q.emplace_back(remote::PercentEncode(k, false), remote::PercentEncode(v, false));
  }
  std::sort(q.begin(), q.end());
  std::string out;
  for (const auto& [k, v] : q) out += (out.empty() ? "" : "&") + k + "=" + v;
  return out;
}

std::string SignedHeaders(const SigningInput& in) {
  std::string out;
  for (const auto& [k, _] : CanonicalHeaders(in)) out += (out.empty() ? "" : ";") + k;
  return out;
}

std::string CanonicalRequest(const SigningInput& in) {
  std::string out = in.method + "\n" + in.canonical_uri + "\n" + CanonicalQuery(in.query) + "\n";
  for (const auto& [k, v] : CanonicalHeaders(in)) out += k + ":" + v + "\n";
  out += "\n" + SignedHeaders(in) + "\n" + in.payload_hash;
  return out;
}

std::string StringToSign(const SigningInput& in) {
  return "AWS4-HMAC-SHA256\n" + in.amz_date + "\n" + Scope(in) + "\n" +
         Sha256Hex(CanonicalRequest(in));
}

std::string Signature(const SigningInput& in, const Credentials& creds) {
  std::string key = Hmac("AWS4" + creds.secret_key, in.amz_date.substr(0, 8));
  key = Hmac(key, in.region);
  key = Hmac(key, in.service);
  key = Hmac(key, "aws4_request");
  const std::string sig = Hmac(key, StringToSign(in));
  return Hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

std::string Authorization(const SigningInput& in, const Credentials& creds) {
  return "AWS4-HMAC-SHA256 Credential=" + creds.access_key + "/" + Scope(in) +
         ", SignedHeaders=" + SignedHeaders(in) + ", Signature=" + Signature(in, creds);
}

}  // namespace ingot::store::s3
