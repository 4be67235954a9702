#!/usr/bin/env bash
# The image builder end to end: a minimal Debian bookworm image with a kernel built from an
# `mmdebstrap` recipe through IMS's API (and the `ingot build` CLI with its live log), a post-step
# that writes a marker; the SquashFS, kernel, initrd, manifest.json and md5s checked; a second build
# without the step cache compared byte for byte, the bootable disk included (the package cache is
# reused); a cached rebuild;
# the bootable disk registered as an Image API image, downloaded and booted in QEMU (TCG, OVMF, no
# network) until the marker appears on the serial console.
#
# Usage: build_image.sh [INGOTD] — needs root, mmdebstrap, squashfs-tools, gdisk, dosfstools,
# mtools, systemd-boot-efi, ovmf, qemu-system-x86 and the Debian archive (deb.debian.org).
# Exits 77 (skipped) when any of those is missing.
. "$(dirname "$0")/lib.sh"
it_init "$@"

need() { command -v "$1" >/dev/null 2>&1 || { echo "SKIP  $IT_NAME: $1 not installed"; exit 77; }; }
[ "$(id -u)" = 0 ] || { echo "SKIP  $IT_NAME: needs root (mmdebstrap --mode=root, namespaces)"; exit 77; }
for t in mmdebstrap mksquashfs unsquashfs sgdisk mkfs.vfat mcopy mke2fs qemu-system-x86_64 qemu-img jq; do need "$t"; done
[ -f /usr/share/OVMF/OVMF_CODE.fd ] || { echo "SKIP  $IT_NAME: ovmf not installed"; exit 77; }
[ -f /usr/lib/systemd/boot/efi/systemd-bootx64.efi ] || { echo "SKIP  $IT_NAME: systemd-boot-efi not installed"; exit 77; }
curl -fsS -m 20 -o /dev/null http://deb.debian.org/debian/dists/bookworm/InRelease || {
  echo "SKIP  $IT_NAME: the Debian archive is not reachable"; exit 77; }
INGOT_CLI="${INGOT_CLI:-$(dirname "$INGOTD")/ingot}"
T0=$(date +%s)

ingot_start --auth noauth || exit 1
IMS="$INGOT_URL/apis/ims/v3"
export INGOT_URL

# ---- the recipe
R="$IT_TMP/recipe"
mkdir -p "$R/steps" "$R/files"
cat > "$R/recipe.toml" <<'EOF'
suite = "{{ suite }}"
variant = "minbase"
packages = ["linux-image-amd64", "systemd-sysv", "udev"]
kernel_parameters = "console=ttyS0"

[[files]]
source = "files/hostname"
path = "/etc/hostname"

[[steps]]
name = "marker"
stage = "post"
script = "steps/marker.sh"
args = ["{{ marker }}"]
EOF
echo ingot-built > "$R/files/hostname"
cat > "$R/steps/marker.sh" <<'EOF'
#!/bin/sh
set -e
echo "marker step: $1"
printf '%s\n' "$1" > /etc/ingot-marker
# getty shows /etc/issue on the serial console before its login prompt
printf 'Debian built by Ingot %s\n\n' "$1" > /etc/issue
# and a unit writes the marker to the serial console as soon as the system is up
cat > /etc/systemd/system/ingot-marker.service <<UNIT
[Unit]
Description=Ingot build marker
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "Debian built by Ingot $1" > /dev/ttyS0'
[Install]
WantedBy=multi-user.target
UNIT
mkdir -p /etc/systemd/system/multi-user.target.wants
ln -sf /etc/systemd/system/ingot-marker.service /etc/systemd/system/multi-user.target.wants/
EOF
MARKER="INGOT-MARKER-$$"
"$INGOT_CLI" recipe create deb-min --archive "$R" --var suite=bookworm --var "marker=$MARKER" --json \
  > "$IT_TMP/recipe.json" 2> "$IT_TMP/recipe.err"
