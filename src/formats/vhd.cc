// Placeholder until the vhd reader lands: never matches, so such images are not yet recognised.
#include "formats/driver.h"

namespace ingot::formats {

const Driver& VhdDriver() {
  static const Driver d{
      Format::kVhd,
      [](io::ByteSource&) { return false; },
      [](io::ByteSource&) -> Result<ImageInfo> { return Unsupported("vhd not readable yet"); },
      [](io::ByteSource&) -> Result<std::unique_ptr<DiskImage>> {
        return Unsupported("vhd not readable yet");
      }};
  return d;
}

}  // namespace ingot::formats
