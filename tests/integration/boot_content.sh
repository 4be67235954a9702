#!/usr/bin/env bash
# The boot content end to end: ISOs made by xorriso and genisoimage (Rock Ridge with a deep tree and
# symlinks, Joliet-only, UDF-only, and — unless BOOT_BIG=0 — a file over 4 GiB in several extents,
# from a sparse source) are added through /boot/v1 (client upload, server path, URL download, copy),
# bound to OS trees, and every file of every tree is downloaded over HTTP (a sample over TFTP with
# tftp-hpa's client) and compared with its source, Range reads across extent boundaries included.
# Then: boot.ipxe, every path-escape attempt (400/404), 409 for an ISO in use, the files and
# microkernel spaces, published images (as stored, with Content-MD5 and Range, and qcow2 as raw on the
# fly), unpublish at once, the `ingot` CLI groups, and restart + crash repair (an upload killed half
# way leaves nothing served and no partial file).
#
# Usage: boot_content.sh [PATH-TO-INGOTD]
. "$(dirname "$0")/lib.sh"
it_init "$@"
is_peer && { echo "SKIP  the boot content is ingotd's own"; exit 77; }
for tool in xorriso genisoimage qemu-img tftp python3; do
  command -v "$tool" > /dev/null || { echo "SKIP  $tool is not installed"; exit 77; }
done
INGOT_CLI="$(dirname "$INGOTD")/ingot"

SRC="$IT_TMP/src"          # the Rock Ridge tree (Debian installer layout)
JSRC="$IT_TMP/jsrc"        # the Joliet-only tree (no symlinks: Joliet has none)
USRC="$IT_TMP/usrc"        # the UDF-only tree
LOCAL="$IT_TMP/local"      # [boot] local_dirs
WEB="$IT_TMP/web"          # an HTTP origin for URL downloads
mkdir -p "$SRC/install.amd/gtk" "$SRC/a/b/c/d/e/f/g/h/i/j/k" "$SRC/boot/grub" "$JSRC/Sources/Nested" \
         "$USRC/EFI/BOOT" "$LOCAL" "$WEB"

random_file "$SRC/install.amd/vmlinuz" 3145731
random_file "$SRC/install.amd/initrd.gz" 5242887
random_file "$SRC/install.amd/gtk/initrd.gz" 65536
random_file "$SRC/a/b/c/d/e/f/g/h/i/j/k/deep.bin" 4097
printf 'set timeout=5\n' > "$SRC/boot/grub/grub.cfg"
random_file "$SRC/name with spaces & more.txt" 10
: > "$SRC/empty"
ln -s install.amd "$SRC/current"
ln -s ../../install.amd/vmlinuz "$SRC/boot/grub/kernel-link"
ln -s /etc/passwd "$SRC/abs-link"
ln -s ../../../../outside "$SRC/boot/grub/escape-link"
random_file "$JSRC/Sources/Mixed Case Name.WIM" 200003
random_file "$JSRC/Sources/Nested/file-with-a-long-name-that-plain-iso9660-would-cut.bin" 3000
random_file "$USRC/EFI/BOOT/BOOTX64.EFI" 70001
random_file "$USRC/udf-data.bin" 123457

mkiso() { xorriso -as mkisofs -quiet "$@" 2>> "$IT_TMP/xorriso.log"; }
mkiso -R -J -V RRTEST -o "$IT_TMP/rr.iso" "$SRC" || { echo "FAIL  xorriso rr"; exit 1; }
mkiso --norock -J -V JOLIET -o "$LOCAL/joliet.iso" "$JSRC" || { echo "FAIL  xorriso joliet"; exit 1; }
# UDF-only: genisoimage writes an ISO 9660/UDF bridge; with its ISO 9660 descriptors replaced by the
# UDF Volume Recognition Sequence it is what UDF-only authoring tools produce.
genisoimage -quiet -udf -input-charset utf-8 -o "$WEB/udf.iso" "$USRC" 2>> "$IT_TMP/xorriso.log"
python3 - "$WEB/udf.iso" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
assert b[18*2048+1:18*2048+6] == b'BEA01'
b[16*2048:21*2048] = bytes(5*2048)
for i, ident in enumerate([b'BEA01', b'NSR02', b'TEA01']):
    b[(16+i)*2048+1:(16+i)*2048+6] = ident
    b[(16+i)*2048+6] = 1
