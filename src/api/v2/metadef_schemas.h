// The JSON schemas of the metadata-definition resources (GET /v2/schemas/metadefs/...), as Glance
// publishes them: Horizon and the glance client read them, tempest checks their names.
#pragma once

#include "api/route.h"

namespace ingot::api {

// Registers the ten documents (namespace[s], object[s], property, properties, tag[s],
// resource_type[s]) under the get_schemas rule.
void RegisterMetadefSchemaRoutes(ApiRouter& router);

}  // namespace ingot::api
