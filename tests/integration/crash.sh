#!/usr/bin/env bash
# Crash test: SIGKILL ingotd in the middle of uploads, restart it on the same data dir, and check that
#  - no image is `active` with partial bytes: each killed upload is `queued` (or `killed`) with no
#    size/checksum, and can be uploaded again;
#  - no temporary or orphaned bytes remain: what lies under the data dir (outside the catalog database)
#    adds up to exactly the sizes of the active images;
#  - every image uploaded before the crash still downloads byte-identical with its recorded checksums.
# Then a few rounds of SIGKILL at random moments of an unthrottled upload (which may land in the commit
# window: fsync, rename, catalog update): each image must end either active and whole, or queued and empty.
# Usage: crash.sh [PATH-TO-INGOTD]
# Env: CRASH_BIG_MIB (default 1024): size of the throttled big upload; CRASH_RATE (default 48M): its
#      curl --limit-rate; CRASH_ROUNDS (default 8): random-moment rounds.
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
it_init "$@"
is_peer && { echo "SKIP  crash test needs ingotd (peer mode)"; exit 77; }
W="$IT_TMP"
BIG_MIB="${CRASH_BIG_MIB:-1024}"
RATE="${CRASH_RATE:-48M}"
ROUNDS="${CRASH_ROUNDS:-8}"
INGOT_DATA="$W/data"
CURL_PIDS=()

# ------------------------------------------------------------------------------------------ helpers
# data_bytes: bytes of every regular file under the data dir except the SQLite catalog and its journals.
data_bytes() {
  find "$INGOT_DATA" -type f ! -name 'catalog.db' ! -name 'catalog.db-*' -printf '%s\n' \
    | awk '{s+=$1} END{print s+0}'
}
data_files() { find "$INGOT_DATA" -type f ! -name 'catalog.db' ! -name 'catalog.db-*' | sort; }
# all_images: every image as one JSON per line (follows next links).
all_images() {
  local path="/v2/images?limit=100"
  while [ -n "$path" ]; do
    curl -s -m 30 "$INGOT_URL$path" > "$W/page.json" || return 1
    jq -c '.images[]' "$W/page.json"
    path="$(jq -r '.next // empty' "$W/page.json")"
  done
}
image() { curl -s -m 30 "$INGOT_URL/v2/images/$1" | jq -r "$2"; }
status_of() { image "$1" .status; }

# check_invariants LABEL: after a restart. No active image with partial bytes; bytes on disk == sum of
# active sizes; nothing left that looks temporary.
check_invariants() {
  local label="$1"
  all_images > "$W/images.jsonl"
  local active_sum bad
  active_sum=$(jq -s '[.[] | select(.status=="active" or .status=="deactivated") | .size] | add // 0' "$W/images.jsonl")
  expect_eq "$label: bytes under the data dir == sum of active image sizes (no temp/orphan files)" \
    "$(data_bytes)" "$active_sum"
  expect_eq "$label: no temporary files left" \
    "$(data_files | grep -ciE '/\.tmp|\.tmp|\.part|incoming|partial' || true)" 0
  bad=$(jq -r 'select(.status=="saving") | .id' "$W/images.jsonl")
  expect_eq "$label: no image left in saving" "$bad" ""
  # every active image's bytes match its size and checksum
  local id size sum got n=0 nbad=0
  while read -r id size sum; do
    n=$((n+1))
    curl -s -m 300 -o "$W/inv.bin" "$INGOT_URL/v2/images/$id/file"
    got=$(md5sum < "$W/inv.bin" | cut -d' ' -f1)
    if [ "$got" != "$sum" ] || [ "$(stat -c %s "$W/inv.bin")" != "$size" ]; then
      nbad=$((nbad+1))
      echo "      image $id: recorded size $size md5 $sum, served $(stat -c %s "$W/inv.bin") bytes md5 $got"
    fi
  done < <(jq -r 'select(.status=="active") | "\(.id) \(.size) \(.checksum)"' "$W/images.jsonl")
  expect_eq "$label: all $n active images serve exactly their recorded bytes" "$nbad" 0
}

