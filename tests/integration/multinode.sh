#!/usr/bin/env bash
# Scale-out: three ingotd nodes on one PostgreSQL catalog and the test bed's Swift and S3 (and a
# shared file store), behind HAProxy (tests/lib/cluster.sh), driven by the real glance CLI through
# the balancer:
#  - uploads, copy-image imports to the S3, Swift and file stores, downloads — each CLI call's
#    requests spread over the nodes;
#  - SIGKILL of the node holding a slow upload (sent to that node directly): HAProxy takes it out,
#    the others keep serving and, once the upload's lease runs out, put the image back to queued;
#    it can be uploaded again;
#  - SIGKILL of the node running a long import (web-download from a dripping origin into Swift and
#    S3): another node claims the task when the lease (3 s here) runs out and finishes it;
#  - afterwards every acknowledged image downloads byte-identical from every node;
#  - the scrubber ([scrubber], 2 s interval, 10 s grace, one node at a time) removes what the kills
#    left (Swift segments, an S3 multipart upload, temporary files) and planted orphans, and then
#    Swift, S3 and the file store hold exactly what the catalog names — asked of Swift and S3
#    themselves; a copy whose bytes were damaged is reported in /metrics and kept;
#  - the image builder across nodes (with mmdebstrap and the Debian archive): a recipe received by
#    one node is read through another; a build whose node is SIGKILLed mid-build is taken over
#    when its lease (4 s) runs out and built to success by another node; every node serves its log
#    and artifacts (from Swift, [build] store), byte-identical to the manifest's md5s.
# Usage: multinode.sh [PATH-TO-INGOTD]
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
for t in glance jq; do
  command -v "$t" > /dev/null || { echo "SKIP  $t not installed (scripts/install-deps.sh)"; exit 77; }
done
it_init "$@"
is_peer && { echo "SKIP  this test starts its own cluster"; exit 77; }
. "$HERE/../lib/cluster.sh"
W="$IT_TMP"
mkdir -p "$W/home" "$W/origin"
export HOME="$W/home"
trap 'rc=$?; cluster_down; (exit $rc); it_cleanup' EXIT
it_on_failure() { cluster_digest; }

# The origin for web-download: /drip/<name> sends 2.5 MiB/s, so a 16 MiB import takes ~6 s.
origin_start "$W/origin"
export CLUSTER_INGOTD="$INGOTD" CLUSTER_LEASE_MS=3000 CLUSTER_STORES="swift s3 file"
export CLUSTER_TOML="[images]
upload_lease_s = 4
[build]
store = \"swift\"
job_lease_s = 4
[scrubber]
enabled = true
interval_s = 2
grace_s = 10
lease_s = 5
rehash_mib = 64
[import_filtering_opts]
allowed_hosts = [\"127.0.0.1\"]
allowed_ports = [$OPORT]"
cluster_up "$W/cluster" 3
case $? in
  0) ;;
  77) echo "SKIP  the test bed (Swift, PostgreSQL, HAProxy) cannot run here"; exit 77 ;;
  *) echo "FAIL  the cluster did not start (see $W/cluster)"; exit 1 ;;
esac
INGOT_URL="$CLUSTER_URL"  # g, api, wait_for and req talk to the balancer
it_log "# cluster: $CLUSTER_URL -> $(for i in 1 2 3; do printf '%s ' "$(cluster_node_url $i)"; done)"

md5() { md5sum < "$1" | cut -d' ' -f1; }
# Swift asked directly with curl (the swift CLI pays ~1.5 s of Python start-up per call).
SW_HDRS="$(curl -s -D - -o /dev/null -H "X-Auth-User: $SWIFT_USER" -H "X-Auth-Key: $SWIFT_KEY" \
  "$SWIFT_AUTH_URL" | tr -d '\r')"
