#!/usr/bin/env bash
# Ingot against the systems an operator would otherwise run, measured on this machine in the same run:
# the real OpenStack Glance (../shared/peers/glance, Debian's glance-api, 2 workers, SQLite, file store)
# and nginx (Debian nginx-light, sendfile on) as the ceiling for serving a file, plus `openssl speed` as
# the ceiling for hashing. Prints one table with the figures, the ratios and the targets.
#
# Usage: bench/run.sh [PATH-TO-INGOTD]        (default: build-int/bin/ingotd, else build/bin/ingotd)
# Env:   BENCH_DIR          scratch (default /tmp/ingot-bench): data file, data dirs, logs, results
#        BENCH_SIZE_MIB     image size for upload/download (default 4096)
#        BENCH_RUNS         upload+download runs per server (default 3; the median is reported)
#        BENCH_N_IMAGES     images created sequentially, then listed (default 1000)
#        BENCH_WRK_DURATION (default 10s)   BENCH_WRK_REPEAT (default 3; median)   BENCH_WRK_CONN (default 32)
#        BENCH_SKIP_GLANCE=1  measure Ingot and nginx only (ratios against Glance are then left out)
#        BENCH_SKIP_DATA=1    metadata only (no upload/download)
#        GLANCE_STATE       Glance's state dir (default $BENCH_DIR/glance; wiped and set up fresh)
# Everything listens on 127.0.0.1 on free ports; every process started here is stopped by its PID.
# Raw outputs go to $BENCH_DIR/results/<UTC timestamp>/; the table also goes to report.md there.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PEER="${GLANCE_PEER_DIR:-$(cd "$ROOT/.." && pwd)/shared/peers/glance}"
[ -d "$PEER" ] || PEER=/work/shared/peers/glance

BD="${BENCH_DIR:-/tmp/ingot-bench}"
SIZE_MIB="${BENCH_SIZE_MIB:-4096}"
RUNS="${BENCH_RUNS:-3}"
NIMG="${BENCH_N_IMAGES:-1000}"
WRK_D="${BENCH_WRK_DURATION:-10s}"
WRK_R="${BENCH_WRK_REPEAT:-3}"
WRK_C="${BENCH_WRK_CONN:-32}"
SKIP_GLANCE="${BENCH_SKIP_GLANCE:-0}"
SKIP_DATA="${BENCH_SKIP_DATA:-0}"
export GLANCE_STATE="${GLANCE_STATE:-$BD/glance}"

INGOTD="${1:-}"
if [ -z "$INGOTD" ]; then
  for c in "$ROOT/build-int/bin/ingotd" "$ROOT/build/bin/ingotd"; do [ -x "$c" ] && { INGOTD="$c"; break; }; done
fi
[ -x "$INGOTD" ] || { echo "ingotd not found; pass its path" >&2; exit 2; }

RES="$BD/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RES" "$BD"
LOG="$RES/log.txt"
INGOT_PID=""; NGINX_PID=""; GLANCE_STARTED=0

