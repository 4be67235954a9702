// The S3 store (driver "s3"): image bytes as objects in a bucket of any S3-compatible service
// (AWS, Ceph RGW, MinIO, Swift's s3api), signed with AWS Signature Version 4 (sigv4.h), with
// Glance's option names (glance_store's s3 driver) where Glance has one.
//
// Addressing: path style (<endpoint>/<bucket>/<key>) or virtual-hosted style
// (<bucket>.<endpoint host>/<key>), s3_store_bucket_url_format = path | virtual | auto (auto:
// virtual-hosted when the bucket is a DNS name and the endpoint is not an IP address, as boto does).
//
// Writes: an image that ends within its first part and within s3_store_large_object_size is one
// PutObject; a bigger one is a multipart upload whose parts (s3_store_large_object_chunk_size,
// at least 5 MiB; at most 10000 parts) upload s3_store_thread_pools at a time while the image keeps
// streaming in (memory: chunk * (threads + 1)). Every part carries Content-MD5 (the service
// refuses bytes that differ) and its ETag must be our MD5; the completed object's ETag must be
// S3's MD5-of-MD5s ("<hex>-<parts>"). Nothing is visible before CompleteMultipartUpload (or the
// single PUT) succeeds; an abandoned upload is aborted; a crashed one is aborted by
// RemoveIncomplete once older than s3_store_incomplete_age seconds. Payloads are sent
// UNSIGNED-PAYLOAD (Content-MD5 protects them) so big parts are not hashed twice.
//
// Reads are ranged GETs streamed through remote::RangedSource; every request is retried with
// back-off on 5xx, 408, 429, connection failures and timeouts.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "store/registry.h"
#include "store/remote/transport.h"
#include "store/s3/sigv4.h"
#include "store/store.h"

namespace ingot::store {

struct S3StoreOptions {
  std::string id = "s3";
  std::string endpoint;  // s3_store_host: "http://host:port" (https:// when no scheme is given)
  std::string access_key;  // s3_store_access_key
  std::string secret_key;  // s3_store_secret_key
  std::string bucket;      // s3_store_bucket
  std::string region = "us-east-1";  // s3_store_region
  bool create_bucket_on_put = false;  // s3_store_create_bucket_on_put
  std::string url_format = "auto";    // s3_store_bucket_url_format: auto | path | virtual
  uint64_t large_object_size = 100ull << 20;      // s3_store_large_object_size (MB)
  uint64_t large_object_chunk_size = 10ull << 20;  // s3_store_large_object_chunk_size (MB, >= 5)
  int thread_pools = 10;                            // s3_store_thread_pools
  int retry_get_count = 3;          // s3_store_retry_get_count: resumes of a broken download
  int64_t incomplete_age_s = 3600;  // s3_store_incomplete_age
  remote::TransportOptions transport;  // s3_store_cacert, s3_store_insecure
  remote::RetryPolicy retry;           // s3_store_retries
};

Result<std::unique_ptr<Store>> MakeS3Store(const StoreConfig& config);

class S3Store final : public Store {
 public:
  static Result<std::unique_ptr<S3Store>> Open(S3StoreOptions options);

  const std::string& id() const override { return options_.id; }
  Capabilities capabilities() const override { return {.local_file = false, .random_read = true}; }
  Result<std::unique_ptr<PendingObject>> Create(const std::string& key) override;
  Result<std::unique_ptr<io::ByteSource>> Open(const std::string& key) override;
  Result<io::UniqueFd> OpenFd(const std::string& key) override;
  Result<uint64_t> SizeOf(const std::string& key) override;
  Status Delete(const std::string& key) override;
  Result<int> RemoveIncomplete() override;
  Result<std::vector<std::string>> ListKeys() override;
  // Committed objects (ListObjectsV2) and multipart uploads in progress (incomplete = the upload
  // id; aged by their newest part, ListParts).
  Result<std::vector<StoredObject>> Enumerate() override;
  // Aborts that multipart upload (its parts go with it).
  Status RemoveIncompleteWrite(const StoredObject& object) override;
  // "s3://<host[:port]>/<bucket>/<key>" ("s3+https://" over https), without credentials.
  std::string UrlOf(const std::string& key) const override;
  Result<std::optional<std::string>> KeyOfUrl(std::string_view url) override;

  // One signed request about `key` ("" for the bucket itself), retried when retryable.
  struct Call {
    std::string method = "GET";
    std::string key;
    std::vector<std::pair<std::string, std::string>> query;
    std::vector<std::pair<std::string, std::string>> headers;
    std::span<const uint8_t> body;
    bool sign_body = false;  // payload hash of `body`, else UNSIGNED-PAYLOAD
    int sink_status = 0;
  };
  Result<remote::HttpResponse> Send(const Call& call, const remote::BodySink& sink = {});
  // Multipart uploads in progress for keys starting with `prefix`: (key, upload id, initiated).
  struct Upload {
    std::string key, upload_id, initiated;
  };
  Result<std::vector<Upload>> ListUploads(const std::string& prefix);
  bool virtual_hosted() const { return virtual_hosted_; }

 private:
  explicit S3Store(S3StoreOptions options);
  Status EnsureBucket();

  S3StoreOptions options_;
  remote::Transport transport_;
  std::string scheme_;  // "http" or "https"
  std::string host_;    // host[:port] as in the Host header
  bool virtual_hosted_ = false;
  std::mutex bucket_mu_;
  bool bucket_ok_ = false;  // the bucket is known to exist; guarded by bucket_mu_
};

// The text of every <tag>...</tag> element in `xml`, entities decoded. Tolerant and bounded: made
// for the small, flat answers of S3 (no attributes on the elements asked for, no CDATA).
std::vector<std::string> XmlValues(std::string_view xml, std::string_view tag);

}  // namespace ingot::store
