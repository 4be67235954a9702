#!/usr/bin/env bash
# Bounded load test of the HTTP edge: 200 slow clients (stalled and dripping bodies, dripping
# uploads, slowloris heads, slow readers, idle sockets) and 20 normal ones against one ingotd for a
# minute, on loopback. The normal clients must see no error and a p99 latency under 100 ms
# (slow_clients.py prints the figures).
# Usage: slow_clients.sh [PATH-TO-INGOTD]   env: SLOW_SECONDS (default 60), SLOW_CLIENTS (200),
#                                                NORMAL_CLIENTS (20)
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
it_init "$@"
is_peer && { echo "SKIP  the load test drives ingotd itself"; exit 77; }
ingot_start --auth noauth || exit 1

# A small image the normal clients read, and a big one the slow readers hold open.
head -c 65536 /dev/urandom > "$IT_TMP/small"
head -c $((64 << 20)) /dev/zero > "$IT_TMP/big"
create_image '{"name": "small", "disk_format": "raw", "container_format": "bare"}'
SMALL="$ID"
upload "$SMALL" "$IT_TMP/small"
expect_code "small image uploaded" 204 || exit 1
create_image '{"name": "big", "disk_format": "raw", "container_format": "bare"}'
BIG="$ID"
upload "$BIG" "$IT_TMP/big"
expect_code "big image uploaded" 204 || exit 1

if python3 "$HERE/slow_clients.py" "$INGOT_URL" "$SMALL" "$BIG" --seconds "${SLOW_SECONDS:-60}" \
     --slow "${SLOW_CLIENTS:-200}" --normal "${NORMAL_CLIENTS:-20}" > "$IT_TMP/load.out" 2>&1; then
  pass "normal clients unharmed by slow ones: $(head -1 "$IT_TMP/load.out")"
else
  fail "normal clients unharmed by slow ones" "$(tr '\n' ' ' < "$IT_TMP/load.out" | head -c 1500)"
fi
req GET /healthcheck
expect_code "healthcheck after the load" 200
it_finish
