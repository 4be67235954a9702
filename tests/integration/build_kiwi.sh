#!/usr/bin/env bash
# kiwi-ng recipes end to end, through IMS's API: a small Debian 12 kiwi description made here
# (config.kiwi templated by IMS's .ims_recipe_template.yaml, a config.sh, a root/ overlay), its
# archive checked on upload (a broken description refused with its file and line), a create job
# that runs `kiwi-ng system prepare` and then the builder's own packaging; the outputs checked like
# build_image.sh does: SquashFS (config.sh's marker, the overlay file, none of kiwi's own files),
# kernel, initrd, manifest.json with md5s, SBOM, DRP tarball, the bootable disk (GPT with an ESP and
# the ext4 root holding the marker) registered as an Image API image.
#
# Slow: kiwi's debootstrap and apt run about 7 minutes here. The Debian archive is the one this
# machine's apt uses (/etc/apt/sources.list*).
#
# Usage: build_kiwi.sh [INGOTD] — needs root, kiwi (kiwi-ng), debootstrap, squashfs-tools, gdisk,
# dosfstools, mtools, systemd-boot-efi, qemu-utils and the Debian archive. Exits 77 (skipped) when
# any of those is missing.
. "$(dirname "$0")/lib.sh"
it_init "$@"

need() { command -v "$1" >/dev/null 2>&1 || { echo "SKIP  $IT_NAME: $1 not installed"; exit 77; }; }
[ "$(id -u)" = 0 ] || { echo "SKIP  $IT_NAME: needs root (kiwi-ng system prepare, namespaces)"; exit 77; }
for t in kiwi-ng debootstrap mksquashfs unsquashfs sgdisk mkfs.vfat mcopy mke2fs debugfs qemu-img jq; do need "$t"; done
[ -f /usr/lib/systemd/boot/efi/systemd-bootx64.efi ] || { echo "SKIP  $IT_NAME: systemd-boot-efi not installed"; exit 77; }
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || { echo "SKIP  $IT_NAME: debian-archive-keyring not installed"; exit 77; }

# The Debian archive this machine's apt uses: the first http(s) URI of a source with suite bookworm.
MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
  awk '/^URIs:/ { u=$2 } /^Suites:/ && / bookworm( |$)/ && u != "" { print u; exit }
       /^deb[ \t]/ && $3 == "bookworm" { for (i=2;i<=NF;i++) if ($i ~ /^https?:/) { print $i; exit } }')
MIRROR=${MIRROR%/}
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
curl -fsS -m 20 -o /dev/null "$MIRROR/dists/bookworm/InRelease" || {
  echo "SKIP  $IT_NAME: the Debian archive $MIRROR is not reachable"; exit 77; }
it_log "# Debian archive: $MIRROR"
T0=$(date +%s)

ingot_start --auth noauth || exit 1
IMS="$INGOT_URL/apis/ims/v3"

new_recipe() {  # new_recipe NAME DIR -> recipe id in $RID, the archive's HTTP status in $CODE
  req_json POST /apis/ims/v3/recipes "{\"name\":\"$1\",\"recipe_type\":\"kiwi-ng\",\"linux_distribution\":\"debian\",\"template_dictionary\":[{\"key\":\"mirror\",\"value\":\"$MIRROR\"},{\"key\":\"marker\",\"value\":\"$MARKER\"}]}"
  RID=$(jb .id)
  tar -C "$2" -czf "$IT_TMP/$1.tgz" .
  CODE=$(curl -s -o "$BODY" -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @"$IT_TMP/$1.tgz" "$IMS/recipes/$RID/archive")
}
MARKER="INGOT-KIWI-$$"

# ---- the description
K="$IT_TMP/kiwi"
mkdir -p "$K/root/etc"
cat > "$K/config.kiwi" <<'EOF'
<?xml version="1.0" encoding="utf-8"?>
<image schemaversion="7.4" name="ingot-kiwi-debian">
  <description type="system">
    <author>Ingot tests</author>
    <contact>ingot@invalid</contact>
    <specification>Debian 12 with a kernel, built by kiwi-ng for Ingot</specification>
  </description>
  <preferences>
    <version>1.0.0</version>
    <packagemanager>apt</packagemanager>
    <type image="tbz"/>
  </preferences>
  <repository type="apt-deb" alias="debian" distribution="bookworm" components="main" repository_gpgcheck="true">
    <source path="{{ mirror }}"/>
  </repository>
  <packages type="image">
    <package name="linux-image-amd64"/>
    <package name="systemd-sysv"/>
    <package name="udev"/>
  </packages>
  <packages type="bootstrap">
    <package name="ca-certificates"/>
  </packages>
