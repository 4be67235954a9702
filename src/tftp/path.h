// The one reading of a requested file name, as a static web server reads a URL path: relative to
// the served root, never out of it. Pure; fuzzed with the packet parser.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace ingot::tftp {

inline constexpr size_t kDefaultMaxPathLength = 1024;

// Turns a client's file name into a root-relative path of '/'-separated components:
//  - '\' is a separator (Windows PXE clients send "boot\pxeboot.n12"); leading and repeated
//    separators and "." components are dropped ("/a//./b" -> "a/b");
//  - ".." anywhere, a NUL byte, a name longer than `max_length` or a component longer than 255
//    bytes, and a name with no component left are refused (kRefused).
// The result names no parent and no absolute path; symlinks are the FileSource's business.
Result<std::string> NormalizePath(std::string_view requested,
                                  size_t max_length = kDefaultMaxPathLength);

}  // namespace ingot::tftp
