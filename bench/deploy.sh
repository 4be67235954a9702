#!/usr/bin/env bash
# Time to a ready OS volume: clone a golden image and personalise it with a plan script, through
# the native engine and through the real guestfish (deploy/guestfish/engine.h), in the same run.
#
#   bench/deploy.sh build/bin/ingotd     (about 3-6 minutes; RUNS=5, GF_RUNS=2, GOLDEN_GIB=10, DATA_GIB=2)
#
# The golden image: a raw GOLDEN_GIB GiB GPT disk whose ext4 root (mke2fs -d) holds DATA_GIB GiB of
# files. Each run clones it (`ingotd volume create`) and runs a 10-line plan script (host name, a
# network file from a heredoc, mkdir-p, ln-s, chmod, write-append, rm, touch) with
# `ingotd volume personalise --engine native|guestfish`. Reported, medians:
#  - clone: the store's Create as `volume create` reports it, and the command's wall time;
#  - deploy: wall time of clone + personalise (two processes, start to exit), and the personalise
#    step alone as the command reports it (parse, run, flush the volume).
# The guestfish engine runs its appliance under TCG (BENCH_KVM=1: KVM).
# Prints a Markdown table for bench/RESULTS.md, with the load average before and after.
set -uo pipefail
INGOTD="$(realpath "${1:-build/bin/ingotd}")"
RUNS="${RUNS:-5}"
GF_RUNS="${GF_RUNS:-2}"
GOLDEN_GIB="${GOLDEN_GIB:-10}"
DATA_GIB="${DATA_GIB:-2}"
for t in sgdisk mke2fs guestfish; do
  command -v "$t" >/dev/null || { echo "needs $t (gdisk, e2fsprogs, libguestfs-tools)"; exit 1; }
done
export LIBGUESTFS_BACKEND=direct
# TCG unless asked for KVM (BENCH_KVM=1): a writable /dev/kvm does not mean KVM works here.
[ "${BENCH_KVM:-0}" = 1 ] || export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
W="$(mktemp -d /tmp/deploy-bench.XXXXXX)"
trap 'rc=$?; rm -rf "$W"; exit $rc' EXIT
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
vol() { "$INGOTD" volume --data-dir "$W/data" "$@"; }
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

echo "# preparing a ${GOLDEN_GIB} GiB golden image with ${DATA_GIB} GiB of files in $W" >&2
TREE="$W/tree"
mkdir -p "$TREE/etc/sysconfig/network-scripts" "$TREE/var/lib/data" "$TREE/opt"
echo golden > "$TREE/etc/hostname"; echo welcome > "$TREE/etc/motd"; echo x > "$TREE/etc/stale.conf"
for i in $(seq 1 $((DATA_GIB * 8))); do
  head -c $((128 << 20)) /dev/urandom > "$TREE/var/lib/data/blob$i"
done
GOLDEN="$W/golden.raw"
truncate -s "${GOLDEN_GIB}G" "$GOLDEN"
sgdisk -n 1:2048:+100M -t 1:ef00 -n 2:0:0 -t 2:8300 "$GOLDEN" > /dev/null
S="$(sgdisk -i 2 "$GOLDEN" | awk '/First sector/{print $3}')"
E="$(sgdisk -i 2 "$GOLDEN" | awk '/Last sector/{print $3}')"
mke2fs -q -t ext4 -F -E offset=$((S * 512)) -d "$TREE" "$GOLDEN" $(((E - S + 1) / 2))k
rm -rf "$TREE"
sync

cat > "$W/plan.gf" <<'PLAN'
mount /dev/sda2 /
write /etc/hostname "node-1.example.com\n"
upload -<<END /etc/sysconfig/network-scripts/ifcfg-ens3
DEVICE=ens3
IPADDR=10.0.0.17
PREFIX=24
END
mkdir-p /opt/isdeploy/scripts
ln-s /etc/hostname /opt/isdeploy/hostname
chmod 0600 /etc/sysconfig/network-scripts/ifcfg-ens3
write-append /etc/motd "personalised\n"
rm /etc/stale.conf
touch /var/log-deployed
umount /
PLAN

n=0
deploy() {  # ENGINE → "wall_ms personalise_ms clone_ms"
  n=$((n + 1))
  local t0 t1 clone p
  t0=$(now)
  clone="$(vol create "v$n" --from "$GOLDEN" | grep -oE 'clone_ms=[0-9.]+' | cut -d= -f2)"
  p="$(vol personalise "v$n" --script "$W/plan.gf" --engine "$1" 2>&1 >/dev/null \
       | grep -oE 'personalise_ms=[0-9.]+' | cut -d= -f2)"
  t1=$(now)
  [ -n "$p" ] || { echo "personalise failed ($1)" >&2; exit 1; }
  echo "$(( (t1 - t0) / 1000000 )) $p $clone"
  vol delete "v$n"
}
clone_only() {
  n=$((n + 1))
  local t0 t1 clone
  t0=$(now)
  clone="$(vol create "v$n" --from "$GOLDEN" | grep -oE 'clone_ms=[0-9.]+' | cut -d= -f2)"
  t1=$(now)
  echo "$(( (t1 - t0) / 1000000 )) $clone"
  vol delete "v$n"
}
: > "$W/clone"; : > "$W/native"; : > "$W/gf"
for r in $(seq 1 "$RUNS"); do
  clone_only >> "$W/clone"
  deploy native >> "$W/native"
  echo "# run $r: clone $(tail -1 "$W/clone"), native $(tail -1 "$W/native")" >&2
done
for r in $(seq 1 "$GF_RUNS"); do
  deploy guestfish >> "$W/gf"
  echo "# guestfish run $r: $(tail -1 "$W/gf")" >&2
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

CLONE_WALL="$(cut -d' ' -f1 "$W/clone" | median)"; CLONE_MS="$(cut -d' ' -f2 "$W/clone" | median)"
N_WALL="$(cut -d' ' -f1 "$W/native" | median)"; N_P="$(cut -d' ' -f2 "$W/native" | median)"
G_WALL="$(cut -d' ' -f1 "$W/gf" | median)"; G_P="$(cut -d' ' -f2 "$W/gf" | median)"
RATIO="$(awk -v g="$G_WALL" -v n="$N_WALL" 'BEGIN{printf "%.0f", g/n}')"
cat <<EOF

## $(date -u '+%Y-%m-%d %H:%M UTC') — time to a ready OS volume, native plan-script engine vs guestfish (\`bench/deploy.sh\`)

${GOLDEN_GIB} GiB raw golden image (GPT, ext4 root holding ${DATA_GIB} GiB of files), a 10-line plan
script; medians of ${RUNS} native and ${GF_RUNS} guestfish runs (appliance under $( [ "${BENCH_KVM:-0}" = 1 ] && echo KVM || echo TCG)), each into a
fresh clone. Load average before: ${LOAD_BEFORE}; after: ${LOAD_AFTER} (2 cores, other work running).

| step | wall time (process start to exit) | as ingotd reports it |
|---|---:|---:|
| clone alone (\`volume create\`) | ${CLONE_WALL} ms | Create: ${CLONE_MS} ms |
| clone + personalise, native engine | ${N_WALL} ms | personalise: ${N_P} ms |
| clone + personalise, guestfish engine | ${G_WALL} ms | personalise: ${G_P} ms |

Native deploy is ${RATIO}x faster than the guestfish path (target: under 1 s and at least 15x).
EOF