</image>
EOF
cat > "$K/config.sh" <<'EOF'
#!/bin/bash
set -e
echo "config.sh: {{ marker }}"
printf '%s\n' "{{ marker }}" > /etc/ingot-kiwi-marker
EOF
chmod 755 "$K/config.sh"
echo kiwi-built > "$K/root/etc/hostname"
printf 'template_files:\n  - config.kiwi\n  - config.sh\n' > "$K/.ims_recipe_template.yaml"

# ---- a broken description is refused on upload, with its file and line
B="$IT_TMP/broken"
mkdir -p "$B"
cp "$K/config.kiwi" "$K/.ims_recipe_template.yaml" "$B/"
sed -i 's|<type image="tbz"/>|<type image="oem"/>|' "$B/config.kiwi"
printf 'template_files:\n  - config.kiwi\n' > "$B/.ims_recipe_template.yaml"
new_recipe kiwi-broken "$B"
expect_eq "a description without a tbz type is refused (400)" "$CODE" 400
expect_true "... naming config.kiwi and the line of <preferences>" grep -qF 'config.kiwi:8: no ' "$BODY"
sed -i 's|<type image="oem"/>|<type image="tbz"/>|; s|</packages>|</package>|' "$B/config.kiwi"
new_recipe kiwi-broken2 "$B"
expect_eq "malformed XML is refused (400)" "$CODE" 400
expect_true "... with the file and line of the mismatched tag" \
  grep -qF 'config.kiwi:20: not well-formed XML: mismatched tag' "$BODY"

# ---- the real recipe
new_recipe deb-kiwi "$K"
expect_eq "the kiwi-ng recipe archive is accepted" "$CODE" 200
req GET "/apis/ims/v3/recipes/$RID"
expect_eq "recipe_type" "$(jb .recipe_type)" kiwi-ng
expect_true "the recipe has its archive link" test "$(jb .link.type)" = ingot

B1=$(date +%s)
req_json POST /apis/ims/v3/jobs "{\"job_type\":\"create\",\"artifact_id\":\"$RID\",\"image_root_archive_name\":\"deb-kiwi\"}"
expect_code "create the kiwi-ng job" 201
JOB=$(jb .id)
status=timeout
for i in $(seq 1 2400); do
  status=$(curl -s "$IMS/jobs/$JOB" | jq -r .status)
  case "$status" in success|error) break;; esac
  sleep 1
done
B1=$(( $(date +%s) - B1 ))
curl -s "$IMS/jobs/$JOB/log" > "$IT_TMP/build.log"
expect_eq "the kiwi-ng job succeeds" "$status" success
[ "$status" = success ] || { curl -s "$IMS/jobs/$JOB" | jq -r .error; tail -40 "$IT_TMP/build.log" | sed 's/^/   log: /'; }
expect_true "the job ran kiwi-ng system prepare" grep -q "kiwi-ng system prepare" "$IT_TMP/build.log"
# (kiwi logs config.sh's own output only with --debug; its marker in the root is checked below)
expect_true "kiwi called config.sh" grep -q "Calling config.sh script" "$IT_TMP/build.log"
IMG=$(curl -s "$IMS/jobs/$JOB" | jq -r .resultant_image_id)
[ -n "$IMG" ] && [ "$IMG" != null ] || { echo "FAIL  $IT_NAME: no image"; it_finish; }

# ---- the IMS outputs
fetch() { curl -sf -o "$2" "$IMS/images/$1/artifacts/$3"; }
mkdir -p "$IT_TMP/a"
req GET "/apis/ims/v3/images/$IMG"
expect_code "GET the image record" 200
cp "$BODY" "$IT_TMP/image.json"
fetch "$IMG" "$IT_TMP/a/manifest.json" manifest.json
expect_eq "image link etag is the manifest's md5" "$(jq -r .link.etag "$IT_TMP/image.json")" \
  "$(md5sum < "$IT_TMP/a/manifest.json" | cut -d' ' -f1)"
