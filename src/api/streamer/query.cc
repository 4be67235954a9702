#include "api/streamer/query.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>

namespace ingot::api::streamer {
namespace json = boost::json;
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void SkipSpace(std::string_view s, size_t& p) {
  while (p < s.size() && std::isspace(static_cast<unsigned char>(s[p]))) ++p;
}

// A quoted string ('' or "" doubled inside) or a bare token up to a space.
Result<std::string> Token(std::string_view s, size_t& p) {
  SkipSpace(s, p);
  if (p >= s.size()) return InvalidArgument("filter: a value is missing");
  char q = s[p];
  if (q == '\'' || q == '"') {
    std::string out;
    for (++p; p < s.size(); ++p) {
      if (s[p] == q) {
        if (p + 1 < s.size() && s[p + 1] == q) {
          out += q;
          ++p;
          continue;
        }
        ++p;
        return out;
      }
      out += s[p];
    }
    return InvalidArgument("filter: an unclosed quote");
  }
  size_t b = p;
  while (p < s.size() && !std::isspace(static_cast<unsigned char>(s[p])) && s[p] != '=' &&
         s[p] != '!' && s[p] != '<' && s[p] != '>') {
    ++p;
  }
  if (b == p) return InvalidArgument("filter: expected a field or value");
  return std::string(s.substr(b, p - b));
}

const json::value* Field(const json::object& doc, std::string_view field) {
  const json::object* o = &doc;
  const json::value* v = nullptr;
  size_t pos = 0;
  while (pos <= field.size()) {
    size_t dot = field.find('.', pos);
    std::string_view key = field.substr(pos, dot == std::string_view::npos ? dot : dot - pos);
    v = o->if_contains(key);
    if (v == nullptr) return nullptr;
    if (dot == std::string_view::npos) return v;
    if (!v->is_object()) return nullptr;
    o = &v->as_object();
    pos = dot + 1;
  }
  return v;
}

std::string Text(const json::value* v) {
  if (v == nullptr || v->is_null()) return "";
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_bool()) return v->as_bool() ? "true" : "false";
  return json::serialize(*v);
}

bool Number(const std::string& s, double& d) {
  if (s.empty()) return false;
  char* end = nullptr;
  d = std::strtod(s.c_str(), &end);
  return *end == '\0';
}

// SQL LIKE with %, case-insensitive.
bool Like(std::string_view text, std::string_view pattern) {
  size_t t = 0, p = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '%') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() &&
               std::tolower(static_cast<unsigned char>(pattern[p])) ==
                   std::tolower(static_cast<unsigned char>(text[t]))) {
      ++p, ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '%') ++p;
  return p == pattern.size();
}

int Compare(const json::value* a, const json::value* b) {
  std::string x = Text(a), y = Text(b);
  double dx, dy;
  if (Number(x, dx) && Number(y, dy)) return dx < dy ? -1 : dx > dy ? 1 : 0;
  return x.compare(y) < 0 ? -1 : x.compare(y) > 0 ? 1 : 0;
}

}  // namespace

Result<std::vector<Clause>> ParseFilter(std::string_view f) {
  // The Python SDK wraps the whole filter in double quotes.
  while (!f.empty() && std::isspace(static_cast<unsigned char>(f.front()))) f.remove_prefix(1);
  while (!f.empty() && std::isspace(static_cast<unsigned char>(f.back()))) f.remove_suffix(1);
  if (f.size() >= 2 && f.front() == '"' && f.back() == '"' &&
      f.find('"', 1) == f.size() - 1) {
    f = f.substr(1, f.size() - 2);
  }
  if (f.size() > 4096) return InvalidArgument("filter is longer than 4096 characters");
  std::vector<Clause> out;
  size_t p = 0;
  for (;;) {
    Clause c;
    INGOT_ASSIGN_OR_RETURN(c.field, Token(f, p));
    SkipSpace(f, p);
    static constexpr const char* kOps[] = {"==", "!=", "<>", "<=", ">=", "=", "<", ">"};
    bool found = false;
    for (const char* op : kOps) {
      if (f.substr(p).starts_with(op)) {
        c.op = op;
        p += std::string_view(op).size();
        found = true;
        break;
      }
    }
    if (!found) {
      if (Lower(f.substr(p, 7)) == "matches") {
        c.op = "matches";
        p += 7;
      } else {
        return InvalidArgument("filter: expected an operator after '" + c.field +
                               "' (=, !=, <, >, <=, >=, matches)");
      }
    }
    if (c.op == "==") c.op = "=";
    if (c.op == "<>") c.op = "!=";
    INGOT_ASSIGN_OR_RETURN(c.value, Token(f, p));
    out.push_back(std::move(c));
    if (out.size() > 32) return InvalidArgument("filter: at most 32 clauses");
    SkipSpace(f, p);
    if (p >= f.size()) break;
    if (Lower(f.substr(p, 3)) == "and" && p + 3 < f.size() &&
        std::isspace(static_cast<unsigned char>(f[p + 3]))) {
      p += 3;
      continue;
    }
    return InvalidArgument("filter: clauses are joined by AND");
  }
  return out;
}

