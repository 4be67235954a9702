// ingotd's TOML configuration: parsing and validation (toml++ plus our key checks).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ingot::config::Config config;
  (void)ingot::config::LoadConfigText(text, "fuzz.toml", config);
  (void)config.Stores();
  return 0;
}
