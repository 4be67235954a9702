#!/usr/bin/env bash
# HPE Image Streamer's REST API (/rest/...) end to end: the real ingotd, driven by curl with the
# `Auth` header and X-API-Version its clients send.
#
# Proves: plan scripts (attributes only in deploy scripts), a build plan with typed attributes, a
# golden image uploaded as multipart/form-data (a raw GPT disk with an ext4 root made by sgdisk and
# mke2fs -d), a deployment plan with a fixed override; two OS volumes deployed with different host
# names (202 + task), their tasks and deploy logs (no password in them), usedby, the delete rules
# (409 naming the user), bad values refused with 400 naming the attribute before anything is
# cloned; each volume read back over NBD (nbdcopy + debugfs) holds its own host name and password
# file while the golden image is unchanged; a failing script ends its task in Error with the
# script and line and leaves no volume; records survive a restart; a SIGKILL right after a POST
# leaves the deployment finished or undone. Skips (77) without sgdisk, mke2fs, debugfs or nbdcopy.
. "$(dirname "$0")/lib.sh"
it_init "$@"

for tool in sgdisk mke2fs debugfs nbdcopy jq; do
  command -v "$tool" >/dev/null || { echo "SKIP  $IT_NAME: $tool not installed"; exit 77; }
done

# --- the golden disk: GPT, one ext4 partition from sector 2048 ------------------------------------
ROOT="$IT_TMP/root"
mkdir -p "$ROOT/etc"
echo golden > "$ROOT/etc/hostname"
echo "golden motd" > "$ROOT/etc/motd"
GOLDEN="$IT_TMP/golden.img"
truncate -s 32M "$GOLDEN"
sgdisk -n 1:2048:0 -t 1:8300 "$GOLDEN" > /dev/null 2>&1 || { fail "sgdisk"; it_finish; }
PART_SECTORS=$(( (32 << 20) / 512 - 2048 - 34 ))
mke2fs -q -t ext4 -F -E offset=$((2048 * 512)) -d "$ROOT" "$GOLDEN" "$((PART_SECTORS / 2))k" \
  || { fail "mke2fs -d"; it_finish; }
GOLDEN_SUM="$(sha256sum < "$GOLDEN" | cut -d' ' -f1)"

# --- the daemon: static tokens, NBD on a free port ---------------------------------------------
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

# Image Streamer's clients: token in `Auth`, X-API-Version on every call.
rest() {  # METHOD PATH [JSON]
  local method="$1" path="$2" data="${3:-}"
  local args=(-H "Auth: ${TOKEN:-t-admin}" -H "X-API-Version: 2000")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  req "$method" "$path" "${args[@]}"
}
expect_streamer_error() {  # NAME STATUS MESSAGE-SUBSTRING
  expect_code "$1" "$2" || return 1
  local ec msg
  ec="$(jb .errorCode)"; msg="$(jb .message)"
  if [ -z "$ec" ] || [ "$ec" = null ] || [ "$(jb '.recommendedActions | type')" != array ]; then
    fail "$1: Image Streamer's error shape" "$(head -c 300 "$BODY")"; return 1
  fi
  case "$msg" in *"$3"*) pass "$1: message names '$3'";; *) fail "$1: message" "$msg";; esac
}
wait_task() {  # TASK-URI -> final state in TASK_STATE, body in $BODY
  local i
  for i in $(seq 1 600); do
    rest GET "$1"
    TASK_STATE="$(jb .taskState)"
    [ "$TASK_STATE" != Running ] && [ "$TASK_STATE" != New ] && return 0
    sleep 0.1
  done
  TASK_STATE=timeout
}

rest GET /rest/version
expect_eq "GET /rest/version" "$(jb .minimumVersion)" 300
TOKEN=none rest GET /rest/plan-scripts
expect_code "an unknown Auth token is refused" 401
TOKEN=t-member rest GET /rest/plan-scripts
expect_code "a member may not use the Image Streamer API (admin by policy)" 403
req GET /rest/plan-scripts -H "Auth: t-admin" -H "X-API-Version: 120"
expect_streamer_error "an X-API-Version below 300 is refused" 400 "X-API-Version"

# --- plan scripts ----------------------------------------------------------------------------
SCRIPT='mount /dev/sda1 /
write /etc/hostname "@HostName@\n"
write /etc/motd "@Motd:welcome@\n"
write /etc/root-password "@RootPassword@"
umount /
'
rest POST /rest/plan-scripts "$(jq -n --arg c "$SCRIPT" '{name:"personalise",planType:"deploy",content:$c,description:"host name, motd, password"}')"
expect_code "create the deploy plan script" 201
PS_URI="$(jb .uri)"
expect_eq "its attributes are parsed from the text" "$(jb '.customAttributes | fromjson | map(.name) | join(",")')" \
  "HostName,Motd,RootPassword"
