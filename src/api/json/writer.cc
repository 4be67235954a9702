#include "api/json/writer.h"

namespace ingot::api::json_text {

void AppendString(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void AppendKey(std::string& out, std::string_view key) {
  if (out.back() != '{') out += ", ";
  AppendString(out, key);
  out += ": ";
}

void AppendOptional(std::string& out, const std::optional<std::string>& v) {
  if (v) {
    AppendString(out, *v);
  } else {
    out += "null";
  }
}

void AppendOptional(std::string& out, const std::optional<uint64_t>& v) {
  if (v) {
    out += std::to_string(*v);
  } else {
    out += "null";
  }
}

}  // namespace ingot::api::json_text
