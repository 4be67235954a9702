#!/usr/bin/env bash
# A machine boots from Ingot: QEMU (TCG, user-mode networking only, 127.0.0.1 only) network-boots the
# Debian 12 installer whose kernel and initrd ingotd serves straight out of an ISO in its boot root -
# through the machine's OWN boot script: iPXE chains Ingot's per-machine
# boot.ipxe?mac=${net0/mac}&uuid=${uuid}, and the profile matched to that machine (created through
# the /boot/v1 API) names the kernel and initrd inside the ISO.
#
# The ISO is built here with xorriso from debian-installer-12-netboot-amd64's netboot kernel and initrd,
# laid out like a Debian ISO (install.amd/vmlinuz, install.amd/initrd.gz), and put in the boot root.
# Through the API (curl, as an operator would): profile "debian-installer" (kernel and initrd paths inside
# debian.iso, args with {{.hostname}} and a profile variable, selector `mac in (MAC_B, ...)`), and machine
# MAC_A registered ahead of its boot with that profile assigned and hostname "node-a".
#
# Boot 1 (HTTP, machine A, assigned): QEMU's DHCP hands out bootfile=http://10.0.2.2:HTTP/boot.ipxe
#   (10.0.2.2 is QEMU user-net's alias of the host's 127.0.0.1); the virtio NIC's iPXE ROM fetches it:
#   without mac/uuid, Ingot answers a script that chains boot.ipxe?mac=${net0/mac}&uuid=${uuid}&...;
#   that answer is machine A's own script (kernel line with hostname=node-a), whose kernel and initrd
#   come out of the ISO. QEMU's -uuid sets the SMBIOS UUID, which the machine's record then holds.
# Boot 2 (TFTP first stage, then HTTP; machine B, matched by the profile's selector): QEMU's DHCP hands
#   out bootfile=tftp://10.0.2.2:TFTP/stage1.ipxe, a URL with Ingot's TFTP port (QEMU's own TFTP server is
#   not used; slirp relays the UDP to 127.0.0.1). The e1000 NIC's iPXE ROM gets stage1.ipxe over TFTP from
#   Ingot, which chains undionly.kpxe over TFTP from Ingot (a PXE NBP, run on the ROM's PXE stack);
#   undionly's iPXE asks DHCP again and gets the same stage1.ipxe (QEMU's DHCP cannot tell iPXE's
#   user-class apart), which this time sees `${net0/chip}` == undionly and chains the per-machine
#   boot.ipxe?mac=${net0/mac}&uuid=${uuid} over HTTP - that guard breaks the chain-loading loop.
#   undionly.kpxe is also fetched from Ingot's TFTP port by a real TFTP client (curl; tftp-hpa too when
#   installed) and compared byte for byte.
# Boot 3 (an unknown machine C): it gets the holding script (its message on the serial console), shows up
#   in GET /boot/v1/machines?state=discovered, and - once an operator assigns it the profile through the
#   API - its next ask (holding_retry_seconds = 3 here) gets the profile's script and fetches the kernel;
#   it is stopped there (the installer itself was shown by boots 1 and 2).
#
# Boots 1 and 2 pass when the installer's kernel banner ("Linux version") and then the installer's first
# screen (its text on ttyS0, ANSI escapes stripped) appear on the serial console within BOOT_QEMU_TIMEOUT
# seconds (default 300; all boots together are held to BOOT_QEMU_BUDGET, default 540, each getting at
# least 120), iPXE's own lines on the serial port (SeaBIOS mirrors the ROM's console there) show what it
# fetched, and ingotd's log shows each file served completely (event=boot.request ... status=200
# bytes_out=<size> completed=true, the kernel and initrd from the ISO path; event=tftp_transfer ...
# outcome=complete bytes=<size>; in boot 2 in the order the chain needs) and which profile each machine
# got and why (event=boot.machine_script ... why=assigned|selector). Each QEMU is stopped as soon as its
# boot has passed or failed; every QEMU and ingotd started here is killed by PID on exit. A boot under
# TCG on 2 busy cores takes about 1-2 minutes.
#
# Needs qemu-system-x86, ipxe-qemu, ipxe, debian-installer-12-netboot-amd64, xorriso and jq
# (scripts/install-deps.sh). When one is missing and apt-get can be run (root or passwordless sudo) the
# script installs them (BOOT_QEMU_INSTALL=0: never); it skips (77) only when they cannot be installed or
# QEMU has no TCG.
#
# Usage: boot_qemu.sh [PATH-TO-INGOTD]     (KEEP=1 keeps the scratch dir: serial logs, ingotd's log)
. "$(dirname "$0")/lib.sh"
it_init "$@"
is_peer && { echo "SKIP  the boot listeners are ingotd's own"; exit 77; }

