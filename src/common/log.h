// Structured logging: one line per event, `ts=… level=… event=… key=value …`, to stderr. Values come
// from clients (names, paths, headers) and are escaped (FormatValue), so each event is one line.
// Thread-safe; each line is written with a single write(2) so lines from threads never interleave.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace ingot::log {

enum class Level { kDebug, kInfo, kWarn, kError };

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, int64_t v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, uint64_t v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, int v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, unsigned v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, double v);
  std::string_view key;
  std::string value;
};

void SetMinLevel(Level level);
// Whether a line at `level` would be written (for writers that format lines themselves).
bool Enabled(Level level);
// A value as it appears in a line: verbatim when that is unambiguous, else in double quotes with `"`
// and `\` escaped, CR/LF/TAB as \r \n \t, and every other control byte (ESC, DEL, C1) and every
// byte of ill-formed UTF-8 as \xNN, so a value can never forge a line or drive a terminal. Values with
// spaces, `=` or `"` are quoted.
std::string FormatValue(std::string_view v);
// FormatValue(v) appended to `out`, with no string of its own.
void AppendValue(std::string& out, std::string_view v);
void Write(Level level, std::string_view event, std::initializer_list<Field> fields = {});

inline void Info(std::string_view e, std::initializer_list<Field> f = {}) { Write(Level::kInfo, e, f); }
inline void Warn(std::string_view e, std::initializer_list<Field> f = {}) { Write(Level::kWarn, e, f); }
inline void Error(std::string_view e, std::initializer_list<Field> f = {}) { Write(Level::kError, e, f); }
inline void Debug(std::string_view e, std::initializer_list<Field> f = {}) { Write(Level::kDebug, e, f); }

}  // namespace ingot::log
