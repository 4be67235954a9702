// A list request over the catalog: Glance's filters, sort keys and pagination, parsed from query
// parameters into typed form so repositories never see raw user strings in SQL text. Every column a
// filter or sort names is an enum value; only values (bound as parameters) come from the user.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "catalog/image.h"
#include "common/result.h"

namespace ingot::catalog {

// Glance's page size when none is asked for (limit_param_default) and the cap on any page
// (api_limit_max).
inline constexpr int kDefaultListLimit = 25;
inline constexpr int kMaxListLimit = 1000;

// Bounds on one query, so a request cannot make the database build an expression it refuses (SQLite
// answers "Expression tree is too large" past ~1,000 terms) or spend its time on one list.
inline constexpr size_t kMaxListFilters = 64;   // distinct filter parameters
inline constexpr size_t kMaxSortKeys = 16;      // sort terms asked for
inline constexpr size_t kMaxListTags = 64;      // tag= parameters
inline constexpr size_t kMaxInValues = 256;     // values of one in: filter

// The sort keys Glance's v2 API accepts (glance/api/v2/images.py, _available_sort_keys), in the
// order its error message lists them.
enum class SortKey {
  kName,
  kStatus,
  kContainerFormat,
  kDiskFormat,
  kSize,
  kId,
  kCreatedAt,
  kUpdatedAt
};
enum class SortDir { kAsc, kDesc };

std::string_view SortKeyName(SortKey k);  // "name", "container_format", ...
std::optional<SortKey> ParseSortKey(std::string_view s);

struct SortTerm {
  SortKey key;
  SortDir dir;
  bool operator==(const SortTerm&) const = default;
};

// Image attributes a filter can name. Which filters accept which fields is decided by the parser.
enum class Field {
  kId,
  kName,
  kStatus,
  kDiskFormat,
  kContainerFormat,
  kOwner,
  kChecksum,
  kOsHashAlgo,
  kOsHashValue,
  kSize,
  kVirtualSize,
  kMinDisk,
  kMinRam,
};

// field = value, or field IN (values) for Glance's `in:a,b,"c,d"` form (an empty list matches
// nothing). Values are compared as text; a numeric field compares numerically when the value is an
// integer.
struct FieldFilter {
  Field field;
  std::vector<std::string> values;
};

// size_min / size_max style bounds (inclusive) on a numeric field.
struct RangeFilter {
  Field field;  // kSize, kVirtualSize, kMinDisk or kMinRam
  std::optional<int64_t> min;
  std::optional<int64_t> max;
};

enum class TimeField { kCreatedAt, kUpdatedAt };
enum class CompareOp { kEq, kNeq, kGt, kGte, kLt, kLte };

// created_at=gte:2026-11-23T00:00:00Z. Compared at whole-second precision, the precision Glance
// shows timestamps in, so a value copied from a response matches the image it came from.
struct TimeFilter {
  TimeField field;
  CompareOp op;
  int64_t seconds;  // since the epoch, UTC
};

// Which visibilities a list asks for. nullopt (the default) is Glance's "no visibility given":
// community images are then included only when the viewer owns them.
struct VisibilityFilter {
  bool all = false;                // visibility=all
  std::optional<Visibility> only;  // visibility=public|private|shared|community
};

struct ListQuery {
  int limit = kDefaultListLimit;  // 0..kMaxListLimit
  std::optional<std::string> marker;

  // Sort order, always ending with created_at and id so the order is total (Glance appends them).
  std::vector<SortTerm> sort = {{SortKey::kCreatedAt, SortDir::kDesc},
                                {SortKey::kId, SortDir::kDesc}};

  VisibilityFilter visibility;
  // Shared images are listed for a member only in this membership status; nullopt: any (`all`).
  std::optional<MemberStatus> member_status = MemberStatus::kAccepted;
  bool os_hidden = false;  // Glance lists only non-hidden images unless os_hidden=true is asked
  std::optional<bool> is_protected;
  std::vector<FieldFilter> fields;
  std::vector<RangeFilter> ranges;
  std::vector<TimeFilter> times;
  std::vector<std::string> tags;                                // every one must be on the image
  std::vector<std::pair<std::string, std::string>> properties;  // extra property name = value
};

// Parses GET /v2/images query parameters (decoded, in order, repeats kept) as Glance's v2 API does:
// limit, marker, member_status, visibility, os_hidden, protected, tag (repeatable), sort or
// sort_key/sort_dir (repeatable), name/id/status/disk_format/container_format (eq: or in:),
// created_at/updated_at (eq|neq|gt|gte|lt|lte: ISO 8601), <numeric>_min/_max, core columns by
// equality, and any other key as an extra property equality. A filter repeated keeps its last
// value. kInvalidArgument, with Glance's message, for any malformed value, and naming the bound when a
// query holds more filters, sort keys, tags or in: values than the bounds above.
Result<ListQuery> ParseListQuery(const std::vector<std::pair<std::string, std::string>>& params);

// Splits the value of an `in:` filter the way the API working group (and Glance) specify: commas
// separate, double quotes group a value containing commas. kInvalidArgument for unbalanced quotes.
Result<std::vector<std::string>> SplitInList(std::string_view value);

}  // namespace ingot::catalog