SW_URL="$(sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: //p' <<< "$SW_HDRS")"
SW_TOKEN="$(sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p' <<< "$SW_HDRS")"
sw_list() { curl -s -m 30 -H "X-Auth-Token: $SW_TOKEN" "$SW_URL/$1?prefix=${2:-}"; }  # CONTAINER [PREFIX]
sw_meta_upload() {  # CONTAINER OBJECT: the X-Object-Meta-Ingot-Upload of an object ("" if none)
  curl -s -m 30 -I -H "X-Auth-Token: $SW_TOKEN" "$SW_URL/$1/$2" | tr -d '\r' |
    sed -n 's/^[Xx]-[Oo]bject-[Mm]eta-[Ii]ngot-[Uu]pload: //p'
}
sw_put() { curl -s -m 30 -o /dev/null -w '%{http_code}' -X PUT -H "X-Auth-Token: $SW_TOKEN" \
  --data-binary "@$3" "$SW_URL/$1/$2"; }  # CONTAINER OBJECT FILE
random_file "$W/big.raw" $((22 * 1048576 + 4321))    # an SLO in Swift, multipart in S3
random_file "$W/small.raw" $((3 * 1048576 + 17))
random_file "$W/slow.raw" $((40 * 1048576))           # the upload that is killed
random_file "$W/origin/drip.raw" $((16 * 1048576))    # the import that is killed
declare -A WANT  # image id -> md5 of its bytes, for every acknowledged image

echo "### upload, copy-image and download through the balancer"
run "image-create --file (Swift, the default store)" \
  g image-create --name big --disk-format raw --container-format bare --file "$W/big.raw"
BIG=$(field id)
WANT[$BIG]=$(md5 "$W/big.raw")
expect_eq "active in swift" "$(api "$BIG" '[.status,.checksum,.stores]|join(",")')" "active,${WANT[$BIG]},swift"
run "image-create --file --store s3" \
  g image-create --name small --disk-format raw --container-format bare --file "$W/small.raw" --store s3
SMALL=$(field id)
WANT[$SMALL]=$(md5 "$W/small.raw")
run "image-import --import-method copy-image --stores s3,file" \
  g image-import --import-method copy-image --stores s3,file "$BIG"
run "image-import --import-method copy-image --stores swift" \
  g image-import --import-method copy-image --stores swift "$SMALL"
if wait_for "$BIG" '(.stores|split(",")|sort|join(","))=="file,s3,swift"' 90; then
  pass "copy-image of big to s3 and file"; else fail "copy-image of big" "$(api "$BIG" '.stores')"; fi
if wait_for "$SMALL" '(.stores|split(",")|sort|join(","))=="s3,swift"' 90; then
  pass "copy-image of small to swift"; else fail "copy-image of small" "$(api "$SMALL" '.stores')"; fi
run "image-download" g image-download --file "$W/dl.big" "$BIG"
expect_eq "download byte-identical" "$(md5 "$W/dl.big")" "${WANT[$BIG]}"
expect_eq "the balancer spread the CLI's requests over all three nodes" \
  "$(for i in 1 2 3; do grep -qE 'event=request method=[A-Z]+ path=/v2/' "$(cluster_node_log $i)" && echo y; done | wc -l)" 3

echo "### SIGKILL of the node holding an upload"
req_json POST /v2/images '{"name":"slow","disk_format":"raw","container_format":"bare"}'
SLOW="$(jb .id)"
expect_code "create the image to upload" 201
N2="$(cluster_node_url 2)"
curl -s -o /dev/null --limit-rate 2M -X PUT -H 'Content-Type: application/octet-stream' \
  -T "$W/slow.raw" "$N2/v2/images/$SLOW/file" &
UPLOAD_PID=$!
IT_PIDS+=("$UPLOAD_PID")
# Wait until node 2 has put the first segment into Swift: the upload is really under way there.
for _ in $(seq 1 200); do
  [ -n "$(sw_list ingot_segments "$SLOW/" | head -1)" ] && break
  sleep 0.1
done
expect_true "node 2 is writing the upload's segments to Swift" \
  test -n "$(sw_list ingot_segments "$SLOW/" | head -1)"
expect_eq "the image is saving" "$(api "$SLOW" .status)" saving
cluster_kill9 2
wait "$UPLOAD_PID" 2> /dev/null
expect_true "HAProxy takes node 2 out" cluster_wait_lb 2 down 10
for n in 1 2 3 4; do
  req GET "/v2/images/$BIG"
  expect_code "the balancer keeps serving without node 2 (#$n)" 200
