#!/usr/bin/env python3
"""Generate SYNTHETIC overlay-tunnel captures around REAL inner traffic.

    python3 captures/synth/gen_tunnels.py                 # regenerate everything
    python3 captures/synth/gen_tunnels.py --input X.pcap  # wrap another capture
    python3 captures/synth/gen_tunnels.py --only gre-teb --only ipip-4in4

Why synthetic: the kernel these fixtures were made on has no Geneve, IP-in-IP
or WireGuard devices, so these encapsulations cannot be captured for real
there.  Instead every *inner* packet comes from a real capture (by default
captures/synth/inner-http.pcap: two network namespaces on a veth pair,
python3 http.server + curl + a tiny UDP DNS responder, captured with tcpdump)
and this script builds the *outer* headers around it: outer Ethernet between
two "nodes" (KVM style 52:54:00:.. MACs, 192.168.122.11/.12 or
fd12:3456:789a:1::11/12), outer IPv4 with valid header checksums and a
per-destination IP ID counter, UDP with correct length and checksum, and the
tunnel header itself.

Outer-header choices (mirroring what the Linux drivers do by default):
  * DF is set on outer IPv4 for Geneve, IPIP and GRE (OVS/OVN geneve df_default,
    ip_tunnel pmtudisc).  It is CLEAR for VXLAN (measured on this kernel: a
    default `ip link add type vxlan` sends DF=0) and for WireGuard (wg passes
    df=0 to udp_tunnel_xmit_skb).
  * ECN bits of the inner TOS are copied to the outer TOS, TTL/hop limit 64.
  * UDP source port = hash of the inner flow in 32768..60999 (udp_flow_src_port).
  * UDP checksums are computed (mandatory over IPv6; Linux vxlan/geneve also
    compute them by default nowadays).
  * Inner traffic is wrapped unmodified, except for the *-6in4/6in6 files where
    the inner IPv4 packet is rebuilt as IPv6 (addresses mapped to
    fd00::a.b.c.d in fd00::/64, TCP/UDP checksums recomputed, ICMP echo mapped
    to ICMPv6 echo; fragments and other ICMP are dropped).

Output: classic pcap, microsecond timestamps, Ethernet link type, written to
the output directory (default: the directory of this script).  Timestamps are
derived from the input's; all pseudo-random bytes (WireGuard ciphertext,
indexes, ephemeral keys, IP IDs) come from random.Random seeded with a fixed
string, so re-running gives byte-identical files.

Input reader (stdlib only): classic pcap, either byte order, micro- or
nanosecond; link types Ethernet (1, 802.1Q/QinQ tags stripped), Linux SLL (113),
SLL2 (276), raw IP (12, 14, 101), IPv4 (228), IPv6 (229), BSD null/loop (0, 108).
pcapng is not read: convert with `editcap -F pcap in.pcapng out.pcap`.
Non-IP frames and truncated packets (caplen < IP total length) are skipped.

Verification (see README.md):
    tshark -r F -q -z io,phs -d udp.port==8472,vxlan -d udp.port==51871,wg
    tshark -r F -V -d udp.port==8472,vxlan -d udp.port==51871,wg \\
        | grep -i -E 'malformed|checksum.*bad|expert'
"""

import argparse
import os
import random
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_INPUTS = [os.path.join(HERE, "inner-http.pcap")]
SEED = "capsift-gen-tunnels-v1"

ETH_IPV4, ETH_IPV6, ETH_VLAN, ETH_QINQ, ETH_TEB = 0x0800, 0x86DD, 0x8100, 0x88A8, 0x6558

# --------------------------------------------------------------------------
# checksums and address helpers


def csum(data):
    """RFC 1071 Internet checksum."""
    if len(data) & 1:
        data = data + b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def l4_csum(src, dst, proto, seg):
    """TCP/UDP/ICMPv6 checksum with the v4 or v6 pseudo-header (seg has csum=0)."""
    if len(src) == 4:
        ph = src + dst + struct.pack("!BBH", 0, proto, len(seg))
    else:
        ph = src + dst + struct.pack("!IxxxB", len(seg), proto)
    c = csum(ph + seg)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return c


def ip4(s):
    return bytes(int(x) for x in s.split("."))


def ip6(s):
    import ipaddress
    return ipaddress.IPv6Address(s).packed


def mac(s):
    return bytes.fromhex(s.replace(":", ""))


