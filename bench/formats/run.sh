#!/usr/bin/env bash
# ingot-img convert vs qemu-img convert, same machine, same run.
#
# Images (made once, kept in $SCR): an 8 GiB-virtual qcow2 holding ~2 GiB of mixed data (1 GiB of a tar
# of /usr, 768 MiB of random bytes, 64 scattered 4 MiB patterns written with qemu-io) and the same image
# zlib-compressed (qemu-img convert -c). Each is converted to raw by both tools, alternately, N times on
# a warm page cache; both flush their output (qemu-img's default cache mode does, and so does ingot-img).
# Reports the median seconds, MB/s of virtual disk and of allocated data, the ratio, and ingot-img's peak
# resident memory. Outputs are compared with cmp once per image.
#
#   bench/formats/run.sh [BUILD_DIR]     env: N (default 3), SCR (default /tmp/ingot-bench-formats)
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IMG=$ROOT/$BUILD/bin/ingot-img
[ -x "$IMG" ] || { echo "no $IMG: build first (make build)" >&2; exit 1; }
N=${N:-3}
SCR=${SCR:-/tmp/ingot-bench-formats}
mkdir -p "$SCR"
VS=$((8 * 1024 * 1024 * 1024))

if [ ! -f "$SCR/img.qcow2" ] || [ ! -f "$SCR/c.qcow2" ]; then
  echo "making the reference images in $SCR (once)..." >&2
  rm -f "$SCR/src.raw"
  truncate -s 8G "$SCR/src.raw"
  (tar cf - /usr 2>/dev/null || true) | head -c 1G | dd of="$SCR/src.raw" bs=1M seek=4 conv=notrunc status=none
  head -c 768M /dev/urandom | dd of="$SCR/src.raw" bs=1M seek=$((5 * 1024)) conv=notrunc status=none
  qemu-img convert -f raw -O qcow2 "$SCR/src.raw" "$SCR/img.qcow2"
  cmds=()
  for i in $(seq 0 63); do
    off=$(( ((i * 127 % 8000) * 1048576 + 300 * 1048576) / 4194304 * 4194304 ))
    cmds+=(-c "write -P $((i % 200 + 1)) $off 4M")
  done
  qemu-io -f qcow2 "${cmds[@]}" "$SCR/img.qcow2" >/dev/null
  qemu-img convert -c -f qcow2 -O qcow2 "$SCR/img.qcow2" "$SCR/c.qcow2"
  rm -f "$SCR/src.raw"
fi

secs() { local a b; a=$(date +%s.%N); "$@" >/dev/null 2>&1; b=$(date +%s.%N); python3 -c "print('%.3f' % ($b - $a))"; }
median() { python3 -c 'import sys, statistics; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

echo "ingot-img vs qemu-img convert -O raw, N=$N runs each (median), 8 GiB virtual"
for name in img c; do
  src=$SCR/$name.qcow2
  alloc=$(qemu-img map --output=json "$src" | python3 -c 'import json,sys; print(sum(e["length"] for e in json.load(sys.stdin) if e["data"]))')
  cat "$src" > /dev/null  # warm the page cache for both tools alike
  Q=(); I=(); D=()
  for _ in $(seq "$N"); do
    rm -f "$SCR/q.raw"; sync; Q+=("$(secs qemu-img convert -f qcow2 -O raw "$src" "$SCR/q.raw")")
    rm -f "$SCR/i.raw"; sync; I+=("$(secs "$IMG" convert -q -O raw "$src" "$SCR/i.raw")")
    # For reference only: qemu-img with its own direct-I/O cache mode (not its default).
    rm -f "$SCR/q.raw"; sync; D+=("$(secs qemu-img convert -t none -f qcow2 -O raw "$src" "$SCR/q.raw")")
  done
  rm -f "$SCR/i.raw"; sync
  rss=$( { /usr/bin/time -f '%M' "$IMG" convert -q -O raw "$src" "$SCR/i.raw" >/dev/null; } 2>&1 | tail -1)
  same=$(cmp -s "$SCR/q.raw" "$SCR/i.raw" && echo identical || echo DIFFERENT)
  qm=$(median "${Q[@]}"); im=$(median "${I[@]}"); dm=$(median "${D[@]}")
  python3 - "$name" "$qm" "$im" "$VS" "$alloc" "$rss" "$same" "${Q[*]}" "${I[*]}" "$dm" <<'PY'
import sys
name, qm, im, vs, alloc, rss, same, qs, is_, dm = sys.argv[1:]
dm = float(dm)
qm, im, vs, alloc = float(qm), float(im), int(vs), int(alloc)
label = {"img": "qcow2 (uncompressed)", "c": "qcow2 (zlib-compressed)"}[name]
mb = lambda b, t: b / 1e6 / t
print(f"{label}: allocated {alloc / 2**20:.0f} MiB")
print(f"  qemu-img : {qm:.2f} s  {mb(vs, qm):7.0f} MB/s virtual  {mb(alloc, qm):6.0f} MB/s data   [{qs}]")
print(f"  ingot-img: {im:.2f} s  {mb(vs, im):7.0f} MB/s virtual  {mb(alloc, im):6.0f} MB/s data   [{is_}]")
print(f"  ratio (qemu-img time / ingot-img time): {qm / im:.2f}x   ingot-img peak RSS {int(rss) / 1024:.1f} MiB   output {same}")
print(f"  (reference: qemu-img -t none {dm:.2f} s, ratio {dm / im:.2f}x)")
PY
  rm -f "$SCR/q.raw" "$SCR/i.raw"
done
