# Shared helpers for Ingot's end-to-end tests. Source it from a test script:
#
#   . "$(dirname "$0")/lib.sh"
#   it_init "$@"                 # $1 = path of ingotd (else $INGOTD, else build*/bin/ingotd)
#   ingot_start --auth noauth    # starts ingotd on 127.0.0.1:<free port>, sets INGOT_URL/INGOT_PID
#   req GET /v2/images           # -> $CODE, body in $BODY, headers in $HDRS
#   expect_code "list images" 200
#   it_finish                    # prints the summary; exit status 1 if anything failed
#
# Everything runs on 127.0.0.1 only. Every ingotd started here is stopped by its PID on exit (trap), and
# the scratch directory (data dirs, logs, downloads) is removed unless KEEP=1 or a check failed.
#
# Peer mode: with TARGET_URL set (e.g. TARGET_URL=http://127.0.0.1:9292 for the real Glance), ingot_start
# does not start anything and the tests talk to that server instead; ingot-only checks are skipped
# (see is_peer). This is how the expectations in these scripts were checked against Glance itself.

set -uo pipefail

IT_PASS=0
IT_FAIL=0
IT_SKIP=0
IT_PIDS=()
IT_NAME="$(basename "${0:-test}" .sh)"
IT_TMP=""
INGOT_URL=""
INGOT_PID=""
INGOT_LOG=""
INGOT_DATA=""
AUTH_TOKEN=""   # when set, req sends it as X-Auth-Token
# Peer mode only: token -> "project user roles,..." sent as keystonemiddleware's identity headers instead.
declare -A PEER_IDS=()
CODE=""
BODY=""
HDRS=""

it_log() { printf '%s\n' "$*" >&2; }

# it_init [INGOTD]: finds the daemon, makes the scratch dir and installs the cleanup trap.
it_init() {
  IT_TMP="$(mktemp -d "${TMPDIR:-/tmp}/ingot-it-${IT_NAME}.XXXXXX")"
  BODY="$IT_TMP/body"
  HDRS="$IT_TMP/headers"
  trap it_cleanup EXIT
  trap 'exit 130' INT TERM
  if [ -n "${TARGET_URL:-}" ]; then
    INGOTD=""
    it_log "# $IT_NAME: peer mode against $TARGET_URL (ingotd not started)"
    return 0
  fi
  INGOTD="${1:-${INGOTD:-}}"
  if [ -z "$INGOTD" ]; then
    local here root c
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    root="$(cd "$here/../.." && pwd)"
    for c in "$root"/build/bin/ingotd "$root"/build*/bin/ingotd; do
      [ -x "$c" ] && { INGOTD="$c"; break; }
    done
  fi
  if [ -z "$INGOTD" ] || [ ! -x "$INGOTD" ]; then
    echo "FAIL  $IT_NAME: ingotd not found (pass its path as the first argument or set INGOTD)"
    exit 2
  fi
  it_log "# $IT_NAME: ingotd=$INGOTD scratch=$IT_TMP"
}

is_peer() { [ -n "${TARGET_URL:-}" ]; }

it_cleanup() {
  local rc=$?
  local p
  for p in "${IT_PIDS[@]:-}"; do
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null && it_stop_pid "$p"
  done
  if [ -n "$IT_TMP" ] && [ -d "$IT_TMP" ]; then
    if [ "${KEEP:-0}" = 1 ] || [ "$IT_FAIL" -gt 0 ] || [ "$rc" -ne 0 ]; then
      it_log "# scratch kept for inspection: $IT_TMP"
    else
      rm -rf "$IT_TMP"
    fi
  fi
  exit "$rc"
}

# it_stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL. Only PIDs this script started are passed here.
it_stop_pid() {
  local p="$1" i
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq 1 100); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$p" 2>/dev/null; then
    it_log "# ingotd $p ignored SIGTERM for 10 s; sending SIGKILL"
    kill -KILL "$p" 2>/dev/null
  fi
  wait "$p" 2>/dev/null || true
}

