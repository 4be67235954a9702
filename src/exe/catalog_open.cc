#include "exe/catalog_open.h"

#include <algorithm>

#include "catalog/postgres/pg_repository.h"
#include "catalog/sqlite/sqlite_repository.h"
#include "common/log.h"

namespace ingot::exe {

Result<std::unique_ptr<catalog::SqlRepository>> OpenCatalog(const config::Config& config) {
  const config::CatalogConfig& c = config.catalog;
  if (c.driver == "sqlite") {
    // One pooled connection per worker thread: a request never pays for opening a connection
    // (schema load, statement preparation), which under load showed up as allocator churn and a
    // long latency tail.
    int pool = c.pool_size > 0 ? c.pool_size : std::max(8, config.worker_threads);
    INGOT_ASSIGN_OR_RETURN(auto repo, catalog::SqliteImageRepository::Open(
                                          config.data_dir + "/catalog.db",
                                          catalog::SqliteImageRepository::Options{pool}));
    return std::unique_ptr<catalog::SqlRepository>(std::move(repo));
  }
  if (c.driver == "postgres") {
    if (c.dsn.empty()) {
      return InvalidArgument(
          "config catalog.dsn: driver \"postgres\" needs a dsn (postgresql://user@host/db)");
    }
    catalog::postgres::PgOptions options{.dsn = c.dsn, .pool_size = c.pool_size > 0 ? c.pool_size : 16};
    options.statement_timeout = std::chrono::milliseconds(c.statement_timeout_ms);
    options.params["connect_timeout"] = std::to_string(c.connect_timeout_s);
    if (!c.sslmode.empty()) options.params["sslmode"] = c.sslmode;
    if (!c.sslrootcert.empty()) options.params["sslrootcert"] = c.sslrootcert;
    if (!c.sslcert.empty()) options.params["sslcert"] = c.sslcert;
    if (!c.sslkey.empty()) options.params["sslkey"] = c.sslkey;
    if (!c.password_file.empty()) options.params["passfile"] = c.password_file;
    INGOT_ASSIGN_OR_RETURN(auto repo, catalog::PostgresImageRepository::Open(options));
    log::Info("catalog", {{"driver", "postgres"}, {"pool_size", options.pool_size}});
    return std::unique_ptr<catalog::SqlRepository>(std::move(repo));
  }
  return InvalidArgument("config catalog.driver: expected \"sqlite\" or \"postgres\", not \"" +
                         c.driver + "\"");
}

}  // namespace ingot::exe
