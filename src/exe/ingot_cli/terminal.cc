#include "exe/ingot_cli/terminal.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace ingot::cli {
namespace json = boost::json;

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), start_(std::chrono::steady_clock::now()) {}

void ProgressBar::Update(uint64_t done, std::optional<uint64_t> total) {
  done_ = done;
  total_ = total;
  Draw(false);
}

void ProgressBar::Finish() {
  if (!enabled_) return;
  Draw(true);
  fputc('\n', stderr);
  fflush(stderr);
}

void ProgressBar::Draw(bool force) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  double seconds = std::chrono::duration<double>(now - start_).count();
  std::string line = Render(label_, done_, total_, seconds);
  // \r and clear-to-end-of-line: the line may shrink (e.g. the ETA gets shorter).
  fprintf(stderr, "\r%s\x1b[K", line.c_str());
  fflush(stderr);
}

std::string ProgressBar::Render(const std::string& label, uint64_t done,
                                std::optional<uint64_t> total, double seconds) {
  constexpr double kMiB = 1024.0 * 1024.0;
  double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  char buf[256];
  std::string line = label;
  if (total && *total > 0) {
    double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(*total));
    constexpr int kWidth = 30;
    int filled = static_cast<int>(fraction * kWidth);
    line += " [" + std::string(filled, '#') + std::string(kWidth - filled, ' ') + "]";
    snprintf(buf, sizeof(buf), " %3d%% %.1f/%.1f MiB", static_cast<int>(fraction * 100),
             done / kMiB, *total / kMiB);
    line += buf;
  } else {
    snprintf(buf, sizeof(buf), " %.1f MiB", done / kMiB);
    line += buf;
  }
  snprintf(buf, sizeof(buf), " %.1f MiB/s", rate / kMiB);
  line += buf;
  if (total && rate > 0 && done < *total) {
    uint64_t eta = static_cast<uint64_t>(std::ceil(static_cast<double>(*total - done) / rate));
    snprintf(buf, sizeof(buf), " ETA %llu:%02llu", static_cast<unsigned long long>(eta / 60),
             static_cast<unsigned long long>(eta % 60));
    line += buf;
  }
  return line;
}

StatusLine::StatusLine(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), start_(std::chrono::steady_clock::now()) {}

void StatusLine::Update(std::string state) {
  state_ = std::move(state);
  Draw(false);
}

void StatusLine::Finish() {
  if (!enabled_ || !drawn_) return;
  Draw(true);
  fputc('\n', stderr);
  fflush(stderr);
}

void StatusLine::Draw(bool force) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && state_ == shown_ && now - last_draw_ < std::chrono::seconds(1)) return;
  last_draw_ = now;
  drawn_ = true;
  shown_ = state_;
  std::string line = Render(label_, state_, std::chrono::duration<double>(now - start_).count());
  fprintf(stderr, "\r%s\x1b[K", line.c_str());
  fflush(stderr);
}

std::string StatusLine::Render(const std::string& label, const std::string& state, double seconds) {
  auto s = static_cast<unsigned long long>(std::max(0.0, seconds));
  char clock[64];
  snprintf(clock, sizeof(clock), " (%llu:%02llu)", s / 60, s % 60);
  return label + ": " + state + clock;
}

std::string ImportState(const json::object& image) {
  auto text = [&](std::string_view key) -> std::string {
    auto* v = image.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : "";
  };
  // Glance lists stores as "a,b"; shown with a space, as ValueText joins lists.
  auto spaced = [](std::string list) {
    for (size_t i = list.find(','); i != std::string::npos; i = list.find(',', i + 2)) {
      list.insert(i + 1, " ");
    }
    return list;
  };
  std::string state = text("status");
  if (std::string to = text("os_glance_importing_to_stores"); !to.empty()) {
    // copy-image leaves the image active while it copies.
    state += (state == "importing" ? " to " : ", importing to ") + spaced(to);
  }
  if (std::string failed = text("os_glance_failed_import"); !failed.empty()) {
    state += "; failed: " + spaced(failed);
  }
  return state;
}

std::string ValueText(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "None";
    case json::kind::string:
      return std::string(v.get_string());
    case json::kind::bool_:
      return v.get_bool() ? "True" : "False";
    case json::kind::array: {
      std::string out;
      for (const auto& item : v.get_array()) {
        if (!out.empty()) out += ", ";
        out += ValueText(item);
      }
      return out;
    }
    default:
      return json::serialize(v);
  }
}

void PrintTable(FILE* out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  }
  std::string rule = "+";
  for (size_t w : width) rule += std::string(w + 2, '-') + "+";
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line = "|";
    for (size_t i = 0; i < width.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : "";
      line += " " + cell + std::string(width[i] - cell.size(), ' ') + " |";
    }
    fprintf(out, "%s\n", line.c_str());
  };
  fprintf(out, "%s\n", rule.c_str());
  print_row(header);
  fprintf(out, "%s\n", rule.c_str());
  for (const auto& row : rows) print_row(row);
  fprintf(out, "%s\n", rule.c_str());
}

void PrintProperties(FILE* out, const json::object& object) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, value] : object) rows.push_back({std::string(key), ValueText(value)});
  std::sort(rows.begin(), rows.end());
  PrintTable(out, {"Property", "Value"}, rows);
}

void PrintList(bool as_json, const json::value& v, const char* key,
               const std::vector<std::string>& columns) {
  const json::array empty;
  const json::array& items =
      v.is_object() && v.as_object().contains(key) && v.as_object().at(key).is_array()
          ? v.as_object().at(key).as_array()
          : empty;
  if (as_json) {
    printf("%s\n", json::serialize(items).c_str());
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json::value& item : items) {
    if (!item.is_object()) continue;
    std::vector<std::string> row;
    for (const std::string& c : columns) {
      auto* f = item.as_object().if_contains(c);
      row.push_back(f ? ValueText(*f) : "");
    }
    rows.push_back(std::move(row));
  }
  PrintTable(stdout, columns, rows);
}

void PrintObject(bool as_json, const json::value& v) {
  if (!v.is_object()) return;
  if (as_json) {
    printf("%s\n", json::serialize(v).c_str());
  } else {
    PrintProperties(stdout, v.as_object());
  }
}

std::optional<Endpoint> ResolveEndpoint(std::optional<std::string> url,
                                        std::optional<std::string> token,
                                        std::optional<std::string> timeout,
                                        std::chrono::seconds default_timeout) {
  std::string url_text = url.value_or("");
  if (url_text.empty()) {
    const char* env = getenv("INGOT_URL");
    url_text = env && *env ? env : "http://127.0.0.1:9292";
  }
  auto parsed = http::ParseUrl(url_text);
  if (!parsed.ok()) {
    fprintf(stderr, "ingot: %s\n", parsed.status().message().c_str());
    return std::nullopt;
  }
  Endpoint e{std::move(*parsed), token.value_or(""), default_timeout};
  if (e.token.empty()) {
    if (const char* env = getenv("OS_AUTH_TOKEN")) e.token = env;
  }
  if (timeout) e.timeout = std::chrono::seconds(std::max(1L, std::atol(timeout->c_str())));
  return e;
}

}  // namespace ingot::cli
