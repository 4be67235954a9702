#!/usr/bin/env bash
# End-to-end test of the Image API v2 with curl against a real ingotd, checked against Glance's documented
# and recorded behaviour (/work/shared/peers/glance/samples: status codes and exact error bodies).
# Usage: api_curl.sh [PATH-TO-INGOTD]
#        TARGET_URL=http://127.0.0.1:9292 api_curl.sh   # same checks against a running Glance (peer mode)
#        TARGET_URL=... PEER_AUTH=headers api_curl.sh    # + the token/policy checks, against a Glance started
#            with GLANCE_AUTH=headers and secure RBAC (enforce_secure_rbac = true in [DEFAULT] and
#            enforce_new_defaults = true in [oslo_policy] of its glance-api.conf)
# Last checked 2026-11-23: Glance noauth 186/186, Glance secure RBAC 215/215; ingotd 246/246 on
# 2026-12-07 (with the Ingot-only locations API section).
# Prints one PASS/FAIL line per check; exits non-zero if any check failed.
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
it_init "$@"

W="$IT_TMP"
ZERO=00000000-0000-0000-0000-000000000000
PROBLEMS=()

section() { echo "### $*"; }

# ==================================================================================== noauth, defaults
section "noauth: discovery"
ingot_start --auth noauth || exit 1

req GET /
expect_code "GET / lists versions (300 Multiple Choices)" 300
expect_eq "GET / has a CURRENT v2 version" "$(jb '[.versions[] | select(.status=="CURRENT") | .id | startswith("v2")] | any')" true
req GET /versions
expect_code "GET /versions" 200
expect_eq "GET /versions lists v2.0 .. CURRENT" "$(jb '[.versions[].id] | (index("v2.0") != null)')" true
req GET /v2/schemas/image
expect_code "GET /v2/schemas/image" 200
expect_eq "image schema name" "$(jb .name)" image
expect_eq "image schema: name maxLength 255" "$(jb .properties.name.maxLength)" 255
expect_eq "image schema: status read-only" "$(jb .properties.status.readOnly)" true
req GET /v2/schemas/images
expect_code "GET /v2/schemas/images" 200
expect_eq "images schema name" "$(jb .name)" images
req GET /healthcheck
expect_code "GET /healthcheck" 200
if ! is_peer; then
  req GET /metrics
  expect_code "GET /metrics" 200
  expect_true "/metrics is Prometheus text (# TYPE lines)" grep -q '^# TYPE ' "$BODY"
fi
req GET /v2/nothing
expect_error "GET unknown path -> 404" 404
expect_sample "GET unknown path" error_404_path

# ==================================================================================== create / show
section "create and show"
create_image '{"name":"it-a","disk_format":"raw","container_format":"bare","tags":["t1"],"hw_disk_bus":"scsi"}'; A=$ID
expect_code "create image without id" 201
cp "$BODY" "$W/a.json"
expect_true "created id is a UUID" grep -qE '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' <<<"$A"
expect_eq "created: status queued" "$(jf "$W/a.json" .status)" queued
expect_eq "created: size/checksum/os_hash_value null" \
  "$(jf "$W/a.json" '[.size,.virtual_size,.checksum,.os_hash_algo,.os_hash_value]|map(tostring)|join(",")')" \
  "null,null,null,null,null"
expect_eq "created: name, formats, tags, extra property" \
  "$(jf "$W/a.json" '[.name,.disk_format,.container_format,(.tags|join("+")),.hw_disk_bus]|join(",")')" \
  "it-a,raw,bare,t1,scsi"
expect_eq "created: defaults (visibility shared, protected false, os_hidden false, min_ram 0, min_disk 0)" \
  "$(jf "$W/a.json" '[.visibility,.protected,.os_hidden,.min_ram,.min_disk]|map(tostring)|join(",")')" \
  "shared,false,false,0,0"
expect_eq "created: self/file/schema links" \
  "$(jf "$W/a.json" '[.self,.file,.schema]|join(",")')" \
  "/v2/images/$A,/v2/images/$A/file,/v2/schemas/image"
expect_true "created: created_at/updated_at are ISO 8601 UTC (…Z)" \
  bash -c "jq -r '.created_at,.updated_at' '$W/a.json' | grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' | grep -qx 2"
expect_true "created: Location header points at the image" bash -c "[[ '$(header Location)' == */v2/images/$A ]]"
expect_true "created: x-openstack-request-id header" bash -c "[[ '$(header x-openstack-request-id)' == req-* ]]"
# Same key set as Glance's answer to the same create (its multi-store "stores" key aside).
expect_eq "created: same attribute names as Glance's create answer" \
  "$(jf "$W/a.json" 'keys|sort|join(",")')" \
  "$(jq -r 'del(.stores)|keys|sort|join(",")' "$GLANCE_SAMPLES/image_create.json")"

