#include "tftp/path.h"

namespace ingot::tftp {

Result<std::string> NormalizePath(std::string_view requested, size_t max_length) {
  if (requested.size() > max_length) return Refused("file name too long");
  if (requested.find('\0') != std::string_view::npos) return Refused("NUL byte in file name");
  std::string out;
  out.reserve(requested.size());
  size_t i = 0;
  while (i < requested.size()) {
    size_t j = i;
    while (j < requested.size() && requested[j] != '/' && requested[j] != '\\') ++j;
    std::string_view component = requested.substr(i, j - i);
    i = j + 1;
    if (component.empty() || component == ".") continue;
    if (component == "..") return Refused("'..' in file name");
    if (component.size() > 255) return Refused("file name component too long");
    if (!out.empty()) out.push_back('/');
    out.append(component);
  }
  if (out.empty()) return Refused("empty file name");
  return out;
}

}  // namespace ingot::tftp
