// libFuzzer target for the qcow2 reader: any bytes must give a Status, never a crash, a hang or an
// allocation beyond the table bound; whatever opens must answer reads and BlockStatus anywhere,
// including compressed clusters and extended-L2 subclusters.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "formats/driver.h"
#include "io/memory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ingot;
  const formats::Driver& driver = formats::Qcow2Driver();
  io::MemorySource src(std::vector<uint8_t>(data, data + size));
  (void)driver.probe(src);
  (void)driver.inspect(src);
  auto image = driver.open(src);
  if (!image.ok()) return 0;
  formats::DiskImage& disk = **image;
  const uint64_t vsize = disk.Size();
  std::vector<uint8_t> buf(256 * 1024);
  const uint64_t probes[] = {0,
                             65536 - 7,
                             vsize / 3,
                             vsize / 2 + 511,
                             vsize > 4096 ? vsize - 4096 : 0,
                             vsize ? vsize - 1 : 0};
  for (uint64_t off : probes) {
    if (off >= vsize) continue;
    (void)disk.ReadAt(off, buf);
    (void)disk.BlockStatus(off, std::min<uint64_t>(vsize - off, 64ull << 20));
  }
  return 0;
}
