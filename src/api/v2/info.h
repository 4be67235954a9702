// Discovery of what this deployment offers: /v2/info/import, /v2/info/stores[/detail] and
// /v2/info/usage (the glance client's import-info and stores-info), and the schemas.
#pragma once

#include "api/options.h"
#include "api/route.h"
#include "service/image_service.h"

namespace ingot::api {

// Registers the info and schema routes.
void RegisterInfoRoutes(ApiRouter& router, const service::ImageService& images,
                        const ApiOptions& options);

}  // namespace ingot::api
