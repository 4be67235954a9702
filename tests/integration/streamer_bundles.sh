#!/usr/bin/env bash
# HPE Image Streamer's artifact bundles (/rest/artifact-bundles) end to end: the real ingotd,
# driven by curl with the `Auth` header and X-API-Version its clients send.
#
# Proves: a bundle built here in Image Streamer's exact published layout (MANIFEST.MF,
# SHA256SUM.sha256sum with tab-separated sums of every entry, <uuid>_planscript.json,
# _buildplan.json naming scripts by /rest/plan-scripts/<uuid>, _deploymentplan.json naming its build
# plan and golden image by name, _goldenimage.json, the golden image payload — a zip of one raw
# disk with a GPT, a vfat EFI system partition and an ext4 root made with sgdisk, mkfs.vfat and
# mke2fs -d — under the golden image's name) is uploaded (multipart, as the SDKs do) and extracted
# (PUT text/plain); hostile bundles (a bad checksum, a '..' entry, an unlisted entry) are refused
# with 400 and leave nothing; extracting twice extracts nothing new, and names taken by other
# contents end the extraction's task in Error naming the artifacts; two servers deployed
# through /rest/os-volumes with different attribute values each hold their own host name, network
# configuration (from @Nic1.*@ in an `upload -<<EOF` heredoc) and uploaded file, read back with both
# plan script engines (native and the real guestfish); the volumes are independent and the golden
# image unchanged. Then a bundle exported from the deployment plan (its dependencies pulled in),
# downloaded and re-imported into a fresh ingotd holds equal artifacts; a backup restores what was
# deleted. Last, SIGKILL during the extraction of a bundle with a 1 GiB golden image: after the
# restart nothing half-made is listed, no stray file is left, and extracting again completes.
# Skips (77) without sgdisk, mke2fs, mkfs.vfat, zip, jq or guestfish.
. "$(dirname "$0")/lib.sh"
it_init "$@"

for tool in sgdisk mke2fs mkfs.vfat zip unzip jq guestfish; do
  command -v "$tool" >/dev/null || { echo "SKIP  $IT_NAME: $tool not installed"; exit 77; }
done
export LIBGUESTFS_BACKEND=direct
[ "${INGOT_TEST_KVM:-0}" = 1 ] || export LIBGUESTFS_BACKEND_SETTINGS=force_tcg

admin_member_tokens "$IT_TMP/tokens.toml"
start_daemon() { ingot_start --auth tokens --tokens-file "$IT_TMP/tokens.toml" || it_finish; }
rest() {  # METHOD PATH [JSON]
  local method="$1" path="$2" data="${3:-}"
  local args=(-H "Auth: t-admin" -H "X-API-Version: 2000")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  req "$method" "$path" "${args[@]}"
}
upload_bundle() {  # ZIP [QUERY]: multipart upload as python-hpOneView sends it
  req POST "/rest/artifact-bundles${2:-}" -H "Auth: t-admin" -H "X-API-Version: 2000" \
    -F "file=@$1;type=application/octet-stream"
}
enc() { printf '%s' "$1" | jq -sRr @uri; }
wait_task() {
  local i
  for i in $(seq 1 600); do
    rest GET "$1"
    TASK_STATE="$(jb .taskState)"
    [ "$TASK_STATE" != Running ] && [ "$TASK_STATE" != New ] && return 0
    sleep 0.1
  done
  TASK_STATE=timeout
}

# --- the golden image: GPT, 8 MiB EFI (vfat) + ext4 root ----------------------------------------
TREE="$IT_TMP/tree"
mkdir -p "$TREE/etc/sysconfig/network-scripts" "$TREE/boot/efi"
echo golden > "$TREE/etc/hostname"
printf 'ID=rhel\nVERSION_ID="8.6"\n' > "$TREE/etc/os-release"
GOLDEN="$IT_TMP/golden.raw"
truncate -s 64M "$GOLDEN"
sgdisk -n 1:2048:+8M -t 1:ef00 -n 2:0:0 -t 2:8300 "$GOLDEN" > /dev/null
P2_START="$(sgdisk -i 2 "$GOLDEN" | awk '/First sector/{print $3}')"
P2_END="$(sgdisk -i 2 "$GOLDEN" | awk '/Last sector/{print $3}')"
mke2fs -q -t ext4 -F -E offset=$((P2_START * 512)) -d "$TREE" "$GOLDEN" $(((P2_END - P2_START + 1) / 2))k \
  && mkfs.vfat --offset 2048 "$GOLDEN" 8192 > /dev/null 2>&1 \
  || { fail "golden image"; it_finish; }
