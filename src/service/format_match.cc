#include "service/format_match.h"

#include <string>

namespace ingot::service {

Status CheckDiskFormatMatch(const catalog::Image& image,
                            const std::optional<formats::ImageInfo>& info) {
  if (!image.disk_format || !info) return Status::Ok();
  const std::string& declared = *image.disk_format;
  if (declared == "ami" || declared == "ari" || declared == "aki" || declared == "ploop") {
    return Status::Ok();
  }
  const std::string detected(formats::GlanceDiskFormatName(info->format));
  if (declared == detected) return Status::Ok();
  if (declared == "raw" && info->format == formats::Format::kIso) return Status::Ok();
  if (declared == "gpt" && info->format == formats::Format::kRaw &&
      info->partition_table == "gpt") {
    return Status::Ok();
  }
  return Refused("Image disk_format is '" + declared + "' but its content is '" + detected +
                 "' (require_image_format_match).");
}

}  // namespace ingot::service
