// libFuzzer target for the qcow2 reader, including compressed clusters and extended-L2 subclusters.
#include "fuzz/driver_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ingot::fuzz::FuzzDriver(ingot::formats::Qcow2Driver(), data, size, /*extra_probe=*/65536 - 7);
}
