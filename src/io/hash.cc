#include "io/hash.h"

#include <openssl/evp.h>

#include <cctype>

namespace ingot::io {
namespace {

class EvpHasher final : public Hasher {
 public:
  explicit EvpHasher(EVP_MD_CTX* ctx) : ctx_(ctx) {}
  ~EvpHasher() override { EVP_MD_CTX_free(ctx_); }
  void Update(std::span<const uint8_t> data) override {
    EVP_DigestUpdate(ctx_, data.data(), data.size());
  }
  std::string HexDigest() override {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned i = 0; i < len; ++i) {
      out += hex[md[i] >> 4];
      out += hex[md[i] & 15];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

Result<std::unique_ptr<Hasher>> Hasher::Create(std::string_view algo) {
  static constexpr std::string_view kAllowed[] = {"md5",    "sha1",   "sha224",
                                                  "sha256", "sha384", "sha512"};
  bool allowed = false;
  for (auto a : kAllowed) allowed |= (a == algo);
  if (!allowed) return InvalidArgument("unsupported hash algorithm '" + std::string(algo) + "'");
  const EVP_MD* md = EVP_get_digestbyname(std::string(algo).c_str());
  if (md == nullptr) return InvalidArgument("hash algorithm '" + std::string(algo) + "' unavailable");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, md, nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    return Internal("cannot initialise " + std::string(algo));
  }
  return std::unique_ptr<Hasher>(new EvpHasher(ctx));
}

Result<std::string> Md5HexFromHeader(std::string_view value) {
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  auto bad = [&] {
    return InvalidArgument("Content-MD5 must be the base64 (RFC 1864) or hex MD5 of the data.");
  };
  static const char kHex[] = "0123456789abcdef";
  if (value.size() == 32) {
    std::string hex;
    for (char c : value) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) return bad();
      hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return hex;
  }
  if (value.size() != 24 || value.substr(22) != "==") return bad();
  for (char c : value.substr(0, 22)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/') return bad();
  }
  uint8_t raw[18];
  const int n = EVP_DecodeBlock(raw, reinterpret_cast<const unsigned char*>(value.data()), 24);
  if (n != 18) return bad();  // 24 base64 characters decode to 18 bytes, the last two padding
  std::string hex;
  for (int i = 0; i < 16; ++i) {
    hex += kHex[raw[i] >> 4];
    hex += kHex[raw[i] & 15];
  }
  return hex;
}

Result<std::string> HexDigestOf(std::string_view algo, std::span<const uint8_t> data) {
  INGOT_ASSIGN_OR_RETURN(auto h, Hasher::Create(algo));
  h->Update(data);
  return h->HexDigest();
}

}  // namespace ingot::io
