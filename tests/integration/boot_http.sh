#!/usr/bin/env bash
# The boot service's southbound listener end to end: ingotd serving a boot root that holds a plain
# tree and an ISO made by xorriso (-R -J), driven by curl on a free loopback port. Checks that every
# file of the tree and every file inside the ISO downloads byte-identical, Range reads (206, 416,
# If-Range), HEAD, 304s, the HTML listing and its redirects, keep-alive, that no path escapes the
# root (each attempt answers 400 or 404), and that nothing of the Image API answers on this port.
#
# BOOT_BIG=1 also builds a sparse ISO holding a file over 4 GiB (several ISO 9660 sections; about a
# minute of xorriso on a shared machine) and reads ranges across its section boundary (xorriso lays
# the sections end to end). A file whose two extents lie apart on disk is in a small hand-made ISO.
#
# Usage: boot_http.sh [PATH-TO-INGOTD]
. "$(dirname "$0")/lib.sh"
it_init "$@"
is_peer && { echo "SKIP  the boot listener is ingotd's own"; exit 77; }
command -v xorriso > /dev/null || { echo "SKIP  xorriso is not installed"; exit 77; }

ROOT="$IT_TMP/boot"
SRC="$IT_TMP/isosrc"
OUTSIDE="$IT_TMP/outside"
mkdir -p "$ROOT/sub/deeper" "$ROOT/iso" "$ROOT/with space" "$SRC/install.amd" "$SRC/boot/grub" \
         "$SRC/a/b/c/d/e/f/g/h/i" "$OUTSIDE"

# ---------------------------------------------------------------------------------------- the tree
random_file "$ROOT/sub/b.bin" 1048577
random_file "$ROOT/sub/deeper/BOOTX64.EFI" 70001
random_file "$ROOT/with space/ké <x>&.img" 12345
printf 'hello boot\n' > "$ROOT/a.txt"
# (not /boot.ipxe: that path is the per-machine script of api/boot/machines)
printf '#!ipxe\nchain http://example/boot.ipxe\n' > "$ROOT/menu.ipxe"
: > "$ROOT/empty.cfg"
printf 'secret outside the root\n' > "$OUTSIDE/secret.txt"
ln -s sub/b.bin "$ROOT/inside-link"
ln -s ../outside/secret.txt "$ROOT/outside-link"
ln -s "$OUTSIDE" "$ROOT/outside-dir"
ln -s /etc/passwd "$ROOT/passwd-link"
mkfifo "$ROOT/fifo"

random_file "$SRC/install.amd/vmlinuz" 3145731
random_file "$SRC/install.amd/initrd.gz" 5242887
printf 'set timeout=5\n' > "$SRC/boot/grub/grub.cfg"
random_file "$SRC/a/b/c/d/e/f/g/h/i/deep.bin" 4097
random_file "$SRC/name with spaces.txt" 10
: > "$SRC/empty"
ln -s install.amd "$SRC/current"
ln -s /etc/passwd "$SRC/abs-link"
xorriso -as mkisofs -quiet -R -J -V INGOTBOOT -o "$ROOT/iso/debian.iso" "$SRC" 2> "$IT_TMP/xorriso.log" \
  || { echo "FAIL  xorriso: $(tail -3 "$IT_TMP/xorriso.log")"; exit 1; }

cat > "$IT_TMP/ingotd.toml" <<TOML
[boot]
root = "$ROOT"
TOML

ingot_start --config "$IT_TMP/ingotd.toml" --auth noauth --boot-listen 127.0.0.1:0 \
  --tftp-listen 127.0.0.1:0 || exit 1
BOOT_PORT="$(grep -m1 'boot.serving' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)"
[ -n "$BOOT_PORT" ] && [ "$BOOT_PORT" != 0 ] || { fail "boot listener address logged"; it_finish; }
pass "boot listener on 127.0.0.1:$BOOT_PORT, API on $INGOT_URL"
BOOT="http://127.0.0.1:$BOOT_PORT"

# urlpath REL: REL with each component percent-encoded ('/' kept).
urlpath() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
# bget PATH [curl args]: GET on the boot listener; CODE, body in $BODY (or $OUT), headers in $HDRS.
bget() {
  local path="$1"; shift
  CODE="$(curl -s -m 60 --path-as-is -D "$HDRS" -o "${OUT:-$BODY}" -w '%{http_code}' "$@" "$BOOT$path")"
}