rest POST /rest/plan-scripts '{"name":"general-with-attr","planType":"general","content":"echo @X@"}'
expect_streamer_error "a general script may not hold attributes" 400 "only deploy plan scripts"
rest POST /rest/plan-scripts '{"name":"tidy","planType":"general","content":"mount /dev/sda1 /\nwrite /etc/tidy \"yes\\n\"\numount /\n"}'
expect_code "create a general plan script" 201
TIDY_URI="$(jb .uri)"
rest POST "/rest/plan-scripts/differences/${PS_URI##*/}" '"mount /dev/sda1 /\n"'
expect_eq "differences: lines removed" "$(jb .linesRemoved)" 4

# --- build plan -------------------------------------------------------------------------------
rest POST /rest/build-plans "$(jq -n --arg ps "$PS_URI" --arg t "$TIDY_URI" '{
  name:"web", oeBuildPlanType:"deploy",
  buildStep:[{serialNumber:"1", planScriptUri:$ps, parameters:""},{serialNumber:"2", planScriptUri:$t}],
  customAttributes:[
    {name:"HostName", type:"hostname", constraints:"{\"maxlen\":\"20\"}", description:"host name"},
    {name:"Motd", type:"string", value:"hello", constraints:"{\"regex\":\"[a-z ]+\"}"},
    {name:"RootPassword", type:"password", value:""}]}')"
expect_code "create the build plan" 201
BP_URI="$(jb .uri)"
expect_eq "steps in order" "$(jb '[.buildStep[].planScriptName] | join(",")')" "personalise,tidy"

# --- golden image: multipart upload ------------------------------------------------------------
req POST "/rest/golden-images?name=gold&description=tiny%20disk" -H "Auth: t-admin" -H "X-API-Version: 2000" \
  -F "file=@$GOLDEN;type=application/octet-stream"
expect_code "upload the golden image (multipart/form-data)" 201
GI_URI="$(jb .uri)"; GI_ID="${GI_URI##*/}"
expect_eq "golden image: size" "$(jb .size)" $((32 << 20))
expect_eq "golden image: checksum" "$(jb .checkSum)" "$GOLDEN_SUM"
expect_eq "golden image: format" "$(jb .format)" raw
rest GET "$GI_URI"
expect_eq "golden image: no server paths shown" "$(jb '[keys[] | select(startswith("_"))] | length')" 0
# Golden images are Image API images too: the upload is registered with the same bytes.
GI_IMAGE="$(jb .imageId)"
AUTH_TOKEN=t-admin req GET "/v2/images/$GI_IMAGE"
expect_code "the golden image is an Image API image" 200
expect_eq "... active, named as the golden image, marked with its id" \
  "$(jb '[.status, .name, .disk_format, .ingot_golden_image_id] | join(" ")')" "active gold raw $GI_ID"
expect_eq "... holding the same bytes (sha512)" "$(jb .os_hash_value)" "$(sha512sum < "$GOLDEN" | cut -d' ' -f1)"
# From a catalog image: the Image API's bytes become a golden image.
AUTH_TOKEN=t-admin req_json POST /v2/images '{"name":"gold-src","disk_format":"raw","container_format":"bare"}'
IMG_ID="$(jb .id)"
AUTH_TOKEN=t-admin req PUT "/v2/images/$IMG_ID/file" -H 'Content-Type: application/octet-stream' \
  --data-binary "@$GOLDEN"
