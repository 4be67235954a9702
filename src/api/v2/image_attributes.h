// The image schema's rules for client-set attributes: which are read-only or reserved, their types
// and limits, and how a JSON-patch operation applies to a record. Pure functions over
// catalog::Image; the quotas are the service's, the policy (who may publicize or give away an
// image) the edge's.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "api/json/patch.h"
#include "catalog/image.h"
#include "common/status.h"

namespace ingot::api {

// The allowed values of the format attributes (configuration: [images] disk_formats, ...).
struct FormatSets {
  std::vector<std::string> disk_formats;
  std::vector<std::string> container_formats;
};

// Sets one attribute from client JSON. `creating` relaxes the rules that only apply to existing
// images (id may be given; formats may change only while queued). kPermissionDenied for read-only
// and reserved attributes, kInvalidArgument ("Provided object does not match schema 'image': ...")
// otherwise, with Glance's texts.
Status SetAttribute(catalog::Image& image, const std::string& key, const boost::json::value& value,
                    const FormatSets& formats, bool creating);

// Applies a parsed patch in order; kConflict "Property x does not exist." for replace/remove of an
// absent extra property.
Status ApplyPatch(catalog::Image& image, const std::vector<PatchOp>& ops,
                  const FormatSets& formats);

// The policy rules a set of attribute values needs beyond modify_image/add_image: publicize_image
// for visibility=public, set_image_owner for an owner other than `project`.
std::vector<std::string> ExtraRules(
    const std::vector<std::pair<std::string, boost::json::value>>& values,
    const std::optional<std::string>& project);

}  // namespace ingot::api
