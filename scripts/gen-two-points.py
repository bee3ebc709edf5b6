#!/usr/bin/env python3
"""Write a capture in which every packet of an Ethernet pcap was seen at two
capture points, as `tcpdump -i any` records it: each packet twice, as Linux
cooked v2 (SLL2) frames on ifindex 2 and then ifindex 3, 5 microseconds later.
Exercises the copy detector's table at scale (the mixed benchmark captures
have one capture point, where the detector only keeps a small ring).

    python3 scripts/gen-two-points.py IN.pcap OUT.pcap [MAX_PACKETS]
"""
import struct, sys

src, dst = sys.argv[1], sys.argv[2]
limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
with open(src, "rb") as f, open(dst, "wb") as out:
    magic, vmaj, vmin, _, _, snap, linktype = struct.unpack("<IHHiIII", f.read(24))
    assert magic in (0xA1B2C3D4, 0xA1B23C4D) and linktype == 1, "a little-endian Ethernet pcap"
    nanos = magic == 0xA1B23C4D
    out.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, 276))
    n = 0
    while limit is None or n < limit:
        h = f.read(16)
        if len(h) < 16:
            break
        sec, frac, caplen, wirelen = struct.unpack("<IIII", h)
        pkt = f.read(caplen)
        if caplen < 14:
            continue
        ethertype = pkt[12:14]
        body = pkt[14:]
        for i, ifindex in enumerate((2, 3)):
            sll2 = ethertype + b"\0\0" + struct.pack(">IHBB", ifindex, 1, 4 if i else 0, 6) + pkt[6:12] + b"\0\0"
            frac2 = frac + i * (5000 if nanos else 5)
            s2 = sec + frac2 // (10**9 if nanos else 10**6)
            frac2 %= 10**9 if nanos else 10**6
            rec = sll2 + body
            out.write(struct.pack("<IIII", s2, frac2, len(rec), wirelen - 14 + 20))
            out.write(rec)
        n += 1
print(f"{n} packets, each at two points: {dst}")
