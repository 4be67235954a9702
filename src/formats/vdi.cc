// Placeholder until the vdi reader lands: never matches, so such images are not yet recognised.
#include "formats/driver.h"

namespace ingot::formats {

const Driver& VdiDriver() {
  static const Driver d{
      Format::kVdi,
      [](io::ByteSource&) { return false; },
      [](io::ByteSource&) -> Result<ImageInfo> { return Unsupported("vdi not readable yet"); },
      [](io::ByteSource&) -> Result<std::unique_ptr<DiskImage>> {
        return Unsupported("vdi not readable yet");
      }};
  return d;
}

}  // namespace ingot::formats
