#!/usr/bin/env bash
# Plan scripts through both engines: the same guestfish script (host name, a network file from a
# heredoc upload, mkdir-p, ln-s, chmod, chown, write-append, rm) run by `ingotd volume personalise`
# natively on one clone of a golden image and by the real guestfish (libguestfs appliance, TCG
# here) on another; the two root file systems, read back over NBD with debugfs, must hold the same
# files, modes, owners, symlinks and contents, both pass e2fsck, and the golden image is unchanged.
# The guestfish side runs with `--engine auto` and one command the native engine lacks (statvfs),
# so it also proves the automatic fallback. Both run a local command (`!`, in Ingot's jail) on a
# file downloaded from the volume and upload its output. Also: native refuses a vfat mount naming
# the line, a local command cannot reach the host's files, `<!` is refused before anything runs,
# a failing command is reported with its line.
# About 1 minute on a quiet host (one guestfish run), 2-3 under heavy load. Skips (77) without libguestfs-tools, gdisk, e2fsprogs,
# dosfstools or libnbd-bin.
. "$(dirname "$0")/lib.sh"
it_init "$@"

for tool in guestfish sgdisk mke2fs debugfs e2fsck mkfs.vfat nbdcopy; do
  command -v "$tool" >/dev/null || { echo "SKIP  $IT_NAME: $tool not installed"; exit 77; }
done
export LIBGUESTFS_BACKEND=direct
# TCG unless asked for KVM (INGOT_TEST_KVM=1): a writable /dev/kvm does not mean KVM works; on the
# test hosts its guests hang or QEMU aborts ("failed to set MSR").
[ "${INGOT_TEST_KVM:-0}" = 1 ] || export LIBGUESTFS_BACKEND_SETTINGS=force_tcg

INGOT_DATA="$IT_TMP/data"
mkdir -p "$INGOT_DATA"
vol() { "$INGOTD" volume --data-dir "$INGOT_DATA" "$@"; }

# --- the golden image: GPT, 8 MiB EFI (vfat) + ext4 root built from a tree -----------------------
TREE="$IT_TMP/tree"
mkdir -p "$TREE/etc/sysconfig/network-scripts" "$TREE/boot/efi" "$TREE/var/log" "$TREE/opt"
echo golden > "$TREE/etc/hostname"
echo "welcome" > "$TREE/etc/motd"
printf 'ID=rhel\nVERSION_ID="8.6"\n' > "$TREE/etc/os-release"
echo "old" > "$TREE/etc/stale.conf"
GOLDEN="$IT_TMP/golden.raw"
truncate -s 96M "$GOLDEN"
sgdisk -n 1:2048:+8M -t 1:ef00 -n 2:0:0 -t 2:8300 "$GOLDEN" > /dev/null
P2_START="$(sgdisk -i 2 "$GOLDEN" | awk '/First sector/{print $3}')"
P2_END="$(sgdisk -i 2 "$GOLDEN" | awk '/Last sector/{print $3}')"
ROOT_OFF=$((P2_START * 512)); ROOT_LEN=$(((P2_END - P2_START + 1) * 512))
mke2fs -q -t ext4 -F -E offset=$ROOT_OFF -d "$TREE" "$GOLDEN" $((ROOT_LEN / 1024))k \
  && mkfs.vfat --offset 2048 "$GOLDEN" 8192 > /dev/null 2>&1 \
  && pass "golden image: GPT, vfat EFI, ext4 root (sgdisk, mkfs.vfat, mke2fs -d)" \
  || { fail "golden image"; it_finish; }
GOLDEN_SUM="$(sha256sum < "$GOLDEN")"

for v in nat gf; do vol create "$v" --from "$GOLDEN" > /dev/null || fail "create $v"; done

cat > "$IT_TMP/plan.gf" <<'PLAN'
# personalise a RHEL node (what HPE's plan scripts do, after @attribute@ substitution)
mount /dev/sda2 /
write /etc/hostname "node-17.example.com\n"
upload -<<END /etc/sysconfig/network-scripts/ifcfg-ens3
DEVICE=ens3
BOOTPROTO=static
IPADDR=10.20.30.17
PREFIX=24
"quoted" and \backslashed\ and a	tab
END
chmod 0600 /etc/sysconfig/network-scripts/ifcfg-ens3
mkdir-p /opt/isdeploy/scripts/first-boot
ln-s /etc/hostname /opt/isdeploy/hostname-link
ln-s ../../etc /opt/isdeploy/scripts
chown 1000 100 /opt/isdeploy/scripts/first-boot
chmod 0750 /opt/isdeploy/scripts/first-boot
write-append /etc/motd "personalised by Ingot\n"
touch /var/log/deploy.log
rm /etc/stale.conf
-rm /etc/not-there
download /etc/os-release os-release
!echo "$(id -u) $(sed -n 's/^ID=//p' os-release)" > jail-report
upload jail-report /etc/jail-report
echo done
umount /
PLAN

