#!/usr/bin/env bash
# A machine boots from an OS volume served by Ingot over NBD: QEMU (TCG, BIOS) boots a clone of a
# golden disk whose boot sector reads the disk's second sector through the BIOS (INT 13h, i.e. NBD
# reads by QEMU) and prints it on the serial port. The clone is then personalised (qemu-io writes
# a new message into the volume over NBD), and the next boot prints the new message, while a second
# clone of the same golden image still boots the golden message and the golden file is unchanged.
# When qemu has its iSCSI driver (qemu-block-extra), node-b is then personalised and booted over
# iSCSI ([deploy] iscsi_listen, the same volume through Ingot's own target).
# A boot takes a few seconds under TCG; the whole test well under a minute.
# Skips (77) without qemu-system-x86, qemu-utils or binutils (as, ld).
. "$(dirname "$0")/lib.sh"
it_init "$@"
for tool in qemu-system-x86_64 qemu-io as ld; do
  command -v "$tool" >/dev/null || { echo "SKIP  $IT_NAME: $tool not installed"; exit 77; }
done

INGOT_DATA="$IT_TMP/data"
mkdir -p "$INGOT_DATA"
vol() { "$INGOTD" volume --data-dir "$INGOT_DATA" "$@"; }

# The golden disk: a 16-bit boot sector that reads sector 2 (CHS 0/0/2) to 0x7e00 and writes the
# NUL-terminated text there to COM1; then the message; 8 MiB in all.
cat > "$IT_TMP/boot.S" <<'EOF'
.code16
.globl _start
_start:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $0x7c00, %sp
  sti
  mov $0x0201, %ax          # read one sector
  mov $0x0002, %cx          # cylinder 0, sector 2
  xor %dh, %dh              # head 0; dl = the boot drive
  mov $0x7e00, %bx
  int $0x13
  jc fail
  mov $0x7e00, %si
  call print
hang:
  hlt
  jmp hang
fail:
  mov $failmsg, %si
  call print
  jmp hang
print:
  lodsb
  test %al, %al
  jz done
  mov %al, %bl
  mov $0x3fd, %dx           # wait until the UART can take a byte
wait:
  in %dx, %al
  test $0x20, %al
  jz wait
  mov $0x3f8, %dx
  mov %bl, %al
  out %al, %dx
  jmp print
done:
  ret
failmsg: .asciz "NBD-READ-FAILED\r\n"
.org 510
.word 0xaa55
EOF
as --32 -o "$IT_TMP/boot.o" "$IT_TMP/boot.S" \
  && ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$IT_TMP/boot.bin" "$IT_TMP/boot.o" \
  || { fail "assemble the boot sector"; it_finish; }
GOLDEN="$IT_TMP/golden.raw"
cp "$IT_TMP/boot.bin" "$GOLDEN"
printf 'INGOT-NBD-BOOT golden\r\n\0' | dd of="$GOLDEN" bs=512 seek=1 conv=notrunc status=none
truncate -s 8M "$GOLDEN"
GOLDEN_SUM="$(sha256sum < "$GOLDEN")"

vol create node-a --from "$GOLDEN" > /dev/null && vol attach node-a --allow 127.0.0.1 \
  && vol create node-b --from "$GOLDEN" > /dev/null && vol attach node-b --allow 127.0.0.1 \
  || { fail "create and attach the volumes"; it_finish; }
cat > "$IT_TMP/ingot.toml" <<EOF
[deploy]
nbd_listen = "127.0.0.1:0"
iscsi_listen = "127.0.0.1:0"
EOF
ingot_start --config "$IT_TMP/ingot.toml" || it_finish
NBD_PORT="$(grep -m1 'nbd.serving' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
[ -n "$NBD_PORT" ] || { fail "NBD listener address logged"; it_finish; }
NBD="nbd://127.0.0.1:$NBD_PORT"

# boot VOLUME EXPECTED WHAT: boots QEMU from the volume until EXPECTED shows on serial (60 s at most).
boot() {
  local serial="$IT_TMP/serial-$1-$RANDOM.log" q i t0
  t0=$(date +%s)
  qemu-system-x86_64 -accel tcg -m 64 -display none -no-reboot -boot c \
    -serial "file:$serial" -drive "${DRIVE:-file=$NBD/$1},format=raw,if=ide" > "$serial.qemu" 2>&1 &
  q=$!
  IT_PIDS+=("$q")
  for i in $(seq 1 120); do
    grep -qa "INGOT-NBD-BOOT\|NBD-READ-FAILED" "$serial" 2>/dev/null && break
    kill -0 "$q" 2>/dev/null || break
    sleep 0.5
  done
  kill "$q" 2>/dev/null
  wait "$q" 2>/dev/null
  if grep -qa "$2" "$serial" 2>/dev/null; then
    pass "$3: '$2' on the serial port after $(( $(date +%s) - t0 )) s"
  else
    fail "$3" "serial: $(tr -d '\0' < "$serial" 2>/dev/null | head -c 200); qemu: $(head -c 300 "$serial.qemu")"
  fi
}

boot node-a "INGOT-NBD-BOOT golden" "node-a boots its clone of the golden disk over NBD"
printf 'INGOT-NBD-BOOT node-a personalised\r\n\0' > "$IT_TMP/msg"
qemu-io -f raw -c "write -s $IT_TMP/msg 512 $(stat -c %s "$IT_TMP/msg")" "$NBD/node-a" > /dev/null \
  && pass "personalise node-a's volume over NBD (qemu-io)" || fail "personalise node-a"
boot node-a "INGOT-NBD-BOOT node-a personalised" "node-a boots its personalised volume"
boot node-b "INGOT-NBD-BOOT golden" "node-b, a clone of the same image, still boots the golden disk"
if qemu-img --help 2>/dev/null | grep -qw iscsi; then
  ISCSI_PORT="$(grep -m1 'iscsi.serving' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
  ISCSI_B="iscsi://127.0.0.1:$ISCSI_PORT/iqn.2026-12.io.ingot:node-b/0"
  printf 'INGOT-NBD-BOOT node-b over iSCSI\r\n\0' > "$IT_TMP/msg-b"
  qemu-io -f raw -c "write -s $IT_TMP/msg-b 512 $(stat -c %s "$IT_TMP/msg-b")" "$ISCSI_B" > /dev/null \
    && pass "personalise node-b's volume over iSCSI (qemu-io)" || fail "personalise node-b over iSCSI"
  DRIVE="file=$ISCSI_B" boot node-b "INGOT-NBD-BOOT node-b over iSCSI" "node-b boots its volume over iSCSI"
else
  skip "boot over iSCSI" "qemu has no iSCSI driver (qemu-block-extra)"
fi
[ "$(sha256sum < "$GOLDEN")" = "$GOLDEN_SUM" ] && pass "the golden disk is unchanged" \
  || fail "the golden disk is unchanged"
it_finish