RID=$(jq -r .id "$IT_TMP/recipe.json")
expect_true "ingot recipe create stores the recipe and its archive link" \
  test "$(jq -r .link.type "$IT_TMP/recipe.json")" = ingot -a -n "$(jq -r .link.etag "$IT_TMP/recipe.json")"
req GET "/apis/ims/v3/recipes/$RID"
expect_code "GET the recipe" 200
expect_eq "recipe_type" "$(jb .recipe_type)" mmdebstrap

# ---- build 1: through the CLI, following the live log
B1=$(date +%s)
"$INGOT_CLI" build start "$RID" --name deb-min > "$IT_TMP/build1.out" 2> "$IT_TMP/build1.err"
rc=$?
B1=$(( $(date +%s) - B1 ))
expect_eq "ingot build start exits 0 on success" "$rc" 0
grep -q "== status: building_image" "$IT_TMP/build1.out" && grep -q "marker step: $MARKER" "$IT_TMP/build1.out" \
  && pass "the CLI streamed the live log (statuses, the step's output)" \
  || fail "the CLI streamed the live log" "$(tail -5 "$IT_TMP/build1.out")"
IMG1=$(sed -n 's/^image //p' "$IT_TMP/build1.out")
JOB1=$(sed -n 's/^job //p' "$IT_TMP/build1.err" | head -1)
req GET "/apis/ims/v3/jobs/$JOB1"
expect_eq "job 1 status" "$(jb .status)" success
expect_eq "job 1 resultant_image_id" "$(jb .resultant_image_id)" "$IMG1"
[ -n "$IMG1" ] || { echo "FAIL  $IT_NAME: no image from build 1"; sed 's/^/   /' "$IT_TMP/build1.out" | tail -30; it_finish; exit 1; }

# ---- the IMS outputs
fetch() { curl -sf -o "$2" "$IMS/images/$1/artifacts/$3"; }
mkdir -p "$IT_TMP/a1" "$IT_TMP/a2" "$IT_TMP/a3"
req GET "/apis/ims/v3/images/$IMG1"
expect_code "GET the image record" 200
cp "$BODY" "$IT_TMP/image1.json"
fetch "$IMG1" "$IT_TMP/a1/manifest.json" manifest.json
expect_eq "image link etag is the manifest's md5" "$(jq -r .link.etag "$IT_TMP/image1.json")" \
  "$(md5sum < "$IT_TMP/a1/manifest.json" | cut -d' ' -f1)"
expect_eq "manifest version" "$(jq -r .version "$IT_TMP/a1/manifest.json")" 1.0
expect_eq "exactly one rootfs in the manifest" \
  "$(jq '[.artifacts[] | select(.type == "application/vnd.cray.image.rootfs.squashfs")] | length' "$IT_TMP/a1/manifest.json")" 1
