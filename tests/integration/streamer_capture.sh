#!/usr/bin/env bash
# Capture (POST /rest/golden-images with osVolumeURI and a capture build plan) end to end: the real
# ingotd driven by curl as Image Streamer's clients drive it.
#
# Proves: a volume deployed from a GPT + ext4 golden image is changed by a real NBD client
# (nbdcopy out, debugfs -w on its ext4 partition, nbdcopy back); capturing it while a client holds
# it is refused (409); a capture with a generalising plan (removes /etc/hostname and
# /etc/machine-id, writes a marker) answers 202 + task, and the new golden image (qcow2) is smaller
# than its virtual size, its checkSum is the sha256sum of its download, and a volume deployed from
# it holds the marker and the change made through the export and neither removed file; the source
# volume reads the same before and after; the same with the guestfish engine (unless
# INGOT_TEST_CAPTURE_GUESTFISH=0 or guestfish is missing); a SIGKILL in the middle of a capture
# leaves, after restart, no golden image, no scratch files, the task in Error and the source
# volume intact. The CLI's `ingot deploy golden capture` too. Skips (77) without sgdisk, mke2fs, debugfs, nbdcopy, qemu-io or jq.
. "$(dirname "$0")/lib.sh"
it_init "$@"

for tool in sgdisk mke2fs debugfs nbdcopy qemu-io jq; do
  command -v "$tool" >/dev/null || { echo "SKIP  $IT_NAME: $tool not installed"; exit 77; }
done
export LIBGUESTFS_BACKEND=direct
[ "${INGOT_TEST_KVM:-0}" = 1 ] || export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
GUESTFISH=1
command -v guestfish >/dev/null || GUESTFISH=0
[ "${INGOT_TEST_CAPTURE_GUESTFISH:-1}" = 0 ] && GUESTFISH=0

# --- the golden disk: GPT, one ext4 partition from sector 2048 ------------------------------------
ROOT="$IT_TMP/root"
mkdir -p "$ROOT/etc"
echo golden > "$ROOT/etc/hostname"
echo 0123456789abcdef0123456789abcdef > "$ROOT/etc/machine-id"
echo "golden motd" > "$ROOT/etc/motd"
GOLDEN="$IT_TMP/golden.img"
SIZE=$((32 << 20))
truncate -s "$SIZE" "$GOLDEN"
sgdisk -n 1:2048:0 -t 1:8300 "$GOLDEN" > /dev/null 2>&1 || { fail "sgdisk"; it_finish; }
PART_OFF=$((2048 * 512))
PART_SECTORS=$(( SIZE / 512 - 2048 - 34 ))
mke2fs -q -t ext4 -F -E offset=$PART_OFF -d "$ROOT" "$GOLDEN" "$((PART_SECTORS / 2))k" \
  || { fail "mke2fs -d"; it_finish; }

# --- the daemon ----------------------------------------------------------------------------------
admin_member_tokens "$IT_TMP/tokens.toml"
cat > "$IT_TMP/ingot.toml" <<EOF
[deploy]
nbd_listen = "127.0.0.1:0"
EOF
start_daemon() {
  ingot_start --config "$IT_TMP/ingot.toml" --auth tokens --tokens-file "$IT_TMP/tokens.toml" || it_finish
  NBD_PORT="$(grep -m1 'nbd.serving' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
}
start_daemon
[ -n "$NBD_PORT" ] || { fail "NBD listener address logged"; it_finish; }

rest() {  # METHOD PATH [JSON]
  local method="$1" path="$2" data="${3:-}"
  local args=(-H "Auth: t-admin" -H "X-API-Version: 2000")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  req "$method" "$path" "${args[@]}"
}
wait_task() {  # TASK-URI [TENTHS] -> TASK_STATE, body in $BODY
  local i
  for i in $(seq 1 "${2:-3000}"); do
    rest GET "$1"
    TASK_STATE="$(jb .taskState)"
    [ "$TASK_STATE" != Running ] && [ "$TASK_STATE" != New ] && return 0
    sleep 0.1
  done
  TASK_STATE=timeout
}
nbd_uri() { echo "nbd://127.0.0.1:$NBD_PORT/$1"; }
volume_sum() {  # VOLUME: sha256 of its bytes read over NBD
  nbdcopy "$(nbd_uri "$1")" - 2>/dev/null | sha256sum | cut -d' ' -f1
}
read_file() {  # VOLUME PATH: a file of the volume's ext4 root, read over NBD
  local disk="$IT_TMP/read-$1.disk"
  nbdcopy "$(nbd_uri "$1")" "$disk" && \
    dd if="$disk" of="$disk.part" bs=1M iflag=skip_bytes skip=$PART_OFF status=none
  debugfs -R "cat $2" "$disk.part" 2>/dev/null
  rm -f "$disk" "$disk.part"
}
absent() {  # VOLUME PATH: true when the file is not in the volume's root
  local disk="$IT_TMP/abs-$1.disk" out
  nbdcopy "$(nbd_uri "$1")" "$disk" && \
    dd if="$disk" of="$disk.part" bs=1M iflag=skip_bytes skip=$PART_OFF status=none
  out="$(debugfs -R "stat $2" "$disk.part" 2>&1)"
  rm -f "$disk" "$disk.part"
  case "$out" in *"File not found"*) return 0;; *) return 1;; esac
}