done
# Node 2 does not come back at once: once the upload's lease (4 s) has run out another node puts
# the image back to queued.
for _ in $(seq 1 150); do [ "$(api "$SLOW" .status)" = queued ] && break; sleep 0.1; done
expect_eq "the interrupted upload's image is queued again while node 2 is down" \
  "$(api "$SLOW" .status)" queued
expect_true "node 1 or 3 reclaimed it" \
  grep -qE "event=upload.reclaimed .*image=$SLOW" "$(cluster_node_log 1)" "$(cluster_node_log 3)"
expect_true "node 2 restarts" cluster_restart 2
expect_true "HAProxy takes node 2 back" cluster_wait_lb 2 up 10
expect_eq "the restart leaves the reclaimed image queued" "$(api "$SLOW" .status)" queued
run "image-upload of the interrupted image" g image-upload --file "$W/slow.raw" "$SLOW"
WANT[$SLOW]=$(md5 "$W/slow.raw")
expect_eq "uploaded again: active with the right checksum" \
  "$(api "$SLOW" '[.status,.checksum]|join(",")')" "active,${WANT[$SLOW]}"

echo "### SIGKILL of the node running an import"
req_json POST /v2/images '{"name":"dripped","disk_format":"raw","container_format":"bare"}'
DRIP="$(jb .id)"
run "image-import --import-method web-download --stores swift,s3 (a slow origin)" \
  g image-import --import-method web-download --uri "$ORIGIN/drip/drip.raw" --stores swift,s3 "$DRIP"
RUNNER=""
for _ in $(seq 1 100); do
  for i in 1 2 3; do
    grep -q "event=import.started .*image=$DRIP" "$(cluster_node_log $i)" && RUNNER=$i
  done
  [ -n "$RUNNER" ] && break
  sleep 0.1
done
expect_true "a node took the import" test -n "$RUNNER"
sleep 2  # ~5 MiB of 16 fetched
expect_eq "still importing when its node is killed" "$(api "$DRIP" .status)" importing
[ -n "$RUNNER" ] && cluster_kill9 "$RUNNER"
if wait_for "$DRIP" '.status=="active"' 90; then pass "the import finished on another node"; else
  fail "the import finished on another node" "$(api "$DRIP" '[.status,.stores]|join(",")')"; fi
WANT[$DRIP]=$(md5 "$W/origin/drip.raw")
expect_eq "imported image: checksum and stores" \
  "$(api "$DRIP" '[.checksum,(.stores|split(",")|sort|join("+"))]|join(",")')" "${WANT[$DRIP]},s3+swift"
FINISHER=""
for i in 1 2 3; do
  [ "$i" != "$RUNNER" ] && grep -q "event=import.done .*image=$DRIP" "$(cluster_node_log $i)" && FINISHER=$i
done
expect_true "node ${FINISHER:-?} (not the killed node $RUNNER) finished it" test -n "$FINISHER"
expect_true "the killed node restarts" cluster_restart "$RUNNER"
expect_true "HAProxy takes it back" cluster_wait_lb "$RUNNER" up 10

echo "### every acknowledged image, byte-identical from every node"
for id in "${!WANT[@]}"; do
  for i in 1 2 3; do
    got="$(curl -s -m 60 "$(cluster_node_url $i)/v2/images/$id/file" | md5sum | cut -d' ' -f1)"
    expect_eq "image $id from node $i" "$got" "${WANT[$id]}"
  done
done

echo "### the scrubber leaves exactly what the catalog names"
# Orphans planted beside what the kills left: an object no image names (a delete that crashed
# before removing the bytes), in Swift, in S3 and in the file store, and an old temporary file.
ORPHAN="$(cat /proc/sys/kernel/random/uuid)"
printf 'orphan' > "$W/orphan"
expect_eq "plant an orphan in Swift" "$(sw_put ingot "$ORPHAN" "$W/orphan")" 201
expect_eq "plant an orphan in S3's bucket" "$(sw_put ingot-images "$ORPHAN" "$W/orphan")" 201
cp "$W/orphan" "$CLUSTER_FILE_DIR/$ORPHAN"
cp "$W/orphan" "$CLUSTER_FILE_DIR/.tmp-$ORPHAN-deadbeef"
touch -d '1 hour ago' "$CLUSTER_FILE_DIR/.tmp-$ORPHAN-deadbeef"
# A damaged copy: same size, other bytes, in the file store (the scrubber re-hashes; never deletes).
printf 'X' | dd of="$CLUSTER_FILE_DIR/$BIG" bs=1 seek=1000 conv=notrunc status=none

