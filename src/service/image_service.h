// The image use cases: the only code that writes image and member records. The API edge parses,
// authorizes and renders; everything that changes the catalog or moves bytes happens here, so a
// rule of the catalog (status moves, quotas, the size cap, sharing) has one home.
//
// Read once: the API loads the record it authorizes against with Get() and hands that record to the
// use case, which writes from it. When a concurrent writer saved first (kConflict from the
// repository) the use case re-reads and re-applies its change; that loop (Mutate) exists once.
//
// Status moves go through catalog::Transition, which refuses illegal ones with Glance's status and
// message. Messages of server faults (kIoError, kCorruption, ...) may name paths: the API logs them
// and shows the client a generic text.
//
// Thread safety: every method may be called concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "catalog/job_leases.h"
#include "catalog/repository.h"
#include "io/byte_source.h"
#include "io/file.h"
#include "service/ingest.h"
#include "service/quota.h"
#include "store/store_set.h"

namespace ingot::service {

struct ImageServiceOptions {
  std::string hash_algo = "sha512";  // os_hash_algo
  uint64_t size_cap = 1ull << 40;    // Glance's image_size_cap default (1 TiB)
  int property_quota = 128;          // Glance's image_property_quota
  int tag_quota = 128;               // Glance's image_tag_quota
  int member_quota = 128;            // Glance's image_member_quota
  size_t buffer_size = 1 << 20;      // upload read size
  size_t buffer_count = 8;           // upload buffers in flight (memory = size * count)
  // A catalog shared by several nodes (PostgreSQL): each upload holds the lease "upload/<id>" in
  // `upload_leases` for `node`, renewed while bytes arrive (at least every third of
  // `upload_lease`) and once more just before the bytes are committed. A node's start-up
  // Repair() puts back to `queued` the uploads it was itself running when it died; any node's
  // ReclaimAbandonedUploads() does the same for another node's upload whose lease ran out (a node
  // that never came back). The lease is the one word on who owns a `saving` image: an upload that
  // lost it commits nothing and leaves the image alone. The stores' leftovers are the scrubber's,
  // whose grace period protects writes in flight.
  // nullptr: this node is the catalog's only writer (SQLite) and Repair() sweeps everything.
  catalog::JobLeaseRepository* upload_leases = nullptr;
  std::string node;
  std::chrono::seconds upload_lease{120};
  std::function<int64_t()> now;  // microseconds since the epoch (tests); default common/time.h
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
  int incomplete_removed = 0;  // temporary objects removed from the stores
  int orphans_removed = 0;     // committed objects no image owns
  int saving_other_node = 0;   // shared catalog: uploads another node holds, left alone
  std::vector<std::string> missing_data;  // active/deactivated images whose bytes are gone or short
};

// A change to an image's attributes, applied by Update() to the record (and re-applied to a fresh
// copy after a concurrent save). It must not touch the status, which only Transition() moves.
using ImageChange = std::function<Status(catalog::Image&)>;

class ImageService {
 public:
  ImageService(catalog::ImageRepository& repo, store::StoreSet& stores,
               ImageServiceOptions options);
  ~ImageService();

  // ---- Reading ----
  // The image if `viewer` may see it; kNotFound ("No image found with ID x") otherwise, also for a
  // malformed id.
  Result<catalog::Image> Get(const std::string& id, const catalog::Viewer& viewer);
  Result<catalog::ImagePage> List(const catalog::ListQuery& query, const catalog::Viewer& viewer);
  // Non-deleted images per status; for /metrics.
  Result<std::map<catalog::ImageStatus, int64_t>> CountByStatus() { return repo_.CountByStatus(); }

  // ---- Records ----
  // Stores a new queued image from `draft` (its id, owner and attributes; timestamps are set here).
  // kConflict "Image ID x already exists!" when the id was ever used; kTooLarge over a quota.
  Result<catalog::Image> Create(catalog::Image draft);
  // Applies `change` to `image` (as loaded by Get) and saves, checking the quotas.
  Result<catalog::Image> Update(const catalog::Image& image, const ImageChange& change);
  Status AddTag(const catalog::Image& image, const std::string& tag);
  // kNotFound "Tag x not found." when the image does not carry it.
  Status RemoveTag(const catalog::Image& image, const std::string& tag);
  // Glance's admin actions: active <-> deactivated (idempotent), refused in any other status.
  Status Deactivate(const catalog::Image& image);
  Status Reactivate(const catalog::Image& image);
  // Marks the image deleted, then removes its bytes from the stores its locations name (a crash in
  // between leaves an orphan that Repair removes). kPermissionDenied for a protected image.
  Status Delete(const catalog::Image& image);

  // ---- Bytes ----
  // Streams `body` into the store named `store_id` (the default store when empty; kInvalidArgument
  // "Store for identifier x not found" for an unknown one, kPermissionDenied for a read-only one)
  // while computing MD5 and the multihash on their own threads, makes the bytes durable, and only
  // then marks the image active with a location naming that store. On any failure (client gone, cap
  // exceeded, I/O error, a concurrent delete) the bytes are removed and the image goes back to
  // `queued`, so the next upload can succeed. kConflict if the image is not queued;
  // kInvalidArgument if its formats are unset; kTooLarge past the cap (declared Content-Length or
  // actual bytes); kNotFound if deleted meanwhile. `expected_md5` (hex): the checksum the client
  // declared; other bytes are refused (400) before anything is stored.
  Result<catalog::Image> Upload(const catalog::Image& image, io::Reader& body,
                                std::optional<uint64_t> content_length,
                                const std::string& store_id = "", UploadStats* stats = nullptr,
                                std::optional<std::string> expected_md5 = std::nullopt);
  // Opens an active (or deactivated) image's bytes from one of its locations: the first store of
  // `prefer` that holds a copy, else the configured store of highest weight (ties: the order the
  // copies were made). kCorruption when the chosen store lost them, their size differs from the
  // recorded one, or no configured store holds a copy: never served as if whole.
  Result<OpenedData> OpenData(const catalog::Image& image,
                              const std::vector<std::string>& prefer = {});
  // Removes the copy in `store_id` (Glance's DELETE /v2/stores/{store}/{image}). kNotFound when the
  // image has no copy there; kConflict when it is the last copy or the image is not active;
  // kPermissionDenied for a read-only store.
  Status RemoveFromStore(const catalog::Image& image, const std::string& store_id);