GOLDEN_SUM="$(sha256sum < "$GOLDEN" | cut -d' ' -f1)"

# --- the bundle, in Image Streamer's layout ------------------------------------------------------
# make_bundle DIR NAME GOLDEN_NAME IMAGE: writes DIR/NAME.zip
make_bundle() {
  local dir="$1" bname="$2" gname="$3" image="$4"
  rm -rf "$dir"; mkdir -p "$dir/pay"
  local u_mount=1d5c3e1c-0c1e-4c3b-9d34-0a1b2c3d4e01 u_host=1d5c3e1c-0c1e-4c3b-9d34-0a1b2c3d4e02
  local u_net=1d5c3e1c-0c1e-4c3b-9d34-0a1b2c3d4e03 u_umount=1d5c3e1c-0c1e-4c3b-9d34-0a1b2c3d4e04
  local u_bp=5b0e3a10-7d1f-4c2e-9a61-3f2d8c4b7e10 u_dp=5b0e3a10-7d1f-4c2e-9a61-3f2d8c4b7e11
  local u_gi=5b0e3a10-7d1f-4c2e-9a61-3f2d8c4b7e12 u_img=5b0e3a10-7d1f-4c2e-9a61-3f2d8c4b7e13
  mkps() {  # UUID NAME TYPE CONTENT
    jq -cn --arg id "$1" --arg n "$2" --arg t "$3" --arg c "$4" \
      '{type:"PlanScript",uri:null,category:null,eTag:null,created:null,modified:null,id:$id,name:$n,
        description:"test",status:null,state:null,planType:$t,content:$c,customAttributes:null,
        hpProvided:true,dependentArtifacts:null}' > "$dir/$1_planscript.json"
  }
  mkps $u_mount "$bname-mount" general 'mount /dev/sda2 /'
  mkps $u_host "$bname-hostname" deploy 'write /etc/hostname "@HostName@\n"'
  mkps $u_net "$bname-network" deploy 'upload -<<EOF /etc/sysconfig/network-scripts/ifcfg-eth0