# --- golden image, deploy plan, one volume -------------------------------------------------------
req POST "/rest/golden-images?name=gold" -H "Auth: t-admin" -H "X-API-Version: 2000" \
  -F "file=@$GOLDEN;type=application/octet-stream"
expect_code "upload the golden image" 201
GI_URI="$(jb .uri)"
rest POST /rest/build-plans '{"name":"as-is","oeBuildPlanType":"deploy","buildStep":[]}'
expect_code "a deploy build plan without steps" 201
DBP_URI="$(jb .uri)"
rest POST /rest/deployment-plans "$(jq -n --arg bp "$DBP_URI" --arg gi "$GI_URI" '{name:"from-gold",oeBuildPlanURI:$bp,goldenImageURI:$gi}')"
DP_URI="$(jb .uri)"
deploy() {  # NAME DEPLOYMENT-PLAN-URI -> VOL_URI
  rest POST /rest/os-volumes "$(jq -n --arg n "$1" --arg dp "$2" '{name:$n,deploymentPlanUri:$dp,allow:["127.0.0.1"]}')"
  expect_code "deploy $1" 202
  wait_task "$(header Location)"
  expect_eq "$1: deployed" "$TASK_STATE" Completed
  VOL_URI="$(jb .associatedResource.resourceUri)"
}
deploy server1 "$DP_URI"
SRC_URI="$VOL_URI"

# --- change a file through the export: nbdcopy out, debugfs -w on the partition, nbdcopy back -----
DISK="$IT_TMP/server1.disk"
nbdcopy "$(nbd_uri server1)" "$DISK" || fail "nbdcopy the volume out"
dd if="$DISK" of="$DISK.part" bs=1M iflag=skip_bytes skip=$PART_OFF status=none
echo "changed through the export" > "$IT_TMP/app.conf"
printf 'cd /etc\nwrite %s app.conf\n' "$IT_TMP/app.conf" > "$IT_TMP/debugfs.cmds"
debugfs -w -f "$IT_TMP/debugfs.cmds" "$DISK.part" > /dev/null 2>&1 || fail "debugfs -w"
dd if="$DISK.part" of="$DISK" bs=1M oflag=seek_bytes seek=$PART_OFF conv=notrunc status=none
nbdcopy "$DISK" "$(nbd_uri server1)" || fail "nbdcopy the volume back"
rm -f "$DISK" "$DISK.part"
expect_eq "the change is in the volume" "$(read_file server1 /etc/app.conf)" "changed through the export"
SRC_SUM="$(volume_sum server1)"

# --- the capture plan -----------------------------------------------------------------------------
GEN='mount /dev/sda1 /
rm-f /etc/hostname
rm-f /etc/machine-id
write /etc/generalised "yes\n"
umount /
'
rest POST /rest/plan-scripts "$(jq -n --arg c "$GEN" '{name:"generalise",planType:"capture",content:$c}')"
expect_code "a capture plan script" 201
GEN_URI="$(jb .uri)"
rest POST /rest/build-plans "$(jq -n --arg ps "$GEN_URI" '{name:"capture",oeBuildPlanType:"capture",buildStep:[{serialNumber:"1",planScriptUri:$ps}]}')"
expect_code "a capture build plan" 201
CBP_URI="$(jb .uri)"
capture_body() {  # NAME ENGINE [BUILD-PLAN]
  jq -n --arg n "$1" --arg e "$2" --arg v "$SRC_URI" --arg bp "${3:-$CBP_URI}" \
    '{type:"GoldenImage",name:$n,description:"captured",imageCapture:"true",osVolumeURI:$v,buildPlanUri:$bp,engine:$e}'
}
rest POST /rest/golden-images "$(capture_body bad native "$DBP_URI")"
expect_code "a deploy build plan is not a capture plan" 400
rest POST /rest/golden-images "$(capture_body gold native)"
expect_code "a taken name is refused" 409

