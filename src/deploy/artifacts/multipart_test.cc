#include "deploy/artifacts/multipart.h"

#include <gtest/gtest.h>

#include "io/memory.h"

namespace ingot::deploy::artifacts {
namespace {

// Delivers the body a few bytes at a time, so boundaries straddle reads.
class Trickle final : public io::Reader {
 public:
  Trickle(std::string data, size_t step) : data_(std::move(data)), step_(step) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    size_t n = std::min({step_, buf.size(), data_.size() - pos_});
    std::copy_n(data_.data() + pos_, n, buf.data());
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  size_t step_;
  size_t pos_ = 0;
};

Result<std::string> ReadAll(io::Reader& r) {
  std::string out;
  uint8_t buf[7];
  for (;;) {
    INGOT_ASSIGN_OR_RETURN(size_t n, r.Read(buf));
    if (n == 0) return out;
    out.append(reinterpret_cast<char*>(buf), n);
  }
}

TEST(Multipart, Boundary) {
  EXPECT_EQ(*MultipartBoundary("multipart/form-data; boundary=----abc"), "----abc");
  EXPECT_EQ(*MultipartBoundary("Multipart/Form-Data; charset=x; boundary=\"q r\""), "q r");
  EXPECT_FALSE(MultipartBoundary("application/octet-stream"));
  EXPECT_FALSE(MultipartBoundary("multipart/form-data"));
}

TEST(Multipart, FileAfterFieldsAnyChunking) {
  // Bytes that start like the delimiter ("\r\n--B") without being it.
  std::string file = "\r\n--A x\r\n-B\r\n--" + std::string(3000, 'z') + "\r\n-";
  std::string body = "preamble\r\n--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ngold\r\n"
                     "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"disk.raw\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n" +
                     file + "\r\n--B--\r\n";
  for (size_t step : {1, 2, 3, 5, 64, 100000}) {
    Trickle in(body, step);
    MultipartFileReader r(in, "B");
    ASSERT_TRUE(r.Open().ok()) << step;
    EXPECT_EQ(r.fields().at("name"), "gold");
    EXPECT_EQ(r.filename(), "disk.raw");
    auto got = ReadAll(r);
    ASSERT_TRUE(got.ok()) << step;
    EXPECT_EQ(*got, file) << step;
  }
}

TEST(Multipart, TruncatedIsAnErrorNotAShortFile) {
  std::string body = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabcdef";
  Trickle in(body, 4);
  MultipartFileReader r(in, "B");
  ASSERT_TRUE(r.Open().ok());
  auto got = ReadAll(r);
  EXPECT_FALSE(got.ok());
}

TEST(Multipart, NoFilePart) {
  io::StringReader in("--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--B--\r\n");
  MultipartFileReader r(in, "B");
  Status s = r.Open();
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace ingot::deploy::artifacts