expect_code "upload the catalog image" 204
rest POST /rest/golden-images "$(jq -n --arg id "$IMG_ID" '{name:"gold-from-catalog", imageId:$id}')"
expect_code "a golden image from a catalog image" 201
expect_eq "... with the catalog image's bytes" "$(jb .checkSum)" "$GOLDEN_SUM"
rest DELETE "/rest/golden-images/$(jb .id)"
expect_code "an unused golden image is deleted" 204
AUTH_TOKEN=t-admin req GET "/v2/images/$IMG_ID"
expect_code "... and the catalog image it came from stays" 200
req POST "/rest/golden-images?name=scratch" -H "Auth: t-admin" -F "file=@$GOLDEN;type=application/octet-stream"
SCRATCH_ID="$(jb .id)"; SCRATCH_IMAGE="$(jb .imageId)"
rest DELETE "/rest/golden-images/$SCRATCH_ID"
AUTH_TOKEN=t-admin req GET "/v2/images/$SCRATCH_IMAGE"
expect_code "deleting an uploaded golden image deletes its Image API twin" 404
rest POST /rest/golden-images '{"name":"nope","imageId":"00000000-0000-0000-0000-000000000000"}'
expect_streamer_error "an unknown catalog image is refused" 400 "imageId"
printf 'QFI\xfb\0\0\0\x03garbage' > "$IT_TMP/bad.img"
req POST "/rest/golden-images?name=bad" -H "Auth: t-admin" -F "file=@$IT_TMP/bad.img"
expect_code "a malformed image is refused" 400

# --- deployment plan --------------------------------------------------------------------------
rest POST /rest/deployment-plans "$(jq -n --arg bp "$BP_URI" --arg gi "$GI_URI" '{
  name:"web-plan", oeBuildPlanURI:$bp, goldenImageURI:$gi,
  customAttributes:[{name:"Motd", value:"managed by ingot", editable:false, visible:true}]}')"
expect_code "create the deployment plan" 201
DP_URI="$(jb .uri)"
rest POST /rest/deployment-plans "$(jq -n --arg bp "$BP_URI" '{name:"bad-plan", oeBuildPlanURI:$bp,
  customAttributes:[{name:"RootPassword", value:"nope"}]}')"
expect_streamer_error "a deployment plan may not store a password" 400 "RootPassword"

# --- bad values: 400 naming the attribute, nothing cloned ---------------------------------------
deploy_body() {  # NAME HOSTNAME [EXTRA-ATTR-JSON]
  jq -n --arg n "$1" --arg h "$2" --arg dp "$DP_URI" --argjson extra "${3:-[]}" \
    '{name:$n, deploymentPlanUri:$dp, allow:["127.0.0.1"],
      customAttributes:([{name:"HostName",value:$h},{name:"RootPassword",value:"Pw-\($n)-s3cret"}] + $extra)}'
}
rest POST /rest/os-volumes "$(deploy_body bad1 'not_a_host')"
expect_streamer_error "a bad host name is refused" 400 "HostName"
rest POST /rest/os-volumes "$(deploy_body bad2 web9 '[{"name":"Motd","value":"mine"}]')"
expect_streamer_error "a non-editable attribute is refused" 400 "Motd"
rest POST /rest/os-volumes "$(deploy_body bad3 web9 '[{"name":"Nope","value":"x"}]')"
expect_streamer_error "an unknown attribute is refused" 400 "Nope"
rest GET /rest/os-volumes
expect_eq "nothing was cloned for refused requests" "$(jb .total)" 0

# --- two deployments ----------------------------------------------------------------------------
for pair in vol-web:web1 vol-db:db1; do
  name="${pair%%:*}"; host="${pair#*:}"
  rest POST /rest/os-volumes "$(deploy_body "$name" "$host")"
  expect_code "deploy $name" 202
  TASK="$(header Location)"
  wait_task "$TASK"
  expect_eq "$name: task Completed" "$TASK_STATE" Completed
  expect_eq "$name: task progress 100" "$(jb .percentComplete)" 100
done
rest GET "/rest/os-volumes?filter=%22name%3D%27vol-web%27%22"
expect_eq "filter by name" "$(jb '.total')" 1
VOL_WEB="$(jb '.members[0].id')"
expect_eq "vol-web: state" "$(jb '.members[0].state')" Normal
expect_eq "vol-web: attached" "$(jb '.members[0].attached')" true
expect_eq "vol-web: no password shown" "$(jb '.members[0].customAttributes[] | select(.name=="RootPassword") | .value')" ""
# iSCSI initiator names on attach (the address list applies to NBD and iSCSI alike).
rest POST "/rest/os-volumes/$VOL_WEB/attach" '{"initiators":["IQN.2026-01.test:Web1"]}'
expect_code "vol-web: attach with an iSCSI initiator name" 200
rest GET "/rest/os-volumes/$VOL_WEB/storage"
expect_eq "vol-web: storage shows the initiator (lowercased)" "$(jb '.initiators[0]')" iqn.2026-01.test:web1
rest POST "/rest/os-volumes/$VOL_WEB/attach" '{"initiators":["not a name"]}'
expect_code "vol-web: a bad initiator name is refused" 400
rest POST "/rest/os-volumes/$VOL_WEB/attach"
expect_eq "vol-web: attach without initiators serves any initiator" "$(jb '.initiators | length')" 0
rest GET "/rest/os-volumes/$VOL_WEB/log"
expect_code "vol-web: deploy log" 200
grep -q "plan scripts personalise, tidy" "$BODY" && pass "the log names the scripts (one session, in order)" || fail "log content" "$(head -c 300 "$BODY")"
grep -q "s3cret" "$BODY" && fail "the log holds the password" || pass "the log holds no password"
rest GET /rest/tasks
grep -q "s3cret" "$BODY" && fail "tasks hold the password" || pass "tasks hold no password"
grep -rqa "s3cret" "$INGOT_LOG" && fail "the daemon's log holds the password" || pass "the daemon's log holds no password"

