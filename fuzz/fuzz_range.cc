// The Range request header against a size taken from the input's first eight bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "http/range.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t object_size;
  std::memcpy(&object_size, data, 8);
  std::string_view header(reinterpret_cast<const char*>(data + 8), size - 8);
  auto r = ingot::http::ParseRange(header, object_size);
  // A satisfiable range lies inside the object, first before last.
  if (r && (r->first > r->last || r->last >= object_size)) __builtin_trap();
  return 0;
}
