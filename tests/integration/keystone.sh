#!/bin/bash
# ingotd behind a real Keystone (Debian's `keystone`, set up from nothing on 127.0.0.1):
#  - the edge: GET / answers 300 unauthenticated; no token, a bad token, an expired token and a
#    revoked token are 401 with WWW-Authenticate naming Keystone; a token without a project role
#    is 403; a reader reads but does not write or download;
#  - the `openstack image` commands as two users of two projects, showing Glance's visibility rules
#    for private, shared (add project, member list, set --accept), public and community images.
# Usage: keystone.sh [PATH-TO-INGOTD]
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
. "$HERE/keystone_lib.sh"
command -v openstack > /dev/null || { echo "SKIP  openstack CLI not installed"; exit 77; }
it_init "${1:-}"
W="$IT_TMP"
trap 'rc=$?; keystone_down; (exit $rc); it_cleanup' EXIT

# Short-lived tokens, so expiry is seen within the test; revocations are polled every second.
export KS_TOKEN_EXPIRATION=30
keystone_up "$W/keystone" || exit $?
ks_admin_token || { fail "admin token"; exit 1; }
ks_service_user
PA="$(ks_project proj-a)"; PB="$(ks_project proj-b)"
UA="$(ks_user alice alice-pw)"; UB="$(ks_user bob bob-pw)"
UR="$(ks_user rita rita-pw)"; UN="$(ks_user nobody nobody-pw)"
ks_grant member "$PA" "$UA"
ks_grant member "$PB" "$UB"
ks_grant reader "$PA" "$UR"
sleep 1  # Keystone refuses tokens issued in the second of a role grant (revocation by grant)
PORT="$(ks_free_port)"
SID="$(ks_service image glance "http://127.0.0.1:$PORT")"
KS_REVOCATION_POLL=1 ks_ingot_config > "$W/ingotd.toml"
ks_ingotd "$PORT" "$W/ingotd.toml" "$W/ingotd.log" --data-dir "$W/data" || exit 1
INGOT_URL="http://127.0.0.1:$PORT"

echo "### the edge"
AUTH_TOKEN=""
req GET /
expect_code "GET / unauthenticated: the versions" 300
expect_eq "versions listed" "$(jb '[.versions[].id]|index("v2.0") != null')" true
req GET /v2/images
expect_error "no token" 401
expect_eq "401 names Keystone" "$(header WWW-Authenticate)" "Keystone uri=\"$KS_URL/v3\""
AUTH_TOKEN="not-a-token"
req GET /v2/images
expect_code "an unknown token" 401

TA="$(ks_token alice alice-pw proj-a)"
AUTH_TOKEN="$TA"
req GET /v2/images
expect_code "alice (member of proj-a) lists images" 200
create_image '{"name": "edge", "disk_format": "raw", "container_format": "bare"}'
expect_code "alice creates an image" 201
expect_eq "the image belongs to proj-a" "$(jb .owner)" "$PA"
EDGE="$ID"
head -c 4096 /dev/urandom > "$W/small.img"
upload "$EDGE" "$W/small.img"
expect_code "alice uploads" 204

# A reader of proj-a: reads, but neither writes nor downloads (Glance's secure defaults).
AUTH_TOKEN="$(ks_token rita rita-pw proj-a)"
req GET "/v2/images/$EDGE"
expect_code "reader shows the image" 200
req_patch "/v2/images/$EDGE" '[{"op": "replace", "path": "/name", "value": "x"}]'
expect_code "reader may not change it" 403
OUT="$W/dl" req GET "/v2/images/$EDGE/file"
expect_code "reader may not download it" 403
create_image '{"name": "r", "disk_format": "raw", "container_format": "bare"}'
expect_code "reader may not create" 403

# A user with no role on any project: Keystone refuses to scope a token to proj-a; the unscoped
# token it does give gets nothing from the image API.
expect_eq "no project-scoped token without a role" "$(ks_token nobody nobody-pw proj-a)" ""
AUTH_TOKEN="$(ks_token nobody nobody-pw)"
[ -n "$AUTH_TOKEN" ] && pass "unscoped token issued" || fail "unscoped token issued"
req GET /v2/images
expect_code "unscoped token: no image listing" 403
req GET "/v2/images/$EDGE"
expect_code "unscoped token: a private image stays invisible" 404

