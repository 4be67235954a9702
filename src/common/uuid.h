// Random (version 4) UUIDs, the ids of images, tasks and requests, in Glance's lower-case 8-4-4-4-12 form.
#pragma once

#include <string>
#include <string_view>

namespace ingot {

std::string NewUuid();
// True for a canonical 36-character hex UUID (any case). Glance answers 404/400 for anything else.
bool IsUuid(std::string_view s);
// Lower-cases a valid UUID; callers check IsUuid first.
std::string CanonicalUuid(std::string_view s);

}  // namespace ingot
