#!/usr/bin/env bash
# End-to-end test with the real, unmodified OpenStack clients (Debian's python3-glanceclient and, when
# installed, python3-openstackclient) against ingotd in noauth mode.
# Usage: glance_cli.sh [PATH-TO-INGOTD]          (TARGET_URL=... runs it against a running Glance instead)
# Exit: 0 all passed, 1 a check failed, 77 the glance client is not installed (ctest: skipped).
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
command -v glance > /dev/null || { echo "SKIP  glance CLI not installed (python3-glanceclient)"; exit 77; }
it_init "$@"
W="$IT_TMP"

ingot_start --auth noauth || exit 1

# One HOME for the whole run, as an operator's: glanceclient caches the server's schema in
# ~/.glanceclient and builds its options from the cached copy, so the second pass of every command
# below runs against what the first pass cached (a schema property such as `stores` that collides with
# a client option breaks only there).
mkdir -p "$W/home"
export HOME="$W/home"
# o ARGS...: one openstack CLI call (no keystone: --os-auth-type none, the endpoint given directly).
o() { timeout 120 openstack --os-auth-type none --os-endpoint "$INGOT_URL" "$@" <&-; }

# A real qcow2 holding data: random raw bytes converted with qemu-img.
random_file "$W/disk.raw" $((8 * 1048576))
if command -v qemu-img > /dev/null; then
  qemu-img convert -q -f raw -O qcow2 "$W/disk.raw" "$W/disk.qcow2"
else
  skip "qemu-img not installed; uploading raw bytes named qcow2"
  cp "$W/disk.raw" "$W/disk.qcow2"
fi
IMG="$W/disk.qcow2"
SIZE=$(stat -c %s "$IMG")
MD5=$(md5sum < "$IMG" | cut -d' ' -f1)
SHA512=$(sha512sum < "$IMG" | cut -d' ' -f1)

glance_pass() {
echo "### glance CLI, pass $1 (python-glanceclient $(dpkg-query -W -f='${Version}' python3-glanceclient 2>/dev/null))"
run "glance image-create --file (qcow2 from qemu-img)" \
  g image-create --name cli-qcow2 --disk-format qcow2 --container-format bare --file "$IMG"
ID=$(field id)
expect_true "image-create printed an id" test -n "$ID"
expect_eq "image-create table: status active" "$(field status)" active
expect_eq "image-create table: checksum == md5sum" "$(field checksum)" "$MD5"
expect_eq "API: size, checksum, sha512 of the CLI's upload" \
  "$(api "$ID" '[.status,(.size|tostring),.checksum,.os_hash_value]|join(",")')" "active,$SIZE,$MD5,$SHA512"

run "glance image-list" g image-list
expect_true "image-list shows the image" grep -q "$ID" "$W/out"
run "glance image-list --property-filter name=cli-qcow2" g image-list --property-filter name=cli-qcow2
expect_true "filtered image-list shows it" grep -q "$ID" "$W/out"
run "glance image-list --limit 1 --page-size 1 (pagination)" g image-list --limit 1 --page-size 1

run "glance image-show" g image-show "$ID"
expect_eq "image-show: name, disk_format, size" "$(field name),$(field disk_format),$(field size)" "cli-qcow2,qcow2,$SIZE"
# the table wraps long values: the first row holds a prefix of the hash
expect_true "image-show: os_hash_value" bash -c "[[ '$SHA512' == '$(field os_hash_value)'* && -n '$(field os_hash_value)' ]]"

run "glance image-update --property os_distro=cirros --name cli-qcow2b" \
  g image-update --property os_distro=cirros --name cli-qcow2b "$ID"
expect_eq "API: property and name updated" "$(api "$ID" '[.os_distro,.name]|join(",")')" "cirros,cli-qcow2b"
run "glance image-update --min-ram 256 --protected True" g image-update --min-ram 256 --protected True "$ID"
expect_eq "API: min_ram and protected" "$(api "$ID" '[(.min_ram|tostring),(.protected|tostring)]|join(",")')" "256,true"
if g image-delete "$ID" > "$W/out" 2>&1; then
  fail "glance image-delete of a protected image fails"
else
  pass "glance image-delete of a protected image fails"
fi
run "glance image-update --protected False --remove-property os_distro" \
  g image-update --protected False --remove-property os_distro "$ID"
expect_eq "API: property removed, unprotected" "$(api "$ID" '[(has("os_distro")|tostring),(.protected|tostring)]|join(",")')" "false,false"

run "glance image-tag-update" g image-tag-update "$ID" tested
expect_eq "API: tag added" "$(api "$ID" '.tags|join(",")')" tested
run "glance image-tag-delete" g image-tag-delete "$ID" tested
expect_eq "API: tag removed" "$(api "$ID" '.tags|length')" 0

run "glance image-download --file" g image-download --file "$W/out.qcow2" "$ID"
expect_true "downloaded == uploaded (cmp)" cmp "$IMG" "$W/out.qcow2"
if command -v qemu-img > /dev/null; then
  expect_true "downloaded qcow2 passes qemu-img check" qemu-img check -q "$W/out.qcow2"
fi

run "glance image-deactivate" g image-deactivate "$ID"
expect_eq "API: deactivated" "$(api "$ID" .status)" deactivated
run "glance image-reactivate" g image-reactivate "$ID"
expect_eq "API: active again" "$(api "$ID" .status)" active

run "glance image-create (no data, stdin closed)" \
  g image-create --name cli-empty --disk-format raw --container-format bare
ID2=$(field id)
expect_eq "image created without data is queued" "$(api "$ID2" .status)" queued
run "glance image-upload --file" g image-upload --file "$W/disk.raw" "$ID2"
expect_eq "API: uploaded raw" "$(api "$ID2" '[.status,.checksum]|join(",")')" \
  "active,$(md5sum < "$W/disk.raw" | cut -d' ' -f1)"
# Piped data: the client streams stdin (chunked), as `glance image-create < file` does.
if timeout 120 glance --os-image-url "$INGOT_URL" --os-auth-token x image-create \
     --name cli-stdin --disk-format raw --container-format bare < "$W/disk.raw" > "$W/out" 2>&1; then
  pass "glance image-create with data on stdin"
else
  fail "glance image-create with data on stdin" "$(tail -3 "$W/out" | tr '\n' ' ')"
fi
ID3=$(field id)
expect_eq "API: stdin upload active with the right checksum" "$(api "$ID3" '[.status,.checksum]|join(",")')" \
  "active,$(md5sum < "$W/disk.raw" | cut -d' ' -f1)"

run "glance image-delete" g image-delete "$ID" "$ID2" "$ID3"
expect_eq "deleted image answers 404" "$(curl -s -o /dev/null -w '%{http_code}' "$INGOT_URL/v2/images/$ID")" 404
if g image-show "$ID" > "$W/out" 2>&1; then
  fail "glance image-show of a deleted image fails"
else
  pass "glance image-show of a deleted image fails"
fi
}
glance_pass 1
expect_true "the glance client cached the schema in HOME" test -d "$HOME/.glanceclient"
glance_pass 2