# --- usedby and the delete rules ---------------------------------------------------------------
rest GET "/rest/plan-scripts/${PS_URI##*/}/usedby/readonly"
expect_eq "plan script used by the build plan" "$(jb '.[0].name')" web
rest GET "/rest/deployment-plans/${DP_URI##*/}/usedby"
expect_eq "deployment plan used by two volumes" "$(jb '.osVolumes | length')" 2
rest DELETE "/rest/plan-scripts/${PS_URI##*/}"
expect_streamer_error "a plan script in use is not deleted" 409 "'web'"
rest DELETE "/rest/build-plans/${BP_URI##*/}"
expect_streamer_error "a build plan in use is not deleted" 409 "'web-plan'"
rest DELETE "/rest/golden-images/$GI_ID"
expect_streamer_error "a golden image in use is not deleted" 409 "'web-plan'"
rest DELETE "/rest/deployment-plans/${DP_URI##*/}"
expect_streamer_error "a deployment plan in use is not deleted" 409 "vol-"

# --- the volumes' bytes over NBD ---------------------------------------------------------------
read_file() {  # VOLUME PATH
  local disk="$IT_TMP/$1.disk"
  [ -f "$disk" ] || { nbdcopy "nbd://127.0.0.1:$NBD_PORT/$1" "$disk" && \
    dd if="$disk" of="$disk.part" bs=1M iflag=skip_bytes skip=$((2048 * 512)) status=none; }
  debugfs -R "cat $2" "$disk.part" 2>/dev/null
}
if [ -n "$NBD_PORT" ]; then
  expect_eq "vol-web: /etc/hostname" "$(read_file vol-web /etc/hostname)" web1
  expect_eq "vol-db: /etc/hostname" "$(read_file vol-db /etc/hostname)" db1
  expect_eq "vol-web: /etc/motd from the deployment plan" "$(read_file vol-web /etc/motd)" "managed by ingot"
  expect_eq "vol-db: the password reached the volume" "$(read_file vol-db /etc/root-password)" "Pw-vol-db-s3cret"
  expect_eq "vol-web: the second step ran" "$(read_file vol-web /etc/tidy)" yes
else
  fail "NBD listener address logged"
fi
# --- redeploy: vol-db made again with a new host name; its password must be given again -----------
rest GET "/rest/os-volumes?filter=%22name%3D%27vol-db%27%22"
VOL_DB="$(jb '.members[0].id')"
rest POST "/rest/os-volumes/$VOL_DB/redeploy" '{"customAttributes":[{"name":"HostName","value":"db2"}]}'
expect_streamer_error "a redeploy without the password (never recorded) is refused" 400 "RootPassword"
rest POST "/rest/os-volumes/$VOL_DB/redeploy" \
  '{"customAttributes":[{"name":"HostName","value":"db2"},{"name":"RootPassword","value":"Pw-again-s3cret"}]}'
expect_code "redeploy vol-db" 202
wait_task "$(header Location)"
expect_eq "the redeploy's task Completed" "$TASK_STATE" Completed
rest GET "/rest/os-volumes/$VOL_DB"
expect_eq "vol-db after the redeploy: Normal, attached, its new value recorded" \
  "$(jb '[.state, (.attached|tostring), (.customAttributes[] | select(.name=="HostName") | .value)] | join(" ")')" \
  "Normal true db2"
INGOT_CLI="$(dirname "$INGOTD")/ingot"
if [ -x "$INGOT_CLI" ]; then
  INGOT_URL="$INGOT_URL" OS_AUTH_TOKEN=t-admin "$INGOT_CLI" volume redeploy "$VOL_DB" \
    --attr HostName=db2 --attr RootPassword=Pw-again-s3cret --engine native > "$IT_TMP/redeploy.out" 2>&1 \
    && grep -q "OS volume $VOL_DB redeployed" "$IT_TMP/redeploy.out" \
    && pass "ingot volume redeploy waits for the task" || fail "CLI redeploy" "$(cat "$IT_TMP/redeploy.out")"