CID=$(python3 -c 'import uuid; print(uuid.uuid4())')
create_image "{\"id\":\"$CID\",\"name\":\"it-b\",\"disk_format\":\"qcow2\",\"container_format\":\"bare\",\"protected\":true}"; B=$ID
expect_code "create image with a client-given id" 201
expect_eq "client-given id kept" "$B" "$CID"
expect_eq "protected set at create" "$(jb .protected)" true
req_json POST /v2/images "{\"id\":\"$CID\",\"name\":\"dup\"}"
expect_error "create with an existing id -> 409" 409 "Image ID $CID already exists!"
expect_sample "create with an existing id" error_409_dup_id "s/605bde54-45a0-4718-a462-91dec59ca4a9/$CID/g"

create_image '{"name":"it-c"}'; C=$ID
expect_code "create with name only" 201
expect_eq "name-only image has null formats" "$(jb '[.disk_format,.container_format]|map(tostring)|join(",")')" "null,null"

req GET "/v2/images/$A"
expect_code "show image" 200
expect_eq "show == create answer (except updated_at)" \
  "$(jq -cS 'del(.updated_at)' "$BODY")" "$(jq -cS 'del(.updated_at)' "$W/a.json")"

section "create: validation"
req_json POST /v2/images '{"name":'
expect_error "malformed JSON -> 400" 400 "Malformed JSON in request body."
expect_sample "malformed JSON" error_400_bad_json
req_json POST /v2/images '["not","an","object"]'
# Glance answers 500 here (an unhandled AttributeError); a client error is what it should be.
is_peer || expect_error "JSON array instead of object -> 400 (Glance: 500)" 400
req_json POST /v2/images '{"name":"bad","disk_format":"bogus","container_format":"bare"}'
expect_error "unknown disk_format -> 400" 400
expect_true "unknown disk_format: Glance's message start" \
  bash -c "jq -r .message '$BODY' | grep -q \"^Provided object does not match schema 'image': 'bogus' is not one of \""
req_json POST /v2/images '{"name":"bad","disk_format":"raw","container_format":"bogus"}'
expect_error "unknown container_format -> 400" 400
LONG=$(printf 'n%.0s' $(seq 1 256))
req_json POST /v2/images "{\"name\":\"$LONG\"}"
expect_error "name of 256 characters -> 400" 400
create_image "{\"name\":\"${LONG:0:255}\"}"; N255=$ID
expect_code "name of 255 characters accepted" 201
req_json POST /v2/images '{"name":"r","os_glance_foo":"x"}'
expect_error "reserved os_glance_ property -> 403" 403
expect_sample "reserved os_glance_ property" error_403_reserved_prop
req_json POST /v2/images '{"name":"r","status":"active"}'
expect_error "read-only attribute at create -> 403" 403 "Attribute 'status' is read-only."
req_json POST /v2/images '{"name":"r","visibility":"everyone"}'
expect_error "unknown visibility -> 400" 400
req_json POST /v2/images '{"name":"r","min_ram":-1}'
expect_error "negative min_ram -> 400" 400
req_json POST /v2/images '{"name":"r","id":"not-a-uuid"}'
expect_error "client id that is not a UUID -> 400" 400
req_json POST "/v2/images/$A" '{}'
expect_error "POST on an image -> 405" 405
expect_sample "POST on an image" error_405_method
expect_true "405 carries Allow: GET, PATCH, DELETE" bash -c "[ '$(header Allow)' = 'GET, PATCH, DELETE' ]"

section "not found"
req GET /v2/images/not-a-uuid
expect_error "GET malformed image id -> 404" 404 "No image found with ID not-a-uuid"
expect_sample "GET malformed image id" error_404_bad_id
req GET "/v2/images/$ZERO"
expect_error "GET unknown image -> 404" 404 "No image found with ID $ZERO"
expect_sample "GET unknown image" error_404_json
req GET "/v2/images/$ZERO/file"
expect_error "GET unknown image's file -> 404" 404
expect_sample "GET unknown image's file" error_404_file
req_patch "/v2/images/$ZERO" '[{"op":"add","path":"/foo","value":"bar"}]'
expect_error "PATCH unknown image -> 404" 404
req DELETE "/v2/images/$ZERO"
expect_error "DELETE unknown image -> 404" 404

# ==================================================================================== JSON patch
section "JSON-patch updates"
req_patch "/v2/images/$A" '[{"op":"add","path":"/foo","value":"bar"},{"op":"replace","path":"/name","value":"it-a2"},{"op":"replace","path":"/min_ram","value":512}]'
expect_code "patch add/replace" 200
expect_eq "patched fields" "$(jb '[.foo,.name,(.min_ram|tostring),.hw_disk_bus]|join(",")')" "bar,it-a2,512,scsi"
req GET "/v2/images/$A"
expect_eq "patched fields persisted" "$(jb '[.foo,.name,(.min_ram|tostring)]|join(",")')" "bar,it-a2,512"
req_patch "/v2/images/$A" '[{"op":"replace","path":"/foo","value":"baz"}]'
expect_code "patch replace extra property" 200
expect_eq "replaced extra property" "$(jb .foo)" baz
req_patch "/v2/images/$A" '[{"op":"remove","path":"/foo"}]'
expect_code "patch remove extra property" 200
expect_eq "removed property is gone" "$(jb 'has("foo")')" false
req_patch "/v2/images/$A" '[{"op":"remove","path":"/foo"}]'
expect_error "patch remove of an absent property -> 409" 409
req_patch "/v2/images/$A" '[{"op":"replace","path":"/nothere","value":"x"}]'
expect_error "patch replace of an absent property -> 409" 409
req_patch "/v2/images/$A" '[{"op":"add","path":"/disk_format","value":"qcow2"}]'
expect_code "patch disk_format of a queued image" 200
expect_eq "disk_format changed" "$(jb .disk_format)" qcow2
req_patch "/v2/images/$A" '[{"op":"replace","path":"/disk_format","value":"raw"}]'
req PATCH "/v2/images/$A" -H 'Content-Type: application/json' \
    --data-binary '[{"op":"add","path":"/foo","value":"bar"}]'
