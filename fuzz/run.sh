#!/usr/bin/env bash
# Builds the libFuzzer targets (`make fuzz`, clang, ASan+UBSan) and runs each for a bounded time from a
# seed corpus of real images made with qemu-img. Exits non-zero if any target finds a crash.
#
#   fuzz/run.sh [SECONDS_PER_TARGET]     env: FUZZ_BUILD (default build-fuzz), FUZZ_SKIP_BUILD=1,
#                                        FUZZ_ONLY=<target> (run that target only)
set -uo pipefail
SECS=${1:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
cd "$ROOT"
if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ]; then
  make fuzz >/dev/null || { echo "fuzz build failed" >&2; exit 1; }
fi
WORK=$(mktemp -d /tmp/ingot-fuzz-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# Seeds: small, valid images of every format (the fuzzer mutates from there).
S=$WORK/seeds; mkdir -p "$S"
truncate -s 1M "$S/raw"
qemu-io -f raw -c 'write -P 7 0 64k' "$S/raw" >/dev/null 2>&1
mk() {  # name format options [compress]
  qemu-img convert -q -f raw -O "$2" ${3:+-o $3} ${4:+-c} "$S/raw" "$S/$1" 2>/dev/null || rm -f "$S/$1"
}
mk qcow2 qcow2 cluster_size=4096
mk qcow2_v2 qcow2 compat=0.10,cluster_size=4096
mk qcow2_zlib qcow2 cluster_size=4096 c
mk qcow2_zstd qcow2 compression_type=zstd,cluster_size=4096 c
mk qcow2_extl2 qcow2 extended_l2=on,cluster_size=16k
mk vmdk vmdk ""
mk vmdk_stream vmdk subformat=streamOptimized
mk vpc vpc ""
mk vpc_fixed vpc subformat=fixed
mk vhdx vhdx ""
mk vdi vdi ""
# Formats qemu opens that we refuse by name, and VMDK descriptor spellings qemu's probe takes.
mk qcow qcow ""
mk qed qed ""
mk parallels parallels ""
qemu-img create -q --object secret,id=s0,data=x -f luks -o key-secret=s0,iter-time=10 "$S/luks" 1M \
  2>/dev/null || rm -f "$S/luks"
printf '# any comment\r\n  \r\nversion=1\r\nRW 8 FLAT "/etc/passwd" 0\r\n' >"$S/vmdk_desc_crlf"
printf 'x\ncreateType="monolithicFlat"\nRW 8 FLAT "f" 0\n' >"$S/vmdk_desc_oslo"
printf 'COWD\001\000\000\000\000\000\000\000' >"$S/vmdk_cowd"
mkdir -p "$WORK/iso"; echo hello > "$WORK/iso/a"
genisoimage -quiet -o "$S/iso" "$WORK/iso" 2>/dev/null || true
# Seeds for fuzz_iso9660: Rock Ridge (symlinks, a deep tree relocated, continuation areas), Joliet.
mkdir -p "$WORK/isotree/d1/d2/d3/d4/d5/d6/d7/d8/d9"; echo deep > "$WORK/isotree/d1/d2/d3/d4/d5/d6/d7/d8/d9/f"
ln -s ../../outside "$WORK/isotree/link"; echo a > "$WORK/isotree/$(printf 'n%.0s' $(seq 180))"
genisoimage -quiet -R -o "$S/iso_rr" "$WORK/isotree" 2>/dev/null || true
xorriso -as mkisofs -quiet -R -J -o "$S/iso_rrj" "$WORK/isotree" 2>/dev/null || true
xorriso -as mkisofs -quiet --norock -J -o "$S/iso_joliet" "$WORK/iso" 2>/dev/null || true
# A UDF-only image: genisoimage's ISO 9660/UDF bridge with its ISO 9660 descriptors replaced.
if genisoimage -quiet -udf -o "$S/iso_udf" "$WORK/isotree" 2>/dev/null; then
  dd if=/dev/zero of="$S/iso_udf" bs=2048 seek=16 count=5 conv=notrunc status=none
  i=16; for id in BEA01 NSR02 TEA01; do
    printf '\000%s\001' $id | dd of="$S/iso_udf" bs=1 seek=$((i * 2048)) conv=notrunc status=none; i=$((i + 1))
  done
fi
# Compressed streams for fuzz_decompress.
gzip -c "$S/qcow2" > "$S/qcow2.gz" 2>/dev/null; zstd -q -c "$S/qcow2" > "$S/qcow2.zst" 2>/dev/null
xz -c "$S/qcow2" > "$S/qcow2.xz" 2>/dev/null; bzip2 -c "$S/qcow2" > "$S/qcow2.bz2" 2>/dev/null

# Seeds for the text parsers of the API edge, one directory per target.
T=$WORK/text; mkdir -p "$T"/fuzz_list_query "$T"/fuzz_range "$T"/fuzz_json_patch "$T"/fuzz_config \
  "$T"/fuzz_request_head "$T"/fuzz_url
printf 'limit=2&marker=x&sort=name:asc,created_at:desc&name=in:a,"b,c"&tag=t&size_min=1' >"$T/fuzz_list_query/1"
printf 'visibility=all&member_status=pending&created_at=gte:2026-11-23T00:00:00Z&os_hidden=true' >"$T/fuzz_list_query/2"
printf '\x00\x10\x00\x00\x00\x00\x00\x00bytes=0-99' >"$T/fuzz_range/1"
printf '\xff\xff\x00\x00\x00\x00\x00\x00bytes=-500' >"$T/fuzz_range/2"
printf '[{"op":"replace","path":"/name","value":"n"},{"op":"add","path":"/tags","value":["a"]},{"op":"remove","path":"/existing"},{"op":"add","path":"/a~1b","value":"v"}]' >"$T/fuzz_json_patch/1"
printf '[server]\nlisten = "127.0.0.1:0"\n[images]\ndisk_formats = ["raw"]\n[[stores]]\nid = "a"\ndriver = "file"\nroot = "/x"\ndefault = true\n' >"$T/fuzz_config/1"

printf 'GET /v2/images?limit=2&name=a%%20b HTTP/1.1\r\nHost: x\r\n\r\n' >"$T/fuzz_request_head/1"
printf 'PUT /v2/images/x/file HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n' >"$T/fuzz_request_head/2"
printf 'PATCH http://h/v2/images/x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n[{}]' >"$T/fuzz_request_head/3"
printf 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 0\r\n\r\n' >"$T/fuzz_request_head/4"
# fuzz_metadefs: the shipped definitions, a tag list and a property protection file.
mkdir -p "$T/fuzz_metadefs"
cp "$ROOT"/etc/metadefs/compute-libvirt-image.json "$ROOT"/etc/metadefs/operating-system.json \
   "$T/fuzz_metadefs/" 2>/dev/null
printf '{"name":"p","title":"t","type":"string","enum":["a"],"pattern":"^a+$","minLength":1}' >"$T/fuzz_metadefs/p"
printf '[^x_.*]\ncreate = admin,member\nread = @\nupdate = admin\ndelete = !\n[.*]\ncreate=admin\nread=admin\nupdate=admin\ndelete=admin\n' >"$T/fuzz_metadefs/prot"
# fuzz_url: the first byte picks the filter.
printf '\001https://Images.Example:8443/v2/images/x/file?a=b#f' >"$T/fuzz_url/1"
printf '\002http://[::ffff:127.0.0.1]:80/../a' >"$T/fuzz_url/2"
printf '\000http://0x7f.1/%%2e%%2e/' >"$T/fuzz_url/3"
# fuzz_tftp_packet: an RRQ with every option, a Windows-style name, a WRQ, an ACK, an ERROR.
mkdir -p "$T/fuzz_tftp_packet"
printf '\000\001/boot\\pxeboot.n12\000octet\000blksize\0001428\000tsize\0000\000windowsize\0008\000timeout\0003\000' >"$T/fuzz_tftp_packet/1"
printf '\000\001../a/./b\000NetASCII\000\000\000' >"$T/fuzz_tftp_packet/2"
printf '\000\002x\000octet\000' >"$T/fuzz_tftp_packet/3"
printf '\000\004\377\377' >"$T/fuzz_tftp_packet/4"
printf '\000\005\000\010no\000' >"$T/fuzz_tftp_packet/5"
# fuzz_nbd_wire: a qemu-like session (structured replies, base:allocation, GO, then READ, WRITE,
# BLOCK_STATUS, FLUSH, DISC) and an old-style NBD_OPT_EXPORT_NAME one.
mkdir -p "$T/fuzz_nbd_wire"
python3 - "$T/fuzz_nbd_wire" <<'PY'
import struct, sys
def opt(o, d=b""): return struct.pack(">QII", 0x49484156454F5054, o, len(d)) + d
def req(f, t, off, n): return struct.pack(">IHHQQI", 0x25609513, f, t, 7, off, n)
name = b"disk"
meta = struct.pack(">I", 4) + name + struct.pack(">II", 1, 15) + b"base:allocation"
go = struct.pack(">I", 4) + name + struct.pack(">HH", 1, 3)
s = struct.pack(">I", 3) + opt(8) + opt(10, meta) + opt(7, go)
s += req(0, 0, 0, 4096) + req(1, 1, 512, 4) + b"abcd" + req(8, 7, 0, 1 << 20) + req(0, 3, 0, 0) + req(0, 2, 0, 0)
open(sys.argv[1] + "/1", "wb").write(s)
open(sys.argv[1] + "/2", "wb").write(struct.pack(">I", 1) + opt(3) + opt(1, name) + req(0, 0, 0, 1))
PY

# fuzz_dhcp: a PXE ROM's DISCOVER (options 53, 60, 93, 94, 97, 55) and an iPXE REQUEST (user class).
mkdir -p "$T/fuzz_dhcp"
python3 - "$T/fuzz_dhcp" <<'PY'
import struct, sys
def msg(opts, op=1):
    h = struct.pack(">BBBBIHH4s4s4s4s16s64s128s", op, 1, 6, 0, 0x1234, 0, 0x8000, bytes(4), bytes(4),
                    bytes(4), bytes(4), bytes.fromhex("525400123456") + bytes(10), bytes(64), bytes(128))
    o = b"".join(bytes([c, len(v)]) + v for c, v in opts)
    return h + bytes([99, 130, 83, 99]) + o + b"\xff"
pxe = [(53, b"\x01"), (60, b"PXEClient:Arch:00000:UNDI:002001"), (93, b"\x00\x00"), (94, b"\x01\x02\x01"),
       (97, b"\x00" + bytes(range(16))), (55, bytes([1, 3, 43, 60, 66, 67]))]
open(sys.argv[1] + "/1", "wb").write(msg(pxe))
open(sys.argv[1] + "/2", "wb").write(msg([(53, b"\x03"), (60, b"PXEClient"), (77, b"\x04iPXE"), (93, b"\x00\x07"),
                                          (54, bytes([192, 0, 2, 1])), (52, b"\x01")]))
PY

# fuzz_deploy_bundle: the first byte picks the parser (bundle.h); 4 is a whole index.
mkdir -p "$T/fuzz_deploy_bundle"
printf '\000Artifact Name:HPE-Test\nDescription:a: b\nRead Only:true\nTime Stamp:2017-11-29T19:25:35.874Z\nArtifact Type:USER' >"$T/fuzz_deploy_bundle/1"
printf '\001a_planscript.json\t%s\nMANIFEST.MF\t%s\n' "$(printf 'a%.0s' $(seq 64))" "$(printf 'B%.0s' $(seq 64))" >"$T/fuzz_deploy_bundle/2"
printf '\002Test Golden 1.0 - UEFI Image - 2026-01-01' >"$T/fuzz_deploy_bundle/3"
printf '\003{"type":"PlanScript","id":"x","name":"n","planType":"general","content":"umount /","customAttributes":null}' >"$T/fuzz_deploy_bundle/4"
H=$(printf '0%.0s' $(seq 64))
printf '\x041_planscript.json\x00{"name":"p"}\x002_goldenimage.json\x00{"name":"g"}\x00g\x00\x00MANIFEST.MF\x00Artifact Name:b\x00SHA256SUM.sha256sum\x001_planscript.json\t%s\n2_goldenimage.json\t%s\ng\t%s\nMANIFEST.MF\t%s\n' "$H" "$H" "$H" "$H" >"$T/fuzz_deploy_bundle/5"
# fuzz_iscsi_pdu: a libiscsi-like login (security, then operational stage) and a few SCSI commands.
mkdir -p "$T/fuzz_iscsi_pdu"
python3 - "$T/fuzz_iscsi_pdu" <<'PY'
import struct, sys
def pdu(op, flags, data=b"", lun=0, itt=1, w20=0, cdb=bytes(16)):
    h = struct.pack(">BB2xB3sQIIII", op, flags, 0, len(data).to_bytes(3, "big"), lun, itt, w20, 1, 0)
    h += cdb[:16].ljust(16, b"\0")
    return h + data + bytes(-len(data) % 4)
def text(**kv): return b"".join(k.encode() + b"=" + v.encode() + b"\0" for k, v in kv.items())
sec = text(InitiatorName="iqn.2026-01.test:a", SessionType="Normal", TargetName="iqn.x:v", AuthMethod="None")
op = text(HeaderDigest="None", DataDigest="None", InitialR2T="No", ImmediateData="Yes",
          MaxRecvDataSegmentLength="262144", MaxBurstLength="16776192", FirstBurstLength="262144")
s = pdu(0x43, 0x81, sec) + pdu(0x43, 0x87, op)
s += pdu(0x01, 0xc0, w20=96, cdb=bytes([0x12, 0, 0, 0, 96]))
s += pdu(0x01, 0xc0, w20=4096, cdb=bytes([0x28, 0, 0, 0, 0, 8, 0, 0, 8]))
s += pdu(0x01, 0xa0, b"x" * 512, w20=512, cdb=bytes([0x2a, 8, 0, 0, 0, 1, 0, 0, 1]))
s += pdu(0x01, 0x80, cdb=bytes([0x35])) + pdu(0x01, 0xc0, w20=255, cdb=bytes([0x1a, 0, 0x3f, 0, 255]))
open(sys.argv[1] + "/1", "wb").write(s)
disc = text(InitiatorName="iqn.2026-01.test:a", SessionType="Discovery", AuthMethod="None")
open(sys.argv[1] + "/2", "wb").write(pdu(0x43, 0x83, disc) + pdu(0x04, 0x80, text(SendTargets="All")))
PY

seeds_for() {  # target -> seed files
  case $1 in
    fuzz_list_query|fuzz_range|fuzz_json_patch|fuzz_config|fuzz_request_head|fuzz_url) ls "$T/$1"/* ;;
    fuzz_qcow2) ls "$S"/qcow2* ;;
    fuzz_vmdk) ls "$S"/vmdk* ;;
    fuzz_verdicts) ls "$S"/* ;;
    fuzz_decompress) ls "$S"/*.gz "$S"/*.zst "$S"/*.xz "$S"/*.bz2 ;;
    fuzz_vhd) ls "$S"/vpc* ;;
    fuzz_vhdx) ls "$S"/vhdx ;;
    fuzz_vdi) ls "$S"/vdi ;;
    fuzz_iso) ls "$S"/iso ;;
    fuzz_iso9660|fuzz_boot_content) ls "$S"/iso* ;;
    fuzz_tftp_packet|fuzz_nbd_wire|fuzz_dhcp|fuzz_metadefs|fuzz_deploy_bundle|fuzz_iscsi_pdu) ls "$T/$1"/* ;;
    *) ls "$S"/* ;;
  esac 2>/dev/null
}

fail=0
for bin in "$BUILD"/bin/fuzz_*; do
  [ -x "$bin" ] || continue
  t=$(basename "$bin")
  [ -n "${FUZZ_ONLY:-}" ] && [ "$t" != "$FUZZ_ONLY" ] && continue
  corpus=$WORK/corpus/$t; mkdir -p "$corpus"
  for f in $(seeds_for "$t"); do cp "$f" "$corpus/"; done
  log=$WORK/$t.log
  # -rss_limit_mb: the readers bound their tables at 64 MiB; ASan's shadow needs the rest.
  "$bin" "$corpus" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
    -artifact_prefix="$WORK/$t-" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  if [ $rc -ne 0 ]; then
    fail=1
    echo "FAIL $t (exit $rc), artifact(s):"
    ls "$WORK/$t-"* 2>/dev/null
    mkdir -p "$ROOT/fuzz/crashes"; cp "$WORK/$t-"* "$ROOT/fuzz/crashes/" 2>/dev/null
    grep -m5 -E 'ERROR|SUMMARY|runtime error' "$log"
  else
    echo "ok   $t: ${runs:-?} runs in ${SECS}s"
  fi
done
exit $fail
