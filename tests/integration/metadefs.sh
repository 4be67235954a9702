#!/bin/bash
# Metadata definitions end to end: the real ingotd with static tokens, driven by curl and the real
# glance CLI (md-* commands): the shipped definitions at first start, secure metadefs (writes are
# the admin's, another project's private namespace is invisible), objects, properties, tags in bulk,
# resource-type associations, protection, paging.
#
# Peer mode (the expectations were checked against Glance 25 this way):
#   GLANCE_AUTH=headers /work/shared/peers/glance/start.sh   # after glance-manage db_load_metadefs
#   TARGET_URL=http://127.0.0.1:9292 bash tests/integration/metadefs.sh
. "$(dirname "$0")/lib.sh"
it_init "$@"
command -v jq > /dev/null || { echo "SKIP  metadefs: jq missing"; exit 77; }
W="$IT_TMP"

PEER_IDS=([t-admin]="proj-a alice admin,member,reader" [t-member-a]="proj-a bob member,reader"
          [t-member-b]="proj-b dave member,reader")
cat > "$W/tokens.toml" <<'TOML'
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
token = "t-member-b"
user = "dave"
project = "proj-b"
roles = ["member"]
TOML
ingot_start --auth tokens --tokens-file "$W/tokens.toml" || exit 1
NS="ingot-it-$$"
M=/v2/metadefs/namespaces

# ------------------------------------------------------------------ the definitions operators expect
AUTH_TOKEN=t-admin
req GET "$M?limit=1000"
expect_code "list namespaces" 200
expect_true "shipped namespaces loaded (>= 30)" test "$(jb '.namespaces | length')" -ge 30
expect_eq "libvirt image options shipped" \
  "$(jb '[.namespaces[].namespace] | index("OS::Compute::LibvirtImage") != null')" true
req GET "$M/OS::Compute::LibvirtImage?resource_type=OS::Glance::Image"
expect_code "show OS::Compute::LibvirtImage" 200
expect_eq "hw_disk_bus defined with its enum" "$(jb '.properties.hw_disk_bus.enum | length > 3')" true
expect_eq "shipped namespace protected" "$(jb .protected)" true
req GET /v2/metadefs/resource_types
expect_eq "resource type OS::Glance::Image" \
  "$(jb '[.resource_types[].name] | index("OS::Glance::Image") != null')" true
req GET "$M?resource_types=OS::Nova::Flavor&limit=1000"
expect_eq "resource_types filter" \
  "$(jb '[.namespaces[] | .resource_type_associations | map(.name) | index("OS::Nova::Flavor") != null] | all')" true
req GET "$M?limit=2&sort_key=namespace&sort_dir=asc"
expect_eq "paging: 2 of them" "$(jb '.namespaces | length')" 2
expect_eq "paging: next link" "$(jb .next)" \
  "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc&marker=CIM%3A%3AResourceAllocationSettingData"
# Glance itself repeats the marker here (its keyset pagination breaks on the equal created_at of
# namespaces loaded in the same second); Ingot pages after the marker.
if ! is_peer; then
  req GET "$(jb .next)"
  expect_eq "paging: second page" "$(jb '.namespaces[0].namespace')" CIM::StorageAllocationSettingData
fi
req GET "$M?sort_dir=sideways"
expect_code "bad sort_dir -> 400" 400

# ----------------------------------------------------------------------------- secure metadef APIs
AUTH_TOKEN=t-member-a
req_json POST "$M" "{\"namespace\":\"$NS-m\"}"
expect_code "member may not create a namespace" 403
AUTH_TOKEN=t-admin
req_json POST "$M" "{\"namespace\":\"$NS\",\"display_name\":\"IT\",\"owner\":\"proj-a\",\"protected\":true,
  \"resource_type_associations\":[{\"name\":\"OS::Glance::Image\",\"prefix\":\"it_\"}],
  \"properties\":{\"speed\":{\"title\":\"Speed\",\"type\":\"integer\",\"minimum\":1}},
  \"objects\":[{\"name\":\"Disk\",\"required\":[\"bus\"],\"properties\":{\"bus\":{\"title\":\"Bus\",\"type\":\"string\",\"enum\":[\"virtio\",\"scsi\"]}}}]}"
expect_code "admin creates a private namespace" 201
expect_eq "private by default" "$(jb .visibility)" private
req_json POST "$M" "{\"namespace\":\"$NS\"}"
expect_code "duplicate namespace -> 409" 409
AUTH_TOKEN=t-member-a
req GET "$M/$NS"
expect_code "owner project's member sees it" 200
req GET "$M/$NS/objects/Disk"
expect_code "... and its objects" 200
req POST "$M/$NS/tags/nope"
expect_code "... but may not add a tag" 403
AUTH_TOKEN=t-member-b
req GET "$M/$NS"
expect_code "other project: 404, not 403" 404
req GET "$M/$NS/properties"
expect_code "other project: its properties 404 too" 404
req GET "$M?limit=1000"
expect_eq "other project's list leaves it out" "$(jb "[.namespaces[].namespace] | index(\"$NS\") == null")" true
expect_eq "other project lists only public ones" "$(jb '[.namespaces[].visibility] | unique')" '[
  "public"
]'

