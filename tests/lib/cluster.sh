# A scale-out cluster on one machine for tests and benchmarks, on 127.0.0.1 only: N ingotd nodes
# (default 3) sharing one PostgreSQL catalog and the test bed's Swift and S3 stores, behind HAProxy.
# The test bed (Swift + s3api, PostgreSQL, HAProxy) comes from scripts/testbed.sh; each node gets its
# own fixed port, data directory, config file, log and node name (node1..nodeN), and HAProxy
# balances them round robin with health checks (HEAD /healthcheck every 500 ms, 5 s to answer, down
# after 3 misses).
#
#   . tests/lib/cluster.sh
#   cluster_up DIR [N]        # test bed + N nodes; 0 = up, 77 = cannot run here (skip), 1 = failed
#   cluster_url               # the balancer's URL (every node behind it)
#   cluster_node_url I        # node I's own URL (I = 1..N), bypassing the balancer
#   cluster_node_pid I        # node I's PID ("" while it is down)
#   cluster_node_log I        # node I's log file (stderr; appended to across restarts)
#   cluster_node_data I       # node I's data directory (staging, local state)
#   cluster_kill9 I           # SIGKILL node I (a crash), waits until it is gone
#   cluster_stop_node I       # SIGTERM node I (graceful), SIGKILL after 10 s
#   cluster_restart I         # starts node I again (same port, data dir, config), waits for health
#   cluster_wait_lb I up|down [SECONDS]
#                             # waits until HAProxy's health check sees node I in that state
#   cluster_digest            # HAProxy's view of the nodes and their last warnings (for failures)
#   cluster_down              # stops every node, then the test bed, all by PID; keeps DIR
#
# Or as a command: `bash tests/lib/cluster.sh up DIR [N]` (prints the environment below) and
# `bash tests/lib/cluster.sh down DIR`; the nodes are detached (setsid) so they outlive the command.
#
# After cluster_up the test bed's environment is exported (SWIFT_*, ST_*, S3_*, PG_DSN,
# HAPROXY_*; scripts/testbed.sh says what each is) plus CLUSTER_DIR, CLUSTER_N, CLUSTER_URL (the
# balancer) and CLUSTER_FILE_DIR (the shared file store's directory).
#
# Knobs, read by cluster_up (and cluster_restart), all optional:
#   CLUSTER_INGOTD     the ingotd binary (default: $INGOTD, else build*/bin/ingotd of this tree)
#   CLUSTER_STORES     which stores every node has, in order, the first being the default:
#                      any of "swift s3 file" (default "swift s3 file"). Swift keeps images in
#                      container "ingot" (SLO past 8 MiB, 4 MiB segments), S3 in bucket
#                      "ingot-images" (multipart past 5 MiB, 5 MiB parts), file under
#                      DIR/shared-file (one directory all nodes share, as NFS would be)
#   CLUSTER_LEASE_MS   [import] task_lease_ms of every node (default 3000: a dead node's import is
#                      taken over within seconds)
#   CLUSTER_TOML       more TOML appended to every node's config (e.g. a [scrubber] section)
#   CLUSTER_ARGS       more ingotd flags for every node (e.g. "--log-level debug")
#
# Every process this file starts carries INGOT_CLUSTER=DIR in its environment and is signalled only
# after that mark is checked, so a PID the kernel reused for someone else is never touched. Each
# node's PID is in DIR/nodeI/pid.

_cluster_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); }

_cluster_log() { printf 'cluster: %s\n' "$*" >&2; }

_cluster_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# _cluster_ours PID: true when PID is alive, not a zombie, and carries our mark.
_cluster_ours() {
  local pid="$1"
  [ -n "$pid" ] && [ -r "/proc/$pid/environ" ] || return 1
  grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 1
  tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "INGOT_CLUSTER=$CLUSTER_DIR"
}

_cluster_ingotd() {
  local c root
  for c in "${CLUSTER_INGOTD:-}" "${INGOTD:-}"; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
  done
  root="$(_cluster_root)"
  for c in "$root"/build/bin/ingotd "$root"/build*/bin/ingotd; do
    [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}

# _cluster_config I: writes DIR/nodeI/ingotd.toml.
_cluster_config() {
  local i="$1" d="$CLUSTER_DIR/node$1" s first=true
  {
    printf '[catalog]\ndriver = "postgres"\ndsn = "%s"\n\n' "$PG_DSN"
    printf '[import]\nnode_name = "node%s"\ntask_lease_ms = %s\n\n' "$i" "${CLUSTER_LEASE_MS:-3000}"
    for s in ${CLUSTER_STORES:-swift s3 file}; do
      case "$s" in
        swift) cat <<EOF
[[stores]]
name = "swift"
driver = "swift"
default = $first
description = "Swift"
swift_store_auth_version = 1
swift_store_auth_address = "$SWIFT_AUTH_URL"
swift_store_user = "$SWIFT_USER"
swift_store_key = "$SWIFT_KEY"
swift_store_container = "ingot"
swift_store_create_container_on_put = true
swift_store_large_object_size = 8
swift_store_large_object_chunk_size = 4

EOF
          ;;
        s3) cat <<EOF
[[stores]]
name = "s3"
driver = "s3"
default = $first
description = "S3 (Swift s3api)"
s3_store_host = "$S3_ENDPOINT"
s3_store_access_key = "$S3_ACCESS_KEY"
s3_store_secret_key = "$S3_SECRET_KEY"
s3_store_bucket = "ingot-images"
s3_store_create_bucket_on_put = true
s3_store_large_object_size = 5
s3_store_large_object_chunk_size = 5
s3_store_thread_pools = 3

EOF
          ;;
        file) cat <<EOF
