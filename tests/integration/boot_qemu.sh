#!/usr/bin/env bash
# A machine boots from Ingot: QEMU (TCG, user-mode networking only, 127.0.0.1 only) network-boots the
# Debian 12 installer whose kernel and initrd ingotd serves straight out of an ISO in its boot root.
#
# The ISO is built here with xorriso from debian-installer-12-netboot-amd64's netboot kernel and initrd,
# laid out like a Debian ISO (install.amd/vmlinuz, install.amd/initrd.gz), and put in the boot root with
# a boot.ipxe that loads both over HTTP out of the ISO (http://10.0.2.2:PORT/debian.iso/install.amd/…;
# 10.0.2.2 is QEMU user-net's alias of the host's 127.0.0.1).
#
# Boot 1 (HTTP): QEMU's DHCP hands out bootfile=http://10.0.2.2:HTTP/boot.ipxe; the virtio NIC's iPXE ROM
#   (QEMU's default efi-virtio.rom, from ipxe-qemu) fetches boot.ipxe, the kernel and the initrd from
#   Ingot's HTTP listener. (Naming the ROM by its full path, romfile=/usr/lib/ipxe/qemu/efi-virtio.rom, made
#   SeaBIOS skip the NIC here - "No bootable device" - so the default is used.)
# Boot 2 (TFTP first stage, then HTTP): QEMU's DHCP hands out bootfile=tftp://10.0.2.2:TFTP/stage1.ipxe,
#   a URL with Ingot's TFTP port (QEMU's own TFTP server, `tftp=DIR`, is NOT used: it would answer on
#   port 69 inside the slirp stack; `tftp-server-name` only names a server, without a port; but the NIC's
#   PXE firmware is iPXE, which follows a tftp:// URL with a port, and slirp relays the UDP to 127.0.0.1).
#   What goes over Ingot's TFTP: stage1.ipxe (twice or more) and the first stage undionly.kpxe (ipxe
#   package, copied into the boot root). What goes over Ingot's HTTP: boot.ipxe, vmlinuz, initrd.gz (out
#   of the ISO). What QEMU does: DHCP (address and the bootfile URL) and NAT of the UDP/TCP to 127.0.0.1
#   - nothing else. The chain: the e1000 NIC's iPXE ROM gets stage1.ipxe over TFTP from Ingot, which
#   chains undionly.kpxe over TFTP from Ingot (a PXE NBP, run on the ROM's PXE stack); undionly's iPXE asks
#   DHCP again and gets the same stage1.ipxe (QEMU's DHCP cannot tell iPXE's user-class apart), which
#   this time sees `${net0/chip}` == undionly (the UNDI driver; the ROM's native driver is e1000) and
#   chains boot.ipxe over HTTP - that guard breaks the chain-loading loop, with no embedded script.
#   undionly.kpxe is also fetched from Ingot's TFTP port by a real TFTP client (curl; tftp-hpa too when
#   installed) and compared byte for byte.
#
# Each boot passes when the installer's kernel banner ("Linux version") and then the installer's first
# screen (its text on ttyS0, ANSI escapes stripped) appear on the serial console within BOOT_QEMU_TIMEOUT
# seconds (default 240; both boots together are held to BOOT_QEMU_BUDGET, default 340, each getting at
# least 120), iPXE's own lines on the serial port (SeaBIOS mirrors the ROM's console there) show what it
# fetched, and ingotd's log shows each file served completely (event=boot.request … status=200
# bytes_out=<size> completed=true, the kernel and initrd from the ISO path; event=tftp_transfer …
# outcome=complete bytes=<size>; in boot 2 in the order the chain needs). Each QEMU is
# stopped as soon as its boot has passed or failed; every QEMU and ingotd started here is killed by PID on
# exit. A boot under TCG on 2 busy cores takes about 1-2 minutes.
#
# Needs qemu-system-x86, ipxe-qemu, ipxe, debian-installer-12-netboot-amd64 and xorriso
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
TIMEOUT="${BOOT_QEMU_TIMEOUT:-240}"
BUDGET="${BOOT_QEMU_BUDGET:-340}"
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
cp "$UNDIONLY" "$ROOT/undionly.kpxe"
KSIZE=$(stat -c %s "$DI/linux")
ISIZE=$(stat -c %s "$DI/initrd.gz")
USIZE=$(stat -c %s "$UNDIONLY")

ingot_start --tftp-listen 127.0.0.1:0 || { it_finish; }
HPORT="$(grep -m1 'event=boot.serving' "$INGOT_LOG" | grep -oE 'address=127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
TPORT="$(grep -m1 'event=boot.tftp' "$INGOT_LOG" | grep -oE 'address=127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
[ -n "$HPORT" ] && [ "$HPORT" != 0 ] || { fail "boot listener's address logged (event=boot.serving)"; it_finish; }
[ -n "$TPORT" ] && [ "$TPORT" != 0 ] || { fail "TFTP listener's address logged (event=boot.tftp)"; it_finish; }
pass "ingotd serves the boot root on http 127.0.0.1:$HPORT and tftp 127.0.0.1:$TPORT"

