// ingotd's choice of catalog: [catalog] driver = "sqlite" (the embedded default, <data_dir>/catalog.db)
// or "postgres" (dsn, pool, TLS options), read from the configuration.
#pragma once

#include <memory>

#include "catalog/sql/sql_repository.h"
#include "config/config.h"

namespace ingot::exe {

// Opens the configured catalog and brings its schema up to date. kInvalidArgument for a bad
// [catalog] section; kUnavailable when the PostgreSQL server cannot be reached.
Result<std::unique_ptr<catalog::SqlRepository>> OpenCatalog(const config::Config& config);

}  // namespace ingot::exe
