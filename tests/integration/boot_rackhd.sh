#!/usr/bin/env bash
# RackHD's image-service API on ingotd's own listener ([boot] rackhd_listen), driven with the exact
# requests of RackHD's README (github.com/RackHD/image-service): images from isoclient, isoweb,
# isolocal and isostore; /iso and /microkernel upload, list and delete; the same fields and
# statuses. What it adds is served by the southbound listener at /{name}/{version}/..., /iso/NAME
# and /common/NAME, as RackHD's static server serves them.
#
# Usage: boot_rackhd.sh [PATH-TO-INGOTD]
. "$(dirname "$0")/lib.sh"
it_init "$@"
is_peer && { echo "SKIP  the RackHD listener is ingotd's own"; exit 77; }
command -v xorriso > /dev/null || { echo "SKIP  xorriso is not installed"; exit 77; }

SRC="$IT_TMP/src"; LOCAL="$IT_TMP/local"; WEB="$IT_TMP/web"
mkdir -p "$SRC/install/netboot/ubuntu-installer/amd64" "$SRC/images/pxeboot" "$LOCAL" "$WEB"
random_file "$SRC/install/netboot/ubuntu-installer/amd64/linux" 1000003
random_file "$SRC/install/netboot/ubuntu-installer/amd64/initrd.gz" 2000003
xorriso -as mkisofs -quiet -R -J -o "$IT_TMP/test.iso" "$SRC" 2> /dev/null || { echo "FAIL  xorriso"; exit 1; }
rm -rf "$SRC/install"
random_file "$SRC/images/pxeboot/vmlinuz" 100001
random_file "$SRC/images/pxeboot/initrd.img" 200001
xorriso -as mkisofs -quiet -R -J -o "$LOCAL/centos-7.0.iso" "$SRC" 2> /dev/null
cp "$IT_TMP/test.iso" "$WEB/photon-1.0.iso"
random_file "$IT_TMP/vmlinuz-3.16.0-25-generic" 634000

origin_start "$WEB"

cat > "$IT_TMP/ingotd.toml" <<TOML
[boot]
local_dirs = ["$LOCAL"]
rackhd_listen = "127.0.0.1:0"
[import_filtering_opts]
allowed_hosts = ["127.0.0.1"]
allowed_ports = [$OPORT]
TOML
ingot_start --config "$IT_TMP/ingotd.toml" --auth noauth --boot-listen 127.0.0.1:0 || exit 1
RPORT="$(grep -m1 'event=boot\.rackhd ' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)"
BPORT="$(grep -m1 'event=boot\.serving ' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)"
[ -n "$RPORT" ] || { fail "the RackHD listener's address is logged"; it_finish; }
R="http://127.0.0.1:$RPORT"; B="http://127.0.0.1:$BPORT"
pass "RackHD listener on $R"

# rh ARGS...: curl against the RackHD listener; CODE and BODY.
rh() { CODE="$(curl -s -m 120 -o "$BODY" -w '%{http_code}' "$@")"; }

# ---- README: "Using isoclient"
rh -X PUT "$R/images?name=photon&version=1.0&isoclient=client.iso" --upload-file "$IT_TMP/test.iso"
expect_code "PUT /images isoclient" 200
expect_eq "  fields" "$(jq -c 'keys' < "$BODY")" '["id","iso","name","status","version"]'
expect_eq "  values" "$(jq -r '"\(.iso) \(.name) \(.version) \(.status)"' < "$BODY")" "client.iso photon 1.0 OK"
expect_true "  id is a UUID" grep -qE '"id":"[0-9a-f-]{36}"' "$BODY"
DL="$IT_TMP/dl"; CODE="$(curl -s -o "$DL" -w '%{http_code}' "$B/photon/1.0/install/netboot/ubuntu-installer/amd64/linux")"
xorriso -osirrox on -indev "$IT_TMP/test.iso" -extract /install/netboot/ubuntu-installer/amd64/linux "$IT_TMP/linux" > /dev/null 2>&1
expect_true "  byte-identical to the ISO's file" cmp -s "$DL" "$IT_TMP/linux"

rh -X PUT "$R/images?name=photon&version=1.0&isoclient=client.iso" --upload-file "$IT_TMP/test.iso"
expect_code "the same image again" 400
expect_eq "  message" "$(jq -r .message < "$BODY")" "Image already exists"

# ---- README: "Using isoweb"
rh -X PUT "$R/images?name=photon&version=2.0&isoweb=$ORIGIN/photon-1.0.iso"
expect_code "PUT /images isoweb" 200
expect_eq "  iso named after the URL" "$(jq -r '"\(.iso) \(.status)"' < "$BODY")" "photon-1.0.iso OK"
rh -X PUT "$R/images?name=photon&version=3.0&isoweb=$ORIGIN/missing.iso"
expect_code "isoweb of a URL that does not answer" 400
expect_eq "  message" "$(jq -r .message < "$BODY")" "Error downloading ISO file"

# ---- README: "Using isolocal"
rh -X PUT "$R/images?name=centos&version=7.0&isolocal=$LOCAL/centos-7.0.iso"
expect_code "PUT /images isolocal" 200
expect_eq "  iso" "$(jq -r .iso < "$BODY")" "centos-7.0.iso"
rh -X PUT "$R/images?name=centos&version=7.1&isolocal=/etc/passwd.iso"
expect_code "isolocal outside the allowed directories" 400
expect_eq "  message" "$(jq -r .message < "$BODY")" "Path is not readable"
rh -X PUT "$R/images?name=centos&version=7.1&isolocal=/etc/passwd"
expect_eq "isolocal not ending in .iso" "$(jq -r .message < "$BODY")" "ISO path should end with .iso"

