// The body every per-reader fuzz target shares: any bytes must give a Status, never a crash, a hang or
// an allocation beyond the table bound; whatever opens must answer reads and BlockStatus anywhere.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "formats/driver.h"
#include "io/memory.h"

namespace ingot::fuzz {

// `extra_probe` is one more offset worth reading (e.g. just below a cluster boundary).
inline int FuzzDriver(const formats::Driver& driver, const uint8_t* data, size_t size,
                      uint64_t extra_probe = 0) {
  io::MemorySource src(std::vector<uint8_t>(data, data + size));
  (void)driver.probe(src);
  (void)driver.inspect(src);
  auto image = driver.open(src);
  if (!image.ok()) return 0;
  formats::DiskImage& disk = **image;
  const uint64_t vsize = disk.Size();
  std::vector<uint8_t> buf(256 * 1024);
  // A few probes spread over the disk, including its last byte.
  const uint64_t probes[] = {0,           extra_probe, vsize / 3, vsize / 2 + 511,
                             vsize > 4096 ? vsize - 4096 : 0, vsize ? vsize - 1 : 0};
  for (uint64_t off : probes) {
    if (off >= vsize) continue;
    (void)disk.ReadAt(off, buf);
    (void)disk.BlockStatus(off, std::min<uint64_t>(vsize - off, 64ull << 20));
  }
  return 0;
}

}  // namespace ingot::fuzz
