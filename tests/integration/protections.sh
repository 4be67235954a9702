#!/bin/bash
# Property protections end to end ([images] property_protection_file, Glance's file format): who may
# create, read, update and delete which image properties, with roles and with policy rules.
. "$(dirname "$0")/lib.sh"
it_init "$@"
command -v jq > /dev/null || { echo "SKIP  protections: jq missing"; exit 77; }
W="$IT_TMP"

admin_member_tokens "$W/tokens.toml"
# Members own x_* properties; billing_* is read-only to members and admin-only otherwise; frozen is
# written once by an admin and never changed; everything else is admin-only.
cat > "$W/protections-roles.conf" <<'INI'
[^billing_.*]
create = admin
read = admin,member
update = admin
delete = admin

[^frozen$]
create = admin
read = @
update = !
delete = !

[^x_.*]
create = admin,member
read = admin,member
update = admin,member
delete = admin,member

[.*]
create = admin
read = admin
update = admin
delete = admin
INI
cat > "$W/roles.toml" <<TOML
[images]
property_protection_file = "$W/protections-roles.conf"
TOML

section() { it_log "# --- $*"; }

section "roles"
ingot_start --auth tokens --tokens-file "$W/tokens.toml" --config "$W/roles.toml" || exit 1
AUTH_TOKEN=t-member
create_image '{"name":"p","disk_format":"raw","container_format":"bare","x_team":"blue"}'
expect_code "member creates with a property of its own (x_*)" 201
IMG="$ID"
create_image '{"name":"p2","disk_format":"raw","container_format":"bare","os_secret":"1"}'
expect_code "member may not create an admin-only property" 403
expect_eq "Glance's text (as its sample error_403_reserved_prop)" "$(jb .message | head -1)" \
  "Access was denied to this resource.<br /><br />"
expect_true "names the property" grep -q "Attribute 'os_secret' is reserved." "$BODY"
AUTH_TOKEN=t-admin
req_patch "/v2/images/$IMG" '[{"op":"add","path":"/billing_code","value":"B1"},
  {"op":"add","path":"/internal_note","value":"admins only"},{"op":"add","path":"/frozen","value":"yes"}]'
expect_code "admin adds billing_code, internal_note, frozen" 200
expect_eq "admin reads internal_note" "$(jb .internal_note)" "admins only"
AUTH_TOKEN=t-member
req GET "/v2/images/$IMG"
expect_code "member reads the image" 200
expect_eq "member does not see internal_note" "$(jb 'has("internal_note")')" false
expect_eq "member sees billing_code" "$(jb .billing_code)" B1
expect_eq "member sees frozen (@)" "$(jb .frozen)" yes
req GET "/v2/images?name=p"
expect_eq "nor in lists" "$(jb '.images[0] | has("internal_note")')" false
req_patch "/v2/images/$IMG" '[{"op":"replace","path":"/billing_code","value":"B2"}]'
expect_code "member may not update billing_code" 403
req_patch "/v2/images/$IMG" '[{"op":"remove","path":"/billing_code"}]'
expect_code "member may not delete billing_code" 403
req_patch "/v2/images/$IMG" '[{"op":"replace","path":"/x_team","value":"red"}]'
expect_code "member updates its own x_team" 200
expect_eq "updated" "$(jb .x_team)" red
req_patch "/v2/images/$IMG" '[{"op":"remove","path":"/x_team"}]'
expect_code "member deletes x_team" 200
req_patch "/v2/images/$IMG" '[{"op":"add","path":"/name","value":"renamed"}]'
expect_code "core attributes are not protected" 200
AUTH_TOKEN=t-admin
req GET "/v2/images/$IMG"
expect_eq "what the member could not see is kept" "$(jb .internal_note)" "admins only"
req_patch "/v2/images/$IMG" '[{"op":"replace","path":"/frozen","value":"no"}]'
expect_code "no one updates frozen (!)" 403
req_patch "/v2/images/$IMG" '[{"op":"remove","path":"/frozen"}]'
expect_code "no one deletes frozen (!)" 403
req_patch "/v2/images/$IMG" '[{"op":"replace","path":"/billing_code","value":"B3"}]'
expect_code "admin updates billing_code" 200
ingot_stop

section "policies"
cat > "$W/policy.yaml" <<'YAML'
"billing_writer": "role:admin"
"everyone": ""
YAML
cat > "$W/protections-policies.conf" <<'INI'
[^billing_.*]
create = billing_writer
read = everyone
update = billing_writer
delete = billing_writer

[.*]
create = everyone
read = everyone
update = everyone
delete = everyone
INI
cat > "$W/policies.toml" <<TOML
[images]
property_protection_file = "$W/protections-policies.conf"
property_protection_rule_format = "policies"
TOML
INGOT_DATA="$W/data-policies"
ingot_start --auth tokens --tokens-file "$W/tokens.toml" --config "$W/policies.toml" \
  --policy-file "$W/policy.yaml" || exit 1
AUTH_TOKEN=t-member
create_image '{"name":"q","disk_format":"raw","container_format":"bare","billing_x":"1"}'
expect_code "policies: member may not create billing_x" 403
create_image '{"name":"q","disk_format":"raw","container_format":"bare","anything":"1"}'
expect_code "policies: member creates anything else" 201
AUTH_TOKEN=t-admin
req_patch "/v2/images/$ID" '[{"op":"add","path":"/billing_x","value":"1"}]'
expect_code "policies: admin creates billing_x" 200
AUTH_TOKEN=t-member
req GET "/v2/images/$ID"
expect_eq "policies: member reads billing_x" "$(jb .billing_x)" 1
ingot_stop

section "a broken file stops the daemon"
printf '[x]\ncreate = admin\n' > "$W/broken.conf"
printf '[images]\nproperty_protection_file = "%s"\n' "$W/broken.conf" > "$W/broken.toml"
INGOT_DATA="$W/data-broken"
if timeout 20 "$INGOTD" --listen 127.0.0.1:0 --data-dir "$INGOT_DATA" --boot-listen 127.0.0.1:0 \
     --config "$W/broken.toml" > "$W/broken.out" 2>&1; then
  fail "refuses a file without every operation" "ingotd exited 0"
else
  expect_true "refuses a file without every operation (names it)" grep -q "has no 'read'" "$W/broken.out"
fi
it_finish