# ---------------------------------------------------------------------- every file, byte-identical
n=0; bad=0
while IFS= read -r -d '' f; do
  rel="${f#$ROOT/}"
  OUT="$IT_TMP/dl" bget "/$(urlpath "$rel")"
  n=$((n+1))
  if [ "$CODE" != 200 ] || ! cmp -s "$f" "$IT_TMP/dl"; then
    bad=$((bad+1)); fail "tree file /$rel" "HTTP $CODE or bytes differ"
  fi
done < <(find "$ROOT" -type f -print0)
[ "$bad" = 0 ] && pass "all $n files of the tree download byte-identical"

n=0; bad=0
while IFS= read -r -d '' f; do
  rel="${f#$SRC/}"
  OUT="$IT_TMP/dl" bget "/iso/debian.iso/$(urlpath "$rel")"
  n=$((n+1))
  if [ "$CODE" != 200 ] || ! cmp -s "$f" "$IT_TMP/dl"; then
    bad=$((bad+1)); fail "ISO file $rel" "HTTP $CODE or bytes differ"
  fi
done < <(find "$SRC" -type f -print0)
[ "$bad" = 0 ] && pass "all $n files inside the ISO download byte-identical (no mount)"

OUT="$IT_TMP/dl" bget "/iso/debian.iso/current/vmlinuz"
expect_code "a symlink inside the ISO is followed" 200
expect_true "  ... to the right bytes" cmp -s "$SRC/install.amd/vmlinuz" "$IT_TMP/dl"
OUT="$IT_TMP/dl" bget "/inside-link"
expect_code "a symlink inside the root is followed" 200
expect_true "  ... to the right bytes" cmp -s "$ROOT/sub/b.bin" "$IT_TMP/dl"

# ------------------------------------------------------------------------------------------- types
bget /iso/debian.iso -I
expect_eq "Content-Type of an ISO" "$(header Content-Type)" "application/x-iso9660-image"
bget /sub/deeper/BOOTX64.EFI -I
expect_eq "Content-Type of an EFI binary" "$(header Content-Type)" "application/efi"
bget /iso/debian.iso/install.amd/vmlinuz -I
expect_eq "Content-Type of a kernel" "$(header Content-Type)" "application/octet-stream"
bget /menu.ipxe -I
expect_eq "Content-Type of an iPXE script" "$(header Content-Type)" "text/plain; charset=utf-8"

# ------------------------------------------------------------------------------------------ ranges
slice() { dd if="$1" bs=1 skip="$2" count="$3" status=none 2>/dev/null; }
check_range() {  # NAME URLPATH SOURCE FIRST LAST
  local name="$1" path="$2" src="$3" first="$4" last="$5" size
  size="$(stat -c %s "$src")"
  OUT="$IT_TMP/part" bget "$path" -H "Range: bytes=$first-$last"
  expect_code "$name: 206" 206 || return
  expect_eq "$name: Content-Range" "$(header Content-Range)" "bytes $first-$last/$size"
  tail -c +"$((first+1))" "$src" | head -c "$((last-first+1))" > "$IT_TMP/want"
  expect_true "$name: bytes" cmp -s "$IT_TMP/want" "$IT_TMP/part"
}
check_range "range of a tree file" /sub/b.bin "$ROOT/sub/b.bin" 1000 524287
check_range "range of an ISO file" /iso/debian.iso/install.amd/initrd.gz "$SRC/install.amd/initrd.gz" \
  4096 4194303
check_range "last byte of an ISO file" /iso/debian.iso/install.amd/initrd.gz \
  "$SRC/install.amd/initrd.gz" 5242886 5242886
OUT="$IT_TMP/part" bget /iso/debian.iso/install.amd/vmlinuz -H "Range: bytes=-100"
expect_code "suffix range" 206
expect_true "  ... its bytes" cmp -s <(tail -c 100 "$SRC/install.amd/vmlinuz") "$IT_TMP/part"
bget /sub/b.bin -H "Range: bytes=1048577-"
expect_code "range past the end" 416
expect_eq "  ... Content-Range" "$(header Content-Range)" "bytes */1048577"

