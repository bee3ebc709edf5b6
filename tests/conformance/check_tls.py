#!/usr/bin/env python3
"""Conformance check: TLS SNIs and leaf-certificate SAN dNSNames, `capsift table tls`
against tshark.

Usage:
    python3 tests/conformance/check_tls.py [--capsift PATH] [--exceptions TSV]
                                           [--verbose] [--template] [--no-decode-as]
                                           [--jobs N] [DIR_OR_FILE ...]

With no DIR_OR_FILE, `captures/` and `../shared/corpus/tls/` (relative to the repository
root) are scanned recursively; a missing one is reported as skipped. Captures are
recognised by their magic bytes (pcap, pcapng, gzip, zstd).

For every file, capsift runs once (`table tls --format ndjson`) and tshark once
(`-T pdml`, only frames with a ClientHello or a Certificate message, with TCP and TLS
reassembly on). Two things are compared:

* SNIs: the multiset of server names in tshark's ClientHellos over TCP (lower-cased)
  against the non-null `sni` values of capsift's rows;
* leaf SANs: for each connection (unordered ip:port pair), the dNSName entries of the
  subjectAltName extension of the FIRST certificate of each server Certificate message
  (byte for byte, taken from the PDML `value`, so an embedded NUL is kept) against the
  `cert_san` of capsift's rows that have a certificate (`chain_length` > 0), paired in
  frame order.

When capsift reports a handshake on a connection where tshark decoded no TLS (a port
tshark does not know), tshark runs a second time with `-d tcp.port==P,tls` for those
server ports (unless --no-decode-as); the file's line says so.

See README.md beside this file. Only the Python 3 standard library and tshark are needed.

Exit status: 0 when everything matched (or every difference is covered by
tls-exceptions.tsv), 1 when a file failed or an exception is stale/invalid,
2 on a usage/setup error.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPT_DIR))
import conformance_common as cc  # noqa: E402  (the shared module beside this script)

DEFAULT_DIRS = ["captures", "../shared/corpus/tls"]  # relative to the repository root
DEFAULT_EXCEPTIONS = SCRIPT_DIR / "tls-exceptions.tsv"
TSHARK_TIMEOUT = 900
CAPSIFT_TIMEOUT = 900
# capsift keeps at most this many SAN dNSNames per certificate (src/tls/cert.rs MAX_SAN).
CAPSIFT_MAX_SAN = 512
# Unexplained differences written on a file's line (all of them with --verbose).
MAX_DIFFS_ON_LINE = 10
# Frames or rows listed in a difference's note.
MAX_LIST = 8
# Longest value written in a DIFF (the exceptions file is matched against the full value).
MAX_VALUE_SHOWN = 160
SAN_OID = "2.5.29.17"

# --- names ------------------------------------------------------------------------------


def esc(text: str) -> str:
    """A name as written in DIFFs and in the exceptions file: control characters, space,
    DEL and backslash as \\xNN, everything else as is."""
    return "".join(f"\\x{ord(ch):02x}" if ord(ch) <= 0x20 or ord(ch) == 0x7f or ch == "\\"
                   else ch for ch in text)


def san_value(names) -> str:
    """`-` no certificate, `(none)` a leaf without SAN dNSName, else the escaped names."""
    if names is None:
        return "-"
    if not names:
        return "(none)"
    return " ".join(esc(n) for n in names)


def shorten(text: str, limit: int = MAX_VALUE_SHOWN) -> str:
    return text if len(text) <= limit else text[:limit] + f"...(+{len(text) - limit} chars)"


def field_bytes(f) -> bytes:
    """The raw bytes of a PDML field (its `value` hex); `show` if there is no value."""
    v = f.get("value")
    if v:
        try:
            return bytes.fromhex(v)
        except ValueError:
            pass
    return (f.get("show") or "").encode("utf-8", "surrogateescape")


def as_text(raw: bytes) -> str:
    """What capsift prints for raw name bytes (String::from_utf8_lossy)."""
    return raw.decode("utf-8", "replace")


# --- tshark -----------------------------------------------------------------------------

TSHARK_FILTER = "tls.handshake.type == 1 || tls.handshake.type == 11"


def tshark_command(path: str, decode_ports=()) -> list[str]:
    cmd = ["tshark", "-n", "-r", path, "-d", "udp.port==8472,vxlan",
           "-o", "tcp.desegment_tcp_streams:TRUE", "-o", "tls.desegment_ssl_records:TRUE"]
    for p in sorted(decode_ports):
        cmd += ["-d", f"tcp.port=={p},tls"]
    return cmd + ["-Y", TSHARK_FILTER, "-T", "pdml"]


@dataclass
class TsMsg:
    """One ClientHello or Certificate handshake message tshark decoded over TCP."""
    frame: int
    kind: str                    # "ch" (ClientHello) or "cert" (Certificate)
    src: str
    sport: int
    dst: str
    dport: int
    stream: str
    sni: str | None = None       # ClientHello: first host_name, lower-cased
    sni_names: int = 0           # ClientHello: server_name entries
    sslv2: bool = False          # ClientHello in SSLv2 record format
    chain: int = 0               # Certificate: certificates in the message
    sans: list | None = None     # Certificate: leaf SAN dNSNames (None: no leaf)
    san_exts: int = 0            # Certificate: subjectAltName extensions in the leaf
    leaf_decoded: bool = False   # Certificate: tshark decoded the leaf's TBSCertificate
    malformed: bool = False
    from_client: bool = False    # Certificate: sent by the side that sent the ClientHello

    @property
    def key(self) -> str:
        return cc.flow_key(self.src, self.sport, self.dst, self.dport)


@dataclass
class TsharkResult(cc.PdmlResult):
    quoted: int = 0              # TLS inside ICMP error quotes
    other_transport: int = 0     # ClientHellos not over TCP (QUIC, DTLS, ...)


def _find(elem, name):
    for c in elem:
        if c.tag == "field" and c.get("name") == name:
            return c
    return None


def _messages(tls_proto):
    """Handshake messages of a top-level `tls` proto element, in order: each
    `tls.handshake`; an SSLv2 record carries its type directly."""
    for rec in tls_proto.iter("field"):
        if rec.get("name") != "tls.record":
            continue
        msgs = [c for c in rec if c.tag == "field" and c.get("name") == "tls.handshake"]
        if msgs:
            yield from ((m, False) for m in msgs)
        elif _find(rec, "tls.handshake.type") is not None:
            yield rec, True


def parse_client_hello(msg, m: TsMsg):
    last_type = None
    names = []
    for f in msg.iter("field"):
        n = f.get("name")
        if n == "tls.handshake.extensions_server_name_type":
            last_type = cc.int_or(f.get("show"), None)
        elif n == "tls.handshake.extensions_server_name":
            names.append((last_type, field_bytes(f)))
    m.sni_names = len(names)
    host = next((raw for t, raw in names if t in (0, None)), None)
    if host is not None:
        m.sni = as_text(host.lower())


def parse_certificate(msg, m: TsMsg):
    certs = [f for f in msg.iter("field") if f.get("name") == "tls.handshake.certificate"]
    m.chain = len(certs)
    if not certs:
        return
    leaf = certs[0]
    m.sans = []
    for f in leaf.iter():
        n = f.get("name")
        if n == "x509af.signedCertificate_element":
            m.leaf_decoded = True
        elif n == "_ws.malformed":
            m.malformed = True
        elif n == "x509af.Extension_element":
            oid = _find(f, "x509af.extension.id")
            if oid is None or oid.get("show") != SAN_OID:
                continue
            m.san_exts += 1
            for d in f.iter("field"):
                if d.get("name") == "x509ce.dNSName":
                    m.sans.append(as_text(field_bytes(d)))


def _has_client_hello(elem) -> int:
    n = 0
    for f in elem.iter():
        if f.get("name") == "tls.handshake.type" and f.get("show") == "1":
            n += 1
    return n


def parse_packet(pkt, res: TsharkResult):
    frame = 0
    src = dst = stream = ""
    sport = dport = 0
    have_tcp = quoted = False
    for proto in pkt.findall("proto"):
        pname = proto.get("name", "")
        if pname == "geninfo":
            for f in proto.findall("field"):
                if f.get("name") == "num":
                    frame = cc.int_or(f.get("show"), 0)
        elif pname in ("icmp", "icmpv6"):
            quoted = True       # what follows is a quoted datagram
        elif quoted:
            if pname == "tls":
                res.quoted += 1
        elif pname in ("ip", "ipv6"):
            pre = pname + "."
            for f in proto.findall("field"):
                if f.get("name") == pre + "src":
                    src = cc.norm_ip(f.get("show", ""))
                elif f.get("name") == pre + "dst":
                    dst = cc.norm_ip(f.get("show", ""))
            have_tcp = False
        elif pname == "tcp":
            have_tcp = True
            for f in proto.findall("field"):
                n = f.get("name")
                if n == "tcp.srcport":
                    sport = cc.int_or(f.get("show"), 0)
                elif n == "tcp.dstport":
                    dport = cc.int_or(f.get("show"), 0)
                elif n == "tcp.stream":
                    stream = f.get("show", "")
        elif pname == "tls" and have_tcp:
            for msg, sslv2 in _messages(proto):
                t = _find(msg, "tls.handshake.type")
                kind = {"1": "ch", "11": "cert"}.get(t.get("show") if t is not None else "")
                if kind is None:
                    continue
                m = TsMsg(frame, kind, src, sport, dst, dport, stream, sslv2=sslv2)
                if kind == "ch":
                    parse_client_hello(msg, m)
                else:
                    parse_certificate(msg, m)
                res.msgs.append(m)
        elif pname not in ("frame", "eth", "sll", "sll2", "vlan", "udp", "vxlan", "geneve",
                           "gre", "_ws.malformed", "_ws.expert"):
            res.other_transport += _has_client_hello(proto)


def run_tshark(path: str, env: dict, decode_ports=()) -> TsharkResult:
    res = cc.run_tshark_pdml(tshark_command(path, decode_ports), env, TsharkResult(),
                             parse_packet, TSHARK_TIMEOUT)
    # A Certificate message sent by the side that sent the connection's first ClientHello
    # is a client certificate (capsift reports the server's only).
    client_of: dict = {}
    for m in res.msgs:
        if m.kind == "ch":
            client_of.setdefault((m.key, m.stream), (m.src, m.sport))
    for m in res.msgs:
        if m.kind == "cert" and client_of.get((m.key, m.stream)) == (m.src, m.sport):
            m.from_client = True
    return res


# --- capsift ----------------------------------------------------------------------------

@dataclass
class Row:
    n: int
    frame: int
    client: str
    cport: int
    server: str
    sport: int
    tunnel: str
    sni: str | None
    cert_san: str
    chain_length: int
    verdict: str

    @property
    def key(self) -> str:
        return cc.flow_key(self.client, self.cport, self.server, self.sport)

    @property
    def sans(self) -> list:
        return self.cert_san.split(" ") if self.cert_san else []


def row_from_json(n: int, r: dict) -> Row:
    sni = r.get("sni")
    return Row(
        n=n,
        frame=int(r["frame"]),
        client=cc.norm_ip(str(r["client_ip"])),
        cport=int(r["client_port"]),
        server=cc.norm_ip(str(r["server_ip"])),
        sport=int(r["server_port"]),
        tunnel=str(r.get("tunnel") or ""),
        sni=None if sni is None else str(sni),
        cert_san=str(r.get("cert_san") or ""),
        chain_length=cc.int_or(r.get("chain_length"), 0) or 0,
        verdict=str(r.get("verdict") or ""),
    )


def run_capsift(capsift: str, path: str) -> cc.TableResult:
    cmd = [capsift, "table", "tls", "--format", "ndjson", "-q", path]
    return cc.capsift_table_rows(cmd, CAPSIFT_TIMEOUT, "tls", row_from_json)


# --- comparison -------------------------------------------------------------------------

class Diff(cc.Diff):
    """metric: sni@NAME or san@KEY[#n]; long values are shortened on the file's line."""

    def show(self, value: str) -> str:
        return shorten(value)

    def show_expected(self, value: str) -> str:
        return shorten(value, 60)


@dataclass
class Comparison:
    diffs: list = field(default_factory=list)
    hellos: int = 0              # tshark ClientHellos over TCP
    hellos_sni: int = 0          # ... with a server name
    rows: int = 0
    rows_sni: int = 0
    sni_agree: int = 0           # SNIs in both multisets
    certs: int = 0               # tshark server Certificate messages with a certificate
    certs_agree: int = 0         # ... paired with a capsift row with the same leaf SANs
    client_certs: int = 0        # tshark Certificate messages sent by the client
    detail: list = field(default_factory=list)


def _set_delta(cs: list, ts: list) -> str:
    c, t = Counter(cs), Counter(ts)
    only_c, only_t = list((c - t).elements()), list((t - c).elements())
    parts = []
    if only_c:
        parts.append(f"{len(only_c)} only in capsift: " + cc.cap_list([esc(n) for n in only_c], 4))
    if only_t:
        parts.append(f"{len(only_t)} only in tshark: " + cc.cap_list([esc(n) for n in only_t], 4))
    if not parts:
        parts.append("same names, different order" if cs != ts else "")
    return "; ".join(p for p in parts if p)


def compare(ts: TsharkResult, cr: cc.TableResult, verbose: bool) -> Comparison:
    cmp = Comparison(rows=len(cr.rows))
    hellos = [m for m in ts.msgs if m.kind == "ch"]
    certs = [m for m in ts.msgs if m.kind == "cert" and m.sans is not None]
    cmp.client_certs = sum(1 for m in certs if m.from_client)
    certs = [m for m in certs if not m.from_client]
    cmp.hellos = len(hellos)
    cmp.hellos_sni = sum(1 for m in hellos if m.sni is not None)
    cmp.rows_sni = sum(1 for r in cr.rows if r.sni is not None)
    cmp.certs = len(certs)

    # 1. SNIs: multiset per file.
    ts_sni = Counter(m.sni for m in hellos if m.sni is not None)
    cs_sni = Counter(r.sni for r in cr.rows if r.sni is not None)
    cmp.sni_agree = sum((ts_sni & cs_sni).values())
    for name in sorted(set(ts_sni) | set(cs_sni)):
        c, t = cs_sni.get(name, 0), ts_sni.get(name, 0)
        if c == t:
            continue
        tf = [m for m in hellos if m.sni == name]
        cf = [r for r in cr.rows if r.sni == name]
        hints = [f"tshark ClientHello frames: " + (cc.cap_list(
            [f"{m.frame}" + (f" [{m.key}]" if len(set(x.key for x in tf)) > 1 else "")
             for m in tf], MAX_LIST) or "none")]
        hints.append("capsift rows: " + (cc.cap_list(
            [f"frame {r.frame}" + (f" [{r.key}]" if len(set(x.key for x in cf)) > 1 else "")
             for r in cf], MAX_LIST) or "none"))
        per_conn = Counter(m.key for m in tf)
        again = [k for k, v in per_conn.items() if v > 1]
        if again:
            hints.append(f"tshark sees several ClientHellos on one connection: "
                         + cc.cap_list(again, 3))
        cs_keys = {r.key for r in cr.rows}
        missing = sorted({m.key for m in tf} - cs_keys)
        if missing and c < t:
            hints.append("capsift has no row for " + cc.cap_list(missing, 3))
        ts_keys = {m.key for m in ts.msgs}
        extra = sorted({r.key for r in cf} - ts_keys)
        if extra and c > t:
            hints.append("tshark decoded no TLS on " + cc.cap_list(extra, 3))
        cmp.diffs.append(Diff(f"sni@{esc(name)}", str(c), str(t), "; ".join(hints)))

    # 2. Leaf SANs per connection, server certificates paired with capsift rows that have a
    #    certificate, in frame order.
    ts_by_key: dict = defaultdict(list)
    for m in certs:
        ts_by_key[m.key].append(m)
    cs_by_key: dict = defaultdict(list)
    rows_by_key: dict = defaultdict(list)
    for r in cr.rows:
        rows_by_key[r.key].append(r)
        if r.chain_length > 0:
            cs_by_key[r.key].append(r)
    for key in sorted(set(ts_by_key) | set(cs_by_key)):
        tl = sorted(ts_by_key.get(key, []), key=lambda m: m.frame)
        cl = sorted(cs_by_key.get(key, []), key=lambda r: r.frame)
        for i in range(max(len(tl), len(cl))):
            m = tl[i] if i < len(tl) else None
            r = cl[i] if i < len(cl) else None
            metric = f"san@{key}" + (f"#{i + 1}" if i else "")
            tv = san_value(m.sans) if m else "-"
            cv = san_value(r.sans) if r else "-"
            # capsift joins its names with spaces: compare the joined text, so that a
            # name with a space in it cannot make a false match or a false difference.
            same = m is not None and r is not None and r.cert_san == " ".join(m.sans)
            if same:
                cmp.certs_agree += 1
                continue
            hints = []
            if m is not None:
                hints.append(f"tshark Certificate frame {m.frame}, chain {m.chain}")
                if m.san_exts > 1:
                    hints.append(f"tshark: the leaf has {m.san_exts} subjectAltName "
                                 f"extensions")
                if not m.leaf_decoded:
                    hints.append("tshark did not decode the leaf")
                if m.malformed:
                    hints.append("tshark: malformed certificate")
            if r is not None:
                hints.append(f"capsift row {r.n} frame {r.frame}, chain_length "
                             f"{r.chain_length}, verdict {r.verdict}")
            elif m is not None:
                others = rows_by_key.get(key, [])
                hints.append("capsift: " + (", ".join(
                    f"row {x.n} frame {x.frame} chain_length {x.chain_length} "
                    f"verdict {x.verdict}" for x in others[:3])
                    if others else "no row for this connection"))
            if m is not None and r is not None:
                delta = _set_delta(r.sans, m.sans)
                if delta:
                    hints.append(delta)
                if (len(m.sans) > CAPSIFT_MAX_SAN
                        and r.sans == m.sans[:CAPSIFT_MAX_SAN]):
                    hints.append(f"capsift keeps the first {CAPSIFT_MAX_SAN}")
            cmp.diffs.append(Diff(metric, cv, tv, "; ".join(hints)))

    if verbose:
        for m in ts.msgs:
            line = (f"    {m.kind:<4} frame {m.frame:>6} {m.src}:{m.sport} > "
                    f"{m.dst}:{m.dport} stream {m.stream}")
            if m.kind == "ch":
                line += f" sni={esc(m.sni) if m.sni is not None else '-'}"
                if m.sni_names > 1:
                    line += f" ({m.sni_names} server_name entries)"
                if m.sslv2:
                    line += " [SSLv2 record]"
            else:
                line += f" chain={m.chain} leaf_san={shorten(san_value(m.sans))}"
                if m.from_client:
                    line += " [client certificate, not compared]"
                if m.malformed:
                    line += " [tshark: malformed]"
            cmp.detail.append(line)
        for r in cr.rows:
            cmp.detail.append(
                f"    capsift row {r.n}: frame {r.frame} {r.client}:{r.cport} > "
                f"{r.server}:{r.sport}" + (f" tunnel {r.tunnel}" if r.tunnel else "")
                + f" sni={esc(r.sni) if r.sni is not None else '-'} "
                f"chain_length={r.chain_length} cert_san="
                f"{shorten(san_value(r.sans if r.chain_length else None))}")
    return cmp


# --- per file ---------------------------------------------------------------------------

def undecoded_ports(ts: TsharkResult, cs: cc.TableResult) -> set:
    """Server ports of capsift handshakes (with an SNI or a certificate) on connections
    where tshark decoded no ClientHello or Certificate."""
    seen = {m.key for m in ts.msgs}
    return {r.sport for r in cs.rows
            if r.key not in seen and (r.sni is not None or r.chain_length > 0)}


def process(cap: cc.Capture, capsift: str, env: dict, decode_as: bool) -> cc.TableOutcome:
    out = cc.TableOutcome(cap)
    out.cs = run_capsift(capsift, str(cap.path))

    def run(path: str) -> TsharkResult:
        ts = run_tshark(path, env)
        ports = undecoded_ports(ts, out.cs) if decode_as else set()
        if ports:
            ts = run_tshark(path, env, ports)
            out.notes.append("tshark run with " + " ".join(
                f"-d tcp.port=={p},tls" for p in sorted(ports)))
        return ts

    out.ts = cc.run_tshark_on(cap, out, "capsift-tlsconf-", run, TSHARK_TIMEOUT)
    return out


def describe(out: cc.TableOutcome, cmp: Comparison):
    """(summary, notes, parts) of a file's line, see cc.judge_table."""
    ts, cs = out.ts, out.cs
    notes = []
    if ts.quoted:
        notes.append(f"{ts.quoted} TLS record(s) inside ICMP quotes not compared")
    if ts.other_transport:
        notes.append(f"{ts.other_transport} ClientHello(s) not over TCP (QUIC, DTLS, ...) "
                     f"not compared")
    if cmp.client_certs:
        notes.append(f"{cmp.client_certs} client Certificate message(s) not compared")
    if not ts.msgs and not cs.rows and not cs.crash:
        return "no TLS handshakes", notes, []
    return (f"SNI {cmp.sni_agree} agree (tshark {cmp.hellos_sni} of {cmp.hellos} "
            f"ClientHellos, capsift {cmp.rows_sni} of {cmp.rows} rows), leaf SANs "
            f"{cmp.certs_agree}/{cmp.certs} server certificates agree"), notes, []


def judge(out: cc.TableOutcome, exceptions: list[cc.Exc], verbose: bool):
    return cc.judge_table(out, exceptions, verbose, MAX_DIFFS_ON_LINE, "tls-exceptions",
                          compare, describe)


def main(argv=None) -> int:
    ap = cc.new_parser("Compare capsift's TLS handshakes (table tls) with tshark's: the SNIs "
                       "of the ClientHellos and the SAN dNSNames of the servers' leaf "
                       "certificates.", DEFAULT_DIRS, DEFAULT_EXCEPTIONS)
    cc.add_verbose_option(ap, "list every ClientHello and Certificate tshark decoded and "
                              "every capsift row")
    cc.add_template_option(ap)
    ap.add_argument("--no-decode-as", dest="decode_as", action="store_false",
                    help="do not re-run tshark with -d tcp.port==P,tls for server ports "
                         "where capsift found TLS and tshark decoded none")
    cc.add_jobs_option(ap)
    args = ap.parse_args(argv)

    st = cc.setup(args, DEFAULT_DIRS, DEFAULT_EXCEPTIONS)
    if st is None:
        return 2

    return cc.check_files(st, args.jobs,
                          lambda c, env: process(c, st.capsift, env, args.decode_as),
                          lambda out: judge(out, st.exceptions, args.verbose),
                          "capsift-tlsconf-profile-", "tls-conformance", args.template)


if __name__ == "__main__":
    sys.exit(main())
