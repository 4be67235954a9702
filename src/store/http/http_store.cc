#include "store/http/http_store.h"

#include <algorithm>
#include <mutex>
#include <vector>

namespace ingot::store {
namespace {

bool HasHttpScheme(std::string_view url) {
  auto starts = [&](std::string_view prefix) {
    if (url.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
      char c = url[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != prefix[i]) return false;
    }
    return true;
  };
  return starts("http://") || starts("https://");
}

// A response without Content-Length has no size to record or check a download against.
Result<uint64_t> LengthOf(const fetch::Download& d, const std::string& url) {
  if (!d.content_length()) {
    return InvalidArgument("The server of " + url +
                           " does not send Content-Length; an image's size must be known.");
  }
  return *d.content_length();
}

// The bytes at one URL as a ByteSource: one GET streamed while reads are sequential; a read
// elsewhere re-opens with "Range: bytes=<offset>-" (a server that ignores it and answers 200 has
// its body skipped up to the offset).
class HttpSource final : public io::ByteSource {
 public:
  HttpSource(std::string url, fetch::FetchOptions options, std::unique_ptr<fetch::Download> first,
             uint64_t size)
      : url_(std::move(url)),
        options_(std::move(options)),
        download_(std::move(first)),
        size_(size) {}

  uint64_t Size() const override { return size_; }

  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override {
    std::lock_guard lock(mu_);
    if (offset >= size_ || buf.empty()) return size_t{0};
    buf = buf.first(static_cast<size_t>(std::min<uint64_t>(buf.size(), size_ - offset)));
    if (!download_ || offset != position_) INGOT_RETURN_IF_ERROR(Reopen(offset));
    size_t done = 0;
    while (done < buf.size()) {
      INGOT_ASSIGN_OR_RETURN(size_t n, download_->Read(buf.subspan(done)));
      if (n == 0) break;
      done += n;
      position_ += n;
    }
    if (done < buf.size()) {
      download_.reset();
      return Unavailable("The server of " + url_ + " ended the body at " +
                         std::to_string(position_) + " of " + std::to_string(size_) + " bytes.");
    }
    return done;
  }

 private:
  Status Reopen(uint64_t offset) {
    download_.reset();
    fetch::FetchOptions options = options_;
    if (offset > 0) options.headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-");
    INGOT_ASSIGN_OR_RETURN(download_, fetch::Open(url_, options));
    position_ = 0;
    if (offset > 0 && download_->status() == 206) {
      position_ = offset;
      return Status::Ok();
    }
    // A whole body again: check it is still the same size, then skip to the offset.
    INGOT_ASSIGN_OR_RETURN(uint64_t length, LengthOf(*download_, url_));
    if (length != size_) {
      download_.reset();
      return Unavailable("The bytes at " + url_ + " changed size (" + std::to_string(size_) +
                         " -> " + std::to_string(length) + ").");
    }
    std::vector<uint8_t> skip(64 * 1024);
    while (position_ < offset) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(skip.size(), offset - position_));
      INGOT_ASSIGN_OR_RETURN(size_t n, download_->Read(std::span(skip.data(), want)));
      if (n == 0) return Unavailable("The server of " + url_ + " ended the body early.");
      position_ += n;
    }
    return Status::Ok();
  }

  const std::string url_;
  const fetch::FetchOptions options_;
  std::mutex mu_;
  std::unique_ptr<fetch::Download> download_;
  uint64_t position_ = 0;
  const uint64_t size_;
};

}  // namespace

Result<std::unique_ptr<PendingObject>> HttpStore::Create(const std::string&) {
  return PermissionDenied("Store " + options_.id + " is read-only (an http store).");
}

Result<std::unique_ptr<io::ByteSource>> HttpStore::Open(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<fetch::Download> d, fetch::Open(key, options_.fetch));
  INGOT_ASSIGN_OR_RETURN(uint64_t size, LengthOf(*d, key));
  return std::unique_ptr<io::ByteSource>(
      std::make_unique<HttpSource>(key, options_.fetch, std::move(d), size));
}

Result<io::UniqueFd> HttpStore::OpenFd(const std::string&) {
  return Unsupported("Store " + options_.id + " holds no local files.");
}

Result<uint64_t> HttpStore::SizeOf(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<fetch::Download> d, fetch::Open(key, options_.fetch));
  return LengthOf(*d, key);
}

Status HttpStore::Delete(const std::string&) { return Status::Ok(); }

Result<std::optional<std::string>> HttpStore::KeyOfUrl(std::string_view url) {
  if (!HasHttpScheme(url)) return std::optional<std::string>();
  std::string text(url);
  Result<fetch::ParsedUrl> parsed = fetch::CheckUrl(text, options_.fetch.filter);
  if (!parsed.ok()) return InvalidArgument(parsed.status().message());
  return std::optional<std::string>(std::move(text));
}

Result<std::unique_ptr<Store>> MakeHttpStore(const StoreConfig& config,
                                             const fetch::FetchOptions& fetch) {
  INGOT_RETURN_IF_ERROR(CheckOptions(config, {}));
  if (!config.read_only) {
    return InvalidArgument("store " + config.id +
                           ": the http driver only reads; configure it with read_only = true");
  }
  return std::unique_ptr<Store>(
      std::make_unique<HttpStore>(HttpStoreOptions{.id = config.id, .fetch = fetch}));
}

}  // namespace ingot::store
