// Placeholder until the vhdx reader lands: never matches, so such images are not yet recognised.
#include "formats/driver.h"

namespace ingot::formats {

const Driver& VhdxDriver() {
  static const Driver d{
      Format::kVhdx,
      [](io::ByteSource&) { return false; },
      [](io::ByteSource&) -> Result<ImageInfo> { return Unsupported("vhdx not readable yet"); },
      [](io::ByteSource&) -> Result<std::unique_ptr<DiskImage>> {
        return Unsupported("vhdx not readable yet");
      }};
  return d;
}

}  // namespace ingot::formats