# ------------------------------------------------------------------------- HEAD and conditionals
bget /iso/debian.iso/install.amd/vmlinuz -I
expect_code "HEAD of an ISO file" 200
expect_eq "  ... Content-Length" "$(header Content-Length)" 3145731
expect_eq "  ... no body" \
  "$(curl -s -I -o /dev/null -w '%{size_download}' "$BOOT/iso/debian.iso/install.amd/vmlinuz")" 0
ETAG="$(header ETag)"; LASTMOD="$(header Last-Modified)"
expect_true "  ... ETag and Last-Modified" test -n "$ETAG" -a -n "$LASTMOD"
bget /iso/debian.iso/install.amd/vmlinuz -H "If-None-Match: $ETAG"
expect_code "If-None-Match: 304" 304
bget /iso/debian.iso/install.amd/vmlinuz -H "If-Modified-Since: $LASTMOD"
expect_code "If-Modified-Since: 304" 304
bget /iso/debian.iso/install.amd/vmlinuz -H 'If-None-Match: "other"'
expect_code "If-None-Match of another tag: 200" 200
OUT="$IT_TMP/part" bget /iso/debian.iso/install.amd/vmlinuz -H "Range: bytes=0-99" -H "If-Range: $ETAG"
expect_code "If-Range with the current tag: 206" 206
OUT="$IT_TMP/part" bget /iso/debian.iso/install.amd/vmlinuz -H "Range: bytes=0-99" -H 'If-Range: "old"'
expect_code "If-Range with an old tag: the whole file" 200
expect_true "  ... its bytes" cmp -s "$SRC/install.amd/vmlinuz" "$IT_TMP/part"
bget /a.txt -I
A_ETAG="$(header ETag)"
bget /a.txt -H "If-None-Match: $A_ETAG"
expect_code "tree file If-None-Match: 304" 304
bget /a.txt -H "If-Modified-Since: $(header Last-Modified)"
expect_code "tree file If-Modified-Since: 304" 304

# --------------------------------------------------------------------------------------- listings
bget /
expect_code "listing of the root" 200
expect_eq "  ... is HTML" "$(header Content-Type)" "text/html; charset=utf-8"
expect_true "  ... names a file with its size" grep -q '<a href="a.txt">a.txt</a></td><td>11</td>' "$BODY"
expect_true "  ... names a directory" grep -q '<a href="sub/">sub/</a>' "$BODY"
expect_true "  ... no symlink leading out" bash -c "! grep -q 'outside\|passwd-link\|fifo' '$BODY'"
bget "/with%20space/"
expect_true "listing escapes names" grep -qF '>ké &lt;x&gt;&amp;.img</a>' "$BODY"
expect_true "  ... and encodes their links" grep -qF 'href="k%C3%A9%20%3Cx%3E%26.img"' "$BODY"
bget /sub
expect_code "a directory without its '/'" 301
expect_eq "  ... redirected" "$(header Location)" "/sub/"
bget /iso/debian.iso/
expect_code "listing of an ISO's root" 200
expect_true "  ... names its directories" grep -q '<a href="install.amd/">install.amd/</a>' "$BODY"
bget /iso/debian.iso/install.amd
expect_code "an ISO directory without its '/'" 301
expect_eq "  ... redirected" "$(header Location)" "/iso/debian.iso/install.amd/"
bget /iso/
expect_true "listing offers to browse an ISO" grep -q 'href="debian.iso/">\[browse\]' "$BODY"

# -------------------------------------------------------------------------------------- keep-alive
curl -s -v -o /dev/null -o /dev/null "$BOOT/a.txt" "$BOOT/iso/debian.iso/boot/grub/grub.cfg" \
  2> "$IT_TMP/keepalive.log"
expect_true "two requests on one connection" grep -qi 're-using existing connection' "$IT_TMP/keepalive.log"