open(p, 'wb').write(bytes(b))
PY

BIG="${BOOT_BIG:-1}"
if [ "$BIG" = 1 ] && [ "$(df -Pk "$IT_TMP" | awk 'NR==2{print $4}')" -lt $((12*1024*1024)) ]; then
  BIG=0; skip "the file over 4 GiB" "less than 12 GiB free under $IT_TMP"
fi
if [ "$BIG" = 1 ]; then
  # 4 GiB + 5 MiB, sparse but for marks at the section boundary (xorriso cuts 4 GiB - 2 KiB
  # sections) and at the end, so a wrong extent order shows.
  BSRC="$IT_TMP/bigsrc"; mkdir -p "$BSRC"
  truncate -s $((4*1024*1024*1024 + 5*1024*1024)) "$BSRC/huge.img"
  for off in 0 $((4*1024*1024*1024 - 2048 - 4096)) $((4*1024*1024*1024 - 2048)) $((4*1024*1024*1024 + 5*1024*1024 - 8192)); do
    random_file "$IT_TMP/mark" 8192
    dd if="$IT_TMP/mark" of="$BSRC/huge.img" bs=1 seek="$off" conv=notrunc status=none 2>/dev/null \
      || dd if="$IT_TMP/mark" of="$BSRC/huge.img" oflag=seek_bytes seek="$off" conv=notrunc status=none
  done
  printf 'small\n' > "$BSRC/small.txt"
  mkiso -R -iso-level 3 -o "$LOCAL/big.iso" "$BSRC" || { echo "FAIL  xorriso big"; exit 1; }
fi

origin_start "$WEB"
cat > "$IT_TMP/ingotd.toml" <<TOML
[boot]
local_dirs = ["$LOCAL"]
[import_filtering_opts]
allowed_hosts = ["127.0.0.1"]
allowed_ports = [$OPORT]
TOML
start() {
  ingot_start --config "$IT_TMP/ingotd.toml" --auth noauth --boot-listen 127.0.0.1:0 \
    --tftp-listen 127.0.0.1:0 || exit 1
  BOOT_PORT="$(grep -m1 'event=boot\.serving ' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)"
  TFTP_PORT="$(grep -m1 'event=boot\.tftp ' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)"
  BOOT="http://127.0.0.1:$BOOT_PORT"
}
start
CONTENT="$INGOT_DATA/boot-content"
pass "ingotd with boot on $BOOT, TFTP on $TFTP_PORT"

urlpath() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
bget() {
  local path="$1"; shift
  CODE="$(curl -s -m 120 --path-as-is -D "$HDRS" -o "${OUT:-$BODY}" -w '%{http_code}' "$@" "$BOOT$path")"
}
wait_iso() {  # wait_iso NAME: until its status is not downloading; prints the status
  local s
  for _ in $(seq 1 300); do
    req GET "/boot/v1/isos/$1"; s="$(jb .status)"
    [ "$s" != downloading ] && break; sleep 0.2
  done
  echo "$s"
}