log() { echo "$*" | tee -a "$LOG" >&2; }
cleanup() {
  [ -n "$INGOT_PID" ] && stop_pid "$INGOT_PID"
  [ -n "$NGINX_PID" ] && stop_pid "$NGINX_PID"
  [ "$GLANCE_STARTED" = 1 ] && "$PEER/stop.sh" >> "$LOG" 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM
stop_pid() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null || true
}
boot_flag() { "$INGOTD" --help 2>&1 | grep -q -- --boot-listen && echo "--boot-listen 127.0.0.1:0"; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
now() { date +%s.%N; }
TCK=$(getconf CLK_TCK)
sysbusy() { awk '$1=="cpu"{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
# busy_cores SECONDS: machine-wide busy cores over a short window (other engineers share this host).
busy_cores() { local a b; a=$(sysbusy); sleep "$1"; b=$(sysbusy); echo "($b - $a) / $TCK / $1" | bc -l | xargs printf '%.2f'; }
# quiet: before a measured phase, wait (at most BENCH_WAIT_QUIET_S, default 30 s) until fewer than
# BENCH_QUIET_CORES (default 0.5) cores are busy for 2 s; prints the load seen last (logged per phase).
quiet() {
  local limit="${BENCH_WAIT_QUIET_S:-30}" t0 b; t0=$(date +%s)
  while :; do
    b=$(busy_cores 2)
    awk -v b="$b" -v q="${BENCH_QUIET_CORES:-0.5}" 'BEGIN{exit !(b < q)}' && break
    [ $(( $(date +%s) - t0 )) -ge "$limit" ] && break
  done
  echo "$b" >> "$RES/load.txt"
  echo "$b"
}
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
median() { sort -g | awk '{a[NR]=$1} END{if(!NR){print "nan"; exit} print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0==0 || a=="nan" || b=="nan") print "nan"; else printf "%.2f", a/b }'; }
verdict() {  # value op target -> MET/MISSED
  awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN{ if (v=="nan") {print "n/a"; exit}
    ok = (op==">=") ? (v+0 >= t+0) : (v+0 < t+0); print ok ? "MET" : "MISSED" }'
}

# ------------------------------------------------------------------------------------------ servers
# start_ingot: a fresh data dir, port 0, noauth, its default logging (the "listening" line is an info
# line, so no quieter level here; INGOT_FLAGS adds flags, e.g. --config FILE).
start_ingot() {
  local data="$BD/ingot-data" port=""
  rm -rf "$data"; mkdir -p "$data"
  # shellcheck disable=SC2086
  # shellcheck disable=SC2046  # the boot listener (newer binaries) on a free port, not 9090
  "$INGOTD" --listen 127.0.0.1:0 --data-dir "$data" --auth noauth ${INGOT_FLAGS:-} $(boot_flag) \
    > "$RES/ingotd.stdout" 2> "$RES/ingotd.log" < /dev/null &
  INGOT_PID=$!
  for _ in $(seq 1 300); do
    port=$(grep -m1 listening "$RES/ingotd.log" 2>/dev/null | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)
    [ -n "$port" ] && break
    kill -0 "$INGOT_PID" 2>/dev/null || { log "ingotd died:"; tail -5 "$RES/ingotd.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$port" ] || { log "ingotd printed no listening line in 30 s"; exit 1; }
  INGOT_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$INGOT_URL/healthcheck")" = 200 ] && {
      log "ingotd pid $INGOT_PID at $INGOT_URL"; return 0; }
    sleep 0.1
  done
  log "ingotd healthcheck failed"; exit 1
}

start_nginx() {
  local d="$BD/nginx" port; port=$(free_port)
  mkdir -p "$d/tmp" "$BD/www"
  cat > "$d/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  default_type application/octet-stream;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    root $BD/www;
  }
}
EOF
  nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" < /dev/null >> "$LOG" 2>&1 &
  NGINX_PID=$!
  NGINX_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 50); do
    curl -s -o /dev/null "$NGINX_URL/" && { log "nginx pid $NGINX_PID at $NGINX_URL"; return 0; }
    sleep 0.1
  done
  log "nginx did not start"; cat "$d/error.log" >&2; exit 1
}

start_glance() {
  "$PEER/stop.sh" >> "$LOG" 2>&1
  rm -rf "$GLANCE_STATE"
  export GLANCE_PORT; GLANCE_PORT=$(free_port)
  local apt=1
  dpkg-query -W -f='${Status}' glance-api 2>/dev/null | grep -q "install ok installed" && apt=0
  [ "$apt" = 1 ] && log "installing glance (setup.sh; takes minutes)"
  SKIP_APT=$((1 - apt)) "$PEER/setup.sh" >> "$LOG" 2>&1 || { log "glance setup.sh failed (see $LOG)"; exit 1; }
  "$PEER/start.sh" >> "$LOG" 2>&1 || { log "glance start.sh failed (see $LOG)"; exit 1; }
  GLANCE_STARTED=1
  GLANCE_URL="http://127.0.0.1:$GLANCE_PORT"
  log "glance at $GLANCE_URL (state $GLANCE_STATE)"
}

# ------------------------------------------------------------------------------------------ measures
create_image() {  # URL name -> id
  curl -s -m 60 -X POST -H 'Content-Type: application/json' \
    -d "{\"name\":\"$2\",\"disk_format\":\"raw\",\"container_format\":\"bare\"}" "$1/v2/images" | jq -r .id
}