# --------------------------------------------------------------------------------- path escapes
LONG="/$(head -c 5000 /dev/zero | tr '\0' a)"
for p in "/../outside/secret.txt" "/../../../../etc/passwd" "/%2e%2e/outside/secret.txt" \
         "/%2E%2E/%2E%2E/%2E%2E/etc/passwd" "/sub/%2e%2e/%2e%2e/outside/secret.txt" \
         "/%252e%252e/outside/secret.txt" "/%252e%252e%252f%252e%252e%252fetc%252fpasswd" \
         "/sub%2f..%2f..%2foutside%2fsecret.txt" '/sub\..\..\outside\secret.txt' \
         "/sub%5c..%5c..%5coutside%5csecret.txt" "/a.txt%00.png" "/%00" "$LONG" \
         "/outside-link" "/outside-dir/secret.txt" "/outside-dir/" "/passwd-link" "/fifo" \
         "/iso/debian.iso/abs-link" "/iso/debian.iso/../../outside/secret.txt" \
         "/iso/debian.iso/%2e%2e/%2e%2e/a.txt" "/./a.txt"; do
  bget "$p"
  shown="$(printf '%s' "$p" | head -c 60)"
  if [ "$CODE" = 400 ] || [ "$CODE" = 404 ]; then
    if grep -q 'secret outside\|root:' "$BODY" 2>/dev/null; then
      fail "escape $shown" "answered $CODE with the file"
    else
      pass "escape $shown ($CODE)"
    fi
  else
    fail "escape $shown" "HTTP $CODE, want 400 or 404"
  fi
done

# ---------------------------------------------------------------- only this service on this port
bget /v2/images
expect_code "the Image API does not answer on the boot port" 404
bget /healthcheck
expect_code "nor its health check" 404
bget /a.txt -X POST -d x
expect_code "POST" 405
expect_eq "  ... Allow" "$(header Allow)" "GET, HEAD"
bget /a.txt -X DELETE
expect_code "DELETE" 405
bget /sub/b.bin -X PUT -d x
expect_code "PUT" 405
req GET /v2/images
expect_code "the Image API still answers on its own port" 200
req GET /a.txt
expect_code "and serves no boot file there" 404

# ------------------------------------------------------- a file in two extents apart on disk
# A hand-made ISO 9660 volume: MULTI.BIN is 4096 bytes at block 40, then 1000 bytes at block 30
# (two sections, ECMA-119 6.5.1). Also writes the file's expected bytes.
python3 - "$ROOT/iso/multi.iso" "$IT_TMP/multi.want" <<'PY'
import struct, sys
b = bytearray(64 * 2048)
def rec(at, block, length, flags, ident):
    n = 33 + len(ident) + (1 - len(ident) % 2)
    b[at] = n
    b[at + 2:at + 10] = struct.pack('<I', block) + struct.pack('>I', block)
    b[at + 10:at + 18] = struct.pack('<I', length) + struct.pack('>I', length)
    b[at + 18:at + 21] = bytes([120, 1, 2])
    b[at + 25] = flags
    b[at + 28] = 1; b[at + 31] = 1
    b[at + 32] = len(ident)
    b[at + 33:at + 33 + len(ident)] = ident
    return at + n
p = 16 * 2048
b[p] = 1; b[p + 1:p + 7] = b'CD001\x01'
b[p + 80:p + 88] = struct.pack('<I', 64) + struct.pack('>I', 64)
b[p + 128:p + 132] = bytes([0, 8, 8, 0])
rec(p + 156, 20, 2048, 2, b'\0')
t = 17 * 2048
b[t] = 255; b[t + 1:t + 7] = b'CD001\x01'
at = rec(20 * 2048, 20, 2048, 2, b'\0')
at = rec(at, 20, 2048, 2, b'\1')
at = rec(at, 40, 4096, 0x80, b'MULTI.BIN;1')
rec(at, 30, 1000, 0, b'MULTI.BIN;1')
first = bytes((97 + i % 26) for i in range(4096))
second = bytes((48 + i % 10) for i in range(1000))
b[40 * 2048:40 * 2048 + 4096] = first
b[30 * 2048:30 * 2048 + 1000] = second
open(sys.argv[1], 'wb').write(b)
open(sys.argv[2], 'wb').write(first + second)
PY
OUT="$IT_TMP/dl" bget /iso/multi.iso/MULTI.BIN
expect_code "a file of two extents apart" 200
expect_true "  ... byte-identical" cmp -s "$IT_TMP/multi.want" "$IT_TMP/dl"
check_range "range across the two extents" /iso/multi.iso/MULTI.BIN "$IT_TMP/multi.want" 4000 4199
check_range "range inside the second extent" /iso/multi.iso/MULTI.BIN "$IT_TMP/multi.want" 4500 5095

