#!/usr/bin/env bash
# The boot service's southbound listener against nginx (Debian nginx-light, sendfile on) serving the
# same files, in the same run, interleaved run by run:
#   1. MB/s of one 4 GiB file (curl, warm page cache): plain file | file read out of an ISO
#   2. requests/s of one 4 KiB file (wrk -t2 -c32):     plain file | file read out of an ISO
# "Plain": Ingot's [boot] root and nginx's root are the same directory. "Out of an ISO": the
# directory made into an ISO with xorriso, added to Ingot by path and bound to an OS tree (bench/1),
# served from the ISO's extents; nginx serves the extracted tree (the same directory: the ISO holds
# exactly its bytes, which the script checks).
# Both servers get the same number of threads of work: nginx `worker_processes N`, Ingot
# `[server] io_threads = N` (its southbound files are answered on the I/O threads), N =
# BENCH_WORKERS. For the 4 KiB runs the servers' CPU time per request is also reported (utime +
# stime from /proc over the wrk run, nginx's master and workers, all of ingotd's threads): on a
# loaded host it moves much less than requests/s.
#
# Usage: bench/boot.sh [PATH-TO-INGOTD]
# Env:   BENCH_DIR (default /tmp/ingot-bench-boot)  BENCH_BIG_MIB (4096)  BENCH_RUNS (3)
#        BENCH_WRK_DURATION (10s)  BENCH_WORKERS (2)
#        BENCH_SERVER_CPUS / BENCH_CLIENT_CPUS: taskset CPU lists for both servers (the same for
#        each) and for curl/wrk (default: no pinning)
# Prints a Markdown table (also $BENCH_DIR/report.md). Every process is stopped by its PID.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BD="${BENCH_DIR:-/tmp/ingot-bench-boot}"
BIG_MIB="${BENCH_BIG_MIB:-4096}"
RUNS="${BENCH_RUNS:-3}"
WRK_D="${BENCH_WRK_DURATION:-10s}"
WORKERS="${BENCH_WORKERS:-2}"
SPIN=(); CPIN=()
[ -n "${BENCH_SERVER_CPUS:-}" ] && SPIN=(taskset -c "$BENCH_SERVER_CPUS")
[ -n "${BENCH_CLIENT_CPUS:-}" ] && CPIN=(taskset -c "$BENCH_CLIENT_CPUS")
INGOTD="${1:-}"
if [ -z "$INGOTD" ]; then
  for c in "$ROOT/build-int/bin/ingotd" "$ROOT/build/bin/ingotd"; do [ -x "$c" ] && { INGOTD="$c"; break; }; done
fi
[ -x "$INGOTD" ] || { echo "ingotd not found; pass its path" >&2; exit 2; }
for t in nginx wrk curl xorriso jq; do command -v "$t" > /dev/null || { echo "$t is needed" >&2; exit 2; }; done

