// The image builder's check of a kiwi-ng description (build/kiwi.h: config.kiwi / config.xml read
// with expat, no DOCTYPE, Ingot's element and attribute rules). Recipe archives come from API
// callers.
#include <cstddef>
#include <cstdint>
#include <string>

#include "build/kiwi.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto d = ingot::build::ParseKiwiDescription(text, "config.kiwi");
  if (d.ok() && (d->repositories.empty() || d->name.empty())) __builtin_trap();  // checked above
  return 0;
}