  // ---- Sharing (Glance's members API) ----
  // The image must be `shared` (kPermissionDenied "Only shared images have members." otherwise).
  // kConflict when already a member; kTooLarge past the member quota.
  Result<catalog::ImageMember> AddMember(const catalog::Image& image, const std::string& member);
  Result<catalog::ImageMember> SetMemberStatus(const catalog::Image& image,
                                               const std::string& member,
                                               catalog::MemberStatus status);
  Status RemoveMember(const catalog::Image& image, const std::string& member);
  // kNotFound "Member x not found on image y." when not a member.
  Result<catalog::ImageMember> GetMember(const catalog::Image& image, const std::string& member);
  Result<std::vector<catalog::ImageMember>> ListMembers(const catalog::Image& image);

  // Run once at start, before serving: every store is swept (a shared catalog: see
  // ImageServiceOptions::upload_leases).
  Result<RepairReport> Repair();
  // Shared catalog: puts back to `queued` every `saving` image whose upload lease has run out (its
  // node died and has not come back), taking the lease first so the old upload can never commit.
  // Returns how many. 0 without upload_leases.
  Result<int> ReclaimAbandonedUploads();
  // Shared catalog: a thread that runs ReclaimAbandonedUploads every half upload_lease until the
  // service is destroyed. Nothing without upload_leases.
  void StartReclaimingUploads();

  // Images found without their bytes by the last Repair() or OpenData(); for /healthcheck and
  // metrics.
  int64_t missing_data_count() const { return missing_data_.load(); }

  const ImageServiceOptions& options() const { return options_; }
  // The ingest settings uploads use; imports start from them.
  IngestOptions ingest_options() const {
    return {.hash_algo = options_.hash_algo,
            .size_cap = options_.size_cap,
            .buffer_size = options_.buffer_size,
            .buffer_count = options_.buffer_count};
  }
  // The same for the bytes of `image`: a checksum its creator declared (os_hash_value while it
  // has no data yet) is checked on the way in.
  IngestOptions ingest_options(const catalog::Image& image) const {
    IngestOptions o = ingest_options();
    if (!image.checksum && image.os_hash_value && image.os_hash_algo == options_.hash_algo) {
      o.expected_hash = image.os_hash_value;
    }
    return o;
  }
  const store::StoreSet& stores() const { return stores_; }
  // Where imports stage bytes (service/import): deleting an image removes its staged bytes too.
  void set_staging(store::Store* staging) { staging_ = staging; }
  // Per-project quotas (service/quota.h), checked on create, upload and stage; none: unlimited.
  void set_quotas(Quotas* quotas) { quotas_ = quotas; }
  Quotas* quotas() const { return quotas_; }

 private:
  // Imports write image records through the same loop and repository (service/import/).
  friend class ImportService;
  // So do locations (service/locations.h).
  friend class LocationService;

  // The one optimistic-concurrency loop: applies `change` to `image` and saves; on kConflict
  // re-reads the record and applies it again. kNotFound when the image is gone (deleted meanwhile).
  Result<catalog::Image> Mutate(catalog::Image image, const ImageChange& change);
  Status CheckQuotas(const catalog::Image& image) const;
  const catalog::Location* ChooseLocation(const catalog::Image& image,
                                          const std::vector<std::string>& prefer) const;
  Result<catalog::Image> StreamIn(catalog::Image image, store::Store& store, io::Reader& body,
                                  std::optional<uint64_t> content_length, UploadStats* stats,
                                  std::optional<std::string> expected_md5,
                                  std::optional<uint64_t> quota_left = std::nullopt);
  void RevertToQueued(catalog::Image image);
  // This node's lease on an upload (ImageServiceOptions::upload_leases): taken when the upload
  // claims the image (an error: the upload must not start), renewed while bytes arrive (kConflict
  // once another node took it over), released when the upload ends. All Ok without a shared
  // catalog.
  Status TakeUploadLease(const std::string& image_id);
  Status RenewUploadLease(const std::string& image_id);
  void ReleaseUploadLease(const std::string& image_id);
  // Whether this node still holds the upload's lease (true without a shared catalog): an upload
  // that failed puts its image back only then, never one another node has taken over.
  bool HoldsUploadLease(const std::string& image_id);
  int64_t Now() const;
  // Removes committed bytes no image will own; failures are logged and left to Repair().
  void DiscardBytes(store::Store& store, const std::string& key);

  catalog::ImageRepository& repo_;
  store::StoreSet& stores_;
  store::Store* staging_ = nullptr;
  Quotas* quotas_ = nullptr;
  ImageServiceOptions options_;
  std::atomic<int64_t> missing_data_{0};

  // StartReclaimingUploads' thread.
  std::mutex reclaim_mu_;
  std::condition_variable reclaim_cv_;
  bool stopping_ = false;  // guarded by reclaim_mu_
  std::thread reclaimer_;
};

}  // namespace ingot::service
