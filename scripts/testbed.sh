#!/usr/bin/env bash
# The scale-out test bed on one machine, from Debian packages, on 127.0.0.1 only:
# OpenStack Swift (tempauth, the s3api S3 middleware, SLO) behind HAProxy, and PostgreSQL.
#
#   scripts/testbed.sh up [swift] [pg] [haproxy]   # default: all three; prints the environment
#   scripts/testbed.sh env                         # the environment of the running test bed
#   scripts/testbed.sh down                        # stops what `up` started, by PID, and removes it
#
# State lives in $TESTBED_DIR (default /tmp/ingot-testbed): throw-away data directories, configs,
# logs and one PID file per process. Every process is started with INGOT_TESTBED=$TESTBED_DIR in its
# environment and `down` checks that mark before it signals a PID, so a PID the kernel reused for
# someone else is never killed. Missing packages are installed with apt-get (they are in
# scripts/install-deps.sh too).
#
# What `env` exports (source it: eval "$(scripts/testbed.sh env)"):
#   SWIFT_AUTH_URL, SWIFT_USER, SWIFT_KEY     tempauth v1 (also as ST_AUTH/ST_USER/ST_KEY for the
#                                             swift CLI); SWIFT_STORAGE_URL the account's URL
#   S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, S3_VHOST_DOMAIN
#                                             the same Swift through s3api (path style on
#                                             S3_ENDPOINT, virtual-hosted style on
#                                             <bucket>.$S3_VHOST_DOMAIN:<port>)
#   HAPROXY_URL, HAPROXY_STATS_URL            HAProxy in front of the Swift proxy (and, when
#                                             TESTBED_LB_BACKENDS="host:port ..." is set at `up`, a
#                                             second frontend INGOT_LB_URL balancing those)
#   PG_DSN                                    PostgreSQL (tests/lib/postgres.sh)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DIR="${TESTBED_DIR:-/tmp/ingot-testbed}"
PY=/usr/bin/python3  # python3 on PATH may be another interpreter without Swift's modules

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ensure_packages() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
}

# start NAME CMD...: runs CMD in the background, marked, with its PID in pids/NAME.pid.
start() {
  local name="$1"; shift
  INGOT_TESTBED="$DIR" setsid "$@" >>"$DIR/log/$name.out" 2>&1 </dev/null &
  echo $! >"$DIR/pids/$name.pid"
}

