// JSON schemas of the image resources (GET /v2/schemas/image[s]) and the version documents. The
// glance client builds its command-line options and validates requests from these, so the attribute
// names, types and read-only flags must be what Glance publishes.
#pragma once

#include <string>

#include "api/v2/image_attributes.h"

namespace ingot::api {

// The same with one store or many: see schemas.cc on `stores`.
std::string ImageSchemaJson(const FormatSets& formats);
std::string ImagesSchemaJson(const FormatSets& formats);
// With `image_cache`, v2.16 is CURRENT and v2.14/v2.15 listed, as a Glance with a cache answers
// (glanceclient's cache-* commands look for 2.14).
std::string VersionsJson(const std::string& base_url, bool image_cache = false);
// The task resources (GET /v2/schemas/task[s]), as Glance publishes them.
std::string TaskSchemaJson();
std::string TasksSchemaJson();
// The image members resources (GET /v2/schemas/member[s]), as Glance publishes them.
std::string MemberSchemaJson();
std::string MembersSchemaJson();

}  // namespace ingot::api
