#!/usr/bin/env bash
# Upload and download of one big image through OpenStack Swift: Ingot's swift store against the real
# OpenStack Glance (../shared/peers/glance: Debian's glance-api 25.x, 2 workers) with glance_store's
# swift backend, both on the same Swift (scripts/testbed.sh: Swift 2.30 from Debian, tempauth, SLO,
# proxy with 2 workers), same machine, same run, interleaved Ingot / Glance.
#
# One run = PUT /v2/images/{id}/file of the image with curl (Content-Length known, as the ingot CLI and
# curl send it), then GET /v2/images/{id}/file with curl. The clock runs around each curl. Ingot
# runs with its image cache off, as the peer Glance has none: both downloads read Swift. Each run
# checks the result: the image's recorded checksum and the MD5 of the downloaded bytes (computed on
# the fly by the client, the same way for both) must equal the source's, and the object must be in
# Swift.
#
# Both sides use their defaults: Glance stores an image of known size below
# swift_store_large_object_size (5 GiB) as one object written by one PUT; Ingot writes 64 MiB
# segments, three at a time, and a Static Large Object manifest (it streams and does not trust the
# declared size for the layout).
#
# Usage: bench/swift.sh [PATH-TO-INGOTD]     (default build/bin/ingotd)
# Env:   BENCH_DIR (default /tmp/ingot-bench-swift)  BENCH_RUNS (default 2; medians)
#        BENCH_GIB (default 4)  BENCH_SKIP_GLANCE=1 (Ingot only)
#        BENCH_DOWNLOAD_TO (default /dev/shm/ingot-bench-swift.down): where downloads land
#        BENCH_DROP_CACHES (default 1 as root): drop the page cache before each download, so both
#        sides read the object from Swift's disk (as a download some time after the upload does)
# Prints a table (also $BENCH_DIR/report.md): MiB/s up and down per side, the ratios, Ingot's peak RSS.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PEER="${GLANCE_PEER_DIR:-$(cd "$ROOT/.." && pwd)/shared/peers/glance}"
[ -d "$PEER" ] || PEER=/work/shared/peers/glance
BD="${BENCH_DIR:-/tmp/ingot-bench-swift}"
RUNS="${BENCH_RUNS:-2}"
GIB="${BENCH_GIB:-4}"
SKIP_GLANCE="${BENCH_SKIP_GLANCE:-0}"
DROP_CACHES="${BENCH_DROP_CACHES:-$([ "$(id -u)" = 0 ] && echo 1 || echo 0)}"
DOWN="${BENCH_DOWNLOAD_TO:-/dev/shm/ingot-bench-swift.down}"
INGOTD="${1:-$ROOT/build/bin/ingotd}"
[ -x "$INGOTD" ] || { echo "ingotd not found at $INGOTD; pass its path" >&2; exit 2; }
export GLANCE_STATE="$BD/glance"
export TESTBED_DIR="$BD/testbed"
mkdir -p "$BD"
INGOT_PID=""; GLANCE_STARTED=0; TESTBED_STARTED=0

