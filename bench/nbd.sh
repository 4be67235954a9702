#!/usr/bin/env bash
# OS volumes over NBD: Ingot's NBD server against qemu-nbd, in the same run, interleaved, medians.
#
#   bench/nbd.sh build-nbd/bin/ingotd            (about 3-5 minutes; RUNS=3, GOLDEN_GIB=10, DATA_GIB=2)
#
# The golden image is a raw file of GOLDEN_GIB GiB holding DATA_GIB GiB of random data (the rest a hole).
#  - clone: the time `ingotd volume create` reports for the store's Create (inspect the image, make
#    and publish the volume, every fsync), and the whole command's wall time (process start to exit)
#    beside `qemu-img create -f qcow2 -b golden -F raw` (qemu's way to clone).
#  - Ingot serves a fresh clone of the golden image (its copy-on-write volume); qemu-nbd serves a fresh
#    qcow2 overlay backed by the same golden image — the same copy-on-write setup. Both on 127.0.0.1.
#  - read: `nbdcopy URI null:` of the whole disk (block status skips the hole, the data is read) and
#    `nbdcopy --no-extents` of the data region (every byte requested); MB/s of bytes requested.
#  - write: `nbdcopy` of a DATA_GIB GiB random file (in the page cache) onto the start of the disk,
#    flushed at the end (nbdcopy flushes), into a fresh clone each run; MB/s.
# Prints a Markdown table for bench/RESULTS.md.
set -uo pipefail
INGOTD="$(realpath "${1:-build/bin/ingotd}")"
RUNS="${RUNS:-3}"
GOLDEN_GIB="${GOLDEN_GIB:-10}"
DATA_GIB="${DATA_GIB:-2}"
for t in qemu-nbd qemu-img nbdcopy nbdinfo; do
  command -v "$t" >/dev/null || { echo "needs $t (qemu-utils, libnbd-bin)"; exit 1; }
done
W="$(mktemp -d /tmp/nbd-bench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "# preparing a ${GOLDEN_GIB} GiB golden image with ${DATA_GIB} GiB of data in $W" >&2
GOLDEN="$W/golden.raw"
# Data in 256 MiB runs spread over the disk, so the clone's reads cross data and holes.
for i in $(seq 0 $((DATA_GIB * 4 - 1))); do
  head -c $((256 << 20)) /dev/urandom | dd of="$GOLDEN" bs=1M seek=$((i * GOLDEN_GIB * 1024 / (DATA_GIB * 4))) \
    conv=notrunc status=none
done
truncate -s "${GOLDEN_GIB}G" "$GOLDEN"
head -c $((DATA_GIB << 30)) /dev/urandom > "$W/new.raw"
cat "$GOLDEN" "$W/new.raw" > /dev/null  # warm: both servers read from the page cache
DATA="$W/ingot-data"
mkdir -p "$DATA"

# --- clone time ------------------------------------------------------------------------------------
declare -a CLONE_I CLONE_Q CLONE_S
for r in $(seq 1 5); do
  t0=$(now); out="$("$INGOTD" volume --data-dir "$DATA" create "clone$r" --from "$GOLDEN")" || exit 1; t1=$(now)
  CLONE_I+=($(( (t1 - t0) / 1000 )))
  CLONE_S+=("$(grep -o 'clone_ms=[0-9.]*' <<< "$out" | cut -d= -f2)")
  t0=$(now); qemu-img create -q -f qcow2 -b "$GOLDEN" -F raw "$W/clone$r.qcow2" > /dev/null; t1=$(now)
  CLONE_Q+=($(( (t1 - t0) / 1000 )))
done
for r in $(seq 1 5); do "$INGOTD" volume --data-dir "$DATA" delete "clone$r"; done

# --- servers -----------------------------------------------------------------------------------------
IPORT="$(free_port)"
cat > "$W/ingot.toml" <<EOF
[deploy]
nbd_listen = "127.0.0.1:$IPORT"
EOF
"$INGOTD" --listen 127.0.0.1:0 --boot-listen "" --data-dir "$DATA" --config "$W/ingot.toml" \
  > "$W/ingotd.out" 2> "$W/ingotd.log" &
IPID=$!
PIDS+=("$IPID")
for i in $(seq 1 100); do grep -q nbd.serving "$W/ingotd.log" && break; sleep 0.1; done
grep -q nbd.serving "$W/ingotd.log" || { echo "ingotd did not start"; cat "$W/ingotd.log"; exit 1; }