cat > "$ROOT/boot.ipxe" <<EOF
#!ipxe
kernel http://10.0.2.2:$HPORT/debian.iso/install.amd/vmlinuz initrd=initrd.gz console=ttyS0
initrd http://10.0.2.2:$HPORT/debian.iso/install.amd/initrd.gz
boot
EOF
# The TFTP first stage. Run by the NIC's iPXE ROM: chain undionly.kpxe over Ingot's TFTP. Run again by
# undionly (whose network driver is "undionly"): go on to boot.ipxe over HTTP.
cat > "$ROOT/stage1.ipxe" <<EOF
#!ipxe
iseq \${net0/chip} undionly || chain tftp://10.0.2.2:$TPORT/undionly.kpxe || exit 1
chain http://10.0.2.2:$HPORT/boot.ipxe
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
  line="$(log_since "$from" | grep 'event=boot.request' | grep -F " path=$path " | grep ' status=200 ' | head -1)"
  if [ -n "$line" ] && grep -q " bytes_out=$size " <<< "$line" && grep -q 'completed=true' <<< "$line"; then
    pass "$name (GET $path 200, $size bytes)"
  else
    fail "$name" "no complete GET $path of $size bytes in ingotd's log; got: ${line:-nothing}"
  fi
}

# boot_vm NAME SERIAL BOOTFILE NIC: runs QEMU until the banner and then the installer screen are on
# the serial console, or until the deadline; then stops it. Sets BANNER_S and INSTALLER_S (seconds, or
# empty) and BOOT_OK.
boot_vm() {
  local name="$1" serial="$2" bootfile="$3" nic="$4" left limit qpid start now text
  left=$((BUDGET - ($(date +%s) - T0)))
  limit=$TIMEOUT
  [ "$left" -lt "$limit" ] && limit=$left
  [ "$limit" -lt 120 ] && limit=120
  BANNER_S=""; INSTALLER_S=""; BOOT_OK=0
  : > "$serial"
  qemu-system-x86_64 -accel tcg -machine pc -m 1024 -smp 1 -nographic -monitor none \
    -serial "file:$serial" -no-reboot \
    -netdev "user,id=n0,ipv6=off,bootfile=$bootfile" -device "$nic,netdev=n0" \
    -boot n < /dev/null > "$serial.qemu" 2>&1 &
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
boot_vm "boot 1 (HTTP)" "$IT_TMP/serial1.log" "http://10.0.2.2:$HPORT/boot.ipxe" virtio-net-pci
B1="banner ${BANNER_S:-none}${BANNER_S:+s}, installer ${INSTALLER_S:-none}${INSTALLER_S:+s}"
# SeaBIOS mirrors the option ROM's console to the serial port: iPXE's own account of what it fetched.
expect_true "boot 1: iPXE (the NIC's ROM) took boot.ipxe from Ingot over HTTP" \
  grep -qF "http://10.0.2.2:$HPORT/boot.ipxe... ok" <(strip_ansi "$IT_TMP/serial1.log")
expect_http "boot 1: boot.ipxe over HTTP" "$FROM" /boot.ipxe "$(stat -c %s "$ROOT/boot.ipxe")"
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
boot_vm "boot 2 (TFTP first stage)" "$IT_TMP/serial2.log" "tftp://10.0.2.2:$TPORT/stage1.ipxe" e1000
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
  /event=boot.request/ && / path=\/boot.ipxe / && / status=200 / { print "http" }' | tr '\n' ' ')"
if grep -qE 'stage1 (stage1 )*undionly stage1 (stage1 )*http' <<< "$order"; then
  pass "boot 2: stage1.ipxe, undionly.kpxe ($USIZE bytes), stage1.ipxe over Ingot's TFTP, then boot.ipxe over HTTP"
else
  fail "boot 2: the TFTP first stage from Ingot" "sequence in ingotd's log: ${order:-nothing}"
fi
expect_http "boot 2: the kernel from the ISO" "$FROM" /debian.iso/install.amd/vmlinuz "$KSIZE"
expect_http "boot 2: the initrd from the ISO" "$FROM" /debian.iso/install.amd/initrd.gz "$ISIZE"

it_log "# timings: boot 1 (HTTP): $B1; boot 2 (TFTP+HTTP): $B2; whole script $(( $(date +%s) - T0 ))s"
echo "# boot 1: $B1; boot 2: $B2"
it_finish
