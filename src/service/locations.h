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
// Glance's older multiple-locations API (show_multiple_locations = True) is here too: JSON-patch
// add / replace / remove on an image's /locations (Patch below). Its rules are Glance's
// (glance/api/v2/images.py _do_add_locations, _do_replace_locations, _do_remove_locations and
// glance/location.py), and so is its trust: a location added that way is NOT read — the image turns
// active with the size the store reports and the checksum and hashes its validation_data declares,
// as Glance does (the operator who enables it trusts the callers the policy lets add locations;
// Glance's OSSN-0065 and OSSN-0090 say why it is off by default). URLs must name an object of a
// configured store that is not on this host: Glance refuses file:// and swift+config:// there, so
// does Ingot (its file and Swift stores); the http store (store/http/) serves http(s) URLs through
// fetch's SSRF rules.
//
// Thread safety: every method may be called concurrently; one object is adopted by one image at
// a time (a second concurrent claim is kConflict).
#pragma once

#include <boost/json.hpp>
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
  // Glance's show_multiple_locations: documents show `locations` and Patch() is served; without
  // it Patch() refuses with Glance's 403 texts.
  bool show_multiple_locations = false;
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

// One location as GET /v2/images/{id}/locations and the image documents show it.
struct LocationView {
  std::string url;
  // What was given with the location (PATCH), with "store": the id of the store holding it, as a
  // multi-store Glance shows it.
  boost::json::object metadata;
};

// ---- Glance's multiple-locations API (PATCH /v2/images/{id} on /locations) ----

// A location's validation_data, checked against Glance's location schema at the API edge: the
// values the image's checksum, os_hash_algo and os_hash_value must take (a queued image) or
// already have (any other).
struct LocationValidation {
  std::optional<std::string> checksum;
  std::string os_hash_algo;
  std::string os_hash_value;
};

// One location as a PATCH value names it: {"url", "metadata", "validation_data"?}.
struct LocationSpec {
  std::string url;
  boost::json::object metadata;
  std::optional<LocationValidation> validation;
};

// One JSON-patch operation on /locations.
struct LocationOp {
  enum class Kind { kAdd, kReplace, kRemove };
  Kind kind = Kind::kAdd;
  std::string position;                 // add, remove: "-" or a decimal index ("/locations/1")
  std::vector<LocationSpec> locations;  // add: exactly one; replace: the whole new list
};

// One operation of a PATCH: a location operation, or a change of attributes (the API edge's
// JSON-patch on everything else). Applied in the request's order and saved at once.
struct PatchStep {
  std::optional<LocationOp> location;
  ImageChange attributes;  // when `location` is empty; must not move the status
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

  // Applies a PATCH of `image` (as loaded by ImageService::Get) whose steps include location
  // operations, with Glance's rules and answers:
  //  - without show_multiple_locations: kPermissionDenied "It's not allowed to add|update|remove
  //    locations if locations are invisible.";
  //  - add: kConflict unless the image is queued or active; validation_data as below;
  //  kInvalidArgument
  //    "Invalid position for adding a location." (the position is an index 0..n or "-");
  //    kInvalidArgument "Invalid location: ..." for a URL no configured store serves, a restricted
  //    one (this host's files, swift+config), an object the store does not have or has empty, or
  //    one another image owns; kInvalidArgument "The location <url> already exists" for the same
  //    URL with the same metadata. The first location of a queued image makes it active, with the
  //    store's size and the validation_data's values;
  //  - replace: kPermissionDenied "Cannot set locations to empty list."; kConflict unless queued or
  //    active; the same list is a no-op; the same URLs with other metadata (or order) update the
  //    metadata; other URLs are refused (kInvalidArgument "Original locations is not empty: ...")
  //    unless the image has none, when each is checked as add checks it and the image turns
  //    active;
  //  - remove: kConflict unless active; kPermissionDenied "Cannot remove last location in the
  //    image."; kInvalidArgument "Invalid position for removing a location." (0..n-1 or "-", the
  //    last). The object is removed from its store once no location of the image names it (the
  //    http store removes nothing);
  //  - validation_data (Glance's _validate_validation_data, all kConflict): "Conflicting values
  //    for <k>" between locations of one replace; "<k> is already set with a different value";
  //    "New value(s) for <k> may only be provided when image status is 'queued'"; a checksum that
  //    is not 32 hex digits; an os_hash_algo other than this service's; an os_hash_value that is
  //    not hex of the algorithm's size.
  // kTooLarge when the store's size exceeds the size cap. Nothing is saved unless every step
  // succeeds.
  Result<catalog::Image> Patch(const catalog::Image& image, const std::vector<PatchStep>& steps);

  const LocationOptions& options() const { return options_; }

 private:
  // The store and key `url` names; kInvalidArgument (400) for every refusal.
  Result<std::pair<store::Store*, std::string>> Resolve(const std::string& url) const;
  // kInvalidArgument when an image other than `image_id` owns (store, key) or is named `key`.
  Status CheckUnowned(const std::string& image_id, const store::Store& store,
                      const std::string& key);
  // Reads, hashes, inspects and activates; the image is `saving` (ours) throughout.
  Result<catalog::Image> Adopt(catalog::Image claimed, store::Store& store, const std::string& key,
                               const std::optional<ValidationData>& validation);

  // A PATCH location checked before the record is changed: the store and key it names, and the
  // size the store reports.
  struct Resolved {
    store::Store* store = nullptr;
    std::string key;
    uint64_t size = 0;
  };
  Result<Resolved> ResolveForPatch(const std::string& image_id, const std::string& url);
  // The URL a stored location is shown with.
  std::string UrlOfLocation(const catalog::Location& loc) const;
  Status ApplyLocationOp(catalog::Image& im, const LocationOp& op,
                         const std::map<std::string, Resolved>& resolved,
                         std::vector<catalog::Location>& removed) const;

  ImageService& images_;
  LocationOptions options_;
  std::mutex mu_;
  std::set<std::pair<std::string, std::string>> adopting_;  // (store, key) being adopted now
};

}  // namespace ingot::service