DI=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64
UNDIONLY=/usr/lib/ipxe/undionly.kpxe
ROM_VIRTIO=/usr/lib/ipxe/qemu/efi-virtio.rom
ROM_E1000=/usr/lib/ipxe/qemu/efi-e1000.rom
PKGS=(qemu-system-x86 ipxe-qemu ipxe debian-installer-12-netboot-amd64 xorriso)
TIMEOUT="${BOOT_QEMU_TIMEOUT:-300}"
BUDGET="${BOOT_QEMU_BUDGET:-540}"
# The installer's first screen: the language choice (localechooser), or the main menu when it is skipped.
INSTALLER_RE='Select a language|Choose the language to be used|Debian installer main menu'

have_all() {
  command -v qemu-system-x86_64 > /dev/null && command -v xorriso > /dev/null &&
    [ -f "$DI/linux" ] && [ -f "$DI/initrd.gz" ] && [ -f "$UNDIONLY" ] &&
    [ -f "$ROM_VIRTIO" ] && [ -f "$ROM_E1000" ]
}
if ! have_all && [ "${BOOT_QEMU_INSTALL:-1}" = 1 ] && command -v apt-get > /dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || { sudo -n true 2> /dev/null && SUDO="sudo -n"; }
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    it_log "# installing ${PKGS[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" \
      > "$IT_TMP/apt.log" 2>&1 || it_log "# apt-get failed: $(tail -2 "$IT_TMP/apt.log" | tr '\n' ' ')"
  fi
fi
have_all || { echo "SKIP  needs ${PKGS[*]} (not installed and cannot be installed here)"; exit 77; }
qemu-system-x86_64 -accel help 2> /dev/null | grep -qx tcg \
  || { echo "SKIP  qemu-system-x86_64 has no TCG accelerator"; exit 77; }

T0=$(date +%s)

# ------------------------------------------------------------------------- the ISO and the boot root
INGOT_DATA="$IT_TMP/data"
ROOT="$INGOT_DATA/boot"          # ingotd's default [boot] root
mkdir -p "$ROOT" "$IT_TMP/isosrc/install.amd"
cp "$DI/linux" "$IT_TMP/isosrc/install.amd/vmlinuz"
cp "$DI/initrd.gz" "$IT_TMP/isosrc/install.amd/initrd.gz"
xorriso -as mkisofs -quiet -R -J -V DEBIAN_12_NETBOOT -o "$ROOT/debian.iso" "$IT_TMP/isosrc" \
  2> "$IT_TMP/xorriso.log" || { echo "FAIL  xorriso: $(tail -3 "$IT_TMP/xorriso.log")"; exit 1; }
# undionly.kpxe is not copied into the root: ingotd serves Debian's first stages out of the box
# ([boot] firmware_dir, default /usr/lib/ipxe).
KSIZE=$(stat -c %s "$DI/linux")
ISIZE=$(stat -c %s "$DI/initrd.gz")
USIZE=$(stat -c %s "$UNDIONLY")

