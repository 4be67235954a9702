#!/usr/bin/env bash
# proxyDHCP: ingotd answers PXE clients' DHCP with boot options only, beside the site's DHCP server.
#
# Everything happens inside a network namespace this script makes (`unshare -n`; nothing touches the
# host's network): a veth pair pxe0 (10.99.0.1, ingotd's side: [proxydhcp] interface = "pxe0", the boot
# listener on 10.99.0.1, TFTP on 10.99.0.1:69) and pxe1 (10.99.0.2, the machines' side). A DHCP client
# written here over plain UDP sockets (python3, no scapy; bound to pxe1's port 68, broadcasting to
# 255.255.255.255:67 as a PXE ROM does) sends DISCOVERs with option 60 "PXEClient…"/"HTTPClient…",
# option 93 (RFC 4578 architecture), option 97 (the machine's GUID), iPXE's user class, and a REQUEST
# to the PXE boot server port 4011. It checks each answer: an OFFER/ACK with no address (yiaddr
# 0.0.0.0), this server as next-server and server id, the right first stage for the architecture
# (BIOS: undionly.kpxe over TFTP; x86-64 UEFI: ipxe.efi; arm64: ipxe-arm64.efi; UEFI HTTP boot: an HTTP
# URL; iPXE: the HTTP URL of boot.ipxe), PXE discovery control 8, the GUID echoed; and that a DHCP
# client that is not a PXE client gets nothing (the site's server's business). Then the first stage
# named in the BIOS OFFER is fetched over TFTP from next-server (curl) and is byte-identical, the
# machine shows up as discovered (GET /boot/v1/machines) with the GUID as its SMBIOS UUID and its
# architecture, and the boot.ipxe URL handed to iPXE answers that machine's holding script.
#
# Needs root (network namespaces, port 67) with `unshare`, `nsenter` and `ip`; skips (77) otherwise.
# Usage: boot_proxydhcp.sh [PATH-TO-INGOTD]
if [ -z "${INGOT_IN_NETNS:-}" ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v unshare > /dev/null || ! command -v nsenter > /dev/null ||
     ! command -v ip > /dev/null; then
    echo "SKIP  needs root, unshare and ip (a private network namespace)"; exit 77
  fi
  INGOT_IN_NETNS=1 exec unshare -n -- bash "$0" "$@"
  echo "SKIP  cannot make a network namespace"; exit 77
fi
. "$(dirname "$0")/lib.sh"
it_init "$@"
is_peer && { echo "SKIP  the proxyDHCP responder is ingotd's own"; exit 77; }

ip link set lo up
ip link add pxe0 type veth peer name pxe1 || { echo "SKIP  no veth in this kernel"; exit 77; }
# The machines' side lives in a namespace of its own (a process holding it), as a machine on the
# wire would: within one namespace the kernel drops a packet whose source is one of its own
# addresses arriving on another interface.
unshare -n sleep 600 &
CLIENT_NS=$!
IT_PIDS+=("$CLIENT_NS")
sleep 0.2
ip link set pxe1 netns "$CLIENT_NS"
in_client() { nsenter -t "$CLIENT_NS" -n "$@"; }
ip addr add 10.99.0.1/24 dev pxe0
ip link set pxe0 up
in_client ip link set lo up
in_client ip addr add 10.99.0.2/24 dev pxe1
in_client ip link set pxe1 up
pass "private network namespaces joined by a veth pair (pxe0 10.99.0.1 / pxe1 10.99.0.2)"

INGOT_DATA="$IT_TMP/data"
ROOT="$INGOT_DATA/boot"
mkdir -p "$ROOT"
head -c 70000 /dev/urandom > "$ROOT/undionly.kpxe"   # the first stage, as far as TFTP is concerned
cat > "$IT_TMP/ingotd.toml" <<'TOML'
[proxydhcp]
enabled = true
interface = "pxe0"
server_address = "10.99.0.1"
TOML
ingot_start --config "$IT_TMP/ingotd.toml" --log-level debug --boot-listen 10.99.0.1:0 --tftp-listen 10.99.0.1:69 \
  || { it_finish; }
HPORT="$(grep -m1 'event=boot.serving' "$INGOT_LOG" | grep -oE 'address=10\.99\.0\.1:[0-9]+' | cut -d: -f2)"
expect_true "ingotd's proxyDHCP is serving on pxe0" grep -q 'event=proxydhcp.serving' "$INGOT_LOG"

# The client: one exchange per line of output, as JSON.
cat > "$IT_TMP/client.py" <<'PY'
import json, socket, struct, sys, time
IFACE, SERVER = b"pxe1", "10.99.0.1"
MAC = bytes.fromhex("525400aa0001")
# SMBIOS UUID 8c9ab0e2-1d4f-4e3b-9a1b-0123456789ab as PXE sends it (first three fields little-endian)
GUID = bytes.fromhex("e2b09a8c4f1d3b4e9a1b0123456789ab")

def message(xid, mtype, opts):
    h = struct.pack(">BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4),
                    bytes(4), bytes(4), MAC + bytes(10), bytes(64), bytes(128))
    o = bytes([53, 1, mtype]) + b"".join(bytes([c, len(v)]) + v for c, v in opts)
    return h + bytes([99, 130, 83, 99]) + o + b"\xff"

def parse(b):
    r = {"op": b[0], "xid": struct.unpack(">I", b[4:8])[0], "yiaddr": socket.inet_ntoa(b[16:20]),
         "siaddr": socket.inet_ntoa(b[20:24]), "file": b[108:236].split(b"\0")[0].decode(),
         "mac": b[28:34].hex(), "options": {}}
    i = 240
    while i < len(b) and b[i] != 255:
        if b[i] == 0: i += 1; continue
        c, n = b[i], b[i + 1]
        r["options"][str(c)] = r["options"].get(str(c), "") + b[i + 2:i + 2 + n].hex()
        i += 2 + n
    return r

def exchange(name, mtype, opts, port=67, dest="255.255.255.255"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, IFACE)
    s.bind(("0.0.0.0" if port == 67 else "10.99.0.2", 68))
    s.settimeout(0.5)
    xid = int(time.time() * 1000) & 0xffffffff
    s.sendto(message(xid, mtype, opts), (dest, port))
    deadline, got = time.time() + 2, None
    while time.time() < deadline and got is None:
        try:
            b, _ = s.recvfrom(1500)
        except socket.timeout:
            continue
        if len(b) >= 240 and b[0] == 2 and struct.unpack(">I", b[4:8])[0] == xid:
            got = parse(b)
    s.close()
    print(json.dumps({"name": name, "reply": got}), flush=True)

arch = lambda a: (93, struct.pack(">H", a))
pxe = lambda a: (60, b"PXEClient:Arch:%05d:UNDI:002001" % a)
guid = (97, b"\0" + GUID)
exchange("bios", 1, [pxe(0), arch(0), (94, b"\x01\x02\x01"), guid])
exchange("uefi", 1, [pxe(7), arch(7), guid])
exchange("arm64", 1, [pxe(11), arch(11)])
exchange("ipxe", 1, [pxe(0), arch(0), (77, b"\x04iPXE"), (175, b"\xb1\x05\x01\x10\xec\x10\x00")])
exchange("http", 1, [(60, b"HTTPClient:Arch:00016:UNDI:003001"), arch(16)])
exchange("plain", 1, [(60, b"udhcp 1.36.1")])
exchange("ia32", 1, [pxe(6), arch(6)])
exchange("bootserver", 3, [pxe(0), arch(0), guid], port=4011, dest=SERVER)
PY
in_client /usr/bin/python3 "$IT_TMP/client.py" > "$IT_TMP/replies.jsonl" 2> "$IT_TMP/client.err" \
  || fail "the DHCP client ran" "$(tail -3 "$IT_TMP/client.err" | tr '\n' ' ')"
r() { jq -r "select(.name == \"$1\") | .reply${2:+ | $2}" < "$IT_TMP/replies.jsonl"; }

# Common to every answer: a reply, no address, this server's id, PXE vendor class.
for n in bios uefi arm64 ipxe http bootserver; do
  if [ "$(r $n)" = null ] || [ -z "$(r $n)" ]; then fail "$n: answered" "no reply"; continue; fi
  expect_eq "$n: answered, with no address (yiaddr 0.0.0.0: a proxy)" "$(r $n .yiaddr)" "0.0.0.0"
  expect_eq "$n: server id (option 54) is 10.99.0.1" "$(r $n '.options["54"]')" "0a630001"
done
expect_eq "bios: an OFFER (option 53 = 2)" "$(r bios '.options["53"]')" "02"
expect_eq "bios: first stage undionly.kpxe" "$(r bios .file)" "undionly.kpxe"
expect_eq "bios: over TFTP from next-server 10.99.0.1" "$(r bios .siaddr)" "10.99.0.1"
expect_eq "bios: vendor class PXEClient" "$(r bios '.options["60"]')" "$(printf PXEClient | od -An -tx1 | tr -d " \n")"
expect_eq "bios: PXE discovery control 8 (boot the named file)" "$(r bios '.options["43"]')" "060108ff"
expect_eq "bios: the client's GUID echoed (option 97)" "$(r bios '.options["97"]')" "00e2b09a8c4f1d3b4e9a1b0123456789ab"
expect_eq "uefi (arch 7): first stage ipxe.efi" "$(r uefi .file)" "ipxe.efi"
expect_eq "arm64 (arch 11): first stage ipxe-arm64.efi" "$(r arm64 .file)" "ipxe-arm64.efi"
expect_eq "iPXE (user class iPXE): the HTTP URL of boot.ipxe" "$(r ipxe .file)" "http://10.99.0.1:$HPORT/boot.ipxe"
expect_eq "UEFI HTTP boot (HTTPClient, arch 16): an HTTP URL of ipxe.efi" "$(r http .file)" "http://10.99.0.1:$HPORT/ipxe.efi"
expect_eq "UEFI HTTP boot: vendor class HTTPClient" "$(r http '.options["60"]')" "$(printf HTTPClient | od -An -tx1 | tr -d " \n")"
expect_eq "a DHCP client that is not a PXE client gets nothing" "$(r plain)" "null"
expect_eq "an architecture without a first stage (EFI IA32) gets nothing" "$(r ia32)" "null"
expect_eq "PXE boot server (port 4011): REQUEST gets an ACK (option 53 = 5)" "$(r bootserver '.options["53"]')" "05"
expect_eq "  ... naming the same first stage" "$(r bootserver .file)" "undionly.kpxe"

# The first stage named in the OFFER, from next-server over TFTP.
in_client curl -s -m 30 -o "$IT_TMP/stage1" "tftp://$(r bios .siaddr)/$(r bios .file)"
expect_true "the OFFER's first stage over TFTP from next-server is byte-identical" cmp -s "$ROOT/undionly.kpxe" "$IT_TMP/stage1"

# The machine was recorded as it asked.
req GET "/boot/v1/machines?mac=52:54:00:aa:00:01"
expect_eq "the PXE client shows up as a discovered machine" "$(jb '.machines[0].state')" "discovered"
expect_eq "  ... with its GUID as SMBIOS UUID" "$(jb '.machines[0].uuid')" "8c9ab0e2-1d4f-4e3b-9a1b-0123456789ab"
expect_true "  ... and an architecture from option 93" test -n "$(jb '.machines[0].arch')"
# What iPXE then fetches: that machine's own script (the holding script: no profile yet).
in_client curl -s -m 10 -o "$IT_TMP/script" "http://10.99.0.1:$HPORT/boot.ipxe?mac=52:54:00:aa:00:01"
expect_true "the boot.ipxe URL handed to iPXE answers the machine's holding script" \
  grep -q "has no boot profile yet" "$IT_TMP/script"
it_finish