expect_error "patch with Content-Type application/json -> 415" 415
expect_sample "patch with the wrong content type" image_patch_wrong_ctype_415
req_patch "/v2/images/$A" '[{"op":"replace","path":"/status","value":"active"}]'
expect_error "patch read-only status -> 403" 403 "Attribute 'status' is read-only."
expect_sample "patch read-only status" image_patch_readonly_403
req_patch "/v2/images/$A" '[{"op":"add","path":"/checksum","value":"00"}]'
expect_error "patch read-only checksum -> 403" 403 "Attribute 'checksum' is read-only."
req_patch "/v2/images/$A" '[{"op":"replace","path":"/id","value":"'"$ZERO"'"}]'
expect_error "patch id -> 403" 403
req_patch "/v2/images/$A" '[{"op":"add","path":"/os_glance_x","value":"1"}]'
expect_error "patch reserved os_glance_ property -> 403" 403
req_patch "/v2/images/$A" '{"op":"add","path":"/foo","value":"bar"}'
expect_error "patch body that is not a list -> 400" 400
req_patch "/v2/images/$A" '[{"op":"move","from":"/name","path":"/foo"}]'
expect_error "patch op move -> 400" 400
req_patch "/v2/images/$A" '[{"op":"add","path":"/foo","value":5}]'
expect_error "patch extra property with a non-string value -> 400" 400
req_patch "/v2/images/$A" '[{"op":"replace","path":"/name","value":"'"$LONG"'"}]'
expect_error "patch name of 256 characters -> 400" 400
req_patch "/v2/images/$A" '[{"op":"add","path":"/foo","value":'
expect_error "patch malformed JSON -> 400" 400
req GET "/v2/images/$A"
expect_eq "failed patches changed nothing" "$(jb '[.name,(.min_ram|tostring),.status,(has("foo")|tostring)]|join(",")')" "it-a2,512,queued,false"

section "tags"
req PUT "/v2/images/$A/tags/newtag"
expect_code "add tag" 204
req GET "/v2/images/$A"
expect_eq "tag listed" "$(jb '.tags|sort|join(",")')" "newtag,t1"
req PUT "/v2/images/$A/tags/newtag"
expect_code "add the same tag again (idempotent)" 204
req GET "/v2/images/$A"
expect_eq "tag listed once" "$(jb '.tags|sort|join(",")')" "newtag,t1"
req DELETE "/v2/images/$A/tags/newtag"
expect_code "delete tag" 204
req GET "/v2/images/$A"
expect_eq "tag gone" "$(jb '.tags|join(",")')" "t1"
req DELETE "/v2/images/$A/tags/newtag"
expect_error "delete absent tag -> 404" 404
req PUT "/v2/images/$ZERO/tags/x"
expect_error "tag unknown image -> 404" 404
req_patch "/v2/images/$A" '[{"op":"replace","path":"/tags","value":["p1","p2"]}]'
expect_code "replace tags by patch" 200
expect_eq "tags replaced" "$(jb '.tags|sort|join(",")')" "p1,p2"

# ==================================================================================== data
section "upload and download"
SIZE=$((20*1048576 + 4321))
random_file "$W/img.bin" "$SIZE"
MD5=$(md5sum < "$W/img.bin" | cut -d' ' -f1)
SHA512=$(sha512sum < "$W/img.bin" | cut -d' ' -f1)
req GET "/v2/images/$A/file"
expect_code "download of a queued image -> 204" 204
req PUT "/v2/images/$C/file" -H 'Content-Type: application/octet-stream' --data-binary @"$W/img.bin"
expect_error "upload without disk/container format -> 400" 400 "Properties disk_format, container_format must be set prior to saving data."
expect_sample "upload without formats" error_400_upload_no_formats
req PUT "/v2/images/$A/file" -H 'Content-Type: application/json' --data-binary @"$W/img.bin"
expect_error "upload with Content-Type application/json -> 415" 415
upload "$A" "$W/img.bin"
expect_code "upload $SIZE bytes" 204
req GET "/v2/images/$A"
cp "$BODY" "$W/a-active.json"
expect_eq "uploaded: status active" "$(jb .status)" active
expect_eq "uploaded: size" "$(jb .size)" "$SIZE"
expect_eq "uploaded: checksum == md5sum" "$(jb .checksum)" "$MD5"
expect_eq "uploaded: os_hash_algo sha512" "$(jb .os_hash_algo)" sha512
expect_eq "uploaded: os_hash_value == sha512sum" "$(jb .os_hash_value)" "$SHA512"
expect_eq "uploaded: same attribute names as Glance's active image" \
  "$(jf "$W/a-active.json" 'del(.stores,.foo,.hw_disk_bus)|keys|sort|join(",")')" \
  "$(jq -r 'del(.stores,.hw_disk_bus)|keys|sort|join(",")' "$GLANCE_SAMPLES/image_active.json")"