MAC_A=52:54:00:12:34:56
MAC_B=52:54:00:12:34:57
MAC_C=52:54:00:ee:ee:01
UUID_A=8c9ab0e2-1d4f-4e3b-9a1b-0123456789ab
printf '[machines]\nholding_retry_seconds = 3\n' > "$IT_TMP/ingotd.toml"
ingot_start --tftp-listen 127.0.0.1:0 --config "$IT_TMP/ingotd.toml" || { it_finish; }
HPORT="$(grep -m1 'event=boot.serving' "$INGOT_LOG" | grep -oE 'address=127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
TPORT="$(grep -m1 'event=boot.tftp' "$INGOT_LOG" | grep -oE 'address=127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
[ -n "$HPORT" ] && [ "$HPORT" != 0 ] || { fail "boot listener's address logged (event=boot.serving)"; it_finish; }
[ -n "$TPORT" ] && [ "$TPORT" != 0 ] || { fail "TFTP listener's address logged (event=boot.tftp)"; it_finish; }
pass "ingotd serves the boot root on http 127.0.0.1:$HPORT and tftp 127.0.0.1:$TPORT"

# ------------------------------------------------------------ the profile and machine A, through the API
req_json POST /boot/v1/profiles '{
  "name": "debian-installer",
  "description": "the Debian 12 installer out of debian.iso",
  "selector": "mac in ('"$MAC_B"', 52:54:00:12:34:58)",
  "kernel": "debian.iso/install.amd/vmlinuz",
  "initrds": ["debian.iso/install.amd/initrd.gz"],
  "args": "console={{.console}} hostname={{.hostname}}",
  "variables": {"console": "ttyS0", "hostname": "installer"}
}'
expect_code "POST /boot/v1/profiles creates the installer profile" 201
req_json POST /boot/v1/machines '{"mac": "'"$MAC_A"'", "hostname": "node-a", "profile": "debian-installer"}'
expect_code "POST /boot/v1/machines registers machine A with the profile assigned" 201
expect_eq "  ... machine A is assigned" "$(jb .state)" "assigned"
ID_A="$(jb .id)"

# The TFTP first stage. Run by the NIC's iPXE ROM: chain undionly.kpxe over Ingot's TFTP. Run again by
# undionly (whose network driver is "undionly"): go on to this machine's own boot.ipxe over HTTP.
cat > "$ROOT/stage1.ipxe" <<EOF
#!ipxe
iseq \${net0/chip} undionly || chain tftp://10.0.2.2:$TPORT/undionly.kpxe || exit 1
chain http://10.0.2.2:$HPORT/boot.ipxe?mac=\${net0/mac}&uuid=\${uuid}
EOF

curl -s -m 30 -o "$IT_TMP/k.dl" "http://127.0.0.1:$HPORT/debian.iso/install.amd/vmlinuz"
expect_true "the installer kernel out of the ISO over HTTP is byte-identical" cmp -s "$DI/linux" "$IT_TMP/k.dl"

# ---------------------------------------------------------------------------------------- helpers
strip_ansi() {   # the serial log as plain text: ANSI/VT100 escapes, charset shifts, CRs and NULs removed
  sed -e 's/\x1b\[[0-9;?]*[A-Za-z@]//g' -e 's/\x1b[()][0-9A-Za-z]//g' -e 's/\x1b[=>78DEHMc]//g' "$1" \
    | tr -d '\r\000\016\017'
}

# log_since N: ingotd's log from line N+1 on.
log_since() { tail -n +"$(($1 + 1))" "$INGOT_LOG"; }

# expect_http NAME FROM PATH SIZE: a complete 200 of SIZE bytes for GET PATH logged after line FROM.
expect_http() {
  local name="$1" from="$2" path="$3" size="$4" line
  line="$(log_since "$from" | grep 'event=boot.request' | grep -F -e " path=$path " -e " path=\"$path" \
          | grep ' status=200 ' | head -1)"
  if [ -n "$line" ] && grep -q " bytes_out=$size " <<< "$line" && grep -q 'completed=true' <<< "$line"; then
    pass "$name (GET $path 200, $size bytes)"
  else
    fail "$name" "no complete GET $path of $size bytes in ingotd's log; got: ${line:-nothing}"
  fi
}

