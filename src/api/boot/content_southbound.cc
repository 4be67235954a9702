#include "api/boot/content_southbound.h"

#include <algorithm>

#include "api/boot/paths.h"
#include "api/boot/southbound.h"
#include "api/boot/validators.h"
#include "boot/layouts.h"
#include "common/log.h"
#include "formats/format.h"
#include "http/range.h"
#include "io/file.h"

namespace ingot::api::boot {
namespace {

http::Response Text(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.headers.Set("Content-Type", "text/plain; charset=utf-8");
  r.headers.Set("X-Content-Type-Options", "nosniff");
  r.body = std::move(body);
  r.route = "boot.content";
  return r;
}

// The Host header when it is a plain host[:port] (a name, IPv4 or bracketed IPv6): it goes into
// URLs a machine follows, so nothing else is taken.
std::optional<std::string> SafeHost(const http::Request& req) {
  auto host = req.headers.Get("Host");
  if (!host || host->empty() || host->size() > 255) return std::nullopt;
  for (char c : *host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '[' || c == ']')) {
      return std::nullopt;
    }
  }
  return std::string(*host);
}

// The bytes [pos, end) of a virtual disk (or any source), owning what it reads through.
class RangeReader final : public io::Reader {
 public:
  RangeReader(service::OpenedData data, std::unique_ptr<formats::DiskImage> disk, uint64_t pos,
              uint64_t end)
      : data_(std::move(data)), disk_(std::move(disk)), pos_(pos), end_(end) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    if (pos_ >= end_) return size_t{0};
    io::ByteSource& src = disk_ ? static_cast<io::ByteSource&>(*disk_) : *data_.source;
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end_ - pos_));
    INGOT_ASSIGN_OR_RETURN(size_t n, src.ReadAt(pos_, buf.first(want)));
    if (n == 0) return Corruption("the image ended early");
    pos_ += n;
    return n;
  }

 private:
  service::OpenedData data_;
  std::unique_ptr<formats::DiskImage> disk_;
  uint64_t pos_, end_;
};

}  // namespace