# ingot_start [ingotd flags...]: starts ingotd on 127.0.0.1 port 0 with data dir $INGOT_DATA (a fresh one
# under the scratch dir unless INGOT_DATA is already set and non-empty), parses the bound port from its
# "listening" log line, waits for GET /healthcheck == 200. Sets INGOT_URL, INGOT_PID, INGOT_LOG.
ingot_start() {
  if is_peer; then
    INGOT_URL="$TARGET_URL"
    return 0
  fi
  [ -n "$INGOT_DATA" ] || INGOT_DATA="$IT_TMP/data"
  mkdir -p "$INGOT_DATA"
  INGOT_LOG="$IT_TMP/ingotd.$(date +%s%N).log"
  # The boot service's southbound listener is on by default (127.0.0.1:9090): tests put it on a free
  # port so that they never collide (a script that wants it passes its own --boot-listen after).
  local boot=()
  "$INGOTD" --help 2>/dev/null | grep -q -- --boot-listen && boot=(--boot-listen 127.0.0.1:0)
  "$INGOTD" --listen 127.0.0.1:0 --data-dir "$INGOT_DATA" "${boot[@]}" "$@" > "$INGOT_LOG.out" 2> "$INGOT_LOG" < /dev/null &
  INGOT_PID=$!
  IT_PIDS+=("$INGOT_PID")
  local port="" i
  for i in $(seq 1 300); do   # 30 s
    port="$(grep -m1 -E 'listening' "$INGOT_LOG" 2>/dev/null \
            | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)"
    [ -n "$port" ] && [ "$port" != 0 ] && break
    if ! kill -0 "$INGOT_PID" 2>/dev/null; then
      echo "FAIL  $IT_NAME: ingotd exited before listening:"
      sed 's/^/      /' "$INGOT_LOG" | tail -20
      return 1
    fi
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "FAIL  $IT_NAME: no 'listening' line from ingotd within 30 s"
    sed 's/^/      /' "$INGOT_LOG" | tail -20
    return 1
  fi
  INGOT_URL="http://127.0.0.1:$port"
  for i in $(seq 1 100); do
    [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$INGOT_URL/healthcheck")" = 200 ] && {
      it_log "# ingotd pid $INGOT_PID at $INGOT_URL (data $INGOT_DATA)"
      return 0; }
    sleep 0.1
  done
  echo "FAIL  $IT_NAME: $INGOT_URL/healthcheck did not answer 200 within 10 s"
  return 1
}

# ingot_stop: graceful stop of the current ingotd.
ingot_stop() {
  is_peer && return 0
  [ -n "$INGOT_PID" ] && it_stop_pid "$INGOT_PID"
  INGOT_PID=""
}

# ingot_kill9: SIGKILL the current ingotd (crash test).
ingot_kill9() {
  [ -n "$INGOT_PID" ] || return 0
  kill -KILL "$INGOT_PID" 2>/dev/null
  wait "$INGOT_PID" 2>/dev/null || true
  INGOT_PID=""
}

# ---------------------------------------------------------------------------------------------- HTTP
# req METHOD PATH [curl args...]: one request to $INGOT_URL. Sets CODE; body -> $BODY (or $OUT when set,
# e.g. `OUT=dl.bin req GET /v2/images/ID/file`), headers -> $HDRS. Sends Accept: application/json (Glance
# answers errors in HTML otherwise) unless ACCEPT says something else.
req() {
  local method="$1" path="$2"; shift 2
  local auth=() proj user roles
  if [ -n "$AUTH_TOKEN" ] && is_peer && [ -n "${PEER_IDS[$AUTH_TOKEN]:-}" ]; then
    # a Glance peer started with GLANCE_AUTH=headers trusts the identity headers keystonemiddleware sets
    read -r proj user roles <<< "${PEER_IDS[$AUTH_TOKEN]}"
    auth=(-H "X-Identity-Status: Confirmed" -H "X-Project-Id: $proj" -H "X-User-Id: $user" -H "X-Roles: $roles")
  elif [ -n "$AUTH_TOKEN" ]; then
    auth=(-H "X-Auth-Token: $AUTH_TOKEN")
  fi
  CODE="$(curl -s -m "${REQ_TIMEOUT:-120}" -X "$method" -D "$HDRS" -o "${OUT:-$BODY}" -w '%{http_code}' \
          -H "Accept: ${ACCEPT:-application/json}" "${auth[@]}" "$@" "$INGOT_URL$path")"
}
# req_json METHOD PATH JSON: request with a JSON body.
req_json() {
  local method="$1" path="$2" data="$3"; shift 3
  req "$method" "$path" -H 'Content-Type: application/json' --data-binary "$data" "$@"
}
# req_patch PATH JSON-PATCH: PATCH with Glance's JSON-patch media type.
req_patch() {
  req PATCH "$1" -H 'Content-Type: application/openstack-images-v2.1-json-patch' --data-binary "$2"
}

