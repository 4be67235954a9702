#!/bin/bash
# Scale-out under load and crashes: 3 ingotd nodes on one PostgreSQL catalog and the test bed's Swift,
# behind HAProxy (tests/lib/cluster.sh), 64 concurrent clients (load_gen.py) mixing creates, uploads
# of 1-64 MiB, downloads checked by MD5, list pages and deletes for LOAD_DURATION seconds (default
# 300), while one node is SIGKILLed and restarted every LOAD_KILL_EVERY seconds (default 60; with a
# shorter run, once half-way). Beside the load, every few seconds an image read through every node
# (so that each node's image cache holds it) is deactivated or deleted through one node and then
# asked for through the others: they must never send its bytes, and their cache sweeps must drop it.
#
# At the end, with every node up: every image whose upload was acknowledged (204) and not deleted
# downloads with its MD5 from every node; every deleted image is refused by every node; and every
# 5xx (or broken answer) was in flight on a node at the moment it was killed (HAProxy's X-Backend
# header names the node that answered; the kill times are recorded). Prints the counts.
#
#   tests/integration/load.sh [INGOTD]     # LOAD_DURATION=300 LOAD_CLIENTS=64 LOAD_KILL_EVERY=60
# Skips (77) when Swift or PostgreSQL cannot be had here.
#
# It found three defects, all fixed (2026-12-07): Swift's 401 under load answered as "data missing"
# (now re-authenticated, and a store that cannot answer is 503, not 500); a node that could not
# reach Swift at start stayed down (start-up repair is no longer fatal); start-up repair on a shared
# catalog reset other nodes' uploads and swept objects they were committing (uploads now hold a
# per-node lease; the sweep is the scrubber's).
# Nothing acknowledged was lost or corrupted in any run, and no deleted or deactivated image was served.
. "$(dirname "$0")/lib.sh"
it_init "$@"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
. "$ROOT/tests/lib/cluster.sh"
W="$IT_TMP"
chmod 755 "$W"  # the test bed's PostgreSQL runs as `postgres` beneath it
DURATION="${LOAD_DURATION:-300}"
CLIENTS="${LOAD_CLIENTS:-64}"
KILL_EVERY="${LOAD_KILL_EVERY:-60}"
GEN=(/usr/bin/python3 "$ROOT/tests/integration/load_gen.py")

trap 'rc=$?; cluster_down; (exit $rc); it_cleanup' EXIT
it_on_failure() { cluster_digest; }

admin_member_tokens "$W/tokens.toml"
export CLUSTER_INGOTD="$INGOTD" CLUSTER_STORES="swift"
export CLUSTER_ARGS="--auth tokens --tokens-file $W/tokens.toml"
# The cache sweep every 2 s, so the coherence rounds see other nodes drop deleted images quickly.
export CLUSTER_TOML=$'[cache]\nsweep_interval_ms = 2000'
cluster_up "$W/cluster" 3
rc=$?
[ $rc -eq 77 ] && { echo "SKIP  load: Swift or PostgreSQL is not available here"; exit 77; }
[ $rc -eq 0 ] || { fail "the cluster came up"; it_finish; }
pass "3 nodes behind HAProxy at $CLUSTER_URL"
NODES=()
for i in 1 2 3; do NODES+=(--node "node$i=$(cluster_node_url "$i")"); done

OUT="$W/load"
mkdir -p "$OUT"
"${GEN[@]}" run --lb "$CLUSTER_URL" "${NODES[@]}" --out "$OUT" --clients "$CLIENTS" \
  --duration "$DURATION" > "$OUT/run.log" 2>&1 &
GEN_PID=$!
IT_PIDS+=("$GEN_PID")
it_log "# load: $CLIENTS clients for $DURATION s, a node killed every $KILL_EVERY s (load $(cut -d' ' -f1 /proc/loadavg))"

# restart_node I: starts node I again, as a supervisor (systemd's Restart=on-failure) would: a start
# can fail while the host is saturated (Swift's auth answering 503 at start-up, say); each failed
# attempt is counted and shown, and the node must be up within 5 attempts.
RESTART_RETRIES=0
restart_node() {
  local k
  for k in 1 2 3 4 5; do
    cluster_restart "$1" && return 0
    RESTART_RETRIES=$((RESTART_RETRIES + 1))
    it_log "# node$1 did not start (attempt $k): $(grep '^ingotd:' "$(cluster_node_log "$1")" | tail -1 | tail -c 300)"
    sleep 2
  done
  fail "node$1 restarted after SIGKILL within 5 attempts"
}

# The kills: node1, node2, node3, node1, ... each restarted at once (its port, data and config).
start=$(date +%s)
every="$KILL_EVERY"
[ "$DURATION" -lt "$((KILL_EVERY * 2))" ] && every=$((DURATION / 2))
next=$((start + every))
n=0
: > "$OUT/kills"
while kill -0 "$GEN_PID" 2>/dev/null; do
  now=$(date +%s)
  if [ "$now" -ge "$next" ] && [ "$now" -lt "$((start + DURATION - 5))" ]; then
    node=$((n % 3 + 1)); n=$((n + 1))
    sent="$(date +%s.%N)"
    cluster_kill9 "$node"   # returns once the process is gone
    printf '%s %s node%d\n' "$sent" "$(date +%s.%N)" "$node" >> "$OUT/kills"
    it_log "# $(date -u +%T) node$node killed; restarting (load $(cut -d' ' -f1 /proc/loadavg))"
    restart_node "$node"
    next=$((next + every))
  fi
  sleep 1
done
wait "$GEN_PID"
gen_rc=$?
tail -1 "$OUT/run.log" >&2
expect_eq "the load generator ran to its end" "$gen_rc" 0
expect_true "at least one node was killed and restarted" test -s "$OUT/kills"
for i in 1 2 3; do
  [ -n "$(cluster_node_pid "$i")" ] || restart_node "$i"
  cluster_wait_lb "$i" up 30 || fail "node$i up at the end"
done
it_log "# restarts that needed another attempt: $RESTART_RETRIES"

"${GEN[@]}" verify "${NODES[@]}" --out "$OUT" > "$OUT/verify.log" 2>&1
cat "$OUT/verify.log"
"${GEN[@]}" report --out "$OUT" --kills "$OUT/kills" > "$OUT/report.txt" 2>&1
report_rc=$?
cat "$OUT/report.txt"
acked="$(jq '.images' "$OUT/verify.json" 2>/dev/null)"
expect_true "images were acknowledged during the load" test "${acked:-0}" -gt 0
expect_eq "no acknowledged image lost or corrupted, no unexplained 5xx, no deleted or deactivated bytes served" \
  "$report_rc" 0
expect_true "coherence rounds ran (every node's cache primed, then deactivate/delete)" \
  test "$(jq '.primed' "$OUT/coherence.json")" -gt 0
expect_eq "deleted/deactivated images swept from the other nodes' caches" \
  "$(jq '.not_pruned' "$OUT/coherence.json")" 0
it_finish
