#!/usr/bin/env bash
# ingotd with a Swift store and an S3 store on a real Swift (tempauth, SLO, and its s3api for S3),
# driven by the real glance CLI: uploads and downloads are byte-identical through each store,
# copy-image copies to the other store, stores-delete and image-delete remove every object,
# segment and part (checked with the swift CLI and SigV4-signed curl, not through ingotd).
# Usage: stores_swift_s3.sh [PATH-TO-INGOTD]
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
command -v glance > /dev/null || { echo "SKIP  glance CLI not installed (python3-glanceclient)"; exit 77; }
command -v swift > /dev/null || { echo "SKIP  swift CLI not installed (python3-swiftclient)"; exit 77; }
it_init "$@"
is_peer && { echo "SKIP  this test configures ingotd itself"; exit 77; }
. "$HERE/stores_testbed.sh"
W="$IT_TMP"
mkdir -p "$W/home"
export HOME="$W/home"
BUCKET=ingot-images

# Segments of 4 MiB past 8 MiB on Swift, 5 MiB parts past 5 MiB on S3, so a 22 MiB image is an
# SLO of 6 segments on one and a 5-part multipart upload on the other.
cat > "$W/ingotd.toml" <<EOF
[[stores]]
name = "swift"
driver = "swift"
default = true
description = "Swift"
swift_store_auth_version = 1
swift_store_auth_address = "$SWIFT_AUTH_URL"
swift_store_user = "$SWIFT_USER"
swift_store_key = "$SWIFT_KEY"
swift_store_container = "ingot"
swift_store_create_container_on_put = true
swift_store_large_object_size = 8
swift_store_large_object_chunk_size = 4
[[stores]]
name = "s3"
driver = "s3"
description = "S3 (Swift s3api)"
s3_store_host = "$S3_ENDPOINT"
s3_store_access_key = "$S3_ACCESS_KEY"
s3_store_secret_key = "$S3_SECRET_KEY"
s3_store_bucket = "$BUCKET"
s3_store_create_bucket_on_put = true
s3_store_large_object_size = 5
s3_store_large_object_chunk_size = 5
s3_store_thread_pools = 3
EOF
ingot_start --auth noauth --config "$W/ingotd.toml" || exit 1

random_file "$W/disk.raw" $((22 * 1048576 + 12345))
MD5=$(md5sum < "$W/disk.raw" | cut -d' ' -f1)

# What is in Swift, asked of Swift itself.
swift_segments() { swift list ingot_segments --prefix "$1/" 2> /dev/null | wc -l; }
swift_has() { swift stat ingot "$1" > /dev/null 2>&1 && echo yes || echo no; }
# S3, asked with curl's own SigV4 (the access key has a ':', so it goes percent-encoded in the URL).
s3_code() {
  local hostport="${S3_ENDPOINT#http://}" key="${S3_ACCESS_KEY//:/%3A}"
  curl -s -o /dev/null -w '%{http_code}' -I --aws-sigv4 "aws:amz:${S3_REGION}:s3" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://$key:$S3_SECRET_KEY@$hostport/$BUCKET/$1"
}
s3_parts() { swift list "$BUCKET+segments" --prefix "$1" 2> /dev/null | wc -l; }

echo "### stores"
run "stores-info" g stores-info
expect_true "stores-info lists swift and s3" grep -q "s3" "$W/out"

echo "### upload to Swift (SLO), download"
run "image-create --file --store swift" \
  g image-create --name on-swift --disk-format raw --container-format bare --file "$W/disk.raw" --store swift
ID=$(field id)
expect_eq "active with the data's checksum and size" "$(api "$ID" '[.status,.checksum,(.size|tostring),.stores]|join(",")')" \
  "active,$MD5,$((22 * 1048576 + 12345)),swift"