# ------------------------------------------------------------- the same tree over TFTP
TFTP_PORT="$(grep -m1 'boot.tftp' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)"
if [ -n "$TFTP_PORT" ] && [ "$TFTP_PORT" != 0 ]; then
  pass "TFTP listener on 127.0.0.1:$TFTP_PORT"
  tget() {  # tget PATH [curl options]: TFTP_RC is curl's exit code, the bytes go to $IT_TMP/tdl
    local p=$1; shift
    rm -f "$IT_TMP/tdl"
    curl -s -m 30 --path-as-is "$@" -o "$IT_TMP/tdl" "tftp://127.0.0.1:$TFTP_PORT$p"
    TFTP_RC=$?
  }
  for pair in "/sub/b.bin:$ROOT/sub/b.bin" "/iso/debian.iso/install.amd/vmlinuz:$SRC/install.amd/vmlinuz" \
              "/iso/debian.iso/install.amd/initrd.gz:$SRC/install.amd/initrd.gz" \
              "/iso/debian.iso/current/vmlinuz:$SRC/install.amd/vmlinuz" \
              "/iso/multi.iso/MULTI.BIN:$IT_TMP/multi.want"; do
    tget "${pair%%:*}" --tftp-blksize 1428
    expect_true "TFTP ${pair%%:*}: byte-identical (curl rc $TFTP_RC)" cmp -s "${pair#*:}" "$IT_TMP/tdl"
  done
  tget /sub/b.bin --tftp-blksize 512
  expect_true "TFTP with 512-byte blocks: byte-identical" cmp -s "$ROOT/sub/b.bin" "$IT_TMP/tdl"
  for bad in /../outside/secret.txt /outside-link /outside-dir/secret.txt /passwd-link /fifo /sub \
             /iso/debian.iso/abs-link /iso/debian.iso/nothing /iso/debian.iso/../../a.txt; do
    tget "$bad"
    if [ "$TFTP_RC" != 0 ] && ! grep -q "secret\|root:" "$IT_TMP/tdl" 2> /dev/null; then
      pass "TFTP $bad refused (curl rc $TFTP_RC)"
    else
      fail "TFTP $bad refused" "curl rc $TFTP_RC"
    fi
  done
else
  fail "TFTP listener address logged"
fi

# ------------------------------------------------------------- a file over 4 GiB (BOOT_BIG=1)
if [ "${BOOT_BIG:-0}" = 1 ]; then
  mkdir -p "$IT_TMP/bigsrc"
  BIG_SIZE=$(( (4 << 30) + 3 * 4096 + 5 ))
  SECTION=$(( (4 << 30) - 2048 ))   # where xorriso cuts the first section
  truncate -s "$BIG_SIZE" "$IT_TMP/bigsrc/huge.bin"
  printf 'BEFORE-THE-CUT' | dd of="$IT_TMP/bigsrc/huge.bin" bs=1 seek=$((SECTION - 7)) conv=notrunc status=none
  printf 'THE-END' | dd of="$IT_TMP/bigsrc/huge.bin" bs=1 seek=$((BIG_SIZE - 7)) conv=notrunc status=none
  xorriso -as mkisofs -quiet -R -iso-level 3 -o - "$IT_TMP/bigsrc" 2>/dev/null \
    | dd of="$ROOT/iso/big.iso" bs=1M iflag=fullblock conv=sparse status=none
  bget /iso/big.iso/huge.bin -I
  expect_eq "4 GiB+ file: Content-Length" "$(header Content-Length)" "$BIG_SIZE"
  OUT="$IT_TMP/part" bget /iso/big.iso/huge.bin -H "Range: bytes=$((SECTION - 7))-$((SECTION + 6))"
  expect_code "4 GiB+ file: range across the section boundary" 206
  expect_eq "  ... its bytes" "$(cat "$IT_TMP/part")" "BEFORE-THE-CUT"
  OUT="$IT_TMP/part" bget /iso/big.iso/huge.bin -H "Range: bytes=-7"
  expect_eq "4 GiB+ file: the last bytes" "$(cat "$IT_TMP/part")" "THE-END"
else
  skip "file over 4 GiB inside an ISO" "set BOOT_BIG=1 (about a minute of xorriso)"
fi

it_finish
