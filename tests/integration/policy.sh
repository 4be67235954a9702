#!/bin/bash
# Every API action as five callers with real Keystone tokens — an admin, a member and a reader of
# the image's project, a member of another project (the project an image is shared with, for the
# sharing actions) and anonymous — checked against Glance's secure-RBAC defaults; then the same
# with an operator's policy file that changes some rules, swapped in while ingotd runs (reloaded
# when the file changes); a rule that does not parse stops start-up naming the file and line.
# Usage: policy.sh [PATH-TO-INGOTD]
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
. "$HERE/keystone_lib.sh"
it_init "${1:-}"
W="$IT_TMP"
trap 'rc=$?; keystone_down; (exit $rc); it_cleanup' EXIT

keystone_up "$W/keystone" || exit $?
ks_admin_token || { fail "admin token"; exit 1; }
ks_service_user
PA="$(ks_project proj-a)"; PB="$(ks_project proj-b)"
UA="$(ks_user alice alice-pw)"; UR="$(ks_user rita rita-pw)"; UB="$(ks_user bob bob-pw)"
ks_grant member "$PA" "$UA"; ks_grant reader "$PA" "$UR"; ks_grant member "$PB" "$UB"
sleep 1  # Keystone refuses tokens issued in the second of a role grant (revocation by grant)
PORT="$(ks_free_port)"
ks_service image glance "http://127.0.0.1:$PORT" > /dev/null
{ ks_ingot_config; printf '\n[policy]\npolicy_file = "%s"\nreload_check_ms = 200\n' "$W/policy.yaml"; } > "$W/ingotd.toml"
: > "$W/policy.yaml"   # an empty file: the defaults
ks_ingotd "$PORT" "$W/ingotd.toml" "$W/ingotd.log" --data-dir "$W/data" || exit 1
INGOT_URL="http://127.0.0.1:$PORT"

declare -A TOK=(
  [admin]="$(ks_token admin "$KS_ADMIN_PASSWORD" admin)"
  [member]="$(ks_token alice alice-pw proj-a)"
  [reader]="$(ks_token rita rita-pw proj-a)"
  [other]="$(ks_token bob bob-pw proj-b)"
  [anon]=""
)
for who in admin member reader other; do
  [ -n "${TOK[$who]}" ] || { fail "token for $who"; exit 1; }
done
WHO=(admin member reader other anon)
head -c 65536 /dev/urandom > "$W/data.bin"

as() { AUTH_TOKEN="${TOK[$1]}"; }
# fresh [VISIBILITY] [STATE]: an image of proj-a (made by an admin, so that a policy file that
# changes add_image does not change the fixtures); prints the id. STATE: queued, active (uploaded),
# tagged (active with tag "t"), deactivated, staged, shared-with-b.
fresh() {
  as admin
  create_image "{\"name\": \"p\", \"disk_format\": \"raw\", \"container_format\": \"bare\", \"visibility\": \"${1:-private}\", \"owner\": \"$PA\"}" > /dev/null
  local id="$ID"
  [ -n "$id" ] || echo "# fixture image not created: $CODE $(head -c 200 "$BODY")" >&2
  case "${2:-queued}" in
    active|tagged|deactivated) upload "$id" "$W/data.bin" ;;&
    tagged) req PUT "/v2/images/$id/tags/t" ;;
    deactivated) req POST "/v2/images/$id/actions/deactivate" ;;
    staged) req PUT "/v2/images/$id/stage" -H 'Content-Type: application/octet-stream' -T "$W/data.bin" ;;
    shared-with-b) req_json POST "/v2/images/$id/members" "{\"member\": \"$PB\"}" ;;
  esac
  echo "$id"
}

# check ACTION WANT-admin WANT-member WANT-reader WANT-other WANT-anon SETUP-ARGS -- METHOD PATH [curl args]
# PATH may hold @ID@ (a fresh image made by `fresh SETUP-ARGS` for each caller) and @PB@.
check() {
  local action="$1"; shift
  local want=("$1" "$2" "$3" "$4" "$5"); shift 5
  local setup=()
  while [ "$1" != "--" ]; do setup+=("$1"); shift; done
  shift
  local method="$1" path="$2"; shift 2
  local i who id p got=()
  for i in 0 1 2 3 4; do
    who="${WHO[$i]}"
    id=""
    [[ "$path" == *@ID@* ]] && id="$(fresh "${setup[@]}")"
    p="${path//@ID@/$id}"; p="${p//@PB@/$PB}"
    as "$who"
    req "$method" "$p" "$@"
    got+=("$CODE")
  done
  expect_eq "$action: admin/member/reader/other/anonymous" "${got[*]}" "${want[*]}"
}
JSON=(-H 'Content-Type: application/json')
PATCH=(-H 'Content-Type: application/openstack-images-v2.1-json-patch')
OCTET=(-H 'Content-Type: application/octet-stream')