echo "### revocation and expiry"
TREV="$(ks_token alice alice-pw proj-a)"
AUTH_TOKEN="$TREV"
req GET "/v2/images/$EDGE"
expect_code "a fresh token works (and its validation is cached)" 200
expect_eq "Keystone revokes it" "$(ks_revoke_token "$TREV")" 204
ok=0
for i in $(seq 1 40); do
  req GET "/v2/images/$EDGE"
  [ "$CODE" = 401 ] && { ok=1; break; }
  sleep 0.25
done
[ "$ok" = 1 ] && pass "a revoked token is refused within the revocation poll ($((i / 4)) s)" \
  || fail "a revoked token is refused" "still $CODE after 10 s"
AUTH_TOKEN="$(ks_token alice alice-pw proj-a)"
req GET "/v2/images/$EDGE"
expect_code "alice's other tokens still work" 200
TEXP="$(ks_token alice alice-pw proj-a)"
AUTH_TOKEN="$TEXP"
req GET "/v2/images/$EDGE"
expect_code "a token about to expire works" 200
ks_admin_token
EXPIRES="$(curl -s "$KS_URL/v3/auth/tokens?nocatalog" -H "X-Auth-Token: $KS_ADMIN" -H "X-Subject-Token: $TEXP" | jq -r .token.expires_at)"
left=$(( $(date -d "$EXPIRES" +%s) - $(date +%s) + 1 ))
[ "$left" -gt 0 ] && sleep "$left"
req GET "/v2/images/$EDGE"
expect_code "the same token after its expires_at ($EXPIRES)" 401

echo "### openstack image, two users of two projects"
export OS_AUTH_URL="$KS_URL/v3" OS_IDENTITY_API_VERSION=3 OS_IMAGE_API_VERSION=2 OS_INTERFACE=public \
  OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME=RegionOne
export HOME="$W/home"; mkdir -p "$HOME"
as_alice() { OS_USERNAME=alice OS_PASSWORD=alice-pw OS_PROJECT_NAME=proj-a timeout 120 openstack "$@" <&-; }
as_bob() { OS_USERNAME=bob OS_PASSWORD=bob-pw OS_PROJECT_NAME=proj-b timeout 120 openstack "$@" <&-; }
as_admin() { OS_USERNAME=admin OS_PASSWORD="$KS_ADMIN_PASSWORD" OS_PROJECT_NAME=admin timeout 120 openstack "$@" <&-; }
ok_run() {  # NAME CMD...: must succeed; output in $W/out
  local name="$1"; shift
  if "$@" > "$W/out" 2>&1; then pass "$name"; else fail "$name" "$(tail -2 "$W/out" | tr '\n' ' ')"; fi
}
no_run() {  # NAME CMD...: must fail
  local name="$1"; shift
  if "$@" > "$W/out" 2>&1; then fail "$name" "succeeded: $(tail -2 "$W/out" | tr '\n' ' ')"; else pass "$name"; fi
}
idof() { jq -r .id < "$W/out"; }
ok_run "alice: image create --private" as_alice image create --private --disk-format raw \
  --container-format bare --file "$W/small.img" -f json priv
PRIV="$(idof)"
ok_run "alice: image create --shared" as_alice image create --shared --disk-format raw \
  --container-format bare --file "$W/small.img" -f json shared-img
SHARED="$(idof)"
ok_run "alice: image create --community" as_alice image create --community --disk-format raw \
  --container-format bare --file "$W/small.img" -f json comm
COMM="$(idof)"
no_run "alice (not admin) may not create a public image" as_alice image create --public \
  --disk-format raw --container-format bare pub-by-alice
ok_run "admin: image create --public" as_admin image create --public --disk-format raw \
  --container-format bare --file "$W/small.img" -f json pub
PUB="$(idof)"

ok_run "bob: image list" as_bob image list -f json
expect_eq "bob sees the public image only (not private, pending shared, or community)" \
  "$(jq -r --arg a "$PRIV" --arg s "$SHARED" --arg c "$COMM" --arg p "$PUB" \
     '[.[].ID] | [index($p) != null, index($a) == null, index($s) == null, index($c) == null] | all' < "$W/out")" true
no_run "bob: image show of alice's private image fails" as_bob image show "$PRIV"
ok_run "bob: image show of the community image" as_bob image show -f json "$COMM"
ok_run "bob: image list --community" as_bob image list --community -f json
expect_eq "the community image is listed on request" "$(jq -r --arg c "$COMM" '[.[].ID]|index($c) != null' < "$W/out")" true

