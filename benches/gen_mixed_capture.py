#!/usr/bin/env python3
"""Generate a large, SYNTHETIC, mixed "Kubernetes node" capture for benchmarks.

    python3 benches/gen_mixed_capture.py bench-data/mixed-1G.pcap            # 1 GiB
    python3 benches/gen_mixed_capture.py bench-data/mixed-50M.pcap --size 50M --seed 7

Size suffixes K/M/G are binary (KiB/MiB/GiB); generation stops at the first
packet that reaches the size, so the file is a few tens of KB larger.  The same
--size/--seed always gives a byte-identical file (random.Random(seed), no
clock, no os.urandom).  Python 3 stdlib only.  Write big outputs into
bench-data/ (gitignored) -- never commit them.

What the capture looks like
---------------------------
Classic pcap, microsecond timestamps, Ethernet link type, snaplen 262144,
captured (notionally) on the NIC of node 10.0.1.10 in a 30-node cluster, at
about 1.2 Gbit/s on average (exponential inter-packet gaps, mean 6.5 us).

* Thousands of concurrent TCP connections (default 3000 active, --flows;
  replaced as they finish): 3-way handshakes (MSS/TS/WS options, no SACK;
  Linux-like TCP timestamps on every segment, IP ID per socket, DF set),
  data in both directions (HTTP/1.1 GET and POST with exact Content-Length
  on 8080 and 80, TLS 1.2 on 443), delayed ACKs every second segment,
  keep-alive request/response cycles, FIN closes, RST closes from either
  side, connections refused with RST, ~1.5% segment loss followed by an
  immediate duplicate ACK for every later segment and a (fast)
  retransmission that fills the hole, and unanswered SYNs retried after
  1, 3, 7, 15 s.  Half of the initial connections are already running when
  the capture starts (no handshake seen, first segment in mid-message).
  By default every loss happens *before* the capture point (tshark:
  "previous segment not captured", then out-of-order/retransmission).
  --loss-after-capture F makes a share F of them visible before the
  retransmission; realistic, but tshark then reports
  "New fragment overlaps old data (retransmission?)" as Malformed when the
  retransmitted segment belongs to an already reassembled TLS/HTTP PDU.
* Full-size segments carry MSS-sized payloads: 1448 bytes on the plain and
  VLAN paths (MTU 1500 with TCP timestamps), and the smaller MSS the
  overlays imply (VXLAN 1398, Geneve 1348, IPIP 1428, 6in4 1408, WireGuard
  1368).
* TLS: ClientHello with SNI (api.github.com, registry-1.docker.io, ...),
  ServerHello + Certificate (a fixed self-signed P-256 certificate, DER) +
  ServerKeyExchange + ServerHelloDone, ClientKeyExchange / ChangeCipherSpec /
  encrypted Finished, then application-data records (11 full segments per
  record plus a short final record) with random "ciphertext".
* DNS over UDP from pods to CoreDNS pods on other nodes (so encapsulated) and
  from the node to the VPC resolver 10.0.0.2 (plain): A + AAAA queries with
  ndots:5 search-domain expansion, i.e. NXDOMAIN answers (with SOA) for
  names like api.github.com.app.svc.cluster.local before the final answer,
  NODATA for missing AAAA.
* Every remote node uses one path, so all overlays appear mixed:
  VXLAN on 8472 (flannel/Cilium) and 4789 (IANA), Geneve on 6081 with an
  OVN TLV option, IPIP 4in4 (Calico), IPv6-in-IPv4 (proto 41), WireGuard
  transport data on 51871 (Cilium; inner encrypted, counters per peer and
  direction), plain; plus 802.1Q-tagged (VID 30) traffic to a storage
  network and plain SNATed traffic to the internet via the gateway.

Checksums: all IPv4 header checksums (outer and inner) and all TCP
checksums (over IPv4 and IPv6) and the inner UDP (DNS) checksums are correct.
Outer UDP checksums of VXLAN/Geneve/WireGuard are 0 ("no checksum", legal
over IPv4 and what Linux VXLAN sends with `udpcsum off`).

Speed: every connection keeps per-direction packet templates (a complete
frame plus precomputed partial checksum sums); a full-size segment costs one
buffer extend plus struct.pack_into of IP IDs, seq/ack, TCP timestamps and
incrementally updated checksums, written in 8 MiB chunks.  Measured: 1 GiB
in 7.6 s (~140 MB/s) on one core of a 2-vCPU VM while a cargo build used
the other; --size 50M runs at ~110 MB/s (start-up templates weigh more).

Checking:
    capinfos OUT.pcap
    tshark -r OUT.pcap -q -z io,phs -d udp.port==8472,vxlan
"""

import argparse
import base64
import heapq
import itertools
import os
import random
import struct
import sys
import time
from array import array

# --------------------------------------------------------------------------
# constants

LOCAL_IP = bytes([10, 0, 1, 10])
LOCAL_MAC = bytes.fromhex("525400a0010a")
LOCAL_VTEP = bytes.fromhex("ae2f1c00000a")
GW_MAC = bytes.fromhex("525400a00101")
STORAGE_GW_MAC = bytes.fromhex("525400a01e01")
RESOLVER = bytes([10, 0, 0, 2])
NODES = 30
MEAN_GAP_US = 6.5
LOSS = 0.015
AFTER_CAPTURE = 0.0  # share of losses downstream of the capture point (--loss-after-capture)
CONCURRENT = 3000

# path kinds of the remote nodes: (kind, MSS with TCP timestamps)
MSS = {"plain": 1448, "vlan": 1448, "vxlan8472": 1398, "vxlan4789": 1398, "geneve": 1348,
       "ipip": 1428, "6in4": 1408, "wg": 1368}
