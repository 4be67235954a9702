// What the API edge is configured with; filled by the composition root from the daemon's
// configuration.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "api/v2/image_attributes.h"

namespace ingot::api {

struct ApiOptions {
  std::string public_url;                // base for Location headers and version links
  FormatSets formats;                    // allowed disk_format / container_format values
  size_t max_json_body = 1 << 20;        // JSON request bodies
  uint64_t max_image_size = 1ull << 40;  // uploads (the service's size cap)
  std::string request_id_header = "x-openstack-request-id";
  // Import methods offered (GET /v2/info/import, OpenStack-image-import-methods on create); empty
  // when the daemon runs no import service.
  std::vector<std::string> import_methods;
};

}  // namespace ingot::api
