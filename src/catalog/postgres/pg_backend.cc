#include "catalog/postgres/pg_backend.h"

#include <libpq-fe.h>
#include <poll.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ingot::catalog::postgres {
namespace {

// Statements prepared per connection, keyed by their SQL text. Bounded: list queries of unusual
// shapes run unprepared past it rather than growing every connection's memory on the server.
constexpr size_t kMaxPrepared = 256;

class Dialect final : public sql::Dialect {
 public:
  std::string_view Name() const override { return "postgres"; }
  std::string_view True() const override { return "TRUE"; }
  std::string_view False() const override { return "FALSE"; }
  std::string_view NullSafeEquals() const override { return "IS NOT DISTINCT FROM"; }
  std::string OrderTerm(std::string_view column, bool descending, bool nullable) const override {
    std::string out(column);
    out += descending ? " DESC" : " ASC";
    // PostgreSQL sorts NULL highest by default; the catalog's order (and SQLite's) puts it lowest.
    // Said only where NULL can occur, so that the NOT NULL keys keep matching their indexes.
    if (nullable) out += descending ? " NULLS LAST" : " NULLS FIRST";
    return out;
  }
  std::string_view SkipLocked() const override { return " FOR UPDATE SKIP LOCKED"; }
  // A transaction-scoped advisory lock (released at COMMIT or ROLLBACK, also when the connection
  // dies): one migrator at a time across every node. The key is "ingotcat" as a 64-bit integer.
  std::string_view MigrationLock() const override {
    return "SELECT pg_advisory_xact_lock(7596279823549276532)";
  }
};

// The one place a PostgreSQL failure becomes a Status. `broken` is set when the connection cannot
// be used again.
Status PgStatus(PGconn* pg, const PGresult* res, std::string_view what, bool& broken) {
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = std::string(what) + ": ";
  const char* text = res != nullptr ? PQresultErrorMessage(res) : nullptr;
  message += (text != nullptr && *text != '\0') ? text : PQerrorMessage(pg);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (PQstatus(pg) != CONNECTION_OK || state == nullptr) {
    broken = true;
    return Unavailable(std::move(message));
  }
  std::string_view s(state);
  if (s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03") {
    // Connection exceptions; the server shutting down or starting up.
    broken = true;
    return Unavailable(std::move(message));
  }
  if (s == "23505") return AlreadyExists(std::move(message));
  // Out of disk or memory (53...), serialization failures and deadlocks (40...), a lock or
  // statement timeout (55P03, 57014), a read-only server (25006), an I/O error (58...): the
  // request may succeed later.
  if (s.starts_with("53") || s.starts_with("40") || s == "55P03" || s == "57014" ||
      s == "25006" || s.starts_with("58")) {
    return Unavailable(std::move(message));
  }
  if (s.starts_with("22")) return InvalidArgument(std::move(message));
  if (s == "XX001" || s == "XX002") return Corruption(std::move(message));
  return Internal(std::move(message));
}

// `?` -> $1, $2, ... outside quoted text.
std::string Number(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  int n = 0;
  char quote = 0;
  for (char ch : text) {
    if (quote != 0) {
      if (ch == quote) quote = 0;
      out += ch;
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
      out += ch;
    } else if (ch == '?') {
      out += '$';
      out += std::to_string(++n);
    } else {
      out += ch;
    }
  }
  return out;
}

struct Conn {
  explicit Conn(PGconn* p, uint64_t g) : pg(p), generation(g) {}
  ~Conn() { PQfinish(pg); }
  PGconn* pg;
  uint64_t generation;
  bool broken = false;
  // A read transaction's COMMIT was sent but its answer not read yet (Backend::Read): read it
  // before the next use.
  bool commit_pending = false;
  std::unordered_map<std::string, std::string> prepared;  // SQL text -> statement name
};

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

ResultPtr Take(PGconn* pg) { return ResultPtr(PQgetResult(pg), &PQclear); }

class Rows final : public sql::Rows {
 public:
  explicit Rows(ResultPtr res) : res_(std::move(res)), n_(PQntuples(res_.get())) {}
  Result<bool> Next() override { return ++row_ < n_; }
  bool IsNull(int col) const override { return PQgetisnull(res_.get(), row_, col) != 0; }
  int64_t Int(int col) const override {
    const char* v = PQgetvalue(res_.get(), row_, col);
    int64_t out = 0;
    std::from_chars(v, v + PQgetlength(res_.get(), row_, col), out);
    return out;
  }
  bool Bool(int col) const override { return PQgetvalue(res_.get(), row_, col)[0] == 't'; }
  std::string Text(int col) const override {
    return std::string(PQgetvalue(res_.get(), row_, col), PQgetlength(res_.get(), row_, col));
  }