NODE_KINDS = (["vxlan8472"] * 7 + ["vxlan4789"] * 4 + ["geneve"] * 5 + ["ipip"] * 5
              + ["6in4"] * 3 + ["wg"] * 5 + ["plain"] * 1)

CERT_DER = base64.b64decode(
    "MIICHTCCAcSgAwIBAgIUbQswxOG/Ni+E+MzWNxCxmWslLtgwCgYIKoZIzj0EAwIwPDEWMBQGA1UE"
    "CgwNY2Fwc2lmdC1iZW5jaDEiMCAGA1UEAwwZYXBpLmFwcC5zdmMuY2x1c3Rlci5sb2NhbDAeFw0y"
    "NjExMjYwNTA4MDhaFw0yOTAyMjgwNTA4MDhaMDwxFjAUBgNVBAoMDWNhcHNpZnQtYmVuY2gxIjAg"
    "BgNVBAMMGWFwaS5hcHAuc3ZjLmNsdXN0ZXIubG9jYWwwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC"
    "AAQg8MkLpGXahUkqFNwMVBMQtrAtgYzatRm7/+X6tgj7VSLwv45+jg4vx40VLMfHZSK6N38M3rOQ"
    "13O2izei7uWIo4GjMIGgMB0GA1UdDgQWBBQ9E9pSnWpNlI/oayH+sG4/Q/DK+zAfBgNVHSMEGDAW"
    "gBQ9E9pSnWpNlI/oayH+sG4/Q/DK+zAPBgNVHRMBAf8EBTADAQH/ME0GA1UdEQRGMESCGWFwaS5h"
    "cHAuc3ZjLmNsdXN0ZXIubG9jYWyCFyouYXBwLnN2Yy5jbHVzdGVyLmxvY2Fsgg5hcGkuZ2l0aHVi"
    "LmNvbTAKBggqhkjOPQQDAgNHADBEAiAF10luyg3J0rWqF8PEymF/SsD3j1AO8WwfyKsLdDBD3wIg"
    "LOVqtq1Mgx0ogpr5Zqq8d+Zy1aoRXmUn+NGirqB9/Ms=")

SNIS = ["api.github.com", "registry-1.docker.io", "s3.us-east-1.amazonaws.com",
        "objects.githubusercontent.com", "quay.io", "api.app.svc.cluster.local",
        "grafana.monitoring.svc.cluster.local", "sts.amazonaws.com", "hooks.slack.com"]
EXTERNAL = [bytes([140, 82, 112, 3]), bytes([140, 82, 114, 4]), bytes([52, 216, 8, 61]),
            bytes([54, 231, 168, 40]), bytes([185, 199, 108, 133]), bytes([104, 16, 99, 52]),
            bytes([3, 5, 140, 2]), bytes([34, 120, 100, 7])]
DNS_NAMES = [  # (name as the application asks it, the FQDN that exists or None, has AAAA)
    ("api.github.com", "api.github.com", False),
    ("registry-1.docker.io", "registry-1.docker.io", True),
    ("s3.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com", False),
    ("quay.io", "quay.io", True),
    ("sts.amazonaws.com", "sts.amazonaws.com", True),
    ("redis.cache.svc.cluster.local", "redis.cache.svc.cluster.local", False),
    ("postgres", "postgres.app.svc.cluster.local", False),
    ("api", "api.app.svc.cluster.local", False),
    ("grafana.monitoring", "grafana.monitoring.svc.cluster.local", False),
    ("kafka-0.kafka-headless", "kafka-0.kafka-headless.app.svc.cluster.local", False),
    ("missing-svc", None, False),
    ("typo-registry.example.invalid", None, False)]
SEARCH = ["app.svc.cluster.local", "svc.cluster.local", "cluster.local"]
URLS = ["/api/v1/objects/%d", "/v2/library/nginx/blobs/sha256:%064x", "/healthz?probe=%d",
        "/metrics?shard=%d", "/upload/part/%d"]

REC = struct.Struct("<IIII")
PACK_H = struct.Struct("!H").pack_into
PACK_II = struct.Struct("!II").pack_into
PACK_Q = struct.Struct("<Q").pack_into
LITTLE = sys.byteorder == "little"

# --------------------------------------------------------------------------
# checksum helpers