# rss_sampler PID OUT: VmRSS (kB) every 0.1 s while the process lives, until killed.
rss_sampler() {
  while kill -0 "$1" 2>/dev/null; do
    awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null >> "$2"
    sleep 0.1
  done
}

# server_ticks LABEL: CPU ticks used so far by that server (ingotd; every process of Glance's group).
server_ticks() {
  case "$1" in
    ingot) cpu_ticks "$INGOT_PID" ;;
    glance) local pg t=0 p; pg=$(cat "$GLANCE_STATE/glance-api.pid" 2>/dev/null)
            for p in $(ps -o pid= -g "$pg" 2>/dev/null); do t=$((t + $(cpu_ticks "$p"))); done; echo "$t" ;;
    *) echo 0 ;;
  esac
}

# updown LABEL URL RUN: create, upload (timed, CPU counted), check checksums, download (timed), delete.
# Appends MiB/s to $RES/LABEL-up.txt / LABEL-down.txt and server CPU-s per GiB to LABEL-upcpu/downcpu.txt.
updown() {
  local label="$1" url="$2" r="$3" id out code secs got c0 c1 ok
  id=$(create_image "$url" "bench-$label-$r")
  sync
  log "$label run $r: load before upload $(quiet) busy cores"
  c0=$(server_ticks "$label")
  out=$(curl -s -m 1800 -X PUT -T "$DATA" -H 'Content-Type: application/octet-stream' -o "$RES/$label-up-$r.body" \
        -w '%{http_code} %{time_total}' "$url/v2/images/$id/file")
  read -r code secs <<< "$out"
  c1=$(server_ticks "$label")
  awk -v d="$((c1 - c0))" -v t="$TCK" -v m="$SIZE_MIB" 'BEGIN{printf "%.2f\n", d/t/(m/1024)}' >> "$RES/$label-upcpu.txt"
  curl -s "$url/v2/images/$id" > "$RES/$label-image-$r.json"
  ok=$(jq -r --arg m "$MD5" --arg s "$SHA512" \
       'if .status=="active" and .checksum==$m and .os_hash_value==$s then "ok" else "MISMATCH \(.status) \(.checksum)" end' \
       "$RES/$label-image-$r.json")
  log "$label upload run $r: http=$code ${secs}s $(awk -v b="$BYTES" -v s="$secs" 'BEGIN{printf "%.1f", b/1048576/s}') MiB/s, server $(tail -1 "$RES/$label-upcpu.txt") CPU-s/GiB $ok"
  if [ "$code" = 204 ] && [ "$ok" = ok ]; then
    awk -v b="$BYTES" -v s="$secs" 'BEGIN{printf "%.1f\n", b/1048576/s}' >> "$RES/$label-up.txt"
  else
    UP_ERRORS="$UP_ERRORS $label:run$r:$code:$ok"
  fi
  # Downloads are measured warm: the stored copy is read once into the page cache first. Ingot writes
  # around the page cache (O_DIRECT) and Glance through it, and nginx's file is the upload's source:
  # warming each compares the servers' download paths, not what their uploads left in the cache.
  local stored="$BD/ingot-data/images/$id"
  [ "$label" = glance ] && stored="$GLANCE_STATE/images/$id"
  cat "$stored" > /dev/null 2>&1 || log "$label run $r: could not warm $stored"
  log "$label run $r: load before download $(quiet) busy cores"
  c0=$(server_ticks "$label")
  out=$(curl -s -m 1800 -o /dev/null -w '%{http_code} %{time_total} %{size_download}' "$url/v2/images/$id/file")
  read -r code secs got <<< "$out"
  c1=$(server_ticks "$label")
  awk -v d="$((c1 - c0))" -v t="$TCK" -v m="$SIZE_MIB" 'BEGIN{printf "%.2f\n", d/t/(m/1024)}' >> "$RES/$label-downcpu.txt"
  log "$label download run $r: http=$code ${secs}s $got bytes $(awk -v b="$got" -v s="$secs" 'BEGIN{printf "%.1f", b/1048576/s}') MiB/s, server $(tail -1 "$RES/$label-downcpu.txt") CPU-s/GiB"
  if [ "$code" = 200 ] && [ "$got" = "$BYTES" ]; then
    awk -v b="$BYTES" -v s="$secs" 'BEGIN{printf "%.1f\n", b/1048576/s}' >> "$RES/$label-down.txt"
  else
    UP_ERRORS="$UP_ERRORS $label:download$r:$code:$got"
  fi
  curl -s -m 120 -o /dev/null -X DELETE "$url/v2/images/$id"
}