mkdir -p "$BD"
LOG="$BD/log.txt"; : > "$LOG"
INGOT_PID=""; NGINX_PID=""
log() { echo "$*" | tee -a "$LOG" >&2; }
stop_pid() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null || true
}
cleanup() { [ -n "$INGOT_PID" ] && stop_pid "$INGOT_PID"; [ -n "$NGINX_PID" ] && stop_pid "$NGINX_PID"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
med() { sort -n | awk '{a[NR]=$1} END{if(NR==0){print "n/a"} else if(NR%2){print a[(NR+1)/2]} else {printf "%.1f\n",(a[NR/2]+a[NR/2+1])/2}}'; }

# ----------------------------------------------------------------------------------------- data
SRC="$BD/tree"; LOCAL="$BD/local"
mkdir -p "$SRC/small" "$LOCAL"
if [ ! -s "$SRC/big.bin" ] || [ "$(stat -c %s "$SRC/big.bin")" != $((BIG_MIB*1024*1024)) ]; then
  log "writing $BIG_MIB MiB of random data"
  openssl enc -aes-128-ctr -pass pass:ingot-boot-bench -nosalt -pbkdf2 < /dev/zero 2>/dev/null \
    | head -c $((BIG_MIB*1024*1024)) > "$SRC/big.bin"
  for i in $(seq -w 1 100); do head -c 4096 /dev/urandom > "$SRC/small/f$i"; done
  rm -f "$LOCAL/bench.iso"
fi
if [ ! -s "$LOCAL/bench.iso" ]; then
  log "making the ISO (xorriso -R -iso-level 3)"
  xorriso -as mkisofs -quiet -R -iso-level 3 -o "$LOCAL/bench.iso" "$SRC" 2>> "$LOG" || exit 1
fi

# --------------------------------------------------------------------------------------- servers
DATA="$BD/data"; rm -rf "$DATA"; mkdir -p "$DATA"
cat > "$BD/ingotd.toml" <<EOF
[server]
io_threads = $WORKERS

[boot]
root = "$SRC"
local_dirs = ["$LOCAL"]
EOF
"${SPIN[@]}" "$INGOTD" --listen 127.0.0.1:0 --boot-listen 127.0.0.1:0 --data-dir "$DATA" --auth noauth \
  --config "$BD/ingotd.toml" > "$BD/ingotd.out" 2> "$BD/ingotd.log" < /dev/null &
INGOT_PID=$!
for _ in $(seq 1 300); do
  api=$(grep -m1 '"\?listening' "$BD/ingotd.log" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1)
  boot=$(grep -m1 'event=boot\.serving ' "$BD/ingotd.log" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1)
  [ -n "$api" ] && [ -n "$boot" ] && break
  sleep 0.1
done
[ -n "$boot" ] || { log "ingotd did not start"; tail -5 "$BD/ingotd.log" >&2; exit 1; }
API="http://$api"; BOOT="http://$boot"
for _ in $(seq 1 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/healthcheck")" = 200 ] && break; sleep 0.1; done
curl -sf -X POST -H 'Content-Type: application/json' \
  -d "{\"name\":\"bench.iso\",\"path\":\"$LOCAL/bench.iso\"}" "$API/boot/v1/isos" >> "$LOG" || { log "ISO add failed"; exit 1; }
curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"name":"bench","version":"1","iso":"bench.iso"}' "$API/boot/v1/os" >> "$LOG" || { log "tree add failed"; exit 1; }
log "ingotd pid $INGOT_PID: API $API, boot $BOOT"

NP=$(free_port); ND="$BD/nginx"; mkdir -p "$ND/tmp"
cat > "$ND/nginx.conf" <<EOF
daemon off;
worker_processes $WORKERS;
pid $ND/nginx.pid;
error_log $ND/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  default_type application/octet-stream;
  client_body_temp_path $ND/tmp/body;
  proxy_temp_path $ND/tmp/proxy;
  fastcgi_temp_path $ND/tmp/fastcgi;
  uwsgi_temp_path $ND/tmp/uwsgi;
  scgi_temp_path $ND/tmp/scgi;
  server { listen 127.0.0.1:$NP; root $SRC; }
}
EOF
"${SPIN[@]}" nginx -p "$ND" -e "$ND/error.log" -c "$ND/nginx.conf" < /dev/null >> "$LOG" 2>&1 &
NGINX_PID=$!
NGINX="http://127.0.0.1:$NP"
for _ in $(seq 1 50); do curl -s -o /dev/null "$NGINX/" && break; sleep 0.1; done
log "nginx pid $NGINX_PID at $NGINX ($(nginx -v 2>&1 | cut -d/ -f2))"

# The ISO's file is the tree's file, byte for byte (what "nginx serves the extracted tree" assumes).
for u in "$BOOT/bench/1/small/f001" "$BOOT/bench/1/big.bin"; do
  want="$SRC/${u#$BOOT/bench/1/}"
  curl -s "$u" | cmp -s - "$want" || { log "MISMATCH: $u differs from $want"; exit 1; }
done
# Warm: every byte in the page cache (the ISO and the tree), so the servers are compared, not the disk.
cat "$SRC/big.bin" "$LOCAL/bench.iso" > /dev/null

