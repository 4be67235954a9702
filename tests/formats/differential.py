#!/usr/bin/env python3
"""Differential test: ingot-img against qemu-img, on a corpus this script generates.

For every file it compares our verdict (`ingot-img info --output json`: format and virtual size, or a
refusal naming a rule) with `qemu-img info --output=json` run without -f (qemu's probe) and with -f
<our format>, and with whether qemu would follow a reference to another file (backing file, data
file, VMDK extent elsewhere). The rules it enforces:

  R1  an image we accept is one qemu detects as the same format (ISO and fixed VHD excepted: qemu's
      probe calls both raw; then `qemu-img info -f <ours>` must agree) with the same virtual size;
  R2  an image we accept is one qemu opens without following a reference to another file;
  R3  nothing qemu detects as a non-raw format is accepted by us as raw (a special case of R1);
  R4  `ingot-img info`, `ingot-img check` and `ingot-img check -` (the streaming inspector uploads
      use) give the same verdict (the streaming inspector may defer, exit 6, to the stored file).

Refusals are always allowed (we are stricter than qemu by design); they are counted by rule.

The corpus: every format qemu-img can create (and the ones it only reads, crafted by hand), variants
(subformats, compression, backing files, descriptor spellings), header fields at their limits,
polyglots built from pairs of formats, truncations, and seeded byte mutations.

  differential.py --ingot-img PATH [--long] [--seed N] [--report FILE]
      --long (or INGOT_DIFF_LONG=1): many more mutations; the default is the bounded ctest sample.
Exit status: 0 when no rule is broken, 1 otherwise.
"""
import argparse
import collections
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

MiB = 1 << 20


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def sh(cmd):
    r = run(cmd, shell=True)
    return r.returncode == 0


class Corpus:
    def __init__(self, d, rng):
        self.d = d
        self.rng = rng
        self.files = []  # (name, path, origin)

    def path(self, name):
        return os.path.join(self.d, name)

    def add(self, name, data=None, origin=""):
        p = self.path(name)
        if data is not None:
            with open(p, "wb") as f:
                f.write(data)
        if os.path.exists(p):
            self.files.append((name, p, origin))
        return p

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()


def qemu_create(c, name, fmt, opts="", size="16M", extra=""):
    p = c.path(name)
    o = ("-o " + opts) if opts else ""
    if not sh(f"qemu-img create -q -f {fmt} {o} {extra} {p} {size}"):
        return None
    return p


def fill(p, fmt):
    # Data at a few places so that tables and data clusters exist.
    sh(f"qemu-io -f {fmt} -c 'write -P 0x5a 0 64k' -c 'write -P 0xa5 5M 64k' {p}")