 private:
  ResultPtr res_;
  int n_;
  int row_ = -1;
};

// A transaction on one connection. Its BEGIN is not sent on its own: it travels with the first
// statement in one pipeline (libpq pipeline mode), saving a round trip per transaction.
class Session final : public sql::Session {
 public:
  Session(Conn& c, const char* begin) : c_(c), pending_begin_(begin) {}
  const sql::Dialect& dialect() const override { return PgDialect(); }
  bool began() const { return began_; }

  Result<std::unique_ptr<sql::Rows>> Query(const std::string& text,
                                           const std::vector<sql::Value>& args) override {
    INGOT_ASSIGN_OR_RETURN(auto res, Run({{&text, &args, PGRES_TUPLES_OK}}));
    return std::unique_ptr<sql::Rows>(new Rows(std::move(res[0])));
  }

  Result<std::vector<std::unique_ptr<sql::Rows>>> QueryBatch(
      const std::vector<std::pair<std::string, std::vector<sql::Value>>>& queries) override {
    std::vector<Item> items;
    for (const auto& [text, args] : queries) items.push_back({&text, &args, PGRES_TUPLES_OK});
    INGOT_ASSIGN_OR_RETURN(auto res, Run(items));
    std::vector<std::unique_ptr<sql::Rows>> out;
    for (auto& r : res) out.push_back(std::unique_ptr<sql::Rows>(new Rows(std::move(r))));
    return out;
  }

  Result<int64_t> Exec(const std::string& text, const std::vector<sql::Value>& args) override {
    INGOT_ASSIGN_OR_RETURN(auto res, Run({{&text, &args, PGRES_COMMAND_OK}}));
    const char* n = PQcmdTuples(res[0].get());
    int64_t changed = 0;
    std::from_chars(n, n + strlen(n), changed);
    return changed;
  }

  Status ExecScript(const char* text) override {
    INGOT_RETURN_IF_ERROR(SendBegin());
    return Simple(c_, text);
  }

  // A statement without parameters, by the simple protocol (COMMIT, schema scripts).
  static Status Simple(Conn& c, const char* text) {
    ResultPtr res(PQexec(c.pg, text), &PQclear);
    ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Status::Ok();
    return PgStatus(c.pg, res.get(), "postgres", c.broken);
  }

 private:
  Status SendBegin() {
    if (pending_begin_ == nullptr) return Status::Ok();
    const char* begin = pending_begin_;
    pending_begin_ = nullptr;
    began_ = true;
    return Simple(c_, begin);
  }

  struct Item {
    const std::string* text;
    const std::vector<sql::Value>* args;
    ExecStatusType want;
  };
  // Parameters as libpq takes them: every value as text with its type left to the server, which
  // infers it from where the parameter stands (a BIGINT column, a BOOLEAN one).
  struct Params {
    std::vector<std::string> ints;
    std::vector<const char*> values;
  };
  static Result<Params> TextParams(const std::vector<sql::Value>& args) {
    Params p;
    p.ints.reserve(args.size());  // never reallocated below: pointers into it stay valid
    p.values.assign(args.size(), nullptr);
    for (size_t i = 0; i < args.size(); ++i) {
      if (const int64_t* n = std::get_if<int64_t>(&args[i])) {
        p.ints.push_back(std::to_string(*n));
        p.values[i] = p.ints.back().c_str();
      } else if (const std::string* s = std::get_if<std::string>(&args[i])) {
        // libpq passes text parameters as C strings; PostgreSQL text cannot hold NUL anyway.
        if (s->find('\0') != std::string::npos) {
          return InvalidArgument("a value contains a NUL character");
        }
        p.values[i] = s->c_str();
      }
    }
    return p;
  }