V6_PREFIX = ip6("fd00::")[:12]  # fd00::/64, IPv4 in the low 32 bits


def v4_to_v6_addr(a):
    return V6_PREFIX + a


# --------------------------------------------------------------------------
# pcap reading


class Packet:
    __slots__ = ("ts", "ethertype", "l3", "src_mac", "dst_mac")

    def __init__(self, ts, ethertype, l3, src_mac=None, dst_mac=None):
        self.ts = ts  # integer microseconds since the epoch
        self.ethertype = ethertype
        self.l3 = l3
        self.src_mac = src_mac
        self.dst_mac = dst_mac

    # flow key: (src, dst, proto, sport, dport) of the inner IP packet
    def flow(self):
        b = self.l3
        if self.ethertype == ETH_IPV4:
            ihl = (b[0] & 15) * 4
            proto = b[9]
            src, dst = b[12:16], b[16:20]
            frag = struct.unpack("!H", b[6:8])[0] & 0x3FFF
            l4 = b[ihl:] if not frag else b""
        else:
            proto = b[6]
            src, dst = b[8:24], b[24:40]
            l4 = b[40:]
        sp = dp = 0
        if proto in (6, 17) and len(l4) >= 4:
            sp, dp = struct.unpack("!HH", l4[:4])
        return src, dst, proto, sp, dp

    def src(self):
        return self.l3[12:16] if self.ethertype == ETH_IPV4 else self.l3[8:24]

    def dst(self):
        return self.l3[16:20] if self.ethertype == ETH_IPV4 else self.l3[24:40]

    def tos(self):
        if self.ethertype == ETH_IPV4:
            return self.l3[1]
        return (struct.unpack("!I", self.l3[:4])[0] >> 20) & 0xFF

    def df(self):
        return self.ethertype == ETH_IPV4 and bool(self.l3[6] & 0x40)


def _trim_ip(ethertype, l3):
    """Cut link-layer padding; return None if not IP or truncated."""
    if ethertype == ETH_IPV4:
        if len(l3) < 20 or l3[0] >> 4 != 4:
            return None
        tot = struct.unpack("!H", l3[2:4])[0]
    elif ethertype == ETH_IPV6:
        if len(l3) < 40 or l3[0] >> 4 != 6:
            return None
        tot = 40 + struct.unpack("!H", l3[4:6])[0]
    else:
        return None
    if tot > len(l3):
        return None
    return l3[:tot]


def _ethertype_from_version(b):
    if not b:
        return None
    return {4: ETH_IPV4, 6: ETH_IPV6}.get(b[0] >> 4)


