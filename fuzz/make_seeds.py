#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the captures in captures/ and
../shared/corpus/ (read with tshark). Writes fuzz/corpus/<target>/ (gitignored).

    python3 fuzz/make_seeds.py
"""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus"
MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")


def put(target, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def captures():
    for base in (ROOT / "captures", ROOT.parent / "shared" / "corpus"):
        if base.exists():
            for f in sorted(base.rglob("*")):
                if f.is_file() and f.open("rb").read(4) in MAGICS:
                    yield f


def tshark(f, *args):
    r = subprocess.run(["tshark", "-n", "-r", str(f), "-d", "udp.port==8472,vxlan", *args],
                       capture_output=True, text=True, timeout=120)
    return r.stdout.splitlines()


def main():
    n = {"capture": 0, "scrub": 0, "decode": 0, "dns": 0, "tls_stream": 0}
    for f in captures():
        data = f.read_bytes()
        if len(data) <= 256 * 1024:
            put("capture", data)
            put("scrub", data)
            n["capture"] += 1
            n["scrub"] += 1
        # Packets with their link type, for the decoder.
        for line in tshark(f, "-c", "300", "-T", "ek", "-x"):
            if '"frame_raw"' not in line:
                continue
            try:
                o = json.loads(line)
            except ValueError:
                continue
            layers = o.get("layers", {})
            fr = layers.get("frame_raw")
            if isinstance(fr, list):
                fr = fr[0]
            if not fr:
                continue
            pkt = bytes.fromhex(fr)
            enc = layers.get("frame", {}).get("frame_frame_encap_type")
            try:
                enc = int(enc)
            except (TypeError, ValueError):
                enc = 1
            # wiretap encapsulation -> index into LINKS of fuzz_targets/decode.rs (Ethernet,
            # raw IP, SLL, SLL2, NULL, LOOP, IPv4, IPv6, NFLOG)
            idx = {1: 0, 7: 1, 25: 2, 210: 3, 15: 4, 129: 6, 130: 7, 141: 8}.get(enc, 0)
            put("decode", bytes([idx]) + pkt)
            n["decode"] += 1
        for line in tshark(f, "-Y", "dns && udp", "-T", "fields", "-e", "udp.payload", "-c", "2000"):
            h = line.strip().split(",")[0]
            if h:
                put("dns", bytes.fromhex(h))
                n["dns"] += 1
        if "tls" in f.name or "https" in f.name:
            segs = tshark(f, "-Y", "tcp.len > 0", "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.payload", "-c", "60")
            if segs:
                out = bytearray([0])
                for line in segs:
                    parts = line.split("\t")
                    if len(parts) < 2 or not parts[1]:
                        continue
                    p = bytes.fromhex(parts[1])[:4095]
                    out += bytes([len(p) >> 4, len(p) & 0x0F]) + p
                put("tls_stream", bytes(out))
                n["tls_stream"] += 1
    print(n)


if __name__ == "__main__":
    sys.exit(main())
