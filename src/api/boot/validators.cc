#include "api/boot/validators.h"

#include <time.h>

#include <array>
#include <charconv>
#include <utility>

namespace ingot::api::boot {
namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 40> kTypes{{
    {".iso", "application/x-iso9660-image"},
    {".img", "application/octet-stream"},
    {".raw", "application/octet-stream"},
    {".qcow2", "application/octet-stream"},
    {".efi", "application/efi"},
    {".kpxe", "application/octet-stream"},
    {".pxe", "application/octet-stream"},
    {".ipxe", "text/plain; charset=utf-8"},
    {".cfg", "text/plain; charset=utf-8"},
    {".conf", "text/plain; charset=utf-8"},
    {".txt", "text/plain; charset=utf-8"},
    {".ks", "text/plain; charset=utf-8"},
    {".seed", "text/plain; charset=utf-8"},
    {".preseed", "text/plain; charset=utf-8"},
    {".sh", "text/plain; charset=utf-8"},
    {".md5", "text/plain; charset=utf-8"},
    {".sha256", "text/plain; charset=utf-8"},
    {".sig", "application/pgp-signature"},
    {".asc", "application/pgp-signature"},
    {".html", "text/html; charset=utf-8"},
    {".htm", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".xml", "application/xml"},
    {".yaml", "application/yaml"},
    {".yml", "application/yaml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".svg", "image/svg+xml"},
    {".gz", "application/gzip"},
    {".tgz", "application/gzip"},
    {".xz", "application/x-xz"},
    {".zst", "application/zstd"},
    {".bz2", "application/x-bzip2"},
    {".tar", "application/x-tar"},
    {".cpio", "application/x-cpio"},
    {".squashfs", "application/octet-stream"},
    {".rpm", "application/x-rpm"},
    {".deb", "application/vnd.debian.binary-package"},
}};

constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

bool Digits(std::string_view s, int& out) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether a comma-separated list of entity tags (If-Match / If-None-Match / If-Range) holds
// `etag`; weak comparison ignores a W/ prefix on either side. "*" matches anything.
bool ListMatches(std::string_view list, std::string_view etag, bool weak) {
  if (Trim(list) == "*") return true;
  auto opaque = [](std::string_view t) {
    if (t.starts_with("W/")) t.remove_prefix(2);
    return t;
  };
  bool ours_weak = etag.starts_with("W/");
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    if (!item.empty()) {
      if (weak) {
        if (opaque(item) == opaque(etag)) return true;
      } else if (!item.starts_with("W/") && !ours_weak && item == etag) {
        return true;
      }
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string_view ContentTypeFor(std::string_view name) {
  // The extension, lower-cased, looked up by equality (every entry of kTypes is one '.' and at
  // most kLongest bytes): one pass over the name, not one per entry.
  constexpr size_t kLongest = 16;
  constexpr std::string_view kDefault = "application/octet-stream";
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || name.size() - dot > kLongest) return kDefault;
  char lower[kLongest];
  size_t n = name.size() - dot;
  for (size_t i = 0; i < n; ++i) {
    char c = name[dot + i];
    lower[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
  }
  std::string_view ext(lower, n);
  for (const auto& [known, type] : kTypes) {
    if (known == ext) return type;
  }
  return kDefault;
}

std::string FormatHttpDate(int64_t seconds) {
  time_t t = static_cast<time_t>(seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

std::optional<int64_t> ParseHttpDate(std::string_view s) {
  // "Sun, 06 Nov 1994 08:49:37 GMT": exactly 29 bytes.
  s = Trim(s);
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT") {
    return std::nullopt;
  }
  bool day_ok = false;
  for (auto d : kDays) day_ok |= s.substr(0, 3) == d;
  if (!day_ok) return std::nullopt;
  int month = -1;
  for (size_t i = 0; i < kMonths.size(); ++i) {
    if (s.substr(8, 3) == kMonths[i]) month = static_cast<int>(i);
  }
  int day, year, hour, minute, second;
  if (month < 0 || !Digits(s.substr(5, 2), day) || !Digits(s.substr(12, 4), year) ||
      !Digits(s.substr(17, 2), hour) || !Digits(s.substr(20, 2), minute) ||
      !Digits(s.substr(23, 2), second)) {
    return std::nullopt;
  }
  if (day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  struct tm tm = {};
  tm.tm_year = year - 1900;
  tm.tm_mon = month;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(timegm(&tm));
}

Precondition EvaluatePreconditions(const http::Headers& h, const Validators& v) {
  if (auto im = h.Get("If-Match")) {
    if (!ListMatches(*im, v.etag, /*weak=*/false)) return Precondition::kFailed;
  } else if (auto ius = h.Get("If-Unmodified-Since")) {
    if (auto date = ParseHttpDate(*ius); date && v.last_modified > *date) {
      return Precondition::kFailed;
    }
  }
  if (auto inm = h.Get("If-None-Match")) {
    if (ListMatches(*inm, v.etag, /*weak=*/true)) return Precondition::kNotModified;
  } else if (auto ims = h.Get("If-Modified-Since")) {
    if (auto date = ParseHttpDate(*ims); date && v.last_modified <= *date) {
      return Precondition::kNotModified;
    }
  }
  return Precondition::kServe;
}

bool RangeAllowed(const http::Headers& h, const Validators& v) {
  auto ir = h.Get("If-Range");
  if (!ir) return true;
  std::string_view value = Trim(*ir);
  if (value.starts_with("\"") || value.starts_with("W/")) {
    return ListMatches(value, v.etag, /*weak=*/false) && value.find(',') == std::string_view::npos;
  }
  auto date = ParseHttpDate(value);
  return date && *date == v.last_modified;
}

}  // namespace ingot::api::boot