# The same plan plus a read-only command only guestfish has: auto must hand it to guestfish.
sed 's|^umount /$|-statvfs /\numount /|' "$IT_TMP/plan.gf" > "$IT_TMP/plan-auto.gf"
run_engine() {  # VOLUME ENGINE SCRIPT
  local t0 t1
  t0=$(date +%s.%N)
  vol personalise "$1" --script "$3" --name plan --engine "$2" \
    > "$IT_TMP/$1.log" 2> "$IT_TMP/$1.err"
  local rc=$?
  t1=$(date +%s.%N)
  it_log "# $2 engine: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f s", b-a}') ($(tr '\n' ' ' < "$IT_TMP/$1.err"))"
  return $rc
}
run_engine nat native "$IT_TMP/plan.gf" && grep -q 'engine=native' "$IT_TMP/nat.err" \
  && pass "the native engine runs the plan" || fail "native run" "$(cat "$IT_TMP/nat.err")"
run_engine gf auto "$IT_TMP/plan-auto.gf" && grep -q 'engine=guestfish' "$IT_TMP/gf.err" \
  && pass "auto hands a script with statvfs to guestfish, which runs the plan" \
  || fail "guestfish run" "$(tail -5 "$IT_TMP/gf.err")"
grep -q '^native engine: plan line [0-9]*: statvfs is not a command of the native engine' "$IT_TMP/gf.log" \
  && pass "the log says why guestfish ran" || fail "fallback reason" "$(head -3 "$IT_TMP/gf.log")"
grep -q '^> upload -<<<' "$IT_TMP/nat.log" && ! grep -q '10.20.30.17' "$IT_TMP/nat.log" "$IT_TMP/gf.log" \
  && pass "logs name each command, not the uploaded contents" || fail "log contents" "$(head -5 "$IT_TMP/nat.log")"
grep -q '^done$' "$IT_TMP/gf.log" && grep -q '^done$' "$IT_TMP/nat.log" \
  && pass "both logs carry the script's output" || fail "echo output"

# --- engine choice and refusals ------------------------------------------------------------------
printf 'mount /dev/sda1 /\nmkdir /EFI\n' > "$IT_TMP/efi.gf"
vol create auto --from "$GOLDEN" > /dev/null
vol personalise auto --script "$IT_TMP/efi.gf" --engine native > /dev/null 2> "$IT_TMP/n.err"
grep -q 'line 1: mount: /dev/sda1 holds vfat' "$IT_TMP/n.err" \
  && pass "native refuses what needs guestfish, naming the line" || fail "native refusal" "$(cat "$IT_TMP/n.err")"
printf 'mount /dev/sda2 /\n!touch %s/pwned\n' "$IT_TMP" > "$IT_TMP/local.gf"
vol personalise auto --script "$IT_TMP/local.gf" > /dev/null 2> "$IT_TMP/l.err"
grep -q 'line 2: local command: the command ended with exit code 1' "$IT_TMP/l.err" && [ ! -e "$IT_TMP/pwned" ] \
  && pass "a local command runs jailed: the host's files are out of its reach" || fail "local command" "$(cat "$IT_TMP/l.err")"
printf 'mount /dev/sda2 /\n<!echo rm /etc/hostname\n' > "$IT_TMP/local.gf"
vol personalise auto --script "$IT_TMP/local.gf" > /dev/null 2> "$IT_TMP/l.err"
grep -q 'line 2: <! (commands read from a local command' "$IT_TMP/l.err" \
  && pass "commands made up by a local command are refused" || fail "<!" "$(cat "$IT_TMP/l.err")"
printf 'mount /dev/sda2 /\nwrite /etc/hostname x\nmkdir /no/such/dir\n' > "$IT_TMP/bad.gf"
vol personalise auto --script "$IT_TMP/bad.gf" --name bad --engine native > /dev/null 2> "$IT_TMP/b.err"
grep -q 'bad line 3: mkdir: /no/such/dir: No such file or directory' "$IT_TMP/b.err" \
  && pass "a failing command is reported as '<script> line N: <message>'" || fail "error message" "$(cat "$IT_TMP/b.err")"

