// Glance 2024.1's locations API as use cases: register bytes that already sit in one of this
// service's stores as a queued image's data (POST /v2/images/{id}/locations), and list where an
// image's bytes live (GET /v2/images/{id}/locations).
//
// Adding a location adopts an object in place; nothing is copied. The store that holds it decides
// whether the URL names one of its objects (store::Store::KeyOfUrl: for the file driver a regular
// file directly in its directory, no '..' or symbolic-link escape). The bytes are then read once
// through the one ingest pass (service/ingest.h) — hashed (MD5 and the multihash) and inspected
// exactly as an upload is, hostile images refused and disk_format checked when
// require_image_format_match — and only then does the image become active with that one location.
//
// Glance hashes in a background task; Ingot reads the object synchronously, inside the request,
// because a failure (a hash mismatch, a hostile image) can then be the request's own 400 and the
// image is never seen active with unchecked bytes. The read streams: memory is the ingest buffers,
// whatever the object's size.
//
// While the bytes are read the image is `saving` (queued -> saving -> active through
// catalog::Transition, the upload's moves), so a concurrent upload or import loses, and a crash
// mid-read leaves an image that start-up repair puts back to `queued`. Whatever fails, the adopted
// object is never removed: it is the operator's until the image owns it. (Once it does, deleting
// the image removes it, like any image's bytes; and start-up repair removes objects no active image
// owns, so register an object before ingotd restarts.)
//
// Thread safety: every method may be called concurrently; one object is adopted by one image at
// a time (a second concurrent claim is kConflict).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "service/image_service.h"

namespace ingot::service {

struct LocationOptions {
  // The content must be what disk_format says (Glance's require_image_format_match).
  bool require_image_format_match = true;
};

// Glance's validation_data: the hash the caller expects of the bytes.
struct ValidationData {
  std::string os_hash_algo;   // sha1, sha256, sha512 or md5
  std::string os_hash_value;  // hex
};

// The body of POST /v2/images/{id}/locations, parsed.
struct AddLocationRequest {
  std::string url;
  std::optional<ValidationData> validation;
};

// One location as GET /v2/images/{id}/locations shows it.
struct LocationView {
  std::string url;
  std::map<std::string, std::string> metadata;  // {"store": id}
};

class LocationService {
 public:
  LocationService(ImageService& images, LocationOptions options)
      : images_(images), options_(options) {}

  // Adopts the object `request.url` names as the data of `image` (as loaded by ImageService::Get)
  // and activates the image. Refusals, checked before anything is read:
  //  - kConflict "It's not allowed to add locations if image status is <s>." unless queued;
  //  - kInvalidArgument when disk_format or container_format is unset; for validation_data that is
  //    not hex of the algorithm's size, or names an algorithm other than this service's
  //    hashing algorithm or md5 (those are the two digests the ingest pass computes); for a URL
  //    that points into no configured store, or names nothing a store could hold, or a missing
  //    object; for an object another image already owns;
  //  - kConflict when another request is adopting the same object.
  // Then, after reading: kRefused for a hostile image or a content that is not its disk_format;
  // kInvalidArgument "os_hash_value: (x) not matched with actual os_hash_value: (y)" (Glance's
  // text) when validation_data does not match, or when the bytes differ from an os_hash_value the
  // image's creator declared; kTooLarge past the size cap. On every failure the
  // image is back in `queued` without a location, and the object is untouched.
  Result<catalog::Image> Add(const catalog::Image& image, const AddLocationRequest& request);

  // Every location of `image`, in the order its copies were made.
  std::vector<LocationView> List(const catalog::Image& image) const;

 private:
  // The store and key `url` names; kInvalidArgument (400) for every refusal.
  Result<std::pair<store::Store*, std::string>> Resolve(const std::string& url) const;
  // kInvalidArgument when an image other than `image_id` owns (store, key) or is named `key`.
  Status CheckUnowned(const std::string& image_id, const store::Store& store,
                      const std::string& key);
  // Reads, hashes, inspects and activates; the image is `saving` (ours) throughout.
  Result<catalog::Image> Adopt(catalog::Image claimed, store::Store& store, const std::string& key,
                               const std::optional<ValidationData>& validation);

  ImageService& images_;
  LocationOptions options_;
  std::mutex mu_;
  std::set<std::pair<std::string, std::string>> adopting_;  // (store, key) being adopted now
};

}  // namespace ingot::service
