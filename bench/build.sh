#!/usr/bin/env bash
# Image builder benchmark: wall time of Ingot's build of a minimal Debian bookworm root (with
# linux-image-amd64) against plain `mmdebstrap` run by hand with the same package list, in the same
# run, with a cold and a warm package cache (warm: medians of ROUNDS interleaved runs, default 3);
# and the time of a cached rebuild (nothing changed).
# Ingot's builds here produce the IMS outputs only (SquashFS, kernel, initrd, manifest), since plain
# mmdebstrap produces a directory: the comparison is of the build, plus the SquashFS Ingot adds.
# Ingot runs dpkg under mmdebstrap's eatmydata hooks; the warm build is also compared with plain
# mmdebstrap given the same hooks by hand, so the saving is not mistaken for less overhead.
#
# Usage: bench/build.sh [BUILD_DIR]   (root; needs mmdebstrap, squashfs-tools and deb.debian.org)
# Targets: overhead <= 10% over plain mmdebstrap; a cached rebuild < 5 s.
set -euo pipefail
BUILD="${1:-build}"
INGOTD="$BUILD/bin/ingotd"
[ -x "$INGOTD" ] || { echo "no $INGOTD"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
W="$(mktemp -d /tmp/ingot-bench-build.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
PKGS="linux-image-amd64,systemd-sysv,udev"
MIRROR=http://deb.debian.org/debian
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

# ---- plain mmdebstrap, by hand: cold (nothing cached), then warm (its own .deb cache)
mkdir -p "$W/debs"
plain() {  # [EXTRA mmdebstrap options]
  SOURCE_DATE_EPOCH=1700000000 mmdebstrap --quiet --mode=root --variant=minbase --include="$PKGS" "$@" \
    --skip=essential/unlink --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in $W/debs /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives $W/debs" \
    bookworm "$W/root" "$MIRROR" > "$W/plain.log" 2>&1
}
# Each timed run starts with the last one's root removed and every dirty page written back, so no run
# pays for the one before it.
settle() { rm -rf "$W/root"; sync; }
timed() { local t0 t1; settle; t0=$(now); "$@" > /dev/null; t1=$(now); secs "$t0" "$t1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
PLAIN_COLD=$(timed plain)
# The same by hand with mmdebstrap's own eatmydata hooks, which Ingot's builds use.
EAT=/usr/share/mmdebstrap/hooks/eatmydata

# ---- Ingot: the same package list from a recipe, through the API
"$INGOTD" --listen 127.0.0.1:0 --boot-listen "" --data-dir "$W/data" > "$W/ingotd.out" 2> "$W/ingotd.log" &
PIDS+=($!)
for i in $(seq 1 100); do grep -q listening "$W/ingotd.log" 2>/dev/null && break; sleep 0.1; done
URL="http://$(grep -m1 listening "$W/ingotd.log" | grep -oE '127\.0\.0\.1:[0-9]+')"
IMS="$URL/apis/ims/v3"
mkdir -p "$W/recipe"
printf 'suite = "bookworm"\nvariant = "minbase"\npackages = ["linux-image-amd64", "systemd-sysv", "udev"]\n' \
  > "$W/recipe/recipe.toml"
tar -C "$W/recipe" -czf "$W/recipe.tgz" .
RID=$(curl -s -XPOST "$IMS/recipes" -H 'Content-Type: application/json' \
  -d '{"name":"bench","recipe_type":"mmdebstrap","linux_distribution":"debian"}' | jq -r .id)
curl -sf -o /dev/null -XPUT "$IMS/recipes/$RID/archive" -H 'Content-Type: application/octet-stream' \
  --data-binary @"$W/recipe.tgz"
build() {  # build USE_CACHE -> seconds
  local t0 t1 id s
  settle
  t0=$(now)
  id=$(curl -s -XPOST "$IMS/jobs" -H 'Content-Type: application/json' \
    -d "{\"job_type\":\"create\",\"artifact_id\":\"$RID\",\"outputs\":[\"ims\"],\"use_cache\":$1}" | jq -r .id)
  while :; do
    s=$(curl -s "$IMS/jobs/$id" | jq -r .status)
    case "$s" in success) break;; error) echo "build failed: $(curl -s "$IMS/jobs/$id" | jq -r .error)" >&2; exit 1;; esac
    sleep 0.1
  done
  t1=$(now)
  secs "$t0" "$t1"
}
INGOT_COLD=$(build true)       # an empty package cache: everything downloaded
# Warm: every stage again, packages from the cache; interleaved with the plain runs, ROUNDS times
# (the archive's index download and this shared host make single runs vary by 20 %).
P=() E=() I=()
for _ in $(seq 1 "${ROUNDS:-3}"); do
  P+=("$(timed plain)")
  E+=("$(timed plain --hook-dir="$EAT")")
  I+=("$(build false)")
done
rm -rf "$W/root"
PLAIN_WARM=$(median "${P[@]}") PLAIN_EAT=$(median "${E[@]}") INGOT_WARM=$(median "${I[@]}")
INGOT_CACHED=$(build true)     # nothing changed: every stage and the outputs from the step cache

ratio() { echo "scale=3; $1 / $2" | bc; }
echo "image builder: Debian bookworm minbase + $PKGS (load: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '  %-44s %8.1f s\n' "plain mmdebstrap, cold package cache" "$PLAIN_COLD"
printf '  %-44s %8.1f s   (%sx plain)\n' "ingot build (+SquashFS), cold" "$INGOT_COLD" "$(ratio "$INGOT_COLD" "$PLAIN_COLD")"
echo "  warm runs (s): plain ${P[*]}; plain+eatmydata ${E[*]}; ingot ${I[*]}; medians below"
printf '  %-44s %8.1f s\n' "plain mmdebstrap, warm package cache" "$PLAIN_WARM"
printf '  %-44s %8.1f s   (%sx plain)\n' "ingot build (+SquashFS), warm, no step cache" "$INGOT_WARM" "$(ratio "$INGOT_WARM" "$PLAIN_WARM")"
printf '  %-44s %8.1f s   (ingot warm: %sx this)\n' "plain mmdebstrap + eatmydata hooks, warm" "$PLAIN_EAT" "$(ratio "$INGOT_WARM" "$PLAIN_EAT")"
printf '  %-44s %8.2f s   (target < 5 s)\n' "ingot cached rebuild" "$INGOT_CACHED"