expect_eq "Swift holds the manifest" "$(swift_has "$ID")" yes
expect_eq "Swift holds 6 segments of 4 MiB" "$(swift_segments "$ID")" 6
expect_eq "the manifest is a Static Large Object" \
  "$(swift stat ingot "$ID" 2> /dev/null | grep -ci 'static-large-object: true')" 1
run "image-download" g image-download --file "$W/dl1" "$ID"
expect_eq "download from Swift is byte-identical" "$(md5sum < "$W/dl1" | cut -d' ' -f1)" "$MD5"
OUT="$W/range" req GET "/v2/images/$ID/file" -H "Range: bytes=4194300-4194310"
expect_eq "a Range across two segments: 206 and the right bytes" \
  "$CODE,$(cmp "$W/range" <(tail -c +4194301 "$W/disk.raw" | head -c 11) && echo same)" "206,same"

echo "### copy-image to S3"
run "image-import --import-method copy-image --stores s3" \
  g image-import --import-method copy-image --stores s3 "$ID"
if wait_for "$ID" '(.stores|split(",")|sort|join(","))=="s3,swift"'; then pass "copy-image added s3"; else
  fail "copy-image added s3" "$(api "$ID" '.stores')"; fi
expect_eq "S3 holds the object" "$(s3_code "$ID")" 200
expect_eq "s3api holds its 5 parts" "$(s3_parts "$ID")" 5
run "stores-delete --store swift" g stores-delete --store swift "$ID"
expect_eq "stores-delete removed the Swift copy: manifest and every segment" \
  "$(api "$ID" '.stores'),$(swift_has "$ID"),$(swift_segments "$ID")" "s3,no,0"
run "image-download (now from S3)" g image-download --file "$W/dl2" "$ID"
expect_eq "download from S3 is byte-identical" "$(md5sum < "$W/dl2" | cut -d' ' -f1)" "$MD5"
run "image-delete" g image-delete "$ID"
expect_eq "image-delete removed the S3 object and its parts" "$(s3_code "$ID"),$(s3_parts "$ID")" "404,0"

echo "### upload to S3 (multipart), copy to Swift, delete"
run "image-create --file --store s3" \
  g image-create --name on-s3 --disk-format raw --container-format bare --file "$W/disk.raw" --store s3
ID2=$(field id)
expect_eq "active in s3" "$(api "$ID2" '[.status,.checksum,.stores]|join(",")')" "active,$MD5,s3"
run "image-download" g image-download --file "$W/dl3" "$ID2"
expect_eq "download from S3 is byte-identical" "$(md5sum < "$W/dl3" | cut -d' ' -f1)" "$MD5"
run "image-import --import-method copy-image --stores swift" \
  g image-import --import-method copy-image --stores swift "$ID2"
if wait_for "$ID2" '(.stores|split(",")|sort|join(","))=="s3,swift"'; then pass "copy-image added swift"; else
  fail "copy-image added swift" "$(api "$ID2" '.stores')"; fi
expect_eq "Swift holds the copy in segments" "$(swift_has "$ID2"),$(swift_segments "$ID2")" "yes,6"
run "image-delete" g image-delete "$ID2"
expect_eq "image-delete removed both copies: Swift manifest, segments, S3 object, parts" \
  "$(swift_has "$ID2"),$(swift_segments "$ID2"),$(s3_code "$ID2"),$(s3_parts "$ID2")" "no,0,404,0"

echo "### a small image is one plain object"
printf 'tiny image' > "$W/tiny"
run "image-create tiny" g image-create --name tiny --disk-format raw --container-format bare --file "$W/tiny"
ID3=$(field id)
expect_eq "plain object, no segments" "$(swift_has "$ID3"),$(swift_segments "$ID3")" "yes,0"
run "image-download tiny" g image-download --file "$W/dl4" "$ID3"
expect_eq "tiny download" "$(cat "$W/dl4")" "tiny image"
run "image-delete tiny" g image-delete "$ID3"
expect_eq "tiny object gone" "$(swift_has "$ID3")" no
it_finish