# boot_vm NAME SERIAL BOOTFILE NIC MAC [QEMU ARGS...]: runs QEMU until the banner and then the installer screen are on
# the serial console, or until the deadline; then stops it. Sets BANNER_S and INSTALLER_S (seconds, or
# empty) and BOOT_OK.
boot_vm() {
  local name="$1" serial="$2" bootfile="$3" nic="$4" mac="$5" left limit qpid start now text
  shift 5  # more QEMU arguments (-uuid ...)
  left=$((BUDGET - ($(date +%s) - T0)))
  limit=$TIMEOUT
  [ "$left" -lt "$limit" ] && limit=$left
  [ "$limit" -lt 120 ] && limit=120
  BANNER_S=""; INSTALLER_S=""; BOOT_OK=0
  : > "$serial"
  qemu-system-x86_64 -accel tcg -machine pc -m 1024 -smp 1 -nographic -monitor none \
    -serial "file:$serial" -no-reboot \
    -netdev "user,id=n0,ipv6=off,bootfile=$bootfile" -device "$nic,netdev=n0,mac=$mac" \
    -boot n "$@" < /dev/null > "$serial.qemu" 2>&1 &
  qpid=$!
  IT_PIDS+=("$qpid")
  start=$(date +%s)
  it_log "# $name: qemu pid $qpid, bootfile $bootfile, up to ${limit}s"
  while :; do
    sleep 1
    now=$(( $(date +%s) - start ))
    text="$(strip_ansi "$serial")"
    if [ -z "$BANNER_S" ] && grep -q 'Linux version' <<< "$text"; then
      BANNER_S=$now
    fi
    # the installer's screen must come after the banner
    if [ -n "$BANNER_S" ] && sed -n '/Linux version/,$p' <<< "$text" | grep -qE "$INSTALLER_RE"; then
      INSTALLER_S=$now; BOOT_OK=1; break
    fi
    if ! kill -0 "$qpid" 2> /dev/null; then
      it_log "# $name: qemu exited early: $(tail -3 "$serial.qemu" | tr '\n' ' ')"; break
    fi
    [ "$now" -ge "$limit" ] && break
  done
  it_stop_pid "$qpid"
  if [ -n "$BANNER_S" ]; then
    pass "$name: the installer's kernel banner on ttyS0 after ${BANNER_S}s"
  else
    fail "$name: the installer's kernel banner on ttyS0" "none within ${now}s; serial tail: $(strip_ansi "$serial" | tail -c 300 | tr '\n' ' ')"
  fi
  if [ "$BOOT_OK" = 1 ]; then
    pass "$name: then the installer's first screen on ttyS0 after ${INSTALLER_S}s ($(strip_ansi "$serial" | grep -oE "$INSTALLER_RE" | head -1))"
  else
    fail "$name: the installer's first screen on ttyS0" "none within ${now}s; serial tail: $(strip_ansi "$serial" | tail -c 300 | tr '\n' ' ')"
  fi
}

# ------------------------------------------------------------------------- boot 1: iPXE over HTTP
FROM=$(wc -l < "$INGOT_LOG")
boot_vm "boot 1 (HTTP)" "$IT_TMP/serial1.log" "http://10.0.2.2:$HPORT/boot.ipxe" virtio-net-pci \
  "$MAC_A" -uuid "$UUID_A"
B1="banner ${BANNER_S:-none}${BANNER_S:+s}, installer ${INSTALLER_S:-none}${INSTALLER_S:+s}"
# SeaBIOS mirrors the option ROM's console to the serial port: iPXE's own account of what it fetched.
expect_true "boot 1: iPXE (the NIC's ROM) took boot.ipxe from Ingot over HTTP" \
  grep -qF "http://10.0.2.2:$HPORT/boot.ipxe... ok" <(strip_ansi "$IT_TMP/serial1.log")
