#include "boot/machines_signer.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace ingot::boot {
namespace {

std::string OpensslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct CmsFree {
  void operator()(CMS_ContentInfo* c) const { CMS_ContentInfo_free(c); }
};
using CmsPtr = std::unique_ptr<CMS_ContentInfo, CmsFree>;

}  // namespace

struct AssetSigner::Keys {
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
  STACK_OF(X509)* chain = nullptr;
  ~Keys() {
    X509_free(cert);
    EVP_PKEY_free(key);
    if (chain != nullptr) sk_X509_pop_free(chain, X509_free);
  }
};

AssetSigner::AssetSigner(std::unique_ptr<Keys> keys) : keys_(std::move(keys)) {}
AssetSigner::~AssetSigner() = default;

Result<std::unique_ptr<AssetSigner>> AssetSigner::Open(const std::string& cert_file,
                                                       const std::string& key_file,
                                                       const std::string& chain_file) {
  auto keys = std::make_unique<Keys>();
  BioPtr cert_bio(BIO_new_file(cert_file.c_str(), "r"));
  if (!cert_bio) return InvalidArgument("signing certificate " + cert_file + " cannot be read");
  keys->cert = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr);
  if (keys->cert == nullptr) {
    return InvalidArgument("signing certificate " + cert_file + " is not a PEM certificate: " +
                           OpensslError());
  }
  BioPtr key_bio(BIO_new_file(key_file.c_str(), "r"));
  if (!key_bio) return InvalidArgument("signing key " + key_file + " cannot be read");
  keys->key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  if (keys->key == nullptr) {
    return InvalidArgument("signing key " + key_file + " is not an unencrypted PEM private key: " +
                           OpensslError());
  }
  if (X509_check_private_key(keys->cert, keys->key) != 1) {
    ERR_clear_error();
    return InvalidArgument("signing key " + key_file + " does not belong to " + cert_file);
  }
  keys->chain = sk_X509_new_null();
  if (!chain_file.empty()) {
    BioPtr chain_bio(BIO_new_file(chain_file.c_str(), "r"));
    if (!chain_bio) return InvalidArgument("certificate chain " + chain_file + " cannot be read");
    while (X509* c = PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr)) {
      sk_X509_push(keys->chain, c);
    }
    ERR_clear_error();  // the end of the file reads as an error
  }
  return std::unique_ptr<AssetSigner>(new AssetSigner(std::move(keys)));
}

Result<std::string> AssetSigner::Sign(std::string_view data) const {
  class View final : public io::ByteSource {
   public:
    explicit View(std::string_view d) : d_(d) {}
    Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override {
      if (offset >= d_.size()) return size_t{0};
      size_t n = std::min(buf.size(), d_.size() - static_cast<size_t>(offset));
      std::memcpy(buf.data(), d_.data() + offset, n);
      return n;
    }
    uint64_t Size() const override { return d_.size(); }

   private:
    std::string_view d_;
  } view(data);
  return Sign(view);
}

Result<std::string> AssetSigner::Sign(io::ByteSource& source) const {
  // Detached, binary (no MIME canonicalisation), no signed attributes: what iPXE verifies.
  const unsigned flags = CMS_DETACHED | CMS_BINARY | CMS_NOATTR | CMS_PARTIAL | CMS_NOSMIMECAP;
  CmsPtr cms(CMS_sign(keys_->cert, keys_->key, keys_->chain, nullptr, flags));
  if (!cms) return Internal("CMS_sign: " + OpensslError());
  BioPtr content(CMS_dataInit(cms.get(), nullptr));
  if (!content) return Internal("CMS_dataInit: " + OpensslError());
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t offset = 0;;) {
    INGOT_ASSIGN_OR_RETURN(size_t n, source.ReadAt(offset, buf));
    if (n == 0) break;
    if (BIO_write(content.get(), buf.data(), static_cast<int>(n)) != static_cast<int>(n)) {
      return Internal("CMS content write: " + OpensslError());
    }
    offset += n;
  }
  if (CMS_dataFinal(cms.get(), content.get()) != 1) {
    return Internal("CMS_dataFinal: " + OpensslError());
  }
  unsigned char* der = nullptr;
  int len = i2d_CMS_ContentInfo(cms.get(), &der);
  if (len <= 0) return Internal("i2d_CMS_ContentInfo: " + OpensslError());
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace ingot::boot
