// A list request over the catalog: Glance's filters, sort keys and pagination, parsed from query
// parameters into typed form so repositories never see raw user strings in SQL.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "catalog/image.h"

namespace ingot::catalog {

// Who is asking; visibility rules depend on it.
struct Viewer {
  std::optional<std::string> project;  // nullopt: anonymous
  bool is_admin = false;
};

// TODO(catalog): ListQuery, Filter, SortKey and ParseListQuery(query params) -> Result<ListQuery>.
struct ListQuery {
  int limit = 25;
  std::optional<std::string> marker;
};

}  // namespace ingot::catalog
