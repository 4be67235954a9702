// The SQL of a catalog list, built once for every engine: Glance's visibility rules, the filters of a
// ListQuery, keyset pagination after a marker and the sort order. Columns come from the enums of
// list_query.h; every user value becomes a bound parameter. Engine differences (boolean literals,
// NULL-safe equality, NULL ordering) come from the Dialect.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "catalog/image.h"
#include "catalog/list_query.h"
#include "catalog/sql/backend.h"

namespace ingot::catalog::sql {

// SQL text with `?` parameters and the values bound to them, in order.
struct Sql {
  std::string text;
  std::vector<Value> args;
};

// The image columns every image query selects, in the order ReadImage reads them.
extern const char* const kImageColumns;

// "?,?,?" for n parameters.
std::string Placeholders(size_t n);

// The WHERE clause terms (each starting " AND ") that restrict a list to what `viewer` may list.
// Glance's rules (glance/db/sqlalchemy/api.py, _select_images_query and _image_get_all): admins list
// everything; others list public and community images, their own, and shared images they are a
// member of in the asked membership status. Then, without a visibility filter, community images
// appear only to their owner; with one, only that visibility (or all of them for `all`).
void AppendVisibility(Sql& q, const Dialect& d, const ListQuery& query, const Viewer& viewer);
// The query's filters: hidden, protected, fields, ranges, times, tags, properties.
void AppendFilters(Sql& q, const Dialect& d, const ListQuery& query);
// Keyset pagination: rows strictly after `marker` in `sort`, NULL sorting lowest. The sort always
// ends with id, so the order is total. The marker's leading key is also bound on its own, so an index
// in the list's order (schema step 3) starts its walk at the marker.
void AppendAfterMarker(Sql& q, const Dialect& d, const std::vector<SortTerm>& sort,
                       const Image& marker);
void AppendOrder(Sql& q, const Dialect& d, const std::vector<SortTerm>& sort);

}  // namespace ingot::catalog::sql
