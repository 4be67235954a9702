#include "boot/machines_signer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace ingot::boot {
namespace {

// A CA and a code-signing certificate made with the openssl CLI, the way an operator makes them
// for iPXE (whose imgverify wants codeSigning in the extended key usage); verification with
// `openssl cms -verify` against the CA, as the issue asks.
class SignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-signer-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::string d = dir_;
    std::string script =
        "cd " + d + " && "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=ingot-test-ca 2>/dev/null && "
        "openssl req -newkey rsa:2048 -nodes -keyout sign.key -out sign.csr "
        "-subj /CN=ingot-boot-signer 2>/dev/null && "
        "printf 'extendedKeyUsage=codeSigning\\nkeyUsage=digitalSignature\\n' > ext && "
        "openssl x509 -req -in sign.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out sign.pem "
        "-days 2 -extfile ext 2>/dev/null";
    have_openssl_ = std::system(script.c_str()) == 0;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  bool Verify(const std::string& data, const std::string& sig) {
    std::ofstream(dir_ + "/data", std::ios::binary) << data;
    std::ofstream(dir_ + "/data.sig", std::ios::binary) << sig;
    std::string cmd = "openssl cms -verify -binary -inform DER -in " + dir_ + "/data.sig -content " +
                      dir_ + "/data -CAfile " + dir_ + "/ca.pem -purpose any -out /dev/null 2>" +
                      dir_ + "/verify.err";
    return std::system(cmd.c_str()) == 0;
  }
  std::string dir_;
  bool have_openssl_ = false;
};

TEST_F(SignerTest, DetachedCmsSignatureVerifiesAgainstTheCa) {
  if (!have_openssl_) GTEST_SKIP() << "openssl CLI not available";
  auto signer = AssetSigner::Open(dir_ + "/sign.pem", dir_ + "/sign.key", "");
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  std::string script = "#!ipxe\nkernel http://h/vmlinuz\nboot\n";
  auto sig = (*signer)->Sign(script);
  ASSERT_TRUE(sig.ok()) << sig.status().ToString();
  EXPECT_EQ(static_cast<uint8_t>((*sig)[0]), 0x30);  // DER SEQUENCE
  EXPECT_TRUE(Verify(script, *sig));
  // The same signature does not cover other bytes.
  EXPECT_FALSE(Verify(script + "shell\n", *sig));
  // Large inputs are read in pieces.
  std::string big(3 << 20, 'x');
  auto big_sig = (*signer)->Sign(big);
  ASSERT_TRUE(big_sig.ok());
  EXPECT_TRUE(Verify(big, *big_sig));
}

TEST_F(SignerTest, RefusesMismatchedOrMissingKeys) {
  if (!have_openssl_) GTEST_SKIP() << "openssl CLI not available";
  auto wrong = AssetSigner::Open(dir_ + "/sign.pem", dir_ + "/ca.key", "");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("does not belong"), std::string::npos);
  EXPECT_FALSE(AssetSigner::Open(dir_ + "/nope.pem", dir_ + "/sign.key", "").ok());
  auto chain = AssetSigner::Open(dir_ + "/sign.pem", dir_ + "/sign.key", dir_ + "/ca.pem");
  EXPECT_TRUE(chain.ok());
}

}  // namespace
}  // namespace ingot::boot
