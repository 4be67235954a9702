// The OpenStack Swift store (driver "swift"): image bytes as objects in a Swift container, with
// Glance's option names (glance_store's swift driver) where Glance has one.
//
// Layout: the object of image `key` is <container>/<key>, where <container> is the configured
// container, or with swift_store_multiple_containers_seed = N > 0, <container>_<first N
// characters of key> (Glance's sharding, to keep container databases small). An image that fits
// in one segment and in swift_store_large_object_size is one plain object; a bigger one is a
// Static Large Object: segments <container>_segments/<key>/<upload id>/<8-digit number> and a
// manifest at <container>/<key>. Uploads stream with bounded memory (remote/streams.h:
// swift_store_large_object_chunk_size * (swift_store_upload_concurrency + 1)), several segments at
// once. Past Swift's 1000 segments per manifest the manifest nests (SLOs of SLOs).
//
// Durability and visibility (store.h): nothing appears at <container>/<key> before Commit, whose
// PUT of the object or of the manifest is atomic in Swift and acknowledged only once durable.
// Every segment is sent with its MD5 as ETag (Swift refuses a segment whose bytes differ), and the
// ETag Swift returns for each segment and for the manifest (the MD5 of the segments' MD5s) is
// checked against ours. An abandoned upload deletes its segments; a crashed one leaves segments
// that RemoveIncomplete deletes once older than swift_store_incomplete_age seconds (other nodes
// may be writing the young ones). Delete removes the manifest and every segment.
//
// Authentication: tempauth/v1 (swift_store_auth_version = 1: X-Auth-User/X-Auth-Key) or Keystone
// v3 (= 3: password, project-scoped; the object-store endpoint from the catalog). The token is
// cached. A request Swift answers 401 (the token expired, or tempauth lost it from memcached)
// drops it, authenticates again and is sent once more with the new token, on a new connection;
// concurrent requests that were refused the same token share one re-authentication. A second 401
// (Swift refusing a token its auth service has just issued: its token validation is failing)
// fails with kUnavailable, never as a missing object. Requests whose body is in memory (all of
// them) are retried with back-off on 5xx, 408, 429, connection failures and timeouts; a download
// that breaks mid-way resumes with a Range GET from where it stopped.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "store/registry.h"
#include "store/remote/transport.h"
#include "store/store.h"

namespace ingot::store {

struct SwiftStoreOptions {
  std::string id = "swift";
  int auth_version = 1;             // swift_store_auth_version: 1 (tempauth, v1.0) or 3 (Keystone)
  std::string auth_address;         // swift_store_auth_address
  std::string user;                 // swift_store_user: "account:user" (v1), "project:user" (v3)
  std::string key;                  // swift_store_key
  std::string user_domain = "Default";     // swift_store_user_domain_name (v3)
  std::string project_domain = "Default";  // swift_store_project_domain_name (v3)
  std::string region;                      // swift_store_region (v3 catalog)
  std::string endpoint_type = "publicURL";  // swift_store_endpoint_type (v3 catalog)
  std::string service_type = "object-store";  // swift_store_service_type (v3 catalog)
  std::string endpoint;  // swift_store_endpoint: the storage URL, instead of the auth answer's
  std::string container = "glance";        // swift_store_container
  bool create_container_on_put = false;   // swift_store_create_container_on_put
  int multiple_containers_seed = 0;       // swift_store_multiple_containers_seed (0..32)
  uint64_t large_object_size = 5120ull << 20;     // swift_store_large_object_size (MB)
  uint64_t large_object_chunk_size = 64ull << 20;  // swift_store_large_object_chunk_size (MB)
  int upload_concurrency = 3;  // swift_store_upload_concurrency: segments uploading at once
  int retry_get_count = 3;     // swift_store_retry_get_count: resumes of a broken download
  int64_t incomplete_age_s = 3600;  // swift_store_incomplete_age
  remote::TransportOptions transport;  // swift_store_cacert, swift_store_auth_insecure
  remote::RetryPolicy retry;
  int max_manifest_segments = 1000;  // Swift's slo max_manifest_segments default
};

// The "swift" driver: the options above by their swift_store_* names; unknown keys are refused.
Result<std::unique_ptr<Store>> MakeSwiftStore(const StoreConfig& config);

class SwiftStore final : public Store {
 public:
  static Result<std::unique_ptr<SwiftStore>> Open(SwiftStoreOptions options);
  ~SwiftStore() override;