[[stores]]
name = "file"
driver = "file"
default = $first
description = "shared directory"
path = "$CLUSTER_FILE_DIR"

EOF
          ;;
        *) _cluster_log "CLUSTER_STORES: unknown store '$s' (swift, s3, file)"; return 1 ;;
      esac
      first=false
    done
    printf '%s\n' "${CLUSTER_TOML:-}"
  } > "$d/ingotd.toml"
}

# _cluster_start_node I: starts node I detached, marked, on its port; waits for /healthcheck.
_cluster_start_node() {
  local i="$1" d="$CLUSTER_DIR/node$1" bin port pid k
  bin="$(_cluster_ingotd)" || { _cluster_log "ingotd not found (set CLUSTER_INGOTD)"; return 1; }
  port="$(cat "$d/port")"
  _cluster_config "$i" || return 1
  mkdir -p "$d/data"
  # shellcheck disable=SC2086
  INGOT_CLUSTER="$CLUSTER_DIR" setsid "$bin" --listen "127.0.0.1:$port" --data-dir "$d/data" \
    --boot-listen "" --auth noauth --config "$d/ingotd.toml" ${CLUSTER_ARGS:-} \
    >> "$d/ingotd.out" 2>> "$d/ingotd.log" < /dev/null &
  pid=$!
  echo "$pid" > "$d/pid"
  for k in $(seq 1 600); do  # 60 s: migrations queue on one lock when nodes start together
    if ! kill -0 "$pid" 2>/dev/null; then
      _cluster_log "node$i exited before it was healthy:"; tail -5 "$d/ingotd.log" >&2
      rm -f "$d/pid"
      return 1
    fi
    [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthcheck")" = 200 ] &&
      return 0
    sleep 0.1
  done
  _cluster_log "node$i did not answer /healthcheck within 60 s (log: $d/ingotd.log)"
  return 1
}

cluster_up() {
  CLUSTER_DIR="${1:?cluster_up DIR [N]}"
  CLUSTER_N="${2:-3}"
  local root i backends="" port
  root="$(_cluster_root)"
  mkdir -p "$CLUSTER_DIR" || return 1
  CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
  # PostgreSQL runs as the postgres user, which must be able to walk down to its data directory:
  # directories of ours under the temporary directory (a mktemp -d scratch directory is 0700) get
  # o+x, traversal only. Elsewhere the caller must choose a directory postgres can reach.
  local d="$CLUSTER_DIR" tmp
  tmp="$(cd "${TMPDIR:-/tmp}" && pwd)"
  while [ "${d#"$tmp"/}" != "$d" ]; do
    [ -O "$d" ] && chmod o+x "$d"
    d="$(dirname "$d")"
  done
  _cluster_ingotd > /dev/null || { _cluster_log "ingotd not found (set CLUSTER_INGOTD)"; return 1; }
  for i in $(seq 1 "$CLUSTER_N"); do
    mkdir -p "$CLUSTER_DIR/node$i"
    port="$(_cluster_free_port)" || return 1
    echo "$port" > "$CLUSTER_DIR/node$i/port"
    backends+="127.0.0.1:$port "
  done
  # HAProxy is configured with the nodes' ports before they listen; it marks them up as they come.
  if ! TESTBED_DIR="$CLUSTER_DIR/testbed" TESTBED_LB_BACKENDS="$backends" \
       "$root/scripts/testbed.sh" up swift pg haproxy > "$CLUSTER_DIR/testbed.env" 2> "$CLUSTER_DIR/testbed.log"; then
    if ! command -v swift-proxy-server > /dev/null || ! ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1; then
      _cluster_log "Swift or PostgreSQL is not installed and could not be (scripts/install-deps.sh)"
      return 77
    fi
    _cluster_log "the test bed did not start:"; tail -5 "$CLUSTER_DIR/testbed.log" >&2
    return 1
  fi
  # shellcheck disable=SC1091
  . "$CLUSTER_DIR/testbed.env"
  [ -n "${PG_DSN:-}" ] && [ -n "${INGOT_LB_URL:-}" ] ||
    { _cluster_log "the test bed gave no PG_DSN or INGOT_LB_URL"; return 1; }
  CLUSTER_URL="$INGOT_LB_URL"
  CLUSTER_FILE_DIR="$CLUSTER_DIR/shared-file"
  mkdir -p "$CLUSTER_FILE_DIR"
  export CLUSTER_DIR CLUSTER_N CLUSTER_URL CLUSTER_FILE_DIR
  {
    echo "export CLUSTER_DIR=$CLUSTER_DIR CLUSTER_N=$CLUSTER_N CLUSTER_URL=$CLUSTER_URL"
    echo "export CLUSTER_FILE_DIR=$CLUSTER_FILE_DIR"
  } > "$CLUSTER_DIR/cluster.env"
  # The first node alone runs the schema migrations; the others then start side by side.
  _cluster_start_node 1 || return 1
  for i in $(seq 2 "$CLUSTER_N"); do _cluster_start_node "$i" || return 1; done
  for i in $(seq 1 "$CLUSTER_N"); do cluster_wait_lb "$i" up 20 || return 1; done
  _cluster_log "$CLUSTER_N nodes behind $CLUSTER_URL"
  return 0
}