  // Sends [BEGIN] and every item ([Parse] Bind/Execute each) in one pipeline with one Sync: one
  // round trip. Returns each item's result, in order.
  Result<std::vector<ResultPtr>> Run(const std::vector<Item>& items) {
    std::vector<Params> params;
    for (const Item& item : items) {
      INGOT_ASSIGN_OR_RETURN(Params p, TextParams(*item.args));
      params.push_back(std::move(p));
    }
    if (PQenterPipelineMode(c_.pg) == 0) {
      return PgStatus(c_.pg, nullptr, "postgres pipeline", c_.broken);
    }
    // What was sent, in order: -1 BEGIN, 2*i a Parse of item i, 2*i+1 item i itself.
    std::vector<int> sent;
    std::vector<std::string> names(items.size());
    std::vector<std::string> new_names(items.size());
    bool ok = true;
    if (pending_begin_ != nullptr) {
      ok = PQsendQueryParams(c_.pg, pending_begin_, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
      sent.push_back(-1);
      pending_begin_ = nullptr;
      began_ = true;
    }
    size_t next_name = c_.prepared.size();
    for (size_t i = 0; i < items.size() && ok; ++i) {
      const std::string& text = *items[i].text;
      const int n = static_cast<int>(items[i].args->size());
      auto it = c_.prepared.find(text);
      std::string numbered;
      if (it != c_.prepared.end()) {
        names[i] = it->second;
      } else {
        numbered = Number(text);
        if (next_name < kMaxPrepared) {
          names[i] = new_names[i] = "s" + std::to_string(next_name++);
          ok = ok && PQsendPrepare(c_.pg, names[i].c_str(), numbered.c_str(), n, nullptr) == 1;
          sent.push_back(static_cast<int>(2 * i));
        }
      }
      if (!names[i].empty()) {
        ok = ok && PQsendQueryPrepared(c_.pg, names[i].c_str(), n, params[i].values.data(),
                                       nullptr, nullptr, 0) == 1;
      } else {
        ok = ok && PQsendQueryParams(c_.pg, numbered.c_str(), n, nullptr, params[i].values.data(),
                                     nullptr, nullptr, 0) == 1;
      }
      sent.push_back(static_cast<int>(2 * i + 1));
    }
    ok = ok && PQpipelineSync(c_.pg) == 1;
    if (!ok) {
      c_.broken = true;
      return PgStatus(c_.pg, nullptr, "postgres send", c_.broken);
    }
    // Each query's results end with a NULL; the Sync's own result ends the pipeline.
    Status failed;
    std::vector<ResultPtr> out;
    std::vector<bool> parsed(items.size(), false);
    for (int what : sent) {
      ResultPtr r = Take(c_.pg);
      if (!r) {
        c_.broken = true;
        return PgStatus(c_.pg, nullptr, "postgres", c_.broken);
      }
      ExecStatusType st = PQresultStatus(r.get());
      bool good = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
      if (good && what >= 0 && what % 2 == 0) parsed[what / 2] = true;
      if (!good && failed.ok() && st != PGRES_PIPELINE_ABORTED) {
        failed = PgStatus(c_.pg, r.get(), "postgres", c_.broken);
      }
      if (good && what >= 0 && what % 2 == 1) {
        const Item& item = items[what / 2];
        // A statement that returns rows may be run for its effect (want COMMAND_OK).
        if (st != item.want && !(item.want == PGRES_COMMAND_OK && st == PGRES_TUPLES_OK) &&
            failed.ok()) {
          failed = PgStatus(c_.pg, r.get(), "postgres", c_.broken);
        }
        out.push_back(std::move(r));
      }
      while (ResultPtr extra = Take(c_.pg)) {  // up to the NULL that ends this query's results
      }
    }
    ResultPtr sync = Take(c_.pg);
    if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC ||
        PQexitPipelineMode(c_.pg) != 1) {
      c_.broken = true;
      if (failed.ok()) failed = PgStatus(c_.pg, sync.get(), "postgres pipeline", c_.broken);
      return failed;
    }
    for (size_t i = 0; i < items.size(); ++i) {
      if (parsed[i]) c_.prepared.emplace(*items[i].text, new_names[i]);
    }
    if (!failed.ok()) return failed;
    if (out.size() != items.size()) return Internal("postgres: a result is missing");
    return out;
  }

