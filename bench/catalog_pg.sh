#!/usr/bin/env bash
# The catalog on PostgreSQL against the embedded SQLite one, measured in the same run: two ingotd, one
# per engine, each holding the same 10,000 images (3 tags and 4 properties each), driven by wrk with
# GET /v2/images/{id} and GET /v2/images?limit=25, interleaved run by run (SQLite, PostgreSQL, SQLite,
# ...), medians of the runs. PostgreSQL 15 is a throw-away server on 127.0.0.1 from tests/lib/postgres.sh
# (fsync=off: the reads measured here never wait on it). Target: PostgreSQL list p99 < 10 ms.
#
#   bench/catalog_pg.sh [INGOTD]        # BENCH_IMAGES=10000 BENCH_WRK_DURATION=10s BENCH_WRK_REPEAT=3
#                                       # BENCH_WRK_CONNS="32 4"
# Two client loads: 32 connections (throughput; in a closed loop p99 is then mostly queueing, about
# 32 / rate) and 4 (latency).
# Prints a Markdown table for bench/RESULTS.md; raw wrk output is kept under $BENCH_DIR.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
. "$ROOT/tests/lib/postgres.sh"

INGOTD="${1:-$ROOT/build/bin/ingotd}"
[ -x "$INGOTD" ] || { echo "ingotd not found: $INGOTD" >&2; exit 2; }
N="${BENCH_IMAGES:-10000}"
WRK_D="${BENCH_WRK_DURATION:-10s}"
WRK_R="${BENCH_WRK_REPEAT:-3}"
WRK_CONNS="${BENCH_WRK_CONNS:-32 4}"
BD="${BENCH_DIR:-$(mktemp -d /tmp/ingot-bench-catalog-pg.XXXXXX)}"
mkdir -p "$BD"
# The server runs as `postgres` when we are root, so its directory is not inside a private one.
PGDIR="$(mktemp -d /tmp/ingot-bench-pg.XXXXXX)"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  pg_stop "$PGDIR" && rm -rf "$PGDIR"
}
trap cleanup EXIT
log() { printf '# %s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
median() { sort -g | awk '{a[NR]=$1} END{if(!NR){print "nan"; exit} print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

DSN="$(pg_start "$PGDIR")" || { echo "PostgreSQL did not start (see $PGDIR)" >&2; exit 1; }
printf '[catalog]\ndriver = "postgres"\ndsn = "%s"\n' "$DSN" > "$BD/pg.toml"

# start LABEL [flags]: ingotd on a free port; sets URL_<LABEL>.
start() {
  local label="$1"; shift
  "$INGOTD" --listen 127.0.0.1:0 --boot-listen "" --data-dir "$BD/$label-data" "$@" \
    > "$BD/$label.out" 2> "$BD/$label.log" < /dev/null &
  PIDS+=("$!")
  local port="" i
  for i in $(seq 1 100); do
    port="$(grep -m1 'event=listening' "$BD/$label.log" 2>/dev/null | grep -oE '127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "ingotd ($label) did not start:" >&2; tail -5 "$BD/$label.log" >&2; exit 1; }
  printf -v "URL_$label" '%s' "http://127.0.0.1:$port"
}
start sqlite
start postgres --config "$BD/pg.toml"

# The same 10,000 images in both, over keep-alive connections.
populate() {
  /usr/bin/python3 - "$1" "$N" <<'EOF'
import http.client, json, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1]); n = int(sys.argv[2])
c = http.client.HTTPConnection(u.hostname, u.port)
mid = None
for i in range(n):
    body = {"name": "image-%05d" % i, "disk_format": "qcow2", "container_format": "bare",
            "tags": ["t%d" % (i % 7), "t%d" % (i % 11), "bench"],
            "os_distro": "debian", "os_version": str(i % 13), "hw_arch": "x86_64",
            "build": "b%05d" % i}
    c.request("POST", "/v2/images", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse(); data = r.read()
    if r.status != 201: sys.exit("create %d: HTTP %d %s" % (i, r.status, data[:200]))
    if i == n // 2: mid = json.loads(data)["id"]
print(mid)
EOF
}
for label in sqlite postgres; do
  url_var="URL_$label"
  log "populating $label with $N images"
  t0=$(date +%s.%N)
  populate "${!url_var}" > "$BD/$label.target" || exit 1
  log "$label: $N creates in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
done

for r in $(seq 1 "$WRK_R"); do
  for c in $WRK_CONNS; do
    for label in sqlite postgres; do
      url_var="URL_$label"
      id="$(cat "$BD/$label.target")"
      for ep in image list; do
        path="/v2/images/$id"; [ "$ep" = list ] && path="/v2/images?limit=25"
        log "$label $ep -c$c run $r (load $(cut -d' ' -f1 /proc/loadavg))"
        wrk -t2 -c"$c" -d"$WRK_D" --timeout 5s -s "$HERE/wrk_report.lua" "${!url_var}$path" \
          > "$BD/$label-$ep-c$c-$r.txt" 2>&1
        grep WRK_RESULT "$BD/$label-$ep-c$c-$r.txt" >> "$BD/$label-$ep-c$c.raw"
      done
    done
  done
done

field() { grep -oE "$2=[0-9.]+" "$BD/$1.raw" | cut -d= -f2 | median; }
errors() { cat "$BD"/*.raw | grep -oE '(errors|non2xx)=[0-9]+' | cut -d= -f2 | awk '{s+=$1} END{print s+0}'; }
echo
echo "| $N images, wrk $WRK_D x$WRK_R, medians | SQLite req/s | p50 ms | p99 ms | PostgreSQL req/s | p50 ms | p99 ms | PG / SQLite req/s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for c in $WRK_CONNS; do
  for ep in image list; do
    s_rps=$(field "sqlite-$ep-c$c" rps); p_rps=$(field "postgres-$ep-c$c" rps)
    name='GET /v2/images/{id}'; [ "$ep" = list ] && name='GET /v2/images?limit=25'
    printf '| %s, %d connections | %s | %s | %s | %s | %s | %s | %.2f |\n' "$name" "$c" \
      "$s_rps" "$(field "sqlite-$ep-c$c" p50_ms)" "$(field "sqlite-$ep-c$c" p99_ms)" \
      "$p_rps" "$(field "postgres-$ep-c$c" p50_ms)" "$(field "postgres-$ep-c$c" p99_ms)" \
      "$(awk -v a="$p_rps" -v b="$s_rps" 'BEGIN{print (b>0)?a/b:0}')"
  done
  p99=$(field "postgres-list-c$c" p99_ms)
  echo "PostgreSQL list p99 at $c connections: ${p99} ms: $(awk -v v="$p99" 'BEGIN{print (v < 10) ? "MET (< 10 ms)" : "MISSED (target < 10 ms)"}')" >> "$BD/verdicts"
done
echo
cat "$BD/verdicts"
echo "wrk errors and non-2xx answers: $(errors); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); raw results in $BD"