# What the catalog names per store, and what each store holds, asked of the store itself.
catalog_keys() {  # STORE -> sorted image ids with a copy there
  curl -s -m 30 "$CLUSTER_URL/v2/images?limit=100" |
    jq -r --arg s "$1" '.images[] | select(.status=="active") | select(.stores|split(",")|index($s)) | .id' | sort
}
s3_uploads() {  # multipart uploads in progress in the S3 bucket (S3's own ListMultipartUploads)
  local hostport="${S3_ENDPOINT#http://}" key="${S3_ACCESS_KEY//:/%3A}"
  curl -s --aws-sigv4 "aws:amz:${S3_REGION}:s3" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    "http://$key:$S3_SECRET_KEY@$hostport/ingot-images?uploads" | grep -o '<UploadId>' | wc -l
}
swift_groups() {  # distinct <key>/<upload> segment groups in ingot_segments
  sw_list ingot_segments | cut -d/ -f1,2 | sort -u
}
manifest_groups() {  # <key>/<upload> of each committed SLO manifest in container ingot
  local k u
  for k in $(sw_list ingot); do
    u="$(sw_meta_upload ingot "$k")"
    [ -n "$u" ] && echo "$k/$u"
  done | sort
}
state() {
  printf 'swift=%s|segments=%s|s3=%s|uploads=%s|file=%s' \
    "$(sw_list ingot | sort | paste -sd' ')" \
    "$( [ "$(swift_groups)" = "$(manifest_groups)" ] && echo manifests-only || swift_groups | paste -sd' ')" \
    "$(sw_list ingot-images | sort | paste -sd' ')" \
    "$(s3_uploads)" \
    "$(ls -A "$CLUSTER_FILE_DIR" | sort | paste -sd' ')"
}
want_state() {
  printf 'swift=%s|segments=manifests-only|s3=%s|uploads=0|file=%s' \
    "$(catalog_keys swift | paste -sd' ')" "$(catalog_keys s3 | paste -sd' ')" \
    "$(catalog_keys file | paste -sd' ')"
}
WANT_STATE="$(want_state)"
GOT=""
for _ in $(seq 1 60); do  # grace 10 s + a pass every 2 s
  GOT="$(state)"
  [ "$GOT" = "$WANT_STATE" ] && break
  sleep 1
done
expect_eq "Swift, S3 and the file store hold exactly the catalog's objects" "$GOT" "$WANT_STATE"
metric_sum() {  # NAME: the sum over the nodes
  local i s=0 v
  for i in 1 2 3; do
    v="$(curl -s -m 10 "$(cluster_node_url $i)/metrics" | awk -v m="$1" '$1==m {print $2}')"
    s=$((s + ${v:-0}))
  done
  echo "$s"
}
expect_true "the scrubber removed the planted orphans (>= 3)" test "$(metric_sum ingot_scrubber_orphans_removed_total)" -ge 3
expect_true "the scrubber removed what the kills left half-written (>= 2)" \
  test "$(metric_sum ingot_scrubber_incomplete_removed_total)" -ge 2
for _ in $(seq 1 30); do
  [ "$(metric_sum ingot_scrubber_checksum_mismatch_total)" -ge 1 ] && break
  sleep 1
done
expect_true "the damaged copy is reported in /metrics" test "$(metric_sum ingot_scrubber_checksum_mismatch_total)" -ge 1
expect_true "... and in a node's log" grep -q "event=scrubber.checksum_mismatch .*image=$BIG" \
  "$CLUSTER_DIR"/node*/ingotd.log
expect_true "... and kept" test -f "$CLUSTER_FILE_DIR/$BIG"