# iPXE percent-encodes the MAC's colons in the query (${net0/mac} in a URL).
expect_true "boot 1: then chained its own boot.ipxe?mac=\${net0/mac}&uuid=\${uuid} (ingotd's log)" \
  grep -qiE "path=\"/boot.ipxe\?mac=${MAC_A//:/(:|%3A)}&uuid=$UUID_A&" \
  <(log_since "$FROM" | grep 'event=boot.request')
expect_true "boot 1: Ingot gave machine A the assigned profile (event=boot.machine_script)" \
  grep -qE "event=boot.machine_script .*mac=$MAC_A profile=debian-installer why=assigned" <(log_since "$FROM")
expect_true "boot 1: the kernel's command line carries the machine's hostname (templates)" \
  grep -q "Command line:.*console=ttyS0 hostname=node-a" <(strip_ansi "$IT_TMP/serial1.log")
req GET "/boot/v1/machines/$ID_A"
expect_eq "boot 1: machine A's record learned its SMBIOS UUID" "$(jb .uuid)" "$UUID_A"
expect_eq "  ... and last got the profile" "$(jb .last_profile)" "debian-installer"
expect_http "boot 1: the kernel from the ISO" "$FROM" /debian.iso/install.amd/vmlinuz "$KSIZE"
expect_http "boot 1: the initrd from the ISO" "$FROM" /debian.iso/install.amd/initrd.gz "$ISIZE"

# ---------------------------------------------------- boot 2: first stage over TFTP, then HTTP
rm -f "$IT_TMP/u.dl"
curl -s -m 30 -o "$IT_TMP/u.dl" "tftp://127.0.0.1:$TPORT/undionly.kpxe"
expect_true "undionly.kpxe over Ingot's TFTP (curl) is byte-identical" cmp -s "$UNDIONLY" "$IT_TMP/u.dl"
if command -v tftp > /dev/null && tftp -V 2>&1 | grep -qi 'tftp-hpa'; then
  rm -f "$IT_TMP/u2.dl"
  (cd "$IT_TMP" && timeout 30 tftp -m binary 127.0.0.1 "$TPORT" -c get undionly.kpxe u2.dl > /dev/null 2>&1)
  expect_true "undionly.kpxe over Ingot's TFTP (tftp-hpa) is byte-identical" cmp -s "$UNDIONLY" "$IT_TMP/u2.dl"
fi

FROM=$(wc -l < "$INGOT_LOG")
boot_vm "boot 2 (TFTP first stage)" "$IT_TMP/serial2.log" "tftp://10.0.2.2:$TPORT/stage1.ipxe" e1000 \
  "$MAC_B"
B2="banner ${BANNER_S:-none}${BANNER_S:+s}, installer ${INSTALLER_S:-none}${INSTALLER_S:+s}"
expect_true "boot 2: iPXE (the NIC's ROM) took undionly.kpxe from Ingot over TFTP" \
  grep -qF "tftp://10.0.2.2:$TPORT/undionly.kpxe... ok" <(strip_ansi "$IT_TMP/serial2.log")
expect_true "boot 2: undionly.kpxe ran on the ROM's PXE stack (PXE->EB, UNDI device)" \
  grep -q "UNDI device is PCI" <(strip_ansi "$IT_TMP/serial2.log")
# In ingotd's log, in this order: stage1.ipxe and undionly.kpxe over TFTP (complete, every byte), then
# stage1.ipxe again (fetched by undionly's iPXE: the first stage ran), then boot.ipxe over HTTP.
order="$(log_since "$FROM" | awk -v u="$USIZE" '
  /event=tftp_transfer/ && / file=stage1.ipxe / && / outcome=complete / { print "stage1" }
  /event=tftp_transfer/ && / file=undionly.kpxe / && / outcome=complete / && $0 ~ (" bytes=" u " ") { print "undionly" }
  /event=boot.request/ && /path="\/boot.ipxe\?mac=/ && / status=200 / { print "http" }' | tr '\n' ' ')"
if grep -qE 'stage1 (stage1 )*undionly stage1 (stage1 )*http' <<< "$order"; then
  pass "boot 2: stage1.ipxe, undionly.kpxe ($USIZE bytes), stage1.ipxe over Ingot's TFTP, then the machine's boot.ipxe over HTTP"
