// libFuzzer target for raw images: MBR/GPT parsing on inspection, and reads through the raw reader.
#include <cstdint>
#include <vector>

#include "formats/driver.h"
#include "io/memory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ingot;
  io::MemorySource src(std::vector<uint8_t>(data, data + size));
  (void)formats::RawDriver().inspect(src);
  auto image = formats::RawDriver().open(src);
  if (image.ok() && size > 0) {
    std::vector<uint8_t> buf(4096);
    (void)(*image)->ReadAt(size / 2, buf);
    (void)(*image)->BlockStatus(0, size);
  }
  return 0;
}