# A client holding the volume over NBD: refused with 409 (its writes may be in flight).
qemu-io -f raw "$(nbd_uri server1)" < <(sleep 30) > /dev/null 2>&1 &
HOLDER=$!
for _ in $(seq 1 50); do
  [ "$(grep -c 'nbd.attach' "$INGOT_LOG")" -ge 1 ] && grep -q 'export=server1' <(grep 'nbd.attach' "$INGOT_LOG" | tail -1) && break
  sleep 0.1
done
sleep 0.3
rest POST /rest/golden-images "$(capture_body busy native)"
expect_code "capture while a client holds the volume: 409" 409
kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null
sleep 0.3

# --- capture (engine), deploy the result, look inside ------------------------------------------------
round_trip() {  # ENGINE
  local e="$1" t0 t1 gi_id size vsize sum
  t0=$(date +%s%N)
  rest POST /rest/golden-images "$(capture_body "captured-$e" "$e")"
  expect_code "$e: capture answers 202 with a task" 202
  local task; task="$(header Location)"
  expect_eq "$e: the task names the golden image to be" "$(jb .associatedResource.resourceCategory)" golden-images
  wait_task "$task"
  t1=$(date +%s%N)
  expect_eq "$e: capture task Completed" "$TASK_STATE" Completed || { it_log "$(cat "$BODY")"; return; }
  echo "# $e: capture took $(( (t1 - t0) / 1000000 )) ms (server: $(jb .captureMillis) ms)"
  local gi_uri; gi_uri="$(jb .associatedResource.resourceUri)"
  gi_id="${gi_uri##*/}"
  rest GET "$gi_uri"
  expect_eq "$e: the golden image is qcow2" "$(jb .format)" qcow2
  expect_eq "$e: imageCapture" "$(jb .imageCapture)" true
  size="$(jb .size)"; vsize="$(jb .virtualSize)"; sum="$(jb .checkSum)"
  echo "# $e: golden image $size bytes for a $vsize-byte disk"
  expect_eq "$e: virtual size is the volume's" "$vsize" "$SIZE"
  [ "$size" -lt "$vsize" ] && pass "$e: unallocated space is not stored ($size < $vsize)" \
    || fail "$e: golden image size" "$size >= $vsize"
  OUT="$IT_TMP/captured-$e.qcow2" req GET "/rest/golden-images/download/$gi_id" -H "Auth: t-admin"
  expect_eq "$e: checkSum is the download's sha256sum" "$(sha256sum < "$IT_TMP/captured-$e.qcow2" | cut -d' ' -f1)" "$sum"
  # Registered as an Image API image right after the task ends.
  local img="" _
  for _ in $(seq 100); do
    rest GET "$gi_uri"; img="$(jb '.imageId // empty')"; [ -n "$img" ] && break; sleep 0.2
  done
  rest GET "/rest/golden-images/archive/$gi_id"
  grep -q "^task Capture golden image .*: Completed" "$BODY" && grep -q "engine=$e" "$BODY" \
    && pass "$e: /rest/golden-images/archive has the capture's task and script log" \
    || fail "$e: golden image archive" "$(head -c 400 "$BODY")"
  AUTH_TOKEN=t-admin req GET "/v2/images/$img"
  expect_eq "$e: the captured golden image is an Image API image too" \
    "$(jb '[.status, .disk_format, .size] | map(tostring) | join(" ")')" "active qcow2 $size"
  if command -v qemu-img >/dev/null; then
    qemu-img check -q "$IT_TMP/captured-$e.qcow2" && pass "$e: qemu-img check" || fail "$e: qemu-img check"
  fi
  rest POST /rest/deployment-plans "$(jq -n --arg bp "$DBP_URI" --arg gi "$gi_uri" --arg n "from-$e" '{name:$n,oeBuildPlanURI:$bp,goldenImageURI:$gi}')"
  deploy "server-$e" "$(jb .uri)"
  expect_eq "$e: the new volume holds the marker" "$(read_file "server-$e" /etc/generalised)" yes
  expect_eq "$e: ... and the change made through the export" "$(read_file "server-$e" /etc/app.conf)" "changed through the export"
  absent "server-$e" /etc/hostname && pass "$e: /etc/hostname was removed" || fail "$e: /etc/hostname still there"
  absent "server-$e" /etc/machine-id && pass "$e: /etc/machine-id was removed" || fail "$e: /etc/machine-id still there"
  expect_eq "$e: the source volume is unchanged" "$(volume_sum server1)" "$SRC_SUM"
}
round_trip native
if [ "$GUESTFISH" = 1 ]; then round_trip guestfish; else skip "guestfish round trip" "guestfish not installed or disabled"; fi
# The CLI: ingot deploy golden capture waits for the task and shows the new golden image.
INGOT_CLI="${INGOT_CLI:-$(dirname "$INGOTD")/ingot}"
if [ -x "$INGOT_CLI" ]; then
  CLI_OUT="$("$INGOT_CLI" --url "$INGOT_URL" --token t-admin --json deploy golden capture cli-captured \
    --volume "${SRC_URI##*/}" --build-plan "${CBP_URI##*/}" --engine native 2>&1)"
  expect_eq "CLI: ingot deploy golden capture shows the new golden image" \
    "$(jq -r '.name + " " + .format' <<<"$CLI_OUT" 2>/dev/null)" "cli-captured qcow2" || it_log "$CLI_OUT"
else
  skip "CLI capture" "no ingot binary beside ingotd"
fi
[ -z "$(ls -A "$INGOT_DATA/deploy/capture")" ] && pass "no scratch left after captures" \
  || fail "scratch left" "$(ls -A "$INGOT_DATA/deploy/capture")"

# --- SIGKILL in the middle of a capture ------------------------------------------------------------
# The guestfish engine's run lasts seconds: the kill lands while the scripts run, with the scratch
# volume made. Without guestfish the kill follows the POST at once (finished or undone either way).
KILL_ENGINE=native; [ "$GUESTFISH" = 1 ] && KILL_ENGINE=guestfish
rest POST /rest/golden-images "$(capture_body killed "$KILL_ENGINE")"
expect_code "capture to be killed" 202
KTASK="$(header Location)"
if [ "$KILL_ENGINE" = guestfish ]; then
  for _ in $(seq 1 300); do
    rest GET "$KTASK"
    case "$(jb .taskStatus)" in *"Running capture plan scripts"*) break;; esac
    sleep 0.1
  done
  sleep 1
  [ -n "$(ls -A "$INGOT_DATA/deploy/capture")" ] && pass "the kill lands mid-capture (scratch exists)" \
    || fail "the kill did not land mid-capture"