# ------------------------------------------------------------------------------------ adding ISOs
req PUT /boot/v1/isos/rr.iso --upload-file "$IT_TMP/rr.iso" -H 'Content-Type: application/octet-stream'
expect_code "upload rr.iso" 201
expect_eq "upload: size" "$(jb .size)" "$(stat -c %s "$IT_TMP/rr.iso")"
expect_eq "upload: ready" "$(jb .status)" ready
req PUT /boot/v1/isos/rr.iso --upload-file "$IT_TMP/rr.iso" -H 'Content-Type: application/octet-stream'
expect_code "the same name again" 409
req PUT /boot/v1/isos/not-an.iso --data-binary 'hello, not an ISO' -H 'Content-Type: application/octet-stream'
expect_code "bytes that are no ISO are refused" 400
req GET /boot/v1/isos/not-an.iso
expect_code "  and not kept" 404
req_json POST /boot/v1/isos "{\"name\":\"joliet.iso\",\"path\":\"$LOCAL/joliet.iso\"}"
expect_code "add from a server path under local_dirs" 201
req_json POST /boot/v1/isos "{\"name\":\"passwd.iso\",\"path\":\"/etc/passwd\"}"
expect_code "a server path outside local_dirs" 403
req_json POST /boot/v1/isos "{\"name\":\"esc.iso\",\"path\":\"$LOCAL/../rr.iso\"}"
expect_code "  .. out of local_dirs" 403
req_json POST /boot/v1/isos "{\"name\":\"udf.iso\",\"url\":\"$ORIGIN/udf.iso\"}"
expect_code "add from a URL (server-side download)" 202
expect_eq "  url: ready" "$(wait_iso udf.iso)" ready
req_json POST /boot/v1/isos '{"name":"x.iso","url":"file:///etc/passwd"}'
expect_code "  a file: URL is refused" 400
req_json POST /boot/v1/isos '{"name":"meta.iso","url":"http://169.254.169.254/latest/x.iso"}'
if [ "$CODE" = 400 ]; then pass "  the metadata address is refused at once"
else expect_eq "  the metadata address fails (SSRF address rule)" "$(wait_iso meta.iso)" failed; fi
req_json POST /boot/v1/isos '{"name":"copy.iso","copy_from":"rr.iso"}'
expect_code "add a copy of a stored ISO" 201
req_json POST /boot/v1/isos '{"name":"bad.iso"}'
expect_code "no source" 400
req PUT "/boot/v1/isos/..%2fescape.iso" --data-binary x
expect_code "an ISO name with a slash" 400 404
if [ "$BIG" = 1 ]; then
  req_json POST /boot/v1/isos "{\"name\":\"big.iso\",\"path\":\"$LOCAL/big.iso\"}"
  expect_code "add the 4 GiB+ ISO by path" 201
fi
req GET /boot/v1/isos
expect_true "list: name, size, uploaded" test "$(jq -r '.isos[] | select(.name=="rr.iso") | "\(.size>0) \(.uploaded|length>0)"' < "$BODY")" = "true true"

# ------------------------------------------------------------------------------------- OS trees
add_os() { req_json POST /boot/v1/os "{\"name\":\"$1\",\"version\":\"$2\",\"iso\":\"$3\"}"; }
add_os debian 12 rr.iso
expect_code "OS tree debian/12 on rr.iso" 201
expect_eq "  status OK" "$(jb .status)" OK
expect_eq "  layout detected" "$(jb .layout) $(jb .kernel) $(jb '.initrds[0]')" "debian-installer install.amd/vmlinuz install.amd/initrd.gz"
add_os debian 12 rr.iso;       expect_code "  the same name/version again" 409
add_os iso 1 rr.iso;           expect_code "  a reserved name" 400
add_os nothing 1 missing.iso;  expect_code "  an ISO that is not stored" 404
add_os win 11 joliet.iso;      expect_code "OS tree on the Joliet-only ISO" 201
add_os udf 1 udf.iso;          expect_code "OS tree on the UDF-only ISO" 201
[ "$BIG" = 1 ] && { add_os big 1 big.iso; expect_code "OS tree on the big ISO" 201; }

# check_tree NAME VERSION SRC: every regular file of SRC (symlinks excluded) byte-identical.
check_tree() {
  local n=0 bad=0 f rel
  while IFS= read -r -d '' f; do
    rel="${f#$3/}"
    [ "$(stat -c %s "$f")" -gt $((1024*1024*1024)) ] && continue  # the big file: below
    OUT="$IT_TMP/dl" bget "/$1/$2/$(urlpath "$rel")"
    n=$((n+1))
    if [ "$CODE" != 200 ] || ! cmp -s "$f" "$IT_TMP/dl"; then
      bad=$((bad+1)); fail "/$1/$2/$rel" "HTTP $CODE or bytes differ"
    fi
  done < <(find "$3" -type f -print0)
  [ "$bad" = 0 ] && pass "all $n files of /$1/$2/ download byte-identical"
}
check_tree debian 12 "$SRC"
check_tree win 11 "$JSRC"
check_tree udf 1 "$USRC"
OUT="$IT_TMP/dl" bget /debian/12/current/vmlinuz
expect_true "a Rock Ridge symlink inside the tree is followed" cmp -s "$IT_TMP/dl" "$SRC/install.amd/vmlinuz"
OUT="$IT_TMP/dl" bget /debian/12/boot/grub/kernel-link
expect_true "  a relative one through ../.." cmp -s "$IT_TMP/dl" "$SRC/install.amd/vmlinuz"
bget /debian/12/install.amd/vmlinuz -r 1000-2999
expect_eq "Range 206" "$CODE" 206
expect_true "  its bytes" cmp -s "$BODY" <(tail -c +1001 "$SRC/install.amd/vmlinuz" | head -c 2000)
bget /debian/12/install.amd/ ; expect_code "a directory of the tree lists" 200
bget /debian/12 ; expect_code "the tree's root without '/' redirects" 301
expect_eq "  to /debian/12/" "$(header Location)" /debian/12/
bget /debian/12/ ; expect_code "  and lists" 200
bget /iso/rr.iso ; expect_code "the stored ISO itself at /iso/NAME" 200
expect_true "  byte-identical" cmp -s "$BODY" "$IT_TMP/rr.iso"

