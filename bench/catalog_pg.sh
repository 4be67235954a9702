#!/usr/bin/env bash
# The catalog on PostgreSQL against the embedded SQLite one, measured in the same run: two ingotd, one
# per engine, each holding the same 10,000 images (3 tags and 4 properties each; a third each public,
# private and community), driven by wrk with GET /v2/images/{id}, GET /v2/images?limit=25 as an admin
# and GET /v2/images?limit=25 as a member of another project (Glance's visibility rules in the SQL),
# interleaved run by run (SQLite, PostgreSQL, SQLite, ...), medians of the runs. PostgreSQL 15 is a
# throw-away server on 127.0.0.1 from tests/lib/postgres.sh (fsync=off: the reads measured here never
# wait on it). Target: PostgreSQL list p99 < 10 ms.
#
# Then, when tests/lib/cluster.sh is there (BENCH_CLUSTER=0 skips it), the scale-out part: 3 nodes on
# one PostgreSQL catalog behind HAProxy, the same images, the member's list page through the balancer
# with 3 nodes and with 1 (the other two stopped), interleaved; requests/s, latency, and the nodes'
# CPU time (utime + stime from /proc/<pid>/stat of every node) per 1,000 requests.
#
#   bench/catalog_pg.sh [INGOTD]        # BENCH_IMAGES=10000 BENCH_WRK_DURATION=10s BENCH_WRK_REPEAT=3
#                                       # BENCH_WRK_CONNS="32 4" BENCH_CLUSTER=1
# Two client loads: 32 connections (throughput; in a closed loop p99 is then mostly queueing, about
# 32 / rate) and 4 (latency).
# Prints Markdown tables for bench/RESULTS.md; raw wrk output is kept under $BENCH_DIR.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
. "$ROOT/tests/lib/postgres.sh"

INGOTD="${1:-$ROOT/build/bin/ingotd}"
[ -x "$INGOTD" ] || { echo "ingotd not found: $INGOTD" >&2; exit 2; }
INGOTD="$(cd "$(dirname "$INGOTD")" && pwd)/$(basename "$INGOTD")"
N="${BENCH_IMAGES:-10000}"
WRK_D="${BENCH_WRK_DURATION:-10s}"
WRK_R="${BENCH_WRK_REPEAT:-3}"
WRK_CONNS="${BENCH_WRK_CONNS:-32 4}"
BD="${BENCH_DIR:-$(mktemp -d /tmp/ingot-bench-catalog-pg.XXXXXX)}"
mkdir -p "$BD"
chmod 755 "$BD"  # the cluster's PostgreSQL runs as `postgres` under it
# The server runs as `postgres` when we are root, so its directory is not inside a private one.
PGDIR="$(mktemp -d /tmp/ingot-bench-pg.XXXXXX)"
PIDS=()
CLUSTER_STARTED=""
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  pg_stop "$PGDIR" && rm -rf "$PGDIR"
  [ -n "$CLUSTER_STARTED" ] && cluster_down
}
trap 'rc=$?; cleanup; exit $rc' EXIT
log() { printf '# %s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
median() { sort -g | awk '{a[NR]=$1} END{if(!NR){print "nan"; exit} print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# t-admin: an admin of proj-a (creates every image); t-member: a member of proj-b, who sees the
# public images of proj-a only (community ones are left out of a list without a visibility filter).
printf '%s\n' '[[token]]' 'token = "t-admin"' 'user = "alice"' 'project = "proj-a"' 'roles = ["admin"]' '' \
  '[[token]]' 'token = "t-member"' 'user = "bob"' 'project = "proj-b"' 'roles = ["member"]' > "$BD/tokens.toml"
AUTH=(--auth tokens --tokens-file "$BD/tokens.toml")

DSN="$(pg_start "$PGDIR")" || { echo "PostgreSQL did not start (see $PGDIR)" >&2; exit 1; }
printf '[catalog]\ndriver = "postgres"\ndsn = "%s"\n' "$DSN" > "$BD/pg.toml"

# start LABEL [flags]: ingotd on a free port; sets URL_<LABEL>.
start() {
  local label="$1"; shift
  "$INGOTD" --listen 127.0.0.1:0 --boot-listen "" --data-dir "$BD/$label-data" "${AUTH[@]}" "$@" \
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
            "visibility": ("public", "private", "community")[i % 3],
            "tags": ["t%d" % (i % 7), "t%d" % (i % 11), "bench"],
            "os_distro": "debian", "os_version": str(i % 13), "hw_arch": "x86_64",
            "build": "b%05d" % i}
    c.request("POST", "/v2/images", json.dumps(body),
              {"Content-Type": "application/json", "X-Auth-Token": "t-admin"})
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

# wrk_run OUT URL TOKEN CONNS
wrk_run() {
  WRK_TOKEN="$3" wrk -t2 -c"$4" -d"$WRK_D" --timeout 5s -s "$HERE/wrk_report.lua" "$2" > "$1" 2>&1
}
ENDPOINTS="image list member"
for r in $(seq 1 "$WRK_R"); do
  for c in $WRK_CONNS; do
    for label in sqlite postgres; do
      url_var="URL_$label"
      id="$(cat "$BD/$label.target")"
      for ep in $ENDPOINTS; do
        path="/v2/images/$id"; token=t-admin
        [ "$ep" = list ] && path="/v2/images?limit=25"
        [ "$ep" = member ] && { path="/v2/images?limit=25"; token=t-member; }
        log "$label $ep -c$c run $r (load $(load1))"
        echo "$(load1)" >> "$BD/loads"
        wrk_run "$BD/$label-$ep-c$c-$r.txt" "${!url_var}$path" "$token" "$c"
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
  for ep in $ENDPOINTS; do
    s_rps=$(field "sqlite-$ep-c$c" rps); p_rps=$(field "postgres-$ep-c$c" rps)
    case "$ep" in
      image) name='GET /v2/images/{id}' ;;
      list) name='GET /v2/images?limit=25 (admin)' ;;
      member) name='GET /v2/images?limit=25 (member of another project)' ;;
    esac
    printf '| %s, %d connections | %s | %s | %s | %s | %s | %s | %.2f |\n' "$name" "$c" \
      "$s_rps" "$(field "sqlite-$ep-c$c" p50_ms)" "$(field "sqlite-$ep-c$c" p99_ms)" \
      "$p_rps" "$(field "postgres-$ep-c$c" p50_ms)" "$(field "postgres-$ep-c$c" p99_ms)" \
      "$(awk -v a="$p_rps" -v b="$s_rps" 'BEGIN{print (b>0)?a/b:0}')"
  done
  for ep in list member; do
    p99=$(field "postgres-$ep-c$c" p99_ms)
    echo "PostgreSQL $ep p99 at $c connections: ${p99} ms: $(awk -v v="$p99" 'BEGIN{print (v < 10) ? "MET (< 10 ms)" : "MISSED (target < 10 ms)"}')" >> "$BD/verdicts"
  done