Result<ListQuery> ParseListQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  ListQuery q;
  auto integer = [](const std::string& name, const std::string& v, int64_t& out) -> Status {
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || ptr != v.data() + v.size()) {
      return InvalidArgument(name + " must be an integer");
    }
    return Status::Ok();
  };
  for (const auto& [k, v] : query) {
    if (k == "start") {
      INGOT_RETURN_IF_ERROR(integer("start", v, q.start));
      if (q.start < 0) return InvalidArgument("start must be 0 or more");
    } else if (k == "count") {
      INGOT_RETURN_IF_ERROR(integer("count", v, q.count));
      if (q.count < -1) return InvalidArgument("count must be -1 (all) or more");
    } else if (k == "filter") {
      if (v.empty()) continue;
      INGOT_ASSIGN_OR_RETURN(auto clauses, ParseFilter(v));
      q.filters.insert(q.filters.end(), clauses.begin(), clauses.end());
    } else if (k == "sort") {
      size_t p = 0;
      while (p < v.size()) {
        size_t comma = v.find(',', p);
        std::string item = v.substr(p, comma == std::string::npos ? std::string::npos : comma - p);
        p = comma == std::string::npos ? v.size() : comma + 1;
        if (item.empty()) continue;
        SortKey s;
        size_t colon = item.find(':');
        s.field = item.substr(0, colon);
        if (colon != std::string::npos) {
          std::string dir = Lower(item.substr(colon + 1));
          if (dir != "asc" && dir != "desc") return InvalidArgument("sort: direction is asc or desc");
          s.descending = dir == "desc";
        }
        q.sort.push_back(std::move(s));
      }
    }
  }
  return q;
}

bool Matches(const json::object& doc, const Clause& c) {
  const json::value* v = Field(doc, c.field);
  if (c.op == "matches") return Like(Text(v), c.value);
  json::value want(c.value);
  int cmp = Compare(v, &want);
  if (c.op == "=") return Text(v) == c.value || (cmp == 0 && v != nullptr && v->is_number());
  if (c.op == "!=") return !(Text(v) == c.value);
  if (c.op == "<") return cmp < 0;
  if (c.op == ">") return cmp > 0;
  if (c.op == "<=") return cmp <= 0;
  if (c.op == ">=") return cmp >= 0;
  return false;
}

json::object Page(std::vector<json::object> docs, const ListQuery& q,
                  const std::string& collection_uri, const std::string& type) {
  std::vector<json::object> kept;
  for (json::object& d : docs) {
    bool ok = true;
    for (const Clause& c : q.filters) ok = ok && Matches(d, c);
    if (ok) kept.push_back(std::move(d));
  }
  if (!q.sort.empty()) {
    std::stable_sort(kept.begin(), kept.end(), [&](const json::object& a, const json::object& b) {
      for (const SortKey& k : q.sort) {
        int c = Compare(Field(a, k.field), Field(b, k.field));
        if (c != 0) return k.descending ? c > 0 : c < 0;
      }
      return false;
    });
  }
  const int64_t total = static_cast<int64_t>(kept.size());
  const int64_t start = std::min(q.start, total);
  const int64_t end = q.count < 0 ? total : std::min(total, start + q.count);
  json::array members;
  for (int64_t i = start; i < end; ++i) members.push_back(std::move(kept[size_t(i)]));
  auto uri = [&](int64_t s, int64_t c) {
    return collection_uri + "?start=" + std::to_string(s) + "&count=" + std::to_string(c);
  };
  json::object page{{"type", type},
                    {"category", collection_uri.substr(collection_uri.rfind('/') + 1)},
                    {"members", std::move(members)},
                    {"total", total},
                    {"count", end - start},
                    {"start", start},
                    {"uri", uri(start, q.count)},
                    {"prevPageUri", nullptr},
                    {"nextPageUri", nullptr}};
  if (q.count > 0 && end < total) page["nextPageUri"] = uri(end, q.count);
  if (q.count > 0 && start > 0) page["prevPageUri"] = uri(std::max<int64_t>(0, start - q.count), q.count);
  return page;
}

}  // namespace ingot::api::streamer
