#!/usr/bin/env bash
# OS volumes over NBD, end to end with the clients users have: the real ingotd serves copy-on-write
# clones of a golden image on [deploy] nbd_listen; qemu-img, qemu-io and libnbd's nbdinfo/nbdcopy
# read and write them.
#
# Proves: a clone reads back identical to the golden image (raw and qcow2 golden images); block
# status shows the image's holes; writes land, persist across detach/re-attach, a graceful restart
# and a SIGKILL after flush; two clones of one image are independent; the golden image never
# changes; the access list and detach refuse clients; a connected volume cannot be deleted.
# Skips (77) without qemu-utils or libnbd-bin.
. "$(dirname "$0")/lib.sh"
it_init "$@"

for tool in qemu-img qemu-io nbdinfo nbdcopy; do
  command -v "$tool" >/dev/null || { echo "SKIP  $IT_NAME: $tool not installed"; exit 77; }
done

INGOT_DATA="$IT_TMP/data"
mkdir -p "$INGOT_DATA"
vol() { "$INGOTD" volume --data-dir "$INGOT_DATA" "$@"; }

# A 64 MiB golden image: 4 MiB of random data, a hole, 2 MiB more data at 40 MiB, a hole to the end.
GOLDEN="$IT_TMP/golden.raw"
head -c $((4 << 20)) /dev/urandom > "$GOLDEN"
head -c $((2 << 20)) /dev/urandom | dd of="$GOLDEN" bs=1M seek=40 conv=notrunc status=none
truncate -s 64M "$GOLDEN"
GOLDEN_SUM="$(sha256sum < "$GOLDEN")"
qemu-img convert -f raw -O qcow2 "$GOLDEN" "$IT_TMP/golden.qcow2"
QCOW_SUM="$(sha256sum < "$IT_TMP/golden.qcow2")"

vol create vol1 --from "$GOLDEN" > /dev/null && pass "create vol1 (raw golden image)" || fail "create vol1"
vol create vol2 --from "$GOLDEN" > /dev/null && pass "create vol2" || fail "create vol2"
vol create volq --from "$IT_TMP/golden.qcow2" > /dev/null && pass "create volq (qcow2 golden image)" \
  || fail "create volq"
vol create vol1 --from "$GOLDEN" > /dev/null 2>&1 && fail "a taken name is refused" \
  || pass "a taken name is refused"
vol create ../x --from "$GOLDEN" > /dev/null 2>&1 && fail "a bad name is refused" \
  || pass "a bad name is refused"
vol list | grep -q "^volq.*base_format=qcow2.*attached=false" && pass "list shows a detached qcow2 clone" \
  || fail "list" "$(vol list)"
for v in vol1 vol2 volq; do vol attach "$v" --allow 127.0.0.1 || fail "attach $v"; done

cat > "$IT_TMP/ingot.toml" <<EOF
[deploy]
nbd_listen = "127.0.0.1:0"
EOF
start_daemon() {
  ingot_start --config "$IT_TMP/ingot.toml" || { it_finish; }
  NBD_PORT="$(grep -m1 'nbd.serving' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
  [ -n "$NBD_PORT" ] && [ "$NBD_PORT" != 0 ] || { fail "NBD listener address logged"; it_finish; }
  NBD="nbd://127.0.0.1:$NBD_PORT"
}
start_daemon
pass "NBD listener on 127.0.0.1:$NBD_PORT"

# --- reads: identical to the golden image, holes visible ---------------------------------------
[ "$(nbdinfo --size "$NBD/vol1")" = $((64 << 20)) ] && pass "nbdinfo: size is the image's virtual size" \
  || fail "nbdinfo --size"
nbdinfo --list "$NBD" 2>/dev/null | grep -c 'export="vol' | grep -qx 3 && pass "nbdinfo --list shows the three volumes" \
  || fail "nbdinfo --list" "$(nbdinfo --list "$NBD" 2>&1 | head -5)"
nbdinfo "$NBD/vol1" | grep -q 'can_flush: true' && pass "flush offered" || fail "flush offered"
qemu-img convert -f raw -O raw "$NBD/vol1" "$IT_TMP/out1.raw" && cmp -s "$GOLDEN" "$IT_TMP/out1.raw" \
  && pass "qemu-img convert nbd://…/vol1 reads back the golden image" || fail "qemu-img convert vol1"
nbdcopy "$NBD/volq" "$IT_TMP/outq.raw" && cmp -s "$GOLDEN" "$IT_TMP/outq.raw" \
  && pass "nbdcopy of the qcow2 clone reads back the golden image" || fail "nbdcopy volq"
MAP="$(nbdinfo --map "$NBD/vol1")"
echo "$MAP" | grep -qE '^ +4194304 +37748736 +3 +hole,zero' && echo "$MAP" | grep -qE '^ +0 +4194304 +0 +data' \
  && pass "block status: data, then the golden image's hole" || fail "block status" "$MAP"