# ------------------------------------------------------------------------------------------ before
echo "### images uploaded before the crash"
ingot_start --auth noauth || exit 1
declare -A SURV_FILE SURV_MD5 SURV_SHA
i=0
for bytes in 1048576 $((32*1048576 + 777)) 1 4096; do
  i=$((i+1))
  f="$W/survivor-$i.bin"; random_file "$f" "$bytes"
  create_image "{\"name\":\"survivor-$i\",\"disk_format\":\"raw\",\"container_format\":\"bare\",\"keep\":\"yes\"}"
  id=$ID
  upload "$id" "$f"
  expect_code "upload survivor-$i ($bytes bytes)" 204
  SURV_FILE[$id]="$f"
  SURV_MD5[$id]=$(md5sum < "$f" | cut -d' ' -f1)
  SURV_SHA[$id]=$(sha512sum < "$f" | cut -d' ' -f1)
done
create_image '{"name":"queued-meta","disk_format":"qcow2","container_format":"bare","tags":["x"],"k":"v"}'
QID=$ID

# ------------------------------------------------------------------------------------------ disconnect
echo "### client disconnects mid-upload (ingotd keeps running)"
create_image '{"name":"disconnect","disk_format":"raw","container_format":"bare"}'; Y=$ID
random_file "$W/y.bin" $((256*1048576))
base=$(data_bytes)
curl -s -m 300 --limit-rate 32M -X PUT -H 'Content-Type: application/octet-stream' -T "$W/y.bin" -o /dev/null \
  "$INGOT_URL/v2/images/$Y/file" &
cpid=$!
ok=0
for t in $(seq 1 200); do
  [ "$(status_of "$Y")" = saving ] && [ $(( $(data_bytes) - base )) -ge $((16*1048576)) ] && { ok=1; break; }
  sleep 0.1
done
expect_eq "upload in progress before the client goes away" "$ok" 1
kill -KILL "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
for t in $(seq 1 100); do [ "$(status_of "$Y")" = queued ] && break; sleep 0.1; done
expect_eq "after the client vanished the image is queued with no size/checksum" \
  "$(image "$Y" '[.status,(.size|tostring),(.checksum|tostring)]|join(",")')" "queued,null,null"
for t in $(seq 1 50); do [ "$(data_bytes)" = "$base" ] && break; sleep 0.1; done
expect_eq "the abandoned upload's bytes are removed at once" "$(data_bytes)" "$base"
upload "$Y" "$W/y.bin"
expect_code "the image can be uploaded again" 204
expect_eq "re-upload after a disconnect is whole" "$(image "$Y" '[.status,.checksum]|join(",")')" \
  "active,$(md5sum < "$W/y.bin" | cut -d' ' -f1)"
SURV_FILE[$Y]="$W/y.bin"; SURV_MD5[$Y]=$(md5sum < "$W/y.bin" | cut -d' ' -f1)
SURV_SHA[$Y]=$(sha512sum < "$W/y.bin" | cut -d' ' -f1)

# ------------------------------------------------------------------------------------------ crash 1
echo "### SIGKILL during two throttled uploads (${BIG_MIB} MiB chunked from a generator; 512 MiB with Content-Length)"
create_image '{"name":"big-chunked","disk_format":"raw","container_format":"bare"}'; X1=$ID
create_image '{"name":"big-length","disk_format":"raw","container_format":"bare"}'; X2=$ID
random_file "$W/big2.bin" $((512*1048576))
openssl enc -aes-128-ctr -pass pass:crash -nosalt -pbkdf2 < /dev/zero 2>/dev/null | head -c $((BIG_MIB*1048576)) \
  | curl -s -m 900 --limit-rate "$RATE" -X PUT -H 'Content-Type: application/octet-stream' \
      -H 'Transfer-Encoding: chunked' -T - -o /dev/null "$INGOT_URL/v2/images/$X1/file" &
