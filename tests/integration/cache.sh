#!/bin/bash
# The image cache end to end: Glance's cache API (GET/DELETE /v2/cache, PUT/DELETE /v2/cache/{id}),
# admin-only; the pre-cache queue; read-through fills, hit and miss counters in /metrics; LRU
# pruning under a small limit; deleted and deactivated images never served from cache; the glance
# CLI's cache-* commands. The file store is cached here too (cache_local_stores), so the daemon's
# whole path runs without an object store.
. "$(dirname "$0")/lib.sh"
it_init "$@"
command -v jq > /dev/null || { echo "SKIP  cache: jq missing"; exit 77; }
W="$IT_TMP"

admin_member_tokens "$W/tokens.toml"
# Room for two 1 MiB images, not three.
cat > "$W/cache.toml" <<TOML
[cache]
max_size = 2500000
cache_local_stores = true
TOML
ingot_start --auth tokens --tokens-file "$W/tokens.toml" --config "$W/cache.toml" || exit 1
AUTH_TOKEN=t-admin

metric() { curl -s "$INGOT_URL/metrics" | awk -v m="$1" '$1==m {print $2}'; }
cached() { req GET /v2/cache; jb "[.cached_images[].image_id] | index(\"$1\") != null"; }
new_image() {  # name -> ID of an active 1 MiB image
  create_image "{\"name\":\"$1\",\"disk_format\":\"raw\",\"container_format\":\"bare\"}"
  head -c 1048576 /dev/urandom > "$W/$1.bin"
  upload "$ID" "$W/$1.bin"
  [ "$CODE" = 204 ] || fail "upload $1" "HTTP $CODE"
}
download() { OUT="$W/dl.bin" req GET "/v2/images/$1/file"; cmp -s "$W/dl.bin" "$W/$2.bin"; }

req GET /versions
expect_eq "versions offer the cache API (v2.16 current)" "$(jb '.versions[0].id')" v2.16
req GET /v2/cache
expect_code "list the cache" 200
expect_eq "empty at first" "$(jb '(.cached_images | length) + (.queued_images | length)')" 0
AUTH_TOKEN=t-member
req GET /v2/cache
expect_code "members may not list it" 403
AUTH_TOKEN=t-admin

new_image a; A="$ID"
new_image b; B="$ID"
new_image c; C="$ID"
new_image d; D="$ID"
misses0="$(metric ingot_image_cache_misses_total)"
hits0="$(metric ingot_image_cache_hits_total)"
expect_true "download a (miss)" download "$A" a
expect_eq "a filled on the way" "$(cached "$A")" true
expect_true "download a again (hit), same bytes" download "$A" a
expect_eq "one miss counted" "$(( $(metric ingot_image_cache_misses_total) - misses0 ))" 1
expect_eq "one hit counted" "$(( $(metric ingot_image_cache_hits_total) - hits0 ))" 1
req GET /v2/cache
expect_eq "a's hits in the listing" "$(jb ".cached_images[] | select(.image_id==\"$A\") | .hits")" 1
expect_eq "a's size" "$(jb ".cached_images[] | select(.image_id==\"$A\") | .size")" 1048576
OUT="$W/part.bin" req GET "/v2/images/$B/file" -H 'Range: bytes=10-99'
expect_code "a range of b" 206
expect_eq "a range read does not fill the cache" "$(cached "$B")" false
expect_true "download b" download "$B" b
expect_true "download a (a becomes the most recent)" download "$A" a
expect_true "download c: over the limit" download "$C" c
expect_eq "LRU: b evicted" "$(cached "$B")" false
expect_eq "LRU: a kept" "$(cached "$A")" true
expect_eq "LRU: c cached" "$(cached "$C")" true
expect_true "evictions counted" test "$(metric ingot_image_cache_evictions_total)" -ge 1
expect_true "the cache stays under its limit" test "$(metric ingot_image_cache_bytes)" -le 2500000

# The pre-cache queue.
req PUT "/v2/cache/$D"
expect_code "queue d" 202
req GET /v2/cache
expect_eq "d listed as queued" "$(jb "[.queued_images[]] | index(\"$D\") != null")" true
for i in $(seq 1 100); do [ "$(cached "$D")" = true ] && break; sleep 0.1; done
expect_eq "d cached by the worker" "$(cached "$D")" true
expect_eq "and no longer queued" "$(jb '.queued_images | length')" 0
create_image '{"name":"q","disk_format":"raw","container_format":"bare"}'
req PUT "/v2/cache/$ID"
expect_code "a queued (not active) image cannot be queued" 400
req PUT /v2/cache/00000000-0000-0000-0000-000000000000
expect_code "an unknown image -> 404" 404
AUTH_TOKEN=t-member
req PUT "/v2/cache/$A"
expect_code "members may not queue" 403
AUTH_TOKEN=t-admin

# Deleted and deactivated images never come from the cache.
req DELETE "/v2/images/$D"
expect_code "delete d" 204
expect_eq "d's cached copy gone with it" "$(cached "$D")" false
expect_true "download a again (the queue's fill of d evicted it)" download "$A" a
expect_eq "a cached before deactivation" "$(cached "$A")" true
req POST "/v2/images/$A/actions/deactivate"
expect_code "deactivate a" 204
hits1="$(metric ingot_image_cache_hits_total)"
expect_true "admin downloads deactivated a (from the store)" download "$A" a
expect_eq "not a cache hit" "$(metric ingot_image_cache_hits_total)" "$hits1"
expect_eq "a dropped from the cache" "$(cached "$A")" false
AUTH_TOKEN=t-member
OUT="$W/x.bin" req GET "/v2/images/$A/file"
expect_code "members may not download it at all" 403
AUTH_TOKEN=t-admin

expect_true "download c" download "$C" c
expect_eq "c cached" "$(cached "$C")" true
req DELETE "/v2/cache/$C"
expect_code "drop c from the cache" 204
expect_eq "c dropped" "$(cached "$C")" false
req DELETE /v2/cache -H 'x-image-cache-clear-target: everything'
expect_code "a bad clear target -> 400" 400
req DELETE /v2/cache
expect_code "clear" 204

# The glance CLI.
if command -v glance > /dev/null; then
  export HOME="$W/home"; mkdir -p "$HOME"
  gc() { timeout 120 glance --os-image-url "$INGOT_URL" --os-auth-token t-admin "$@" <&-; }
  req POST "/v2/images/$A/actions/reactivate"
  run "glance cache-queue" gc cache-queue "$A"
  for i in $(seq 1 100); do [ "$(cached "$A")" = true ] && break; sleep 0.1; done
  run "glance cache-list" gc cache-list
  expect_true "cache-list shows a" grep -q "$A" "$W/out"
  run "glance cache-delete" gc cache-delete "$A"
  expect_eq "gone" "$(cached "$A")" false
  run "glance cache-clear" gc cache-clear
else
  skip "glance CLI" "glance not installed"
fi

# A restart keeps complete entries.
expect_true "download b" download "$B" b
ingot_stop
ingot_start --auth tokens --tokens-file "$W/tokens.toml" --config "$W/cache.toml" || exit 1
AUTH_TOKEN=t-admin
expect_eq "b still cached after a restart" "$(cached "$B")" true
it_finish