# header NAME: value of a response header of the last req (case-insensitive, CR stripped).
header() {
  tr -d '\r' < "$HDRS" | awk -v k="$(printf '%s' "$1" | tr 'A-Z' 'a-z')" \
    'BEGIN{FS=": "} {n=tolower($1)} n==k {sub(/^[^:]*: */,""); v=$0} END{print v}'
}

# jb FILTER: jq -r FILTER over the last body ("null" when absent).
jb() { jq -r "$1" < "$BODY" 2>/dev/null; }
# jf FILE FILTER
jf() { jq -r "$2" < "$1" 2>/dev/null; }

# create_image JSON: POST it; sets ID to the new id (empty on failure), CODE, and leaves the answer in $BODY.
create_image() {
  ID=""
  req_json POST /v2/images "$1"
  [ "$CODE" = 201 ] && ID="$(jb .id)"
  [ "$CODE" = 201 ]
}

# upload ID FILE [curl args]: PUT the file as image data.
upload() {
  local id="$1" file="$2"; shift 2
  req PUT "/v2/images/$id/file" -H 'Content-Type: application/octet-stream' -T "$file" "$@"
}

# ------------------------------------------------------------------------------------- glance CLI
# For the scripts that drive the real glance client; they set W (scratch) and HOME first.
# g ARGS...: one glance CLI call. stdin is closed, because the CLI reads image data from any non-tty
# stdin (even /dev/null, which would upload an empty image).
g() { timeout 120 glance --os-image-url "$INGOT_URL" --os-auth-token x "$@" <&-; }
# run NAME CMD...: the command must exit 0; its output is kept in $W/out for field().
run() {
  local name="$1"; shift
  if "$@" > "$W/out" 2>&1; then pass "$name"; return 0; fi
  fail "$name" "exit $?: $(tail -3 "$W/out" | tr '\n' ' ')"
  return 1
}
# field KEY: the value of row KEY in the last CLI table (| Property | Value |).
field() {
  awk -F'|' -v k="$1" '{gsub(/^ +| +$/,"",$2)} $2==k {v=$3; gsub(/^ +| +$/,"",v); print v; exit}' "$W/out"
}
# api ID FILTER: the image as the API shows it, through jq (independent of the CLI's table).
api() { curl -s -m 30 "$INGOT_URL/v2/images/$1" | jq -r "$2"; }
# wait_for ID JQ-CONDITION [SECONDS]: polls the image until the condition holds (default 60 s).
wait_for() {
  local i
  for i in $(seq 1 $((${3:-60} * 5))); do
    [ "$(api "$1" "$2")" = true ] && return 0
    sleep 0.2
  done
  return 1
}
# origin_start DIR: an HTTP origin for web-download on 127.0.0.1 serving DIR (http_origin.py);
# sets OPORT and ORIGIN. Stopped with the test's other processes.
origin_start() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/http_origin.py" "$1" "$1.port" > /dev/null 2>&1 &
  IT_PIDS+=("$!")
  for _ in $(seq 1 100); do [ -s "$1.port" ] && break; sleep 0.1; done
  OPORT=$(cat "$1.port")
  ORIGIN="http://127.0.0.1:$OPORT"
}

# ---------------------------------------------------------------------------------------------- checks
pass() { IT_PASS=$((IT_PASS+1)); echo "PASS  $1"; }
IT_FAILED=()
fail() { IT_FAIL=$((IT_FAIL+1)); IT_FAILED+=("$1${2:+ -- $2}"); echo "FAIL  $1${2:+ -- $2}"; }
skip() { IT_SKIP=$((IT_SKIP+1)); echo "SKIP  $1${2:+ -- $2}"; }

# expect_code NAME WANT...: the last req answered one of WANT.
expect_code() {
  local name="$1"; shift
  local w
  for w in "$@"; do [ "$CODE" = "$w" ] && { pass "$name ($CODE)"; return 0; }; done
  fail "$name" "HTTP $CODE, want $* ; body: $(head -c 300 "$BODY" 2>/dev/null | tr '\n' ' ')"
  return 1
}

