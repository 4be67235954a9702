#include "deploy/artifacts/multipart.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace ingot::deploy::artifacts {
namespace {

constexpr size_t kMaxHeaders = 16 << 10;
constexpr size_t kMaxField = 64 << 10;
constexpr size_t kMaxParts = 32;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The value of `param` in a header value such as `form-data; name="file"; filename="a.img"`.
std::optional<std::string> Param(std::string_view value, std::string_view param) {
  size_t pos = 0;
  while (pos < value.size()) {
    size_t semi = value.find(';', pos);
    std::string_view item = value.substr(pos, semi == std::string_view::npos ? semi : semi - pos);
    pos = semi == std::string_view::npos ? value.size() : semi + 1;
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.remove_prefix(1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.remove_suffix(1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || Lower(item.substr(0, eq)) != param) continue;
    std::string_view v = item.substr(eq + 1);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return std::string(v);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> MultipartBoundary(std::string_view content_type) {
  size_t semi = content_type.find(';');
  std::string type = Lower(content_type.substr(0, semi));
  while (!type.empty() && std::isspace(static_cast<unsigned char>(type.back()))) type.pop_back();
  if (type != "multipart/form-data" || semi == std::string_view::npos) return std::nullopt;
  auto b = Param(content_type.substr(semi + 1), "boundary");
  if (!b || b->empty() || b->size() > 70) return std::nullopt;
  return b;
}

Result<bool> MultipartFileReader::Fill() {
  if (eof_) return false;
  if (pos_ > (1 << 20) && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  char chunk[64 << 10];
  INGOT_ASSIGN_OR_RETURN(size_t n, body_.Read({reinterpret_cast<uint8_t*>(chunk), sizeof chunk}));
  if (n == 0) {
    eof_ = true;
    return false;
  }
  buf_.append(chunk, n);
  return true;
}

Result<size_t> MultipartFileReader::FindDelimiter(size_t cap) {
  for (;;) {
    size_t at = buf_.find(delimiter_, pos_);
    if (at != std::string::npos && at - pos_ <= cap) return at;
    if (buf_.size() - pos_ > cap + delimiter_.size()) {
      return InvalidArgument("multipart body: a part is larger than allowed before the file");
    }
    INGOT_ASSIGN_OR_RETURN(bool more, Fill());
    if (!more) return InvalidArgument("multipart body: the boundary was not found");
  }
}

Status MultipartFileReader::Open() {
  // The preamble (anything before the first delimiter) is skipped, as RFC 2046 says.
  INGOT_ASSIGN_OR_RETURN(size_t at, FindDelimiter(kMaxField));
  pos_ = at + delimiter_.size();
  for (size_t part = 0; part < kMaxParts; ++part) {
    while (buf_.size() - pos_ < 2) {
      INGOT_ASSIGN_OR_RETURN(bool more, Fill());
      if (!more) return InvalidArgument("multipart body: truncated after a boundary");
    }
    if (buf_.compare(pos_, 2, "--") == 0) {
      return InvalidArgument("the multipart body has no file part (send the image as the part "
                             "named \"file\")");
    }
    // Transport padding, then CRLF.
    size_t eol;
    while ((eol = buf_.find("\r\n", pos_)) == std::string::npos) {
      if (buf_.size() - pos_ > 256) return InvalidArgument("multipart body: malformed boundary line");
      INGOT_ASSIGN_OR_RETURN(bool more, Fill());
      if (!more) return InvalidArgument("multipart body: truncated after a boundary");
    }
    for (size_t i = pos_; i < eol; ++i) {
      if (buf_[i] != ' ' && buf_[i] != '\t') {
        return InvalidArgument("multipart body: malformed boundary line");
      }
    }
    pos_ = eol + 2;
    size_t end;
    while ((end = buf_.find("\r\n\r\n", pos_ - 2)) == std::string::npos || end + 2 < pos_) {
      if (buf_.size() - pos_ > kMaxHeaders) return InvalidArgument("multipart body: part headers too long");
      INGOT_ASSIGN_OR_RETURN(bool more, Fill());
      if (!more) return InvalidArgument("multipart body: truncated part headers");
    }
    std::string_view headers = std::string_view(buf_).substr(pos_, end >= pos_ ? end - pos_ : 0);
    if (headers.size() > kMaxHeaders) return InvalidArgument("multipart body: part headers too long");
    std::optional<std::string> name, filename;
    size_t hp = 0;
    while (hp < headers.size()) {
      size_t nl = headers.find("\r\n", hp);
      std::string_view line = headers.substr(hp, nl == std::string_view::npos ? nl : nl - hp);
      hp = nl == std::string_view::npos ? headers.size() : nl + 2;
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      if (Lower(line.substr(0, colon)) == "content-disposition") {
        name = Param(line.substr(colon + 1), "name");
        filename = Param(line.substr(colon + 1), "filename");
      }
    }
    pos_ = end + 4;
    if (filename || name == "file") {
      filename_ = filename.value_or("");
      return Status::Ok();
    }
    INGOT_ASSIGN_OR_RETURN(size_t next, FindDelimiter(kMaxField));
    if (name) fields_[*name] = buf_.substr(pos_, next - pos_);
    pos_ = next + delimiter_.size();
  }
  return InvalidArgument("multipart body: too many parts before the file");
}

Result<size_t> MultipartFileReader::Read(std::span<uint8_t> out) {
  if (done_ || out.empty()) return size_t{0};
  for (;;) {
    size_t at = buf_.find(delimiter_, pos_);
    size_t avail;
    if (at != std::string::npos) {
      avail = at - pos_;
      if (avail == 0) {
        done_ = true;  // what follows (the closing "--", other parts) is not the file's
        return size_t{0};
      }
    } else {
      // Hold back what could be the start of a delimiter.
      size_t held = std::min(buf_.size() - pos_, delimiter_.size() - 1);
      avail = buf_.size() - pos_ - held;
    }
    if (avail > 0) {
      size_t n = std::min(avail, out.size());
      std::memcpy(out.data(), buf_.data() + pos_, n);
      pos_ += n;
      return n;
    }
    INGOT_ASSIGN_OR_RETURN(bool more, Fill());
    if (!more) return InvalidArgument("the multipart body ends before its closing boundary");
  }
}

}  // namespace ingot::deploy::artifacts