DEVICE=eth0
BOOTPROTO=static
IPADDR=@Nic1.ipaddress@
NETMASK=@Nic1.netmask@
GATEWAY=@Nic1.gateway@
EOF
upload -<<EOF /etc/motd
Deployed by Ingot for @HostName@
EOF'
  mkps $u_umount "$bname-unmount" general 'umount /'
  jq -cn --arg bp "$bname-plan" --arg m $u_mount --arg h $u_host --arg nt $u_net --arg um $u_umount --arg p "$bname" \
    --arg id $u_bp '{type:"OeBuildPlan",uri:null,buildPlanid:$id,name:$bp,description:"test",hpProvided:true,
      oeBuildPlanType:"deploy",
      buildStep:[{planScriptUri:"/rest/plan-scripts/\($m)",serialNumber:"1",parameters:null,planScriptName:"\($p)-mount"},
                 {planScriptUri:"/rest/plan-scripts/\($h)",serialNumber:"2",parameters:null,planScriptName:"\($p)-hostname"},
                 {planScriptUri:"/rest/plan-scripts/\($nt)",serialNumber:"3",parameters:null,planScriptName:"\($p)-network"},
                 {planScriptUri:"/rest/plan-scripts/\($um)",serialNumber:"4",parameters:null,planScriptName:"\($p)-unmount"}],
      customAttributes:[{name:"HostName",description:"host name",value:"",constraints:"{\"helpText\":\"\"}",type:"hostname"},
        {name:"Nic1",description:"NIC",value:null,type:"nic",
         constraints:"{\"ipv4static\":true,\"ipv4dhcp\":true,\"ipv4disable\":false,\"parameters\":[\"dhcp\",\"dns1\",\"dns2\",\"gateway\",\"ipaddress\",\"mac\",\"netmask\"]}"}]}' \
    > "$dir/${u_bp}_buildplan.json"
  jq -cn --arg n "$bname-deploy" --arg bp "$bname-plan" --arg gi "$gname" --arg id $u_dp \
    '{type:"OEDeploymentPlan",hpProvided:true,importMetadata:false,eTag:null,created:null,modified:null,
      goldenImageURI:$gi,oeBuildPlanURI:$bp,description:"test",category:null,status:null,uri:null,name:$n,id:$id,state:null,
      customAttributes:[{visible:true,constraints:"{\"helpText\":\"\"}",editable:true,description:"host name",
        name:"HostName",value:"",id:"5b0e3a10-7d1f-4c2e-9a61-3f2d8c4b7e14",type:"hostname"}]}' \
    > "$dir/${u_dp}_deploymentplan.json"
  jq -cn --arg n "$gname" --arg b "$bname" --arg id $u_gi \
    '{type:"GoldenImage",checkSum:null,importedFromBundle:true,bundleName:$b,readOnly:true,description:"GPT, EFI, ext4",
      uri:null,name:$n,id:$id,state:null,size:0,eTag:null}' > "$dir/${u_gi}_goldenimage.json"
  ln "$image" "$dir/pay/$u_img" 2>/dev/null || cp "$image" "$dir/pay/$u_img"
  (cd "$dir/pay" && zip -q -X -1 payload.zip "$u_img") && mv "$dir/pay/payload.zip" "$dir/$gname"
  printf 'Artifact Name:%s\nDescription:Test artifacts (c) nobody\nRead Only:false\nTime Stamp:2026-12-01T10:00:00.000Z\nArtifact Type:USER' \
    "$bname" > "$dir/MANIFEST.MF"
  (cd "$dir" && for f in *_planscript.json "$gname" *_goldenimage.json *_buildplan.json *_deploymentplan.json MANIFEST.MF; do
     printf '%s\t%s\n' "$f" "$(sha256sum < "$f" | cut -d' ' -f1)"; done > SHA256SUM.sha256sum)
  (cd "$dir" && rm -rf pay && zip -q -X "../$bname.zip" -- *)
}
make_bundle "$IT_TMP/b1" rhel-test "RHEL Test Golden - 2026-12-01" "$GOLDEN"
BUNDLE="$IT_TMP/rhel-test.zip"
unzip -Z1 "$BUNDLE" > "$IT_TMP/b1.list" && grep -qx 'RHEL Test Golden - 2026-12-01' "$IT_TMP/b1.list" && pass "bundle built in Image Streamer's layout" \
  || fail "bundle layout"

start_daemon

# --- hostile bundles: 400, nothing kept ----------------------------------------------------------
hostile() {  # NAME WORDS: zip $IT_TMP/h made from b1 after the caller changed it
  (cd "$IT_TMP/h" && rm -f ../h.zip && zip -q -X ../h.zip -- *)
  upload_bundle "$IT_TMP/h.zip"
  expect_code "$1: refused" 400
  case "$(jb .message)" in *"$2"*) pass "$1: message names '$2'";; *) fail "$1: message" "$(jb .message)";; esac
}
rm -rf "$IT_TMP/h"; cp -r "$IT_TMP/b1" "$IT_TMP/h"
sed -i '1s/\t[0-9a-f]*$/\t0000000000000000000000000000000000000000000000000000000000000000/' "$IT_TMP/h/SHA256SUM.sha256sum"
hostile "a checksum mismatch" "does not match its SHA-256"
rm -rf "$IT_TMP/h"; cp -r "$IT_TMP/b1" "$IT_TMP/h"; echo x > "$IT_TMP/h/extra.txt"
hostile "an entry SHA256SUM does not list" "'extra.txt' is not listed"
for evil in ../../etc/evil /etc/evil; do
  python3 - "$BUNDLE" "$IT_TMP/evil.zip" "$evil" <<'PY'