else
  fail "boot 2: the TFTP first stage from Ingot" "sequence in ingotd's log: ${order:-nothing}"
fi
expect_http "boot 2: the kernel from the ISO" "$FROM" /debian.iso/install.amd/vmlinuz "$KSIZE"
expect_http "boot 2: the initrd from the ISO" "$FROM" /debian.iso/install.amd/initrd.gz "$ISIZE"
expect_true "boot 2: Ingot matched machine B by the profile's selector (mac in (...))" \
  grep -qE "event=boot.machine_script .*mac=$MAC_B profile=debian-installer why=selector" <(log_since "$FROM")

# ------------------------------------- boot 3: an unknown machine holds, is discovered, then assigned
FROM=$(wc -l < "$INGOT_LOG")
SERIAL3="$IT_TMP/serial3.log"
: > "$SERIAL3"
qemu-system-x86_64 -accel tcg -machine pc -m 512 -smp 1 -nographic -monitor none \
  -serial "file:$SERIAL3" -no-reboot \
  -netdev "user,id=n0,ipv6=off,bootfile=http://10.0.2.2:$HPORT/boot.ipxe" \
  -device "virtio-net-pci,netdev=n0,mac=$MAC_C" -boot n < /dev/null > "$SERIAL3.qemu" 2>&1 &
QPID3=$!
IT_PIDS+=("$QPID3")
T3=$(date +%s)
holding=""
for _ in $(seq 1 120); do
  sleep 1
  grep -q "has no boot profile yet" <(strip_ansi "$SERIAL3") && { holding=1; break; }
  kill -0 "$QPID3" 2> /dev/null || break
done
H3=$(( $(date +%s) - T3 ))
if [ -n "$holding" ]; then
  pass "boot 3: the unknown machine got the holding script (its message on ttyS0 after ${H3}s)"
else
  fail "boot 3: the holding script on ttyS0" "serial tail: $(strip_ansi "$SERIAL3" | tail -c 300 | tr '\n' ' ')"
fi
req GET "/boot/v1/machines?state=discovered"
expect_eq "boot 3: it shows up as discovered (GET /boot/v1/machines?state=discovered)" \
  "$(jb "[.machines[] | select(.mac == \"$MAC_C\")] | length")" "1"
ID_C="$(jb "[.machines[] | select(.mac == \"$MAC_C\")][0].id")"
req_json PATCH "/boot/v1/machines/$MAC_C" '{"profile": "debian-installer", "hostname": "node-c"}'
expect_code "boot 3: an operator assigns it the profile (PATCH /boot/v1/machines/MAC)" 200
# Its next ask (every 3 s here) gets the profile's script; the kernel starts to come.
assigned=""
for _ in $(seq 1 60); do
  sleep 1
  if log_since "$FROM" | grep -qE "event=boot.machine_script .*mac=$MAC_C profile=debian-installer why=assigned" &&
     log_since "$FROM" | grep 'event=boot.request' | grep -qF ' path=/debian.iso/install.amd/vmlinuz '; then
    assigned=1; break
  fi
  kill -0 "$QPID3" 2> /dev/null || break
done
it_stop_pid "$QPID3"
if [ -n "$assigned" ]; then
  pass "boot 3: once assigned, its next ask got the profile and it fetched the installer kernel ($(( $(date +%s) - T3 ))s)"
else
  fail "boot 3: after the assignment, the profile's script" "log: $(log_since "$FROM" | grep -E 'machine_|boot.request' | tail -5 | tr '\n' ' ')"
fi
req GET "/boot/v1/machines/$ID_C"
expect_eq "boot 3: machine C is now assigned" "$(jb .state)" "assigned"

it_log "# timings: boot 1 (HTTP): $B1; boot 2 (TFTP+HTTP): $B2; boot 3 holding after ${H3:-?}s; whole script $(( $(date +%s) - T0 ))s"
echo "# boot 1: $B1; boot 2: $B2"
it_finish
