// The use cases that move image bytes: upload (stream, hash, store, then activate), download, delete,
// and start-up repair after a crash. Callers (the API edge) have already authenticated and authorized;
// these functions enforce the catalog's rules (status machine, formats set, size cap).
//
// Thread safety: all methods may be called concurrently; races on one image are resolved by the
// repository's optimistic concurrency (the loser gets kConflict).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catalog/repository.h"
#include "io/byte_source.h"
#include "io/file.h"
#include "store/store.h"

namespace ingot::service {

struct ImageServiceOptions {
  std::string hash_algo = "sha512";      // os_hash_algo
  uint64_t size_cap = 1ull << 40;        // Glance's image_size_cap default (1 TiB)
  size_t buffer_size = 1 << 20;          // upload read size
  size_t buffer_count = 8;               // upload buffers in flight (memory = size * count)
};

// What an upload learned, for logs and metrics.
struct UploadStats {
  uint64_t bytes = 0;
  int64_t micros = 0;
};

// An image's bytes opened for sending: a file descriptor when the store is local (sendfile), else a
// byte source.
struct OpenedData {
  uint64_t size = 0;
  io::UniqueFd fd;
  std::unique_ptr<io::ByteSource> source;
};

struct RepairReport {
  int saving_reset = 0;        // images left in `saving` by a crash, put back to `queued`
  int incomplete_removed = 0;  // temporary files removed from the store
  int orphans_removed = 0;     // committed objects no image owns
  std::vector<std::string> missing_data;  // active/deactivated images whose bytes are gone or short
};

class ImageService {
 public:
  ImageService(catalog::ImageRepository& repo, store::Store& store, ImageServiceOptions options);

  // Streams `body` into the store while computing MD5 and the multihash on their own threads, makes
  // the bytes durable, and only then marks the image active. On any failure (client gone, cap
  // exceeded, I/O error) the bytes are removed and the image goes back to `queued`.
  // kConflict if the image is not queued; kInvalidArgument if its formats are unset; kTooLarge past
  // the cap (declared Content-Length or actual bytes); kNotFound if deleted meanwhile.
  Result<catalog::Image> Upload(const std::string& id, io::Reader& body,
                                std::optional<uint64_t> content_length, UploadStats* stats = nullptr);

  // Opens an active (or deactivated) image's bytes. kCorruption when the store lost them or their size
  // differs from the recorded one: never served as if whole.
  Result<OpenedData> OpenData(const catalog::Image& image);

  // Marks the image deleted, then removes its bytes (a crash in between leaves an orphan that Repair
  // removes). kPermissionDenied for a protected image.
  Status Delete(const catalog::Image& image);

  // Run once at start, before serving.
  Result<RepairReport> Repair();

  // Images found without their bytes by the last Repair() or OpenData(); for /healthcheck and metrics.
  int64_t missing_data_count() const { return missing_data_.load(); }

  const ImageServiceOptions& options() const { return options_; }
  const store::Store& store() const { return store_; }

 private:
  Result<catalog::Image> StreamIn(catalog::Image image, io::Reader& body,
                                  std::optional<uint64_t> content_length, UploadStats* stats);
  void RevertToQueued(const std::string& id);
  // Removes committed bytes no image will own; failures are logged and left to Repair().
  void DiscardBytes(const std::string& key);

  catalog::ImageRepository& repo_;
  store::Store& store_;
  ImageServiceOptions options_;
  std::atomic<int64_t> missing_data_{0};
};

}  // namespace ingot::service