# --- writes ------------------------------------------------------------------------------------
qemu-io -f raw -c 'write -P 0xa5 1000 70000' -c 'write -P 0x5a 20M 3M' -c 'write -z 40M 1M' \
  "$NBD/vol1" > /dev/null && pass "qemu-io writes (partial clusters, into a hole, write-zeroes)" \
  || fail "qemu-io writes"
check_vol1() {  # $1 = what
  qemu-io -f raw -r -c 'read -P 0xa5 1000 70000' -c 'read -P 0x5a 20M 3M' -c 'read -P 0 40M 1M' \
    "$NBD/vol1" 2>&1 | grep -c '^read' | grep -qx 3 && pass "vol1's writes read back ($1)" \
    || fail "vol1's writes read back ($1)"
}
check_vol1 "same daemon"
qemu-img convert -f raw -O raw "$NBD/vol1" "$IT_TMP/out1b.raw"
cmp -s <(head -c 1000 "$GOLDEN") <(head -c 1000 "$IT_TMP/out1b.raw") \
  && cmp -s <(tail -c +$((41 * 1048576 + 1)) "$GOLDEN") <(tail -c +$((41 * 1048576 + 1)) "$IT_TMP/out1b.raw") \
  && pass "bytes around the writes are the golden image's" || fail "bytes around the writes"
# nbdcopy a whole new disk into vol2.
head -c $((64 << 20)) /dev/urandom > "$IT_TMP/new.raw"
nbdcopy "$IT_TMP/new.raw" "$NBD/vol2" && nbdcopy "$NBD/vol2" "$IT_TMP/back2.raw" \
  && cmp -s "$IT_TMP/new.raw" "$IT_TMP/back2.raw" && pass "nbdcopy writes a whole disk and reads it back" \
  || fail "nbdcopy write/read vol2"
# Independence: vol1 kept its own bytes, volq is still the golden image.
qemu-io -f raw -r -c 'read -P 0x5a 20M 3M' "$NBD/vol1" 2>&1 | grep -q '^read' \
  && nbdcopy "$NBD/volq" - | cmp -s - "$GOLDEN" && pass "clones of one image are independent" \
  || fail "clones independent"

# --- access ------------------------------------------------------------------------------------
vol attach vol2 --allow 10.9.9.9
nbdinfo --size "$NBD/vol2" > /dev/null 2>&1 && fail "an address not in the list is refused" \
  || pass "an address not in the list is refused"
vol attach vol2 --allow 127.0.0.0/8
nbdinfo --size "$NBD/nope" > /dev/null 2>&1 && fail "an unknown export is refused" \
  || pass "an unknown export is refused"
# Detach while a client is connected: the daemon ends the connection, the writes stay.
qemu-io -f raw -c 'write -P 0x3c 8M 64k' -c 'flush' -c 'sleep 4000' -c 'read -P 0x3c 8M 64k' \
  "$NBD/vol1" > "$IT_TMP/held.out" 2>&1 &
HELD=$!
sleep 1
vol detach vol1
for i in $(seq 1 50); do kill -0 "$HELD" 2>/dev/null || break; sleep 0.2; done
grep -q 'nbd.detached.*vol1' "$INGOT_LOG" && pass "detach ends the volume's connections" \
  || fail "detach ends connections" "$(tail -3 "$INGOT_LOG")"
wait "$HELD" 2>/dev/null
nbdinfo --size "$NBD/vol1" > /dev/null 2>&1 && fail "a detached volume is not served" \
  || pass "a detached volume is not served"
vol attach vol1 --allow 127.0.0.1
qemu-io -f raw -r -c 'read -P 0x3c 8M 64k' "$NBD/vol1" 2>&1 | grep -q '^read' \
  && pass "writes kept across detach/re-attach" || fail "writes across detach/re-attach"
check_vol1 "after re-attach"
# A connected volume cannot be deleted.
qemu-io -f raw -r -c 'sleep 3000' "$NBD/volq" > /dev/null 2>&1 &
HELD=$!
sleep 1
vol delete volq 2>/dev/null && fail "a connected volume cannot be deleted" \
  || pass "a connected volume cannot be deleted"
wait "$HELD" 2>/dev/null

# --- restart and crash -------------------------------------------------------------------------
ingot_stop
start_daemon
check_vol1 "after a restart"
qemu-io -f raw -c 'write -P 0x77 30M 1M' -c 'flush' "$NBD/vol1" > /dev/null
ingot_kill9
start_daemon
qemu-io -f raw -r -c 'read -P 0x77 30M 1M' "$NBD/vol1" 2>&1 | grep -q '^read' \
  && pass "flushed writes survive SIGKILL" || fail "flushed writes survive SIGKILL"
check_vol1 "after SIGKILL"

[ "$(sha256sum < "$GOLDEN")" = "$GOLDEN_SUM" ] && [ "$(sha256sum < "$IT_TMP/golden.qcow2")" = "$QCOW_SUM" ] \
  && pass "the golden images are unchanged" || fail "golden images unchanged"
ingot_stop
vol delete volq && ! vol info volq > /dev/null 2>&1 && pass "delete" || fail "delete"
it_finish