CURL_PIDS+=($!)
curl -s -m 900 --limit-rate "$RATE" -X PUT -H 'Content-Type: application/octet-stream' -T "$W/big2.bin" \
  -o /dev/null "$INGOT_URL/v2/images/$X2/file" &
CURL_PIDS+=($!)
# Kill when both are saving and at least 64 MiB have reached the data dir.
base=$(data_bytes)
ok=0
for t in $(seq 1 300); do
  if [ "$(status_of "$X1")" = saving ] && [ "$(status_of "$X2")" = saving ] \
     && [ $(( $(data_bytes) - base )) -ge $((64*1048576)) ]; then ok=1; break; fi
  sleep 0.1
done
expect_eq "both uploads were in progress (status saving, bytes arriving) before the kill" "$ok" 1
echo "      killing ingotd $INGOT_PID with $(( ($(data_bytes) - base) / 1048576 )) MiB of partial data on disk"
ingot_kill9
for p in "${CURL_PIDS[@]}"; do wait "$p" 2>/dev/null; done
CURL_PIDS=()
expect_true "partial bytes were on disk at the kill" test "$(data_bytes)" -gt "$base"

ingot_start --auth noauth || exit 1
for x in "$X1" "$X2"; do
  st=$(status_of "$x")
  expect_true "killed upload $x is queued or killed after restart (is: $st)" bash -c "[ '$st' = queued ] || [ '$st' = killed ]"
  expect_eq "killed upload $x has no size/checksum/hash" \
    "$(image "$x" '[.size,.checksum,.os_hash_value]|map(tostring)|join(",")')" "null,null,null"
  expect_eq "killed upload $x serves no bytes (204 No Content)" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$INGOT_URL/v2/images/$x/file")" 204
done
check_invariants "after crash 1"
for id in "${!SURV_FILE[@]}"; do
  expect_eq "survivor $id: status, checksum, sha512" \
    "$(image "$id" '[.status,.checksum,.os_hash_value]|join(",")')" "active,${SURV_MD5[$id]},${SURV_SHA[$id]}"
  curl -s -m 60 -o "$W/dl.bin" "$INGOT_URL/v2/images/$id/file"
  expect_true "survivor $id downloads byte-identical" cmp "${SURV_FILE[$id]}" "$W/dl.bin"
done
expect_eq "queued image's metadata survived" "$(image "$QID" '[.status,.disk_format,.k,(.tags|join("+"))]|join(",")')" \
  "queued,qcow2,v,x"
if [ "$(status_of "$X2")" = queued ]; then
  upload "$X2" "$W/survivor-1.bin"
  expect_code "a killed upload can be uploaded again after restart" 204
  expect_eq "re-upload is active with the right checksum" "$(image "$X2" '[.status,.checksum]|join(",")')" \
    "active,$(md5sum < "$W/survivor-1.bin" | cut -d' ' -f1)"
fi
curl -s "$INGOT_URL/metrics" > "$W/metrics.txt"
expect_eq "/metrics: ingot_images_missing_data is 0" \
  "$(awk '$1 ~ /^ingot_images_missing_data/ {print $2+0}' "$W/metrics.txt" | head -1)" 0
rm -f "$W/big2.bin"