fi
if [ -n "$NBD_PORT" ]; then
  rm -f "$IT_TMP/vol-db.disk" "$IT_TMP/vol-db.disk.part"
  expect_eq "vol-db: the new host name over NBD" "$(read_file vol-db /etc/hostname)" db2
  expect_eq "vol-db: the new password reached the volume" "$(read_file vol-db /etc/root-password)" "Pw-again-s3cret"
fi
OUT="$IT_TMP/golden.back" req GET "/rest/golden-images/download/$GI_ID" -H "Auth: t-admin"
expect_eq "the golden image is unchanged" "$(sha256sum < "$IT_TMP/golden.back" | cut -d' ' -f1)" "$GOLDEN_SUM"

# --- a failing script --------------------------------------------------------------------------
rest POST /rest/plan-scripts '{"name":"broken","planType":"deploy","content":"mount /dev/sda1 /\nwrite /no/such/dir/@HostName@ \"x\"\n"}'
BROKEN_URI="$(jb .uri)"
rest POST /rest/build-plans "$(jq -n --arg ps "$BROKEN_URI" '{name:"broken-bp",oeBuildPlanType:"deploy",buildStep:[{planScriptUri:$ps}]}')"
rest POST /rest/deployment-plans "$(jq -n --arg bp "$(jb .uri)" --arg gi "$GI_URI" '{name:"broken-dp",oeBuildPlanURI:$bp,goldenImageURI:$gi}')"
BROKEN_DP="$(jb .uri)"
rest POST /rest/os-volumes "$(jq -n --arg dp "$BROKEN_DP" '{name:"vol-broken",deploymentPlanUri:$dp,customAttributes:[{name:"HostName",value:"x1"}]}')"
expect_code "deploy with a failing script" 202
wait_task "$(header Location)"
expect_eq "the failing deployment's task ends in Error" "$TASK_STATE" Error
case "$(jb '.taskErrors[0].message')" in
  *broken*line*2*) pass "the task error names the script and line";;
  *) fail "task error" "$(jb '.taskErrors[0]')";;
esac
nbdinfo --list "nbd://127.0.0.1:$NBD_PORT" 2>/dev/null | grep -q 'vol-broken' \
  && fail "a failed volume is served" || pass "a failed deployment leaves no volume served"

# --- restart: records persist; SIGKILL right after a POST: finished or undone ------------------
ingot_stop
start_daemon
rest GET /rest/os-volumes
expect_eq "records survive a restart" "$(jb '[.members[].name] | sort | join(",")')" "vol-broken,vol-db,vol-web"
rest POST /rest/os-volumes "$(deploy_body vol-killed web7)"
expect_code "deploy vol-killed" 202
KILLED_TASK="$(header Location)"
ingot_kill9
start_daemon
wait_task "$KILLED_TASK"
rest GET "/rest/os-volumes?filter=name='vol-killed'"
STATE="$(jb '.members[0].state')"
case "$TASK_STATE/$STATE" in
  Completed/Normal|Error/Failed) pass "after SIGKILL the deployment is finished or undone ($TASK_STATE/$STATE)";;
  *) fail "after SIGKILL" "task $TASK_STATE, volume $STATE";;
esac
if [ "$STATE" = Failed ]; then
  "$INGOTD" volume --data-dir "$INGOT_DATA" info vol-killed > /dev/null 2>&1 \
    && fail "an undone deployment left its clone" || pass "an undone deployment left no clone"
fi

# --- deleting in order works ---------------------------------------------------------------------
for v in $(curl -s -H "Auth: t-admin" "$INGOT_URL/rest/os-volumes" | jq -r '.members[].id'); do
  rest DELETE "/rest/os-volumes/$v"
  [ "$CODE" = 204 ] || fail "delete volume $v" "$CODE $(head -c 200 "$BODY")"
done
rest DELETE "/rest/deployment-plans/${DP_URI##*/}"
expect_code "the deployment plan is deleted once unused" 204
rest DELETE "/rest/deployment-plans/${BROKEN_DP##*/}"
expect_code "the failing deployment plan is deleted once unused" 204
rest DELETE "/rest/golden-images/$GI_ID"
expect_code "the golden image is deleted once unused" 204

it_finish
