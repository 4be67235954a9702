#!/bin/bash
# GET /v2/images/{id} with Keystone tokens: Ingot (--auth keystone) against the real OpenStack Glance
# (Debian's glance-api with keystonemiddleware's auth_token, the paste flavor "keystone"), both
# behind the same real Keystone, same token, same run. Both cache token validations (Ingot for
# token_cache_time; keystonemiddleware in-process for its token_cache_time, no memcached), so this
# measures the API path with authentication, not Keystone.
#
# Usage: bench/keystone.sh [PATH-TO-INGOTD]
#   BENCH_WRK_D (default 10s), BENCH_WRK_C (default 16), BENCH_REPEAT (default 3): wrk runs per server,
#   alternating. GLANCE_WORKERS (default 2).
#   BENCH_IO_THREADS (default 1): ingotd's [server] io_threads. Prints one table: req/s, p50, p99 per server and the ratio.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tests/integration/keystone_lib.sh"
command -v wrk > /dev/null || { echo "SKIP  wrk not installed"; exit 77; }
command -v glance-api > /dev/null || { echo "SKIP  glance-api not installed"; exit 77; }
it_init "${1:-}"
W="$IT_TMP"
GLANCE_STATE="$W/glance"
stop_glance() { GLANCE_STATE="$GLANCE_STATE" bash /work/shared/peers/glance/stop.sh > /dev/null 2>&1; }
trap 'rc=$?; stop_glance; keystone_down; (exit $rc); it_cleanup' EXIT
D="${BENCH_WRK_D:-10s}"; C="${BENCH_WRK_C:-16}"; REPEAT="${BENCH_REPEAT:-3}"

keystone_up "$W/keystone" || exit $?
ks_admin_token || exit 1
ks_service_user
PA="$(ks_project proj-a)"; UA="$(ks_user alice alice-pw)"; ks_grant member "$PA" "$UA"
sleep 1
IP="$(ks_free_port)"; GP="$(ks_free_port)"
ks_service image glance "http://127.0.0.1:$IP" > /dev/null
TOKEN="$(ks_token alice alice-pw proj-a)"
[ -n "$TOKEN" ] || { echo "FAIL  no token"; exit 1; }
head -c 1024 /dev/urandom > "$W/img"

# Ingot.
ks_ingot_config > "$W/ingotd.toml"
printf '\n[server]\nio_threads = %s\n' "${BENCH_IO_THREADS:-1}" >> "$W/ingotd.toml"
ks_ingotd "$IP" "$W/ingotd.toml" "$W/ingotd.log" --data-dir "$W/data" --log-level warn || exit 1
make_image() {  # URL -> prints the id of an active image owned by proj-a
  local id
  id="$(curl -s -X POST "$1/v2/images" -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' \
        -d '{"name": "bench", "disk_format": "raw", "container_format": "bare"}' | jq -r .id)"
  curl -s -o /dev/null -X PUT "$1/v2/images/$id/file" -H "X-Auth-Token: $TOKEN" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$W/img"
  echo "$id"
}
IID="$(make_image "http://127.0.0.1:$IP")"

# Glance, from the peer scripts' configuration plus keystonemiddleware.
GLANCE_STATE="$GLANCE_STATE" GLANCE_PORT="$GP" GLANCE_WORKERS="${GLANCE_WORKERS:-2}" SKIP_APT=1 \
  bash /work/shared/peers/glance/setup.sh > "$W/glance-setup.log" 2>&1 || { echo "FAIL  glance setup"; tail "$W/glance-setup.log"; exit 1; }
cat > "$GLANCE_STATE/etc/auth-keystone.conf" <<CONF
[paste_deploy]
flavor = keystone
[keystone_authtoken]
www_authenticate_uri = $KS_URL/v3
auth_url = $KS_URL
auth_type = password
username = glance
password = glance-pw
project_name = service
user_domain_name = Default
project_domain_name = Default
token_cache_time = 300
service_token_roles_required = true
CONF
mkdir -p "$GLANCE_STATE/log"
setsid /usr/bin/glance-api --config-file "$GLANCE_STATE/etc/glance-api.conf" \
  --config-file "$GLANCE_STATE/etc/auth-keystone.conf" > "$GLANCE_STATE/log/stdout" 2>&1 < /dev/null &
echo $! > "$GLANCE_STATE/glance-api.pid"
for i in $(seq 1 240); do curl -s -o /dev/null -m 2 "http://127.0.0.1:$GP/versions" && break; sleep 0.5; done
GID="$(make_image "http://127.0.0.1:$GP")"
for u in "http://127.0.0.1:$IP/v2/images/$IID" "http://127.0.0.1:$GP/v2/images/$GID"; do
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $TOKEN" "$u")"
  [ "$code" = 200 ] || { echo "FAIL  $u answers $code"; tail -5 "$GLANCE_STATE/log/glance-api.log"; exit 1; }
  curl -s -o /dev/null -H "X-Auth-Token: $TOKEN" "$u"   # warm: the validation is cached now
done

run() {  # LABEL URL
  WRK_TOKEN="$TOKEN" wrk -t2 -c"$C" -d"$D" --timeout 5s -s "$ROOT/bench/wrk_report.lua" "$2" \
    | grep WRK_RESULT | sed "s/^/$1 /"
}
for r in $(seq 1 "$REPEAT"); do
  run ingot "http://127.0.0.1:$IP/v2/images/$IID"
  run glance "http://127.0.0.1:$GP/v2/images/$GID"
done > "$W/results"
cat "$W/results" >&2
best() {  # LABEL FIELD: the median of the runs
  grep "^$1 " "$W/results" | grep -oE "$2=[0-9.]+" | cut -d= -f2 | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'
}
bad="$(grep -oE '(errors|non2xx)=[1-9][0-9]*' "$W/results" | head -1)"
IR="$(best ingot rps)"; GR="$(best glance rps)"
echo "## GET /v2/images/{id} with a Keystone token (wrk -t2 -c$C -d$D, median of $REPEAT; validations cached)"
printf '%-8s %10s %9s %9s\n' server "req/s" "p50 ms" "p99 ms"
printf '%-8s %10s %9s %9s\n' ingot "$IR" "$(best ingot p50_ms)" "$(best ingot p99_ms)"
printf '%-8s %10s %9s %9s\n' glance "$GR" "$(best glance p50_ms)" "$(best glance p99_ms)"
printf 'ratio (ingot / glance req/s): %.1fx\n' "$(echo "$IR / $GR" | bc -l)"
[ -z "$bad" ] || echo "WARNING: a run had $bad"