# --- read both volumes back over NBD -------------------------------------------------------------
cat > "$IT_TMP/ingot.toml" <<EOF2
[deploy]
nbd_listen = "127.0.0.1:0"
EOF2
for v in nat gf; do vol attach "$v" --allow 127.0.0.1 || fail "attach $v"; done
ingot_start --config "$IT_TMP/ingot.toml" || it_finish
NBD_PORT="$(grep -m1 'nbd.serving' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
for v in nat gf; do
  nbdcopy "nbd://127.0.0.1:$NBD_PORT/$v" "$IT_TMP/$v.raw" || fail "nbdcopy $v"
  dd if="$IT_TMP/$v.raw" of="$IT_TMP/$v.root" bs=512 skip="$P2_START" count=$((P2_END - P2_START + 1)) \
    status=none
done
ingot_stop

describe() {  # IMAGE: every path's type, mode, owner, size, link target and contents
  local img="$1" p
  for p in /etc/hostname /etc/sysconfig/network-scripts/ifcfg-ens3 /opt/isdeploy \
           /opt/isdeploy/scripts /opt/isdeploy/scripts/first-boot /opt/isdeploy/hostname-link \
           /opt/isdeploy/scripts/etc /etc/motd /var/log/deploy.log /etc/stale.conf /etc/os-release \
           /etc/jail-report; do
    echo "== $p"
    debugfs -R "stat $p" "$img" 2>&1 | grep -oE 'Type: [a-z]+|Mode: +[0-7]+|User: +[0-9]+|Group: +[0-9]+|Size: [0-9]+|Fast link dest: .*|File not found by ext2_lookup' \
      | tr -s ' '
    if debugfs -R "stat $p" "$img" 2>/dev/null | grep -q 'Type: directory'; then
      # Entry names, not the directory blocks (their hashes and checksums differ by design).
      debugfs -R "ls -p $p" "$img" 2>/dev/null | awk -F/ 'NF > 5 {print $6}' | sort | tr '\n' ' '; echo
    else
      debugfs -R "cat $p" "$img" 2>/dev/null | sha256sum | cut -c1-16
    fi
  done
}
describe "$IT_TMP/nat.root" > "$IT_TMP/nat.desc"
describe "$IT_TMP/gf.root" > "$IT_TMP/gf.desc"
if cmp -s "$IT_TMP/nat.desc" "$IT_TMP/gf.desc"; then
  pass "native and guestfish leave the same files, modes, owners, links and contents"
else
  fail "engines differ" "$(diff "$IT_TMP/nat.desc" "$IT_TMP/gf.desc" | head -20 | tr '\n' '|')"
fi
expect_eq "hostname" "$(debugfs -R 'cat /etc/hostname' "$IT_TMP/nat.root" 2>/dev/null)" "node-17.example.com"
expect_eq "heredoc upload kept quotes, backslashes and tabs" \
  "$(debugfs -R 'cat /etc/sysconfig/network-scripts/ifcfg-ens3' "$IT_TMP/nat.root" 2>/dev/null | tail -1)" \
  "$(printf '"quoted" and \\backslashed\\ and a\ttab')"
grep -A3 '^== /etc/sysconfig/network-scripts/ifcfg-ens3' "$IT_TMP/nat.desc" | grep -q 'Mode: 0600' \
  && pass "chmod 0600" || fail "chmod" "$(grep -A3 ifcfg "$IT_TMP/nat.desc")"
grep -A4 '^== /opt/isdeploy/scripts/first-boot$' "$IT_TMP/nat.desc" | grep -q 'User: 1000' \
  && pass "chown" || fail "chown"
grep -A8 '^== /opt/isdeploy/scripts/etc$' "$IT_TMP/nat.desc" | grep -q 'Fast link dest: "../../etc"' \
  && pass "ln-s into a directory makes the link inside it" || fail "ln-s into a directory"
grep -A1 '^== /etc/stale.conf' "$IT_TMP/nat.desc" | grep -q 'File not found' && pass "rm" || fail "rm"
expect_eq "download, a local command as nobody (HPE's ESXi pattern), upload" \
  "$(debugfs -R 'cat /etc/jail-report' "$IT_TMP/gf.root" 2>/dev/null)" \
  "65534 $(sed -n 's/^ID=//p' "$TREE/etc/os-release")"
for v in nat gf; do
  expect_true "e2fsck: the $v root file system is clean" e2fsck -fn "$IT_TMP/$v.root"
done
expect_eq "the golden image is unchanged" "$(sha256sum < "$GOLDEN")" "$GOLDEN_SUM"
it_finish
