#!/usr/bin/env bash
# The write path of `convert -O raw`: ingot-img against qemu-img, same run, two figures each:
#   exit  wall time until the command returns (qemu-img's default returns with data in the page cache)
#   sync  wall time until a following `sync` has finished (the data is durable)
# for a 4 GiB-virtual qcow2 holding ~770 MiB (512 MiB of a tar of /usr, 256 MiB random), plain and
# zlib-compressed, with source and output on the real disk and on a tmpfs. ingot-img is measured in
# each write path it has (cache: page cache + early write-back with sync_file_range, its default;
# cache-lazy: page cache only; direct: O_DIRECT from the workers), qemu-img in its default mode.
# Medians of N runs; ratios are qemu-img / ingot-img (> 1: ingot-img faster).
#
#   bench/formats/write_path.sh [BUILD_DIR]   env: N (default 5), DISK (default /tmp/ingot-bench-wp),
#                                             TMPFS (default /dev/shm/ingot-bench-wp)
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IMG=$ROOT/$BUILD/bin/ingot-img
[ -x "$IMG" ] || { echo "no $IMG: build first" >&2; exit 1; }
N=${N:-5}
DISK=${DISK:-/tmp/ingot-bench-wp}
TMPFS=${TMPFS:-/dev/shm/ingot-bench-wp}
mkdir -p "$DISK" "$TMPFS"

if [ ! -f "$DISK/img.qcow2" ] || [ ! -f "$DISK/c.qcow2" ]; then
  echo "making the images in $DISK (once)..." >&2
  truncate -s 4G "$DISK/src.raw"
  (tar cf - /usr 2>/dev/null || true) | head -c 512M | dd of="$DISK/src.raw" bs=1M seek=64 conv=notrunc status=none
  head -c 256M /dev/urandom | dd of="$DISK/src.raw" bs=1M seek=2048 conv=notrunc status=none
  qemu-img convert -f raw -O qcow2 "$DISK/src.raw" "$DISK/img.qcow2"
  qemu-img convert -c -f raw -O qcow2 "$DISK/src.raw" "$DISK/c.qcow2"
  rm -f "$DISK/src.raw"
fi
cp -n "$DISK/img.qcow2" "$DISK/c.qcow2" "$TMPFS/" 2>/dev/null || true

now() { date +%s.%N; }
# run OUT CMD...: prints "exit_seconds sync_seconds" (sync measured from the start).
run() {
  local out=$1; shift
  rm -f "$out"; sync; sleep 0.5
  local a b c
  a=$(now); "$@" >/dev/null 2>&1; b=$(now); sync; c=$(now)
  python3 -c "print('%.3f %.3f' % ($b - $a, $c - $a))"
}

declare -A EXIT SYNC
tools=(qemu ingot-cache ingot-cache-lazy ingot-direct)
for where in disk tmpfs; do
  dir=$DISK; [ $where = tmpfs ] && dir=$TMPFS
  for name in img c; do
    src=$dir/$name.qcow2
    cat "$src" >/dev/null
    for i in $(seq "$N"); do
      for t in "${tools[@]}"; do
        case $t in
          qemu) r=$(run "$dir/out.raw" qemu-img convert -f qcow2 -O raw "$src" "$dir/out.raw") ;;
          ingot-cache) r=$(run "$dir/out.raw" "$IMG" convert -q --write-path cache -O raw "$src" "$dir/out.raw") ;;
          ingot-cache-lazy) r=$(run "$dir/out.raw" "$IMG" convert -q --write-path cache-lazy -O raw "$src" "$dir/out.raw") ;;
          ingot-direct) r=$(run "$dir/out.raw" "$IMG" convert -q --write-path direct -O raw "$src" "$dir/out.raw") ;;
        esac
        k="$where/$name/$t"
        EXIT[$k]="${EXIT[$k]:-} ${r% *}"
        SYNC[$k]="${SYNC[$k]:-} ${r#* }"
      done
    done
    rm -f "$dir/out.raw"
  done
done

{
  echo "convert -O raw, 4 GiB virtual, ~770 MiB data; medians of N=$N (seconds); ratio = qemu-img / ingot-img"
  for where in disk tmpfs; do
    for name in img c; do
      label=$([ $name = img ] && echo "plain qcow2" || echo "zlib qcow2")
      for t in "${tools[@]}"; do
        k="$where/$name/$t"
        echo "$where|$label|$t|${EXIT[$k]}|${SYNC[$k]}"
      done
    done
  done
} | python3 -c '
import sys, statistics
lines = sys.stdin.read().splitlines()
print(lines[0])
rows = {}
for l in lines[1:]:
    where, label, t, ex, sy = l.split("|")
    rows[(where, label, t)] = (statistics.median(map(float, ex.split())), statistics.median(map(float, sy.split())))
print("| where | image | tool | exit s | sync s | exit ratio | sync ratio |")
print("|---|---|---|---|---|---|---|")
for (where, label, t), (e, s) in rows.items():
    qe, qs = rows[(where, label, "qemu")]
    print(f"| {where} | {label} | {t} | {e:.2f} | {s:.2f} | {qe / e:.2f}x | {qs / s:.2f}x |")
'