for t in rootfs.squashfs kernel initrd; do
  expect_eq "one $t in the manifest" \
    "$(jq "[.artifacts[] | select(.type == \"application/vnd.cray.image.$t\")] | length" "$IT_TMP/a/manifest.json")" 1
done
md5_ok=1
for row in $(jq -r '.artifacts[] | "\(.link.path)|\(.md5)"' "$IT_TMP/a/manifest.json"); do
  path=${row%|*}; md5=${row#*|}
  got=$(curl -sf "$INGOT_URL$path" | md5sum | cut -d' ' -f1)
  [ "$got" = "$md5" ] || { md5_ok=0; it_log "md5 mismatch for $path: $got != $md5"; }
done
expect_eq "every manifest artifact's md5 matches its bytes" "$md5_ok" 1
for f in rootfs kernel initrd kernel-parameters disk.raw sbom.spdx.json; do fetch "$IMG" "$IT_TMP/a/$f" "$f"; done
expect_true "rootfs is a SquashFS" sh -c "unsquashfs -s '$IT_TMP/a/rootfs' | grep -q 'Filesystem size'"
expect_eq "config.sh's marker is in the SquashFS" \
  "$(unsquashfs -cat "$IT_TMP/a/rootfs" etc/ingot-kiwi-marker 2>/dev/null)" "$MARKER"
expect_eq "the root/ overlay's file is in the SquashFS" \
  "$(unsquashfs -cat "$IT_TMP/a/rootfs" etc/hostname 2>/dev/null)" kiwi-built
unsquashfs -l "$IT_TMP/a/rootfs" > "$IT_TMP/a/listing" 2>/dev/null
expect_true "none of kiwi's own files (/image, /.kconfig, /.profile) in the SquashFS" \
  sh -c "! grep -Eq '^squashfs-root/(image|\.kconfig|\.profile)$' '$IT_TMP/a/listing'"
expect_true "kernel is a Linux kernel image" sh -c "file '$IT_TMP/a/kernel' | grep -q 'Linux kernel'"
expect_true "initrd is a non-empty initramfs" test -s "$IT_TMP/a/initrd"
expect_true "a kernel-parameters artifact" test -f "$IT_TMP/a/kernel-parameters"
expect_true "the SBOM lists linux-image-amd64's kernel package" \
  sh -c "jq -e '.spdxVersion == \"SPDX-2.3\" and ([.packages[] | select(.name | startswith(\"linux-image-6\"))] | length) == 1' '$IT_TMP/a/sbom.spdx.json' >/dev/null"
expect_true "provenance: recipe hash and the stage hashes" \
  sh -c "jq -e '(.provenance.recipe_sha256 | length) == 64 and (.provenance.step_hashes | length) == 2' '$IT_TMP/image.json' >/dev/null"
DRP_TGZ=$(jq -r .drp.tgz "$IT_TMP/image.json")
expect_true "DRP tarball named \$TAG-rootfs-\$DSTAMP-\$IDENT.tgz" \
  sh -c "echo '$DRP_TGZ' | grep -Eq '^deb-kiwi-rootfs-[0-9]{8}-[0-9]{6}-[0-9a-f]{12}\.tgz$'"
fetch "$IMG" "$IT_TMP/a/drp.tgz" "$DRP_TGZ"
expect_true "the DRP tarball holds the marker" \
  sh -c "tar -xzOf '$IT_TMP/a/drp.tgz' ./etc/ingot-kiwi-marker | grep -qx '$MARKER'"

# ---- the bootable disk: GPT, ESP with the kernel, ext4 root with the marker; an Image API image
expect_true "disk.raw has a valid GPT with 2 partitions" \
  sh -c "sgdisk -v '$IT_TMP/a/disk.raw' | grep -q 'No problems found' && [ \$(sgdisk -p '$IT_TMP/a/disk.raw' | grep -c '^ *[12] ') = 2 ]"
start=$(sgdisk -i 2 "$IT_TMP/a/disk.raw" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
dd if="$IT_TMP/a/disk.raw" of="$IT_TMP/a/root.ext4" bs=512 skip="$start" status=none
expect_eq "the disk's ext4 root holds config.sh's marker" \
  "$(debugfs -R 'cat /etc/ingot-kiwi-marker' "$IT_TMP/a/root.ext4" 2>/dev/null)" "$MARKER"
ESP=$(( $(sgdisk -i 1 "$IT_TMP/a/disk.raw" | sed -n 's/^First sector: \([0-9]*\).*/\1/p') * 512 ))
expect_true "the ESP holds systemd-boot, the kernel and the initrd" \
  sh -c "MTOOLS_SKIP_CHECK=1 mdir -i '$IT_TMP/a/disk.raw@@$ESP' -b -/ :: | grep -q '/EFI/BOOT/BOOTX64.EFI' && MTOOLS_SKIP_CHECK=1 mdir -i '$IT_TMP/a/disk.raw@@$ESP' -b :: | grep -q vmlinuz"
DISK_ID=$(jq -r .disk.image_id "$IT_TMP/image.json")
req GET "/v2/images/$DISK_ID"
expect_code "the disk is an Image API image" 200
expect_eq "disk status" "$(jb .status)" active
expect_eq "disk_format" "$(jb .disk_format)" qcow2
expect_eq "os_version from the repository's distribution" "$(jb .os_version)" 12

expect_eq "no mounts left under the data directory" "$(grep -c "$INGOT_DATA" /proc/mounts)" 0
it_log "# times: kiwi build ${B1}s, total $(( $(date +%s) - T0 ))s"
it_finish
