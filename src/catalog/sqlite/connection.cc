#include "catalog/sqlite/connection.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <sys/stat.h>
#include <sys/statvfs.h>

namespace ingot::catalog::sqlite {
namespace {

constexpr size_t kMaxCachedStatements = 256;
constexpr int kBusyTimeoutMs = 10000;

// After the storage under a catalog failed (full, read-only, I/O errors), every transaction probes
// for a while whether its file system can be written at all, before SQLite touches the mapped WAL
// index: an ext4 file system that went read-only after an error ("emergency_ro") shows in no
// flag a stat call can read, and answers a write to a mapped page with SIGBUS.
constexpr int64_t kSuspectMicros = 60'000'000;
std::atomic<int64_t> suspect_until{0};

int64_t MonotonicMicros() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

// Notes a failure of the storage under a database (not a busy lock) and passes its status on.
Status Noted(int rc, Status s) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      suspect_until.store(MonotonicMicros() + kSuspectMicros);
      break;
    default:
      break;
  }
  return s;
}

}  // namespace

Status SqliteStatus(int rc, sqlite3* db, std::string_view what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  std::string message =
      std::string(what) + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(std::move(message));
    case SQLITE_CONSTRAINT:
      return AlreadyExists(std::move(message));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_SCHEMA:
      return Corruption(std::move(message));
    case SQLITE_INTERRUPT:
      return Cancelled(std::move(message));
    // The storage under the file failing: full, read-only, not permitted (an immutable file),
    // failing I/O, a file that cannot be opened. Nothing is wrong with the request or the data,
    // and the storage may come back: 503 with Retry-After, never a crash.
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      return Unavailable(std::move(message));
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
    case SQLITE_ERROR:
      return Internal(std::move(message));
    default:  // NOMEM, PROTOCOL, ...
      return IoError(std::move(message));
  }
}