def build_corpus(c, long_run):
    rng = c.rng
    # --- images qemu-img creates -------------------------------------------------------------
    raw = c.path("base.raw")
    sh(f"qemu-img create -q -f raw {raw} 16M")
    fill(raw, "raw")
    c.add("base.raw", origin="qemu-img create")
    made = {}
    variants = [
        ("qcow2_v3.qcow2", "qcow2", "cluster_size=65536", False),
        ("qcow2_v2.qcow2", "qcow2", "compat=0.10", False),
        ("qcow2_4k.qcow2", "qcow2", "cluster_size=4096", False),
        ("qcow2_zlib.qcow2", "qcow2", "", True),
        ("qcow2_zstd.qcow2", "qcow2", "compression_type=zstd", True),
        ("qcow2_extl2.qcow2", "qcow2", "extended_l2=on", False),
        ("qcow2_lazy.qcow2", "qcow2", "lazy_refcounts=on", False),
        ("qcow2_rc1.qcow2", "qcow2", "refcount_bits=1", False),
        ("qcow.qcow", "qcow", "", False),
        ("qed.qed", "qed", "", False),
        ("sparse.vmdk", "vmdk", "", False),
        ("stream.vmdk", "vmdk", "subformat=streamOptimized", False),
        ("twogb.vmdk", "vmdk", "subformat=twoGbMaxExtentSparse", False),
        ("dyn.vhd", "vpc", "subformat=dynamic", False),
        ("fixed.vhd", "vpc", "subformat=fixed", False),
        ("dyn.vhdx", "vhdx", "", False),
        ("fixed.vhdx", "vhdx", "subformat=fixed", False),
        ("dyn.vdi", "vdi", "", False),
        ("static.vdi", "vdi", "static=on", False),
        ("p.parallels", "parallels", "", False),
    ]
    for name, fmt, opts, compress in variants:
        p = c.path(name)
        o = ("-o " + opts) if opts else ""
        if sh(f"qemu-img convert -q -f raw -O {fmt} {o} {'-c' if compress else ''} {raw} {p}"):
            c.add(name, origin=f"qemu-img convert -O {fmt} {opts}{' -c' if compress else ''}")
            made[name] = fmt
    # Flat VMDK: a descriptor naming an extent file.
    if sh(f"qemu-img create -q -f vmdk -o subformat=monolithicFlat {c.path('flat.vmdk')} 1M"):
        c.add("flat.vmdk", origin="qemu-img create vmdk monolithicFlat (descriptor)")
    # LUKS.
    if sh(f"qemu-img create -q --object secret,id=s0,data=x -f luks -o key-secret=s0,iter-time=10 "
          f"{c.path('a.luks')} 4M"):
        c.add("a.luks", origin="qemu-img create luks")
    # Backing files, for every format that can have one.
    for name, fmt in [("qcow2_back.qcow2", "qcow2"), ("qed_back.qed", "qed"),
                      ("qcow_back.qcow", "qcow"), ("vmdk_back.vmdk", "vmdk")]:
        if sh(f"qemu-img create -q -f {fmt} -b {raw} -F raw {c.path(name)} 16M"):
            c.add(name, origin=f"qemu-img create -f {fmt} -b base.raw")
    if sh(f"qemu-img create -q -f qcow2 -o data_file={c.path('ext.data')} {c.path('datafile.qcow2')} 16M"):
        c.add("datafile.qcow2", origin="qemu-img create qcow2 data_file=")
    # ISO.
    isodir = c.path("isotree")
    os.makedirs(isodir, exist_ok=True)
    with open(os.path.join(isodir, "a"), "w") as f:
        f.write("hello\n")
    if sh(f"genisoimage -quiet -o {c.path('plain.iso')} {isodir}"):
        c.add("plain.iso", origin="genisoimage")

    # --- formats qemu reads but does not create, crafted ---------------------------------------
    bochs = bytearray(64 * 1024)
    bochs[0:22] = b"Bochs Virtual HD Image"
    bochs[32:39] = b"Redolog"
    bochs[48:55] = b"Growing"
    struct.pack_into("<IIIII", bochs, 64, 0x00020000, 512, 512, 4, 4096)
    struct.pack_into("<Q", bochs, 88, 1 * MiB)
    c.add("crafted.bochs", bytes(bochs), "crafted bochs")
    magic = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
    cloop = bytearray(8192)
    cloop[0:len(magic)] = magic
    struct.pack_into(">II", cloop, 128, 65536, 16)
    c.add("crafted.cloop", bytes(cloop), "crafted cloop")
    dmg = bytearray(64 * 1024)
    dmg[-512:-504] = b"koly" + struct.pack(">I", 4)
    c.add("crafted.dmg", bytes(dmg), "crafted dmg trailer")
    cowd = bytearray(64 * 1024)
    cowd[0:4] = b"COWD"
    struct.pack_into("<IIIIIII", cowd, 4, 1, 0, 2048, 16, 1, 1, 64)
    cowd[32:50] = b"/etc/parent.vmdk\x00\x00"
    c.add("crafted_child.cowd", bytes(cowd), "crafted VMDK3 COWD with parent hint")
    luks2 = bytearray(16384)
    luks2[0:8] = b"LUKS\xba\xbe\x00\x02"
    c.add("crafted.luks2", bytes(luks2), "crafted LUKS2 header")

    # --- VMDK descriptor spellings ------------------------------------------------------------
    ext = 'RW 2048 FLAT "/etc/passwd" 0\n'
    spellings = {
        "canonical": "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n" + ext,
        "comment": "# whatever\nversion=1\n" + ext,
        "nocomment": "version=2\n" + ext,
        "crlf": "#Disk descriptorfile\r\nversion=1\r\n" + ext.replace("\n", "\r\n"),
        "blanks": "   \n  \r\nversion=3\n" + ext,
        "bare_newline": "\nversion=1\n" + ext,  # qemu: not a descriptor
        "version4": "version=4\n" + ext,  # qemu: not a descriptor
        "oslo_createtype": "hello\ncreateType=\"vmfs\"\n" + ext,
        "upper": "VERSION=1\n" + ext,
    }
    for k, v in spellings.items():
        c.add(f"desc_{k}.vmdk", v.encode(), f"VMDK descriptor spelling {k}")
        c.add(f"desc_{k}_padded.vmdk", v.encode() + bytes(1 * MiB), f"VMDK descriptor {k}, padded to 1 MiB")

    # --- header fields at their limits ---------------------------------------------------------
    q = bytearray(c.read("qcow2_v3.qcow2"))
    def qcow2_variant(name, off, fmt, value):
        b = bytearray(q)
        struct.pack_into(fmt, b, off, value)
        c.add(name, bytes(b), f"qcow2 field at {off} = {value}")
    for v in (0, 1, 4, 0xFFFFFFFF):
        qcow2_variant(f"qcow2_version_{v}.qcow2", 4, ">I", v)
    for v in (8, 9, 21, 22):
        qcow2_variant(f"qcow2_cluster_bits_{v}.qcow2", 20, ">I", v)
    for v in (0, 1 << 55, (1 << 63) - 1):
        qcow2_variant(f"qcow2_size_{v}.qcow2", 24, ">Q", v)
    for v in (0, 1, 1 << 25):
        qcow2_variant(f"qcow2_l1_size_{v}.qcow2", 36, ">I", v)
    for v in (0, 1 << 20):
        qcow2_variant(f"qcow2_rtc_{v}.qcow2", 56, ">I", v)
    qcow2_variant("qcow2_crypt.qcow2", 32, ">I", 1)
    qcow2_variant("qcow2_incompat.qcow2", 72, ">Q", 1 << 40)
    qcow2_variant("qcow2_l1_on_rt.qcow2", 40, ">Q", struct.unpack_from(">Q", q, 48)[0])
    v = bytearray(c.read("dyn.vdi"))
    for val in (0, 1 << 60):
        b = bytearray(v)
        struct.pack_into("<Q", b, 368, val)  # disk size
        c.add(f"vdi_size_{val}.vdi", bytes(b), f"VDI disk size {val}")
    b = bytearray(v)
    struct.pack_into("<I", b, 0x184, struct.unpack_from("<I", b, 0x184)[0] + (1 << 30))  # data offset
    c.add("vdi_data_past_eof.vdi", bytes(b), "VDI data offset past EOF")

    # --- polyglots from pairs -------------------------------------------------------------------
    heads = {n: c.read(n) for n in ["qcow2_v3.qcow2", "sparse.vmdk", "dyn.vhd", "dyn.vhdx",
                                     "dyn.vdi", "qed.qed", "qcow.qcow", "p.parallels"]
             if os.path.exists(c.path(n))}
    tails = {n: c.read(n)[-512:] for n in ["fixed.vhd", "crafted.dmg"]}
    names = sorted(heads)
    for a in names:
        for b in names:
            if a == b:
                continue
            # A's first 512 bytes over B.
            data = bytearray(heads[b])
            data[0:512] = heads[a][0:512]
            c.add(f"poly_{a}_over_{b}", bytes(data), f"{a} head over {b}")
        for t, tail in tails.items():
            c.add(f"poly_{a}_tail_{t}", heads[a] + tail, f"{a} with a {t} trailer appended")
        data = bytearray(heads[a])
        data[446 + 4] = 0x83
        struct.pack_into("<II", data, 446 + 8, 2048, 2048)
        data[510:512] = b"\x55\xaa"
        c.add(f"poly_{a}_mbr", bytes(data), f"{a} with an MBR partition entry")
        data = bytearray(heads[a])
        data[512:520] = b"EFI PART"
        c.add(f"poly_{a}_gpt", bytes(data), f"{a} with a GPT header at LBA 1")
    if os.path.exists(c.path("plain.iso")):
        iso = c.read("plain.iso")
        for a in names:
            for off in (0, 4096):
                data = bytearray(iso)
                data[off:off + 512] = heads[a][0:512]
                c.add(f"poly_iso_{a}_at{off}", bytes(data), f"ISO with {a} header at {off}")
    # A raw disk with a qcow2 at a partition start.
    data = bytearray(4 * MiB)
    data[446 + 4] = 0x83
    struct.pack_into("<II", data, 446 + 8, 2048, 4096)
    data[510:512] = b"\x55\xaa"
    data[MiB:MiB + 512] = heads["qcow2_v3.qcow2"][0:512]
    c.add("raw_hiding_qcow2", bytes(data), "MBR disk whose partition 1 starts with a qcow2 header")

    # --- truncations ------------------------------------------------------------------------------
    for n in sorted(heads) + ["stream.vmdk", "fixed.vhd"]:
        if not os.path.exists(c.path(n)):
            continue
        full = c.read(n)
        for cut in (4, 100, 511, 4096, len(full) // 2, len(full) - 1):
            if 0 < cut < len(full):
                c.add(f"trunc_{n}_{cut}", full[:cut], f"{n} truncated to {cut} bytes")

    # --- seeded byte mutations ------------------------------------------------------------------
    per = 40 if long_run else 4
    for n in sorted(heads) + ["stream.vmdk", "fixed.vhd", "plain.iso", "qcow2_zlib.qcow2"]:
        if not os.path.exists(c.path(n)):
            continue
        full = c.read(n)
        for i in range(per):
            data = bytearray(full)
            for _ in range(rng.randint(1, 8)):
                region = rng.choice([512, 4096, 65536, 1 << 20])
                at = rng.randrange(min(region, len(data)))
                data[at] = rng.randrange(256)
            c.add(f"mut_{n}_{i}", bytes(data), f"{n} with seeded byte mutations")


def ingot_verdict(ingot_img, p):
    r = run([ingot_img, "info", "--output", "json", p])
    if r.returncode == 0:
        try:
            j = json.loads(r.stdout)
            return {"ok": True, "format": j["format"], "size": j["virtual-size"]}
        except Exception as e:  # noqa: BLE001
            return {"ok": False, "rule": "harness.bad_json", "msg": str(e), "exit": r.returncode}
    msg = r.stderr.decode(errors="replace").strip()
    # "ingot-img: PATH: refused: rule: detail"
    tail = msg.split(": ", 3)[-1] if msg.count(": ") >= 3 else msg
    rule = tail.split(":", 1)[0].strip() if r.returncode == 2 else "malformed"
    return {"ok": False, "rule": rule, "msg": tail, "exit": r.returncode}


def entry_points_agree(ingot_img, p, ours):
    """`ingot-img check FILE` and `ingot-img check -` (the streaming inspector, as uploads use)
    must reach the verdict `info` reached. Returns None when they agree, else why not."""
    check = run([ingot_img, "check", p])
    with open(p, "rb") as f:
        stream = run([ingot_img, "check", "-"], stdin=f)
    want = 0 if ours["ok"] else ours["exit"]
    if check.returncode != want:
        return f"check exit {check.returncode}, info {want}"
    if stream.returncode == 6:  # the streaming inspector defers to the stored file
        return None
    if stream.returncode != want:
        return f"check - exit {stream.returncode}, info {want}: {stream.stderr.decode(errors='replace').strip()}"
    if not ours["ok"]:
        a = check.stderr.decode(errors="replace").split(": ", 3)[-1].strip()
        b = stream.stderr.decode(errors="replace").split(": ", 3)[-1].strip()
        if a != b:
            return f"refusals differ: check '{a}', check - '{b}'"
    elif f"safe {ours['format']} image, virtual size {ours['size']} " not in stream.stdout.decode():
        return f"check - says {stream.stdout.decode().strip()}"
    return None


def qemu_info(p, fmt=None):
    cmd = ["qemu-img", "info", "--output=json", "-U"]
    if fmt:
        cmd += ["-f", fmt]
    r = run(cmd + [p], timeout=60)
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except Exception:  # noqa: BLE001
        return None


def follows_reference(info, p):
    """True when qemu, opening this file as `info` says, would read another file."""
    if info is None:
        return False
    if info.get("backing-filename") or info.get("full-backing-filename"):
        return True
    data = (info.get("format-specific") or {}).get("data") or {}
    if data.get("data-file"):
        return True
    for e in data.get("extents", []) or []:
        fn = e.get("filename")
        if fn and os.path.realpath(fn) != os.path.realpath(p):
            return True
    return False


QEMU_NAMES = {"raw", "qcow2", "vmdk", "vpc", "vhdx", "vdi", "qcow", "qed", "parallels", "bochs",
              "cloop", "dmg", "luks"}


def judge(ours, probe, forced, p):
    """Returns (class, reason)."""
    if not ours["ok"]:
        return "refused", ours["rule"]
    fmt, size = ours["format"], ours["size"]
    if follows_reference(probe, p) or follows_reference(forced, p):
        return "VIOLATION", f"R2: accepted as {fmt}, but qemu follows a reference to another file"
    if probe is None:
        # qemu cannot open what we accept: only acceptable for raw-like ISO content qemu would
        # open as raw anyway; report it.
        return "VIOLATION", f"R1: accepted as {fmt}, qemu cannot open it"
    qfmt = probe.get("format")
    if qfmt == fmt and probe.get("virtual-size") == size:
        return "agree", "same format and size"
    if fmt == "raw" and qfmt == "raw" and probe.get("virtual-size") == (size + 511) // 512 * 512:
        return "agree-known", ("raw: qemu rounds a raw file's size up to whole 512-byte sectors "
                               "(the tail reads as zeros); same format")
    if fmt == "iso" and qfmt == "raw" and probe.get("virtual-size") == size:
        return "agree-known", "ISO: qemu's probe calls it raw (it is a plain disk); sizes agree"
    if fmt == "vpc" and qfmt == "raw" and forced and forced.get("virtual-size") == size:
        return "agree-known", "fixed VHD: qemu probes only offset 0 (raw); -f vpc agrees on size"
    if qfmt != fmt:
        return "VIOLATION", f"R1/R3: we say {fmt}, qemu's probe says {qfmt}"
    return "VIOLATION", f"R1: size {size}, qemu says {probe.get('virtual-size')}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot-img", required=True)
    ap.add_argument("--long", action="store_true", default=os.environ.get("INGOT_DIFF_LONG") == "1")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("INGOT_DIFF_SEED", "8")))
    ap.add_argument("--report")
    ap.add_argument("--keep", help="keep the corpus in this directory")
    a = ap.parse_args()
    if shutil.which("qemu-img") is None:
        print("qemu-img not found: skipping")
        return 77
    d = a.keep or tempfile.mkdtemp(prefix="ingot-diff-")
    os.makedirs(d, exist_ok=True)
    try:
        c = Corpus(d, random.Random(a.seed))
        build_corpus(c, a.long)
        counts = collections.Counter()
        rules = collections.Counter()
        known = collections.Counter()
        follow_refused = 0
        qemu_opens_refused = 0
        violations = []
        for name, p, origin in c.files:
            ours = ingot_verdict(a.ingot_img, p)
            probe = qemu_info(p)
            forced = qemu_info(p, ours["format"]) if ours["ok"] and ours["format"] in QEMU_NAMES else None
            cls, reason = judge(ours, probe, forced, p)
            counts[cls] += 1
            split = entry_points_agree(a.ingot_img, p, ours)
            if split:
                violations.append((name, origin, "R4: entry points disagree: " + split, ""))
            else:
                counts["entry-points-agree"] += 1
            if cls == "refused":
                rules[reason] += 1
                if follows_reference(probe, p):
                    follow_refused += 1
                if probe is not None:
                    qemu_opens_refused += 1
            elif cls == "agree-known":
                known[reason] += 1
            elif cls == "VIOLATION":
                violations.append((name, origin, reason, ours.get("msg", "")))
        lines = []
        lines.append(f"files: {len(c.files)} (seed {a.seed}, {'long' if a.long else 'sample'} run)")
        lines.append(f"agreements (same format and virtual size as qemu's probe): {counts['agree']}")
        for r, n in sorted(known.items()):
            lines.append(f"agreements with a known, right difference: {n}  ({r})")
        lines.append(f"refused: {counts['refused']}  (of which qemu would follow a reference to another "
                     f"file: {follow_refused}; qemu opens without -f: {qemu_opens_refused})")
        for r, n in sorted(rules.items(), key=lambda x: (-x[1], x[0])):
            lines.append(f"  {r}: {n}")
        lines.append(f"info, check and check - (streaming inspector) agree: {counts['entry-points-agree']}")
        lines.append(f"violations: {len(violations)}")
        for v in violations:
            lines.append(f"  {v[0]} ({v[1]}): {v[2]} {v[3]}")
        text = "\n".join(lines)
        print(text)
        if a.report:
            with open(a.report, "w") as f:
                f.write(text + "\n")
        return 1 if violations else 0
    finally:
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
