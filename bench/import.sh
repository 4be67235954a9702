#!/usr/bin/env bash
# glance-direct import with conversion to raw, end to end: Ingot against the real OpenStack Glance
# (../shared/peers/glance: Debian's glance-api 25.x, 2 workers, SQLite, file store) with its
# `image_conversion` import plugin (output_format = raw), same machine, same run, interleaved.
#
# One run = create the image (disk_format qcow2) → PUT /stage the qcow2 → POST /import glance-direct →
# poll until `active`. The clock runs from the create to `active`. The source is a qcow2 of 4 GiB
# virtual size holding 2 GiB of random data in 64 MiB runs (every other 64 MiB), so half the virtual
# disk is holes. Each run checks that the stored image is `raw` and that its MD5 is the MD5 of
# `qemu-img convert -O raw` of the source: a fast wrong answer is not a result.
#
# Usage: bench/import.sh [PATH-TO-INGOTD]     (default build/bin/ingotd)
# Env:   BENCH_DIR (default /tmp/ingot-bench-import)  BENCH_RUNS (default 3; medians)
#        BENCH_VIRTUAL_GIB (default 4)  BENCH_SKIP_GLANCE=1 (Ingot only)
# Prints a table (also $BENCH_DIR/report.md): wall seconds (stage, import, total), the server's CPU
# seconds, Ingot's peak RSS, and the ratio Glance/Ingot of the total.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PEER="${GLANCE_PEER_DIR:-$(cd "$ROOT/.." && pwd)/shared/peers/glance}"
[ -d "$PEER" ] || PEER=/work/shared/peers/glance
BD="${BENCH_DIR:-/tmp/ingot-bench-import}"
RUNS="${BENCH_RUNS:-3}"
VGIB="${BENCH_VIRTUAL_GIB:-4}"
SKIP_GLANCE="${BENCH_SKIP_GLANCE:-0}"
INGOTD="${1:-$ROOT/build/bin/ingotd}"
[ -x "$INGOTD" ] || { echo "ingotd not found at $INGOTD; pass its path" >&2; exit 2; }
export GLANCE_STATE="$BD/glance"
mkdir -p "$BD"
INGOT_PID=""; GLANCE_STARTED=0
TCK=$(getconf CLK_TCK)