  Conn& c_;
  const char* pending_begin_;
  bool began_ = false;
};

class Backend final : public sql::Backend {
 public:
  explicit Backend(PgOptions options) : options_(std::move(options)) {}
  ~Backend() override {
    std::lock_guard lock(mu_);
    idle_.clear();
  }

  const sql::Dialect& dialect() const override { return PgDialect(); }

  Status Read(const std::function<Status(sql::Session&)>& body) override {
    // REPEATABLE READ: every statement of the body sees one snapshot (an image and its tags).
    return Transact("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", /*read_only=*/true, body);
  }
  Status Write(const std::function<Status(sql::Session&)>& body) override {
    // READ COMMITTED: the catalog's writes are optimistic (UPDATE ... WHERE version = ?) or claim
    // rows with SKIP LOCKED; both are what READ COMMITTED row locking is made for.
    return Transact("BEGIN", /*read_only=*/false, body);
  }

  Result<std::unique_ptr<Conn>> Connect() {
    std::vector<const char*> keys = {"dbname"};
    std::vector<const char*> values = {options_.dsn.c_str()};
    bool has_timeout = false, has_name = false;
    for (const auto& [k, v] : options_.params) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
      has_timeout |= k == "connect_timeout";
      has_name |= k == "application_name";
    }
    // A server that does not answer must not hold a request for long.
    if (!has_timeout && options_.dsn.find("connect_timeout") == std::string::npos) {
      keys.push_back("connect_timeout");
      values.push_back("5");
    }
    if (!has_name) {
      keys.push_back("fallback_application_name");
      values.push_back("ingotd");
    }
    keys.push_back("client_encoding");
    values.push_back("UTF8");
    keys.push_back(nullptr);
    values.push_back(nullptr);
    PGconn* pg = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
    if (pg == nullptr) return Unavailable("postgres: out of memory opening a connection");
    // Server notices ("relation already exists, skipping") are not errors; libpq would print them
    // on stderr.
    PQsetNoticeProcessor(pg, [](void*, const char*) {}, nullptr);
    auto conn = std::make_unique<Conn>(pg, ++generations_);
    if (PQstatus(pg) != CONNECTION_OK) {
      std::string message = PQerrorMessage(pg);
      while (!message.empty() && message.back() == '\n') message.pop_back();
      // A DSN libpq cannot parse never connects: say so instead of "unavailable".
      if (message.find("invalid") != std::string::npos && message.find("connection") == 0) {
        return InvalidArgument("postgres dsn: " + message);
      }
      return Unavailable("postgres connect: " + message);
    }
    // Generic plans for every prepared statement: the catalog's statements are few, their tables
    // uniform, and a list's generic plan (an index walked in order, LIMIT known) is the plan a
    // custom one would be; without this PostgreSQL plans a statement anew on every execution
    // whenever a bound value (a keyset bound after a marker) makes the generic plan's estimate
    // look worse, which costs more than the query itself (README.md, "Round trips").
    std::string setup = "SET plan_cache_mode = force_generic_plan; SET statement_timeout = " +
                        std::to_string(options_.statement_timeout.count());
    INGOT_RETURN_IF_ERROR(Session::Simple(*conn, setup.c_str()));
    return conn;
  }

 private:
  Status Transact(const char* begin, bool read_only,
                  const std::function<Status(sql::Session&)>& body) {
    INGOT_ASSIGN_OR_RETURN(std::unique_ptr<Conn> conn, Acquire());
    Session s(*conn, begin);
    Status result = body(s);
    if (s.began() && !conn->broken) {
      if (read_only) {
        // Nothing to make durable, and a failed body's reads need no undoing beyond ending the
        // transaction: send COMMIT and read its answer when the connection is next used, so the
        // request does not wait for one more round trip.
        if (PQsendQuery(conn->pg, "COMMIT") == 1) {
          conn->commit_pending = true;
        } else {
          conn->broken = true;
        }
      } else if (result.ok()) {
        result = Session::Simple(*conn, "COMMIT");
      } else {
        Status rolled = Session::Simple(*conn, "ROLLBACK");
        (void)rolled;  // a failed rollback marks the connection broken; the body's error stands
      }
    }
    Release(std::move(conn));
    return result;
  }

