// Glance's unified limits read from Keystone (use_keystone_limits): the registered limits of the
// image service (defaults for every project) and each project's own limits, as oslo.limit reads
// them: GET /v3/registered_limits and /v3/limits for the service (found from oslo_limit's
// endpoint_id, else the catalog's "image" service) in its region. Read with the service's own
// token and cached per project for `cache_seconds`.
#pragma once

#include <memory>
#include <string>

#include "auth/keystone/identity.h"
#include "service/quota.h"

namespace ingot::auth::keystone {

std::unique_ptr<service::LimitSource> MakeKeystoneLimits(std::shared_ptr<Identity> identity,
                                                         std::string endpoint_id,
                                                         int cache_seconds);

}  // namespace ingot::auth::keystone
