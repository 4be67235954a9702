#!/usr/bin/env bash
# Crash test for the import pipeline's longer passes: SIGKILL ingotd
#  (a) in the middle of a glance-direct import that converts a qcow2 to raw ([import] convert_to), and
#      again in the middle of the node that took it over, and
#  (b) in the middle of a copy-image import to a second store,
# each at the moment a temporary object of the target store holds part of the bytes. After the restart
# (same data dir, a new node name) the task is taken over once its lease runs out, and then:
#  (a) the image is active, disk_format raw, os_glance_converted_from qcow2, its bytes and checksums
#      those of `qemu-img convert -O raw` of the source; the staged bytes are gone;
#  (b) the image is active in both stores (the copy finished, or, if the taken-over task failed, a second
#      copy-image does it), both copies byte-identical to the original;
#  and in both no temporary or orphaned file is left in the store dirs or the staging dir.
#  (c) mid-conversion again, then the image is deleted before the takeover: the task fails saying so and
#      nothing of the image is left (stores, temporary objects, staged bytes) — also without a crash.
# Ends with a clean restart whose repair pass must find nothing to remove.
# Usage: import_crash.sh [PATH-TO-INGOTD]
# Env: CRASH_CONVERT_MIB (default 512): virtual size of the qcow2, of which 5/8 hold data;
#      CRASH_COPY_MIB (default 384): size of the image copied.
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
for t in qemu-img qemu-io; do
  command -v "$t" > /dev/null || { echo "SKIP  $t not installed (qemu-utils)"; exit 77; }
done
it_init "$@"
is_peer && { echo "SKIP  the import crash test configures ingotd itself"; exit 77; }
W="$IT_TMP"
CONV_MIB="${CRASH_CONVERT_MIB:-512}"
COPY_MIB="${CRASH_COPY_MIB:-384}"
mkdir -p "$W/src" "$W/fast" "$W/cold"
INGOT_DATA="$W/data"
STAGING="$W/data/staging"
# An origin for (d), web-download with conversion.
mkdir -p "$W/origin"
origin_start "$W/origin"
cat > "$W/ingotd.toml" <<EOF
[import]
task_lease_ms = 2000
convert_to = "raw"
[import_filtering_opts]
allowed_hosts = ["127.0.0.1"]
allowed_ports = [$OPORT]
[[stores]]
name = "fast"
driver = "file"
path = "$W/fast"
default = true
[[stores]]
name = "cold"
driver = "file"
path = "$W/cold"
EOF

import_json() { req_json POST "/v2/images/$1/import" "$2"; }
tasks_of() { curl -s -m 30 "$INGOT_URL/v2/images/$1/tasks" | jq -r "$2"; }
# every file under the store dirs and the staging dir, relative, sorted (catalog and logs live elsewhere)
files_left() { (cd "$W" && find fast cold data/staging -type f 2>/dev/null | sort | paste -sd' '); }
# wait_tmp DIR MIB SECONDS: waits until a temporary object in DIR holds more than MIB MiB; sets TMP_PATH
# and TMP_MIB (how much it held then). Fails if none did in time.
wait_tmp() {
  local i f
  TMP_PATH=""; TMP_MIB=""
  for i in $(seq 1 $(($3 * 100))); do
    f="$(find "$1" -maxdepth 1 -name '.tmp-*' -size +"$2"M -printf '%s %p\n' 2>/dev/null | head -1)"
    if [ -n "$f" ]; then TMP_MIB=$((${f%% *} / 1048576)); TMP_PATH="${f#* }"; return 0; fi
    sleep 0.01
  done
  return 1
}
# The checks right after a restart name the killed node's own temporary object: once the lease runs
# out the next node starts a temporary object of its own, which may already exist by then.
gone() { [ -n "$1" ] && [ ! -e "$1" ] && echo gone || echo "present:$1"; }
kill_restart() {  # SIGKILL ingotd, then start it again on the same data dir
  ingot_kill9
  ingot_start --auth noauth --config "$W/ingotd.toml" || { it_finish; }
}
# repair_counts: what the last start's repair pass did (its "repair" log line).
repair_counts() {
  grep -m1 'event=repair ' "$INGOT_LOG" | grep -oE '(incomplete_removed|orphans_removed|missing_data)=[0-9]+' \
    | paste -sd,
}
start_s=$SECONDS
ingot_start --auth noauth --config "$W/ingotd.toml" || exit 1