std::string Md5Base64(std::string_view hex) {
  if (hex.size() != 32) return "";
  uint8_t bytes[16];
  for (int i = 0; i < 16; ++i) {
    auto nib = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return "";
    bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (int i = 0; i < 16; i += 3) {
    uint32_t v = bytes[i] << 16;
    if (i + 1 < 16) v |= bytes[i + 1] << 8;
    if (i + 2 < 16) v |= bytes[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < 16 ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < 16 ? kAlphabet[v & 63] : '=';
  }
  return out;
}

bool ContentSouthbound::Blocks(const http::Request&, const BootPath& path) {
  return path.components.size() == 2 && path.components[0] == "images";
}

std::optional<http::Response> ContentSouthbound::Handle(const http::Request& req,
                                                        const BootPath& path) {
  const std::vector<std::string>& c = path.components;
  const bool get = req.method == "GET" || req.method == "HEAD";
  auto not_allowed = [] {
    http::Response r = Text(405, "405 Method Not Allowed\n");
    r.headers.Set("Allow", "GET, HEAD");
    return r;
  };
  if (c.size() == 2 && c[0] == "images") {
    auto p = content_.FindPublication(c[1]);
    if (!p) return std::nullopt;
    if (!get) return not_allowed();
    http::Response r = ServeImage(req, *p);
    r.route = "boot.images";
    return r;
  }
  if (c.size() < 2 || c.size() > 3 || ingot::boot::IsReservedPrefix(c[0])) return std::nullopt;
  auto tree = content_.ServedTree(c[0], c[1]);
  if (!tree) return std::nullopt;
  if (c.size() == 2 && !path.trailing_slash) {
    if (!get) return not_allowed();
    http::Response r = Text(301, "301 Moved Permanently\n");
    r.headers.Set("Location", EncodePath(c, /*directory=*/true));
    return r;
  }
  if (c.size() != 3 || c[2] != "boot.ipxe" || path.trailing_slash || tree->boot.kernel.empty()) {
    return std::nullopt;
  }
  if (!get) return not_allowed();
  auto host = SafeHost(req);
  if (!host) return Text(400, "400 Bad Request\nThe Host header is missing or not a host name.\n");
  const std::string origin = "http://" + *host;
  std::string script =
      ingot::boot::RenderIpxe(*tree, origin + EncodePath({c[0], c[1]}, true),
                              origin + EncodePath({"iso", tree->iso}, false));
  http::Response r = Text(200, std::move(script));
  r.headers.Set("Cache-Control", "no-cache");
  return r;
}

http::Response ContentSouthbound::ServeImage(const http::Request& req,
                                             const ingot::boot::Publication& p) {
  auto fail = [&](const Status& s) {
    if (s.code() == Code::kNotFound) return Text(404, "404 Not Found\n");
    log::Error("boot.images.error", {{"image", p.image_id}, {"error", s.ToString()}});
    return Text(503, "503 Service Unavailable\nThe image's bytes cannot be read now.\n");
  };
  auto image = images_.Get(p.image_id, catalog::Viewer{std::nullopt, /*is_admin=*/true});
  if (!image.ok()) return fail(image.status());
  if (image->status() != catalog::ImageStatus::kActive) return Text(404, "404 Not Found\n");
  auto data = images_.OpenData(*image);
  if (!data.ok()) return fail(data.status());
  const std::string checksum = image->checksum.value_or("");
  const int64_t mtime = image->updated_at / 1'000'000;
  const std::string fmt = image->disk_format.value_or("raw");
  const bool convert = p.raw && fmt != "raw" && fmt != "iso";
  if (!convert && data->fd) {
    http::Response r = Southbound::SendFile(req, std::move(data->fd), data->size,
                                            "\"" + checksum + "\"", mtime,
                                            "application/octet-stream");
    // Content-MD5 is the digest of the whole representation: only on a whole 200.
    if (r.status == 200 && !checksum.empty()) r.headers.Set("Content-MD5", Md5Base64(checksum));
    return r;
  }
  // A local store hands out a descriptor only: read through it.
  if (!data->source) {
    if (!data->fd) return fail(Internal("the store gave neither a source nor a descriptor"));
    data->source = std::make_unique<io::FileSource>(std::move(data->fd), data->size, p.image_id);
  }
  std::unique_ptr<formats::DiskImage> disk;
  uint64_t size = data->size;
  std::string etag = "\"" + checksum + "\"";
  if (convert) {
    auto opened = formats::Open(*data->source);
    if (!opened.ok()) {
      if (IsServerFault(opened.status().code())) return fail(opened.status());
      return Text(409, "409 Conflict\nThe image cannot be read as a virtual disk: " +
                           opened.status().message() + "\n");
    }
    disk = std::move(*opened);
    size = disk->Size();
    etag = "\"raw-" + checksum + "\"";
  }
  Validators v{etag, mtime};
  http::Response r;
  auto describe = [&](http::Response& out) {
    out.headers.Set("ETag", v.etag);
    out.headers.Set("Last-Modified", FormatHttpDate(v.last_modified));
    out.headers.Set("Accept-Ranges", "bytes");
  };
  switch (EvaluatePreconditions(req.headers, v)) {
    case Precondition::kNotModified:
      r.status = 304;
      describe(r);
      return r;
    case Precondition::kFailed:
      r = Text(412, "412 Precondition Failed\n");
      describe(r);
      return r;
    case Precondition::kServe:
      break;
  }
  uint64_t first = 0, last = size == 0 ? 0 : size - 1;
  r.status = 200;
  if (auto h = req.headers.Get("Range"); h && size > 0 && RangeAllowed(req.headers, v)) {
    auto range = http::ParseRange(*h, size);
    if (!range) {
      r = Text(416, "416 Range Not Satisfiable\n");
      r.headers.Set("Content-Range", "bytes */" + std::to_string(size));
      describe(r);
      return r;
    }
    first = range->first;
    last = range->last;
    r.status = 206;
    r.headers.Set("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) +
                                       "/" + std::to_string(size));
  }
  describe(r);
  r.headers.Set("Content-Type", "application/octet-stream");
  if (r.status == 200 && !convert && !checksum.empty()) {
    r.headers.Set("Content-MD5", Md5Base64(checksum));
  }
  const uint64_t end = size == 0 ? 0 : last + 1;
  r.stream = std::make_unique<RangeReader>(std::move(*data), std::move(disk), first, end);
  r.stream_length = end - first;
  return r;
}

}  // namespace ingot::api::boot