  const std::string& id() const override { return options_.id; }
  Capabilities capabilities() const override { return {.local_file = false, .random_read = true}; }
  Result<std::unique_ptr<PendingObject>> Create(const std::string& key) override;
  Result<std::unique_ptr<io::ByteSource>> Open(const std::string& key) override;
  Result<io::UniqueFd> OpenFd(const std::string& key) override;
  Result<uint64_t> SizeOf(const std::string& key) override;
  Status Delete(const std::string& key) override;
  Result<int> RemoveIncomplete() override;
  Result<std::vector<std::string>> ListKeys() override;
  // Committed objects (container listings) and the segment groups "<key>/<upload>/" no committed
  // manifest uses (incomplete = the upload id), aged by their newest segment.
  Result<std::vector<StoredObject>> Enumerate() override;
  // Deletes every segment of that upload (never the committed manifest's: kConflict).
  Status RemoveIncompleteWrite(const StoredObject& object) override;
  // "swift+config://<store id>/<container>/<key>": like Glance's reference-style locations, it
  // names the store rather than carrying credentials.
  std::string UrlOf(const std::string& key) const override;
  Result<std::optional<std::string>> KeyOfUrl(std::string_view url) override;

  // ---- For tests and the driver's own pieces ----
  size_t DownloadBlock() const;
  // One segment of a Static Large Object: its path (encoded, as Call takes it) and where it lies.
  struct Segment {
    std::string path;
    uint64_t offset = 0;
    uint64_t size = 0;
  };
  // The segments of the SLO at `path`, whose size is `size` (sub-manifests expanded).
  Result<std::vector<Segment>> SegmentsOf(const std::string& path, uint64_t size);
  Status GetFromSegments(const std::vector<Segment>& segments, uint64_t first, uint64_t last,
                         const remote::BodySink& sink);
  Status GetRange(const std::string& path, uint64_t first, uint64_t last,
                  const remote::BodySink& sink);
  std::string ContainerOf(const std::string& key) const;
  std::string SegmentContainerOf(const std::string& key) const {
    return ContainerOf(key) + "_segments";
  }
  // One request to <storage URL>/<path> (path already encoded, without the leading '/'), with the
  // token, re-authenticating once on 401 and retrying what is retryable. Never returns a 401
  // response: a second 401 is kUnavailable naming Swift's authentication.
  // Safe to retry because a 401 carries no body to `sink` and `request.body` outlives the call.
  Result<remote::HttpResponse> Call(remote::HttpRequest request, const std::string& path,
                                    const remote::BodySink& sink = {});
  Status EnsureContainer(const std::string& container);

 private:
  explicit SwiftStore(SwiftStoreOptions options);
  // Fetches a token and the storage URL. Called with mu_ held, which makes it single-flight:
  // requests waiting for the token wait for this one authentication.
  Status Authenticate();
  // The token to use (authenticating when there is none) and its generation.
  Status CurrentToken(std::string* url, std::string* token, uint64_t* generation);
  // Forgets the token of `generation` unless a newer one replaced it meanwhile.
  void DropToken(uint64_t generation);
  Result<remote::HttpResponse> Head(const std::string& key);
  // One container's listing with sizes and modification times (microseconds).
  struct Listed {
    std::string name;
    uint64_t bytes = 0;
    int64_t modified = 0;
  };
  Result<std::vector<Listed>> ListEntries(const std::string& container);
  // The containers that hold committed objects (one, or the seeded ones found in the account;
  // then the seeded segment containers found there go to `segment_containers` too).
  Result<std::vector<std::string>> KeyContainers(
      std::vector<std::string>* segment_containers = nullptr);
  Result<std::vector<std::string>> ListContainer(const std::string& container,
                                                 std::vector<std::string>* last_modified);
  friend class SwiftPendingObject;

  SwiftStoreOptions options_;
  remote::Transport transport_;
  std::mutex mu_;
  std::string storage_url_;  // guarded by mu_
  std::string token_;        // guarded by mu_
  // Bumped by each successful Authenticate: a 401 drops only the token it was given for (the same
  // token string may come back from tempauth).
  uint64_t token_generation_ = 0;  // guarded by mu_
  std::set<std::string> ensured_;  // containers known to exist; guarded by mu_
};

}  // namespace ingot::store