defaults() {
check get_images          200 200 200 200 401 -- GET /v2/images
check add_image           201 201 403 201 401 -- POST /v2/images "${JSON[@]}" -d '{"name": "n", "disk_format": "raw", "container_format": "bare"}'
check set_image_owner     201 403 403 201 401 -- POST /v2/images "${JSON[@]}" -d "{\"name\": \"n\", \"owner\": \"$PB\"}"
check get_image           200 200 200 404 401 private active -- GET /v2/images/@ID@
check get_image_shared    200 200 200 200 401 shared shared-with-b -- GET /v2/images/@ID@
check modify_image        200 200 403 404 401 private -- PATCH /v2/images/@ID@ "${PATCH[@]}" -d '[{"op": "replace", "path": "/name", "value": "x"}]'
check modify_shared       200 200 403 403 401 shared shared-with-b -- PATCH /v2/images/@ID@ "${PATCH[@]}" -d '[{"op": "replace", "path": "/name", "value": "x"}]'
check publicize_image     200 403 403 404 401 private -- PATCH /v2/images/@ID@ "${PATCH[@]}" -d '[{"op": "replace", "path": "/visibility", "value": "public"}]'
check communitize_image   200 200 403 404 401 private -- PATCH /v2/images/@ID@ "${PATCH[@]}" -d '[{"op": "replace", "path": "/visibility", "value": "community"}]'
check upload_image        204 204 403 404 401 private -- PUT /v2/images/@ID@/file "${OCTET[@]}" --data-binary @"$W/data.bin"
check download_image      200 200 403 404 401 private active -- GET /v2/images/@ID@/file
check download_public     200 200 403 200 401 public active -- GET /v2/images/@ID@/file
check add_tag             204 204 403 404 401 private active -- PUT /v2/images/@ID@/tags/x
check delete_tag          204 204 403 404 401 private tagged -- DELETE /v2/images/@ID@/tags/t
check deactivate          204 204 403 404 401 private active -- POST /v2/images/@ID@/actions/deactivate
check reactivate          204 204 403 404 401 private deactivated -- POST /v2/images/@ID@/actions/reactivate
check delete_image        204 204 403 404 401 private active -- DELETE /v2/images/@ID@
check delete_shared       204 204 403 403 401 shared shared-with-b -- DELETE /v2/images/@ID@
check get_members         200 200 200 200 401 shared shared-with-b -- GET /v2/images/@ID@/members
check add_member          200 200 403 404 401 shared -- POST /v2/images/@ID@/members "${JSON[@]}" -d '{"member": "@PB@"}'
check get_member          200 200 200 200 401 shared shared-with-b -- GET /v2/images/@ID@/members/@PB@
check modify_member       200 403 403 200 401 shared shared-with-b -- PUT /v2/images/@ID@/members/@PB@ "${JSON[@]}" -d '{"status": "accepted"}'
check delete_member       204 204 403 403 401 shared shared-with-b -- DELETE /v2/images/@ID@/members/@PB@
check stage_image         204 204 403 404 401 private -- PUT /v2/images/@ID@/stage "${OCTET[@]}" --data-binary @"$W/data.bin"
check import_image        202 202 403 404 401 private staged -- POST /v2/images/@ID@/import "${JSON[@]}" -d '{"method": {"name": "glance-direct"}}'
check get_schemas         200 200 200 200 401 -- GET /v2/schemas/image
check get_import_info     200 200 200 200 401 -- GET /v2/info/import
check get_stores          200 200 200 200 401 -- GET /v2/info/stores
check stores_info_detail  200 403 403 403 401 -- GET /v2/info/stores/detail
check get_usage           200 200 200 200 401 -- GET /v2/info/usage
check get_tasks           200 403 403 403 401 -- GET /v2/tasks
check versions            300 300 300 300 300 -- GET /
}

echo "### Glance's secure defaults"
defaults

echo "### an operator's policy file, reloaded while ingotd runs"
cat > "$W/policy.yaml.new" <<'YAML'
# Only admins list; readers of the owning project may download; creating needs a custom role.
"get_images": "role:admin"
"download_image": "role:admin or (role:reader and project_id:%(project_id)s)"
"add_image": "rule:image_creator"
"image_creator": "role:admin or role:creator"
"stores_info_detail": "@"
YAML
mv "$W/policy.yaml.new" "$W/policy.yaml"
ok=0
for i in $(seq 1 50); do
  grep -q 'event=policy.reloaded' "$W/ingotd.log" && { ok=1; break; }
  sleep 0.1
done
[ "$ok" = 1 ] && pass "the changed file was reloaded" || fail "the changed file was reloaded"
check get_images          200 403 403 403 401 -- GET /v2/images
check download_image      200 200 200 404 401 private active -- GET /v2/images/@ID@/file
check add_image           201 403 403 403 401 -- POST /v2/images "${JSON[@]}" -d '{"name": "n", "disk_format": "raw", "container_format": "bare"}'
check stores_info_detail  200 200 200 200 401 -- GET /v2/info/stores/detail
check get_image           200 200 200 404 401 private active -- GET /v2/images/@ID@

echo "### a broken edit is refused and the rules in force stay"
printf '"get_images": "role:admin or"\n' > "$W/policy.yaml.new"
mv "$W/policy.yaml.new" "$W/policy.yaml"
for i in $(seq 1 50); do grep -q 'event=policy.reload_failed' "$W/ingotd.log" && break; sleep 0.1; done
expect_true "the reload failure is logged with the file and line" \
  grep -q 'policy.reload_failed.*policy.yaml:1: rule' "$W/ingotd.log"
check get_images          200 403 403 403 401 -- GET /v2/images

echo "### a rule that does not parse stops start-up"
printf '# line 1\n"get_images": "role:admin"\n"add_image": "role:admin and and"\n' > "$W/bad.yaml"
out="$("$INGOTD" --listen 127.0.0.1:0 --boot-listen 127.0.0.1:0 --data-dir "$W/data2" --policy-file "$W/bad.yaml" 2>&1 < /dev/null)"
rc=$?
expect_eq "ingotd exits 1" "$rc" 1
expect_true "naming the file, line and rule" grep -q "bad.yaml:3: rule \"add_image\"" <<< "$out"
echo "# $out"
expect_true "--print-default-policy prints Glance's get_image rule" \
  sh -c "'$INGOTD' --print-default-policy | grep -q '^#\"get_image\": \"role:admin or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s'"

it_finish
