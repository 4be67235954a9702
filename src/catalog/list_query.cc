#include <algorithm>
#include "catalog/list_query.h"

#include <array>
#include <cctype>
#include <limits>
#include <map>

#include "common/time.h"

namespace ingot::catalog {
namespace {

constexpr std::array<std::pair<SortKey, std::string_view>, 8> kSortKeyNames = {{
    {SortKey::kName, "name"},
    {SortKey::kStatus, "status"},
    {SortKey::kContainerFormat, "container_format"},
    {SortKey::kDiskFormat, "disk_format"},
    {SortKey::kSize, "size"},
    {SortKey::kId, "id"},
    {SortKey::kCreatedAt, "created_at"},
    {SortKey::kUpdatedAt, "updated_at"},
}};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// An integer as Python's int() reads one (surrounding blanks and a sign allowed), which is what
// Glance applies to limit and range filters.
struct ParsedInt {
  bool ok = false;
  bool overflow = false;  // well-formed but outside int64
  int64_t value = 0;
};

ParsedInt ParseInteger(std::string_view text) {
  ParsedInt r;
  std::string_view s = Trim(text);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return r;
  uint64_t magnitude = 0;
  constexpr uint64_t kLimit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  for (char c : s) {
    if (c < '0' || c > '9') return r;
    if (magnitude > (kLimit - static_cast<uint64_t>(c - '0')) / 10) {
      r.overflow = true;
      magnitude = kLimit;
      continue;
    }
    if (!r.overflow) magnitude = magnitude * 10 + static_cast<uint64_t>(c - '0');
  }
  r.ok = !r.overflow;
  r.value = negative ? -static_cast<int64_t>(magnitude) : static_cast<int64_t>(magnitude);
  return r;
}

// Glance's split_filter_op: "op:value" unless the whole expression is an ISO 8601 time (which has
// colons of its own); no colon means equality.
std::pair<std::string, std::string> SplitFilterOp(const std::string& expression) {
  size_t colon = expression.find(':');
  if (colon == std::string::npos || ParseIso8601(expression).has_value()) {
    return {"eq", expression};
  }
  return {expression.substr(0, colon), expression.substr(colon + 1)};
}

std::optional<CompareOp> ParseCompareOp(std::string_view op) {
  if (op == "eq") return CompareOp::kEq;
  if (op == "neq") return CompareOp::kNeq;
  if (op == "gt") return CompareOp::kGt;
  if (op == "gte") return CompareOp::kGte;
  if (op == "lt") return CompareOp::kLt;
  if (op == "lte") return CompareOp::kLte;
  return std::nullopt;
}

// Fields that accept the eq:/in: operators (Glance: name, id, status, container_format,
// disk_format).
std::optional<Field> OperatorField(std::string_view key) {
  if (key == "name") return Field::kName;
  if (key == "id") return Field::kId;
  if (key == "status") return Field::kStatus;
  if (key == "container_format") return Field::kContainerFormat;
  if (key == "disk_format") return Field::kDiskFormat;
  return std::nullopt;
}

// Core columns compared by plain equality, the value taken literally.
std::optional<Field> EqualityField(std::string_view key) {
  if (key == "owner") return Field::kOwner;
  if (key == "checksum") return Field::kChecksum;
  if (key == "os_hash_algo") return Field::kOsHashAlgo;
  if (key == "os_hash_value") return Field::kOsHashValue;
  if (key == "size") return Field::kSize;
  if (key == "virtual_size") return Field::kVirtualSize;
  if (key == "min_disk") return Field::kMinDisk;
  if (key == "min_ram") return Field::kMinRam;
  return std::nullopt;
}

std::optional<Field> RangeField(std::string_view base) {
  if (base == "size") return Field::kSize;
  if (base == "virtual_size") return Field::kVirtualSize;
  if (base == "min_disk") return Field::kMinDisk;
  if (base == "min_ram") return Field::kMinRam;
  return std::nullopt;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Status InvalidSortKey(std::string_view key) {
  std::string available;
  for (const auto& [k, name] : kSortKeyNames) {
    if (!available.empty()) available += ", ";
    available += name;
  }
  return InvalidArgument("Invalid sort key: " + std::string(key) +
                         ". It must be one of the following: " + available + ".");
}

Result<SortKey> ValidSortKey(std::string_view key) {
  auto k = ParseSortKey(key);
  if (!k) return InvalidSortKey(key);
  return *k;
}

Result<SortDir> ValidSortDir(std::string_view dir) {
  if (dir == "asc") return SortDir::kAsc;
  if (dir == "desc") return SortDir::kDesc;
  return InvalidArgument("Invalid sort direction: " + std::string(dir));
}

// Glance's _get_sorting_params plus the tiebreakers its database layer appends.
Result<std::vector<SortTerm>> ParseSort(
    const std::vector<std::pair<std::string, std::string>>& params) {
  std::optional<std::string> sort;
  std::vector<std::string> keys_text, dirs_text;
  for (const auto& [k, v] : params) {
    if (k == "sort") {
      if (!sort) sort = v;
    } else if (k == "sort_key") {
      keys_text.push_back(v);
    } else if (k == "sort_dir") {
      dirs_text.push_back(v);
    }
  }
  size_t asked = std::max(keys_text.size(), dirs_text.size());
  if (sort) asked = std::max<size_t>(asked, std::count(sort->begin(), sort->end(), ',') + 1);
  if (asked > kMaxSortKeys) {
    return InvalidArgument("Too many sort keys: at most " + std::to_string(kMaxSortKeys) +
                           " per request.");
  }
  std::vector<SortKey> keys;
  std::vector<SortDir> dirs;
  if (sort) {
    if (!keys_text.empty() || !dirs_text.empty()) {
      return InvalidArgument("Old and new sorting syntax cannot be combined");
    }
    std::string_view rest = Trim(*sort);
    while (true) {
      size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      size_t colon = item.find(':');
      std::string_view key = Trim(item.substr(0, colon));
      std::string_view dir = colon == std::string_view::npos ? "" : Trim(item.substr(colon + 1));
      INGOT_ASSIGN_OR_RETURN(SortKey sk, ValidSortKey(key));
      keys.push_back(sk);
      if (dir.empty()) {
        dirs.push_back(SortDir::kDesc);
      } else {
        INGOT_ASSIGN_OR_RETURN(SortDir sd, ValidSortDir(dir));
        dirs.push_back(sd);
      }
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  } else {
    for (const auto& k : keys_text) {
      INGOT_ASSIGN_OR_RETURN(SortKey sk, ValidSortKey(Trim(k)));
      keys.push_back(sk);
    }
    for (const auto& d : dirs_text) {
      INGOT_ASSIGN_OR_RETURN(SortDir sd, ValidSortDir(Trim(d)));
      dirs.push_back(sd);
    }
    if (dirs.size() > 1 && dirs.size() != keys.size()) {
      return InvalidArgument("Number of sort dirs does not match the number of sort keys");
    }
  }
  if (keys.empty()) keys.push_back(SortKey::kCreatedAt);
  if (dirs.empty()) dirs.push_back(SortDir::kDesc);
  // One direction given applies to every key, and to the tiebreakers appended below.
  SortDir default_dir = SortDir::kDesc;
  if (dirs.size() == 1) {
    default_dir = dirs[0];
    dirs.resize(keys.size(), default_dir);
  }
  // keys.size() < dirs.size() is possible only in the new syntax's absence; guard anyway.
  std::vector<SortTerm> terms;
  for (size_t i = 0; i < keys.size(); ++i) {
    terms.push_back({keys[i], i < dirs.size() ? dirs[i] : default_dir});
  }
  for (SortKey tiebreak : {SortKey::kCreatedAt, SortKey::kId}) {
    bool present = false;
    for (const auto& t : terms) present = present || t.key == tiebreak;
    if (!present) terms.push_back({tiebreak, default_dir});
  }
  return terms;
}

}  // namespace

std::string_view SortKeyName(SortKey k) {
  for (const auto& [key, name] : kSortKeyNames) {
    if (key == k) return name;
  }
  return "unknown";
}

std::optional<SortKey> ParseSortKey(std::string_view s) {
  for (const auto& [key, name] : kSortKeyNames) {
    if (name == s) return key;
  }
  return std::nullopt;
}

Result<std::vector<std::string>> SplitInList(std::string_view value) {
  // Quotes must open at the start or after a comma, close at the end or before a comma, and be
  // balanced; a backslash escapes a quote.
  bool open = false;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '"') continue;
    if (i > 0 && value[i - 1] == '\\') continue;
    if (!open) {
      if (i > 0 && value[i - 1] != ',') {
        return InvalidArgument("Invalid filter value " + std::string(value) +
                               ". There is no comma before opening quotation mark.");
      }
    } else if (i + 1 != value.size() && value[i + 1] != ',') {
      return InvalidArgument("Invalid filter value " + std::string(value) +
                             ". There is no comma after closing quotation mark.");
    }
    open = !open;
  }
  if (open) {
    return InvalidArgument("Invalid filter value " + std::string(value) +
                           ". The quote is not closed.");
  }
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < value.size()) {
    if (value[pos] == ',') {  // an empty item
      out.emplace_back();
      ++pos;
      continue;
    }
    if (value[pos] == '"') {
      size_t j = pos + 1;
      while (j < value.size() && value[j] != '"') j += value[j] == '\\' ? 2 : 1;
      if (j < value.size()) {
        out.emplace_back(value.substr(pos + 1, j - pos - 1));
        pos = j + 1;
        if (pos < value.size() && value[pos] == ',') ++pos;
        continue;
      }
    }
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) comma = value.size();
    out.emplace_back(value.substr(pos, comma - pos));
    pos = comma < value.size() ? comma + 1 : comma;
  }
  return out;
}

