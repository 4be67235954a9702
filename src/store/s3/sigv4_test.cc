// AWS's published Signature Version 4 vectors: the SigV4 test suite (credentials AKIDEXAMPLE,
// service "service", 2015-08-30T12:36:00Z) and the S3 API reference's worked examples
// ("Signature Calculations for the Authorization Header: Transferring Payload in a Single Chunk",
// examplebucket, 2013-05-24).
#include "store/s3/sigv4.h"

#include <gtest/gtest.h>

namespace ingot::store::s3 {
namespace {

constexpr char kEmptySha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

SigningInput Suite(std::string method, std::vector<std::pair<std::string, std::string>> query = {}) {
  SigningInput in;
  in.method = std::move(method);
  in.canonical_uri = "/";
  in.query = std::move(query);
  in.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  in.payload_hash = kEmptySha;
  in.amz_date = "20150830T123600Z";
  in.region = "us-east-1";
  in.service = "service";
  return in;
}

const Credentials kSuite{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
const Credentials kS3{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};

SigningInput S3Example(std::string method, std::string uri,
                       std::vector<std::pair<std::string, std::string>> query,
                       std::vector<std::pair<std::string, std::string>> extra,
                       std::string payload = kEmptySha) {
  SigningInput in;
  in.method = std::move(method);
  in.canonical_uri = std::move(uri);
  in.query = std::move(query);
  in.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                {"x-amz-date", "20130524T000000Z"},
                {"x-amz-content-sha256", payload}};
  for (auto& h : extra) in.headers.push_back(std::move(h));
  in.payload_hash = payload;
  in.amz_date = "20130524T000000Z";
  in.region = "us-east-1";
  in.service = "s3";
  return in;
}

TEST(SigV4, GetVanilla) {
  SigningInput in = Suite("GET");
  EXPECT_EQ(Sha256Hex(CanonicalRequest(in)),
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(Authorization(in, kSuite),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, GetVanillaQueryOrderKeyCase) {
  SigningInput in = Suite("GET", {{"Param2", "value2"}, {"Param1", "value1"}});
  EXPECT_EQ(CanonicalQuery(in.query), "Param1=value1&Param2=value2");
  EXPECT_EQ(Signature(in, kSuite),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(SigV4, PostVanilla) {
  EXPECT_EQ(Signature(Suite("POST"), kSuite),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4, S3GetObjectRange) {
  SigningInput in = S3Example("GET", "/test.txt", {}, {{"Range", "bytes=0-9"}});
  EXPECT_EQ(Sha256Hex(CanonicalRequest(in)),
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(Authorization(in, kS3),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, S3PutObject) {
  const std::string payload = Sha256Hex(std::string_view("Welcome to Amazon S3."));
  EXPECT_EQ(payload, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SigningInput in = S3Example("PUT", "/test%24file.text", {},
                              {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                               {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                              payload);
  EXPECT_EQ(SignedHeaders(in), "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
  EXPECT_EQ(Signature(in, kS3),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, S3GetBucketLifecycle) {
  SigningInput in = S3Example("GET", "/", {{"lifecycle", ""}}, {});
  EXPECT_EQ(CanonicalQuery(in.query), "lifecycle=");
  EXPECT_EQ(Signature(in, kS3),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4, S3ListObjects) {
  SigningInput in = S3Example("GET", "/", {{"max-keys", "2"}, {"prefix", "J"}}, {});
  EXPECT_EQ(Signature(in, kS3),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, HeaderValuesAreTrimmedAndCollapsed) {
  SigningInput in = Suite("GET");
  in.headers.emplace_back("My-Header1", "  a   b   c  ");
  EXPECT_NE(CanonicalRequest(in).find("my-header1:a b c\n"), std::string::npos);
}

TEST(SigV4, AmzDate) {
  EXPECT_EQ(AmzDate(1440938160), "20150830T123600Z");
  EXPECT_EQ(AmzDate(0), "19700101T000000Z");
}

}  // namespace
}  // namespace ingot::store::s3