# expect_eq NAME GOT WANT
expect_eq() {
  if [ "$2" = "$3" ]; then pass "$1"; return 0; fi
  fail "$1" "got '$(printf '%s' "$2" | head -c 300)', want '$(printf '%s' "$3" | head -c 300)'"
  return 1
}

# expect_true NAME COMMAND...: the command succeeds.
expect_true() {
  local name="$1"; shift
  if "$@" > "$IT_TMP/cmd.out" 2>&1; then pass "$name"; return 0; fi
  fail "$name" "$(tail -3 "$IT_TMP/cmd.out" | tr '\n' ' ')"
  return 1
}

# expect_error NAME STATUS [MESSAGE]: the last answer has HTTP STATUS and Glance's error body shape
# {"message": "...<br /><br />...", "code": "STATUS Reason", "title": "Reason"}; with MESSAGE, the message
# text before "<br />" must equal it.
expect_error() {
  local name="$1" want="$2" msg="${3:-}"
  expect_code "$name" "$want" || return 1
  local code title got
  code="$(jb .code)"; title="$(jb .title)"
  if [ "${code%% *}" != "$want" ] || [ "${code#* }" != "$title" ] || [ -z "$title" ] || [ "$title" = null ]; then
    fail "$name: error body shape" "code='$code' title='$title' body=$(head -c 200 "$BODY" | tr '\n' ' ')"
    return 1
  fi
  if [ -n "$msg" ]; then
    # the text before the first <br /> (Glance appends "<br /><br />" and blank lines)
    got="$(jq -r '.message | split("<br />")[0] | rtrimstr("\n")' < "$BODY" 2>/dev/null)"
    expect_eq "$name: message" "$got" "$msg" || return 1
  fi
  return 0
}

# expect_sample NAME SAMPLE_NAME [SED_EXPR]: the last body equals Glance's recorded error body
# (samples/SAMPLE_NAME.json) in code, title and message (message after applying SED_EXPR to the sample,
# e.g. to put our image id in place of the sample's).
GLANCE_SAMPLES="${GLANCE_SAMPLES:-/work/shared/peers/glance/samples}"
expect_sample() {
  local name="$1" sample="$GLANCE_SAMPLES/$2.json" sedexpr="${3:-}"
  if [ ! -f "$sample" ]; then skip "$name vs Glance sample" "no $sample"; return 0; fi
  local want got
  want="$(jq -cS '{code,title,message}' < "$sample" | sed "${sedexpr:-s/^//}")"
  got="$(jq -cS '{code,title,message}' < "$BODY" 2>/dev/null)"
  expect_eq "$name: body == Glance's" "$got" "$want"
}

# it_on_failure: a test may define it to print what explains its failures (daemon logs, say); it
# runs before the summary, so that the end of the output, which CI keeps, tells what went wrong.
it_finish() {
  if [ "$IT_FAIL" -gt 0 ]; then
    declare -F it_on_failure > /dev/null && it_on_failure
    echo "--- $IT_NAME failed:"
    printf '      %s\n' "${IT_FAILED[@]}" | cut -c1-600
  fi
  echo "--- $IT_NAME: passed $IT_PASS, failed $IT_FAIL, skipped $IT_SKIP"
  [ "$IT_FAIL" -eq 0 ] && [ "$IT_PASS" -gt 0 ]
  exit $?
}

# admin_member_tokens FILE: a tokens file for --auth tokens with t-admin (alice, admin) and t-member
# (bob, member), both of project proj-a.
admin_member_tokens() {
  printf '%s\n' '[[token]]' 'token = "t-admin"' 'user = "alice"' 'project = "proj-a"' 'roles = ["admin"]' '' \
    '[[token]]' 'token = "t-member"' 'user = "bob"' 'project = "proj-a"' 'roles = ["member"]' > "$1"
}

# random_file PATH BYTES: incompressible test data (fast: AES-CTR keystream).
random_file() {
  openssl enc -aes-128-ctr -pass "pass:ingot-$RANDOM$RANDOM" -nosalt -pbkdf2 < /dev/zero 2>/dev/null \
    | head -c "$2" > "$1"
}
