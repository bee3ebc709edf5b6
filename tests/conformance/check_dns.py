#!/usr/bin/env python3
"""Conformance check: DNS query names, types and rcodes, `capsift table dns` against tshark.

Usage:
    python3 tests/conformance/check_dns.py [--capsift PATH] [--exceptions TSV]
                                           [--verbose] [--template] [--jobs N]
                                           [DIR_OR_FILE ...]

With no DIR_OR_FILE, `captures/` and `../shared/corpus/dns/` (relative to the repository
root) are scanned recursively; a missing one is reported as skipped. Captures are
recognised by their magic bytes (pcap, pcapng, gzip, zstd).

For every file, tshark runs once (`-T pdml`, so that every DNS message of a frame is
seen on its own, including several length-prefixed messages in one TCP segment) and
capsift once (`table dns --format ndjson`). Every DNS message on port 53 that tshark
decodes must correspond to capsift's transactions:

* a query: the first transmission is a capsift row's `frame` (same id, name, type); the
  number of queries per (name, type) equals the sum of 1 + `retransmits` over capsift's
  rows for that name and type;
* a response: it is a capsift row's `response_frame`, with the same id, name, type and
  rcode, and the row's query is the request tshark pairs it with (`dns.response_to`) or
  a retransmission of it.

See README.md beside this file. Only the Python 3 standard library and tshark are needed.

Exit status: 0 when everything matched (or every difference is covered by
dns-exceptions.tsv), 1 when a file failed or an exception is stale/invalid,
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

DEFAULT_DIRS = ["captures", "../shared/corpus/dns"]  # relative to the repository root
DEFAULT_EXCEPTIONS = SCRIPT_DIR / "dns-exceptions.tsv"
TSHARK_TIMEOUT = 900
CAPSIFT_TIMEOUT = 900
DNS_PORT = 53
# Copies of one packet at several capture points arrive microseconds apart (capsift's
# dedup window is 50 ms); used only to annotate differences.
COPY_WINDOW = 0.050
# Unexplained differences written on a file's line (all of them with --verbose).
MAX_DIFFS_ON_LINE = 10
# Frames or rows listed in a difference's note.
MAX_LIST = 12

# --- names ------------------------------------------------------------------------------

# What capsift prints for a record type: hickory-proto 0.25 `RecordType::from(u16)` then
# `Display`. Every other number prints as `Unknown` (the number is lost).
HICKORY_TYPES = {
    0: "ZERO", 1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 10: "NULL", 12: "PTR", 13: "HINFO",
    15: "MX", 16: "TXT", 24: "SIG", 25: "KEY", 28: "AAAA", 33: "SRV", 35: "NAPTR",
    37: "CERT", 41: "OPT", 43: "DS", 44: "SSHFP", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
    50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 59: "CDS", 60: "CDNSKEY", 61: "OPENPGPKEY",
    62: "CSYNC", 64: "SVCB", 65: "HTTPS", 250: "TSIG", 251: "IXFR", 252: "AXFR",
    255: "ANY", 257: "CAA", 65305: "ANAME",
}
# capsift's `rcode_name()`; anything above 10 prints as RCODEnn.
RCODE_NAMES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
               "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"]


def capsift_type_name(num: int) -> str:
    """The qtype capsift must print for record type `num` (RFC 3597 `TYPEnn`
    for the ones hickory-proto does not name)."""
    return HICKORY_TYPES.get(num, f"TYPE{num}")


def capsift_rcode_name(num: int) -> str:
    return RCODE_NAMES[num] if 0 <= num < len(RCODE_NAMES) else f"RCODE{num}"


def tshark_type_label(num: int, tshark_name: str) -> str:
    """tshark's short name for the type, with the number when capsift's name differs
    (`SPF(99)`, `Unknown(4660)`)."""
    name = tshark_name or "Unknown"
    if name == capsift_type_name(num):
        return name
    return f"{name}({num})"


def tshark_rcode_label(num: int) -> str:
    name = capsift_rcode_name(num)
    return name if name != "OTHER" else f"OTHER({num})"


def norm_name(name: str) -> str:
    if name == "<Root>":
        return ""
    return name.rstrip(".").lower()


# --- tshark -----------------------------------------------------------------------------

TSHARK_FILTER = "dns && (udp.port==53 || tcp.port==53)"


def tshark_command(path: str) -> list[str]:
    return ["tshark", "-n", "-r", path, "-d", "udp.port==8472,vxlan", "-Y", TSHARK_FILTER,
            "-T", "pdml"]


@dataclass
class TsMsg:
    frame: int
    ts: float
    response: bool
    id: int
    qname: str
    qtype: int | None          # None: no question
    qtype_name: str            # tshark's short name
    rcode: int | None          # header rcode | EDNS extended bits << 4 (responses)
    transport: str
    src: str
    sport: int
    dst: str
    dport: int
    point: tuple               # (interface id, sll ifindex, IP layers before DNS)
    response_to: int | None = None
    retrans_of: int | None = None   # tshark: retransmitted response, original in frame
    retransmission: bool = False
    malformed: bool = False

    @property
    def qtype_cs(self) -> str:
        return capsift_type_name(self.qtype if self.qtype is not None else 0)

    @property
    def qtype_label(self) -> str:
        return tshark_type_label(self.qtype if self.qtype is not None else 0,
                                 self.qtype_name if self.qtype is not None else "ZERO")

    def desc(self, with_rcode=False) -> str:
        s = f"{self.qname or '<root>'}/{self.qtype_label}"
        if with_rcode:
            s += "/" + (tshark_rcode_label(self.rcode) if self.rcode is not None else "-")
        return s

    def fingerprint(self):
        return (self.response, self.id, self.qname, self.qtype, self.rcode, self.src,
                self.sport, self.dst, self.dport, self.transport)


@dataclass
class TsharkResult(cc.PdmlResult):
    quoted: int = 0             # DNS inside ICMP error quotes (not messages of the frame)
    other_port: int = 0         # DNS messages whose own transport is not port 53


def _type_short(showname: str) -> str:
    """`Type: A (Host Address) (1)` -> `A`; `Type: * (A request ...) (255)` -> `ANY`;
    `Type: NULL RR (10)` -> `NULL`; `Type: Unknown (4660)` -> `Unknown`."""
    text = showname.split(":", 1)[1].strip() if ":" in showname else showname
    word = text.split(" ", 1)[0] if text else ""
    return "ANY" if word == "*" else word


def _fields(elem):
    """All descendant <field> elements with a name, in document order."""
    for f in elem.iter("field"):
        yield f


def parse_dns_proto(proto, frame, ts, transport, src, sport, dst, dport, point) -> TsMsg:
    rid = resp = rcode = qname = qtype = qtype_name = response_to = retrans_of = None
    ext = 0
    retrans = malformed = False
    opt_seen = False
    for f in _fields(proto):
        name = f.get("name", "")
        show = f.get("show", "")
        if name == "dns.id" and rid is None:
            rid = cc.int_or(show, 0)
        elif name == "dns.flags.response" and resp is None:
            resp = show == "1"
        elif name == "dns.flags.rcode" and rcode is None:
            rcode = cc.int_or(show, 0)
        elif name == "dns.qry.name" and qname is None:
            qname = show
        elif name == "dns.qry.type" and qtype is None:
            qtype = cc.int_or(show)
            qtype_name = _type_short(f.get("showname", ""))
        elif name == "dns.resp.ext_rcode" and not opt_seen:
            opt_seen = True
            ext = cc.int_or(show, 0) or 0
        elif name == "dns.response_to" and response_to is None:
            response_to = cc.int_or(show)
        elif name == "dns.retransmit_response_in" and retrans_of is None:
            retrans_of = cc.int_or(show)
        elif name == "dns.retransmission":
            retrans = True
    if resp and rcode is not None:
        rcode |= ext << 4
    return TsMsg(frame, ts, bool(resp), rid or 0, norm_name(qname or ""), qtype,
                 qtype_name or "", rcode if resp else None, transport, src, sport, dst,
                 dport, point, response_to, retrans_of, retrans, malformed)


def parse_packet(pkt, res: TsharkResult):
    frame, ts, iface, ifindex = 0, 0.0, None, None
    transport, src, dst, sport, dport = "", "", "", 0, 0
    quoted = False
    n_ip = 0
    for proto in pkt.findall("proto"):
        pname = proto.get("name", "")
        if pname == "geninfo":
            for f in proto.findall("field"):
                if f.get("name") == "num":
                    frame = cc.int_or(f.get("show"), 0)
                elif f.get("name") == "timestamp":
                    try:
                        ts = float(f.get("value", "0"))
                    except ValueError:
                        ts = 0.0
        elif pname == "frame":
            for f in proto.findall("field"):
                if f.get("name") == "frame.interface_id":
                    iface = f.get("show")
        elif pname in ("sll", "sll2"):
            for f in proto.iter("field"):
                if f.get("name") in ("sll.ifindex", "sll2.ifindex"):
                    ifindex = f.get("show")
                    break
        elif pname in ("icmp", "icmpv6"):
            quoted = True       # what follows (nested or not) is a quoted datagram
        elif pname in ("ip", "ipv6"):
            n_ip += 1
            pre = "ip." if pname == "ip" else "ipv6."
            for f in proto.findall("field"):
                if f.get("name") == pre + "src":
                    src = cc.norm_ip(f.get("show", ""))
                elif f.get("name") == pre + "dst":
                    dst = cc.norm_ip(f.get("show", ""))
        elif pname in ("udp", "tcp"):
            transport = pname
            for f in proto.findall("field"):
                if f.get("name") == pname + ".srcport":
                    sport = cc.int_or(f.get("show"), 0)
                elif f.get("name") == pname + ".dstport":
                    dport = cc.int_or(f.get("show"), 0)
        elif pname == "_ws.malformed":
            if res.msgs and res.msgs[-1].frame == frame:
                res.msgs[-1].malformed = True
        elif pname == "dns":
            if quoted:
                res.quoted += 1
                continue
            if DNS_PORT not in (sport, dport):
                res.other_port += 1
                continue
            res.msgs.append(parse_dns_proto(proto, frame, ts, transport, src, sport, dst,
                                            dport, (iface, ifindex, n_ip)))


def run_tshark(path: str, env: dict) -> TsharkResult:
    return cc.run_tshark_pdml(tshark_command(path), env, TsharkResult(), parse_packet,
                              TSHARK_TIMEOUT)


# --- capsift ----------------------------------------------------------------------------

@dataclass
class Row:
    n: int                      # row number (1-based)
    frame: int
    response_frame: int | None
    id: int
    qname: str
    qtype: str
    rcode: str | None
    retransmits: int
    client: str
    server: str
    transport: str

    def desc(self, with_rcode=False) -> str:
        s = f"{self.qname or '<root>'}/{self.qtype}"
        if with_rcode:
            s += "/" + (self.rcode or "-")
        return s


def row_from_json(n: int, r: dict) -> Row:
    rcode = r.get("rcode")
    return Row(
        n=n,
        frame=int(r["frame"]),
        response_frame=cc.int_or(r.get("response_frame")),
        id=int(r["id"]),
        qname=norm_name(str(r.get("qname") or "")),
        qtype=str(r.get("qtype") or ""),
        rcode=None if rcode is None else str(rcode),
        retransmits=cc.int_or(r.get("retransmits"), 0) or 0,
        client=cc.norm_ip(str(r.get("client_ip", ""))),
        server=cc.norm_ip(str(r.get("server_ip", ""))),
        transport=str(r.get("transport", "")),
    )


def run_capsift(capsift: str, path: str) -> cc.TableResult:
    cmd = [capsift, "table", "dns", "--format", "ndjson", "-q", path]
    return cc.capsift_table_rows(cmd, CAPSIFT_TIMEOUT, "dns", row_from_json)


# --- comparison -------------------------------------------------------------------------

class Diff(cc.Diff):
    """metric: query@F, queries@NAME/TYPE, copies@NAME/TYPE, retransmit@F, response@F,
    copy@F or pair@F."""


@dataclass
class Comparison:
    diffs: list = field(default_factory=list)
    queries: int = 0                 # tshark query messages
    first_tx: int = 0                # ... that are a capsift row's first transmission
    retrans: int = 0                 # tshark queries counted as retransmissions
    responses: int = 0               # tshark response messages
    responses_ok: int = 0            # ... matched with same name/type/rcode
    rows: int = 0
    copies: int = 0                  # tshark messages that are copies at another point
    unknown_types: set = field(default_factory=set)   # tshark labels capsift prints Unknown
    detail: list = field(default_factory=list)


def find_copies(msgs: list) -> dict:
    """id(message) -> frame of the original, for every tshark DNS message that repeats an
    identical message (same direction, id, question, rcode, addresses, ports, transport)
    seen within COPY_WINDOW at another capture point (interface, SLL ifindex, or tunnel
    depth). This is how capsift recognises copies of one packet at several capture points
    (`tcpdump -i any`); a repeat at the same point is a real retransmission."""
    seen: dict = defaultdict(list)      # fingerprint -> [(ts, point, frame)] of originals
    copies = {}
    for m in msgs:
        fp = m.fingerprint()
        seen[fp] = [e for e in seen[fp] if abs(m.ts - e[0]) <= COPY_WINDOW]
        orig = next((f for t, p, f in seen[fp]
                     if p != m.point and abs(m.ts - t) <= COPY_WINDOW), None)
        if orig is not None:
            copies[id(m)] = orig
        else:
            seen[fp].append((m.ts, m.point, m.frame))
    return copies


def compare(ts: TsharkResult, cr: cc.TableResult, verbose: bool) -> Comparison:
    cmp = Comparison(rows=len(cr.rows))
    queries = [m for m in ts.msgs if not m.response]
    responses = [m for m in ts.msgs if m.response]
    cmp.queries, cmp.responses = len(queries), len(responses)
    copies = find_copies(ts.msgs)
    cmp.copies = len(copies)
    for m in ts.msgs:
        if m.qtype is not None and capsift_type_name(m.qtype) == "Unknown":
            cmp.unknown_types.add(m.qtype_label)

    by_first: dict = defaultdict(list)          # (frame, id) -> rows
    by_resp: dict = defaultdict(list)           # (response_frame, id) -> rows
    for r in cr.rows:
        by_first[(r.frame, r.id)].append(r)
        if r.response_frame is not None:
            by_resp[(r.response_frame, r.id)].append(r)
    ts_query_at = defaultdict(list)             # frame -> tshark queries
    for m in queries:
        ts_query_at[m.frame].append(m)

    # 1. First transmissions: each capsift row's frame carries that query in tshark.
    claimed_rows: set = set()
    first_of: dict = {}                         # id(tshark msg) -> row
    for m in queries:
        cands = [r for r in by_first.get((m.frame, m.id), []) if r.n not in claimed_rows]
        if not cands:
            continue
        exact = [r for r in cands if r.qname == m.qname and r.qtype == m.qtype_cs]
        r = (exact or cands)[0]
        claimed_rows.add(r.n)
        first_of[id(m)] = r
        if exact:
            cmp.first_tx += 1
        else:
            cmp.diffs.append(Diff(f"query@{m.frame}", r.desc(), m.desc(),
                                  f"capsift row {r.n}: same frame and id {m.id}, "
                                  f"question differs"))
    for r in cr.rows:
        if r.n in claimed_rows:
            continue
        at = ts_query_at.get(r.frame, [])
        what = ", ".join(f"id {m.id} {m.desc()}" for m in at) or "no DNS query in this frame"
        cmp.diffs.append(Diff(f"query@{r.frame}", r.desc(), "-",
                              f"capsift row {r.n} id {r.id}; tshark: {what}"))

    # 2. Transmissions per (name, type): tshark's queries vs capsift's 1 + retransmits.
    ts_count: Counter = Counter((m.qname, m.qtype_cs) for m in queries)
    ts_orig: Counter = Counter((m.qname, m.qtype_cs) for m in queries if id(m) not in copies)
    cs_count: Counter = Counter()
    for r in cr.rows:
        cs_count[(r.qname, r.qtype)] += 1 + r.retransmits
    label_of = {(m.qname, m.qtype_cs): m.qtype_label for m in queries}
    for key in sorted(set(ts_count) | set(cs_count)):
        t, c = ts_count.get(key, 0), cs_count.get(key, 0)
        if t == c:
            continue
        name = f"{key[0] or '<root>'}/{label_of.get(key, key[1])}"
        of_key = [m for m in queries if (m.qname, m.qtype_cs) == key]
        copy_frames = [f"{m.frame}(copy of {copies[id(m)]})" for m in of_key if id(m) in copies]
        if c == ts_orig.get(key, 0):
            cmp.diffs.append(Diff(f"copies@{name}", str(c), str(t),
                                  "the extra tshark queries are copies at another capture "
                                  "point: " + cc.cap_list(copy_frames, MAX_LIST)))
            continue
        extra = []
        for m in of_key:
            if id(m) in first_of:
                continue
            tags = []
            if id(m) in copies:
                tags.append(f"copy of {copies[id(m)]}")
            if m.retransmission:
                tags.append("tshark: retransmission")
            extra.append(f"{m.frame}" + (f" [{', '.join(tags)}]" if tags else ""))
        rows = [f"row {r.n} frame {r.frame} retransmits {r.retransmits}" for r in cr.rows
                if (r.qname, r.qtype) == key]
        cmp.diffs.append(Diff(f"queries@{name}", str(c), str(t),
                              "tshark queries that are no capsift first transmission: "
                              + (cc.cap_list(extra, MAX_LIST) or "none") + "; capsift: "
                              + (cc.cap_list(rows, MAX_LIST) or "no row")))
    cmp.retrans = sum(1 for m in queries if id(m) not in first_of)
    # A further transmission belongs to the capsift row it repeats (same client, server,
    # id and question, asked before it and not yet answered). A retry over another
    # transport (TCP after a truncated UDP answer) is a new transaction, not a
    # retransmission: tshark answers it on its own connection.
    for m in queries:
        if id(m) in first_of or id(m) in copies:
            continue
        pending = [r for r in cr.rows if r.client == m.src and r.server == m.dst
                   and r.id == m.id and r.qname == m.qname and r.qtype == m.qtype_cs
                   and r.frame < m.frame
                   and (r.response_frame is None or r.response_frame > m.frame)]
        if pending and pending[-1].transport != m.transport:
            r = pending[-1]
            cmp.diffs.append(Diff(f"retransmit@{m.frame}", f"{r.transport}:{r.frame}",
                                  m.transport, f"capsift counts this {m.transport} query "
                                  f"as a retransmission of its {r.transport} row {r.n}"))

    # 3. Responses: each is a capsift row's response_frame, same question and rcode.
    claimed_resp: set = set()
    resp_of: dict = {}                          # id(tshark response) -> row
    for m in responses:
        cands = [r for r in by_resp.get((m.frame, m.id), []) if r.n not in claimed_resp]
        if not cands:
            if id(m) in copies:
                cmp.diffs.append(Diff(f"copy@{m.frame}", "-", m.desc(True),
                                      f"copy of frame {copies[id(m)]} at another capture "
                                      f"point"))
                continue
            hints = []
            if m.retrans_of is not None:
                hints.append(f"tshark: retransmitted response, original in frame "
                             f"{m.retrans_of}")
            same = [r for r in cr.rows if r.id == m.id and r.qname == m.qname
                    and r.qtype == m.qtype_cs]
            if same:
                hints.append("capsift rows with this id and question: " + ", ".join(
                    f"{r.transport} frame {r.frame} response_frame {r.response_frame}"
                    for r in same[:4]))
            if m.response_to is not None:
                hints.append(f"tshark pairs it with query frame {m.response_to}")
            elif not same:
                hints.append("tshark finds no query for it either")
            cmp.diffs.append(Diff(f"response@{m.frame}", "-", m.desc(True), "; ".join(hints)))
            continue
        exact = [r for r in cands if r.qname == m.qname and r.qtype == m.qtype_cs
                 and r.rcode == capsift_rcode_name(m.rcode if m.rcode is not None else -1)]
        r = (exact or cands)[0]
        claimed_resp.add(r.n)
        resp_of[id(m)] = r
        if not exact:
            cmp.diffs.append(Diff(f"response@{m.frame}", r.desc(True), m.desc(True),
                                  f"capsift row {r.n} (query frame {r.frame})"))
            continue
        cmp.responses_ok += 1
        # Pairing: tshark's request for this response must be the row's query or a
        # retransmission of it (same id, name and type, from the same client).
        q = m.response_to
        if q is not None and q != r.frame:
            same_q = [x for x in ts_query_at.get(q, []) if x.id == r.id and x.qname == r.qname
                      and x.qtype_cs == r.qtype and x.src == r.client]
            if not same_q:
                cmp.diffs.append(Diff(f"pair@{m.frame}", str(r.frame), str(q),
                                      "capsift and tshark pair this response with "
                                      "different queries"))
    for r in cr.rows:
        if r.response_frame is not None and r.n not in claimed_resp:
            at = [m for m in responses if m.frame == r.response_frame]
            what = (", ".join(f"id {m.id} {m.desc(True)}" for m in at)
                    or "no DNS response in this frame")
            cmp.diffs.append(Diff(f"response@{r.response_frame}", r.desc(True), "-",
                                  f"capsift row {r.n} id {r.id} (query frame {r.frame}); "
                                  f"tshark: {what}"))

    if verbose:
        for m in ts.msgs:
            r = resp_of.get(id(m)) if m.response else first_of.get(id(m))
            tag = "Q" if not m.response else "R"
            line = (f"    {tag} frame {m.frame:>6} id {m.id:>5} {m.transport} "
                    f"{m.src}:{m.sport} > {m.dst}:{m.dport} {m.desc(m.response)}")
            if m.response_to is not None:
                line += f" response_to={m.response_to}"
            if m.retransmission:
                line += " [tshark: retransmission]"
            if id(m) in copies:
                line += f" [copy of frame {copies[id(m)]}]"
            if m.malformed:
                line += " [tshark: malformed]"
            if r is not None and m.response:
                line += f"  = capsift row {r.n} response"
            elif r is not None:
                line += f"  = capsift row {r.n} (retransmits={r.retransmits})"
            cmp.detail.append(line)
        for r in cr.rows:
            cmp.detail.append(f"    capsift row {r.n}: frame {r.frame} id {r.id} {r.transport} "
                              f"{r.client} > {r.server} {r.desc(True)} "
                              f"retransmits={r.retransmits} response_frame={r.response_frame}")
    return cmp


# --- per file ---------------------------------------------------------------------------

def process(cap: cc.Capture, capsift: str, env: dict) -> cc.TableOutcome:
    out = cc.TableOutcome(cap)
    out.ts = cc.run_tshark_on(cap, out, "capsift-dnsconf-",
                              lambda path: run_tshark(path, env), TSHARK_TIMEOUT)
    if out.ts is not None:
        out.cs = run_capsift(capsift, str(cap.path))
    return out


def describe(out: cc.TableOutcome, cmp: Comparison):
    """(summary, notes, parts) of a file's line, see cc.judge_table."""
    ts, cs = out.ts, out.cs
    notes, parts = [], []
    if ts.quoted:
        notes.append(f"{ts.quoted} DNS message(s) inside ICMP quotes not compared")
    if ts.other_port:
        notes.append(f"{ts.other_port} DNS message(s) not on port 53 in their own "
                     f"transport not compared")
    if not ts.msgs and not cs.rows and not cs.crash:
        summary = "no DNS on port 53"
    else:
        summary = (f"{cmp.queries} queries ({cmp.first_tx}/{cmp.rows} capsift rows "
                   f"matched at their first frame, {cmp.retrans} further transmissions), "
                   f"{cmp.responses_ok}/{cmp.responses} responses agree on name/type/rcode")
    if cmp.copies:
        parts.append(f"{cmp.copies} tshark messages are copies at another capture point")
    if cmp.unknown_types:
        parts.append("capsift prints Unknown for " + ", ".join(sorted(cmp.unknown_types)))
    return summary, notes, parts


def judge(out: cc.TableOutcome, exceptions: list[cc.Exc], verbose: bool):
    return cc.judge_table(out, exceptions, verbose, MAX_DIFFS_ON_LINE, "dns-exceptions",
                          compare, describe)


def main(argv=None) -> int:
    ap = cc.new_parser("Compare capsift's DNS transactions (table dns) with tshark's DNS "
                       "messages: query names, types, retransmissions, responses and rcodes.",
                       DEFAULT_DIRS, DEFAULT_EXCEPTIONS)
    cc.add_verbose_option(ap, "list every tshark DNS message and every capsift row")
    cc.add_template_option(ap)
    cc.add_jobs_option(ap)
    args = ap.parse_args(argv)

    st = cc.setup(args, DEFAULT_DIRS, DEFAULT_EXCEPTIONS)
    if st is None:
        return 2

    return cc.check_files(st, args.jobs, lambda c, env: process(c, st.capsift, env),
                          lambda out: judge(out, st.exceptions, args.verbose),
                          "capsift-dnsconf-profile-", "dns-conformance", args.template)


if __name__ == "__main__":
    sys.exit(main())