Statement::~Statement() {
  if (stmt_ != nullptr && owned_) {
    sqlite3_finalize(stmt_);
  } else if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Status Statement::Bind(int index, const Value& value) {
  int rc = SQLITE_OK;
  if (std::holds_alternative<std::nullptr_t>(value)) {
    rc = sqlite3_bind_null(stmt_, index);
  } else if (const int64_t* i = std::get_if<int64_t>(&value)) {
    rc = sqlite3_bind_int64(stmt_, index, *i);
  } else {
    const std::string& s = std::get<std::string>(value);
    rc = sqlite3_bind_text64(stmt_, index, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  }
  return SqliteStatus(rc, conn_->db(), "bind");
}

Status Statement::BindAll(const std::vector<Value>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    INGOT_RETURN_IF_ERROR(Bind(static_cast<int>(i + 1), values[i]));
  }
  return Status::Ok();
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Noted(rc, SqliteStatus(rc, conn_->db(), "step"));
}

Status Statement::Run() {
  while (true) {
    INGOT_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

Status Statement::Reset() {
  // sqlite3_reset repeats the last step's error, which Run() already reported.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  return Status::Ok();
}

std::string Statement::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
}

std::optional<std::string> Statement::OptText(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Text(col);
}

std::optional<int64_t> Statement::OptInt(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Int(col);
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(rc, db, "open " + path);
    sqlite3_close_v2(db);
    return s;
  }
  std::unique_ptr<Connection> conn(new Connection(db, path + "-shm", path + "-probe"));
  // Before the pragmas: setting up WAL mode reads the index and may write it.
  INGOT_RETURN_IF_ERROR(conn->CheckIndexWritable());
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // WAL lets readers run beside the one writer. synchronous=FULL makes every commit fsync the WAL:
  // with NORMAL a commit acknowledged to a client could vanish in a power cut, and an acknowledged
  // metadata change (an image going active) must survive one.
  // Switching a new file to WAL needs it alone for a moment; SQLite answers "locked" at once,
  // without its busy handler, when another opener is doing the same. Waited out here.
  for (int waited_ms = 0;; waited_ms += 10) {
    Status wal = conn->Exec("PRAGMA journal_mode=WAL");
    const bool busy = !wal.ok() && (sqlite3_extended_errcode(db) & 0xff) == SQLITE_BUSY;
    if (!busy || waited_ms >= kBusyTimeoutMs) {
      INGOT_RETURN_IF_ERROR(wal);
      break;
    }
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    nanosleep(&ten_ms, nullptr);
  }
  INGOT_RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous=FULL"));
  INGOT_RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys=ON"));
  // No memory-mapped reads of the database file: a mapped page that vanishes under the process (a
  // truncated or failing file) is a SIGBUS, where read() is an error code.
  INGOT_RETURN_IF_ERROR(conn->Exec("PRAGMA mmap_size=0"));
  return conn;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  // The last connection to close checkpoints and writes the WAL index; with the index immutable
  // that write would be a SIGBUS (see CheckIndexWritable). Leaking this one handle while the fault
  // lasts is the lesser harm.
  if (!CheckIndexWritable().ok()) return;
  sqlite3_close_v2(db_);
}

Status Connection::CheckIndexWritable() const {
  // SQLite keeps the WAL index (<db>-shm) memory-mapped and writes it on every transaction. When
  // that file is made immutable (chattr +i) under a running process, the kernel refuses the
  // write fault with SIGBUS instead of an error code, killing the daemon. So look first: statx
  // reports the attribute without opening the file (about a microsecond). A flag set between this
  // check and the write can still fault; the window is one transaction.
  struct statx st {};
  if (statx(AT_FDCWD, shm_path_.c_str(), AT_STATX_DONT_SYNC, 0, &st) != 0) {
    return Status::Ok();  // no index yet (SQLite creates it) or not visible: nothing mapped
  }
  if ((st.stx_attributes_mask & STATX_ATTR_IMMUTABLE) != 0 &&
      (st.stx_attributes & STATX_ATTR_IMMUTABLE) != 0) {
    return Unavailable("catalog " + shm_path_ +
                       " is immutable (chattr +i): the database cannot be used until it is not");
  }
  // The same fault on a file system that went read-only (ext4 errors=remount-ro after an I/O
  // error): the kernel answers the mapped write with SIGBUS.
  struct statvfs fs {};
  if (statvfs(shm_path_.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0) {
    return Unavailable("catalog " + shm_path_ +
                       " is on a read-only file system: the database cannot be used until it is "
                       "writable again");
  }
  if (suspect_until.load(std::memory_order_relaxed) > MonotonicMicros()) {
    // A file of our own, never one of SQLite's: closing any descriptor of a database file would
    // drop the POSIX locks SQLite holds on it.
    int fd = open(probe_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      int err = errno;
      if (err == EROFS || err == EIO || err == EPERM || err == EACCES) {
        return Unavailable("catalog " + probe_path_ + " cannot be opened for writing (" +
                           strerror(err) + "): its file system is failing or read-only");
      }
    } else {
      close(fd);
    }
  }
  return Status::Ok();
}

Result<Statement> Connection::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Statement(this, it->second, false);
  // Past the cap, statements of unusual shapes are prepared for one use only; evicting cached ones
  // could pull a statement from under a caller still stepping it.
  bool cache = cache_.size() < kMaxCachedStatements;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              cache ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(rc, db_, "prepare");
  if (cache) cache_.emplace(sql, stmt);
  return Statement(this, stmt, !cache);
}

Status Connection::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  return Noted(rc, SqliteStatus(rc, db_, "exec"));
}

Result<Transaction> Transaction::Begin(Connection& conn, Kind kind) {
  INGOT_RETURN_IF_ERROR(conn.CheckIndexWritable());
  INGOT_ASSIGN_OR_RETURN(Statement begin,
                         conn.Prepare(kind == Kind::kWrite ? "BEGIN IMMEDIATE" : "BEGIN"));
  INGOT_RETURN_IF_ERROR(begin.Run());
  return Transaction(&conn);
}

Transaction::~Transaction() {
  if (conn_ == nullptr) return;
  // Rolling back can fail only if the transaction is already gone (SQLite rolled it back itself).
  if (!sqlite3_get_autocommit(conn_->db())) (void)conn_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  INGOT_ASSIGN_OR_RETURN(Statement commit, conn_->Prepare("COMMIT"));
  Status s = commit.Run();
  if (s.ok()) conn_ = nullptr;
  return s;
}

}  // namespace ingot::catalog::sqlite
