#include "api/json/patch.h"

namespace ingot::api {
namespace {

namespace json = boost::json;

// Decodes a JSON-pointer segment ("~1" is '/', "~0" is '~').
std::string UnescapePointer(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '~' && i + 1 < s.size() && (s[i + 1] == '0' || s[i + 1] == '1')) {
      out += s[i + 1] == '0' ? '~' : '/';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Result<std::vector<PatchOp>> ParsePatch(std::string_view body, PatchDialect dialect) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec) return InvalidArgument("Malformed JSON in request body.");
  if (!doc.is_array()) {
    return InvalidArgument("Request body must be a JSON array of operation objects.");
  }
  std::vector<PatchOp> ops;
  for (const json::value& opv : doc.as_array()) {
    if (!opv.is_object()) return InvalidArgument("Operations must be JSON objects.");
    const json::object& op = opv.as_object();
    const json::value* opname = op.if_contains("op");
    const json::value* path = op.if_contains("path");
    json::value v20_name;
    if (dialect == PatchDialect::kV20) {
      // Exactly one of the operation names is a key; its value is the path.
      path = nullptr;
      for (std::string_view name : {"add", "remove", "replace"}) {
        if (const json::value* p = op.if_contains(name)) {
          if (path != nullptr) {
            return InvalidArgument(
                "Operation objects must contain only one member named \"add\", \"remove\", or "
                "\"replace\".");
          }
          path = p;
          v20_name = json::string(name);
        }
      }
      if (path == nullptr) {
        return InvalidArgument(
            "Operation objects must contain exactly one member named \"add\", \"remove\", or "
            "\"replace\".");
      }
      opname = &v20_name;
    }
    if (opname == nullptr || !opname->is_string()) {
      return InvalidArgument("Unable to find 'op' in JSON Schema change");
    }
    if (path == nullptr || !path->is_string() || path->as_string().empty() ||
        path->as_string()[0] != '/') {
      return InvalidArgument("Unable to find 'path' in JSON Schema change");
    }
    std::string_view raw = path->as_string();
    raw.remove_prefix(1);
    std::string_view kind = opname->as_string();
    std::string_view index;
    const size_t slash = raw.find('/');
    const bool locations = UnescapePointer(raw.substr(0, slash)) == "locations";
    const bool two_segments = locations && (kind == "add" || kind == "remove");
    if (slash != std::string_view::npos && two_segments &&
        raw.find('/', slash + 1) == std::string_view::npos && slash + 1 < raw.size()) {
      index = raw.substr(slash + 1);
      raw = raw.substr(0, slash);
    } else if (slash != std::string_view::npos || two_segments) {
      return InvalidArgument("Invalid JSON pointer for this resource: '/" + std::string(raw) + "'");
    }
    PatchOp out{PatchOp::Kind::kRemove, UnescapePointer(raw), nullptr, UnescapePointer(index)};
    if (kind == "add" || kind == "replace") {
      const json::value* value = op.if_contains("value");
      if (value == nullptr) return InvalidArgument("Unable to find 'value' in JSON Schema change");
      out.kind = kind == "add" ? PatchOp::Kind::kAdd : PatchOp::Kind::kReplace;
      out.value = *value;
    } else if (kind != "remove") {
      return InvalidArgument("Invalid operation: `" + std::string(kind) + "`");
    }
    ops.push_back(std::move(out));
  }
  return ops;
}

}  // namespace ingot::api
