# A real Keystone (Debian's `keystone` package) on 127.0.0.1 for Ingot's tests, set up from nothing,
# and small helpers that talk to its v3 API with curl (one Python start-up per openstack CLI call
# would cost ~1.5 s; these calls cost milliseconds).
#
#   . tests/integration/keystone_lib.sh
#   keystone_up DIR            # db_sync, fernet/credential keys, bootstrap, serve; sets KS_URL, KS_PID
#   ks_admin_token             # sets KS_ADMIN (admin's token, project admin)
#   ks_project NAME            # prints the new project's id
#   ks_user NAME PASSWORD      # prints the new user's id
#   ks_grant ROLE PROJECT_ID USER_ID
#   ks_token USER PASSWORD [PROJECT]   # prints a token (project-scoped when PROJECT is given)
#   keystone_down
#
# Keystone's database is a throw-away PostgreSQL 15 cluster (socket only, fsync off): with SQLite,
# Keystone's own connection pool meets "database is locked" even in one process (seen here while
# creating endpoints, as testbed-facts.md saw it with several workers). Its server is
# keystone-wsgi-public's wsgiref server made threaded (a few lines of Python below): the packaged
# one answers one request at a time, and tempest's parallel workers plus ingotd's validations
# queued behind each other into timeouts.

KS_URL=""
KS_PID=""
KS_DIR=""
KS_ADMIN=""
KS_ADMIN_PASSWORD="${KS_ADMIN_PASSWORD:-ingot-admin-pw}"
KS_PG=""
KS_PGBIN=/usr/lib/postgresql/15/bin

# ks_pg_up: PostgreSQL for Keystone in a directory of its own (postgres must own it: initdb refuses
# root). Sets KS_PG_URL (SQLAlchemy's URL).
ks_pg_up() {
  [ -x "$KS_PGBIN/initdb" ] || { echo "SKIP  postgresql-15 not installed" >&2; return 77; }
  KS_PG="$(mktemp -d /tmp/ingot-ks-pg.XXXXXX)"
  chown postgres: "$KS_PG"
  local port; port="$(ks_free_port)"
  echo "$port" > "$KS_PG/port"
  runuser -u postgres -- "$KS_PGBIN/initdb" -D "$KS_PG/data" --auth=trust --no-sync -U postgres \
    > "$KS_PG/initdb.log" 2>&1 || { echo "initdb failed" >&2; return 1; }
  runuser -u postgres -- "$KS_PGBIN/pg_ctl" -w -D "$KS_PG/data" -l "$KS_PG/pg.log" \
    -o "-c listen_addresses='' -c unix_socket_directories='$KS_PG' -c port=$port -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start > /dev/null 2>&1 || { echo "postgres did not start" >&2; tail -5 "$KS_PG/pg.log" >&2; return 1; }
  runuser -u postgres -- "$KS_PGBIN/createdb" -h "$KS_PG" -p "$port" keystone || return 1
  KS_PG_URL="postgresql+psycopg2://postgres@/keystone?host=$KS_PG&port=$port"
}

ks_pg_down() {
  [ -n "$KS_PG" ] && [ -d "$KS_PG/data" ] || return 0
  runuser -u postgres -- "$KS_PGBIN/pg_ctl" -D "$KS_PG/data" -m immediate stop > /dev/null 2>&1
  rm -rf "$KS_PG"
  KS_PG=""
}

ks_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