# boot.ipxe
bget /debian/12/boot.ipxe
expect_code "boot.ipxe of a known layout" 200
expect_true "  kernel and initrd by absolute URL" grep -q "^kernel http://127.0.0.1:$BOOT_PORT/debian/12/install.amd/vmlinuz initrd=initrd.gz" "$BODY"
expect_true "  initrd line" grep -q "^initrd http://127.0.0.1:$BOOT_PORT/debian/12/install.amd/initrd.gz" "$BODY"
bget /debian/12/boot.ipxe -H 'Host: evil"host'
expect_code "  a Host that is not a host name" 400
bget /win/11/boot.ipxe ; expect_code "no boot.ipxe for an unknown layout" 404

# TFTP: a sample of the same tree.
(cd "$IT_TMP" && tftp -m binary 127.0.0.1 "$TFTP_PORT" -c get debian/12/install.amd/initrd.gz tftp.out) > /dev/null 2>&1
expect_true "TFTP: a file of the OS tree" cmp -s "$IT_TMP/tftp.out" "$SRC/install.amd/initrd.gz"
rm -f "$IT_TMP/tftp.out"
(cd "$IT_TMP" && tftp -m binary 127.0.0.1 "$TFTP_PORT" -c get win/11/Sources/Nested/file-with-a-long-name-that-plain-iso9660-would-cut.bin tftp.out) > /dev/null 2>&1
expect_true "TFTP: a Joliet name" cmp -s "$IT_TMP/tftp.out" "$JSRC/Sources/Nested/file-with-a-long-name-that-plain-iso9660-would-cut.bin"

# The file over 4 GiB: whole, and ranges across its section boundary.
if [ "$BIG" = 1 ]; then
  B=$((4*1024*1024*1024 - 2048))
  for r in "$((B-4096))-$((B+4095))" "$((B-1))-$B" "$B-$((B+10))" "$((4*1024*1024*1024 + 5*1024*1024 - 100))-"; do
    bget /big/1/huge.img -r "$r"
    first="${r%-*}"; last="${r#*-}"; [ -z "$last" ] && last=$((4*1024*1024*1024 + 5*1024*1024 - 1))
    if [ "$CODE" = 206 ] && cmp -s "$BODY" <(dd if="$BSRC/huge.img" iflag=skip_bytes,count_bytes skip="$first" count=$((last-first+1)) status=none); then
      pass "big file: Range $r across the extent boundary"
    else
      fail "big file: Range $r" "HTTP $CODE or bytes differ"
    fi
  done
  if curl -s -m 600 "$BOOT/big/1/huge.img" | cmp -s - "$BSRC/huge.img"; then
    pass "big file (4 GiB + 5 MiB, several extents): whole download byte-identical"
  else
    fail "big file: whole download"
  fi
fi

# ---------------------------------------------------------------------------------- path escapes
n=0; bad=0
for p in "/debian/12/../../catalog.db" "/debian/12/%2e%2e/%2e%2e/catalog.db" "/iso/../catalog.db" \
         "/iso/rr.iso/../../catalog.db" "/common/..%2f..%2fcatalog.db" "/files/%2e%2e/iso/rr.iso" \
         "/debian/12/abs-link" "/debian/12/boot/grub/escape-link" "/debian/12/..%5c..%5ccatalog.db" \
         "/iso/.partial-x" "/files/.partial-x" "/iso/copy.iso/../rr.iso" "/debian/12%00/x" \
         "/debian/../iso/rr.iso" "/.%2e/catalog.db" "/images/../catalog.db"; do
  bget "$p"; n=$((n+1))
  case "$CODE" in 400|404) ;; *) bad=$((bad+1)); fail "escape $p" "HTTP $CODE";; esac