import sys, zipfile
src, dst, name = sys.argv[1:4]
with zipfile.ZipFile(src) as i, zipfile.ZipFile(dst, "w") as o:
    for e in i.infolist():
        o.writestr(e, i.read(e.filename))
    o.writestr(name, "pwned")
PY
  upload_bundle "$IT_TMP/evil.zip"
  expect_code "an entry named '$evil' is refused" 400
done
rest GET /rest/artifact-bundles
expect_eq "nothing kept of refused bundles" "$(jb .total)" 0
expect_eq "no file left by refused bundles" "$(ls -A "$INGOT_DATA/deploy/bundles" | wc -l)" 0

# --- upload, then extract (PUT text/plain, as extract_bundle does) -----------------------------
upload_bundle "$BUNDLE"
expect_code "upload the bundle (multipart)" 202
TASK="$(header Location)"
wait_task "$TASK"
expect_eq "upload task Completed" "$TASK_STATE" Completed
AB_URI="$(jb .associatedResource.resourceUri)"
rest GET "$AB_URI"
expect_eq "the bundle's name is the file's" "$(jb .name)" rhel-test
expect_eq "its artifacts counted" "$(jb .artifactsCount)" 7
req PUT "$AB_URI" -H "Auth: t-admin" -H "X-API-Version: 2000" -H 'Content-Type: text/plain' --data-binary "$(cat "$BODY")"
expect_code "extract the bundle" 202
wait_task "$(header Location)"
expect_eq "extract task Completed" "$TASK_STATE" Completed
rest GET /rest/plan-scripts
expect_eq "4 plan scripts imported" "$(jb .total)" 4
rest GET "/rest/golden-images?filter=$(enc "name='RHEL Test Golden - 2026-12-01'")"
GI_ID="$(jb '.members[0].id')"
expect_eq "golden image checksum" "$(jb '.members[0].checkSum')" "$GOLDEN_SUM"
expect_eq "golden image: importedFromBundle" "$(jb '.members[0].importedFromBundle')" true
expect_eq "golden image: bundleName" "$(jb '.members[0].bundleName')" rhel-test
for _ in $(seq 1 100); do
  rest GET "/rest/golden-images/$GI_ID"; [ -n "$(jb '.imageId // empty')" ] && break; sleep 0.2
done
AUTH_TOKEN=t-admin req GET "/v2/images/$(jb .imageId)"
expect_eq "the imported golden image is an Image API image too" \
  "$(jb '[.status, .ingot_golden_image_id] | join(" ")')" "active $GI_ID"
rest GET /rest/deployment-plans
DP_URI="$(jb '.members[0].uri')"
expect_eq "deployment plan references resolved by name" "$(jb '.members[0].goldenImageName')" "RHEL Test Golden - 2026-12-01"
req PUT "$AB_URI" -H "Auth: t-admin" -H "X-API-Version: 2000" -H 'Content-Type: text/plain'
expect_code "extracting again: everything is there already" 202
wait_task "$(header Location)"
expect_eq "... and the task completes" "$TASK_STATE" Completed
rest GET /rest/plan-scripts
expect_eq "nothing extracted twice" "$(jb .total)" 4
# The same names with other contents: 409 naming them, nothing added.
rm -rf "$IT_TMP/c"; cp -r "$IT_TMP/b1" "$IT_TMP/c"
f="$(grep -l '"rhel-test-hostname"' "$IT_TMP"/c/*_planscript.json)"
jq -c '.content = "write /etc/hostname \"other\\n\""' "$f" > "$f.new" && mv "$f.new" "$f"
(cd "$IT_TMP/c" && for e in *_planscript.json "RHEL Test Golden - 2026-12-01" *_goldenimage.json *_buildplan.json *_deploymentplan.json MANIFEST.MF; do
   printf '%s\t%s\n' "$e" "$(sha256sum < "$e" | cut -d' ' -f1)"; done > SHA256SUM.sha256sum && rm -f ../c.zip && zip -q -X ../c.zip -- *)