  // Whether a connection taken from the pool can be used: its pending COMMIT answered, and the
  // server not closing it (it sends nothing unasked on an idle connection except when it is going
  // away: a restart, an idle timeout, pg_terminate_backend).
  static bool Ready(Conn& c) {
    if (c.commit_pending) {
      c.commit_pending = false;
      bool ok = true;
      while (ResultPtr r = Take(c.pg)) ok = ok && PQresultStatus(r.get()) == PGRES_COMMAND_OK;
      if (!ok) return false;
    }
    if (c.broken || PQstatus(c.pg) != CONNECTION_OK ||
        PQtransactionStatus(c.pg) != PQTRANS_IDLE) {
      return false;
    }
    pollfd p{.fd = PQsocket(c.pg), .events = POLLIN, .revents = 0};
    if (p.fd < 0) return false;
    if (poll(&p, 1, 0) == 0) return true;
    if (PQconsumeInput(c.pg) == 0) return false;
    return PQstatus(c.pg) == CONNECTION_OK && PQtransactionStatus(c.pg) == PQTRANS_IDLE;
  }

  Result<std::unique_ptr<Conn>> Acquire() {
    auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
    while (true) {
      std::unique_ptr<Conn> c;
      {
        std::unique_lock lock(mu_);
        while (idle_.empty() && open_ >= options_.pool_size) {
          if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
              open_ >= options_.pool_size) {
            return Unavailable("postgres: all " + std::to_string(options_.pool_size) +
                               " catalog connections stayed busy for " +
                               std::to_string(options_.acquire_timeout.count()) + " ms");
          }
        }
        if (idle_.empty()) {
          ++open_;  // a new connection, opened outside the lock
        } else {
          c = std::move(idle_.back());
          idle_.pop_back();
          if (c->generation <= retired_through_) {
            --open_;
            continue;  // retired: closed as `c` goes out of scope
          }
        }
      }
      if (c) {
        if (Ready(*c)) return c;
        {
          std::lock_guard lock(mu_);
          --open_;
        }
        cv_.notify_one();
        continue;
      }
      auto fresh = Connect();
      if (!fresh.ok()) {
        {
          std::lock_guard lock(mu_);
          --open_;
        }
        cv_.notify_one();
        return fresh.status();
      }
      return std::move(*fresh);
    }
  }

  void Release(std::unique_ptr<Conn> c) {
    std::unique_ptr<Conn> drop;
    {
      std::lock_guard lock(mu_);
      if (c->broken) {
        // The server went away under this connection, so it went away under every connection
        // opened before it too: retire them all, instead of failing one request per stale
        // connection.
        retired_through_ = std::max(retired_through_, c->generation);
        --open_;
        drop = std::move(c);
      } else if (c->generation <= retired_through_ ||
                 (!c->commit_pending && PQtransactionStatus(c->pg) != PQTRANS_IDLE)) {
        --open_;
        drop = std::move(c);
      } else {
        idle_.push_back(std::move(c));
      }
    }
    cv_.notify_one();
  }

  const PgOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  int open_ = 0;  // idle + in use
  std::atomic<uint64_t> generations_{0};
  uint64_t retired_through_ = 0;  // connections of this generation or older are not reused
};

}  // namespace

const sql::Dialect& PgDialect() {
  static const Dialect d;
  return d;
}

Result<std::unique_ptr<sql::Backend>> OpenBackend(const PgOptions& options) {
  if (options.dsn.empty()) return InvalidArgument("postgres: the catalog dsn is empty");
  if (options.pool_size < 1) return InvalidArgument("postgres: pool_size must be at least 1");
  auto backend = std::make_unique<Backend>(options);
  INGOT_ASSIGN_OR_RETURN(auto conn, backend->Connect());
  conn.reset();
  return std::unique_ptr<sql::Backend>(std::move(backend));
}

}  // namespace ingot::catalog::postgres
