// Writing JSON text straight into a response body. The image documents are built this way rather
// than through a json::value: on the list route building a value per image and copying it into the
// page cost more than the database query (callgrind: ~60% of the route's instructions were
// Boost.JSON construction, copies and frees).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ingot::api::json_text {

// A JSON string literal; control characters escaped, UTF-8 passed through (callers store only
// well-formed UTF-8).
void AppendString(std::string& out, std::string_view s);
// `"key": ` after a ", " unless `out` ends an opening brace.
void AppendKey(std::string& out, std::string_view key);
void AppendOptional(std::string& out, const std::optional<std::string>& v);  // null when unset
void AppendOptional(std::string& out, const std::optional<uint64_t>& v);

}  // namespace ingot::api::json_text