OUT="$W/dl.bin" req GET "/v2/images/$A/file"
expect_code "download" 200
expect_true "download is byte-identical (cmp)" cmp "$W/img.bin" "$W/dl.bin"
expect_eq "download Content-MD5 == checksum" "$(header Content-MD5)" "$MD5"
expect_eq "download Content-Length" "$(header Content-Length)" "$SIZE"
expect_eq "download Content-Type" "$(header Content-Type)" application/octet-stream

# Chunked upload (no Content-Length), as the glance CLI sends a stream.
create_image '{"name":"it-d","disk_format":"raw","container_format":"bare"}'; D=$ID
req PUT "/v2/images/$D/file" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' -T - < "$W/img.bin"
expect_code "chunked upload" 204
req GET "/v2/images/$D"
expect_eq "chunked upload: size, checksum, sha512" "$(jb '[.status,(.size|tostring),.checksum,.os_hash_value]|join(",")')" "active,$SIZE,$MD5,$SHA512"
OUT="$W/dl2.bin" req GET "/v2/images/$D/file"
expect_true "chunked upload downloads byte-identical" cmp "$W/img.bin" "$W/dl2.bin"

# Empty image: Glance accepts zero bytes and records the hashes of nothing.
create_image '{"name":"it-empty","disk_format":"raw","container_format":"bare"}'; E=$ID
: > "$W/empty.bin"
upload "$E" "$W/empty.bin"
expect_code "upload 0 bytes" 204
req GET "/v2/images/$E"
expect_eq "empty image: active, size 0, md5 of nothing" "$(jb '[.status,(.size|tostring),.checksum]|join(",")')" \
  "active,0,d41d8cd98f00b204e9800998ecf8427e"

section "ranges"
OUT="$W/r1" req GET "/v2/images/$A/file" -H 'Range: bytes=0-99'
expect_code "Range bytes=0-99 -> 206" 206
expect_eq "Range 0-99: Content-Range" "$(header Content-Range)" "bytes 0-99/$SIZE"
expect_true "Range 0-99: the first 100 bytes" cmp "$W/r1" <(head -c 100 "$W/img.bin")
OUT="$W/r2" req GET "/v2/images/$A/file" -H 'Range: bytes=1048570-2097160'
expect_code "Range across a MiB boundary -> 206" 206
expect_true "Range 1048570-2097160: the right bytes" cmp "$W/r2" <(tail -c +1048571 "$W/img.bin" | head -c $((2097160-1048570+1)))
OUT="$W/r3" req GET "/v2/images/$A/file" -H "Range: bytes=$((SIZE-10))-"
expect_code "open-ended Range -> 206" 206
expect_true "open-ended Range: the last 10 bytes" cmp "$W/r3" <(tail -c 10 "$W/img.bin")
expect_eq "open-ended Range: Content-Range" "$(header Content-Range)" "bytes $((SIZE-10))-$((SIZE-1))/$SIZE"
req GET "/v2/images/$A/file" -H "Range: bytes=$((SIZE+10))-$((SIZE+20))"
expect_code "Range beyond the end -> 416" 416

section "state rules"
upload "$A" "$W/img.bin"
expect_error "upload to an active image -> 409" 409 "Image status transition from active to saving is not allowed"
expect_sample "upload to an active image" image_upload_again_409
req_patch "/v2/images/$A" '[{"op":"replace","path":"/disk_format","value":"qcow2"}]'
expect_error "change disk_format of an active image -> 403" 403 "Attribute disk_format can be only replaced for a queued image."
expect_sample "change disk_format of an active image" image_patch_disk_format_active
req GET "/v2/images/$A"
expect_eq "active image unchanged" "$(jb '[.status,.checksum,.disk_format]|join(",")')" "active,$MD5,raw"

# A second upload while the first is still streaming is refused, and the first one completes whole.
create_image '{"name":"it-concurrent","disk_format":"raw","container_format":"bare"}'; K=$ID
random_file "$W/k.bin" $((64*1048576))
curl -s -m 120 --limit-rate 16M -o /dev/null -w '%{http_code}' -X PUT -T "$W/k.bin" \
  -H 'Content-Type: application/octet-stream' "$INGOT_URL/v2/images/$K/file" > "$W/k.code" &
