// Glance 2024.1's locations API: POST /v2/images/{id}/locations (add_image_location: register
// bytes already in one of this service's stores as a queued image's data; 202, no body) and GET
// /v2/images/{id}/locations (fetch_image_location: [{"url", "metadata"}], for services only). Each
// handler parses, calls one use case of service::LocationService and renders.
#pragma once

#include "api/json/patch.h"
#include "api/options.h"
#include "api/route.h"
#include "service/locations.h"

namespace ingot::api {

class LocationsResource {
 public:
  LocationsResource(service::LocationService& locations, const ApiOptions& options)
      : locations_(locations), options_(options) {}
  void Register(ApiRouter& router);

 private:
  Result<http::Response> Add(Call& call);
  Result<http::Response> List(Call& call);

  service::LocationService& locations_;
  const ApiOptions& options_;
};

// The POST body, checked as Glance's location schema checks it: `url` a string (required);
// `validation_data` an object with exactly os_hash_algo (sha1, sha256, sha512 or md5) and
// os_hash_value (a string of at most 128 characters), both or neither; other top-level keys are
// ignored (Glance's schema is permissive). kInvalidArgument naming what is wrong.
Result<service::AddLocationRequest> ParseAddLocationBody(const boost::json::value& body);

// Glance's multiple-locations API at the edge: a JSON-patch operation on /locations as the
// service's LocationOp, the value checked as Glance's image schema checks `locations` items: an
// object with `url` (a string of at most 255 characters) and `metadata` (an object), both
// required, and optional `validation_data` with exactly `os_hash_algo` (a string of at most 64)
// and `os_hash_value` (at most 128) and optionally `checksum` (32 characters), nothing else; other
// keys of the location are ignored. add takes one such object, replace a list of them (an empty
// list is the service's 403); remove takes none. kInvalidArgument "Provided object does not match
// schema 'image': ..." otherwise. The metadata is kept as given.
Result<service::LocationOp> ParseLocationPatch(const PatchOp& op);

}  // namespace ingot::api
