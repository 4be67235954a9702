// sql::Backend over a sqlite::Database (one file, pooled connections, one writer in process): the
// SQLite half of the shared catalog SQL.
#pragma once

#include <memory>

#include "catalog/sql/backend.h"
#include "catalog/sqlite/database.h"

namespace ingot::catalog::sqlite {

const sql::Dialect& SqliteDialect();

// Transactions on `db`'s connections. Write() holds the database's in-process write lock and starts
// with BEGIN IMMEDIATE, so every repository sharing the file shares one writer.
std::unique_ptr<sql::Backend> MakeBackend(std::shared_ptr<Database> db);

}  // namespace ingot::catalog::sqlite