upload_bundle "$IT_TMP/c.zip" "?name=changed&extract=true"
expect_code "a bundle whose names are taken by other contents: accepted" 202
wait_task "$(header Location)"
expect_eq "... its extraction ends in Error" "$TASK_STATE" Error
case "$(jb '.taskErrors[0].message')" in *"plan script 'rhel-test-hostname'"*) pass "the task's error names the artifact";;
  *) fail "conflict message" "$(jb '.taskErrors[0]')";; esac
rest GET /rest/plan-scripts
expect_eq "nothing added by the refused extraction" "$(jb .total)" 4

# --- two deployments with different values -------------------------------------------------------
deploy() {  # NAME HOST IP ENGINE: the plan scripts personalise it with that engine
  rest POST /rest/os-volumes "$(jq -n --arg n "$1" --arg h "$2" --arg ip "$3" --arg dp "$DP_URI" --arg e "$4" \
    '{name:$n, deploymentPlanUri:$dp, allow:["127.0.0.1"], engine:$e, customAttributes:[{name:"HostName",value:$h},
      {name:"Nic1.ipaddress",value:$ip},{name:"Nic1.netmask",value:"255.255.255.0"},{name:"Nic1.gateway",value:"10.1.0.1"}]}')"
  expect_code "deploy $1" 202
  wait_task "$(header Location)"
  expect_eq "$1: task Completed" "$TASK_STATE" Completed
  rest GET "/rest/os-volumes/$(jb .associatedResource.resourceUri | sed 's|.*/||')/log"
  grep -q " plan scripts ($4):" "$BODY" && pass "$1: personalised by the $4 engine" \
    || fail "$1: engine" "$(grep 'plan scripts' "$BODY" | head -3)"
}
deploy vol-a web-a 10.1.0.11 native
deploy vol-b web-b 10.1.0.12 guestfish
ingot_stop

# Each volume read back with both engines (read-only commands).
cat > "$IT_TMP/check.gf" <<'EOF'
mount-ro /dev/sda2 /
cat /etc/hostname
cat /etc/sysconfig/network-scripts/ifcfg-eth0
cat /etc/motd
umount /
EOF
for v in vol-a:web-a:10.1.0.11 vol-b:web-b:10.1.0.12; do
  IFS=: read -r name host ip <<< "$v"
  for engine in native guestfish; do
    out="$IT_TMP/$name.$engine.log"
    "$INGOTD" volume --data-dir "$INGOT_DATA" personalise "$name" --script "$IT_TMP/check.gf" \
      --engine "$engine" > "$out" 2> "$out.err" || fail "$name: $engine engine ran" "$(tail -3 "$out.err")"
    grep -qx "$host" "$out" && pass "$name ($engine): host name $host" || fail "$name ($engine): host name" "$(head -20 "$out")"
    grep -qx "IPADDR=$ip" "$out" && grep -qx "GATEWAY=10.1.0.1" "$out" \
      && pass "$name ($engine): network configuration from @Nic1.*@" || fail "$name ($engine): network" "$(head -20 "$out")"
    grep -qx "Deployed by Ingot for $host" "$out" && pass "$name ($engine): the uploaded file" \
      || fail "$name ($engine): uploaded file" "$(head -20 "$out")"
  done