# ---- README: "Using isostore"
rh -X DELETE -H "Content-Type: application/json" -d '' "$R/images?name=centos&version=7.0"
expect_code "DELETE /images (README's request)" 200
expect_eq "  answers the deleted images" "$(jq -r '.[0] | "\(.name) \(.version) \(.iso)"' < "$BODY")" "centos 7.0 centos-7.0.iso"
rh -X PUT "$R/images?name=centos&version=7.0&isostore=centos-7.0.iso"
expect_code "PUT /images isostore (re-add a removed image)" 200
CODE="$(curl -s -o /dev/null -w '%{http_code}' "$B/centos/7.0/images/pxeboot/vmlinuz")"
expect_eq "  served again" "$CODE" 200
rh -X PUT "$R/images?name=x&version=1&isostore=nothere.iso"
expect_code "isostore of an ISO not in the store" 404
rh -X PUT "$R/images?name=x&version=1"
expect_code "no source" 400
rh -X PUT -H 'Content-Type: application/json' -d '{"name":"json","version":"1","isostore":"client.iso"}' "$R/images"
expect_code "parameters in a JSON body" 200

# ---- GET /images
rh "$R/images"
expect_code "GET /images" 200
expect_eq "  all of them" "$(jq -r 'map("\(.name)/\(.version)") | sort | join(" ")' < "$BODY")" "centos/7.0 json/1 photon/1.0 photon/2.0"
rh "$R/images?name=photon"
expect_eq "  filtered by name" "$(jq length < "$BODY")" 2

# ---- /iso: README's requests
rh -X GET "$R/iso"
expect_code "GET /iso" 200
expect_eq "  fields" "$(jq -c '.[0] | keys' < "$BODY")" '["name","size","uploaded"]'
expect_true "  size in RackHD's text" grep -qE '"size":"[0-9]+\.[0-9]{2} (KB|MB|GB)"' "$BODY"
expect_true "  uploaded as JavaScript's ISO date" grep -qE '"uploaded":"[0-9-]{10}T[0-9:]{8}\.[0-9]{3}Z"' "$BODY"
rh -X PUT "$R/iso?name=test.iso" --upload-file "$IT_TMP/test.iso"
expect_code "PUT /iso?name=test.iso" 204
CODE="$(curl -s -o "$IT_TMP/dl" -w '%{http_code}' "$B/iso/test.iso")"
expect_true "  served at /iso/test.iso" cmp -s "$IT_TMP/dl" "$IT_TMP/test.iso"
rh -X DELETE "$R/iso?name=test.iso"
expect_code "DELETE /iso?name=test.iso" 200
expect_eq "  the deleted file" "$(jq -r .name < "$BODY")" test.iso
rh -X DELETE "$R/iso?name=test.iso"
expect_code "  again" 404
expect_eq "  message" "$(jq -r .message < "$BODY")" "No file match query"
rh -X DELETE "$R/iso?name=client.iso"
expect_code "an ISO in use" 409
expect_true "  names the image" grep -q "photon/1.0" "$BODY"

# ---- /microkernel: README's requests
rh -X PUT "$R/microkernel?name=vmlinuz-3.16.0-25-generic" --upload-file "$IT_TMP/vmlinuz-3.16.0-25-generic"
expect_code "PUT /microkernel" 204
rh -X GET "$R/microkernel"
expect_eq "GET /microkernel" "$(jq -r '.[0] | "\(.name) \(.size)"' < "$BODY")" "vmlinuz-3.16.0-25-generic 634.00 KB"
CODE="$(curl -s -o "$IT_TMP/dl" -w '%{http_code}' "$B/common/vmlinuz-3.16.0-25-generic")"
expect_true "  served at /common/NAME (RackHD's microkernelDir)" cmp -s "$IT_TMP/dl" "$IT_TMP/vmlinuz-3.16.0-25-generic"
rh -X DELETE "$R/microkernel?name=vmlinuz-3.16.0-25-generic"
expect_code "DELETE /microkernel" 200
expect_eq "  the deleted file" "$(jq -r .name < "$BODY")" vmlinuz-3.16.0-25-generic

# ---- the rest answers as express does
rh -X POST "$R/images"
expect_code "an unknown method" 404
rh "$R/v2/images"
expect_code "nothing of the Image API here" 404

# ---- the same records through /boot/v1, and after a restart
req GET /boot/v1/os
expect_eq "/boot/v1 sees the same trees" "$(jq -r '[.os[] | "\(.name)/\(.version)"] | sort | join(" ")' < "$BODY")" "centos/7.0 json/1 photon/1.0 photon/2.0"
ingot_stop
ingot_start --config "$IT_TMP/ingotd.toml" --auth noauth --boot-listen 127.0.0.1:0 || exit 1
RPORT="$(grep -m1 'event=boot\.rackhd ' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)"
rh "http://127.0.0.1:$RPORT/images"
expect_eq "after a restart: the same images" "$(jq length < "$BODY")" 4

it_finish
