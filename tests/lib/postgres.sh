# A throw-away PostgreSQL server for tests and benchmarks, on 127.0.0.1 only.
#
#   . tests/lib/postgres.sh
#   DSN="$(pg_start /tmp/x-pg)"   # initdb + start; prints postgresql://ingot:<pw>@127.0.0.1:<port>/ingot
#   pg_restart /tmp/x-pg          # stop and start again on the same port (fault tests)
#   pg_stop /tmp/x-pg             # stops the server it started (PID checked), keeps the directory
#
# Or as a command: `bash tests/lib/postgres.sh start DIR` / `stop DIR` / `restart DIR`.
#
# Exit/return status 77 when the PostgreSQL server binaries are not installed (callers skip), 1 on any
# other failure (the server log is printed to stderr). The cluster is made for speed and nothing else:
# fsync=off and no synchronous commit, since a test database never has to survive a power cut; the
# password is random and checked with SCRAM over TCP, as a production server would.

_pg_bindir() {
  local d
  for d in "${PG_BINDIR:-}" /usr/lib/postgresql/*/bin; do
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 &&
    { dirname "$(command -v initdb)"; return 0; }
  return 1
}

# Runs a command as the cluster's owner: `postgres` when we are root (the server refuses to run as
# root), else ourselves.
_pg_as() {
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid=postgres --regid=postgres --init-groups -- env -u PGPASSWORD "$@"
  else
    "$@"
  fi
}

_pg_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_start() {
  local dir="${1:?pg_start DIR}" bin port pw
  bin="$(_pg_bindir)" || { echo "postgres.sh: PostgreSQL server binaries not found (apt-get install postgresql-15)" >&2; return 77; }
  mkdir -p "$dir" || return 1
  dir="$(cd "$dir" && pwd)"
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "postgres.sh: running as root but there is no 'postgres' user to run the server as" >&2
    return 77
  fi
  if [ "$(id -u)" = 0 ] && [ ! -f "$dir/data/PG_VERSION" ] && ! chown postgres: "$dir" ||
     { [ "$(id -u)" = 0 ] && ! setpriv --reuid=postgres --regid=postgres --init-groups -- test -x "$dir"; }; then
    echo "postgres.sh: the postgres user cannot enter $dir (a parent directory is private?)" >&2
    return 1
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    pw="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    printf '%s\n' "$pw" > "$dir/password"
    chmod 600 "$dir/password"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir" "$dir/password"
    if ! _pg_as "$bin/initdb" -D "$dir/data" -U ingot --pwfile="$dir/password" \
         --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C --no-sync \
         > "$dir/initdb.log" 2>&1; then
      cat "$dir/initdb.log" >&2
      return 1
    fi
    port="$(_pg_free_port)" || return 1
    cat >> "$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 64MB
EOF
  fi
  port="$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/data/postgresql.conf" | tail -1)"
  pw="$(cat "$dir/password")"
  # INGOT_PG_DIR marks the server's environment, so pg_stop can tell our postmaster from a process
  # that reused its PID.
  if ! INGOT_PG_DIR="$dir" _pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
       start > "$dir/pg_ctl.log" 2>&1; then
    cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null
    return 1
  fi
  if ! "$bin/psql" -X -q -h "$dir" -p "$port" -U ingot -d postgres -tAc \
       "SELECT 1 FROM pg_database WHERE datname = 'ingot'" 2>/dev/null | grep -q 1; then
    "$bin/psql" -X -q -h "$dir" -p "$port" -U ingot -d postgres -c "CREATE DATABASE ingot" >&2 || return 1
  fi
  echo "postgresql://ingot:${pw}@127.0.0.1:${port}/ingot"
}

# The postmaster's PID if it is running and is ours.
_pg_pid() {
  local dir="$1" pid
  [ -f "$dir/data/postmaster.pid" ] || return 1
  pid="$(head -1 "$dir/data/postmaster.pid")"
  [ -n "$pid" ] && [ -r "/proc/$pid/environ" ] || return 1
  tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "INGOT_PG_DIR=$dir" || return 1
  echo "$pid"
}

pg_stop() {
  local dir="${1:?pg_stop DIR}" bin pid i
  [ -d "$dir" ] || return 0
  dir="$(cd "$dir" && pwd)"
  pid="$(_pg_pid "$dir")" || return 0
  bin="$(_pg_bindir)" || return 0
  _pg_as "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop > /dev/null 2>&1
  for i in $(seq 1 100); do
    # A zombie (reaped late by PID 1) counts as gone.
    if [ ! -e "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  # Still there and still ours: force it.
  _pg_pid "$dir" >/dev/null && kill -9 "$pid" 2>/dev/null
  return 0
}

pg_restart() {
  local dir="${1:?pg_restart DIR}"
  pg_stop "$dir" && pg_start "$dir" > /dev/null
}

# As a command.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    start) pg_start "${2:?DIR}"; exit $? ;;
    stop) pg_stop "${2:?DIR}"; exit $? ;;
    restart) pg_restart "${2:?DIR}"; exit $? ;;
    *) echo "usage: $0 start|stop|restart DIR" >&2; exit 2 ;;
  esac
fi