keystone_up() {
  KS_DIR="$1"
  command -v keystone-manage > /dev/null || { echo "SKIP  keystone not installed"; return 77; }
  mkdir -p "$KS_DIR"/{fernet,credential,log}
  local db="${KS_DB_URL:-}"
  if [ -z "$db" ]; then ks_pg_up || return $?; db="$KS_PG_URL"; fi
  local port; port="$(ks_free_port)"
  KS_URL="http://127.0.0.1:$port"
  cat > "$KS_DIR/keystone.conf" <<CONF
[DEFAULT]
log_file = $KS_DIR/log/keystone.log
[database]
connection = $db
[fernet_tokens]
key_repository = $KS_DIR/fernet
[fernet_receipts]
key_repository = $KS_DIR/fernet
[credential]
key_repository = $KS_DIR/credential
[token]
expiration = ${KS_TOKEN_EXPIRATION:-3600}
[cache]
enabled = false
[identity]
# bcrypt's minimum cost: every password check of a test user costs ~1 ms, not ~0.3 s.
password_hash_rounds = 4
CONF
  local km=(keystone-manage --config-file "$KS_DIR/keystone.conf")
  # keystone-manage prints an eventlet traceback at interpreter exit; its exit status is what counts.
  "${km[@]}" db_sync > "$KS_DIR/log/manage.out" 2>&1 || { echo "keystone db_sync failed"; tail "$KS_DIR/log/manage.out"; return 1; }
  "${km[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >> "$KS_DIR/log/manage.out" 2>&1 || return 1
  "${km[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >> "$KS_DIR/log/manage.out" 2>&1 || return 1
  "${km[@]}" bootstrap --bootstrap-password "$KS_ADMIN_PASSWORD" \
    --bootstrap-admin-url "$KS_URL/v3" --bootstrap-public-url "$KS_URL/v3" \
    --bootstrap-internal-url "$KS_URL/v3" --bootstrap-region-id RegionOne >> "$KS_DIR/log/manage.out" 2>&1 || {
      echo "keystone bootstrap failed"; tail "$KS_DIR/log/manage.out"; return 1; }
  cat > "$KS_DIR/serve.py" <<'PY'
import socketserver
import sys
import wsgiref.simple_server as wss

port = int(sys.argv[1])
sys.argv[1:] = []  # Keystone reads its own options from argv
from keystone.server.wsgi import initialize_public_application


class Server(socketserver.ThreadingMixIn, wss.WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class Quiet(wss.WSGIRequestHandler):
    def log_message(self, *args):
        pass


wss.make_server("127.0.0.1", port, initialize_public_application(),
                server_class=Server, handler_class=Quiet).serve_forever()
PY
  OS_KEYSTONE_CONFIG_FILES="$KS_DIR/keystone.conf" \
    setsid /usr/bin/python3 "$KS_DIR/serve.py" "$port" > "$KS_DIR/log/wsgi.out" 2>&1 < /dev/null &
  KS_PID=$!
  echo "$KS_PID" > "$KS_DIR/keystone.pid"
  local i
  for i in $(seq 1 300); do
    curl -s -m 2 -o /dev/null "$KS_URL/v3" && return 0
    kill -0 "$KS_PID" 2>/dev/null || { echo "keystone died"; tail "$KS_DIR/log/wsgi.out"; return 1; }
    sleep 0.1
  done
  echo "keystone did not answer within 30 s"
  return 1
}

keystone_down() {
  keystone_stop_server
  ks_pg_down
}
keystone_stop_server() {
  [ -n "$KS_PID" ] || return 0
  kill -TERM "$KS_PID" 2>/dev/null
  local i
  for i in $(seq 1 50); do kill -0 "$KS_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$KS_PID" 2>/dev/null
  wait "$KS_PID" 2>/dev/null
  KS_PID=""
}

# ks_token USER PASSWORD [PROJECT]: prints a token (nothing when Keystone refuses; its answer goes
# to stderr).
ks_token() {
  local scope="" out
  [ -n "${3:-}" ] && scope=",\"scope\":{\"project\":{\"name\":\"$3\",\"domain\":{\"id\":\"default\"}}}"
  out="$(curl -s -m 60 -D - -X POST "$KS_URL/v3/auth/tokens?nocatalog" \
    -H 'Content-Type: application/json' \
    -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"$1\",\"domain\":{\"id\":\"default\"},\"password\":\"$2\"}}}$scope}}" \
    | tr -d '\r')"
  local tok; tok="$(printf '%s\n' "$out" | awk 'tolower($1)=="x-subject-token:" {print $2}')"
  [ -n "$tok" ] || echo "# keystone refused a token for $1${3:+ in $3}: $(printf '%s' "$out" | head -1) $(printf '%s' "$out" | tail -1 | head -c 200)" >&2
  printf '%s\n' "$tok"
}

ks_admin_token() {
  KS_ADMIN="$(ks_token admin "$KS_ADMIN_PASSWORD" admin)"
  KS_ADMIN_AT=$(date +%s)
  [ -n "$KS_ADMIN" ]
}
KS_ADMIN_AT=0

