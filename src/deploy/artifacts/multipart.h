// The file of a multipart/form-data upload (RFC 7578), streamed: Image Streamer's golden image
// upload is `POST /rest/golden-images?name=…` with the image as the part named "file". The reader
// yields that part's bytes as they arrive, holding back only enough to recognise the boundary, so
// an image of any size passes through a fixed amount of memory. Form fields before the file
// (small, capped) are collected. Hostile input is bounded: headers and fields are capped, and a
// body that ends before the closing boundary is an error, never a shorter file.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "io/byte_source.h"

namespace ingot::deploy::artifacts {

// The boundary parameter of a multipart/form-data Content-Type; nullopt for another type or a
// boundary that is missing or not 1-70 characters.
std::optional<std::string> MultipartBoundary(std::string_view content_type);

class MultipartFileReader final : public io::Reader {
 public:
  MultipartFileReader(io::Reader& body, std::string boundary)
      : body_(body), delimiter_("\r\n--" + std::move(boundary)), buf_("\r\n") {}

  // Reads up to the start of the first part that carries a file (a filename, or the name "file").
  // kInvalidArgument for a malformed body or one without a file part.
  Status Open();
  // The file's bytes; 0 at its end. kInvalidArgument when the body ends without the boundary.
  Result<size_t> Read(std::span<uint8_t> buf) override;

  const std::map<std::string, std::string>& fields() const { return fields_; }
  const std::string& filename() const { return filename_; }

 private:
  // Appends what the body has next; false at its end.
  Result<bool> Fill();
  // Position of the next delimiter at or after pos_, reading on up to `cap` bytes past pos_.
  Result<size_t> FindDelimiter(size_t cap);

  io::Reader& body_;
  const std::string delimiter_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  bool done_ = false;
  std::map<std::string, std::string> fields_;
  std::string filename_;
};

}  // namespace ingot::deploy::artifacts