quiet() { awk '{print $1}' /proc/loadavg; }
# curl_rate URL: MB/s (10^6 bytes) of one download.
curl_rate() {
  "${CPIN[@]}" curl -s -o /dev/null -w '%{size_download} %{time_total}\n' "$1" \
    | awk '{printf "%.1f\n", $1/1e6/$2}'
}
# cpu_ticks PID...: utime + stime of the processes (all their threads), in clock ticks.
cpu_ticks() {
  local t=0 p f
  for p in "$@"; do
    f=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) && t=$((t + f))
  done
  echo "$t"
}
server_pids() {  # server_pids ingot|nginx
  if [ "$1" = ingot ]; then echo "$INGOT_PID"; else echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; fi
}
# wrk_rate URL SERVER KEY: requests/s into $R/KEY, the server's CPU µs per request into $R/KEY-cpu.
wrk_rate() {
  local pids before after out
  pids=$(server_pids "$2")
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  out=$("${CPIN[@]}" wrk -t2 -c32 -d"$WRK_D" -s "$HERE/wrk_report.lua" "$1" 2>&1)
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  echo "$out" | awk '/^WRK_RESULT/{for(i=2;i<=NF;i++){split($i,kv,"="); if(kv[1]=="rps") r=kv[2]; if(kv[1]=="non2xx") x=kv[2]; if(kv[1]=="errors") e=kv[2]}} END{if (x+e>0) print "ERR"; else print r}' >> "$R/$3"
  echo "$out" | awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" '/^WRK_RESULT/{for(i=2;i<=NF;i++){split($i,kv,"="); if(kv[1]=="requests") n=kv[2]}} END{if (n>0) printf "%.1f\n", t*1e6/hz/n; else print "n/a"}' >> "$R/$3-cpu"
}
R="$BD/results"; rm -rf "$R"; mkdir -p "$R"
for run in $(seq 1 "$RUNS"); do
  quiet >> "$R/load"
  log "run $run (load $(quiet))"
  # Who goes first alternates run by run, so neither always meets the other's leftovers.
  if [ $((run % 2)) = 1 ]; then order="ingot nginx"; else order="nginx ingot"; fi
  for who in $order; do
    if [ "$who" = ingot ]; then curl_rate "$BOOT/big.bin" >> "$R/ingot-big-plain"
    else curl_rate "$NGINX/big.bin" >> "$R/nginx-big-plain"; fi
  done
  for who in $order; do
    if [ "$who" = ingot ]; then curl_rate "$BOOT/bench/1/big.bin" >> "$R/ingot-big-iso"
    else curl_rate "$NGINX/big.bin" >> "$R/nginx-big-iso"; fi
  done
  for who in $order; do
    if [ "$who" = ingot ]; then wrk_rate "$BOOT/small/f001" ingot ingot-small-plain
    else wrk_rate "$NGINX/small/f001" nginx nginx-small-plain; fi
  done
  for who in $order; do
    if [ "$who" = ingot ]; then wrk_rate "$BOOT/bench/1/small/f001" ingot ingot-small-iso
    else wrk_rate "$NGINX/small/f001" nginx nginx-small-iso; fi
  done
  for f in "$R"/*; do printf '%s=%s ' "$(basename "$f")" "$(tail -n1 "$f")"; done | tee -a "$LOG" >&2; echo >&2
done

row() {  # row LABEL KEY UNIT
  local i n; i=$(med < "$R/ingot-$2"); n=$(med < "$R/nginx-$2")
  local ratio; ratio=$(awk -v a="$i" -v b="$n" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a"}')
  local verdict; verdict=$(awk -v r="$ratio" 'BEGIN{print (r+0 >= 1.0) ? "MET" : "MISSED"}')
  echo "| $1 | $i | $n | ${ratio}x | >= 1.0x | $verdict |"
}
{
  echo "Load average (1 min) at each run's start: $(paste -sd, "$R/load"); servers: $WORKERS worker(s) each" \
       "(nginx worker_processes, Ingot io_threads)${BENCH_SERVER_CPUS:+, servers on CPUs $BENCH_SERVER_CPUS}${BENCH_CLIENT_CPUS:+, clients on CPUs $BENCH_CLIENT_CPUS}."
  echo
  echo "| measure (median of $RUNS, same run) | Ingot | nginx | Ingot / nginx | target | verdict |"
  echo "|---|---:|---:|---:|---|---|"
  row "${BIG_MIB} MiB file, plain, MB/s (curl)" big-plain
  row "${BIG_MIB} MiB file out of an ISO, MB/s (curl; nginx: extracted tree)" big-iso
  row "4 KiB file, plain, requests/s (wrk -t2 -c32 $WRK_D)" small-plain
  row "4 KiB file out of an ISO, requests/s (wrk; nginx: extracted tree)" small-iso
  echo
  echo "Server CPU per 4 KiB request (µs, median; lower is better): plain Ingot $(med < "$R/ingot-small-plain-cpu")" \
       "/ nginx $(med < "$R/nginx-small-plain-cpu"); out of an ISO Ingot $(med < "$R/ingot-small-iso-cpu")" \
       "/ nginx $(med < "$R/nginx-small-iso-cpu")."
  echo
  echo "Runs (MB/s, req/s or µs): $(for f in "$R"/*; do printf '%s=[%s] ' "$(basename "$f")" "$(paste -sd, "$f")"; done)"
} | tee "$BD/report.md"