ks_api() {  # METHOD PATH [JSON]
  # A test may make Keystone's tokens short-lived (KS_TOKEN_EXPIRATION): renew the admin's in time.
  [ $(( $(date +%s) - KS_ADMIN_AT )) -lt $(( ${KS_TOKEN_EXPIRATION:-3600} / 3 )) ] || ks_admin_token
  local data=()
  [ -n "${3:-}" ] && data=(-d "$3")
  curl -s -m 30 -X "$1" "$KS_URL/v3$2" -H "X-Auth-Token: $KS_ADMIN" -H 'Content-Type: application/json' \
    "${data[@]}"
}

ks_project() { ks_api POST /projects "{\"project\":{\"name\":\"$1\",\"domain_id\":\"default\"}}" | jq -r .project.id; }
ks_user() { ks_api POST /users "{\"user\":{\"name\":\"$1\",\"password\":\"$2\",\"domain_id\":\"default\"}}" | jq -r .user.id; }
ks_role_id() { ks_api GET "/roles?name=$1" | jq -r '.roles[0].id'; }
ks_new_role() { ks_api POST /roles "{\"role\":{\"name\":\"$1\"}}" | jq -r .role.id; }
ks_grant() {  # ROLE-NAME PROJECT-ID USER-ID
  local rid; rid="$(ks_role_id "$1")"
  ks_api PUT "/projects/$2/users/$3/roles/$rid" > /dev/null
}
ks_revoke_token() {  # TOKEN
  [ $(( $(date +%s) - KS_ADMIN_AT )) -lt $(( ${KS_TOKEN_EXPIRATION:-3600} / 3 )) ] || ks_admin_token
  curl -s -m 30 -o /dev/null -w '%{http_code}' -X DELETE "$KS_URL/v3/auth/tokens" \
    -H "X-Auth-Token: $KS_ADMIN" -H "X-Subject-Token: $1"
}
# ks_service TYPE NAME URL: a service with public/internal/admin endpoints in RegionOne.
ks_service() {
  local sid iface
  sid="$(ks_api POST /services "{\"service\":{\"type\":\"$1\",\"name\":\"$2\"}}" | jq -r .service.id)"
  for iface in public internal admin; do
    ks_api POST /endpoints "{\"endpoint\":{\"service_id\":\"$sid\",\"interface\":\"$iface\",\"url\":\"$3\",\"region_id\":\"RegionOne\"}}" > /dev/null
  done
  echo "$sid"
}
# ks_ingot_config FILE: the [auth]/[keystone_authtoken] sections of an ingotd TOML file, for a service
# user "glance" (password glance-pw) with the admin and service roles in project "service", as Glance
# is deployed. Call ks_service_user first.
ks_service_user() {
  local sp gu
  sp="$(ks_project service)"
  gu="$(ks_user glance glance-pw)"
  ks_new_role service > /dev/null
  ks_grant admin "$sp" "$gu"
  ks_grant service "$sp" "$gu"
  # oslo.limit reads limits system-scoped: Glance's service user holds reader on the system.
  ks_api PUT "/system/users/$gu/roles/$(ks_role_id reader)" > /dev/null
}
ks_ingot_config() {
  cat <<TOML
[auth]
mode = "keystone"

[keystone_authtoken]
www_authenticate_uri = "$KS_URL/v3"
auth_url = "$KS_URL"
username = "glance"
password = "glance-pw"
project_name = "service"
user_domain_name = "Default"
project_domain_name = "Default"
token_cache_time = ${KS_CACHE_TIME:-300}
revocation_poll_seconds = ${KS_REVOCATION_POLL:-5}
TOML
}

# ks_ingotd PORT CONFIG LOG [flags...]: ingotd on 127.0.0.1:PORT (chosen beforehand, so Keystone's
# catalog can name it) with --config CONFIG; waits for /healthcheck. Appends the PID to IT_PIDS
# (lib.sh stops it) and sets KS_INGOTD_PID.
ks_ingotd() {
  local port="$1" cfg="$2" log="$3"; shift 3
  # The boot listener on a free port (not off: a daemon without it must still start, but tests keep
  # to the configuration every other script uses).
  "$INGOTD" --listen "127.0.0.1:$port" --config "$cfg" --boot-listen 127.0.0.1:0 "$@" \
    > "$log.out" 2> "$log" < /dev/null &
  KS_INGOTD_PID=$!
  IT_PIDS+=("$KS_INGOTD_PID")
  local i
  for i in $(seq 1 150); do
    [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthcheck")" = 200 ] && return 0
    kill -0 "$KS_INGOTD_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL  ingotd on port $port did not start:"; tail -5 "$log"; return 1
}