# ------------------------------------------------------------------------------ (a) conversion
echo "### (a) SIGKILL mid-conversion: glance-direct qcow2 -> raw"
DATA1=$((CONV_MIB / 2)); DATA2=$((CONV_MIB / 8))
qemu-img create -q -f qcow2 "$W/src/conv.qcow2" "${CONV_MIB}M"
qemu-io -f qcow2 -c "write -P 0x5a 0 ${DATA1}M" -c "write -P 0xa5 $((CONV_MIB * 3 / 4))M ${DATA2}M" \
  "$W/src/conv.qcow2" > /dev/null
qemu-img convert -q -f qcow2 -O raw "$W/src/conv.qcow2" "$W/src/conv.expected.raw"
RAW_SIZE=$(stat -c %s "$W/src/conv.expected.raw")
RAW_MD5=$(md5sum < "$W/src/conv.expected.raw" | cut -d' ' -f1)
RAW_SHA=$(sha512sum < "$W/src/conv.expected.raw" | cut -d' ' -f1)

create_image '{"name": "crash-convert", "disk_format": "qcow2", "container_format": "bare"}'
A=$ID
req PUT "/v2/images/$A/stage" -H 'Content-Type: application/octet-stream' -T "$W/src/conv.qcow2"
expect_code "staged the qcow2 ($(stat -c %s "$W/src/conv.qcow2") bytes, virtual ${CONV_MIB} MiB)" 204
import_json "$A" '{"method": {"name": "glance-direct"}}'
expect_code "glance-direct import accepted" 202
if wait_tmp "$W/fast" $((CONV_MIB / 4)) 120; then
  kill_restart
  pass "ingotd killed with $TMP_MIB of $((RAW_SIZE / 1048576)) MiB converted into the store's temporary object"
else
  fail "a temporary object of the conversion appeared in the store" "image $(api "$A" .status); the conversion was not caught mid-way"
  kill_restart
fi
expect_eq "after restart: still importing, nothing active half-done" "$(api "$A" '[.status,.disk_format]|join(",")')" \
  "importing,qcow2"
expect_eq "after restart: the killed node's temporary object was removed, the staged bytes kept" \
  "$(gone "$TMP_PATH"),$(ls "$STAGING" | grep -c "$A")" "gone,1"
expect_eq "after restart: repair removed one incomplete object" "$(repair_counts)" \
  "incomplete_removed=1,orphans_removed=0,missing_data=0"
# The node that took the task over dies too, further on: the next one starts the conversion again.
if wait_tmp "$W/fast" $((CONV_MIB / 2)) 120; then
  kill_restart
  pass "the taken-over conversion killed again, at $TMP_MIB MiB"
  expect_eq "after the second restart: importing, its temporary object removed by repair, staged bytes kept" \
    "$(api "$A" .status),$(gone "$TMP_PATH"),$(repair_counts),$(ls "$STAGING" | grep -c "$A")" \
    "importing,gone,incomplete_removed=1,orphans_removed=0,missing_data=0,1"
else
  fail "the taken-over conversion wrote its temporary object" "image $(api "$A" .status)"
fi
if wait_for "$A" '.status=="active"' 120; then pass "the conversion was taken over and finished"; else
  fail "the conversion was taken over and finished" \
    "$(api "$A" .status); tasks: $(tasks_of "$A" '[.tasks[]|.status+" "+(.message//"")]|join("; ")')"
fi
expect_eq "converted: disk_format raw, converted_from qcow2, size and virtual_size of qemu-img's raw" \
  "$(api "$A" '[.disk_format,.os_glance_converted_from,(.size|tostring),(.virtual_size|tostring)]|join(",")')" \
  "raw,qcow2,$RAW_SIZE,$RAW_SIZE"
expect_eq "converted: checksum and os_hash_value of qemu-img convert -O raw" \
  "$(api "$A" '[.checksum,.os_hash_value]|join(",")')" "$RAW_MD5,$RAW_SHA"
OUT="$W/conv.dl" req GET "/v2/images/$A/file"
expect_true "converted: the bytes served == qemu-img convert -O raw" cmp "$W/conv.dl" "$W/src/conv.expected.raw"
rm -f "$W/conv.dl"
expect_true "converted: the stored object == qemu-img convert -O raw" cmp "$W/fast/$A" "$W/src/conv.expected.raw"
expect_eq "converted: the task ended in success, not importing to any store" \
  "$(tasks_of "$A" '[.tasks[].status]|join(",")'),$(api "$A" .os_glance_importing_to_stores)" "success,"
