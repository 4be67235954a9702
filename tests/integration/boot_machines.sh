#!/usr/bin/env bash
# Per-machine boot on the real daemon, driven by curl as machines and operators do: profiles and
# machines through /boot/v1 (noauth: the caller is admin), the scripts machines get
# from the southbound listener (boot.ipxe?mac=…&uuid=…, boot.grub), selector matching with OR/IN and
# specificity and a default, templates (a missing variable: a clear 400 on the preview, an error
# script for the machine), discovery of unknown machines, cloud-init NoCloud seeds and the EC2 /
# OpenStack-style metadata endpoint, detached CMS signatures of scripts and assets checked with
# `openssl cms -verify` against the CA (what iPXE's imgverify checks), and everything surviving a
# restart (the catalog database, component boot_machines). About 10-20 s.
#
# Usage: boot_machines.sh [PATH-TO-INGOTD]
. "$(dirname "$0")/lib.sh"
it_init "$@"
is_peer && { echo "SKIP  the boot service is ingotd's own"; exit 77; }
command -v openssl > /dev/null || { echo "SKIP  needs openssl"; exit 77; }

# A CA and a code-signing certificate, as an operator makes them for iPXE.
K="$IT_TMP/keys"
mkdir -p "$K"
(
  cd "$K" &&
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ingot-it-ca &&
    openssl req -newkey rsa:2048 -nodes -keyout sign.key -out sign.csr -subj /CN=ingot-boot &&
    printf 'extendedKeyUsage=codeSigning\nkeyUsage=digitalSignature\n' > ext &&
    openssl x509 -req -in sign.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out sign.pem -days 2 -extfile ext
) > "$IT_TMP/openssl.log" 2>&1 || { echo "FAIL  openssl could not make the test CA"; exit 1; }
cat > "$IT_TMP/ingotd.toml" <<TOML
[machines]
signing_cert = "$K/sign.pem"
signing_key = "$K/sign.key"
holding_retry_seconds = 7
TOML
INGOT_DATA="$IT_TMP/data"
mkdir -p "$INGOT_DATA/boot/images"
head -c 200000 /dev/urandom > "$INGOT_DATA/boot/images/vmlinuz"
head -c 300000 /dev/urandom > "$INGOT_DATA/boot/images/initrd.img"

start() {
  ingot_start --config "$IT_TMP/ingotd.toml" || it_finish
  BPORT="$(grep -m1 'event=boot.serving' "$INGOT_LOG" | grep -oE 'address=127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
  BOOT="http://127.0.0.1:$BPORT"
}
start
# boot GET PATH: a machine's request to the southbound listener -> $CODE, $BODY
boot() { CODE="$(curl -s -m 30 -o "$BODY" -w '%{http_code}' "$BOOT$1")"; }

# ------------------------------------------------------------------------------------ profiles
req_json POST /boot/v1/profiles '{"name": "rack", "selector": "rack = r1",
  "kernel": "images/vmlinuz", "initrds": ["images/initrd.img"],
  "args": "console=ttyS0 rack={{.label.rack}} role={{.role}}", "variables": {"role": "worker"},
  "user_data": "#cloud-config\nhostname: {{.hostname | json}}\nruncmd: [echo {{.role | shquote}}]\n",
  "vendor_data": "#cloud-config\n{}\n"}'
expect_code "create a profile with a label selector" 201
req_json POST /boot/v1/profiles '{"name": "two-macs", "selector": "mac in (52:54:00:00:00:01, 52-54-00-00-00-02) or serial = SN-9",
  "kernel": "http://mirror.example/vmlinuz", "args": "mac={{.mac}}"}'