KPID=$!
for t in $(seq 1 100); do req GET "/v2/images/$K"; [ "$(jb .status)" = saving ] && break; sleep 0.05; done
expect_eq "first upload is saving" "$(jb .status)" saving
upload "$K" "$W/k.bin"
expect_error "second upload while the first is saving -> 409" 409 "Image status transition from saving to saving is not allowed"
wait "$KPID"
expect_eq "first upload completes" "$(cat "$W/k.code")" 204
req GET "/v2/images/$K"
expect_eq "first upload's bytes are the image" "$(jb '[.status,.checksum]|join(",")')" \
  "active,$(md5sum < "$W/k.bin" | cut -d' ' -f1)"
req DELETE "/v2/images/$K"

section "deactivate / reactivate"
req POST "/v2/images/$A/actions/deactivate"
expect_code "deactivate" 204
req GET "/v2/images/$A"
expect_eq "status deactivated" "$(jb .status)" deactivated
# Glance lets admins (noauth is admin) download a deactivated image; others get 403 (tokens section).
OUT=/dev/null req GET "/v2/images/$A/file"
expect_code "admin downloads a deactivated image" 200
req POST "/v2/images/$A/actions/deactivate"
expect_code "deactivate again (idempotent)" 204
req POST "/v2/images/$A/actions/reactivate"
expect_code "reactivate" 204
req GET "/v2/images/$A"
expect_eq "status active again" "$(jb .status)" active
OUT="$W/dl3.bin" req GET "/v2/images/$A/file"
expect_true "reactivated image downloads byte-identical" cmp "$W/img.bin" "$W/dl3.bin"
req POST "/v2/images/$C/actions/deactivate"
expect_error "deactivate a queued image -> 403" 403
req POST "/v2/images/$ZERO/actions/deactivate"
expect_error "deactivate unknown image -> 404" 404

# ==================================================================================== list
section "list, filters, sort, pagination"
for i in 1 2 3 4 5; do
  df=raw; [ $((i % 2)) = 0 ] && df=qcow2
  create_image "{\"name\":\"it-list-$i\",\"disk_format\":\"$df\",\"container_format\":\"bare\",\"it_group\":\"g1\",\"tags\":[\"lt$((i % 2))\"]}"
  [ "$CODE" = 201 ] || fail "create it-list-$i" "HTTP $CODE"
done
ALL_EXPECTED=$(( 5 + 6 ))   # A B C N255 D E + it-list-1..5
if is_peer; then ALL_EXPECTED=""; fi
req GET /v2/images
expect_code "list" 200
cp "$BODY" "$W/list.json"
[ -n "$ALL_EXPECTED" ] && expect_eq "list shows every image (default limit)" "$(jb '.images|length')" "$ALL_EXPECTED"
expect_eq "list links: first and schema" "$(jb '[.first,.schema]|join(",")')" "/v2/images,/v2/schemas/images"
expect_eq "list without more pages has no next" "$(jb 'has("next")')" false
expect_eq "list is newest first (created_at desc)" \
  "$(jb '[.images[].created_at] == ([.images[].created_at]|sort|reverse)')" true

# walk every page of 2; the union must be the full list with no duplicate
walk() {  # first-path -> ids, one per line, in order; fails on a page without images while next is set
  local path="$1" n=0
  : > "$W/walk.ids"
  while [ -n "$path" ] && [ "$n" -lt 200 ]; do
    req GET "$path"
    [ "$CODE" = 200 ] || { echo "page $path -> $CODE" >&2; return 1; }
    jb '.images[].id' >> "$W/walk.ids"
    path="$(jb '.next // empty')"
    n=$((n+1))
  done
}
walk "/v2/images?limit=2"
expect_eq "pages of 2 cover the full list in order" "$(paste -sd, "$W/walk.ids")" "$(jf "$W/list.json" '[.images[].id]|join(",")')"
expect_eq "pages of 2: no id twice" "$(sort "$W/walk.ids" | uniq -d | wc -l)" 0
req GET "/v2/images?limit=2"
expect_eq "limit=2 returns 2" "$(jb '.images|length')" 2
expect_true "limit=2 has next with marker = last id" \
  bash -c "[ \"\$(jq -r .next '$BODY')\" = \"/v2/images?limit=2&marker=\$(jq -r '.images[-1].id' '$BODY')\" ]"
expect_eq "limit=2: first link" "$(jb .first)" "/v2/images?limit=2"

req GET "/v2/images?sort_key=name&sort_dir=asc&name=it-list-3"
expect_eq "filter name=" "$(jb '[.images[].name]|join(",")')" "it-list-3"
req GET "/v2/images?it_group=g1&sort_key=name&sort_dir=asc"
expect_eq "filter on an extra property" "$(jb '[.images[].name]|join(",")')" "it-list-1,it-list-2,it-list-3,it-list-4,it-list-5"
req GET "/v2/images?it_group=g1&sort=name:desc"
expect_eq "sort=name:desc" "$(jb '[.images[].name]|join(",")')" "it-list-5,it-list-4,it-list-3,it-list-2,it-list-1"
req GET "/v2/images?it_group=g1&disk_format=qcow2&sort_key=name&sort_dir=asc"
expect_eq "filter disk_format + property" "$(jb '[.images[].name]|join(",")')" "it-list-2,it-list-4"
req GET "/v2/images?tag=lt1&sort_key=name&sort_dir=asc"
expect_eq "filter tag=" "$(jb '[.images[].name]|join(",")')" "it-list-1,it-list-3,it-list-5"
req GET "/v2/images?status=active"
expect_true "filter status=active: only active images, A among them" \
  bash -c "jq -e '(.images|length)>0 and all(.images[]; .status==\"active\") and any(.images[]; .id==\"$A\")' '$BODY' >/dev/null"
