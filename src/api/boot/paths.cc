#include "api/boot/paths.h"

namespace ingot::api::boot {

Result<BootPath> ParseBootPath(std::string_view raw_target, std::string_view decoded_path) {
  if (raw_target.size() > kMaxTargetBytes || decoded_path.size() > kMaxTargetBytes) {
    return InvalidArgument("the request path is longer than " + std::to_string(kMaxTargetBytes) +
                           " bytes");
  }
  if (decoded_path.empty() || decoded_path.front() != '/') {
    return InvalidArgument("the request path must start with '/'");
  }
  BootPath out;
  out.components.reserve(8);
  for (char c : decoded_path) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\\') return InvalidArgument("the request path holds a backslash");
    if (u < 0x20 || u == 0x7f) return InvalidArgument("the request path holds a control byte");
  }
  size_t pos = 1;
  while (pos <= decoded_path.size()) {
    size_t slash = decoded_path.find('/', pos);
    if (slash == std::string_view::npos) slash = decoded_path.size();
    std::string_view part = decoded_path.substr(pos, slash - pos);
    if (part == "." || part == "..") {
      return InvalidArgument("the request path holds a '.' or '..' component");
    }
    if (!part.empty()) out.components.emplace_back(part);
    pos = slash + 1;
  }
  out.trailing_slash = decoded_path.size() > 1 && decoded_path.back() == '/';
  return out;
}

std::string EncodeComponent(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string EncodePath(const std::vector<std::string>& components, bool directory) {
  std::string out;
  for (const std::string& c : components) {
    out += '/';
    out += EncodeComponent(c);
  }
  if (directory || out.empty()) out += '/';
  return out;
}

std::string EscapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace ingot::api::boot
