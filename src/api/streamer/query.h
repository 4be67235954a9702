// Image Streamer's (OneView's) list conventions, pure: `start`, `count` (-1 = all), `filter`
// (repeatable, ANDed; each "field op value" clauses joined by AND; ops = == != <> < > <= >=
// matches, `matches` with % wildcards and case-insensitive; values 'quoted', "quoted" or bare; a
// whole filter may be wrapped in double quotes, as the Python SDK sends it) and `sort`
// ("name:asc,created:desc"); and the page document {type, members, total, count, start,
// prevPageUri, nextPageUri, uri}.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace ingot::api::streamer {

struct Clause {
  std::string field;  // "name", or "a.b" for nested fields
  std::string op;     // "=", "!=", "<", ">", "<=", ">=", "matches"
  std::string value;
};
struct SortKey {
  std::string field;
  bool descending = false;
};
struct ListQuery {
  int64_t start = 0;
  int64_t count = -1;
  std::vector<Clause> filters;
  std::vector<SortKey> sort;
};

// From the request's query pairs. kInvalidArgument naming the parameter.
Result<ListQuery> ParseListQuery(const std::vector<std::pair<std::string, std::string>>& query);
Result<std::vector<Clause>> ParseFilter(std::string_view filter);

bool Matches(const boost::json::object& doc, const Clause& clause);

// Filters, sorts and pages `docs`; `collection_uri` ("/rest/plan-scripts") and `type` name the page.
boost::json::object Page(std::vector<boost::json::object> docs, const ListQuery& query,
                         const std::string& collection_uri, const std::string& type);

}  // namespace ingot::api::streamer
