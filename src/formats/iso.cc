// Placeholder until the iso reader lands: never matches, so such images are not yet recognised.
#include "formats/driver.h"

namespace ingot::formats {

const Driver& IsoDriver() {
  static const Driver d{
      Format::kIso,
      [](io::ByteSource&) { return false; },
      [](io::ByteSource&) -> Result<ImageInfo> { return Unsupported("iso not readable yet"); },
      [](io::ByteSource&) -> Result<std::unique_ptr<DiskImage>> {
        return Unsupported("iso not readable yet");
      }};
  return d;
}

}  // namespace ingot::formats