expect_code "create a profile with an OR/IN selector" 201
req_json POST /boot/v1/profiles '{"name": "fallback", "default": true, "ipxe": "#!ipxe\necho default for {{.mac}}\n"}'
expect_code "create the default profile (its own iPXE template)" 201
req_json POST /boot/v1/profiles '{"name": "another-default", "default": true, "kernel": "k"}'
expect_code "a second default is refused" 409
req_json POST /boot/v1/profiles '{"name": "broken", "kernel": "k", "args": "x={{.role"}'
expect_code "a template that does not parse is refused when saved" 400
expect_true "  ... naming the field and line" grep -q "args of profile 'broken', line 1" "$BODY"
req_json POST /boot/v1/profiles '{"name": "bad-sel", "kernel": "k", "selector": "mac in (zz)"}'
expect_code "a selector that does not parse is refused" 400
req_json POST /boot/v1/profiles '{"name": "typo", "kernal": "k"}'
expect_code "an unknown key is refused" 400
req GET /boot/v1/profiles
expect_eq "list profiles" "$(jb '[.profiles[].name] | join(",")')" "fallback,rack,two-macs"

# ----------------------------------------------------------------------- matching, as machines ask
boot "/boot.ipxe?mac=52:54:00:00:00:02"
expect_eq "OR/IN: the second MAC of the list gets two-macs" "$(grep -c 'profile two-macs' "$BODY")" "1"
expect_true "  ... with the absolute kernel URL and {{.mac}} filled" grep -q "^kernel http://mirror.example/vmlinuz mac=52:54:00:00:00:02$" "$BODY"
boot "/boot.ipxe?mac=52:54:00:00:00:09&serial=SN-9"
expect_true "OR: a serial matches too" grep -q "profile two-macs" "$BODY"
boot "/boot.ipxe?mac=52:54:00:00:00:03&uuid=8C9AB0E2-1D4F-4E3B-9A1B-0123456789AB"
expect_true "an unknown machine falls to the default profile" grep -q "^echo default for 52:54:00:00:00:03$" "$BODY"
req GET "/boot/v1/machines?state=discovered"
expect_eq "every machine that asked is recorded as discovered" "$(jb '.machines | length')" "3"
M3="$(jb '.machines[] | select(.mac == "52:54:00:00:00:03") | .id')"
expect_eq "  ... with its SMBIOS UUID, normalised" "$(jb '.machines[] | select(.mac == "52:54:00:00:00:03") | .uuid')" "8c9ab0e2-1d4f-4e3b-9a1b-0123456789ab"
# Labels make it match the rack profile; a MAC list entry is more specific than a label.
req_json PATCH "/boot/v1/machines/$M3" '{"labels": {"rack": "r1"}, "hostname": "node-3"}'
expect_code "label a machine" 200
boot "/boot.ipxe?mac=52:54:00:00:00:03"
expect_true "a label selector now matches it" grep -q "profile rack" "$BODY"
expect_true "  ... args from machine labels and profile variables" grep -q "^kernel $BOOT/images/vmlinuz initrd=initrd.img console=ttyS0 rack=r1 role=worker$" "$BODY"
expect_true "  ... signed assets are checked by imgverify" grep -q "^imgverify vmlinuz $BOOT/images/vmlinuz.sig$" "$BODY"
req_json PATCH /boot/v1/machines/52:54:00:00:00:02 '{"labels": {"rack": "r1"}}'
boot "/boot.ipxe?mac=52:54:00:00:00:02"
expect_true "most specific first: a MAC term beats a label term" grep -q "profile two-macs" "$BODY"
boot "/boot.grub?mac=52:54:00:00:00:03"
expect_true "the GRUB script of the same profile" grep -q "^linux (http,127.0.0.1:$BPORT)/images/vmlinuz console=ttyS0 rack=r1 role=worker$" "$BODY"
boot "/boot.ipxe"
expect_true "without mac/uuid: a script that makes iPXE identify itself" grep -qF 'boot.ipxe?mac=${net0/mac}&uuid=${uuid}' "$BODY"
boot "/boot.ipxe?mac=not-a-mac"
expect_eq "a malformed MAC is a 400" "$CODE" "400"