# By id: a member cannot look project names up in Keystone (the CLI would send the name as the id).
ok_run "alice: image add project (share with proj-b)" as_alice image add project "$SHARED" "$PB"
ok_run "alice: image member list" as_alice image member list -f json "$SHARED"
expect_eq "proj-b is a pending member" "$(jq -r '.[0]["Member ID"] + " " + .[0].Status' < "$W/out")" "$PB pending"
ok_run "bob: image member list (as the member)" as_bob image member list -f json "$SHARED"
ok_run "bob: image list" as_bob image list -f json
expect_eq "a pending share is not in bob's list" "$(jq -r --arg s "$SHARED" '[.[].ID]|index($s) == null' < "$W/out")" true
ok_run "bob: image show of the pending shared image" as_bob image show -f json "$SHARED"
no_run "alice may not accept on proj-b's behalf" as_alice image set --accept --project "$PB" "$SHARED"
ok_run "bob: image set --accept" as_bob image set --accept "$SHARED"
ok_run "bob: image list" as_bob image list -f json
expect_eq "the accepted share is in bob's list" "$(jq -r --arg s "$SHARED" '[.[].ID]|index($s) != null' < "$W/out")" true
no_run "bob may not rename alice's shared image" as_bob image set --name stolen "$SHARED"
no_run "bob may not delete alice's shared image" as_bob image delete "$SHARED"
ok_run "alice: image set --name" as_alice image set --name shared-renamed "$SHARED"
ok_run "alice: image show" as_alice image show -f json "$SHARED"
expect_eq "the new name" "$(jq -r .name < "$W/out")" shared-renamed
ok_run "alice: image delete (private, shared, community)" as_alice image delete "$PRIV" "$SHARED" "$COMM"
ok_run "admin: image delete (public)" as_admin image delete "$PUB"
ok_run "alice: image list" as_alice image list -f json
expect_eq "only the edge image is left" "$(jq -r '[.[].ID]|join(",")' < "$W/out")" "$EDGE"

echo "### quotas from Keystone's unified limits"
# A registered limit (every project) and proj-b's own, for the image service, read by a second ingotd
# with [quotas] use_keystone_limits over the same catalog.
ks_api POST /registered_limits "{\"registered_limits\": [{\"service_id\": \"$SID\", \"region_id\": \"RegionOne\", \"resource_name\": \"image_count_total\", \"default_limit\": 2}, {\"service_id\": \"$SID\", \"region_id\": \"RegionOne\", \"resource_name\": \"image_size_total\", \"default_limit\": 1}]}" > "$W/rl.json"
expect_eq "Keystone registers the limits" "$(jq -r '.registered_limits | length' < "$W/rl.json")" 2
ks_api POST /limits "{\"limits\": [{\"service_id\": \"$SID\", \"region_id\": \"RegionOne\", \"project_id\": \"$PB\", \"resource_name\": \"image_count_total\", \"resource_limit\": 3}]}" > "$W/l.json"
expect_eq "and proj-b's own" "$(jq -r '.limits | length' < "$W/l.json")" 1
PORT2="$(ks_free_port)"
{ ks_ingot_config; printf '\n[quotas]\nuse_keystone_limits = true\ncache_seconds = 1\n'; } > "$W/ingotd2.toml"
ks_ingotd "$PORT2" "$W/ingotd2.toml" "$W/ingotd2.log" --data-dir "$W/data" || exit 1
INGOT_URL="http://127.0.0.1:$PORT2"
AUTH_TOKEN="$(ks_token alice alice-pw proj-a)"
req GET /v2/info/usage
expect_eq "alice's usage: 1 of 2 images, 1 MiB of data allowed" \
  "$(jb '"\(.usage.image_count_total.usage)/\(.usage.image_count_total.limit) \(.usage.image_size_total.limit)"')" "1/2 1"
create_image '{"name": "second", "disk_format": "raw", "container_format": "bare"}'
expect_code "a second image fits" 201
SECOND="$ID"
head -c 2097152 /dev/urandom > "$W/2m.img"
upload "$SECOND" "$W/2m.img"
expect_error "2 MiB over a 1 MiB image_size_total: refused" 413
create_image '{"name": "third", "disk_format": "raw", "container_format": "bare"}'
expect_error "a third image is over image_count_total" 413
AUTH_TOKEN="$(ks_token bob bob-pw proj-b)"
for i in 1 2 3; do create_image "{\"name\": \"b$i\", \"disk_format\": \"raw\", \"container_format\": \"bare\"}"; done
expect_code "proj-b's own limit (3) lets a third image in" 201
create_image '{"name": "b4", "disk_format": "raw", "container_format": "bare"}'
expect_error "and refuses a fourth" 413

it_finish