# nginx_down RUN: one timed download of the same file from nginx (sendfile).
nginx_down() {
  local r="$1" out code secs got
  log "nginx run $r: load before download $(quiet) busy cores"
  out=$(curl -s -m 1800 -o /dev/null -w '%{http_code} %{time_total} %{size_download}' "$NGINX_URL/data.bin")
  read -r code secs got <<< "$out"
  log "nginx download run $r: http=$code ${secs}s $got bytes $(awk -v b="$got" -v s="$secs" 'BEGIN{printf "%.1f", b/1048576/s}') MiB/s"
  [ "$code" = 200 ] && [ "$got" = "$BYTES" ] && \
    awk -v b="$BYTES" -v s="$secs" 'BEGIN{printf "%.1f\n", b/1048576/s}' >> "$RES/nginx-down.txt"
}

# creates LABEL URL: N sequential creates from one curl (keep-alive), -> creates/s in $RES/LABEL-creates.txt
creates() {
  local label="$1" url="$2" cfg="$RES/$1-create.curlrc" i t0 t1
  : > "$cfg"
  for i in $(seq -w 1 "$NIMG"); do
    cat >> "$cfg" <<EOF
url = "$url/v2/images"
request = "POST"
header = "Content-Type: application/json"
data = "{\"name\":\"bench-meta-$i\",\"disk_format\":\"raw\",\"container_format\":\"bare\",\"bench\":\"yes\"}"
output = "/dev/null"
write-out = "%{http_code} %{time_total}\n"
EOF
    [ "$i" != "$NIMG" ] && echo next >> "$cfg"
  done
  log "$label creates: load before $(quiet) busy cores"
  t0=$(now)
  timeout 900 curl -s -K "$cfg" > "$RES/$label-create-times.txt"
  t1=$(now)
  local ok; ok=$(awk '$1==201' "$RES/$label-create-times.txt" | wc -l)
  echo "$ok $(echo "$t1 - $t0" | bc -l)" | awk '{printf "%.1f %d %.2f\n", $1/$2, $1, $2}' > "$RES/$label-creates.txt"
  log "$label creates: $(cat "$RES/$label-creates.txt") (creates/s, ok, seconds)"
}

# wrk_target LABEL URL: an active image (1 MiB) to GET; its id in $RES/LABEL-target.
wrk_target() {
  local id; id=$(create_image "$2" bench-wrk-target)
  head -c 1048576 /dev/urandom > "$RES/small.bin"
  curl -s -m 60 -o /dev/null -X PUT -T "$RES/small.bin" -H 'Content-Type: application/octet-stream' "$2/v2/images/$id/file"
  echo "$id" > "$RES/$1-target"
}
# wrk_run LABEL URL EP RUN: one wrk run of GET image (EP=image) or GET list?limit=25 (EP=list).
wrk_run() {
  local label="$1" url="$2" ep="$3" r="$4" path
  if [ "$ep" = image ]; then path="/v2/images/$(cat "$RES/$label-target")"; else path="/v2/images?limit=25"; fi
  log "$label wrk $ep run $r: load before $(quiet) busy cores"
  wrk -t2 -c"$WRK_C" -d"$WRK_D" --timeout 5s -s "$HERE/wrk_report.lua" "$url$path" > "$RES/$label-wrk-$ep-$r.txt" 2>&1
  grep WRK_RESULT "$RES/$label-wrk-$ep-$r.txt" | tee -a "$RES/$label-wrk-$ep.raw" >> "$LOG"
}
# wrk_summary LABEL: medians over the runs -> "$RES/LABEL-wrk.txt" lines "EP rps p50 p99 errors".
wrk_summary() {
  local label="$1" ep rps p50 p99 err
  : > "$RES/$label-wrk.txt"
  for ep in image list; do
    [ -s "$RES/$label-wrk-$ep.raw" ] || continue
    rps=$(grep -oE 'rps=[0-9.]+' "$RES/$label-wrk-$ep.raw" | cut -d= -f2 | median)
    p50=$(grep -oE 'p50_ms=[0-9.]+' "$RES/$label-wrk-$ep.raw" | cut -d= -f2 | median)
    p99=$(grep -oE 'p99_ms=[0-9.]+' "$RES/$label-wrk-$ep.raw" | cut -d= -f2 | median)
    err=$(grep -oE '(errors|non2xx)=[0-9]+' "$RES/$label-wrk-$ep.raw" | cut -d= -f2 | awk '{s+=$1} END{print s+0}')
    echo "$ep $rps $p50 $p99 $err" >> "$RES/$label-wrk.txt"
  done
}
wrk_field() { awk -v ep="$2" -v f="$3" '$1==ep {print $f}' "$RES/$1-wrk.txt"; }