# ---- The image builder across nodes.
if ! command -v mmdebstrap > /dev/null || ! command -v mksquashfs > /dev/null; then
  skip "builds across nodes" "mmdebstrap or squashfs-tools not installed"
  it_finish
fi
n_url() { cluster_node_url "$1"; }
ims() { echo "$(n_url "$1")/apis/ims/v3"; }
mkdir -p "$W/recipe"
cat > "$W/recipe/recipe.toml" <<'EOF2'
suite = "bookworm"
variant = "essential"

[[steps]]
name = "mark"
run = "echo built-across-nodes > /etc/ingot-mark"
EOF2
tar -C "$W/recipe" -czf "$W/recipe.tgz" .
RID="$(curl -s -X POST -H 'Content-Type: application/json' "$(ims 1)/recipes" \
  -d '{"name":"cluster","recipe_type":"mmdebstrap","linux_distribution":"debian"}' | jq -r .id)"
expect_eq "node 1 takes the recipe's archive" "$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
  -H 'Content-Type: application/octet-stream' --data-binary @"$W/recipe.tgz" \
  "$(ims 1)/recipes/$RID/archive")" 200
expect_eq "node 2 shows the recipe node 1 received" \
  "$(curl -s "$(ims 2)/recipes/$RID" | jq -r .link.etag)" "$(md5 "$W/recipe.tgz")"
curl -s -o "$W/recipe.back" "$(ims 3)/recipes/$RID/archive"
expect_eq "node 3 serves its archive (from Swift)" "$(md5 "$W/recipe.back")" "$(md5 "$W/recipe.tgz")"
JOB="$(curl -s -X POST -H 'Content-Type: application/json' "$(ims 1)/jobs" \
  -d "{\"job_type\":\"create\",\"artifact_id\":\"$RID\",\"outputs\":[\"ims\"]}" | jq -r .id)"
for _ in $(seq 1 300); do
  [ "$(curl -s "$(ims 2)/jobs/$JOB" | jq -r .status)" = building_image ] && break
  sleep 1
done
expect_eq "node 2 sees node 1's job building" "$(curl -s "$(ims 2)/jobs/$JOB" | jq -r .status)" building_image
expect_eq "... its live log is node 1's (503 elsewhere)" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$(ims 3)/jobs/$JOB/log")" 503
sleep 3
cluster_kill9 1
STATUS=""
for _ in $(seq 1 900); do
  STATUS="$(curl -s "$(ims 2)/jobs/$JOB" | jq -r .status)"
  case "$STATUS" in success|error) break ;; esac
  sleep 1
done
expect_eq "after node 1's SIGKILL another node built the job to success" "$STATUS" success
expect_eq "... on its second attempt" "$(curl -s "$(ims 3)/jobs/$JOB" | jq -r .attempt)" 2
expect_true "... saying which node took it over" sh -c \
  "grep -q 'event=build.job_taken_over job=$JOB from=node1' '$CLUSTER_DIR'/node2/ingotd.log '$CLUSTER_DIR'/node3/ingotd.log"
cluster_restart 1
IMG="$(curl -s "$(ims 1)/jobs/$JOB" | jq -r .resultant_image_id)"
expect_true "node 1, back, serves the finished log" sh -c \
  "curl -sf '$(ims 1)/jobs/$JOB/log' | grep -q 'taken over by node'"
curl -s -o "$W/manifest.json" "$(ims 1)/images/$IMG/artifacts/manifest.json"
ROOTFS_MD5="$(jq -r '.artifacts[] | select(.type | test("rootfs")) | .md5' "$W/manifest.json" | head -1)"
for i in 1 2 3; do
  curl -s -o "$W/rootfs.$i" "$(ims "$i")/images/$IMG/artifacts/rootfs"
  expect_eq "node $i serves the rootfs the other node built, byte-identical" \
    "$(md5 "$W/rootfs.$i")" "$ROOTFS_MD5"
done
expect_true "... and it holds the recipe's step" sh -c \
  "unsquashfs -cat '$W/rootfs.1' etc/ingot-mark | grep -q built-across-nodes"
it_finish