def parse_link(linktype, frame, endian):
    """-> (ethertype, l3, src_mac, dst_mac) or None."""
    src_mac = dst_mac = None
    if linktype == 1:  # Ethernet
        if len(frame) < 14:
            return None
        dst_mac, src_mac = frame[0:6], frame[6:12]
        et = struct.unpack("!H", frame[12:14])[0]
        off = 14
        while et in (ETH_VLAN, ETH_QINQ, 0x9100) and len(frame) >= off + 4:
            et = struct.unpack("!H", frame[off + 2:off + 4])[0]
            off += 4
        l3 = frame[off:]
    elif linktype == 113:  # Linux cooked v1
        if len(frame) < 16:
            return None
        et = struct.unpack("!H", frame[14:16])[0]
        alen = struct.unpack("!H", frame[4:6])[0]
        if alen == 6:
            src_mac = frame[6:12]
        l3 = frame[16:]
    elif linktype == 276:  # Linux cooked v2
        if len(frame) < 20:
            return None
        et = struct.unpack("!H", frame[0:2])[0]
        if frame[11] == 6:
            src_mac = frame[12:18]
        l3 = frame[20:]
    elif linktype in (12, 14, 101):  # raw IP
        l3 = frame
        et = _ethertype_from_version(l3)
    elif linktype == 228:
        l3, et = frame, ETH_IPV4
    elif linktype == 229:
        l3, et = frame, ETH_IPV6
    elif linktype in (0, 108):  # BSD loopback: 4-byte AF (host order / network order)
        l3 = frame[4:]
        et = _ethertype_from_version(l3)
    else:
        raise SystemExit("unsupported pcap link type %d" % linktype)
    l3 = _trim_ip(et, l3)
    if l3 is None:
        return None
    return et, l3, src_mac, dst_mac


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        e, nano = "<", False
    elif magic == b"\xa1\xb2\xc3\xd4":
        e, nano = ">", False
    elif magic == b"\x4d\x3c\xb2\xa1":
        e, nano = "<", True
    elif magic == b"\xa1\xb2\x3c\x4d":
        e, nano = ">", True
    elif magic == b"\x0a\x0d\x0d\x0a":
        raise SystemExit("%s is pcapng; convert: editcap -F pcap %s out.pcap" % (path, path))
    else:
        raise SystemExit("%s: not a pcap file" % path)
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    off, out, skipped = 24, [], 0
    rec = struct.Struct(e + "IIII")
    while off + 16 <= len(data):
        sec, frac, caplen, _origlen = rec.unpack_from(data, off)
        off += 16
        frame = data[off:off + caplen]
        off += caplen
        if len(frame) < caplen:
            break
        ts = sec * 1000000 + (frac // 1000 if nano else frac)
        parsed = parse_link(linktype, frame, e)
        if parsed is None:
            skipped += 1
            continue
        out.append(Packet(ts, *parsed))
    if skipped:
        print("  %s: skipped %d non-IP/truncated packets" % (os.path.basename(path), skipped),
              file=sys.stderr)
    return out


def load_inputs(paths):
    """Concatenate inputs; later files are shifted to start 1 s after the previous end."""
    pkts = []
    for p in paths:
        cur = read_pcap(p)
        if not cur:
            continue
        if pkts:
            shift = pkts[-1].ts + 1000000 - cur[0].ts
            for q in cur:
                q.ts += shift
        pkts.extend(cur)
    if not pkts:
        raise SystemExit("no usable IP packets in input")
    return pkts


# --------------------------------------------------------------------------
# pcap writing


class PcapWriter:
    def __init__(self, path, linktype=1, snaplen=262144):
        self.path = path
        self.linktype = linktype
        self.snaplen = snaplen
        self.recs = []

    def add(self, ts, frame):
        self.recs.append((ts, bytes(frame)))

    def close(self):
        self.recs.sort(key=lambda r: r[0])  # stable: equal timestamps keep order
        parts = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, self.snaplen, self.linktype)]
        for ts, fr in self.recs:
            parts.append(struct.pack("<IIII", ts // 1000000, ts % 1000000, len(fr), len(fr)))
            parts.append(fr)
        with open(self.path, "wb") as f:
            f.write(b"".join(parts))
        return len(self.recs)


# --------------------------------------------------------------------------
# header builders


def eth_hdr(dst, src, ethertype, tags=()):
    """tags: sequence of (tpid, vid, pcp), outermost first."""
    h = dst + src
    for tpid, vid, pcp in tags:
        h += struct.pack("!HH", tpid, (pcp << 13) | vid)
    return h + struct.pack("!H", ethertype)


def ipv4_hdr(src, dst, proto, payload_len, ident, df, ttl=64, tos=0):
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + payload_len, ident,
                              0x4000 if df else 0, ttl, proto, 0, src, dst))
    struct.pack_into("!H", h, 10, csum(bytes(h)))
    return bytes(h)


def ipv6_hdr(src, dst, nh, payload_len, flow=0, hlim=64, tc=0):
    return struct.pack("!IHBB16s16s", (6 << 28) | (tc << 20) | (flow & 0xFFFFF),
                       payload_len, nh, hlim, src, dst)


def udp_seg(src, dst, sport, dport, payload, zero_csum=False):
    seg = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)
    if not zero_csum:
        struct.pack_into("!H", seg, 6, l4_csum(src, dst, 17, bytes(seg)))
    return bytes(seg)


def flow_hash(flow):
    src, dst, proto, sp, dp = flow
    return zlib.crc32(src + dst + struct.pack("!BHH", proto, sp, dp))


def flow_src_port(flow, lo=32768, hi=60999):
    """Like udp_flow_src_port(): a per-flow hash mapped into the ephemeral range."""
    return lo + flow_hash(flow) % (hi - lo + 1)


def vxlan_hdr(vni):
    return struct.pack("!II", 0x08000000, vni << 8)