ours() {  # ours PID: true when PID is alive and carries our mark
  local pid="$1"
  [ -r "/proc/$pid/environ" ] || return 1
  { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | grep -qx "INGOT_TESTBED=$DIR"
}

wait_http() {  # wait_http URL SECONDS [curl args...]
  local url="$1" secs="$2"; shift 2
  local i
  for ((i = 0; i < secs * 10; i++)); do
    curl -sf -o /dev/null --max-time 2 "$@" "$url" && return 0
    sleep 0.1
  done
  return 1
}

swift_up() {
  ensure_packages swift swift-proxy swift-object swift-container swift-account python3-swift \
    python3-swiftclient memcached
  local etc="$DIR/swift" srv="$DIR/swift/srv"
  mkdir -p "$etc" "$srv/d1"
  local pm pa pc po pp
  pm=$(free_port); pa=$(free_port); pc=$(free_port); po=$(free_port); pp=$(free_port)
  # Swift servers run as root here (user = root): the data lives in a throw-away directory that
  # only this test bed uses, and that avoids chown-ing it for the swift user.
  cp /etc/swift/swift.conf "$etc/swift.conf" 2>/dev/null || cat >"$etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = ingot-testbed
swift_hash_path_prefix = ingot-testbed
[storage-policy:0]
name = Policy-0
default = yes
EOF
  local common="bind_ip = 127.0.0.1
user = root
swift_dir = $etc
devices = $srv
mount_check = false
log_level = INFO"
  # Storage servers: account and container one process each (workers = 0); the object server, which
  # moves the bytes, two worker processes as a real deployment would run several (one process is
  # bound to one core: ~70 % of it for a single 150 MB/s PUT). 1 MiB chunks (1.7x faster GETs than
  # Swift's 64 KiB).
  cat >"$etc/account-server.conf" <<EOF
[DEFAULT]
bind_port = $pa
workers = 0
$common
[pipeline:main]
pipeline = healthcheck account-server
[app:account-server]
use = egg:swift#account
[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  cat >"$etc/container-server.conf" <<EOF
[DEFAULT]
bind_port = $pc
workers = 0
$common
[pipeline:main]
pipeline = healthcheck container-server
[app:container-server]
use = egg:swift#container
[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  cat >"$etc/object-server.conf" <<EOF
[DEFAULT]
bind_port = $po
workers = ${TESTBED_OBJECT_WORKERS:-2}
network_chunk_size = 1048576
disk_chunk_size = 1048576
$common
[pipeline:main]
pipeline = healthcheck object-server
[app:object-server]
use = egg:swift#object
[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  # The proxy: tempauth users (test:tester is the account the tests use, test2:tester2 a second
  # one), s3api in front of tempauth so S3 requests are authenticated with the same users, SLO for
  # large objects (and s3api's multipart uploads, which are SLOs).
  cat >"$etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $pp
workers = ${TESTBED_PROXY_WORKERS:-2}
user = root
swift_dir = $etc
log_level = INFO
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
object_chunk_size = 1048576
client_chunk_size = 1048576
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$pm
# tempauth keeps its tokens here. Swift's defaults (2 pooled connections, a 1 s pool wait, a 0.3 s
# connect) turn a busy test host into refused tokens (401 on a token issued a moment before);
# enough connections and patient timeouts keep the test bed's auth out of what tests measure.
memcache_max_connections = 64
pool_timeout = 10
connect_timeout = 2
io_timeout = 10
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
storage_domain = s3.localhost
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF
  # Rings in one Python process: nine swift-ring-builder calls pay ~1.5 s of start-up each.
  "$PY" - "$etc" "$pa" "$pc" "$po" <<'EOF'
import sys
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], dict(zip(("account", "container", "object"), map(int, sys.argv[2:5])))
for name, port in ports.items():
    b = RingBuilder(10, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "device": "d1", "weight": 100, "meta": ""})
    b.rebalance()
    b.get_ring().save(f"{etc}/{name}.ring.gz")
EOF
  start memcached /usr/bin/memcached -l 127.0.0.1 -p "$pm" -U 0 -m 64 -u root
  local s
  for s in account container object proxy; do
    start "swift-$s" "$PY" "$HERE/testbed/swift_launch.py" "$s-server" "$etc/$s-server.conf" \
      "$DIR/log/swift-$s.log"
  done
  wait_http "http://127.0.0.1:$pp/healthcheck" 60 || die "the Swift proxy did not come up (see $DIR/log)"
  local b
  for b in "$pa" "$pc" "$po"; do
    wait_http "http://127.0.0.1:$b/healthcheck" 30 || die "a Swift storage server (port $b) did not come up"
  done
  wait_http "http://127.0.0.1:$pp/auth/v1.0" 30 -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' ||
    die "tempauth does not answer"
  cat >>"$DIR/env" <<EOF
export SWIFT_AUTH_URL=http://127.0.0.1:$pp/auth/v1.0
export SWIFT_USER=test:tester
export SWIFT_KEY=testing
export SWIFT_STORAGE_URL=http://127.0.0.1:$pp/v1/AUTH_test
export ST_AUTH=http://127.0.0.1:$pp/auth/v1.0
export ST_USER=test:tester
export ST_KEY=testing
export S3_ENDPOINT=http://127.0.0.1:$pp
export S3_ACCESS_KEY=test:tester
export S3_SECRET_KEY=testing
export S3_REGION=us-east-1
export S3_VHOST_DOMAIN=s3.localhost
export SWIFT_PROXY_PORT=$pp
EOF
  log "swift up on 127.0.0.1:$pp"
}

haproxy_up() {
  ensure_packages haproxy
  # shellcheck disable=SC1091
  . "$DIR/env"
  local hp hs
  hp=$(free_port); hs=$(free_port)
  {
    cat <<EOF
global
  maxconn 2000
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  option http-buffer-request
frontend stats
  bind 127.0.0.1:$hs
  stats enable
  stats uri /stats
frontend swift
  bind 127.0.0.1:$hp
  default_backend swift
backend swift
  balance roundrobin
  option httpchk HEAD /healthcheck
  timeout check 5s
  default-server inter 500ms fall 3 rise 1
  http-response set-header X-Backend %s
  server proxy1 127.0.0.1:${SWIFT_PROXY_PORT:?haproxy fronts swift: start swift first} check
EOF
    if [ -n "${TESTBED_LB_BACKENDS:-}" ]; then
      local lp n=0 b
      lp=$(free_port)
      printf 'frontend ingot\n  bind 127.0.0.1:%s\n  default_backend ingot\n' "$lp"
      printf 'backend ingot\n  balance roundrobin\n  option httpchk HEAD /healthcheck\n'
      # A request that cannot connect to a node (dead, not yet seen down) goes to another one: only
      # requests in flight on a node when it dies fail.
      printf '  retries 3\n  option redispatch 1\n'
      # A node answers its health check within `timeout check` even on a saturated host (CI runs
      # the load test beside others): a 500 ms limit marked every node down at once there, and
      # HAProxy answered 503 itself. A killed node still goes out fast: its port refuses at once.
      printf '  timeout check 5s\n'
      printf '  default-server inter 500ms fall 3 rise 1\n  http-response set-header X-Backend %%s\n'
      for b in $TESTBED_LB_BACKENDS; do n=$((n + 1)); printf '  server node%d %s check\n' "$n" "$b"; done
      echo "export INGOT_LB_URL=http://127.0.0.1:$lp" >>"$DIR/env"
    fi
  } >"$DIR/haproxy.cfg"
  # HAProxy buffers nothing of large bodies (http-buffer-request only waits for the first bytes).
  start haproxy /usr/sbin/haproxy -db -f "$DIR/haproxy.cfg"
  wait_http "http://127.0.0.1:$hs/stats" 20 || die "haproxy did not come up"
  wait_http "http://127.0.0.1:$hp/healthcheck" 20 || die "haproxy does not reach the Swift proxy"
  cat >>"$DIR/env" <<EOF
export HAPROXY_URL=http://127.0.0.1:$hp
export HAPROXY_STATS_URL=http://127.0.0.1:$hs/stats
EOF
  log "haproxy up on 127.0.0.1:$hp (stats $hs)"
}

pg_up() {
  ensure_packages postgresql-15
  local lib="$ROOT/tests/lib/postgres.sh"
  if [ ! -f "$lib" ]; then
    log "tests/lib/postgres.sh is missing: PostgreSQL not started"
    return 0
  fi
  # shellcheck disable=SC1090
  . "$lib"
  local dsn
  dsn="$(INGOT_TESTBED="$DIR" pg_start "$DIR/pg")" || die "PostgreSQL did not start"
  echo "export PG_DSN='$dsn'" >>"$DIR/env"
  touch "$DIR/pg.started"
  log "postgresql up: $dsn"
}

cmd_up() {
  local want=("$@")
  [ ${#want[@]} -eq 0 ] && want=(swift pg haproxy)
  if [ -f "$DIR/env" ]; then die "already up in $DIR (run: $0 down)"; fi
  mkdir -p "$DIR/log" "$DIR/pids"
  : >"$DIR/env"
  echo "export TESTBED_DIR=$DIR" >>"$DIR/env"
  local w
  trap 'rc=$?; [ $rc -ne 0 ] && { log "up failed; stopping what started"; cmd_down >/dev/null 2>&1 || true; }' EXIT
  for w in "${want[@]}"; do
    case "$w" in
      swift) swift_up ;;
      pg) pg_up ;;
      haproxy) [[ " ${want[*]} " == *" swift "* ]] || [ -n "$(grep SWIFT_PROXY_PORT "$DIR/env" || true)" ] ||
          die "haproxy fronts swift: start swift too"; haproxy_up ;;
      *) die "unknown component '$w' (swift, pg, haproxy)" ;;
    esac
  done
  trap - EXIT
  cat "$DIR/env"
}

