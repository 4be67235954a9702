// libFuzzer target for the vdi reader: any bytes must give a Status, never a crash, a hang or an
// allocation beyond the table bound; whatever opens must answer reads and BlockStatus anywhere.
#include "fuzz/driver_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ingot::fuzz::FuzzDriver(ingot::formats::VdiDriver(), data, size);
}