done
[ "$bad" = 0 ] && pass "all $n path-escape attempts answer 400 or 404"

# ---------------------------------------------------------------------- deleting what is in use
req DELETE /boot/v1/isos/rr.iso
expect_code "an ISO in use cannot be deleted" 409
expect_true "  the answer names the tree" grep -q "debian/12" "$BODY"

# --------------------------------------------------------------------- files and microkernels
random_file "$IT_TMP/mk" 777777
random_file "$IT_TMP/f1" 4096
req PUT /boot/v1/microkernels/vmlinuz-3.16.0-25-generic --upload-file "$IT_TMP/mk" -H 'Content-Type: application/octet-stream'
expect_code "microkernel upload" 201
req PUT "/boot/v1/files?path=tools/memtest/memtest.bin" --upload-file "$IT_TMP/f1" -H 'Content-Type: application/octet-stream'
expect_code "files upload (nested path)" 201
req PUT /boot/v1/files/wimboot --upload-file "$IT_TMP/f1" -H 'Content-Type: application/octet-stream'
expect_code "files upload" 201
OUT="$IT_TMP/dl" bget /common/vmlinuz-3.16.0-25-generic
expect_true "microkernel served at /common/NAME" cmp -s "$IT_TMP/dl" "$IT_TMP/mk"
OUT="$IT_TMP/dl" bget /files/tools/memtest/memtest.bin
expect_true "file served at /files/PATH" cmp -s "$IT_TMP/dl" "$IT_TMP/f1"
req GET /boot/v1/microkernels
expect_eq "microkernel list" "$(jb '.files[0].name') $(jb '.files[0].size')" "vmlinuz-3.16.0-25-generic 777777"
req PUT /boot/v1/files/..hidden --data-binary x -H 'Content-Type: application/octet-stream'
expect_code "a hidden file name" 400

# ---------------------------------------------------------------------------- published images
head -c 3145728 /dev/urandom > "$IT_TMP/disk.raw"
truncate -s 8M "$IT_TMP/disk.raw"
qemu-img convert -f raw -O qcow2 "$IT_TMP/disk.raw" "$IT_TMP/disk.qcow2"
create_image '{"name":"golden","disk_format":"qcow2","container_format":"bare"}'
req PUT "/v2/images/$ID/file" -H 'Content-Type: application/octet-stream' --upload-file "$IT_TMP/disk.qcow2"
expect_code "a qcow2 image uploaded" 204
IMG="$ID"
req_json PUT /boot/v1/published/golden "{\"image_id\":\"$IMG\"}"
expect_code "publish as stored" 201
req_json PUT /boot/v1/published/golden-raw "{\"image_id\":\"$IMG\",\"raw\":true}"
expect_code "publish as raw" 201
req_json PUT /boot/v1/published/bad "{\"image_id\":\"00000000-0000-0000-0000-000000000000\"}"
expect_code "publish an unknown image" 404
OUT="$IT_TMP/dl" bget /images/golden
expect_true "GET /images/NAME: the stored bytes" cmp -s "$IT_TMP/dl" "$IT_TMP/disk.qcow2"
expect_eq "  Content-MD5" "$(header Content-MD5)" "$(openssl md5 -binary < "$IT_TMP/disk.qcow2" | base64)"
OUT="$IT_TMP/dl" bget "/images/$IMG"
expect_true "GET /images/ID" cmp -s "$IT_TMP/dl" "$IT_TMP/disk.qcow2"
bget /images/golden -r 100-199
expect_true "  Range" test "$CODE" = 206 -a "$(stat -c %s "$BODY")" = 100
OUT="$IT_TMP/dl" bget /images/golden-raw
expect_true "GET /images/NAME (raw): qcow2 converted on the fly" cmp -s "$IT_TMP/dl" "$IT_TMP/disk.raw"
bget /images/golden-raw -r 3145700-3145799
expect_true "  Range of the virtual disk" cmp -s "$BODY" <(tail -c +3145701 "$IT_TMP/disk.raw" | head -c 100)
req DELETE /boot/v1/published/golden
expect_code "unpublish" 204
bget /images/golden; expect_code "  the URL is gone at once" 404

