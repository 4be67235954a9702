#!/usr/bin/env bash
# The `ingot` CLI against the real ingotd (127.0.0.1, free port, scratch data dir): every command, exit
# codes, a 64 MiB image up and down with its checksum, staged and imported. Uses the integration
# tests' helpers.
#   e2e_test.sh INGOTD INGOT
. "$(cd "$(dirname "$0")/../../../tests/integration" && pwd)/lib.sh"
it_init "$1"
INGOT_CLI="$2"
ingot_start --auth noauth || exit 1
export INGOT_URL

cli() { "$INGOT_CLI" "$@"; }

data="$IT_TMP/disk.raw"
random_file "$data" $((64 * 1024 * 1024))
want_md5="$(md5sum < "$data" | cut -d' ' -f1)"

out="$(cli --json image-create --name e2e --disk-format raw --container-format bare --visibility private \
        --property os_distro=cirros --file "$data" 2>"$IT_TMP/err")"
expect_eq "create with --file exits 0" "$?" 0
id="$(jq -r .id <<<"$out")"
expect_eq "created image is active" "$(jq -r .status <<<"$out")" active
expect_eq "custom property set" "$(jq -r .os_distro <<<"$out")" cirros
expect_eq "checksum is the data's MD5" "$(jq -r .checksum <<<"$out")" "$want_md5"
expect_eq "size recorded" "$(jq -r .size <<<"$out")" $((64 * 1024 * 1024))

cli image-list > "$IT_TMP/list"
expect_true "image-list shows the image" grep -q "$id" "$IT_TMP/list"
expect_eq "image-show --json" "$(cli --json image-show "$id" | jq -r .name)" e2e

out="$(cli --json image-update "$id" --name renamed --property os_distro=debian --property extra=1)"
expect_eq "update renames" "$(jq -r .name <<<"$out")" renamed
expect_eq "update replaces a property" "$(jq -r .os_distro <<<"$out")" debian
out="$(cli --json image-update "$id" --remove-property extra)"
expect_eq "update removes a property" "$(jq -r 'has("extra")' <<<"$out")" false

cli image-tag-update "$id" golden
expect_eq "tag added" "$(cli --json image-show "$id" | jq -r '.tags | join(",")')" golden
cli image-tag-delete "$id" golden
expect_eq "tag removed" "$(cli --json image-show "$id" | jq -r '.tags | length')" 0

cli image-download "$id" --file "$IT_TMP/out.raw"
expect_eq "download exits 0" "$?" 0
expect_eq "downloaded bytes are the uploaded ones" "$(md5sum < "$IT_TMP/out.raw" | cut -d' ' -f1)" "$want_md5"

cli image-deactivate "$id"
expect_eq "deactivate" "$(cli --json image-show "$id" | jq -r .status)" deactivated
cli image-reactivate "$id"
expect_eq "reactivate" "$(cli --json image-show "$id" | jq -r .status)" active

# A queued image, then its data through image-upload from a pipe (chunked).
id2="$(cli --json image-create --name piped --disk-format raw --container-format bare | jq -r .id)"
head -c 3000000 "$data" | cli image-upload "$id2"
expect_eq "image-upload from a pipe" "$(cli --json image-show "$id2" | jq -r .size)" 3000000

# Interoperable import: stage, then import glance-direct and follow it to its end.
id3="$(cli --json image-create --name staged --disk-format raw --container-format bare | jq -r .id)"
cli image-stage "$id3" --file "$data"
expect_eq "image-stage exits 0" "$?" 0
expect_eq "a staged image is uploading" "$(cli --json image-show "$id3" | jq -r .status)" uploading
out="$(cli --json image-import "$id3" --import-method glance-direct --wait 2>"$IT_TMP/err")"
expect_eq "image-import --wait exits 0" "$?" 0
expect_eq "imported image is active" "$(jq -r .status <<<"$out")" active
expect_eq "imported checksum is the data's MD5" "$(jq -r .checksum <<<"$out")" "$want_md5"
task="$(sed -n 's/^import task \([^:]*\): success$/\1/p' "$IT_TMP/err")"
expect_true "the task's outcome is printed" test -n "$task"
cli task-list > "$IT_TMP/tasks"
expect_true "task-list shows the task" grep -q "$task" "$IT_TMP/tasks"
expect_eq "task-show names the image" "$(cli --json task-show "$task" | jq -r .image_id)" "$id3"
cli image-import "$id3" --import-method glance-direct 2> "$IT_TMP/err"
expect_eq "importing an active image exits 1" "$?" 1
expect_true "the server's refusal is printed" grep -q "409 Conflict" "$IT_TMP/err"
out="$(head -c 3000000 "$data" | cli --json image-create-via-import --name via --disk-format raw \
        --container-format bare --wait 2>/dev/null)"
expect_eq "image-create-via-import from a pipe" "$(jq -r .status,.size <<<"$out" | paste -sd' ')" \
  "active 3000000"
cli image-delete "$id3" "$(jq -r .id <<<"$out")"

cli image-show 00000000-0000-0000-0000-000000000000 2> "$IT_TMP/err"
expect_eq "missing image exits 1" "$?" 1
expect_true "the server's message is printed" grep -q "No image found" "$IT_TMP/err"
cli image-show > /dev/null 2>&1
expect_eq "usage error exits 2" "$?" 2

cli image-delete "$id" "$id2"
expect_eq "delete exits 0" "$?" 0
cli image-show "$id" 2> /dev/null
expect_eq "deleted image is gone" "$?" 1

it_finish