# -------------------------------------------------------------------------- items, tags in bulk
AUTH_TOKEN=t-admin
req GET "$M/$NS?resource_type=OS::Glance::Image"
expect_eq "prefix applied to properties" "$(jb '.properties | has("it_speed")')" true
expect_eq "prefix applied to object requirements" "$(jb '.objects[0].required[0]')" it_bus
req_json POST "$M/$NS/properties" '{"name":"speed","title":"S","type":"integer"}'
expect_code "duplicate property -> 409" 409
req_json POST "$M/$NS/properties" '{"name":"color","title":"Color","type":"string","enum":["red","blue"]}'
expect_code "create property" 201
req_json PUT "$M/$NS/properties/color" '{"name":"colour","title":"Colour","type":"string"}'
expect_eq "rename property" "$(jb .name)" colour
req_json POST "$M/$NS/properties" '{"name":"bad","title":"Bad"}'
expect_code "property without type -> 400" 400
req_json PUT "$M/$NS/objects/Disk" '{"name":"Drive","description":"renamed"}'
expect_code "update object" 200
expect_eq "object PUT empties what it leaves out" "$(jb '.required | length')" 0
req_json POST "$M/$NS/tags" '{"tags":[{"name":"alpha"},{"name":"beta"}]}'
expect_code "bulk tags" 201
# Tag names are case-insensitive (Glance's own message says so, but on SQLite Glance only enforces
# it under MySQL's collation; Ingot enforces it everywhere).
if ! is_peer; then
  req_json POST "$M/$NS/tags" '{"tags":[{"name":"gamma"},{"name":"GAMMA"}]}' -H 'X-Openstack-Append: True'
  expect_code "bulk append with a duplicate -> 409" 409
fi
req_json POST "$M/$NS/tags" '{"tags":[{"name":"gamma"}]}' -H 'X-Openstack-Append: True'
expect_code "bulk append" 201
req GET "$M/$NS/tags"
expect_eq "three tags" "$(jb '[.tags[].name] | sort | join(",")')" alpha,beta,gamma
req_json POST "$M/$NS/tags" '{"tags":[{"name":"delta"}]}'
req GET "$M/$NS/tags"
expect_eq "bulk without append replaces" "$(jb '[.tags[].name] | join(",")')" delta
if ! is_peer; then
  req POST "$M/$NS/tags/Delta"
  expect_code "tag names are case-insensitive -> 409" 409
fi

# ------------------------------------------------------------------ associations and protection
req_json POST "$M/$NS/resource_types" '{"name":"OS::Cinder::Volume","prefix":"v_","properties_target":"image"}'
expect_code "associate a resource type" 201
req GET "$M/$NS/resource_types"
expect_eq "two associations" "$(jb '.resource_type_associations | length')" 2
req DELETE "$M/$NS/resource_types/OS::Cinder::Volume"
expect_code "protected namespace keeps its associations" 403
req DELETE "$M/$NS/tags"
expect_code "protected namespace keeps its tags" 403
req DELETE "$M/$NS"
expect_code "protected namespace is not deletable" 403
expect_eq "Glance's text" "$(jb .message | sed 's/<br.*//')" \
  "Metadata definition namespace $NS is protected and cannot be deleted."
req_json PUT "$M/$NS" "{\"namespace\":\"$NS\",\"visibility\":\"public\",\"protected\":false}"
expect_code "unprotect and publish" 200
AUTH_TOKEN=t-member-b
req GET "$M/$NS"
expect_code "public now: other project sees it" 200
AUTH_TOKEN=t-admin
req DELETE "$M/$NS/resource_types/OS::Cinder::Volume"
expect_code "deassociate" 204
req DELETE "$M/$NS/resource_types/OS::Cinder::Volume"
expect_code "deassociate again -> 404" 404

# ------------------------------------------------------------------------------ the glance CLI
# (Not against a multi-store Glance: glanceclient breaks on the `stores` its image schema publishes.)
if command -v glance > /dev/null && ! is_peer; then
  export HOME="$W/home"; mkdir -p "$HOME"
  gm() { timeout 120 glance --os-image-url "$INGOT_URL" --os-auth-token t-admin "$@" <&-; }
  run "glance md-namespace-list" gm md-namespace-list
  expect_true "CLI lists the shipped OS::Compute::Quota" grep -q 'OS::Compute::Quota' "$W/out"
  run "glance md-namespace-create" gm md-namespace-create "$NS-cli" --display-name CLI --visibility public
  run "glance md-tag-create-multiple" gm md-tag-create-multiple "$NS-cli" --names one,two,three --delim ,
  run "glance md-tag-list" gm md-tag-list "$NS-cli"
  expect_eq "three tags through the CLI" "$(grep -cE '\| (one|two|three) ' "$W/out")" 3
  run "glance md-resource-type-associate" gm md-resource-type-associate "$NS-cli" --name OS::Glance::Image --prefix cli_
  run "glance md-namespace-resource-type-list" gm md-namespace-resource-type-list "$NS-cli"
  expect_true "association listed" grep -q 'OS::Glance::Image' "$W/out"
  run "glance md-property-create" gm md-property-create "$NS-cli" --name p1 --title P1 \
      --schema '{"type":"string","title":"P1"}'
  run "glance md-namespace-show" gm md-namespace-show "$NS-cli"
  expect_true "namespace shows its property" grep -q p1 "$W/out"
  run "glance md-resource-type-list" gm md-resource-type-list
  run "glance md-namespace-delete" gm md-namespace-delete "$NS-cli"
  run "glance md-namespace-delete (2)" gm md-namespace-delete "$NS"
else
  skip "glance CLI" "glance not installed"
fi

# ------------------------------------------------------------------------------ restart: loaded once
if ! is_peer; then
  req_json PUT "$M/OS::Compute::Quota" '{"namespace":"OS::Compute::Quota","protected":false}'
  req DELETE "$M/OS::Compute::Quota"
  expect_code "operator deletes a shipped namespace" 204
  ingot_stop
  ingot_start --auth tokens --tokens-file "$W/tokens.toml" || exit 1
  AUTH_TOKEN=t-admin
  req GET "$M/OS::Compute::Quota"
  expect_code "a restart does not bring it back" 404
  req GET "$M/OS::Compute::LibvirtImage"
  expect_code "the others are still there" 200
fi
it_finish