# ------------------------------------------------------------------------------------------ CLI
if [ -x "$INGOT_CLI" ]; then
  C=("$INGOT_CLI" --url "$INGOT_URL")
  expect_true "ingot iso list" bash -c "$(printf '%q ' "${C[@]}") iso list --json | jq -e 'map(.name) | index(\"rr.iso\")'"
  expect_true "ingot iso add --file" "${C[@]}" iso add cli.iso --file "$IT_TMP/rr.iso"
  expect_true "ingot os add" "${C[@]}" os add cli 1 --iso cli.iso
  expect_true "ingot os show" bash -c "$(printf '%q ' "${C[@]}") os show cli 1 --json | jq -e '.status==\"OK\"'"
  expect_true "ingot files upload" "${C[@]}" files upload cli.txt --file "$IT_TMP/f1"
  expect_true "ingot microkernel list" bash -c "$(printf '%q ' "${C[@]}") microkernel list | grep -q vmlinuz-3.16"
  expect_true "ingot publish add" "${C[@]}" publish add cli-pub --image "$IMG"
  expect_true "ingot publish list" bash -c "$(printf '%q ' "${C[@]}") publish list --json | jq -e 'length==2'"
  expect_true "ingot publish delete" "${C[@]}" publish delete cli-pub
  expect_true "ingot os delete" "${C[@]}" os delete cli 1
  expect_true "ingot iso delete" "${C[@]}" iso delete cli.iso
  if "${C[@]}" iso delete rr.iso 2> "$IT_TMP/cli.err"; then fail "ingot iso delete of an ISO in use"
  else expect_true "ingot: an ISO in use is refused, naming the tree" grep -q "debian/12" "$IT_TMP/cli.err"; fi
else
  skip "the ingot CLI" "not built beside ingotd"
fi

# -------------------------------------------------------------------------- restart and crash
req GET /boot/v1/os; before="$(jq -c '[.os[] | {name,version,status,layout}]' < "$BODY")"
ingot_stop
start
req GET /boot/v1/os
expect_eq "after a restart: the same OS trees" "$(jq -c '[.os[] | {name,version,status,layout}]' < "$BODY")" "$before"
OUT="$IT_TMP/dl" bget /debian/12/install.amd/vmlinuz
expect_true "  still served" cmp -s "$IT_TMP/dl" "$SRC/install.amd/vmlinuz"
OUT="$IT_TMP/dl" bget /files/tools/memtest/memtest.bin
expect_true "  files too" cmp -s "$IT_TMP/dl" "$IT_TMP/f1"
bget /images/golden-raw -r 0-9; expect_code "  the publication too" 206

# An upload killed half way by a crash.
truncate -s 64M "$IT_TMP/slow.iso"
curl -s -m 60 --limit-rate 2M -X PUT -H 'Content-Type: application/octet-stream' \
  --upload-file "$IT_TMP/slow.iso" "$INGOT_URL/boot/v1/isos/half.iso" > /dev/null 2>&1 &
UPLOADER=$!
for _ in $(seq 1 50); do
  [ -n "$(find "$CONTENT/iso" -name '.partial-*' -size +1k 2>/dev/null)" ] && break; sleep 0.1
done
req GET /boot/v1/isos/half.iso
expect_eq "an upload in progress shows status saving" "$(jb .status)" saving
expect_true "  and its progress" test "$(jb .progress)" -gt 0
ingot_kill9
kill "$UPLOADER" 2>/dev/null; wait "$UPLOADER" 2>/dev/null
start
req GET /boot/v1/isos/half.iso
expect_eq "after the crash: the half ISO is failed, never ready" "$(jb .status)" failed
expect_eq "  no partial file left" "$(find "$CONTENT" -name '.partial-*' | wc -l)" 0
bget /iso/half.iso; expect_code "  and nothing served" 404
req DELETE /boot/v1/isos/half.iso; expect_code "  it can be deleted" 204

# Deleting the tree frees the ISO.
req DELETE /boot/v1/os/debian/12; expect_code "delete the OS tree" 204
bget /debian/12/install.amd/vmlinuz; expect_code "  no longer served" 404
req DELETE /boot/v1/isos/copy.iso; expect_code "delete an unused ISO" 204
bget /iso/copy.iso; expect_code "  no longer served" 404
req GET /boot/v1/isos/copy.iso; expect_code "  no longer listed" 404

it_finish
