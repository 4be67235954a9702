#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "common/time.h"
#include "common/utf8.h"

namespace ingot::log {
namespace {
std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};

std::string_view LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

// A byte the reader of a log line must never see raw: it could end the line (CR, LF), drive the
// terminal (ESC, C1 controls) or break a parser downstream (invalid UTF-8).
bool NeedsEscape(std::string_view v, size_t i, size_t* len) {
  auto c = static_cast<unsigned char>(v[i]);
  if (c < 0x20 || c == 0x7f) return true;
  if (c < 0x80) return false;
  *len = Utf8SequenceLength(v.substr(i));
  // U+0080..U+009F are C1 controls; 8-bit terminals act on them as ESC sequences.
  return *len == 0 || (c == 0xc2 && static_cast<unsigned char>(v[i + 1]) < 0xa0);
}

}  // namespace

void AppendValue(std::string& out, std::string_view v) {
  bool quote = v.empty();
  for (size_t i = 0; i < v.size() && !quote; ++i) {
    auto u = static_cast<unsigned char>(v[i]);
    if (u > 0x20 && u < 0x7f && u != '=' && u != '"' && u != '\\') continue;  // the usual byte
    size_t len = 1;
    char c = v[i];
    quote = c == ' ' || c == '=' || c == '"' || c == '\\' || NeedsEscape(v, i, &len);
    i += len - 1;
  }
  if (!quote) {
    out.append(v);
    return;
  }
  out.reserve(out.size() + v.size() + 8);
  out += '"';
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    size_t len = 1;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (NeedsEscape(v, i, &len)) {
      // One escape per byte, also for a C1 control's two bytes: what was sent stays visible.
      size_t n = len == 0 ? 1 : len;
      for (size_t k = 0; k < n; ++k) {
        char buf[5];
        std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(v[i + k]));
        out += buf;
      }
      i += n - 1;
    } else {
      out.append(v.data() + i, len);
      i += len - 1;
    }
  }
  out += '"';
}

std::string FormatValue(std::string_view v) {
  std::string out;
  AppendValue(out, v);
  return out;
}


Field::Field(std::string_view k, double v) : key(k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  value = buf;
}

void SetMinLevel(Level level) { g_min_level = static_cast<int>(level); }

bool Enabled(Level level) {
  return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed);
}

void Write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  if (static_cast<int>(level) < g_min_level.load(std::memory_order_relaxed)) return;
  std::string line;
  line.reserve(128);
  line += "ts=";
  line += FormatIso8601Micros(NowMicros());
  line += " level=";
  line += LevelName(level);
  line += " event=";
  AppendValue(line, event);
  for (const Field& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    AppendValue(line, f.value);
  }
  line += '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace ingot::log