Result<ListQuery> ParseListQuery(const std::vector<std::pair<std::string, std::string>>& params) {
  ListQuery q;
  std::optional<std::string> limit_text, member_status_text;
  // Filters keep their first value, as Glance's MultiDict.pop hands it over; order is kept so
  // errors come out in a stable order.
  std::vector<std::pair<std::string, std::string>> filters;
  std::map<std::string, bool> seen;
  for (const auto& [k, v] : params) {
    if (k == "limit") {
      if (!limit_text) limit_text = v;
    } else if (k == "marker") {
      if (!q.marker) q.marker = v;
    } else if (k == "member_status") {
      if (!member_status_text) member_status_text = v;
    } else if (k == "tag") {
      q.tags.emplace_back(Trim(v));
    } else if (k == "sort" || k == "sort_key" || k == "sort_dir") {
      // parsed below
    } else if (!seen[k]) {
      seen[k] = true;
      filters.emplace_back(k, v);
    }
  }

  if (filters.size() > kMaxListFilters) {
    return InvalidArgument("Too many filters: at most " + std::to_string(kMaxListFilters) +
                           " per request.");
  }
  if (q.tags.size() > kMaxListTags) {
    return InvalidArgument("Too many tag filters: at most " + std::to_string(kMaxListTags) +
                           " per request.");
  }
  // The same order of checks as Glance: filters' visibility, member_status, limit, sorting, then
  // the filters' values.
  for (const auto& [k, v] : filters) {
    if (k == "visibility" && !v.empty()) {
      if (v == "all") {
        q.visibility.all = true;
      } else if (auto vis = ParseVisibility(v)) {
        q.visibility.only = *vis;
      } else {
        return InvalidArgument("Invalid visibility value: " + v);
      }
    } else if (k == "changes-since") {
      return InvalidArgument("The \"changes-since\" filter is no longer available on v2.");
    }
  }
  if (member_status_text) {
    if (*member_status_text == "all") {
      q.member_status = std::nullopt;
    } else if (auto ms = ParseMemberStatus(*member_status_text)) {
      q.member_status = *ms;
    } else {
      return InvalidArgument("Invalid status: " + *member_status_text);
    }
  }
  if (limit_text) {
    ParsedInt n = ParseInteger(*limit_text);
    if (!n.ok && !n.overflow) return InvalidArgument("limit param must be an integer");
    bool negative = Trim(*limit_text).front() == '-';
    if (negative && (n.overflow || n.value < 0)) {
      return InvalidArgument("limit param must be positive");
    }
    q.limit = n.overflow || n.value > kMaxListLimit ? kMaxListLimit : static_cast<int>(n.value);
  }
  INGOT_ASSIGN_OR_RETURN(q.sort, ParseSort(params));

  for (const auto& [k, v] : filters) {
    if (k == "visibility" || k == "deleted") {
      // visibility handled above; Glance's API always lists non-deleted images whatever is asked.
      continue;
    }
    if (k == "os_hidden") {
      std::string lowered = Lower(v);
      if (lowered != "true" && lowered != "false") {
        return InvalidArgument("Invalid value '" + lowered +
                               "' for 'os_hidden' filter. Valid values are 'true' or 'false'.");
      }
      q.os_hidden = lowered == "true";
    } else if (k == "protected") {
      if (v != "true" && v != "false") {
        return InvalidArgument("Invalid value '" + v +
                               "' for 'protected' filter. Valid values are 'true' or 'false'.");
      }
      q.is_protected = v == "true";
    } else if (EndsWith(k, "_min") || EndsWith(k, "_max")) {
      ParsedInt n = ParseInteger(v);
      if (!n.ok) return InvalidArgument("Unable to filter on a range with a non-numeric value.");
      std::string base = k.substr(0, k.size() - 4);
      auto field = RangeField(base);
      if (!field) return InvalidArgument("Unable to filter on a range of '" + base + "'.");
      RangeFilter* range = nullptr;
      for (auto& r : q.ranges) {
        if (r.field == *field) range = &r;
      }
      if (!range) range = &q.ranges.emplace_back(RangeFilter{*field, {}, {}});
      (EndsWith(k, "_min") ? range->min : range->max) = n.value;
    } else if (k == "created_at" || k == "updated_at") {
      auto [op_text, when] = SplitFilterOp(v);
      auto micros = ParseIso8601(when);
      if (!micros) {
        return InvalidArgument("Bad \"" + k +
                               "\" query filter format. Use ISO 8601 DateTime notation.");
      }
      auto op = ParseCompareOp(op_text);
      if (!op) return InvalidArgument("Unable to filter on a unknown operator.");
      // Floor to whole seconds (timestamps before 1970 round towards minus infinity too).
      int64_t seconds = *micros / 1000000 - (*micros % 1000000 < 0 ? 1 : 0);
      q.times.push_back(
          {k == "created_at" ? TimeField::kCreatedAt : TimeField::kUpdatedAt, *op, seconds});
    } else if (auto field = OperatorField(k)) {
      auto [op, operand] = SplitFilterOp(v);
      if (op == "in") {
        INGOT_ASSIGN_OR_RETURN(auto values, SplitInList(operand));
        if (values.size() > kMaxInValues) {
          return InvalidArgument("Too many values in the " + k + " filter: at most " +
                                 std::to_string(kMaxInValues) + ".");
        }
        q.fields.push_back({*field, std::move(values)});
      } else if (op == "eq") {
        q.fields.push_back({*field, {operand}});
      } else {
        return InvalidArgument("Unable to filter by unknown operator '" + op + "'.");
      }
    } else if (auto eq = EqualityField(k)) {
      q.fields.push_back({*eq, {v}});
    } else {
      q.properties.emplace_back(k, v);
    }
  }
  return q;
}

}  // namespace ingot::catalog