expect_eq "converted: only the image's object left (no temporary, no staged bytes)" "$(files_left)" "fast/$A"

# ------------------------------------------------------------------------------ (b) copy-image
echo "# $((SECONDS - start_s)) s so far"
echo "### (b) SIGKILL mid-copy: copy-image fast -> cold"
random_file "$W/src/copy.raw" $((COPY_MIB * 1048576))
COPY_MD5=$(md5sum < "$W/src/copy.raw" | cut -d' ' -f1)
create_image '{"name": "crash-copy", "disk_format": "raw", "container_format": "bare"}'
B=$ID
upload "$B" "$W/src/copy.raw"
expect_code "uploaded ${COPY_MIB} MiB to fast" 204
import_json "$B" '{"method": {"name": "copy-image"}, "stores": ["cold"]}'
expect_code "copy-image to cold accepted" 202
if wait_tmp "$W/cold" $((COPY_MIB / 4)) 120; then
  kill_restart
  pass "ingotd killed with $TMP_MIB of $COPY_MIB MiB copied into cold's temporary object"
else
  fail "a temporary object of the copy appeared in cold" "stores: $(api "$B" .stores); the copy was not caught mid-way"
  kill_restart
fi
expect_eq "after restart: active in fast only, the copy pending, the killed copy's object gone" \
  "$(api "$B" '[.status,.stores,.os_glance_importing_to_stores]|join(",")'),$(gone "$TMP_PATH"),$(find "$W/cold" -type f ! -name '.tmp-*' | wc -l)" \
  "active,fast,cold,gone,0"
expect_eq "after restart: repair removed one incomplete object" "$(repair_counts)" \
  "incomplete_removed=1,orphans_removed=0,missing_data=0"
if wait_for "$B" '(.stores|split(",")|sort|join(","))=="cold,fast"' 120; then
  pass "the copy was taken over and finished"
else
  st="$(tasks_of "$B" '[.tasks[]|.status]|join(",")')"
  if [ "$st" = failure ] || [ "$st" = "failure,success" ] || [ "$st" = "success,failure" ]; then
    # The taken-over task failed: the import must be redoable.
    skip "the copy was taken over and finished" "the taken-over task failed: $(tasks_of "$B" '.tasks[0].message'); redoing"
    import_json "$B" '{"method": {"name": "copy-image"}, "stores": ["cold"]}'
    expect_code "copy-image redone after the crash" 202
    if wait_for "$B" '(.stores|split(",")|sort|join(","))=="cold,fast"' 120; then pass "the redone copy finished"; else
      fail "the redone copy finished" "$(api "$B" .stores)"; fi
  else
    fail "the copy was taken over and finished" "stores $(api "$B" .stores); tasks: $st"
  fi
fi
expect_eq "copied: still active, checksum unchanged, nothing pending or failed" \
  "$(api "$B" '[.status,.checksum,.os_glance_importing_to_stores,.os_glance_failed_import]|join(",")')" \
  "active,$COPY_MD5,,"
expect_true "copied: fast's object == the original" cmp "$W/fast/$B" "$W/src/copy.raw"
expect_true "copied: cold's object == the original" cmp "$W/cold/$B" "$W/src/copy.raw"
OUT="$W/copy.dl" req GET "/v2/images/$B/file?prefer=cold"
expect_true "copied: served from cold == the original" cmp "$W/copy.dl" "$W/src/copy.raw"
rm -f "$W/copy.dl"
expect_eq "copied: only the images' objects left in the stores and staging" "$(files_left)" \
  "$(printf '%s\n' "cold/$B" "fast/$A" "fast/$B" | sort | paste -sd' ')"

# ------------------------------------------------------------------------------ (c) delete
echo "# $((SECONDS - start_s)) s so far"
echo "### (c) SIGKILL mid-conversion, then the image is deleted before the task is taken over"
create_image '{"name": "crash-delete", "disk_format": "qcow2", "container_format": "bare"}'
C=$ID
req PUT "/v2/images/$C/stage" -H 'Content-Type: application/octet-stream' -T "$W/src/conv.qcow2"
expect_code "staged the qcow2" 204
import_json "$C" '{"method": {"name": "glance-direct"}}'
expect_code "glance-direct import accepted" 202
CT="$(tasks_of "$C" '.tasks[0].id')"
if wait_tmp "$W/fast" $((CONV_MIB / 4)) 120; then
  kill_restart
  pass "ingotd killed with $TMP_MIB MiB converted"
