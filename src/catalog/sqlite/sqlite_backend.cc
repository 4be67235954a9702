#include "catalog/sqlite/sqlite_backend.h"

#include <sqlite3.h>

namespace ingot::catalog::sqlite {
namespace {

class Dialect final : public sql::Dialect {
 public:
  std::string_view Name() const override { return "sqlite"; }
  std::string_view True() const override { return "1"; }
  std::string_view False() const override { return "0"; }
  std::string_view NullSafeEquals() const override { return "IS"; }
  std::string OrderTerm(std::string_view column, bool descending, bool) const override {
    // SQLite already sorts NULL lowest.
    return std::string(column) + (descending ? " DESC" : " ASC");
  }
  std::string_view SkipLocked() const override { return ""; }
  std::string_view MigrationLock() const override { return ""; }
};

class Rows final : public sql::Rows {
 public:
  explicit Rows(Statement st) : st_(std::move(st)) {}
  Result<bool> Next() override { return st_.Step(); }
  bool IsNull(int col) const override { return st_.IsNull(col); }
  int64_t Int(int col) const override { return st_.Int(col); }
  bool Bool(int col) const override { return st_.Int(col) != 0; }
  std::string Text(int col) const override { return st_.Text(col); }

 private:
  Statement st_;
};

class Session final : public sql::Session {
 public:
  explicit Session(Connection& c) : c_(c) {}
  const sql::Dialect& dialect() const override { return SqliteDialect(); }

  Result<std::unique_ptr<sql::Rows>> Query(const std::string& text,
                                           const std::vector<sql::Value>& args) override {
    INGOT_ASSIGN_OR_RETURN(Statement st, c_.Prepare(text));
    INGOT_RETURN_IF_ERROR(st.BindAll(args));
    return std::unique_ptr<sql::Rows>(new Rows(std::move(st)));
  }

  Result<int64_t> Exec(const std::string& text, const std::vector<sql::Value>& args) override {
    INGOT_ASSIGN_OR_RETURN(Statement st, c_.Prepare(text));
    INGOT_RETURN_IF_ERROR(st.BindAll(args));
    Status s = st.Run();
    if (s.code() == Code::kAlreadyExists) {
      // SQLite reports every constraint as one code; only a unique index or primary key means
      // "exists" (backend.h). Read before the statement is reset.
      int rc = sqlite3_extended_errcode(c_.db());
      if (rc != SQLITE_CONSTRAINT_PRIMARYKEY && rc != SQLITE_CONSTRAINT_UNIQUE) {
        return Internal(s.message());
      }
    }
    INGOT_RETURN_IF_ERROR(s);
    return c_.Changes();
  }

  Status ExecScript(const char* text) override { return c_.Exec(text); }

 private:
  Connection& c_;
};

class Backend final : public sql::Backend {
 public:
  explicit Backend(std::shared_ptr<Database> db) : db_(std::move(db)) {}
  const sql::Dialect& dialect() const override { return SqliteDialect(); }
  Status Read(const std::function<Status(sql::Session&)>& body) override {
    return db_->Read([&](Connection& c) {
      Session s(c);
      return body(s);
    });
  }
  Status Write(const std::function<Status(sql::Session&)>& body) override {
    return db_->Write([&](Connection& c) {
      Session s(c);
      return body(s);
    });
  }

 private:
  std::shared_ptr<Database> db_;
};

}  // namespace

const sql::Dialect& SqliteDialect() {
  static const Dialect d;
  return d;
}

std::unique_ptr<sql::Backend> MakeBackend(std::shared_ptr<Database> db) {
  return std::make_unique<Backend>(std::move(db));
}

}  // namespace ingot::catalog::sqlite