# ------------------------------------------------------------------------------------------ run
{
  echo "# bench/run.sh $(date -u +%FT%TZ)"
  echo "# host: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GiB RAM, kernel $(uname -r)"
  echo "# ingotd: $INGOTD (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null))"
  echo "# glance: $(dpkg-query -W -f='${Version}' python3-glance 2>/dev/null)  nginx: $(nginx -v 2>&1 | cut -d/ -f2)  curl: $(curl --version | head -1 | cut -d' ' -f2)"
} | tee -a "$LOG"

# hash ceilings (one core each)
sha_rate() {
  openssl speed -mr -seconds 3 -bytes 1048576 -evp "$1" 2>/dev/null | awk -F: '/^\+F:/{printf "%.1f", $4/1048576}'
}
MD5_RATE=$(sha_rate md5); SHA512_RATE=$(sha_rate sha512)
SLOW_HASH=$(awk -v a="$MD5_RATE" -v b="$SHA512_RATE" 'BEGIN{print (a<b)?a:b}')
log "openssl speed (1 MiB blocks, one core): md5 $MD5_RATE MiB/s, sha512 $SHA512_RATE MiB/s"

BYTES=$((SIZE_MIB * 1048576))
DATA="$BD/data-${SIZE_MIB}m.bin"
if [ "$SKIP_DATA" != 1 ]; then
  if [ ! -s "$DATA" ] || [ "$(stat -c %s "$DATA")" != "$BYTES" ]; then
    log "generating $DATA (AES-CTR keystream, incompressible)"
    openssl enc -aes-128-ctr -pass pass:ingot-bench -nosalt -pbkdf2 < /dev/zero 2>/dev/null | head -c "$BYTES" > "$DATA"
    rm -f "$DATA.md5" "$DATA.sha512"
  fi
  [ -s "$DATA.md5" ] || md5sum < "$DATA" | cut -d' ' -f1 > "$DATA.md5"
  [ -s "$DATA.sha512" ] || sha512sum < "$DATA" | cut -d' ' -f1 > "$DATA.sha512"
  MD5=$(cat "$DATA.md5"); SHA512=$(cat "$DATA.sha512")
  mkdir -p "$BD/www"; ln -f "$DATA" "$BD/www/data.bin" 2>/dev/null || cp "$DATA" "$BD/www/data.bin"
fi

DATA_SRC=/dev/zero; [ -s "${DATA:-}" ] && DATA_SRC="$DATA"   # incompressible when we have it
# durable-write ceiling of the disk under $BD (Ingot fsyncs before an image is active; Glance does not)
mkdir -p "$BD"
DISK_RATE=$( { dd if="${DATA_SRC}" of="$BD/dd.tmp" bs=1M count=1024 conv=fdatasync 2>&1 >/dev/null | tail -1 \
  | awk '{for(i=1;i<=NF;i++) if ($i=="s,") {printf "%.1f", $1/$(i-1)/1048576}}'; } )
rm -f "$BD/dd.tmp"; DISK_RATE=${DISK_RATE:-nan}
log "durable sequential write (dd 1 GiB conv=fdatasync): $DISK_RATE MiB/s"
start_ingot
[ "$SKIP_GLANCE" = 1 ] || start_glance
[ "$SKIP_DATA" = 1 ] || start_nginx
UP_ERRORS=""