else
  fail "the conversion was caught mid-way" "image $(api "$C" .status)"
  kill_restart
fi
req DELETE "/v2/images/$C"
expect_code "the importing image deleted after the restart" 204
req GET "/v2/images/$C"
expect_code "the deleted image is gone" 404
# The orphaned task runs once the lease is out and must find the image gone.
task_status() { curl -s "$INGOT_URL/v2/tasks/$CT" | jq -r '[.status,.message]|join(": ")'; }
for _ in $(seq 1 600); do
  case "$(task_status)" in failure*|success*) break ;; esac
  sleep 0.2
done
expect_true "the taken-over task failed: the image was deleted ($(task_status))" \
  grep -qiE "^failure: .*(deleted|not found|$C)" <<< "$(task_status)"
expect_eq "deleted: no object and no temporary object of it in the stores" \
  "$(find "$W/fast" "$W/cold" -name "*$C*" | wc -l)" 0
# Glance's image delete removes the image's staged data whatever its status (glance/api/v2/images.py,
# ImagesController.delete), so must Ingot's, not leave them to the next start's RepairStaging.
expect_eq "deleted: its staged bytes are removed at once, as Glance does" "$(ls "$STAGING" | grep -c "$C")" 0
create_image '{"name": "staged-then-deleted", "disk_format": "raw", "container_format": "bare"}'
D=$ID
random_file "$W/src/small.raw" 1048576
req PUT "/v2/images/$D/stage" -H 'Content-Type: application/octet-stream' -T "$W/src/small.raw"
expect_code "(no crash) staged 1 MiB" 204
req DELETE "/v2/images/$D"
expect_code "(no crash) the staged image deleted" 204
expect_eq "(no crash) deleted: its staged bytes are removed at once, as Glance does" \
  "$(ls "$STAGING" | grep -c "$D")" 0

# ------------------------------------------------------------------------------ (d) web-download
echo "### (d) web-download with conversion: staged first, converted, the staged copy removed"
ln "$W/src/conv.qcow2" "$W/origin/conv.qcow2"
create_image '{"name": "web-convert", "disk_format": "qcow2", "container_format": "bare"}'
E=$ID
import_json "$E" '{"method": {"name": "web-download", "uri": "http://127.0.0.1:'"$OPORT"'/conv.qcow2"}}'
expect_code "web-download import accepted" 202
if wait_for "$E" '.status=="active"' 120; then pass "the web-download was converted and is active"; else
  fail "the web-download was converted and is active" \
    "$(api "$E" .status); tasks: $(tasks_of "$E" '[.tasks[]|.status+" "+(.message//"")]|join("; ")')"
fi
expect_eq "web-download converted: raw, from qcow2, checksums of qemu-img convert -O raw" \
  "$(api "$E" '[.disk_format,.os_glance_converted_from,.checksum,.os_hash_value]|join(",")')" \
  "raw,qcow2,$RAW_MD5,$RAW_SHA"
expect_true "web-download converted: the stored object == qemu-img convert -O raw" \
  cmp "$W/fast/$E" "$W/src/conv.expected.raw"
expect_eq "web-download converted: no staged copy left" "$(ls "$STAGING" | grep -c "$E")" 0

# ------------------------------------------------------------------------------ a clean restart
echo "# $((SECONDS - start_s)) s so far"
echo "### a clean restart finds nothing to repair"
ingot_stop
ingot_start --auth noauth --config "$W/ingotd.toml" || exit 1
expect_eq "repair at start: no orphan, no incomplete object, no data missing" \
  "$(repair_counts)" \
  "incomplete_removed=0,orphans_removed=0,missing_data=0"
expect_eq "the restart swept the deleted images' staged bytes" "$(ls "$STAGING" | grep -cE "$C|$D")" 0
expect_eq "both images still active with their checksums" \
  "$(api "$A" '.status+","+.checksum') $(api "$B" '.status+","+(.stores|split(",")|sort|join(","))')" "active,$RAW_MD5 active,cold,fast"
echo "# run time $((SECONDS - start_s)) s"
it_finish