req GET "/v2/images?status=queued&it_group=g1"
expect_eq "filter status=queued" "$(jb '.images|length')" 5
walk "/v2/images?it_group=g1&sort_key=name&sort_dir=desc&limit=2"
expect_eq "pagination keeps the sort order and the filters" \
  "$(xargs -I{} jq -r --arg id {} '.images[]|select(.id==$id)|.name' "$W/list.json" < "$W/walk.ids" | paste -sd,)" \
  "it-list-5,it-list-4,it-list-3,it-list-2,it-list-1"
req GET "/v2/images?it_group=g1&limit=2&sort_key=name&sort_dir=asc"
expect_true "next link keeps the query (filter, sort)" \
  bash -c "jq -r .next '$BODY' | grep -q 'it_group=g1' && jq -r .next '$BODY' | grep -q 'sort_key=name'"
req GET "/v2/images?sort_key=bogus"
expect_error "list sort_key=bogus -> 400" 400
expect_sample "list sort_key=bogus" image_list_bad_sort_400
req GET "/v2/images?marker=$ZERO"
expect_error "list with an unknown marker -> 400" 400
expect_sample "list with an unknown marker" image_list_bad_marker_400
req GET "/v2/images?sort_dir=sideways"
expect_error "list sort_dir=sideways -> 400" 400
req GET "/v2/images?limit=-1"
expect_error "list limit=-1 -> 400" 400
req GET "/v2/images?limit=abc"
expect_error "list limit=abc -> 400" 400