cleanup() {
  if [ -n "$INGOT_PID" ]; then kill -TERM "$INGOT_PID" 2>/dev/null; wait "$INGOT_PID" 2>/dev/null; fi
  [ "$GLANCE_STARTED" = 1 ] && "$PEER/stop.sh" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM
boot_flag() { "$INGOTD" --help 2>&1 | grep -q -- --boot-listen && echo "--boot-listen 127.0.0.1:0"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
# CPU ticks of a process and its children that were waited for (Glance: its whole process group).
ticks_pid() { awk '{print $14+$15+$16+$17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
ticks_group() {
  local sum=0 p
  for p in $(pgrep -g "$1"); do sum=$((sum + $(ticks_pid "$p"))); done
  echo "$sum"
}

# --- the source image and the expected result --------------------------------------------------
SRC="$BD/src.qcow2"
if [ ! -s "$SRC" ] || [ ! -s "$BD/expected.md5" ]; then
  echo "making a ${VGIB} GiB-virtual qcow2 with $((VGIB * 8)) runs of 64 MiB random data…" >&2
  rm -f "$BD/src.raw"
  truncate -s "${VGIB}G" "$BD/src.raw"
  for ((i = 0; i < VGIB * 16; i += 2)); do
    openssl rand $((64 << 20)) | dd of="$BD/src.raw" bs=1M seek=$((i * 64)) conv=notrunc status=none
  done
  qemu-img convert -f raw -O qcow2 "$BD/src.raw" "$SRC"
  qemu-img convert -f qcow2 -O raw "$SRC" "$BD/expected.raw"
  md5sum "$BD/expected.raw" | cut -d' ' -f1 > "$BD/expected.md5"
  rm -f "$BD/src.raw" "$BD/expected.raw"
fi
EXPECTED_MD5="$(cat "$BD/expected.md5")"
SRC_BYTES=$(stat -c %s "$SRC")
echo "source: $SRC ($SRC_BYTES bytes), expected raw MD5 $EXPECTED_MD5" >&2

# --- servers -------------------------------------------------------------------------------------
start_ingot() {
  local data="$BD/ingot-data" port
  rm -rf "$data"; mkdir -p "$data"
  port=$(free_port)
  cat > "$BD/ingotd.toml" <<EOF
[import]
methods = ["glance-direct"]
convert_to = "raw"
EOF
  # shellcheck disable=SC2046  # the boot listener (newer binaries) on a free port, not 9090
  "$INGOTD" --config "$BD/ingotd.toml" --listen "127.0.0.1:$port" --data-dir "$data" --auth noauth $(boot_flag) \
    > "$BD/ingotd.stdout" 2> "$BD/ingotd.log" < /dev/null &
  INGOT_PID=$!
  INGOT_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "$INGOT_URL/healthcheck" && return 0
    kill -0 "$INGOT_PID" 2>/dev/null || { tail -5 "$BD/ingotd.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "ingotd did not answer" >&2; exit 1
}
start_glance() {
  rm -rf "$GLANCE_STATE"
  GLANCE_PORT=$(free_port)
  export GLANCE_PORT
  "$PEER/setup.sh" > "$BD/glance-setup.log" 2>&1 || { tail "$BD/glance-setup.log" >&2; exit 1; }
  # Glance's conversion plugin, as its docs configure it.
  cat >> "$GLANCE_STATE/etc/glance-api.conf" <<'EOF'

[image_import_opts]
image_import_plugins = ['image_conversion']

[image_conversion]
output_format = raw
EOF
  GLANCE_AUTH=headers "$PEER/start.sh" > "$BD/glance-start.log" 2>&1 || { cat "$BD/glance-start.log" >&2; exit 1; }
  GLANCE_STARTED=1
  GLANCE_URL="http://127.0.0.1:$GLANCE_PORT"
  GLANCE_PGID=$(cat "$GLANCE_STATE/glance-api.pid")
}

# run_one NAME URL → "stage_s import_s total_s cpu_s"; fails loudly on a wrong result.
run_one() {
  local name=$1 url=$2 id t0 t1 t2 c0 c1 st body md5 fmt
  if [ "$name" = ingot ]; then c0=$(ticks_pid "$INGOT_PID"); else c0=$(ticks_group "$GLANCE_PGID"); fi
  t0=$(now)
  id=$(curl -sf -X POST "$url/v2/images" -H 'Content-Type: application/json' \
        -d '{"name":"bench-import","disk_format":"qcow2","container_format":"bare"}' | jq -r .id)
  [ -n "$id" ] && [ "$id" != null ] || { echo "$name: create failed" >&2; return 1; }
  curl -sf -X PUT "$url/v2/images/$id/stage" -H 'Content-Type: application/octet-stream' \
       -T "$SRC" -o /dev/null || { echo "$name: stage failed" >&2; return 1; }
  t1=$(now)
  curl -sf -X POST "$url/v2/images/$id/import" -H 'Content-Type: application/json' \
       -d '{"method":{"name":"glance-direct"}}' -o /dev/null || { echo "$name: import refused" >&2; return 1; }
  for _ in $(seq 1 36000); do
    body=$(curl -sf "$url/v2/images/$id") || { echo "$name: show failed" >&2; return 1; }
    st=$(jq -r .status <<< "$body")
    [ "$st" = active ] && break
    [ "$st" = queued ] && [ "$(jq -r '.os_glance_failed_import // ""' <<< "$body")" != "" ] && {
      echo "$name: import failed: $body" >&2; return 1; }
    sleep 0.05
  done
  t2=$(now)
  if [ "$name" = ingot ]; then c1=$(ticks_pid "$INGOT_PID"); else c1=$(ticks_group "$GLANCE_PGID"); fi
  md5=$(jq -r .checksum <<< "$body"); fmt=$(jq -r .disk_format <<< "$body")
  if [ "$st" != active ] || [ "$fmt" != raw ] || [ "$md5" != "$EXPECTED_MD5" ]; then
    echo "$name: WRONG RESULT status=$st disk_format=$fmt checksum=$md5 (expected raw $EXPECTED_MD5)" >&2
    return 1
  fi
  curl -sf -X DELETE "$url/v2/images/$id" -o /dev/null
  echo "$t0 $t1 $t2 $c0 $c1" | awk -v tck="$TCK" '{printf "%.2f %.2f %.2f %.2f\n", $2-$1, $3-$2, $3-$1, ($5-$4)/tck}'
}

median() { sort -n | awk '{a[NR]=$1} END{if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

start_ingot
[ "$SKIP_GLANCE" = 1 ] || start_glance
: > "$BD/ingot.runs"; : > "$BD/glance.runs"
for r in $(seq 1 "$RUNS"); do
  sync
  out=$(run_one ingot "$INGOT_URL") || exit 1
  echo "$out" >> "$BD/ingot.runs"; echo "run $r ingot  (stage import total cpu): $out" >&2
  if [ "$SKIP_GLANCE" != 1 ]; then
    sync
    out=$(run_one glance "$GLANCE_URL") || exit 1
    echo "$out" >> "$BD/glance.runs"; echo "run $r glance (stage import total cpu): $out" >&2
  fi
done
RSS_KIB=$(awk '/VmHWM/{print $2}' "/proc/$INGOT_PID/status")

col() { awk -v c="$1" '{print $c}' "$2" | median; }
{
  echo "| glance-direct import, ${VGIB} GiB-virtual qcow2 → raw (median of $RUNS) | Ingot | Glance | Glance / Ingot |"
  echo "|---|---:|---:|---:|"
  for c in 1:stage 2:import 3:total 4:cpu; do
    i=${c%%:*}; label=${c#*:}
    a=$(col "$i" "$BD/ingot.runs")
    if [ "$SKIP_GLANCE" = 1 ]; then b=nan; ratio=nan; else
      b=$(col "$i" "$BD/glance.runs"); ratio=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", b/a}'); fi
    case $label in
      stage) echo "| stage ${SRC_BYTES} bytes, s | $a | $b | $ratio |" ;;
      import) echo "| import (convert, hash, store) until active, s | $a | $b | $ratio |" ;;
      total) echo "| **end to end**, s | $a | $b | **$ratio** |" ;;
      cpu) echo "| server CPU-s | $a | $b | $ratio |" ;;
    esac
  done
  echo "| Ingot peak RSS, MiB | $(awk -v k="$RSS_KIB" 'BEGIN{printf "%.1f", k/1024}') | | |"
} | tee "$BD/report.md"
