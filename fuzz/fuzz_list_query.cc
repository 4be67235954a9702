// GET /v2/images query parameters -> catalog::ListQuery. The input is split into key=value pairs at
// '&' and '=' (already decoded, as the HTTP layer hands them over).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/list_query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::pair<std::string, std::string>> params;
  while (!text.empty()) {
    size_t amp = text.find('&');
    std::string_view item = text.substr(0, amp);
    size_t eq = item.find('=');
    params.emplace_back(std::string(item.substr(0, eq)),
                        eq == std::string_view::npos ? "" : std::string(item.substr(eq + 1)));
    if (amp == std::string_view::npos) break;
    text.remove_prefix(amp + 1);
  }
  auto q = ingot::catalog::ParseListQuery(params);
  if (q.ok()) {
    // What the parser promises every repository.
    if (q->limit < 0 || q->limit > ingot::catalog::kMaxListLimit) __builtin_trap();
    if (q->tags.size() > ingot::catalog::kMaxListTags) __builtin_trap();
    for (const auto& f : q->fields) {
      if (f.values.size() > ingot::catalog::kMaxInValues) __builtin_trap();
    }
  }
  return 0;
}
