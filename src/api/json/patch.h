// JSON Patch as Glance's image API takes it (media type
// application/openstack-images-v2.1-json-patch, a subset of RFC 6902): a list of add / replace /
// remove operations on top-level attributes. Pure: parsing only, no knowledge of which attributes
// exist (api/v2/image_attributes.h applies them).
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::api {

struct PatchOp {
  enum class Kind { kAdd, kReplace, kRemove };
  Kind kind;
  std::string key;           // the attribute, JSON-pointer unescaped ("~1" -> '/', "~0" -> '~')
  boost::json::value value;  // null for remove
  // The pointer's second segment, which only /locations takes: add and remove name a position
  // ("/locations/0", "/locations/-"); empty for every other path.
  std::string index;
};

// The two media types Glance takes: v2.1 is RFC 6902's shape ({"op": "replace", "path": "/name",
// "value": ...}); the deprecated v2.0 (application/openstack-images-v2.0-json-patch, JSON-schema
// draft 4 in Glance's words, and what tempest's images client still sends) names the operation as
// the key holding the path ({"replace": "/name", "value": ...}).
enum class PatchDialect { kV21, kV20 };

// Parses the request body. kInvalidArgument with Glance's message for malformed JSON, a document
// that is not a list of objects, a missing op/path/value, a nested pointer or an unknown op. The
// depth of a pointer is Glance's rule (_path_depth_limits): one segment, except add and remove on
// /locations, which take exactly two ("/locations/<index or ->").
Result<std::vector<PatchOp>> ParsePatch(std::string_view body,
                                        PatchDialect dialect = PatchDialect::kV21);

}  // namespace ingot::api
