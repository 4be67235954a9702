// What the API edge is configured with; filled by the composition root from the daemon's
// configuration.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "api/v2/image_attributes.h"

namespace ingot::service {
class PropertyProtections;
}

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
  // [images] property_protection_file, loaded (service/property_protections.h); null: none.
  const service::PropertyProtections* property_protections = nullptr;
  // An image cache is configured: the versions document then offers the cache API's v2.14-v2.16.
  bool image_cache = false;
  // Glance's show_image_direct_url: image documents carry `direct_url` (needs the locations API).
  bool show_image_direct_url = false;
  // The catalog's reads never wait on a lock or the network (SQLite in WAL mode: readers do not
  // wait for the writer): routes marked inline_read are answered on the I/O thread.
  bool inline_reads = false;
};

}  // namespace ingot::api
