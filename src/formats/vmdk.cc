// Placeholder until the vmdk reader lands: never matches, so such images are not yet recognised.
#include "formats/driver.h"

namespace ingot::formats {

const Driver& VmdkDriver() {
  static const Driver d{
      Format::kVmdk,
      [](io::ByteSource&) { return false; },
      [](io::ByteSource&) -> Result<ImageInfo> { return Unsupported("vmdk not readable yet"); },
      [](io::ByteSource&) -> Result<std::unique_ptr<DiskImage>> {
        return Unsupported("vmdk not readable yet");
      }};
  return d;
}

}  // namespace ingot::formats