QPORT="$(free_port)"
start_qemu_nbd() {  # $1 = qcow2 overlay
  qemu-nbd --bind 127.0.0.1 --port "$QPORT" --export-name vol --format qcow2 --persistent \
    --shared 4 "$1" &
  QPID=$!
  PIDS+=("$QPID")
  for i in $(seq 1 100); do nbdinfo --size "nbd://127.0.0.1:$QPORT/vol" > /dev/null 2>&1 && return 0; sleep 0.1; done
  echo "qemu-nbd did not start"; exit 1
}
stop_qemu_nbd() { kill "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null; }

new_ingot_volume() {  # $1 = name
  "$INGOTD" volume --data-dir "$DATA" create "$1" --from "$GOLDEN" > /dev/null &&
    "$INGOTD" volume --data-dir "$DATA" attach "$1" --allow 127.0.0.1
}
drop_ingot_volume() {  # $1 = name: detach, wait for the daemon to let go, delete
  "$INGOTD" volume --data-dir "$DATA" detach "$1"
  for i in $(seq 1 50); do "$INGOTD" volume --data-dir "$DATA" delete "$1" 2>/dev/null && return; sleep 0.2; done
}

mbps() { awk -v b="$1" -v ns="$2" 'BEGIN {printf "%.1f", b / 1e6 / (ns / 1e9)}'; }
timed() { local t0 t1; t0=$(now); "$@" || echo "FAILED: $*" >&2; t1=$(now); echo $((t1 - t0)); }

VIRT=$((GOLDEN_GIB << 30))
DENSE=$((DATA_GIB << 30))
declare -a RI RQ DI DQ WI WQ
for r in $(seq 1 "$RUNS"); do
  echo "# run $r" >&2
  # Ingot
  new_ingot_volume "b$r"
  U="nbd://127.0.0.1:$IPORT/b$r"
  RI+=("$(mbps "$VIRT" "$(timed nbdcopy "$U" null:)")")
  DI+=("$(mbps "$DENSE" "$(timed nbdcopy --no-extents "$U" null: )")")
  WI+=("$(mbps "$DENSE" "$(timed nbdcopy "$W/new.raw" "$U")")")
  cmp -s -n "$DENSE" <(nbdcopy "$U" - 2>/dev/null) "$W/new.raw" || echo "# ingot: write check FAILED" >&2
  drop_ingot_volume "b$r"
  # qemu-nbd over a qcow2 overlay of the same golden image
  rm -f "$W/q.qcow2"
  qemu-img create -q -f qcow2 -b "$GOLDEN" -F raw "$W/q.qcow2"
  start_qemu_nbd "$W/q.qcow2"
  U="nbd://127.0.0.1:$QPORT/vol"
  RQ+=("$(mbps "$VIRT" "$(timed nbdcopy "$U" null:)")")
  DQ+=("$(mbps "$DENSE" "$(timed nbdcopy --no-extents "$U" null:)")")
  WQ+=("$(mbps "$DENSE" "$(timed nbdcopy "$W/new.raw" "$U")")")
  stop_qemu_nbd
done
# --no-extents reads the whole virtual disk; its MB/s above counted only DENSE bytes: rescale.
for i in "${!DI[@]}"; do DI[$i]=$(awk -v x="${DI[$i]}" -v v="$VIRT" -v d="$DENSE" 'BEGIN {printf "%.1f", x * v / d}'); done
for i in "${!DQ[@]}"; do DQ[$i]=$(awk -v x="${DQ[$i]}" -v v="$VIRT" -v d="$DENSE" 'BEGIN {printf "%.1f", x * v / d}'); done

m() { printf '%s\n' "$@" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
ci=$(m "${CLONE_I[@]}"); cq=$(m "${CLONE_Q[@]}"); cs=$(m "${CLONE_S[@]}")
ri=$(m "${RI[@]}"); rq=$(m "${RQ[@]}"); di=$(m "${DI[@]}"); dq=$(m "${DQ[@]}"); wi=$(m "${WI[@]}"); wq=$(m "${WQ[@]}")
echo
echo "| measure (median of $RUNS; clone: of 5) | Ingot | qemu-nbd / qemu-img | Ingot / peer | target |"
echo "|---|---:|---:|---:|---|"
echo "| clone a ${GOLDEN_GIB} GiB golden image (${DATA_GIB} GiB data): the store's Create, ms | $cs | | | < 50 ms |"
echo "| clone, whole command (process start to exit), ms | $(awk -v u="$ci" 'BEGIN {printf "%.1f", u/1000}') | $(awk -v u="$cq" 'BEGIN {printf "%.1f", u/1000}') (qemu-img create -b) | | |"
echo "| read whole disk, nbdcopy to null: (block status), MB/s | $ri | $rq | $(ratio "$ri" "$rq") | >= 1.0 |"
echo "| read whole disk, nbdcopy --no-extents, MB/s | $di | $dq | $(ratio "$di" "$dq") | >= 1.0 |"
echo "| write ${DATA_GIB} GiB into a fresh clone, nbdcopy (flushed), MB/s | $wi | $wq | $(ratio "$wi" "$wq") | >= 1.0 |"
echo
echo "raw runs: clone_ms ${CLONE_S[*]}; clone command us ingot=${CLONE_I[*]} qemu-img=${CLONE_Q[*]}; read ${RI[*]} / ${RQ[*]}; no-extents ${DI[*]} / ${DQ[*]}; write ${WI[*]} / ${WQ[*]}"
echo "host load: $(cut -d' ' -f1-3 /proc/loadavg)"
