#!/bin/bash
# Per-project quotas with Glance's unified-limit names, from ingotd's [quotas] configuration:
# image_count_total, image_size_total, image_stage_total and image_count_uploading, each crossed;
# an upload and a stage that cross their limit in the middle of a streamed (chunked) body are
# stopped and leave nothing behind; GET /v2/info/usage; a project's own overrides.
# (Keystone's unified limits as the source of the same limits: tests/integration/keystone.sh.)
# Usage: quota.sh [PATH-TO-INGOTD]
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
it_init "${1:-}"
W="$IT_TMP"
MiB=1048576

cat > "$W/tokens.toml" <<'EOF'
[[token]]
token = "alice"
user = "alice"
project = "proj-a"
roles = ["member"]

[[token]]
token = "bob"
user = "bob"
project = "proj-b"
roles = ["member"]
EOF
cat > "$W/ingotd.toml" <<'EOF'
[quotas]
image_count_total = 5
image_size_total = 2         # MiB, as Glance
image_stage_total = 1        # MiB
image_count_uploading = 2

[quotas.projects.proj-b]
image_count_total = -1
EOF
INGOT_DATA="$W/data"
ingot_start --auth tokens --tokens-file "$W/tokens.toml" --config "$W/ingotd.toml" || exit 1
random_file "$W/1.5m" $((MiB * 3 / 2))
random_file "$W/1m" "$MiB"
random_file "$W/half" $((MiB / 2))
random_file "$W/small" $((MiB / 5))
store_files() { find "$W/data/images" -type f ! -name '.tmp-*' 2>/dev/null | wc -l; }
store_bytes() { find "$W/data/images" "$W/data/staging" -type f 2>/dev/null -exec cat {} + | wc -c; }
status() { AUTH_TOKEN=alice req GET "/v2/images/$1"; jb .status; }
new_image() { create_image '{"name": "q", "disk_format": "raw", "container_format": "bare"}'; }
AUTH_TOKEN=alice

echo "### usage before anything"
req GET /v2/info/usage
expect_code "GET /v2/info/usage" 200
expect_eq "every limit with zero usage" \
  "$(jb '.usage | [.image_count_total, .image_size_total, .image_stage_total, .image_count_uploading] | map("\(.limit)/\(.usage)") | join(" ")')" \
  "5/0 2/0 1/0 2/0"

echo "### image_size_total"
new_image; A1="$ID"
upload "$A1" "$W/1.5m"
expect_code "1.5 MiB of 2 MiB" 204
new_image; A2="$ID"
before=$(store_bytes)
upload "$A2" "$W/1m"
expect_error "1 MiB more, declared: refused before any byte is stored" 413
expect_true "the message names the limit" grep -q "image_size_total is over limit of 2" "$BODY"
expect_eq "the image is still queued" "$(status "$A2")" queued
req PUT "/v2/images/$A2/file" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' \
  --data-binary @"$W/1m"
expect_code "1 MiB more, chunked (no length): stopped where it crosses the limit" 413
expect_eq "the image is back to queued" "$(status "$A2")" queued
expect_eq "no bytes left behind in the store" "$(store_bytes)" "$before"
expect_eq "one image's file in the store" "$(store_files)" 1
upload "$A2" "$W/small"
expect_code "0.2 MiB still fits" 204
req GET /v2/info/usage
expect_eq "usage: 2 MiB stored (1.7 rounded up), 2 images" "$(jb '"\(.usage.image_size_total.usage) \(.usage.image_count_total.usage)"')" "2 2"

echo "### image_stage_total"
new_image; A3="$ID"
req PUT "/v2/images/$A3/stage" -H 'Content-Type: application/octet-stream' --data-binary @"$W/half"
expect_code "0.5 MiB staged of 1 MiB" 204
new_image; A4="$ID"
before=$(store_bytes)
req PUT "/v2/images/$A4/stage" -H 'Content-Type: application/octet-stream' --data-binary @"$W/1m"
expect_error "1 MiB more staged, declared: refused" 413
expect_true "the message names the limit" grep -q "image_stage_total" "$BODY"
req PUT "/v2/images/$A4/stage" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' \
  --data-binary @"$W/1m"
expect_code "1 MiB more staged, chunked: stopped midway" 413
expect_eq "the image is back to queued" "$(status "$A4")" queued
expect_eq "nothing left in staging" "$(store_bytes)" "$before"

echo "### image_count_uploading (A3 is staged: one upload in progress)"
new_image; A5="$ID"
# A slow upload (declared, 0.2 MiB at 40 KiB/s) holds the second slot.
curl -s -o /dev/null -X PUT -H "X-Auth-Token: alice" -H 'Content-Type: application/octet-stream' \
  --limit-rate 40k -T "$W/small" "$INGOT_URL/v2/images/$A5/file" &
SLOW=$!
for i in $(seq 1 50); do [ "$(status "$A5")" = saving ] && break; sleep 0.1; done
expect_eq "the slow upload is saving" "$(status "$A5")" saving
req PUT "/v2/images/$A4/stage" -H 'Content-Type: application/octet-stream' --data-binary @"$W/small"
expect_error "a third upload at once is refused" 413
expect_true "the message names the limit" grep -q "image_count_uploading is over limit of 2" "$BODY"
wait "$SLOW"
expect_eq "the slow upload finished" "$(status "$A5")" active

echo "### image_count_total"
new_image
expect_error "the 6th image of proj-a" 413
expect_true "the message names the limit" grep -q "image_count_total is over limit of 5 due to current usage 5 and delta 1" "$BODY"
req DELETE "/v2/images/$A4"
expect_code "delete one" 204
new_image
expect_code "then a new one fits" 201

echo "### a project's own limits"
AUTH_TOKEN=bob
for i in 1 2 3 4 5 6; do new_image > /dev/null; done
expect_code "proj-b (image_count_total = -1) creates a 6th image" 201
req GET /v2/info/usage
expect_eq "proj-b's usage: unlimited count, the default size limit" \
  "$(jb '"\(.usage.image_count_total.limit) \(.usage.image_count_total.usage) \(.usage.image_size_total.limit)"')" "-1 6 2"

it_finish