RSS_UP="nan"; RSS_END="nan"
# Runs are interleaved (Ingot, Glance, nginx, then again), so that the load other users put on this
# shared host falls on all of them alike; medians are reported.
if [ "$SKIP_DATA" != 1 ]; then
  : > "$RES/ingot-rss.txt"
  rss_sampler "$INGOT_PID" "$RES/ingot-rss.txt" & SAMPLER=$!
  for r in $(seq 1 "$RUNS"); do
    updown ingot "$INGOT_URL" "$r"
    [ "$SKIP_GLANCE" = 1 ] || updown glance "$GLANCE_URL" "$r"
    nginx_down "$r"
  done
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null
  RSS_UP=$(awk '/^VmHWM:/{printf "%.1f", $2/1024}' "/proc/$INGOT_PID/status")
  RSS_SAMPLED=$(sort -n "$RES/ingot-rss.txt" | tail -1 | awk '{printf "%.1f", $1/1024}')
  log "ingotd peak RSS after uploads/downloads: VmHWM $RSS_UP MiB (max sampled VmRSS $RSS_SAMPLED MiB)"
fi

creates ingot "$INGOT_URL"
[ "$SKIP_GLANCE" = 1 ] || creates glance "$GLANCE_URL"
wrk_target ingot "$INGOT_URL"
[ "$SKIP_GLANCE" = 1 ] || wrk_target glance "$GLANCE_URL"
for r in $(seq 1 "$WRK_R"); do
  for ep in image list; do
    wrk_run ingot "$INGOT_URL" "$ep" "$r"
    [ "$SKIP_GLANCE" = 1 ] || wrk_run glance "$GLANCE_URL" "$ep" "$r"
  done
done
wrk_summary ingot
[ "$SKIP_GLANCE" = 1 ] || wrk_summary glance
RSS_END=$(awk '/^VmHWM:/{printf "%.1f", $2/1024}' "/proc/$INGOT_PID/status")

# ------------------------------------------------------------------------------------------ table
med() { [ -s "$RES/$1.txt" ] && median < "$RES/$1.txt" || echo nan; }
I_UP=$(med ingot-up); I_DOWN=$(med ingot-down); G_UP=$(med glance-up); G_DOWN=$(med glance-down); N_DOWN=$(med nginx-down)
I_UPCPU=$(med ingot-upcpu); G_UPCPU=$(med glance-upcpu); I_DNCPU=$(med ingot-downcpu); G_DNCPU=$(med glance-downcpu)
I_CR=$(awk '{print $1}' "$RES/ingot-creates.txt" 2>/dev/null); I_CR=${I_CR:-nan}
G_CR=$(awk '{print $1}' "$RES/glance-creates.txt" 2>/dev/null); G_CR=${G_CR:-nan}
gw() { local v; v=$(wrk_field "$1" "$2" "$3" 2>/dev/null); echo "${v:-nan}"; }
I_IMG_RPS=$(gw ingot image 2); I_IMG_P99=$(gw ingot image 4); I_IMG_P50=$(gw ingot image 3); I_IMG_ERR=$(gw ingot image 5)
I_LST_RPS=$(gw ingot list 2);  I_LST_P99=$(gw ingot list 4);  I_LST_P50=$(gw ingot list 3);  I_LST_ERR=$(gw ingot list 5)
G_IMG_RPS=$(gw glance image 2); G_IMG_P99=$(gw glance image 4); G_IMG_P50=$(gw glance image 3)
G_LST_RPS=$(gw glance list 2);  G_LST_P99=$(gw glance list 4);  G_LST_P50=$(gw glance list 3)

R_UP_G=$(ratio "$I_UP" "$G_UP"); R_UP_H=$(ratio "$I_UP" "$SLOW_HASH"); R_DN_N=$(ratio "$I_DOWN" "$N_DOWN")
R_DN_G=$(ratio "$I_DOWN" "$G_DOWN")
R_IMG=$(ratio "$I_IMG_RPS" "$G_IMG_RPS"); R_LST=$(ratio "$I_LST_RPS" "$G_LST_RPS"); R_CR=$(ratio "$I_CR" "$G_CR")
P99_MAX=$(awk -v a="$I_IMG_P99" -v b="$I_LST_P99" 'BEGIN{ if (a=="nan"||b=="nan") print "nan"; else print (a>b)?a:b }')