def wsum(b):
    """Sum of big-endian 16-bit words (unfolded)."""
    if len(b) & 1:
        b = bytes(b) + b"\0"
    if len(b) <= 64:
        return sum(struct.unpack("!%dH" % (len(b) // 2), b))
    a = array("H")
    a.frombytes(bytes(b))
    if LITTLE:
        a.byteswap()
    return sum(a)


def fold(s):
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_hdr(src, dst, proto, payload_len, ident=0, df=True, ttl=64, with_csum=False):
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident,
                              0x4000 if df else 0, ttl, proto, 0, src, dst))
    if with_csum:
        PACK_H(h, 10, fold(wsum(h)))
    return h


def eth(dst, src, ethertype, vlan=None):
    if vlan is None:
        return dst + src + struct.pack("!H", ethertype)
    return dst + src + struct.pack("!HHH", 0x8100, vlan, ethertype)


# --------------------------------------------------------------------------
# cluster topology


class Peer:
    """A next hop seen from the capturing node: a remote node (with an overlay kind), the
    internet gateway or the storage VLAN."""

    def __init__(self, idx, kind, rng):
        self.idx = idx
        self.kind = kind
        self.mss = MSS[kind]
        self.ip = bytes([10, 0, 1, 10 + idx])
        self.mac = bytes.fromhex("525400a001") + bytes([10 + idx])
        self.vtep = bytes.fromhex("ae2f1c0000") + bytes([10 + idx])
        self.wg_idx = [rng.getrandbits(32), rng.getrandbits(32)]  # receiver index out, in
        self.wg_ctr = [rng.randrange(1 << 20), rng.randrange(1 << 20)]
        self.geneve_opt = struct.pack("!HBBHH", 0x0102, 0x80, 1, 1, 2 + idx)

    def pod_ip(self, rng, v6=False):
        if v6:
            return bytes.fromhex("fd000010024400%02x" % self.idx) + bytes(6) + bytes(
                [0, rng.randrange(2, 250)])
        return bytes([10, 244, self.idx, rng.randrange(2, 250)])


def local_pod_ip(rng, v6=False):
    if v6:
        return bytes.fromhex("fd00001002440000") + bytes(6) + bytes([0, rng.randrange(2, 250)])
    return bytes([10, 244, 0, rng.randrange(2, 250)])


class Tpl:
    """One packet template: a complete frame with zeroed variable fields plus the partial
    checksum sums needed to finish it quickly."""
    __slots__ = ("frame", "o_ip", "o_sum", "i_ip", "i_sum", "tcp", "t_sum", "wg", "peer", "out",
                 "tso")


def build_frame(peer, outbound, l3, v6, sport_hash):
    """Wrap an inner IP packet for `peer`; returns (frame, outer_ip_off, inner_ip_off, wg_off)."""
    kind = peer.kind
    if outbound:
        smac, dmac, sip, dip = LOCAL_MAC, peer.mac, LOCAL_IP, peer.ip
        svtep, dvtep = LOCAL_VTEP, peer.vtep
    else:
        smac, dmac, sip, dip = peer.mac, LOCAL_MAC, peer.ip, LOCAL_IP
        svtep, dvtep = peer.vtep, LOCAL_VTEP
    et = 0x86DD if v6 else 0x0800
    if kind == "plain":
        return eth(dmac, smac, et) + l3, -1, 14, -1
    if kind == "vlan":
        return eth(dmac, smac, et, vlan=30) + l3, -1, 18, -1
    sport = 32768 + sport_hash % 28232
    if kind in ("vxlan8472", "vxlan4789"):
        inner = eth(dvtep, svtep, et) + l3
        port = 8472 if kind == "vxlan8472" else 4789
        udp = struct.pack("!HHHHII", sport, port, 16 + len(inner), 0, 0x08000000, 1 << 8) + inner
        return eth(dmac, smac, 0x0800) + ipv4_hdr(sip, dip, 17, len(udp), df=False) + udp, 14, 64, -1
    if kind == "geneve":
        inner = eth(dvtep, svtep, et) + l3
        gen = struct.pack("!BBHI", 2, 0x40, 0x6558, 0x000ABC << 8) + peer.geneve_opt
        udp = struct.pack("!HHHH", sport, 6081, 8 + len(gen) + len(inner), 0) + gen + inner
        return eth(dmac, smac, 0x0800) + ipv4_hdr(sip, dip, 17, len(udp)) + udp, 14, 72, -1
    if kind in ("ipip", "6in4"):
        proto = 41 if v6 else 4
        return eth(dmac, smac, 0x0800) + ipv4_hdr(sip, dip, proto, len(l3)) + l3, 14, 34, -1
    if kind == "wg":
        d = 0 if outbound else 1
        padded = (len(l3) + 15) // 16 * 16 + 16
        wg = struct.pack("<B3xIQ", 4, peer.wg_idx[d], 0) + _RANDOM[:padded]
        udp = struct.pack("!HHHH", 51871, 51871, 8 + len(wg), 0) + wg
        return eth(dmac, smac, 0x0800) + ipv4_hdr(sip, dip, 17, len(udp), df=False) + udp, 14, -1, 42
    raise ValueError(kind)


_RANDOM = b""  # filled in main(): 64 KiB of seeded random bytes ("ciphertext", bodies)


def make_tpl(peer, outbound, l3, v6, sport_hash, t_sum=0, tso=24):
    frame, o_ip, i_ip, wg = build_frame(peer, outbound, l3, v6, sport_hash)
    t = Tpl()
    t.frame = bytes(frame)
    t.peer = peer
    t.out = 0 if outbound else 1
    t.o_ip = o_ip
    t.o_sum = wsum(frame[o_ip:o_ip + 20]) if o_ip >= 0 else 0
    t.wg = wg
    t.tso = tso
    if wg >= 0:
        t.i_ip = t.tcp = -1
        t.i_sum = t.t_sum = 0
        return t
    t.i_ip = -1 if v6 else i_ip
    t.i_sum = 0 if v6 else wsum(frame[i_ip:i_ip + 20])
    t.tcp = i_ip + (40 if v6 else 20)
    t.t_sum = t_sum
    return t


# --------------------------------------------------------------------------
# output


class Out:
    """pcap writer.  The per-packet functions are closures over plain local state (much
    cheaper than attribute access): emit() for TCP from a template, emit_raw() for frames
    whose L4 is already complete (DNS, RST to SYN)."""

    def __init__(self, path, target, rng):
        f = open(path, "wb")
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        buf = bytearray()
        gaps = [int(rng.expovariate(1.0 / MEAN_GAP_US)) for _ in range(65536)]
        start = 1764140400 * 1000000  # 2025-11-26 07:00:00 UTC
        now, gi, oid, npk, flushed = start, 0, rng.randrange(65536), 0, 24
        rec = REC.pack
        pack_h, pack_ii, pack_q = PACK_H, PACK_II, PACK_Q

        def clock():
            return now

        def ms():
            return (now - start) // 1000

        def full():
            return flushed + len(buf) >= target

        def flush():
            nonlocal flushed
            f.write(buf)
            flushed += len(buf)
            del buf[:]

        def stats():
            return npk, now - start

        def close():
            flush()
            f.close()

        def emit(tpl, seq, ack, tsv, tse, ipid):
            """One packet from a template: patch IP IDs, seq/ack, TCP timestamps and the
            incrementally computed checksums (or the WireGuard counter)."""
            nonlocal now, gi, oid, npk
            gi = (gi + 1) & 0xFFFF
            now += gaps[gi]
            frame = tpl.frame
            n = len(frame)
            buf.extend(rec(now // 1000000, now % 1000000, n, n))
            b = len(buf)
            buf.extend(frame)
            npk += 1
            o = tpl.o_ip
            if o >= 0:
                oid = (oid + 1) & 0xFFFF
                s = tpl.o_sum + oid
                s = (s & 0xFFFF) + (s >> 16)
                pack_h(buf, b + o + 4, oid)
                pack_h(buf, b + o + 10, ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF)
                w = tpl.wg
                if w >= 0:
                    ctr = tpl.peer.wg_ctr
                    d = tpl.out
                    pack_q(buf, b + w + 8, ctr[d])
                    ctr[d] += 1
                    if b > 8388608:
                        flush()
                    return
            i = tpl.i_ip
            if i >= 0:
                s = tpl.i_sum + ipid
                s = (s & 0xFFFF) + (s >> 16)
                pack_h(buf, b + i + 4, ipid)
                pack_h(buf, b + i + 10, ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF)
            t = b + tpl.tcp
            pack_ii(buf, t + 4, seq, ack)
            pack_ii(buf, t + tpl.tso, tsv, tse)
            s = (tpl.t_sum + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
                 + (tsv >> 16) + (tsv & 0xFFFF) + (tse >> 16) + (tse & 0xFFFF))
            s = (s & 0xFFFF) + (s >> 16)
            pack_h(buf, t + 16, ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF)
            if b > 8388608:
                flush()

        def emit_raw(tpl, ipid=0):
            nonlocal now, gi, oid, npk
            gi = (gi + 1) & 0xFFFF
            now += gaps[gi]
            frame = tpl.frame
            n = len(frame)
            buf.extend(rec(now // 1000000, now % 1000000, n, n))
            b = len(buf)
            buf.extend(frame)
            npk += 1
            o = tpl.o_ip
            if o >= 0:
                oid = (oid + 1) & 0xFFFF
                pack_h(buf, b + o + 4, oid)
                pack_h(buf, b + o + 10, fold(tpl.o_sum + oid))
                if tpl.wg >= 0:
                    ctr = tpl.peer.wg_ctr
                    pack_q(buf, b + tpl.wg + 8, ctr[tpl.out])
                    ctr[tpl.out] += 1
                    return
            if tpl.i_ip >= 0:
                pack_h(buf, b + tpl.i_ip + 4, ipid)
                pack_h(buf, b + tpl.i_ip + 10, fold(tpl.i_sum + ipid))

        self.clock, self.ms, self.full, self.stats, self.close = clock, ms, full, stats, close
        self.emit, self.emit_raw = emit, emit_raw


# --------------------------------------------------------------------------
# TCP connections

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tls_record(ctype, body):
    return struct.pack("!BHH", ctype, 0x0303, len(body)) + body


def hs(msg_type, body):
    return struct.pack("!I", (msg_type << 24) | len(body)) + body


def client_hello(rng, sni):
    ciphers = [0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C,
               0x009D, 0x002F, 0x0035]
    name = sni.encode()
    sni_ext = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    alpn = b"\x08http/1.1"
    ext = b"".join([
        struct.pack("!HH", 0, len(sni_ext)) + sni_ext,
        struct.pack("!HH", 23, 0),  # extended_master_secret
        struct.pack("!HHB", 0xFF01, 1, 0),  # renegotiation_info
        struct.pack("!HHH3H", 10, 8, 6, 0x001D, 0x0017, 0x0018),  # supported_groups
        struct.pack("!HHB B", 11, 2, 1, 0),  # ec_point_formats
        struct.pack("!HHH8H", 13, 18, 16, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501,
                    0x0806, 0x0601),  # signature_algorithms
        struct.pack("!HHH", 16, len(alpn) + 2, len(alpn)) + alpn,
    ])
    body = (struct.pack("!H", 0x0303) + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
            + struct.pack("!H", 2 * len(ciphers)) + struct.pack("!%dH" % len(ciphers), *ciphers)
            + b"\x01\x00" + struct.pack("!H", len(ext)) + ext)
    return struct.pack("!BHH", 22, 0x0301, len(body) + 4) + hs(1, body)


def server_flight(rng):
    ext = struct.pack("!HHB", 0xFF01, 1, 0) + struct.pack("!HHBB", 11, 2, 1, 0) + struct.pack(
        "!HH", 23, 0)
    sh = (struct.pack("!H", 0x0303) + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
          + struct.pack("!HB", 0xC02B, 0) + struct.pack("!H", len(ext)) + ext)
    cert = struct.pack("!I", len(CERT_DER))[1:] + CERT_DER
    certs = struct.pack("!I", len(cert))[1:] + cert
    r, s = b"\x00\x80" + rng.randbytes(31), b"\x7f" + rng.randbytes(31)
    sig = b"\x30" + bytes([4 + len(r) + len(s)]) + b"\x02" + bytes([len(r)]) + r + b"\x02" + bytes(
        [len(s)]) + s
    ske = (struct.pack("!BHB", 3, 0x0017, 65) + b"\x04" + rng.randbytes(64)
           + struct.pack("!HH", 0x0403, len(sig)) + sig)
    return tls_record(22, hs(2, sh) + hs(11, certs) + hs(12, ske) + hs(14, b""))


def client_finish(rng):
    cke = hs(16, b"\x41\x04" + rng.randbytes(64))
    return (tls_record(22, cke) + tls_record(20, b"\x01")
            + tls_record(22, rng.randbytes(40)))


def server_finish(rng):
    return tls_record(20, b"\x01") + tls_record(22, rng.randbytes(40))


class Conn:
    """One TCP connection; d=0 client->server, d=1 server->client."""

    def __init__(self, g, peer, c_ip, s_ip, c_port, s_port, client_local, v6, tls, midstream):
        self.g = g
        rng = g.rng
        self.peer = peer
        self.ip = (c_ip, s_ip)
        self.port = (c_port, s_port)
        self.client_local = client_local
        self.v6 = v6
        self.tls = tls
        self.mss = peer.mss
        self.rec = 11 * self.mss
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        self.ipid = [rng.randrange(65536), rng.randrange(65536)]
        self.tsb = [rng.getrandbits(32), rng.getrandbits(32)]
        self.tpls = {}
        self.hash = [rng.getrandbits(16), rng.getrandbits(16)]
        self.ttl = (63, 63) if peer.kind != "plain" or client_local else (63, 52)
        self.requests = 0
        self.msg = None  # (d, total length, header bytes) of the message being sent
        self.pos = 0
        if midstream:  # already running when the capture starts: no handshake seen
            self.start_message(1, initial=True)
            self.state = self.st_bulk
        else:
            self.state = self.st_syn

    # ---- templates -------------------------------------------------------
    def outbound(self, d):
        return self.client_local if d == 0 else not self.client_local

    def _l3(self, d, flags, payload, psum, opts=None, win=502):
        src, dst = self.ip[d], self.ip[1 - d]
        sp, dp = self.port[d], self.port[1 - d]
        if opts is None:
            opts = b"\x01\x01\x08\x0a" + bytes(8)
        hl = 20 + len(opts)
        tcph = struct.pack("!HHIIHHHH", sp, dp, 0, 0, (hl // 4) << 12 | flags, win, 0, 0) + opts
        seg_len = hl + len(payload)
        if self.v6:
            ip = struct.pack("!IHBB16s16s", 0x60000000 | (self.hash[d] * 13 & 0xFFFFF), seg_len,
                             6, self.ttl[d], src, dst)
            ph = src + dst + struct.pack("!IxxxB", seg_len, 6)
        else:
            ip = bytes(ipv4_hdr(src, dst, 6, seg_len, ttl=self.ttl[d]))
            ph = src + dst + struct.pack("!HH", 6, seg_len)
        return ip + tcph + payload, wsum(ph) + wsum(tcph) + psum

    def tpl(self, d, kind):
        key = (d, kind)
        t = self.tpls.get(key)
        if t is None:
            g = self.g
            if kind == "ack":
                payload, psum, flags = b"", 0, ACK
            elif kind == "full":
                payload, psum, flags = g.payload[:self.mss], g.psum_full[self.mss], ACK
            elif kind == "rec":
                payload = g.rec_start(self.rec)[:self.mss]
                psum, flags = wsum(payload), ACK
            else:
                payload, psum, flags = b"", 0, kind
            l3, tsum = self._l3(d, flags, payload, psum)
            t = make_tpl(self.peer, self.outbound(d), l3, self.v6, self.hash[d], t_sum=tsum)
            self.tpls[key] = t
        return t

    def slow_tpl(self, d, flags, payload, psum=None):
        l3, tsum = self._l3(d, flags, payload, wsum(payload) if psum is None else psum)
        return make_tpl(self.peer, self.outbound(d), l3, self.v6, self.hash[d], t_sum=tsum)

    # ---- emission ----------------------------------------------------------
    def send(self, d, tpl, seq=None, ack=None):
        g = self.g
        ms = g.out.ms()
        self.ipid[d] = (self.ipid[d] + 1) & 0xFFFF
        g.out.emit(tpl, self.seq[d] if seq is None else seq,
                   self.seq[1 - d] if ack is None else ack,
                   (self.tsb[d] + ms) & 0xFFFFFFFF, (self.tsb[1 - d] + ms - 1) & 0xFFFFFFFF,
                   self.ipid[d])

    def ack(self, d):
        self.send(d, self.tpl(d, "ack"))

    def send_bytes(self, d, data):
        """Slow path: segment arbitrary bytes (handshakes, requests); receiver ACKs."""
        mss = self.mss
        for i in range(0, len(data), mss):
            chunk = data[i:i + mss]
            self.send(d, self.slow_tpl(d, ACK | PSH, chunk))
            self.seq[d] = (self.seq[d] + len(chunk)) & 0xFFFFFFFF
        self.ack(1 - d)

    def syn(self, d, flags):
        # Linux order without SACK: MSS, NOP, NOP, TS, NOP, WS(7) -> TSval at TCP offset 28
        opts = (struct.pack("!BBH", 2, 4, self.mss + 12) + b"\x01\x01\x08\x0a" + bytes(8)
                + b"\x01\x03\x03\x07")
        l3, tsum = self._l3(d, flags, b"", 0, opts=opts, win=64240 if d == 0 else 65160)
        t = make_tpl(self.peer, self.outbound(d), l3, self.v6, self.hash[d], t_sum=tsum, tso=28)
        g = self.g
        ms = g.out.ms()
        self.ipid[d] = (self.ipid[d] + 1) & 0xFFFF
        g.out.emit(t, self.seq[d], self.seq[1 - d] if flags & ACK else 0,
                   (self.tsb[d] + ms) & 0xFFFFFFFF,
                   0 if d == 0 else (self.tsb[0] + ms - 1) & 0xFFFFFFFF, self.ipid[d])

    # ---- messages ------------------------------------------------------------
    def start_message(self, d, initial=False):
        rng = self.g.rng
        r = rng.random()
        if d == 0 and r < 0.12:
            body = int(rng.paretovariate(1.1) * 20000)  # uploads
        elif d == 0:
            body = rng.randrange(120, 700)
        else:
            body = int(rng.paretovariate(1.05) * 16000)
            body = min(body, 200_000_000)
        if self.tls:
            total = max(body, 40)
            last = total % self.rec
            if 0 < last < 40:
                total += 40
            self.msg = (d, total, None)
            self.pos = (rng.randrange(total // self.rec) * self.rec) if initial and total > self.rec else 0
        else:
            self.requests += 1
            if d == 0:
                path = rng.choice(URLS) % rng.getrandbits(31)
                host = "api.app.svc.cluster.local"
                if body > 1000:
                    hdr = ("POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\n"
                           "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n"
                           "Accept-Encoding: gzip\r\n\r\n" % (path, host, body))
                else:
                    body = 0
                    hdr = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\n"
                           "Accept-Encoding: gzip\r\n\r\n" % (path, host))
            else:
                hdr = ("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                       "Content-Length: %d\r\nDate: Wed, 26 Nov 2025 07:00:00 GMT\r\n\r\n" % body)
            hdr = hdr.encode()
            total = len(hdr) + body
            self.msg = (d, total, hdr)
            self.pos = 0
            if initial and total > 4 * self.mss:
                self.pos = rng.randrange(1, total // self.mss - 1) * self.mss

    def seg(self, d, pos, total, hdr):
        """Template and length of the segment at message offset pos."""
        mss = self.mss
        n = total - pos
        if n > mss:
            n = mss
        if self.tls:
            rec = self.rec
            full_end = total - total % rec
            if pos < full_end:
                return self.tpl(d, "rec" if pos % rec == 0 else "full"), mss
            if pos == full_end:  # start of the short final record (n >= 40)
                g = self.g
                h = struct.pack("!BHH", 23, 0x0303, total - full_end - 5)
                ps = g.psum(n) - wsum(_RANDOM[:6]) + wsum(h + _RANDOM[5:6])
                return self.slow_tpl(d, ACK | PSH, h + _RANDOM[5:n], ps), n
        elif pos == 0:
            return self.slow_tpl(d, ACK | PSH, hdr + self.g.payload[:n - len(hdr)]), n
        if n == mss:
            return self.tpl(d, "full"), mss
        return self.slow_tpl(d, ACK | PSH, _RANDOM[:n], self.g.psum(n)), n

    # ---- states --------------------------------------------------------------
    def st_syn(self):
        self.syn(0, SYN)
        self.seq[0] = (self.seq[0] + 1) & 0xFFFFFFFF
        self.state = self.st_synack
        return True

    def st_synack(self):
        self.syn(1, SYN | ACK)
        self.seq[1] = (self.seq[1] + 1) & 0xFFFFFFFF
        self.ack(0)
        self.state = self.st_tls1 if self.tls else self.st_request
        return True

    def st_tls1(self):
        g = self.g
        self.send_bytes(0, client_hello(g.rng, self.sni))
        self.send_bytes(1, server_flight(g.rng))
        self.state = self.st_tls2
        return True

    def st_tls2(self):
        g = self.g
        self.send_bytes(0, client_finish(g.rng))
        self.send_bytes(1, server_finish(g.rng))
        self.state = self.st_request
        return True

    def st_request(self):
        self.start_message(0)
        self.state = self.st_bulk
        return self.st_bulk()

    def st_bulk(self):
        """Send a burst of the current message; the receiver ACKs every second segment,
        sends an immediate duplicate ACK for data after a hole, and the hole is then
        retransmitted."""
        g = self.g
        out = g.out
        emit = out.emit
        rnd = g.rng.random
        d, total, hdr = self.msg
        r = 1 - d
        seq, ipid, tsb = self.seq, self.ipid, self.tsb
        ms = out.ms()
        tsv_d, tse_d = (tsb[d] + ms) & 0xFFFFFFFF, (tsb[r] + ms - 1) & 0xFFFFFFFF
        tsv_r, tse_r = (tsb[r] + ms) & 0xFFFFFFFF, (tsb[d] + ms - 1) & 0xFFFFFFFF
        full = self.tpl(d, "full")
        ackt = self.tpl(r, "ack")
        mss = self.mss
        rec = self.rec if self.tls else 0
        fast_end = total - total % rec if rec else total
        pending = None
        unacked = 0
        pos = self.pos
        g.bi = bi = (g.bi + 1) & 1023
        for _ in range(g.bursts[bi]):
            if pos >= total:
                break
            if pos and pos + mss <= fast_end and (not rec or pos % rec):
                tpl, n = full, mss
            else:
                tpl, n = self.seg(d, pos, total, hdr)
            sd = seq[d]
            if pending is None and rnd() < LOSS:
                pending = (tpl, sd)
                if AFTER_CAPTURE and rnd() < AFTER_CAPTURE:
                    ipid[d] = (ipid[d] + 1) & 0xFFFF
                    emit(tpl, sd, seq[r], tsv_d, tse_d, ipid[d])  # lost after the capture point
                seq[d] = (sd + n) & 0xFFFFFFFF
                pos += n
                unacked = 0
                continue
            ipid[d] = i = (ipid[d] + 1) & 0xFFFF
            emit(tpl, sd, seq[r], tsv_d, tse_d, i)
            seq[d] = sd = (sd + n) & 0xFFFFFFFF
            pos += n
            if pending is not None:  # out-of-order data: immediate duplicate ACK
                ipid[r] = i = (ipid[r] + 1) & 0xFFFF
                emit(ackt, seq[r], pending[1], tsv_r, tse_r, i)
                continue
            unacked += 1
            if unacked == 2:  # delayed ACK every second segment
                ipid[r] = i = (ipid[r] + 1) & 0xFFFF
                emit(ackt, seq[r], sd, tsv_r, tse_r, i)
                unacked = 0
        self.pos = pos
        if pending is not None:
            self.send(d, pending[0], seq=pending[1])  # (fast) retransmission
            self.ack(r)
        elif unacked:
            self.ack(r)
        if pos >= total:
            if d == 0:
                self.start_message(1)
            else:
                if g.rng.random() < 0.7 and self.requests < 100:
                    self.state = self.st_request
                else:
                    self.state = self.st_close
        return True

    def st_close(self):
        rng = self.g.rng
        x = rng.random()
        if x < 0.04:  # server resets
            self.send(1, self.tpl(1, RST | ACK))
            return False
        if x < 0.07:  # client aborts
            self.send(0, self.tpl(0, RST | ACK))
            return False
        a = 0 if x < 0.6 else 1
        self.send(a, self.tpl(a, FIN | ACK))
        self.seq[a] = (self.seq[a] + 1) & 0xFFFFFFFF
        self.send(1 - a, self.tpl(1 - a, FIN | ACK))
        self.seq[1 - a] = (self.seq[1 - a] + 1) & 0xFFFFFFFF
        self.ack(a)
        return False

    def step(self):
        return self.state()


# --------------------------------------------------------------------------
# UDP / DNS and one-off packets


def dns_name(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def dns_query(txid, name, qtype):
    return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + dns_name(name) + struct.pack("!HH", qtype, 1)


def dns_response(rng, txid, name, qtype, rcode, answer):
    q = dns_name(name) + struct.pack("!HH", qtype, 1)
    flags = 0x8180 | rcode | (0x0400 if name.endswith("cluster.local") else 0)
    if answer:
        if qtype == 1:
            rdata = bytes([10, 96, rng.randrange(256), rng.randrange(1, 255)]) if name.endswith(
                "cluster.local") else rng.choice(EXTERNAL)
        else:
            rdata = bytes.fromhex("2600190100000000") + rng.randbytes(8)
        ans = b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 30, len(rdata)) + rdata
        return struct.pack("!HHHHHH", txid, flags, 1, 1, 0, 0) + q + ans
    if name.endswith("cluster.local"):
        zone, owner = "cluster.local", dns_name("cluster.local")
        soa = dns_name("ns.dns.cluster.local") + dns_name("hostmaster.cluster.local")
    elif "." in name:
        zone = ".".join(name.split(".")[-2:])
        owner = dns_name(zone)
        soa = dns_name("ns-1." + zone) + dns_name("hostmaster." + zone)
    else:  # single label: answered from the root zone
        owner = b"\0"
        soa = dns_name("a.root-servers.net") + dns_name("nstld.verisign-grs.com")
    soa += struct.pack("!IIIII", 2025112600, 1800, 900, 604800, 30)
    auth = owner + struct.pack("!HHIH", 6, 1, 30, len(soa)) + soa
    return struct.pack("!HHHHHH", txid, flags, 1, 0, 1, 0) + q + auth


def udp_tpl(peer, outbound, src, dst, sport, dport, payload, ttl=63):
    seg = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)
    ph = src + dst + struct.pack("!HH", 17, len(seg))
    c = fold(wsum(ph) + wsum(seg)) or 0xFFFF
    PACK_H(seg, 6, c)
    l3 = bytes(ipv4_hdr(src, dst, 17, len(seg), ttl=ttl, df=False)) + bytes(seg)
    return make_tpl(peer, outbound, l3, False, sport)


class Gen:
    def __init__(self, out, rng):
        self.out = out
        self.rng = rng
        self.payload = _RANDOM
        words = array("H")
        words.frombytes(_RANDOM)
        if LITTLE:
            words.byteswap()
        self.prefix = [0] + list(itertools.accumulate(words))
        self.psum_full = {m: self.psum(m) for m in set(MSS.values())}
        self.bi = 0
        self._rec = {}
        self.bursts = [rng.choice([2, 4, 4, 6, 8, 8, 10, 12, 16]) for _ in range(1024)]
        kinds = NODE_KINDS[:]
        rng.shuffle(kinds)
        self.peers = [Peer(i + 1, kinds[i], rng) for i in range(NODES)]
        self.gw = Peer(200, "plain", rng)
        self.gw.mac, self.gw.ip = GW_MAC, bytes([10, 0, 1, 1])
        self.storage = Peer(201, "vlan", rng)
        self.storage.mac = STORAGE_GW_MAC
        self.coredns = [p for p in self.peers if p.kind in ("vxlan8472", "geneve", "wg")][:2]
        self.heap = []
        self.hseq = 0
        self.ports = rng.randrange(32768, 60999)

    def psum(self, n):
        """Word sum of _RANDOM[:n] via prefix sums."""
        s = self.prefix[n >> 1]
        if n & 1:
            s += _RANDOM[n - 1] << 8
        return s

    def rec_start(self, rec):
        if rec not in self._rec:
            self._rec[rec] = struct.pack("!BHH", 23, 0x0303, rec - 5) + _RANDOM[5:rec]
        return self._rec[rec]

    def eport(self):
        self.ports = 32768 + (self.ports - 32768 + 1 + self.rng.randrange(7)) % 28232
        return self.ports

    def at(self, t, fn, *args):
        self.hseq += 1
        heapq.heappush(self.heap, (t, self.hseq, fn, args))

    def run_timers(self):
        h = self.heap
        now = self.out.clock()
        while h and h[0][0] <= now:
            _, _, fn, args = heapq.heappop(h)
            fn(*args)

    # ---- TCP connections -------------------------------------------------
    def new_conn(self, midstream=False):
        rng = self.rng
        x = rng.random()
        if x < 0.6:  # pod <-> pod across nodes (overlay)
            peer = rng.choice(self.peers)
            sni = rng.choice(SNIS[5:7])
            v6 = peer.kind == "6in4"
            local, remote = local_pod_ip(rng, v6), peer.pod_ip(rng, v6)
            client_local = rng.random() < 0.5
            c_ip, s_ip = (local, remote) if client_local else (remote, local)
            tls = rng.random() < 0.5
            s_port = 443 if tls else 8080
        elif x < 0.88:  # node (SNAT) -> internet, TLS
            peer, sni = self.gw, rng.choice(SNIS)
            v6, client_local, tls = False, True, True
            c_ip, s_ip, s_port = LOCAL_IP, rng.choice(EXTERNAL), 443
        else:  # storage / backup network on VLAN 30, plain HTTP
            peer, sni = self.storage, None
            v6, client_local, tls = False, True, False
            c_ip, s_ip, s_port = LOCAL_IP, bytes([172, 16, 30, rng.randrange(10, 20)]), 80
        c = Conn(self, peer, c_ip, s_ip, self.eport(), s_port, client_local, v6, tls, midstream)
        c.sni = sni
        return c

    def unanswered_syn(self):
        rng = self.rng
        if rng.random() < 0.5:
            peer = rng.choice([p for p in self.peers if p.kind != "6in4"])
            c_ip, s_ip = local_pod_ip(rng), peer.pod_ip(rng)
        else:
            peer, c_ip, s_ip = self.gw, LOCAL_IP, rng.choice(EXTERNAL)
        c = Conn(self, peer, c_ip, s_ip, self.eport(), rng.choice([443, 8080, 5432, 6379]), True,
                 False, False, False)
        if rng.random() < 0.3 and peer is not self.gw:  # port closed: refused
            c.syn(0, SYN)
            c.seq[0] = (c.seq[0] + 1) & 0xFFFFFFFF
            self.at(self.out.clock() + rng.randrange(200, 900), self._refuse, c)
            return
        self._syn_retry(c, 0)

    def _refuse(self, c):
        c.seq[1] = 0
        c.send(1, c.tpl(1, RST | ACK))

    def _syn_retry(self, c, n):
        c.syn(0, SYN)
        if n < 5:
            self.at(self.out.clock() + (1 << n) * 1000000 + self.rng.randrange(3000), self._syn_retry, c, n + 1)

    # ---- DNS -------------------------------------------------------------
    def dns_lookup(self):
        """One getaddrinfo(): A + AAAA per candidate name, ndots:5 search-list expansion."""
        rng = self.rng
        name, target, has_aaaa = rng.choice(DNS_NAMES)
        if rng.random() < 0.3 and "cluster.local" not in (target or "cluster.local"):
            # the node itself (kubelet, containerd) asks the VPC resolver: no search list
            peer, client, server, cands = self.gw, LOCAL_IP, RESOLVER, [name]
        else:
            peer = rng.choice(self.coredns)
            client, server = local_pod_ip(rng), peer.pod_ip(rng)
            cands = [name + "." + s for s in SEARCH] + [name] if name.count(".") < 5 else [name]
        self._dns_try(peer, client, server, self.eport(), target, has_aaaa, cands, 0)

    def _dns_try(self, peer, client, server, sport, target, has_aaaa, cands, i):
        rng = self.rng
        q = cands[i]
        found = q == target
        for qtype in (1, 28):
            txid = rng.getrandbits(16)
            t = udp_tpl(peer, True, client, server, sport, 53, dns_query(txid, q, qtype))
            self.out.emit_raw(t, rng.randrange(65536))
            answer = found and (qtype == 1 or has_aaaa)
            resp = dns_response(rng, txid, q, qtype, 0 if found else 3, answer)
            rt = udp_tpl(peer, False, server, client, 53, sport, resp)
            self.at(self.out.clock() + rng.randrange(150, 2500), self.out.emit_raw, rt,
                    rng.randrange(65536))
        if not found and i + 1 < len(cands):
            self.at(self.out.clock() + rng.randrange(2600, 4000), self._dns_try, peer, client, server,
                    sport, target, has_aaaa, cands, i + 1)


# --------------------------------------------------------------------------


def parse_size(s):
    s = s.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    return int(float(s[:-1] if s[-1:] in "KMG" else s) * mult)


def main(argv=None):
    global _RANDOM, AFTER_CAPTURE
    ap = argparse.ArgumentParser(description="Generate a large synthetic mixed k8s-node pcap.")
    ap.add_argument("out", help="output .pcap (put it in bench-data/, which is gitignored)")
    ap.add_argument("--size", default="1G", help="target size, suffix K/M/G (default 1G)")
    ap.add_argument("--seed", type=int, default=1, help="PRNG seed (default 1)")
    ap.add_argument("--flows", type=int, default=CONCURRENT,
                    help="concurrent TCP connections (default %d)" % CONCURRENT)
    ap.add_argument("--loss-after-capture", type=float, default=AFTER_CAPTURE, metavar="FRACTION",
                    help="share of lost segments that were captured before being lost (default "
                         "0; >0 makes tshark flag some retransmissions as malformed, see top)")
    args = ap.parse_args(argv)
    AFTER_CAPTURE = args.loss_after_capture
    target = parse_size(args.size)
    rng = random.Random(args.seed)
    _RANDOM = rng.randbytes(65536)
    d = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(d, exist_ok=True)
    t0 = time.perf_counter()
    out = Out(args.out, target, rng)
    g = Gen(out, rng)
    conns = [g.new_conn(midstream=rng.random() < 0.5) for _ in range(args.flows)]
    n = len(conns)
    rnd = rng.random
    clock = out.clock
    while not out.full():
        if g.heap and g.heap[0][0] <= clock():
            g.run_timers()
        i = int(rnd() * n)
        if not conns[i].step():
            conns[i] = g.new_conn()
        x = rnd()
        if x < 0.012:
            g.dns_lookup()
        elif x < 0.0135:
            g.unanswered_syn()
    out.close()
    dt = time.perf_counter() - t0
    size = os.path.getsize(args.out)
    packets, span = out.stats()
    print("%s: %d packets, %d bytes, %.2f s of traffic; generated in %.1f s (%.0f MB/s)"
          % (args.out, packets, size, span / 1e6, dt, size / dt / 1e6))


if __name__ == "__main__":
    main()
