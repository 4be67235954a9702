#include "common/time.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>

namespace ingot {

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

static void FormatSeconds(int64_t secs, char* buf, size_t n) {
  time_t t = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  std::strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
}

std::string FormatIso8601(int64_t micros) {
  char buf[40];
  int64_t secs = micros >= 0 ? micros / 1000000 : (micros - 999999) / 1000000;
  FormatSeconds(secs, buf, sizeof buf);
  std::string s(buf);
  s += 'Z';
  return s;
}

void AppendIso8601Micros(std::string& out, int64_t micros) {
  // Every log line starts with one: the date and time are formatted once a second per thread,
  // the microseconds by hand (strftime and snprintf were a visible part of a small request).
  thread_local int64_t cached_secs = INT64_MIN;
  thread_local char cached[40];
  int64_t secs = micros >= 0 ? micros / 1000000 : (micros - 999999) / 1000000;
  if (secs != cached_secs) {
    FormatSeconds(secs, cached, sizeof cached);
    cached_secs = secs;
  }
  out += cached;
  char frac[9] = {'.', '0', '0', '0', '0', '0', '0', 'Z', '\0'};
  for (int64_t v = micros - secs * 1000000, i = 6; i >= 1; --i, v /= 10) frac[i] = char('0' + v % 10);
  out.append(frac, 8);
}

std::string FormatIso8601Micros(int64_t micros) {
  std::string out;
  AppendIso8601Micros(out, micros);
  return out;
}

namespace {
bool Digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}
}  // namespace

std::optional<int64_t> ParseIso8601(std::string_view s) {
  int y, mo, d, h = 0, mi = 0, se = 0;
  if (!Digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, mo) || s[7] != '-' ||
      !Digits(s, 8, 2, d))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
  size_t pos = 10;
  int64_t frac_us = 0;
  int64_t offset_s = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != ' ') return std::nullopt;
    if (!Digits(s, pos + 1, 2, h) || s.size() < pos + 6 || s[pos + 3] != ':' ||
        !Digits(s, pos + 4, 2, mi))
      return std::nullopt;
    pos += 6;
    if (pos < s.size() && s[pos] == ':') {
      if (!Digits(s, pos + 1, 2, se)) return std::nullopt;
      pos += 3;
    }
    if (h > 23 || mi > 59 || se > 60) return std::nullopt;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      int64_t scale = 100000;
      size_t start = pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (scale > 0) frac_us += (s[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
      if (pos == start) return std::nullopt;
    }
    if (pos < s.size()) {
      if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
      } else if (s[pos] == '+' || s[pos] == '-') {
        int oh, om;
        if (!Digits(s, pos + 1, 2, oh)) return std::nullopt;
        size_t mpos = pos + 3;
        if (mpos < s.size() && s[mpos] == ':') ++mpos;
        if (!Digits(s, mpos, 2, om)) return std::nullopt;
        offset_s = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
        pos = mpos + 2;
      }
    }
    if (pos != s.size()) return std::nullopt;
  }
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_s;
  return secs * 1000000 + frac_us;
}

}  // namespace ingot