{
echo
echo "## Ingot vs Glance vs nginx — $(date -u +%FT%TZ), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM"
echo
echo "| measure | Ingot | Glance | nginx / ceiling | ratio | target | verdict |"
echo "|---|---:|---:|---:|---:|---|---|"
if [ "$SKIP_DATA" != 1 ]; then
echo "| upload ${SIZE_MIB} MiB, MiB/s (median of $RUNS) | $I_UP | $G_UP | slower hash $SLOW_HASH | $R_UP_G x Glance | >= 2x Glance | $(verdict "$R_UP_G" ">=" 2) |"
echo "| upload vs slower hash (md5 $MD5_RATE, sha512 $SHA512_RATE MiB/s) | $I_UP | | $SLOW_HASH | $R_UP_H | >= 0.80 | $(verdict "$R_UP_H" ">=" 0.8) |"
echo "| upload vs durable disk write (dd conv=fdatasync) | $I_UP | | $DISK_RATE | $(ratio "$I_UP" "$DISK_RATE") | (context) | |"
echo "| download ${SIZE_MIB} MiB, MiB/s (median of $RUNS) | $I_DOWN | $G_DOWN | nginx $N_DOWN | $R_DN_N x nginx ($R_DN_G x Glance) | >= 1.0x nginx | $(verdict "$R_DN_N" ">=" 1.0) |"
echo "| ingotd peak RSS during upload (VmHWM), MiB | $RSS_UP | | | | < 100 | $(verdict "$RSS_UP" "<" 100) |"
echo "| server CPU-s per GiB uploaded (median) | $I_UPCPU | $G_UPCPU | md5+sha512 $(awk -v a="$MD5_RATE" -v b="$SHA512_RATE" 'BEGIN{printf "%.2f", 1024/a+1024/b}') | | | |"
echo "| server CPU-s per GiB downloaded (median) | $I_DNCPU | $G_DNCPU | | | | |"
fi
echo "| GET /v2/images/{id}, req/s (wrk -t2 -c$WRK_C $WRK_D, median of $WRK_R) | $I_IMG_RPS | $G_IMG_RPS | | $R_IMG x Glance | >= 50x | $(verdict "$R_IMG" ">=" 50) |"
echo "| GET /v2/images/{id}, p50 / p99 ms | $I_IMG_P50 / $I_IMG_P99 | $G_IMG_P50 / $G_IMG_P99 | | | p99 < 10 ms | $(verdict "$I_IMG_P99" "<" 10) |"
echo "| GET /v2/images?limit=25 over $NIMG images, req/s | $I_LST_RPS | $G_LST_RPS | | $R_LST x Glance | >= 50x | $(verdict "$R_LST" ">=" 50) |"
echo "| GET /v2/images?limit=25, p50 / p99 ms | $I_LST_P50 / $I_LST_P99 | $G_LST_P50 / $G_LST_P99 | | | p99 < 10 ms | $(verdict "$I_LST_P99" "<" 10) |"
echo "| $NIMG sequential creates, creates/s | $I_CR | $G_CR | | $R_CR x Glance | >= 20x | $(verdict "$R_CR" ">=" 20) |"
echo "| ingotd peak RSS at the end (VmHWM), MiB | $RSS_END | | | | | |"
echo
echo "Host load (busy cores, other engineers' work) measured just before each phase: $(sort -g "$RES/load.txt" 2>/dev/null | awk '{a[NR]=$1} END{if(NR) printf "min %.2f, median %.2f, max %.2f over %d phases", a[1], a[int((NR+1)/2)], a[NR], NR}')."
echo "Errors: wrk socket errors + non-2xx on Ingot: image ${I_IMG_ERR}, list ${I_LST_ERR}; upload/download problems:${UP_ERRORS:- none}."
echo "Raw outputs: $RES"
} | tee "$RES/report.md"
