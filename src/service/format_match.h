// Glance's require_image_format_match, as one rule every way bytes come in can apply: the content
// the inspector found must be what the image's disk_format says.
// The locations API and every import method apply it.
#pragma once

#include <optional>

#include "catalog/image.h"
#include "common/status.h"
#include "formats/format.h"

namespace ingot::service {

// OK when the image has no disk_format, the inspector could not decide (`info` empty), the format
// is a container of raw bytes (ami, ari, aki) or one the formats library does not know (ploop), or
// the content is what disk_format names (an ISO declared raw is a raw disk, as qemu reads it; a raw
// disk with a GPT is "gpt"). kRefused "Image disk_format is 'x' but its content is 'y'
// (require_image_format_match)." otherwise.
Status CheckDiskFormatMatch(const catalog::Image& image,
                            const std::optional<formats::ImageInfo>& info);

}  // namespace ingot::service