# ==================================================================================== delete
section "delete"
req DELETE "/v2/images/$B"
expect_error "delete a protected image -> 403" 403 "Image $B is protected and cannot be deleted."
expect_sample "delete a protected image" error_403_delete_protected "s/e4a312d4-4adb-441d-8caf-18ca84c6b824/$B/g"
req_patch "/v2/images/$B" '[{"op":"replace","path":"/protected","value":false}]'
expect_code "unprotect" 200
req DELETE "/v2/images/$B"
expect_code "delete the unprotected image" 204
count_size() { find "$INGOT_DATA" -type f -size "${SIZE}c" 2>/dev/null | wc -l; }
is_peer || NFILES=$(count_size)
req DELETE "/v2/images/$A"
expect_code "delete an active image" 204
is_peer || expect_eq "deleting removed the image's bytes from the data dir" "$(count_size)" "$((NFILES - 1))"
req GET "/v2/images/$A"
expect_error "deleted image -> 404" 404 "No image found with ID $A"
req GET "/v2/images/$A/file"
expect_error "deleted image's file -> 404" 404
req DELETE "/v2/images/$A"
expect_error "delete again -> 404" 404
req GET /v2/images
expect_eq "deleted images are not listed" "$(jb "[.images[].id | select(. == \"$A\" or . == \"$B\")] | length")" 0
for id in $C $N255 $D $E; do req DELETE "/v2/images/$id"; done
for id in $(curl -s "$INGOT_URL/v2/images?it_group=g1" | jq -r '.images[].id'); do req DELETE "/v2/images/$id"; done
ingot_stop

# ==================================================================================== configuration
if is_peer; then
  skip "configuration (size cap, formats)" "peer mode"
else
  section "configuration: size cap and formats"
  cat > "$W/cap.toml" <<EOF
[images]
size_cap = 1048576
disk_formats = ["raw", "qcow2"]
container_formats = ["bare"]
hash_algo = "sha512"
EOF
  INGOT_DATA="$W/data-cap"
  ingot_start --auth noauth --config "$W/cap.toml" || exit 1
  random_file "$W/over.bin" $((1048576 + 1))
  random_file "$W/at.bin" 1048576
  create_image '{"name":"cap","disk_format":"raw","container_format":"bare"}'; F=$ID
  upload "$F" "$W/over.bin"
  expect_error "upload of size_cap+1 bytes -> 413" 413
  req GET "/v2/images/$F"
  expect_eq "after 413 the image is queued with no size/checksum" \
    "$(jb '[.status,(.size|tostring),(.checksum|tostring)]|join(",")')" "queued,null,null"
  req PUT "/v2/images/$F/file" -H 'Content-Type: application/octet-stream' \
      -H 'Transfer-Encoding: chunked' -T - < "$W/over.bin"
  expect_error "chunked upload over size_cap -> 413" 413
  upload "$F" "$W/at.bin"
  expect_code "upload of exactly size_cap bytes" 204
  req GET "/v2/images/$F"
  expect_eq "image at the cap is active with the right checksum" "$(jb '[.status,.checksum]|join(",")')" \
    "active,$(md5sum < "$W/at.bin" | cut -d' ' -f1)"
  req_json POST /v2/images '{"name":"x","disk_format":"vmdk","container_format":"bare"}'
  expect_error "disk_format not in the configured list -> 400" 400
  req_json POST /v2/images '{"name":"x","disk_format":"raw","container_format":"ovf"}'
  expect_error "container_format not in the configured list -> 400" 400
  ingot_stop
  INGOT_DATA=""
fi

# ==================================================================================== tokens
# In peer mode this section runs only against a Glance started with GLANCE_AUTH=headers and secure RBAC
# (enforce_secure_rbac and [oslo_policy] enforce_new_defaults true): PEER_AUTH=headers.
if is_peer && [ "${PEER_AUTH:-}" != headers ]; then
  skip "token authentication and policy" "peer mode without PEER_AUTH=headers"
else
  section "auth tokens: roles and projects"
  PEER_IDS=([t-admin]="proj-a alice admin,member,reader" [t-member-a]="proj-a bob member,reader"
            [t-reader-a]="proj-a carol reader" [t-member-b]="proj-b dave member,reader")
  cat > "$W/tokens.toml" <<'EOF'
[[token]]
token = "t-admin"
user = "alice"
project = "proj-a"
roles = ["admin"]

[[token]]
token = "t-member-a"
user = "bob"
project = "proj-a"
roles = ["member"]

[[token]]
token = "t-reader-a"
user = "carol"
project = "proj-a"
roles = ["reader"]

[[token]]
token = "t-member-b"
user = "dave"
project = "proj-b"
roles = ["member"]

[[token]]
token = "t-service-a"
user = "nova"
project = "proj-a"
roles = ["service"]
EOF
  INGOT_DATA="$W/data-auth"
  ingot_start --auth tokens --tokens-file "$W/tokens.toml" || exit 1
  if ! is_peer; then   # the headers-mode peer has no tokens to refuse
    AUTH_TOKEN=""
    req GET /v2/images
    expect_code "no token -> 401" 401
    AUTH_TOKEN="wrong"
    req GET /v2/images
    expect_code "unknown token -> 401" 401
    req_json POST /v2/images '{"name":"x"}'
    expect_code "unknown token cannot create -> 401" 401
    AUTH_TOKEN=""
    req GET /healthcheck
    expect_code "healthcheck needs no token" 200
  fi

  AUTH_TOKEN=t-member-a
  create_image '{"name":"priv-a","disk_format":"raw","container_format":"bare","visibility":"private"}'; P=$ID
  expect_code "member creates an image in its project" 201
  expect_eq "owner is the member's project" "$(jb .owner)" proj-a
  random_file "$W/auth.bin" 65536
  upload "$P" "$W/auth.bin"
  expect_code "member uploads to its project's image" 204
  req_patch "/v2/images/$P" '[{"op":"add","path":"/k","value":"v"}]'
  expect_code "member patches its project's image" 200
  req_json POST /v2/images '{"name":"pub","visibility":"public"}'
  expect_error "member creates a public image -> 403" 403
  req POST "/v2/images/$P/actions/deactivate"
  # Glance's secure RBAC (ADMIN_OR_PROJECT_MEMBER), Ingot's default policy too.
  expect_code "member deactivates its project's image" 204
  req POST "/v2/images/$P/actions/reactivate"
  expect_code "member reactivates its project's image" 204

  AUTH_TOKEN=t-reader-a
  req GET "/v2/images/$P"
  expect_code "reader reads its project's image" 200
  OUT="$W/auth-dl.bin" req GET "/v2/images/$P/file"
  # Glance's secure-RBAC download_image needs the member role; so does Ingot's default policy.
  expect_code "reader download -> 403 (member needed)" 403
  req GET /v2/images
  expect_eq "reader lists its project's image" "$(jb "[.images[].id]|index(\"$P\") != null")" true
  req_json POST /v2/images '{"name":"by-reader"}'
  expect_code "reader creates -> 403" 403
  req_patch "/v2/images/$P" '[{"op":"add","path":"/k2","value":"v"}]'
  expect_code "reader patches -> 403" 403
  req PUT "/v2/images/$P/tags/x"
  expect_code "reader tags -> 403" 403
  req DELETE "/v2/images/$P"
  expect_code "reader deletes -> 403" 403

  AUTH_TOKEN=t-member-b
  req GET "/v2/images/$P"
  expect_error "other project's private image -> 404" 404
  req GET "/v2/images/$P/file"
  expect_code "other project's private image file -> 404" 404
  req_patch "/v2/images/$P" '[{"op":"add","path":"/k3","value":"v"}]'
  expect_code "other project patches a private image -> 404" 404
  req DELETE "/v2/images/$P"
  expect_code "other project deletes a private image -> 404" 404
  req GET /v2/images
  expect_eq "other project's private image is not listed" "$(jb "[.images[].id]|index(\"$P\")")" null
  create_image '{"name":"priv-b","disk_format":"raw","container_format":"bare","visibility":"private"}'; Q=$ID
  expect_code "member of project b creates" 201

  AUTH_TOKEN=t-admin
  req GET "/v2/images/$Q"
  expect_code "admin reads any project's image" 200
  req POST "/v2/images/$P/actions/deactivate"
  expect_code "admin deactivates" 204
  AUTH_TOKEN=t-member-a
  req GET "/v2/images/$P/file"
  expect_error "member downloads a deactivated image -> 403" 403
  AUTH_TOKEN=t-admin
  req POST "/v2/images/$P/actions/reactivate"
  expect_code "admin reactivates" 204
  req_patch "/v2/images/$P" '[{"op":"replace","path":"/visibility","value":"public"}]'
  expect_code "admin publishes" 200

  AUTH_TOKEN=t-member-b
  req GET "/v2/images/$P"
  expect_code "public image visible to another project" 200
  req_patch "/v2/images/$P" '[{"op":"add","path":"/k4","value":"v"}]'
  expect_code "another project cannot change a public image -> 403" 403
  req DELETE "/v2/images/$P"
  expect_code "another project cannot delete a public image -> 403" 403
  OUT="$W/auth-dl2.bin" req GET "/v2/images/$P/file"
  expect_code "public image downloadable by another project" 200

  AUTH_TOKEN=t-member-a
  req DELETE "/v2/images/$P"
  expect_code "owner's member deletes" 204

  # Glance 2024.1's locations API: objects placed in the file store's directory (<data_dir>/images),
  # adopted in place. Ingot-only: a peer Glance has its own stores.
  if ! is_peer; then
    section "locations API"
    random_file "$INGOT_DATA/images/golden.raw" 131072
    GOLDEN_SHA512=$(sha512sum "$INGOT_DATA/images/golden.raw" | cut -d' ' -f1)
    GOLDEN_URL="file://$(realpath "$INGOT_DATA/images")/golden.raw"
    create_image '{"name":"loc","disk_format":"raw","container_format":"bare"}'; L=$ID
    req_json POST "/v2/images/$L/locations" "{\"url\":\"file:///etc/passwd\"}"
    expect_code "location outside every store -> 400" 400
    req_json POST "/v2/images/$L/locations" "{\"url\":\"http://example.com/x.img\"}"
    expect_code "location with another scheme -> 400" 400
    req_json POST "/v2/images/$L/locations" "{\"url\":\"$(dirname "$GOLDEN_URL")/../catalog.db\"}"
    expect_code "location with '..' -> 400" 400
    req_json POST "/v2/images/$L/locations" \
      "{\"url\":\"$GOLDEN_URL\",\"validation_data\":{\"os_hash_algo\":\"sha512\",\"os_hash_value\":\"$(printf 'a%.0s' $(seq 128))\"}}"
    expect_code "location whose hash does not match -> 400" 400
    AUTH_TOKEN=t-reader-a
    req_json POST "/v2/images/$L/locations" "{\"url\":\"$GOLDEN_URL\"}"
    expect_code "reader adds a location -> 403" 403
    AUTH_TOKEN=t-member-a
    req GET "/v2/images/$L"
    expect_eq "image stays queued after refused locations" "$(jb .status)" queued
    req_json POST "/v2/images/$L/locations" \
      "{\"url\":\"$GOLDEN_URL\",\"validation_data\":{\"os_hash_algo\":\"sha512\",\"os_hash_value\":\"$GOLDEN_SHA512\"}}"
    expect_code "owner's member adds a location -> 202" 202
    req GET "/v2/images/$L"
    expect_eq "image with a location is active with its hashes" \
      "$(jb '[.status,.size,.os_hash_value,.checksum]|map(tostring)|join(",")')" \
      "active,131072,$GOLDEN_SHA512,$(md5sum "$INGOT_DATA/images/golden.raw" | cut -d' ' -f1)"
    OUT="$W/loc-dl.bin" req GET "/v2/images/$L/file"
    expect_true "the adopted object is what downloads serve" cmp "$INGOT_DATA/images/golden.raw" "$W/loc-dl.bin"
    req_json POST "/v2/images/$L/locations" "{\"url\":\"$GOLDEN_URL\"}"
    expect_code "second location on an active image -> 409" 409
    req GET "/v2/images/$L/locations"
    expect_code "member lists locations -> 403 (service only)" 403
    AUTH_TOKEN=t-admin
    req GET "/v2/images/$L/locations"
    expect_code "admin lists locations -> 403 (Glance: role:service)" 403
    AUTH_TOKEN=t-service-a
    req GET "/v2/images/$L/locations"
    expect_code "service lists locations" 200
    expect_eq "locations list the adopted URL and its store" \
      "$(jb '[.[0].url,.[0].metadata.store]|join(",")')" "$GOLDEN_URL,file"
  fi
  AUTH_TOKEN=""
  ingot_stop
  INGOT_DATA=""
fi

it_finish