for t in kernel initrd; do
  expect_eq "one $t in the manifest" \
    "$(jq "[.artifacts[] | select(.type == \"application/vnd.cray.image.$t\")] | length" "$IT_TMP/a1/manifest.json")" 1
done
md5_ok=1
for row in $(jq -r '.artifacts[] | "\(.link.path)|\(.md5)"' "$IT_TMP/a1/manifest.json"); do
  path=${row%|*}; md5=${row#*|}
  got=$(curl -sf "$INGOT_URL$path" | md5sum | cut -d' ' -f1)
  [ "$got" = "$md5" ] || { md5_ok=0; it_log "md5 mismatch for $path: $got != $md5"; }
done
expect_eq "every manifest artifact's md5 matches its bytes" "$md5_ok" 1
for f in rootfs kernel initrd disk.raw sbom.spdx.json; do fetch "$IMG1" "$IT_TMP/a1/$f" "$f"; done
expect_true "rootfs is a SquashFS" sh -c "unsquashfs -s '$IT_TMP/a1/rootfs' | grep -q 'Filesystem size'"
expect_eq "the post-step's marker is in the SquashFS" \
  "$(unsquashfs -cat "$IT_TMP/a1/rootfs" etc/ingot-marker 2>/dev/null)" "$MARKER"
expect_eq "the recipe's file is in the SquashFS" \
  "$(unsquashfs -cat "$IT_TMP/a1/rootfs" etc/hostname 2>/dev/null)" ingot-built
expect_true "kernel is a Linux kernel image" sh -c "file '$IT_TMP/a1/kernel' | grep -q 'Linux kernel'"
expect_true "initrd is a non-empty initramfs" test -s "$IT_TMP/a1/initrd"
expect_true "the SBOM lists linux-image-amd64 with its version" \
  sh -c "jq -e '.spdxVersion == \"SPDX-2.3\" and ([.packages[] | select(.name | startswith(\"linux-image-6\"))] | length) == 1' '$IT_TMP/a1/sbom.spdx.json' >/dev/null"
expect_true "provenance: recipe hash and step hashes" \
  sh -c "jq -e '(.provenance.recipe_sha256 | length) == 64 and (.provenance.step_hashes | length) == 4' '$IT_TMP/image1.json' >/dev/null"
DRP_TGZ=$(jq -r .drp.tgz "$IT_TMP/image1.json")
expect_true "DRP tarball named \$TAG-rootfs-\$DSTAMP-\$IDENT.tgz" \
  sh -c "echo '$DRP_TGZ' | grep -Eq '^deb-min-rootfs-[0-9]{8}-[0-9]{6}-[0-9a-f]{12}\.tgz$'"
fetch "$IMG1" "$IT_TMP/a1/drp-manifest.txt" "$(jq -r .drp.manifest "$IT_TMP/image1.json")"
expect_eq "DRP MANIFEST md5sum is the tarball's" "$(sed -n 's/^md5sum: //p' "$IT_TMP/a1/drp-manifest.txt")" \
  "$(jq -r '.checksums["rootfs.tgz"].md5' "$IT_TMP/image1.json")"

# ---- the Image API image of the bootable disk
DISK_ID=$(jq -r .disk.image_id "$IT_TMP/image1.json")
req GET "/v2/images/$DISK_ID"
expect_code "the disk is an Image API image" 200
expect_eq "disk status" "$(jb .status)" active
expect_eq "disk_format" "$(jb .disk_format)" qcow2
expect_eq "os_distro" "$(jb .os_distro)" debian
expect_eq "os_version" "$(jb .os_version)" 12
expect_eq "architecture" "$(jb .architecture)" x86_64
expect_eq "virtual_size is the raw disk's size" "$(jb .virtual_size)" "$(stat -c %s "$IT_TMP/a1/disk.raw")"

# ---- build 2: every stage again (use_cache=false), the package cache reused; byte for byte
B2=$(date +%s)
req_json POST /apis/ims/v3/jobs "{\"job_type\":\"create\",\"artifact_id\":\"$RID\",\"image_root_archive_name\":\"deb-min\",\"use_cache\":false}"
expect_code "create job 2 (no step cache)" 201
JOB2=$(jb .id)
wait_job() {
  local i s
  for i in $(seq 1 1200); do
    s=$(curl -s "$IMS/jobs/$1" | jq -r .status)
    case "$s" in success|error) echo "$s"; return;; esac
    sleep 1
  done
  echo timeout
}
expect_eq "job 2 status" "$(wait_job "$JOB2")" success
B2=$(( $(date +%s) - B2 ))
IMG2=$(curl -s "$IMS/jobs/$JOB2" | jq -r .resultant_image_id)
curl -s "$IMS/jobs/$JOB2/log" > "$IT_TMP/build2.log"
expect_true "build 2 ran mmdebstrap again (not the step cache)" grep -q "mmdebstrap bookworm" "$IT_TMP/build2.log"
# The bootable disk too: fixed UUIDs and hash seed, every ext4 inode time set to SOURCE_DATE_EPOCH
# after mke2fs -d (build/disk.h), an invariant FAT ESP, GPT GUIDs from the build's hash.
for f in rootfs kernel initrd disk.raw disk.qcow2 sbom.spdx.json rootfs.tgz rootfs.tar.zst; do
  fetch "$IMG2" "$IT_TMP/a2/$f" "$f"
  [ -f "$IT_TMP/a1/$f" ] || fetch "$IMG1" "$IT_TMP/a1/$f" "$f"
  if cmp -s "$IT_TMP/a1/$f" "$IT_TMP/a2/$f"; then pass "reproducible: $f identical in both builds"
  else fail "reproducible: $f identical in both builds" "$(cmp "$IT_TMP/a1/$f" "$IT_TMP/a2/$f" 2>&1 | head -1)"; fi
done

# ---- build 3: nothing changed, every stage and the outputs come from the cache
B3=$(date +%s%N)
# The same outputs as build 1: the outputs asked for are part of the packaging stage's key.
req_json POST /apis/ims/v3/jobs "{\"job_type\":\"create\",\"artifact_id\":\"$RID\",\"image_root_archive_name\":\"deb-min\"}"
JOB3=$(jb .id)
expect_eq "job 3 status" "$(wait_job "$JOB3")" success
B3=$(( ($(date +%s%N) - B3) / 1000000 ))
curl -s "$IMS/jobs/$JOB3/log" > "$IT_TMP/build3.log"
expect_eq "cached rebuild: every stage from the cache" "$(grep -c ': cached$' "$IT_TMP/build3.log")" 4
IMG3=$(curl -s "$IMS/jobs/$JOB3" | jq -r .resultant_image_id)
fetch "$IMG3" "$IT_TMP/a3/rootfs" rootfs
expect_true "cached rebuild gives the same rootfs" cmp -s "$IT_TMP/a1/rootfs" "$IT_TMP/a3/rootfs"

# ---- boot the registered disk: downloaded through the Image API, QEMU TCG + OVMF, no network
curl -sf -o "$IT_TMP/disk.qcow2" "$INGOT_URL/v2/images/$DISK_ID/file"
cp /usr/share/OVMF/OVMF_VARS.fd "$IT_TMP/vars.fd"
BOOT0=$(date +%s)
qemu-system-x86_64 -accel tcg -m 1024 -smp 1 -nodefaults -nographic -no-reboot \
  -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd \
  -drive if=pflash,format=raw,file="$IT_TMP/vars.fd" \
  -drive if=virtio,format=qcow2,file="$IT_TMP/disk.qcow2",snapshot=on \
  -nic none -serial file:"$IT_TMP/serial.log" -monitor none > "$IT_TMP/qemu.out" 2>&1 &
QPID=$!
IT_PIDS+=("$QPID")
seen=""
for i in $(seq 1 600); do
  if grep -aq "Debian built by Ingot $MARKER" "$IT_TMP/serial.log" 2>/dev/null; then seen=marker; break; fi
  kill -0 "$QPID" 2>/dev/null || break
  sleep 1
done
BOOT=$(( $(date +%s) - BOOT0 ))
kill "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null
expect_eq "the disk boots under OVMF to the post-step's marker on the serial console" "$seen" marker
grep -aq "login:" "$IT_TMP/serial.log" && pass "... and getty's login prompt" || true
[ -n "$seen" ] || tail -c 3000 "$IT_TMP/serial.log" | sed 's/^/   serial: /' >&2

# ---- nothing left behind
expect_eq "no mounts left under the data directory" "$(grep -c "$INGOT_DATA" /proc/mounts)" 0
it_log "# times: build1 ${B1}s, build2 (no step cache, warm packages) ${B2}s, cached rebuild ${B3}ms, boot to marker ${BOOT}s, total $(( $(date +%s) - T0 ))s"
it_finish
