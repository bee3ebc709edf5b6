#!/usr/bin/env python3
"""Hostile captures: files built to break a capture tool. Deterministic
(no randomness without a fixed seed), standard library only.

    python3 captures/hostile/generate.py [OUT_DIR]     # default: this directory

Each file targets one way a reader, decoder or analyser can fail; the
expectations (no panic, no hang, the warning that must be given, a memory
bound) are in tests/cli/hostile_captures.rs and captures/hostile/README.md. The
million-flow capture is 70 MB, so it is not kept in the repository: the
test writes it itself (same layout as `million_flows` below, smaller here).
"""
import random
import struct
import sys
from pathlib import Path

ETH = bytes.fromhex("020000000002" "020000000001") + b"\x08\x00"


def pcap(records, snaplen=65535, link=1):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, link)
    for ts, data, orig in records:
        out += struct.pack("<IIII", ts, 0, len(data), orig if orig is not None else len(data)) + data
    return out


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(proto, payload, src=b"\x0a\x00\x00\x01", dst=b"\x0a\x00\x00\x02", ident=1):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", checksum(h)) + h[12:]
    return h + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport, dport, seq, ack, flags, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + payload


def write(out, name, data):
    (out / name).write_bytes(data)
    print(f"{name}: {len(data)} bytes")


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    ok_pkt = ETH + ipv4(17, udp(1000, 2000, b"hello"))

    # 1. A record claiming 4 GB of captured bytes, after one good packet.
    rec = pcap([(1, ok_pkt, None)])
    rec += struct.pack("<IIII", 2, 0, 0xFFFFFFFF, 0xFFFFFFFF) + ok_pkt
    write(out, "caplen-4g.pcap", rec)

    # 2. Snaplen 0 in the file header (libpcap writes it for "unlimited" at times).
    write(out, "snaplen-0.pcap", pcap([(1, ok_pkt, None), (2, ok_pkt, None)], snaplen=0))

    # 3. pcapng whose block lengths lie: an EPB whose trailing length differs
    #    from its leading one, then one claiming 200 MB.
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb_body = struct.pack("<HHI", 1, 0, 0)
    idb = struct.pack("<II", 1, 8 + len(idb_body) + 4) + idb_body + struct.pack("<I", 8 + len(idb_body) + 4)

    def epb(if_id, data, trailer=None):
        pad = (-len(data)) % 4
        body = struct.pack("<IIIII", if_id, 0, 1, len(data), len(data)) + data + b"\0" * pad
        n = 12 + len(body)
        return struct.pack("<II", 6, n) + body + struct.pack("<I", trailer if trailer is not None else n)

    good = epb(0, ok_pkt)
    lying = epb(0, ok_pkt, trailer=12345)
    huge = struct.pack("<II", 6, 200 * 1024 * 1024) + b"\0" * 64
    write(out, "pcapng-lying-lengths.pcapng", shb + idb + good + lying + huge)

    # 4. Packets on an interface that was never described.
    write(out, "pcapng-undescribed-interface.pcapng", shb + idb + good + epb(7, ok_pkt) + good)

    # 5. Tunnels nested a thousand deep: IPv4-in-IPv4 x 1000, and VXLAN x 300.
    inner = ipv4(17, udp(1000, 2000, b"x"))
    for _ in range(1000):
        inner = ipv4(4, inner)
    write(out, "nested-ipip-1000.pcap", pcap([(1, ETH + inner, None)]))
    frame = ETH + ipv4(17, udp(1000, 2000, b"x"))
    for _ in range(300):
        frame = ETH + ipv4(17, udp(40000, 4789, b"\x08\x00\x00\x00\x00\x00\x01\x00" + frame))
    write(out, "nested-vxlan-300.pcap", pcap([(1, frame, None)]))

    # 6. DNS compression loops: a name pointing at itself, two names
    #    pointing at each other, and a pointer past the end.
    def dns(body):
        return ETH + ipv4(17, udp(53, 40000, body))
    loop_self = b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + b"\xc0\x0c\x00\x01\x00\x01"
    loop_pair = (b"\x12\x35\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + b"\x01a\xc0\x12\x00\x01\x00\x01"
                 + b"\x01b\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x10\x00\x04\x0a\x00\x00\x01")
    past_end = b"\x12\x36\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00" + b"\xc3\xff\x00\x01\x00\x01"
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01"
    write(out, "dns-compression-loops.pcap", pcap([
        (1, ETH + ipv4(17, udp(40000, 53, q), src=b"\x0a\x00\x00\x02", dst=b"\x0a\x00\x00\x01"), None),
        (1, dns(loop_self), None), (2, dns(loop_pair), None), (3, dns(past_end), None)]))

    # 7. TLS records and handshake messages claiming 16 MB.
    syn = ETH + ipv4(6, tcp(40000, 443, 1000, 0, 0x02))
    synack = ETH + ipv4(6, tcp(443, 40000, 5000, 1001, 0x12), src=b"\x0a\x00\x00\x02", dst=b"\x0a\x00\x00\x01")
    hs16m = b"\x16\x03\x03\xff\xff" + b"\x01\xff\xff\xff" + b"\x03\x03" + b"\0" * 600
    rec16m = b"\x17\x03\x03\xff\xff" + b"\xaa" * 900
    write(out, "tls-claims-16mb.pcap", pcap([
        (1, syn, None), (1, synack, None),
        (2, ETH + ipv4(6, tcp(40000, 443, 1001, 5001, 0x18, hs16m)), None),
        (3, ETH + ipv4(6, tcp(40000, 443, 1001 + len(hs16m), 5001, 0x18, rec16m)), None)]))

    # 7b. A TLS stream with a lost segment followed by 300 more: more
    #     out-of-order data than the reassembly keeps.
    first = b"\x16\x03\x01\x3e\x80" + b"\x01" * 995
    recs = [(1, syn, None), (1, synack, None),
            (2, ETH + ipv4(6, tcp(40000, 443, 1001, 5001, 0x18, first)), None)]
    for k in range(2, 302):
        recs.append((2, ETH + ipv4(6, tcp(40000, 443, 1001 + 1000 * k, 5001, 0x18, b"\x02" * 1000)), None))
    write(out, "tls-gap-then-300-segments.pcap", pcap(recs))

    # 8. Time running backwards by years, and zero-length packets.
    write(out, "time-backwards.pcap", pcap([(2_000_000_000, ok_pkt, None), (1_000, ok_pkt, None),
                                           (3_000_000_000, ok_pkt, None), (5, ok_pkt, None)]))
    write(out, "zero-length-packets.pcap", pcap([(1, b"", 0), (2, b"", 1500), (3, ok_pkt, None), (4, b"", 0)]))

    # 9. A file of random bytes after a valid pcap header, and one with none.
    rnd = random.Random(4242)
    noise = bytes(rnd.getrandbits(8) for _ in range(64 * 1024))
    write(out, "random-after-header.pcap", pcap([])[:24] + noise)
    write(out, "random.bin", noise)

    # 10. Many distinct flows (the test generates a million; 20,000 here).
    write(out, "many-flows.pcap", million_flows(20_000))


def million_flows(n):
    """n SYNs, each from its own address and port: n flows, none closed."""
    recs = []
    for i in range(n):
        src = struct.pack("!I", 0x0A000000 + (i >> 8) + 1)
        recs.append((1 + i // 100000, ETH + ipv4(6, tcp(1024 + (i & 0xFF), 80, i, 0, 0x02), src=src), None))
    return pcap(recs)


if __name__ == "__main__":
    main()