cmd_env() {
  [ -f "$DIR/env" ] || die "not up (no $DIR/env)"
  cat "$DIR/env"
}

cmd_down() {
  [ -d "$DIR" ] || { log "nothing to stop in $DIR"; return 0; }
  if [ -f "$DIR/pg.started" ] && [ -f "$ROOT/tests/lib/postgres.sh" ]; then
    # shellcheck disable=SC1090
    . "$ROOT/tests/lib/postgres.sh"
    pg_stop "$DIR/pg" || log "pg_stop failed"
  fi
  local f pid pids=()
  for f in "$DIR"/pids/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if ours "$pid"; then
      # The whole session: Swift's proxy forks its workers into the same one (setsid at start).
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$f"
  done
  local i p alive
  for ((i = 0; i < 100; i++)); do
    alive=0
    for p in "${pids[@]:-}"; do
      [ -n "$p" ] || continue
      # A zombie waiting for PID 1 to reap it counts as stopped.
      if [ -r "/proc/$p/stat" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; then alive=1; fi
    done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] && ours "$p" && kill -KILL -- "-$p" 2>/dev/null || true
  done
  rm -rf "$DIR"
  log "down"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  env) cmd_env ;;
  down) cmd_down ;;
  *) echo "usage: $0 up [swift] [pg] [haproxy] | env | down" >&2; exit 2 ;;
esac