fi
descendants() { local p; for p in $(pgrep -P "$1"); do echo "$p"; descendants "$p"; done; }
KIDS="$(descendants "$INGOT_PID" | tr '\n' ' ')"
ingot_kill9
sleep 1
start_daemon
wait_task "$KTASK"
rest GET /rest/golden-images
GI_NAMES="$(jb '[.members[].name] | sort | join(",")')"
GI_COUNT="$(jb '.members | length')"
if [ "$TASK_STATE" = Error ]; then
  pass "after SIGKILL the capture's task is Error"
  rest GET "$KTASK"
  expect_eq "... naming the restart" "$(jb '.taskErrors[0].errorCode')" CAPTURE_INTERRUPTED
  case ",$GI_NAMES," in *,killed,*) fail "a half-made golden image is listed";; *) pass "no half-made golden image is listed";; esac
elif [ "$TASK_STATE" = Completed ] && [ "$KILL_ENGINE" = native ]; then
  pass "after SIGKILL the capture was already finished"
else
  fail "after SIGKILL" "task $TASK_STATE"
fi
[ -z "$(ls -A "$INGOT_DATA/deploy/capture")" ] && pass "no scratch left after the restart" \
  || fail "scratch left after the restart" "$(ls -A "$INGOT_DATA/deploy/capture")"
ls -A "$INGOT_DATA/deploy/golden" | grep -q '^\.tmp-' && fail "a temporary golden file is left" \
  || pass "no temporary golden file is left"
expect_eq "golden files are exactly the recorded ones" \
  "$(ls "$INGOT_DATA/deploy/golden" | grep -v '^empty.raw$' | wc -l)" "$GI_COUNT"
expect_eq "the source volume is intact after the kill" "$(volume_sum server1)" "$SRC_SUM"
# The killed daemon's children (guestfish and its appliance) die with it (PR_SET_PDEATHSIG,
# libguestfs's recovery process).
sleep 2
LEFT=""
for p in $KIDS; do kill -0 "$p" 2>/dev/null && LEFT="$LEFT $p"; done
if [ -n "$LEFT" ]; then
  fail "processes of the killed capture are still running" "$LEFT"
  for p in $LEFT; do kill -KILL "$p" 2>/dev/null; done
else
  pass "no process of the killed capture is left (${KIDS:-none})"
fi

it_finish