done
echo
cat "$BD/verdicts"
echo "wrk errors and non-2xx answers: $(errors); load average during the runs: $(sort -g "$BD/loads" | head -1)-$(sort -g "$BD/loads" | tail -1); raw results in $BD"

# ---- Through HAProxy: 3 nodes against 1 ----
[ "${BENCH_CLUSTER:-1}" = 1 ] && [ -f "$ROOT/tests/lib/cluster.sh" ] || exit 0
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
PIDS=()
. "$ROOT/tests/lib/cluster.sh"
export CLUSTER_INGOTD="$INGOTD" CLUSTER_STORES="file" CLUSTER_ARGS="${AUTH[*]}"
CLUSTER_STARTED=1
log "cluster: 3 nodes behind HAProxy (load $(load1))"
cluster_up "$BD/cluster" 3 || { echo "the cluster did not start (see $BD/cluster)" >&2; exit 1; }
log "populating the cluster with $N images through the balancer"
populate "$CLUSTER_URL" > /dev/null || exit 1

# cpu_ticks: utime + stime of every running node, summed (clock ticks).
cpu_ticks() {
  local i pid sum=0 t
  for i in 1 2 3; do
    pid="$(cluster_node_pid "$i")"
    [ -n "$pid" ] || continue
    # Fields after the command name's closing parenthesis: utime is the 12th, stime the 13th.
    t="$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')"
    sum=$((sum + t))
  done
  echo "$sum"
}
HZ="$(getconf CLK_TCK)"
nodes_up() {  # nodes_up 1|3
  if [ "$1" = 1 ]; then
    cluster_stop_node 2; cluster_stop_node 3
    cluster_wait_lb 2 down 20; cluster_wait_lb 3 down 20
  else
    for i in 2 3; do [ -n "$(cluster_node_pid "$i")" ] || cluster_restart "$i"; done
    cluster_wait_lb 2 up 20; cluster_wait_lb 3 up 20
  fi
}
for r in $(seq 1 "$WRK_R"); do
  for c in $WRK_CONNS; do
    for k in 3 1; do
      nodes_up "$k"
      # Warm-up, not measured: a node just started opens its PostgreSQL connections (SCRAM) and
      # prepares its statements on its first requests.
      WRK_D=3s wrk_run "$BD/warmup.txt" "$CLUSTER_URL/v2/images?limit=25" t-member "$c"
      log "cluster $k node(s) member list -c$c run $r (load $(load1))"
      echo "$(load1)" >> "$BD/cluster-loads"
      t0="$(cpu_ticks)"
      wrk_run "$BD/lb$k-c$c-$r.txt" "$CLUSTER_URL/v2/images?limit=25" t-member "$c"
      t1="$(cpu_ticks)"
      line="$(grep WRK_RESULT "$BD/lb$k-c$c-$r.txt")"
      reqs="$(echo "$line" | grep -oE 'requests=[0-9]+' | cut -d= -f2)"
      echo "$line cpu_ms_per_1000=$(awk -v d="$((t1 - t0))" -v hz="$HZ" -v n="${reqs:-0}" \
        'BEGIN{print (n > 0) ? d * 1000 / hz * 1000 / n : 0}')" >> "$BD/lb$k-c$c.raw"
    done
  done
done
echo
echo "| through HAProxy, member list page, $N images, wrk $WRK_D x$WRK_R, medians | nodes | req/s | p50 ms | p99 ms | nodes' CPU ms per 1,000 requests |"
echo "|---|---:|---:|---:|---:|---:|"
for c in $WRK_CONNS; do
  for k in 1 3; do
    printf '| GET /v2/images?limit=25, %d connections | %d | %s | %s | %s | %s |\n' "$c" "$k" \
      "$(field "lb$k-c$c" rps)" "$(field "lb$k-c$c" p50_ms)" "$(field "lb$k-c$c" p99_ms)" \
      "$(field "lb$k-c$c" cpu_ms_per_1000)"
  done
done
echo
echo "wrk errors and non-2xx answers (all runs): $(errors); load average during the cluster runs: $(sort -g "$BD/cluster-loads" | head -1)-$(sort -g "$BD/cluster-loads" | tail -1)"