# ------------------------------------------------------------------------------------------ rounds
echo "### SIGKILL at random moments of unthrottled uploads ($ROUNDS rounds)"
random_file "$W/round.bin" $((48*1048576))
RMD5=$(md5sum < "$W/round.bin" | cut -d' ' -f1)
# How long one upload takes here, to spread the kills over it (and a bit past its end).
create_image '{"name":"timing","disk_format":"raw","container_format":"bare"}'
t0=$(date +%s%N); upload "$ID" "$W/round.bin"; t1=$(date +%s%N)
DUR_MS=$(( (t1 - t0) / 1000000 )); [ "$DUR_MS" -lt 50 ] && DUR_MS=50
echo "      one 48 MiB upload takes ${DUR_MS} ms"
n_active=0; n_queued=0
for r in $(seq 1 "$ROUNDS"); do
  create_image "{\"name\":\"round-$r\",\"disk_format\":\"raw\",\"container_format\":\"bare\"}"; R=$ID
  delay_ms=$(( (RANDOM * 32768 + RANDOM) % (DUR_MS * 15 / 10 + 1) ))
  curl -s -m 300 -X PUT -H 'Content-Type: application/octet-stream' -T "$W/round.bin" -o /dev/null \
    "$INGOT_URL/v2/images/$R/file" &
  cp_pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  ingot_kill9
  wait "$cp_pid" 2>/dev/null
  ingot_start --auth noauth || exit 1
  st=$(image "$R" '[.status,(.size|tostring),(.checksum|tostring)]|join(",")')
  case "$st" in
    "active,$((48*1048576)),$RMD5") n_active=$((n_active+1)); pass "round $r (kill at ${delay_ms} ms): active and whole" ;;
    queued,null,null|killed,null,null) n_queued=$((n_queued+1)); pass "round $r (kill at ${delay_ms} ms): queued, no bytes" ;;
    *) fail "round $r (kill at ${delay_ms} ms): image is '$st', want active+whole or queued+empty" ;;
  esac
  check_invariants "round $r"
done
echo "      rounds: $n_active ended active, $n_queued ended queued"
for id in "${!SURV_FILE[@]}"; do
  curl -s -m 60 -o "$W/dl.bin" "$INGOT_URL/v2/images/$id/file"
  expect_true "after all rounds, survivor $id still downloads byte-identical" cmp "${SURV_FILE[$id]}" "$W/dl.bin"
done

# ------------------------------------------------------------------------------------------ repair
echo "### start-up repair: planted orphan and temp files, a truncated image file"
ingot_stop
IMGDIR="$INGOT_DATA/images"
random_file "$IMGDIR/11111111-2222-4333-8444-555555555555" 4096                 # bytes no image owns
random_file "$IMGDIR/.tmp-11111111-2222-4333-8444-555555555556-x1" 4096         # a write cut short
# truncate one survivor's bytes behind the daemon's back (a disk that lost data)
VICTIM=""
for id in "${!SURV_FILE[@]}"; do
  [ "$(stat -c %s "${SURV_FILE[$id]}")" -gt 4096 ] && { VICTIM=$id; break; }
done
VFILE=$(find "$INGOT_DATA" -type f -name "$VICTIM*" | head -1)
expect_true "the victim's bytes are a file named after the image" test -n "$VFILE"
truncate -s 4096 "$VFILE"
ingot_start --auth noauth || exit 1
expect_eq "planted orphan and temp files are removed at start" \
  "$(find "$IMGDIR" -name '11111111-2222-4333-8444-55555555555*' -o -name '.tmp-11111111-*' | wc -l)" 0
curl -s "$INGOT_URL/metrics" > "$W/metrics2.txt"
expect_eq "/metrics counts the image with short data" \
  "$(awk '$1 ~ /^ingot_images_missing_data/ {print $2+0}' "$W/metrics2.txt" | head -1)" 1
code=$(curl -s -o "$W/short.bin" -w '%{http_code}' "$INGOT_URL/v2/images/$VICTIM/file")
expect_true "a download of the short image is refused (5xx), not served partially (got $code, $(stat -c %s "$W/short.bin") bytes)" \
  bash -c "[[ '$code' == 5* ]]"
for id in "${!SURV_FILE[@]}"; do
  [ "$id" = "$VICTIM" ] && continue
  curl -s -m 60 -o "$W/dl.bin" "$INGOT_URL/v2/images/$id/file"
  expect_true "the other images are unaffected ($id)" cmp "${SURV_FILE[$id]}" "$W/dl.bin"
done

ingot_stop
it_finish