# A variable the machine lacks: the operator's preview says which; the machine gets an error script.
req_json PATCH /boot/v1/profiles/rack '{"args": "console=ttyS0 disk={{.disk}}"}'
expect_code "change the profile's args (PATCH)" 200
req GET "/boot/v1/machines/$M3/boot"
expect_code "the preview of a script with a missing variable" 400
expect_true "  ... names the variable" grep -q 'no value for {{.disk}}' "$BODY"
boot "/boot.ipxe?mac=52:54:00:00:00:03"
expect_true "  ... the machine gets an error script that retries" grep -q "could not be rendered" "$BODY"
req_json PATCH "/boot/v1/machines/$M3" '{"variables": {"disk": "/dev/sda"}}'
req GET "/boot/v1/machines/$M3/boot"
expect_true "machine variables fill it" grep -q "disk=/dev/sda" "$BODY"

# ------------------------------------------------------------------------ holding, assignment
boot "/boot.ipxe?mac=52:54:00:00:00:10"   # not known; matches only the default...
req DELETE /boot/v1/profiles/fallback
expect_code "delete the default profile" 204
boot "/boot.ipxe?mac=52:54:00:00:00:11"
expect_true "without a default, an unknown machine gets the holding script" grep -q "has no boot profile yet" "$BODY"
expect_true "  ... which asks again after holding_retry_seconds" grep -q "^sleep 7$" "$BODY"
req_json PATCH /boot/v1/machines/52:54:00:00:00:11 '{"profile": "nope"}'
expect_code "assigning a profile that does not exist is refused" 400
req_json PATCH /boot/v1/machines/52:54:00:00:00:11 '{"profile": "two-macs"}'
expect_eq "assigning a profile makes it assigned" "$(jb .state)" "assigned"
boot "/boot.ipxe?mac=52:54:00:00:00:11"
expect_true "  ... and its next ask gets that profile" grep -q "profile two-macs" "$BODY"
req DELETE /boot/v1/profiles/two-macs
expect_code "a profile a machine is assigned to cannot be deleted" 409

# ------------------------------------------------------------------------- cloud-init, metadata
boot "/nocloud/$M3/meta-data"
expect_eq "NoCloud meta-data" "$(cat "$BODY")" "$(printf 'instance-id: "%s"\nlocal-hostname: "node-3"' "$M3")"
boot "/nocloud/$M3/user-data"
expect_eq "NoCloud user-data from the same variables (json, shquote filters)" "$(cat "$BODY")" \
  "$(printf '#cloud-config\nhostname: "node-3"\nruncmd: [echo '"'"'worker'"'"']')"
boot "/nocloud/$M3/vendor-data"
expect_eq "NoCloud vendor-data" "$(cat "$BODY")" "$(printf '#cloud-config\n{}')"
boot "/metadata/$M3/latest/meta-data/"
expect_true "EC2-style metadata lists its keys" grep -qx "instance-id" "$BODY"
boot "/metadata/$M3/latest/meta-data/local-hostname"
expect_eq "EC2-style local-hostname" "$(cat "$BODY")" "node-3"
boot "/metadata/$M3/openstack/latest/meta_data.json"
expect_eq "OpenStack-style meta_data.json" "$(jq -r '.uuid + " " + .hostname + " " + .meta.rack' "$BODY")" "$M3 node-3 r1"
boot "/latest/meta-data/instance-id"
expect_true "by the caller's address: the machine that last booted from it" test -n "$(cat "$BODY")"