cluster_url() { echo "$CLUSTER_URL"; }
cluster_node_url() { echo "http://127.0.0.1:$(cat "$CLUSTER_DIR/node$1/port")"; }
cluster_node_pid() {
  local p
  p="$(cat "$CLUSTER_DIR/node$1/pid" 2>/dev/null)"
  _cluster_ours "$p" && echo "$p"
  return 0
}
cluster_node_log() { echo "$CLUSTER_DIR/node$1/ingotd.log"; }
cluster_node_data() { echo "$CLUSTER_DIR/node$1/data"; }

# _cluster_wait_gone PID
_cluster_wait_gone() {
  local k
  for k in $(seq 1 100); do
    _cluster_ours "$1" || return 0
    sleep 0.1
  done
  return 1
}

cluster_kill9() {
  local pid
  pid="$(cluster_node_pid "$1")"
  [ -n "$pid" ] || return 0
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  _cluster_wait_gone "$pid"
  rm -f "$CLUSTER_DIR/node$1/pid"
}

cluster_stop_node() {
  local pid
  pid="$(cluster_node_pid "$1")"
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  if ! _cluster_wait_gone "$pid"; then
    _cluster_log "node$1 ($pid) ignored SIGTERM for 10 s; sending SIGKILL"
    _cluster_ours "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  rm -f "$CLUSTER_DIR/node$1/pid"
}

cluster_restart() {
  cluster_stop_node "$1"
  _cluster_start_node "$1"
}

# cluster_wait_lb I up|down [SECONDS]: HAProxy's view of node I, from its stats CSV (column 18).
cluster_wait_lb() {
  local i="$1" want="${2:-up}" secs="${3:-20}" k st
  for k in $(seq 1 $((secs * 10))); do
    st="$(curl -s -m 2 "$HAPROXY_STATS_URL;csv" | awk -F, -v s="node$i" '$1=="ingot" && $2==s {print $18}')"
    case "$want:$st" in
      up:UP*|down:DOWN*) return 0 ;;
    esac
    sleep 0.1
  done
  _cluster_log "HAProxy did not see node$i $want within $secs s (state '$st')"
  return 1
}

# cluster_digest: what explains a failure, for the end of a test's output: HAProxy's view of the
# nodes and each node's last warnings and errors.
cluster_digest() {
  local i
  echo "--- HAProxy: $(curl -s -m 2 "$HAPROXY_STATS_URL;csv" |
    awk -F, '$1=="ingot" && $2 ~ /^node/ {printf "%s=%s(down %s times) ", $2, $18, $25}')"
  for i in $(seq 1 "$CLUSTER_N"); do
    echo "--- node$i, last warnings and errors:"
    grep -E 'level=(warn|error)' "$CLUSTER_DIR/node$i/ingotd.log" 2>/dev/null | tail -8 | cut -c1-300
  done
}

cluster_down() {
  [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR" ] || return 0
  local d pid root
  root="$(_cluster_root)"
  for d in "$CLUSTER_DIR"/node*; do
    [ -f "$d/pid" ] || continue
    pid="$(cat "$d/pid")"
    _cluster_ours "$pid" && kill -TERM "$pid" 2>/dev/null
  done
  for d in "$CLUSTER_DIR"/node*; do
    [ -f "$d/pid" ] || continue
    pid="$(cat "$d/pid")"
    if ! _cluster_wait_gone "$pid"; then _cluster_ours "$pid" && kill -KILL "$pid" 2>/dev/null; fi
    wait "$pid" 2>/dev/null
    rm -f "$d/pid"
  done
  TESTBED_DIR="$CLUSTER_DIR/testbed" "$root/scripts/testbed.sh" down > /dev/null 2>&1 || true
  return 0
}

# As a command.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    up)
      cluster_up "${2:?DIR}" "${3:-3}" || exit $?
      cat "$CLUSTER_DIR/testbed.env" "$CLUSTER_DIR/cluster.env" ;;
    down)
      CLUSTER_DIR="$(cd "${2:?DIR}" && pwd)" || exit 1
      cluster_down ;;
    *) echo "usage: $0 up DIR [N] | down DIR" >&2; exit 2 ;;
  esac
fi