cleanup() {
  if [ -n "$INGOT_PID" ]; then kill -TERM "$INGOT_PID" 2>/dev/null; wait "$INGOT_PID" 2>/dev/null; fi
  [ "$GLANCE_STARTED" = 1 ] && "$PEER/stop.sh" >/dev/null 2>&1
  [ "$TESTBED_STARTED" = 1 ] && "$ROOT/scripts/testbed.sh" down >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM
boot_flag() { "$INGOTD" --help 2>&1 | grep -q -- --boot-listen && echo "--boot-listen 127.0.0.1:0"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# --- the image -------------------------------------------------------------------------------------
SRC="$BD/image.raw"
BYTES=$((GIB << 30))
if [ ! -s "$SRC" ] || [ "$(stat -c %s "$SRC")" != "$BYTES" ] || [ ! -s "$BD/image.md5" ]; then
  echo "making a $GIB GiB image of random bytes…" >&2
  openssl enc -aes-128-ctr -pass pass:ingot-bench-swift -nosalt -pbkdf2 < /dev/zero 2>/dev/null \
    | head -c "$BYTES" > "$SRC"
  md5sum < "$SRC" | cut -d' ' -f1 > "$BD/image.md5"
fi
MD5="$(cat "$BD/image.md5")"

# --- servers ---------------------------------------------------------------------------------------
"$ROOT/scripts/testbed.sh" down >/dev/null 2>&1
"$ROOT/scripts/testbed.sh" up swift > "$BD/testbed.env" 2> "$BD/testbed.log" || { cat "$BD/testbed.log" >&2; exit 1; }
TESTBED_STARTED=1
# shellcheck disable=SC1091
. "$BD/testbed.env"

start_ingot() {
  local data="$BD/ingot-data" port
  rm -rf "$data"; mkdir -p "$data"
  port=$(free_port)
  cat > "$BD/ingotd.toml" <<EOF
[[stores]]
name = "swift"
driver = "swift"
swift_store_auth_address = "$SWIFT_AUTH_URL"
swift_store_user = "$SWIFT_USER"
swift_store_key = "$SWIFT_KEY"
swift_store_container = "ingot"
swift_store_create_container_on_put = true
# Like the peer Glance (no cache middleware), every download reads Swift.
[cache]
enabled = false
EOF
  # shellcheck disable=SC2046
  "$INGOTD" --config "$BD/ingotd.toml" --listen "127.0.0.1:$port" --data-dir "$data" --auth noauth $(boot_flag) \
    > "$BD/ingotd.stdout" 2> "$BD/ingotd.log" < /dev/null &
  INGOT_PID=$!
  INGOT_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -s -o /dev/null -m 2 "$INGOT_URL/healthcheck" && return 0
    sleep 0.1
  done
  echo "ingotd did not answer" >&2; tail "$BD/ingotd.log" >&2; exit 1
}

start_glance() {
  rm -rf "$GLANCE_STATE"
  GLANCE_PORT=$(free_port)
  export GLANCE_PORT
  "$PEER/setup.sh" > "$BD/glance-setup.log" 2>&1 || { tail "$BD/glance-setup.log" >&2; exit 1; }
  local conf="$GLANCE_STATE/etc/glance-api.conf"
  # glance_store's swift driver as its documentation configures it (single tenant, tempauth v1),
  # made the default backend; its own defaults for everything else.
  sed -i -e 's/^enabled_backends = .*/&, swift:swift/' -e 's/^default_backend = fs$/default_backend = swift/' "$conf"
  cat >> "$conf" <<EOF

[swift]
store_description = "Swift"
swift_store_auth_version = 1
swift_store_auth_address = $SWIFT_AUTH_URL
swift_store_user = $SWIFT_USER
swift_store_key = $SWIFT_KEY
swift_store_container = glance
swift_store_create_container_on_put = True
EOF
  "$PEER/start.sh" > "$BD/glance-start.log" 2>&1 || { cat "$BD/glance-start.log" >&2; exit 1; }
  GLANCE_STARTED=1
  GLANCE_URL="http://127.0.0.1:$GLANCE_PORT"
}

# run_one NAME URL CONTAINER -> "up_s down_s"; fails loudly on a wrong result.
run_one() {
  local name="$1" url="$2" container="$3" id t0 t1 t2 code sum up
  id=$(curl -s -X POST "$url/v2/images" -H 'Content-Type: application/json' \
        -d '{"name":"bench-swift","disk_format":"raw","container_format":"bare"}' | jq -r .id)
  [ -n "$id" ] && [ "$id" != null ] || { echo "$name: create failed" >&2; return 1; }
  t0=$(now)
  code=$(curl -s -o "$BD/put.out" -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
         -T "$SRC" "$url/v2/images/$id/file")
  t1=$(now)
  up=$(echo "$t1 - $t0" | bc -l)
  [ "$code" = 204 ] || { echo "$name: upload answered $code: $(head -c 300 "$BD/put.out")" >&2; return 1; }
  [ "$(curl -s "$url/v2/images/$id" | jq -r .checksum)" = "$MD5" ] || { echo "$name: wrong checksum" >&2; return 1; }
  swift list "$container" --prefix "$id" 2>/dev/null | grep -q . || { echo "$name: nothing in Swift" >&2; return 1; }
  # Both read the object back from Swift's disk, not from whatever of it the page cache kept.
  if [ "$DROP_CACHES" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
  # Into memory (tmpfs): a checksum on the fly would be the slowest process of the pipe (one
  # core's MD5, ~350 MiB/s here) and cap both sides alike; it runs after the clock stops.
  t1=$(now)
  curl -s -o "$DOWN" "$url/v2/images/$id/file"
  t2=$(now)
  sum=$(md5sum < "$DOWN" | cut -d' ' -f1)
  rm -f "$DOWN"
  [ "$sum" = "$MD5" ] || { echo "$name: the download is not the image ($sum)" >&2; return 1; }
  curl -s -o /dev/null -X DELETE "$url/v2/images/$id"
  echo "$up $(echo "$t2 - $t1" | bc -l)"
}

start_ingot
[ "$SKIP_GLANCE" = 1 ] || start_glance
declare -a IU ID GU GD
for ((r = 1; r <= RUNS; r++)); do
  echo "run $r/$RUNS: ingot…" >&2
  read -r u d < <(run_one ingot "$INGOT_URL" ingot) || exit 1
  IU+=("$u"); ID+=("$d")
  if [ "$SKIP_GLANCE" != 1 ]; then
    echo "run $r/$RUNS: glance…" >&2
    read -r u d < <(run_one glance "$GLANCE_URL" glance) || exit 1
    GU+=("$u"); GD+=("$d")
  fi
done
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$INGOT_PID/status")
# The ceiling every upload meets: Swift's one device writes (and fsyncs) no faster than this disk.
DISK_T0=$(now)
dd if="$SRC" of="$BD/disk-ceiling" bs=4M conv=fsync status=none
DISK_MIBS=$(echo "scale=1; $GIB * 1024 / ($(now) - $DISK_T0)" | bc -l)
rm -f "$BD/disk-ceiling"
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mibs() { echo "scale=1; $GIB * 1024 / $1" | bc -l; }
iu=$(median "${IU[@]}"); idl=$(median "${ID[@]}")
{
  echo "| $GIB GiB image through Swift (median of $RUNS) | upload MiB/s | download MiB/s |"
  echo "|---|---|---|"
  echo "| Ingot (swift store, 64 MiB SLO segments x3 in parallel) | $(mibs "$iu") | $(mibs "$idl") |"
  if [ "$SKIP_GLANCE" != 1 ]; then
    gu=$(median "${GU[@]}"); gd=$(median "${GD[@]}")
    echo "| Glance 25 (glance_store swift, defaults) | $(mibs "$gu") | $(mibs "$gd") |"
    echo "| **Ingot / Glance** | **$(echo "scale=2; $gu / $iu" | bc -l)x** | **$(echo "scale=2; $gd / $idl" | bc -l)x** |"
  fi
  echo
  echo "The disk under Swift, the same bytes written with dd conv=fsync: $DISK_MIBS MiB/s (Ingot's upload: $(echo "scale=0; 100 * $GIB * 1024 / $iu / $DISK_MIBS" | bc -l) % of it)."
  echo "Runs (s, up/down): Ingot ${IU[*]} / ${ID[*]}${GU:+; Glance ${GU[*]} / ${GD[*]}}. Ingot peak RSS $((RSS_KB / 1024)) MiB."
} | tee "$BD/report.md"