# ---------------------------------------------------------------------------------- signatures
verify() {  # DATA SIG
  openssl cms -verify -binary -inform DER -in "$2" -content "$1" -CAfile "$K/ca.pem" -purpose any \
    -out /dev/null > "$IT_TMP/verify.log" 2>&1
}
curl -s -o "$IT_TMP/k" "$BOOT/images/vmlinuz"
curl -s -o "$IT_TMP/k.sig" "$BOOT/images/vmlinuz.sig"
expect_true "an asset's detached CMS signature verifies against the CA (openssl cms -verify)" verify "$IT_TMP/k" "$IT_TMP/k.sig"
curl -s -o "$IT_TMP/s" "$BOOT/boot.ipxe?mac=52:54:00:00:00:03"
curl -s -o "$IT_TMP/s.sig" "$BOOT/boot.ipxe.sig?mac=52:54:00:00:00:03"
expect_true "a machine's rendered script's signature verifies" verify "$IT_TMP/s" "$IT_TMP/s.sig"
expect_true "  ... and not over another machine's script" \
  bash -c "curl -s -o '$IT_TMP/o' '$BOOT/boot.ipxe?mac=52:54:00:00:00:11' && ! openssl cms -verify -binary -inform DER -in '$IT_TMP/s.sig' -content '$IT_TMP/o' -CAfile '$K/ca.pem' -purpose any -out /dev/null"
CODE="$(curl -s -o /dev/null -w '%{http_code}' "$BOOT/images/nothing.sig")"
expect_eq "no signature for a file that is not there" "$CODE" "404"

# ---------------------------------------------------------------------------------- the CLI
INGOT_CLI="$(dirname "$INGOTD")/ingot"
if [ -x "$INGOT_CLI" ]; then
  cli() { "$INGOT_CLI" --url "$INGOT_URL" "$@"; }
  expect_true "ingot profile create (selector, initrds, variables)" \
    cli profile create cli-made --kernel images/vmlinuz --initrd images/initrd.img \
      --args 'console=ttyS0 site={{.site}}' --var site=lab --selector 'rack in (r7, r8)'
  expect_eq "ingot profile list shows it" "$(cli --json profile list | jq -r '[.[].name] | join(",")')" "cli-made,rack,two-macs"
  expect_true "ingot machine add (labels)" cli machine add --mac 52:54:00:00:00:77 --label rack=r8 --hostname n77
  expect_true "ingot machine script: the selector matches, variables filled" \
    bash -c "'$INGOT_CLI' --url '$INGOT_URL' machine script 52:54:00:00:00:77 | grep -q 'site=lab'"
  expect_eq "ingot machine list --state discovered" \
    "$(cli --json machine list --state discovered | jq -r '[.[] | select(.mac == "52:54:00:00:00:77")] | length')" "1"
  expect_true "ingot machine assign" cli machine assign 52:54:00:00:00:77 rack
  expect_eq "  ... makes it assigned" "$(cli --json machine show 52:54:00:00:00:77 | jq -r .state)" "assigned"
  expect_true "ingot machine unassign" cli machine unassign 52:54:00:00:00:77
  "$INGOT_CLI" --url "$INGOT_URL" profile create bad --kernel k --args '{{.x' > /dev/null 2> "$IT_TMP/cli.err"
  expect_eq "ingot profile create with a broken template fails (exit 1)" "$?" "1"
  expect_true "  ... saying where" grep -q "line 1" "$IT_TMP/cli.err"
  expect_true "ingot machine delete" cli machine delete 52:54:00:00:00:77
else
  skip "the ingot CLI" "not built beside ingotd"
fi

# ------------------------------------------------------------------------------------ restart
req GET /boot/v1/machines
BEFORE="$(jb '[.machines[] | .mac + "=" + .state + ":" + (.profile // "")] | sort | join(",")')"
ingot_stop
start
req GET /boot/v1/machines
expect_eq "machines survive a restart" "$(jb '[.machines[] | .mac + "=" + .state + ":" + (.profile // "")] | sort | join(",")')" "$BEFORE"
req GET /boot/v1/profiles/rack
expect_eq "profiles survive a restart" "$(jb .selector)" "rack = r1"
boot "/boot.ipxe?mac=52:54:00:00:00:11"
expect_true "  ... and machines boot as before" grep -q "profile two-macs" "$BODY"
it_finish