def geneve_opt(cls, typ, data):
    assert len(data) % 4 == 0 and len(data) <= 124
    return struct.pack("!HBB", cls, typ, len(data) // 4) + data


def geneve_hdr(vni, proto, opts=b"", critical=False, oam=False):
    assert len(opts) % 4 == 0
    return struct.pack("!BBHI", len(opts) // 4, (oam << 7) | (critical << 6), proto,
                       vni << 8) + opts


def gre_hdr(proto, key=None, seq=None):
    flags = (0x2000 if key is not None else 0) | (0x1000 if seq is not None else 0)
    h = struct.pack("!HH", flags, proto)
    if key is not None:
        h += struct.pack("!I", key)
    if seq is not None:
        h += struct.pack("!I", seq)
    return h


# --------------------------------------------------------------------------
# inner packet transforms


def v4_to_v6(pkt):
    """Rebuild an inner IPv4 packet as IPv6 (fd00::/64 mapping). None if not convertible."""
    if pkt.ethertype == ETH_IPV6:
        return pkt.l3
    b = pkt.l3
    ihl = (b[0] & 15) * 4
    tos, ttl, proto = b[1], b[8], b[9]
    if struct.unpack("!H", b[6:8])[0] & 0x3FFF:  # fragment
        return None
    src, dst = v4_to_v6_addr(b[12:16]), v4_to_v6_addr(b[16:20])
    seg = bytearray(b[ihl:])
    if proto == 6:
        struct.pack_into("!H", seg, 16, 0)
        struct.pack_into("!H", seg, 16, l4_csum(src, dst, 6, bytes(seg)))
    elif proto == 17:
        struct.pack_into("!H", seg, 6, 0)
        struct.pack_into("!H", seg, 6, l4_csum(src, dst, 17, bytes(seg)))
    elif proto == 1 and seg and seg[0] in (0, 8):
        proto = 58
        seg[0] = 129 if seg[0] == 0 else 128
        struct.pack_into("!H", seg, 2, 0)
        struct.pack_into("!H", seg, 2, l4_csum(src, dst, 58, bytes(seg)))
    else:
        return None
    fl = flow_hash(pkt.flow()) & 0xFFFFF
    return ipv6_hdr(src, dst, proto, len(seg), flow=fl, hlim=ttl, tc=tos) + bytes(seg)


def synth_mac(ip):
    """0a:58:<IPv4> like the CNI bridge / OVN-Kubernetes pod MACs."""
    return b"\x0a\x58" + ip[-4:]


def inner_eth(pkt):
    src = pkt.src_mac or synth_mac(pkt.src())
    dst = pkt.dst_mac or synth_mac(pkt.dst())
    return eth_hdr(dst, src, pkt.ethertype) + pkt.l3


# --------------------------------------------------------------------------
# the two "nodes" and the outer encapsulation


class Nodes:
    """Two Kubernetes nodes; every inner IP is assigned to one of them."""

    MACS = [mac("52:54:00:6b:1f:0a"), mac("52:54:00:c3:52:7e")]
    IP4 = [ip4("192.168.122.11"), ip4("192.168.122.12")]
    IP6 = [ip6("fd12:3456:789a:1::11"), ip6("fd12:3456:789a:1::12")]

    def __init__(self, rng, pkts):
        self.rng = rng
        self.where = {}
        for p in pkts:
            s, d = p.src(), p.dst()
            if s not in self.where and d not in self.where:
                self.where[s], self.where[d] = 0, 1
            elif s not in self.where:
                self.where[s] = 1 - self.where[d]
            elif d not in self.where:
                self.where[d] = 1 - self.where[s]
        self.ipid = {}

    def side(self, pkt):
        """(src node, dst node) for an inner packet."""
        a, b = self.where[pkt.src()], self.where[pkt.dst()]
        if a == b:  # both endpoints on one node would not be tunnelled; force across
            b = 1 - a
        return a, b

    def next_id(self, a, b):
        k = (a, b)
        if k not in self.ipid:
            self.ipid[k] = self.rng.randrange(0x10000)
        self.ipid[k] = (self.ipid[k] + 1) & 0xFFFF
        return self.ipid[k]

    def outer4(self, a, b, proto, payload, df=True, tos=0, tags=()):
        ih = ipv4_hdr(self.IP4[a], self.IP4[b], proto, len(payload), self.next_id(a, b), df,
                      tos=tos & 3)
        return eth_hdr(self.MACS[b], self.MACS[a], ETH_IPV4, tags) + ih + payload

    def outer6(self, a, b, nh, payload, flow=0, tc=0, ext=b""):
        ih = ipv6_hdr(self.IP6[a], self.IP6[b], nh if not ext else 60, len(ext) + len(payload),
                      flow=flow, tc=tc & 3)
        return eth_hdr(self.MACS[b], self.MACS[a], ETH_IPV6) + ih + ext + payload

    def udp4(self, a, b, sport, dport, payload, df=True, tos=0, tags=()):
        seg = udp_seg(self.IP4[a], self.IP4[b], sport, dport, payload)
        return self.outer4(a, b, 17, seg, df=df, tos=tos, tags=tags)


def conv_index(pkts):
    """Number each conversation (direction-independent 5-tuple) by first appearance;
    returns a function packet -> conversation number."""
    seen = {}
    for p in pkts:
        seen.setdefault(_conv_key(p), len(seen))
    return lambda p: seen[_conv_key(p)]


def _conv_key(p):
    src, dst, proto, sp, dp = p.flow()
    return (proto,) + tuple(sorted([(src, sp), (dst, dp)]))


# --------------------------------------------------------------------------
# generators: each returns a list of (ts, frame)


def gen_geneve(pkts, rng):
    """Odd-numbered conversations: inner Ethernet (0x6558) with a rotating set of options;
    even-numbered: inner IPv4 directly (0x0800, GCP style) on another VNI."""
    nodes = Nodes(rng, pkts)
    conv = conv_index(pkts)
    out = []
    vni = 0x1234
    for i, p in enumerate(pkts):
        a, b = nodes.side(p)
        # OVN: class 0x0102 type 0x80 (critical), 4 bytes: 15-bit ingress / 16-bit egress port keys
        ovn = geneve_opt(0x0102, 0x80, struct.pack("!HH", 1 + a, 1 + b))
        variant = i % 4
        if variant == 0:
            opts, crit = b"", False
        elif variant == 1:
            opts, crit = ovn, True
        elif variant == 2:
            opts, crit = ovn + geneve_opt(0x0101, 0x01, struct.pack("!II", 0x00C0FFEE, i)), True
        else:  # same class, non-critical type: C bit must stay clear
            opts, crit = geneve_opt(0x0102, 0x00, struct.pack("!I", 0x00010002)), False
        if conv(p) % 2 == 1 and p.ethertype == ETH_IPV4:
            g = geneve_hdr(vni + 1, ETH_IPV4, opts if variant < 2 else b"", variant == 1) + p.l3
        else:
            g = geneve_hdr(vni, ETH_TEB, opts, crit) + inner_eth(p)
        out.append((p.ts, nodes.udp4(a, b, flow_src_port(p.flow()), 6081, g, tos=p.tos())))
    return out


def _encaplimit_ext(nh):
    """IPv6 Destination Options header with Tunnel Encapsulation Limit = 4 (RFC 2473),
    what Linux ip6tnl inserts by default (`encaplimit 4`)."""
    return struct.pack("!BBBBBBBB", nh, 0, 4, 1, 4, 1, 1, 0)  # TEL(4)=4, PadN(1) len 1


def gen_ipip(pkts, rng, outer, inner):
    """outer/inner in (4, 6).  Over IPv6 the first node's ip6tnl uses the Linux default
    `encaplimit 4` (Destination Options header, next header 60, before the inner packet);
    the second node is configured `encaplimit none` (next header directly 4 / 41)."""
    nodes = Nodes(rng, pkts)
    out = []
    for p in pkts:
        if inner == 4:
            if p.ethertype != ETH_IPV4:
                continue
            l3, nh = p.l3, 4
        else:
            l3, nh = v4_to_v6(p), 41
            if l3 is None:
                continue
        a, b = nodes.side(p)
        if outer == 4:
            fr = nodes.outer4(a, b, nh, l3, df=True, tos=p.tos())
        else:
            ext = _encaplimit_ext(nh) if a == 0 else b""
            fr = nodes.outer6(a, b, nh, l3, flow=(flow_hash(p.flow()) >> 12) & 0xFFFFF,
                              tc=p.tos(), ext=ext)
        out.append((p.ts, fr))
    return out


def gen_gre_key_seq(pkts, rng):
    nodes = Nodes(rng, pkts)
    out, seq = [], {}
    for p in pkts:
        if p.ethertype != ETH_IPV4:
            continue
        a, b = nodes.side(p)
        s = seq.get((a, b), 0)  # Linux: atomic_fetch_inc(&o_seqno), first packet seq 0
        seq[(a, b)] = s + 1
        g = gre_hdr(ETH_IPV4, key=100, seq=s) + p.l3
        out.append((p.ts, nodes.outer4(a, b, 47, g, df=True, tos=p.tos())))
    return out


def gen_gre_teb(pkts, rng):
    nodes = Nodes(rng, pkts)
    out = []
    for p in pkts:
        a, b = nodes.side(p)
        g = gre_hdr(ETH_TEB) + inner_eth(p)
        out.append((p.ts, nodes.outer4(a, b, 47, g, df=True, tos=p.tos())))
    return out


def gen_vlan_qinq_vxlan(pkts, rng):
    """Even-numbered conversations: one 802.1Q tag (VID 100); odd-numbered: QinQ,
    802.1ad S-tag VID 200 + 802.1Q C-tag VID 100.  VXLAN on 8472, VNI 1 (flannel)."""
    nodes = Nodes(rng, pkts)
    conv = conv_index(pkts)
    out = []
    variants = [((ETH_VLAN, 100, 0),), ((ETH_QINQ, 200, 0), (ETH_VLAN, 100, 0))]
    for p in pkts:
        a, b = nodes.side(p)
        v = vxlan_hdr(1) + inner_eth(p)
        out.append((p.ts, nodes.udp4(a, b, flow_src_port(p.flow()), 8472, v, df=False,
                                     tos=p.tos(), tags=variants[conv(p) % 2])))
    return out


def gen_nested(pkts, rng):
    """node VXLAN(8472, VNI 1) -> VTEP Ethernet -> IPv4 10.244.x -> Geneve 6081 -> inner."""
    nodes = Nodes(rng, pkts)
    vtep_mac = [bytes([0x02 | (rng.randrange(256) & 0xFC)]) + rng.randbytes(5) for _ in range(2)]
    mid_ip = [ip4("10.244.1.10"), ip4("10.244.2.20")]
    mid_id = [rng.randrange(0x10000), rng.randrange(0x10000)]
    out = []
    for i, p in enumerate(pkts):
        a, b = nodes.side(p)
        opts = b"" if i % 2 else geneve_opt(0x0102, 0x80, struct.pack("!HH", 1 + a, 1 + b))
        g = geneve_hdr(0x0A0B0C, ETH_TEB, opts, bool(opts)) + inner_eth(p)
        gsport = flow_src_port(p.flow())
        useg = udp_seg(mid_ip[a], mid_ip[b], gsport, 6081, g)
        mid_id[a] = (mid_id[a] + 1) & 0xFFFF
        mid = (eth_hdr(vtep_mac[b], vtep_mac[a], ETH_IPV4)
               + ipv4_hdr(mid_ip[a], mid_ip[b], 17, len(useg), mid_id[a], True, tos=p.tos() & 3)
               + useg)
        mflow = (mid_ip[a], mid_ip[b], 17, gsport, 6081)
        out.append((p.ts, nodes.udp4(a, b, flow_src_port(mflow), 8472, vxlan_hdr(1) + mid,
                                     df=False, tos=p.tos())))
    return out


def _wg_initiation(rng, sender, cookie=False):
    return struct.pack("<B3xI32s48s28s16s16s", 1, sender, rng.randbytes(32), rng.randbytes(48),
                       rng.randbytes(28), rng.randbytes(16),
                       rng.randbytes(16) if cookie else bytes(16))


def _wg_response(rng, sender, receiver):
    return struct.pack("<B3xII32s16s16s16s", 2, sender, receiver, rng.randbytes(32),
                       rng.randbytes(16), rng.randbytes(16), bytes(16))


def _wg_cookie(rng, receiver):
    return struct.pack("<B3xI24s32s", 3, receiver, rng.randbytes(24), rng.randbytes(32))


def _wg_data(rng, receiver, counter, inner_len):
    padded = (inner_len + 15) // 16 * 16
    return struct.pack("<B3xIQ", 4, receiver, counter) + rng.randbytes(padded + 16)


def gen_wireguard(pkts, rng, port, cookie):
    """Handshake (+ optional cookie reply under load), then transport data for each inner
    IP packet, then a passive keepalive 10 s after the last packet."""
    nodes = Nodes(rng, pkts)
    out = []
    ini = nodes.side(pkts[0])[0]  # the node that sends first initiates
    res = 1 - ini
    idx = [0, 0]
    idx[ini], idx[res] = rng.getrandbits(32), rng.getrandbits(32)

    def udp(a, payload, ts):
        out.append((ts, nodes.udp4(a, 1 - a, port, port, payload, df=False)))

    t0 = pkts[0].ts
    t = t0 - 1400  # µs before the first inner packet
    if cookie:
        # first initiation is answered with a cookie reply (responder under load);
        # the retry after REKEY_TIMEOUT (5 s + jitter) carries mac2.
        first_idx = rng.getrandbits(32)
        t_first = t - 5000000 - rng.randrange(333000)
        udp(ini, _wg_initiation(rng, first_idx), t_first)
        udp(res, _wg_cookie(rng, first_idx), t_first + 310)
    udp(ini, _wg_initiation(rng, idx[ini], cookie), t)
    udp(res, _wg_response(rng, idx[res], idx[ini]), t + 350)
    counter = [0, 0]
    last_ts = t0
    for p in pkts:
        a, _ = nodes.side(p)
        # messages to the peer carry the peer's index as receiver
        udp(a, _wg_data(rng, idx[1 - a], counter[a], len(p.l3)), p.ts)
        counter[a] += 1
        last_ts = p.ts
    # passive keepalive (KEEPALIVE_TIMEOUT 10 s) from the receiver of the last packet
    rcv = nodes.side(pkts[-1])[1]
    udp(rcv, _wg_data(rng, idx[1 - rcv], counter[rcv], 0), last_ts + 10000000)
    return out


def gen_wireguard_unanswered(pkts, rng, port=51820):
    """Initiations retried every REKEY_TIMEOUT (5 s) + jitter (< 1/3 s), no response, for
    REKEY_ATTEMPT_TIME (90 s), then the peer gives up."""
    nodes = Nodes(rng, pkts)
    ini = nodes.side(pkts[0])[0]
    out = []
    t = pkts[0].ts
    while t - pkts[0].ts <= 90000000:
        payload = _wg_initiation(rng, rng.getrandbits(32))
        out.append((t, nodes.udp4(ini, 1 - ini, port, port, payload, df=False)))
        t += 5000000 + rng.randrange(333334)
    return out


OUTPUTS = {
    "geneve-options": gen_geneve,
    "ipip-4in4": lambda p, r: gen_ipip(p, r, 4, 4),
    "ipip-6in4": lambda p, r: gen_ipip(p, r, 4, 6),
    "ipip-4in6": lambda p, r: gen_ipip(p, r, 6, 4),
    "ipip-6in6": lambda p, r: gen_ipip(p, r, 6, 6),
    "gre-key-seq": gen_gre_key_seq,
    "gre-teb": gen_gre_teb,
    "wireguard-51871": lambda p, r: gen_wireguard(p, r, 51871, cookie=True),
    "wireguard-51820": lambda p, r: gen_wireguard(p, r, 51820, cookie=False),
    "wireguard-handshake-unanswered": gen_wireguard_unanswered,
    "vlan-qinq-vxlan": gen_vlan_qinq_vxlan,
    "nested-geneve-in-vxlan": gen_nested,
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", action="append",
                    help="real inner capture(s) (classic pcap); default: %s" %
                    ", ".join(os.path.relpath(p, REPO) for p in DEFAULT_INPUTS))
    ap.add_argument("--outdir", default=HERE, help="default: %(default)s")
    ap.add_argument("--only", action="append", choices=sorted(OUTPUTS),
                    help="generate only this output (repeatable)")
    ap.add_argument("--seed", default=SEED, help="PRNG seed (default: %(default)s)")
    args = ap.parse_args(argv)
    inputs = args.input or DEFAULT_INPUTS
    pkts = load_inputs(inputs)
    os.makedirs(args.outdir, exist_ok=True)
    print("inner: %d IP packets from %s" % (len(pkts), ", ".join(inputs)))
    for name in sorted(args.only or OUTPUTS):
        rng = random.Random("%s:%s" % (args.seed, name))
        path = os.path.join(args.outdir, name + ".pcap")
        w = PcapWriter(path)
        for ts, fr in OUTPUTS[name](pkts, rng):
            w.add(ts, fr)
        n = w.close()
        print("  %-40s %4d packets %7d bytes" % (os.path.relpath(path), n, os.path.getsize(path)))


if __name__ == "__main__":
    main()