if command -v openstack > /dev/null; then
  echo "### openstack CLI (python-openstackclient $(dpkg-query -W -f='${Version}' python3-openstackclient 2>/dev/null))"
  run "openstack image create --file" \
    o image create --disk-format qcow2 --container-format bare --file "$IMG" --property os_distro=cirros osc-qcow2
  OID=$(field id)
  expect_eq "API: openstack upload" "$(api "$OID" '[.status,.checksum,.os_distro]|join(",")')" "active,$MD5,cirros"
  run "openstack image set --property --tag" o image set --property foo=bar --tag t1 osc-qcow2
  expect_eq "API: set property and tag" "$(api "$OID" '[.foo,(.tags|join("+"))]|join(",")')" "bar,t1"
  run "openstack image unset --property" o image unset --property foo osc-qcow2
  expect_eq "API: property unset" "$(api "$OID" 'has("foo")')" false
  run "openstack image show" o image show osc-qcow2
  expect_eq "openstack image show: checksum" "$(field checksum)" "$MD5"
  run "openstack image list" o image list
  expect_true "openstack image list shows it" grep -q "$OID" "$W/out"
  run "openstack image list --property os_distro=cirros" o image list --property os_distro=cirros
  expect_true "filtered list shows it" grep -q "$OID" "$W/out"
  run "openstack image save --file" o image save --file "$W/osc.qcow2" osc-qcow2
  expect_true "saved == uploaded (cmp)" cmp "$IMG" "$W/osc.qcow2"
  run "openstack image set --deactivate" o image set --deactivate osc-qcow2
  expect_eq "API: deactivated" "$(api "$OID" .status)" deactivated
  run "openstack image set --activate" o image set --activate osc-qcow2
  expect_eq "API: active" "$(api "$OID" .status)" active
  run "openstack image delete" o image delete osc-qcow2
  expect_eq "deleted image answers 404" "$(curl -s -o /dev/null -w '%{http_code}' "$INGOT_URL/v2/images/$OID")" 404
else
  skip "openstack CLI" "python3-openstackclient not installed"
fi

ingot_stop
it_finish