done
expect_eq "the golden image's file is unchanged" \
  "$(sha256sum < "$(ls "$INGOT_DATA"/deploy/golden/*.img | head -1)" | cut -d' ' -f1)" "$GOLDEN_SUM"

# --- export, download, re-import into a fresh ingotd ---------------------------------------------
start_daemon
OUT="$IT_TMP/golden.back" req GET "/rest/golden-images/download/$GI_ID" -H "Auth: t-admin"
expect_eq "the golden image downloads unchanged" "$(sha256sum < "$IT_TMP/golden.back" | cut -d' ' -f1)" "$GOLDEN_SUM"
rest POST /rest/artifact-bundles "$(jq -n --arg dp "$DP_URI" '{name:"exported",description:"round trip",
  deploymentPlans:[{resourceUri:$dp,readOnly:"false"}]}')"
expect_code "export a bundle from the deployment plan" 202
wait_task "$(header Location)"
expect_eq "export task Completed" "$TASK_STATE" Completed
EX_ID="$(jb .associatedResource.resourceUri | sed 's|.*/||')"
OUT="$IT_TMP/exported.zip" req GET "/rest/artifact-bundles/download/$EX_ID" -H "Auth: t-admin"
expect_code "download the exported bundle" 200
LISTING="$(unzip -Z1 "$IT_TMP/exported.zip")"
grep -qx 'MANIFEST.MF' <<< "$LISTING" && grep -qx 'SHA256SUM.sha256sum' <<< "$LISTING" \
  && grep -qx 'RHEL Test Golden - 2026-12-01' <<< "$LISTING" && [ "$(grep -c '_planscript.json$' <<< "$LISTING")" = 4 ] \
  && pass "the export has Image Streamer's layout and the plan's dependencies" || fail "export layout" "$(unzip -l "$IT_TMP/exported.zip")"
(cd "$IT_TMP" && rm -rf ex && mkdir ex && cd ex && unzip -q ../exported.zip && grep -v 'SHA256SUM' SHA256SUM.sha256sum \
  | while IFS="$(printf '\t')" read -r f s; do [ "$(sha256sum < "$f" | cut -d' ' -f1)" = "$s" ] || echo "bad $f"; done) > "$IT_TMP/ex.check"
[ ! -s "$IT_TMP/ex.check" ] && pass "every entry matches SHA256SUM.sha256sum (checked with sha256sum)" || fail "export sums" "$(cat "$IT_TMP/ex.check")"
snapshot() {  # what is compared between the two daemons
  rest GET /rest/plan-scripts;      jq -S '[.members[] | {name, planType, content}] | sort_by(.name)' "$BODY"
  rest GET /rest/build-plans;       jq -S '[.members[] | {name, oeBuildPlanType, steps: [.buildStep[].planScriptName], customAttributes}]' "$BODY"
  rest GET /rest/deployment-plans;  jq -S '[.members[] | {name, oeBuildPlanName, goldenImageName, customAttributes}]' "$BODY"
  rest GET /rest/golden-images;     jq -S '[.members[] | {name, checkSum, size, format}]' "$BODY"
}
snapshot > "$IT_TMP/artifacts.1"
ingot_stop
INGOT_DATA="$IT_TMP/data2"
start_daemon
upload_bundle "$IT_TMP/exported.zip" "?extract=true"
expect_code "re-import the export into a fresh ingotd" 202
wait_task "$(header Location)"
expect_eq "re-import task Completed" "$TASK_STATE" Completed
snapshot > "$IT_TMP/artifacts.2"
diff "$IT_TMP/artifacts.1" "$IT_TMP/artifacts.2" > "$IT_TMP/artifacts.diff" \
  && pass "the re-imported artifacts equal the originals" || fail "round trip" "$(head -20 "$IT_TMP/artifacts.diff")"

# --- the CLI: ingot bundle ------------------------------------------------------------------------
INGOT_CLI="$(dirname "$INGOTD")/ingot"
if [ -x "$INGOT_CLI" ]; then
  cli() { INGOT_URL="$INGOT_URL" OS_AUTH_TOKEN=t-admin "$INGOT_CLI" "$@"; }
  cli bundle list --json > "$IT_TMP/cli.list" && jq -e '.[] | select(.name=="exported")' "$IT_TMP/cli.list" > /dev/null \
    && pass "ingot bundle list" || fail "ingot bundle list" "$(head -c 300 "$IT_TMP/cli.list")"
  DP2="$(curl -s -H 'Auth: t-admin' "$INGOT_URL/rest/deployment-plans" | jq -r '.members[0].id')"
  cli bundle export cli-export --plan "$DP2" --json > "$IT_TMP/cli.export" \
    && [ "$(jq -r .artifactsCount "$IT_TMP/cli.export")" = 7 ] && pass "ingot bundle export (dependencies pulled in)" \
    || fail "ingot bundle export" "$(head -c 300 "$IT_TMP/cli.export")"
  cli bundle download "$(jq -r .id "$IT_TMP/cli.export")" --file "$IT_TMP/cli.zip" \
    && unzip -tq "$IT_TMP/cli.zip" > /dev/null && pass "ingot bundle download" || fail "ingot bundle download"
  cli bundle import "$IT_TMP/cli.zip" --name cli-again > /dev/null \
    && pass "ingot bundle import of what is there already extracts nothing and succeeds" || fail "ingot bundle import"
else
  skip "ingot CLI not built"
fi

# --- backup and restore -------------------------------------------------------------------------
rest POST /rest/artifact-bundles/backups '{"deploymentGroupURI":"/rest/deployment-groups/1"}'
expect_code "create a backup" 202
wait_task "$(header Location)"
BK_ID="$(jb .associatedResource.resourceUri | sed 's|.*/||')"
rest GET /rest/deployment-plans
rest DELETE "/rest/deployment-plans/$(jb '.members[0].id')?force=true"
expect_code "delete a deployment plan after the backup" 204
rest PUT /rest/artifact-bundles/backups/archive '{"deploymentGroupURI":"/rest/deployment-groups/1"}'
expect_code "restore the backup" 202
wait_task "$(header Location)"
expect_eq "restore task Completed" "$TASK_STATE" Completed
snapshot > "$IT_TMP/artifacts.3"
diff "$IT_TMP/artifacts.1" "$IT_TMP/artifacts.3" > /dev/null && pass "the restore brought every artifact back" \
  || fail "restore" "$(diff "$IT_TMP/artifacts.1" "$IT_TMP/artifacts.3" | head)"
OUT="$IT_TMP/backup.zip" req GET "/rest/artifact-bundles/backups/archive/$BK_ID" -H "Auth: t-admin"
expect_code "download the backup" 200

# --- SIGKILL during an extraction: finished or undone -------------------------------------------
BIG="$IT_TMP/big.raw"
truncate -s 1G "$BIG"
sgdisk -n 1:2048:0 -t 1:8300 "$BIG" > /dev/null
make_bundle "$IT_TMP/b2" big-test "Big Golden" "$BIG"
rm -f "$BIG"
upload_bundle "$IT_TMP/big-test.zip"
expect_code "upload the big bundle" 202
wait_task "$(header Location)"
BIG_URI="$(jb .associatedResource.resourceUri)"
curl -s -m 300 -X PUT -H "Auth: t-admin" -H 'Content-Type: text/plain' "$INGOT_URL$BIG_URI" > /dev/null &
CURL_PID=$!
for i in $(seq 1 400); do   # the image being written into golden/, else the payload in bundles/
  ls -A "$INGOT_DATA/deploy/golden" 2>/dev/null | grep -q '^\.tmp-' && break
  [ "$i" -gt 200 ] && ls -A "$INGOT_DATA/deploy/bundles" | grep -q '^\.tmp-' && break
  sleep 0.05
done
ls -A "$INGOT_DATA/deploy/golden" | grep -q '^\.tmp-' && pass "SIGKILL while the golden image is being written" \
  || skip "SIGKILL landed outside the golden image's write" 
ingot_kill9
wait "$CURL_PID" 2>/dev/null
start_daemon
rest GET "/rest/golden-images?filter=$(enc "name='Big Golden'")"
expect_eq "after SIGKILL: no half-imported golden image" "$(jb .total)" 0
rest GET "/rest/plan-scripts?filter=$(enc "name matches 'big-test%'")"
expect_eq "after SIGKILL: no plan script of the killed import" "$(jb .total)" 0
KEPT="$(ls -A "$INGOT_DATA/deploy/golden" | grep -vc -e '^empty.raw$' || true)"
rest GET /rest/golden-images
expect_eq "after SIGKILL: no stray golden file" "$KEPT" "$(jb .total)"
expect_eq "after SIGKILL: no unfinished file in bundles/" "$(ls -A "$INGOT_DATA/deploy/bundles" | grep -c '^\.tmp-' || true)" 0
req PUT "$BIG_URI" -H "Auth: t-admin" -H "X-API-Version: 2000" -H 'Content-Type: text/plain'
expect_code "extracting again after the restart" 202
wait_task "$(header Location)"
expect_eq "... completes" "$TASK_STATE" Completed
rest GET "/rest/golden-images?filter=$(enc "name='Big Golden'")"
expect_eq "the big golden image is there once" "$(jb .total)" 1

it_finish
