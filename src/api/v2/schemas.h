// JSON schemas of the image resources (GET /v2/schemas/image[s]) and the version documents. The
// glance client builds its command-line options and validates requests from these, so the attribute
// names, types and read-only flags must be what Glance publishes.
#pragma once

#include <string>

#include "api/v2/image_attributes.h"

namespace ingot::api {

// `multiple_stores`: more than one store is configured, so images name theirs (`stores`).
std::string ImageSchemaJson(const FormatSets& formats, bool multiple_stores);
std::string ImagesSchemaJson(const FormatSets& formats, bool multiple_stores);
std::string VersionsJson(const std::string& base_url);

}  // namespace ingot::api
