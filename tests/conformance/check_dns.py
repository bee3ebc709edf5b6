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

import argparse
import concurrent.futures
import ctypes
import ctypes.util
import fnmatch
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
DEFAULT_DIRS = ["captures", "../shared/corpus/dns"]  # relative to REPO_ROOT
DEFAULT_EXCEPTIONS = SCRIPT_DIR / "dns-exceptions.tsv"
TSHARK_TIMEOUT = 900
CAPSIFT_TIMEOUT = 900
DNS_PORT = 53
# Copies of one packet at several capture points arrive microseconds apart (capsift's
# dedup window is 50 ms); used only to annotate differences.
COPY_WINDOW = 0.050
# Unexplained differences written on a file's line (all of them with --verbose).
MAX_DIFFS_ON_LINE = 10

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


def norm_ip(text: str) -> str:
    try:
        return ipaddress.ip_address(text.strip()).compressed
    except ValueError:
        return text.strip()


def _int(text, default=None):
    if text is None:
        return default
    if isinstance(text, bool):
        return int(text)
    if isinstance(text, int):
        return text
    try:
        return int(str(text).strip(), 0)
    except ValueError:
        return default


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
class TsharkResult:
    msgs: list = field(default_factory=list)
    exit_code: int = 0
    error: str = ""
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
            rid = _int(show, 0)
        elif name == "dns.flags.response" and resp is None:
            resp = show == "1"
        elif name == "dns.flags.rcode" and rcode is None:
            rcode = _int(show, 0)
        elif name == "dns.qry.name" and qname is None:
            qname = show
        elif name == "dns.qry.type" and qtype is None:
            qtype = _int(show)
            qtype_name = _type_short(f.get("showname", ""))
        elif name == "dns.resp.ext_rcode" and not opt_seen:
            opt_seen = True
            ext = _int(show, 0) or 0
        elif name == "dns.response_to" and response_to is None:
            response_to = _int(show)
        elif name == "dns.retransmit_response_in" and retrans_of is None:
            retrans_of = _int(show)
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
                    frame = _int(f.get("show"), 0)
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
                    src = norm_ip(f.get("show", ""))
                elif f.get("name") == pre + "dst":
                    dst = norm_ip(f.get("show", ""))
        elif pname in ("udp", "tcp"):
            transport = pname
            for f in proto.findall("field"):
                if f.get("name") == pname + ".srcport":
                    sport = _int(f.get("show"), 0)
                elif f.get("name") == pname + ".dstport":
                    dport = _int(f.get("show"), 0)
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
    res = TsharkResult()
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(tshark_command(path), stdout=subprocess.PIPE, stderr=errf,
                                env=env)
        try:
            try:
                for event, elem in ET.iterparse(proc.stdout, events=("end",)):
                    if elem.tag == "packet":
                        parse_packet(elem, res)
                        elem.clear()
            except ET.ParseError as e:
                # tshark stopped mid-document (damaged capture); keep what was read.
                res.error = f"PDML cut short ({e})"
            proc.wait(timeout=TSHARK_TIMEOUT)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        errf.seek(0)
        err = "\n".join(l for l in errf.read().decode("utf-8", "replace").splitlines()
                        if l.strip() and "Running as user" not in l)
    res.exit_code = proc.returncode
    if proc.returncode:
        res.error = err or res.error
    return res


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


@dataclass
class CapsiftResult:
    rows: list = field(default_factory=list)
    error: str = ""
    crash: str = ""


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def run_capsift(capsift: str, path: str) -> CapsiftResult:
    cmd = [capsift, "table", "dns", "--format", "ndjson", "-q", path]
    res = CapsiftResult()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=CAPSIFT_TIMEOUT)
    except subprocess.TimeoutExpired:
        res.crash = f"capsift timed out after {CAPSIFT_TIMEOUT}s"
        return res
    except OSError as e:
        res.crash = f"cannot run capsift: {e}"
        return res
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode < 0:
        res.crash = f"capsift killed by signal {-proc.returncode}"
        return res
    if "panicked at" in stderr or proc.returncode == 101:
        tail = stderr[stderr.find("panicked at"):] if "panicked at" in stderr else stderr
        res.crash = ("capsift panicked (exit %d): " % proc.returncode
                     + " ".join(l.strip() for l in tail.splitlines() if l.strip())[:300])
        return res
    if proc.returncode != 0:
        res.error = f"capsift exit {proc.returncode}: {_first_line(stderr)}"
    n = 0
    for no, line in enumerate(proc.stdout.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            if not isinstance(r, dict):
                raise TypeError("not an object")
            n += 1
            rcode = r.get("rcode")
            res.rows.append(Row(
                n=n,
                frame=int(r["frame"]),
                response_frame=_int(r.get("response_frame")),
                id=int(r["id"]),
                qname=norm_name(str(r.get("qname") or "")),
                qtype=str(r.get("qtype") or ""),
                rcode=None if rcode is None else str(rcode),
                retransmits=_int(r.get("retransmits"), 0) or 0,
                client=norm_ip(str(r.get("client_ip", ""))),
                server=norm_ip(str(r.get("server_ip", ""))),
                transport=str(r.get("transport", "")),
            ))
        except (ValueError, TypeError, KeyError) as e:
            res.error = res.error or f"capsift output line {no} is not a dns row ({e})"
    return res


# --- capture discovery and decompression (as in check_tcp.py) ---------------------------

PCAP_MAGICS = {bytes.fromhex(h) for h in
               ["a1b2c3d4", "d4c3b2a1", "a1b23c4d", "4d3cb2a1", "a1b2cd34", "34cdb2a1"]}
PCAPNG_MAGIC = bytes.fromhex("0a0d0d0a")
GZIP_MAGIC = bytes.fromhex("1f8b")
ZSTD_MAGIC = bytes.fromhex("28b52ffd")


def sniff_file(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(4)
    except OSError:
        return None
    if data[:4] in PCAP_MAGICS:
        return "pcap"
    if data[:4] == PCAPNG_MAGIC:
        return "pcapng"
    if data[:2] == GZIP_MAGIC:
        return "gzip"
    if data[:4] == ZSTD_MAGIC:
        return "zstd"
    return None


def gunzip(src: Path, dst) -> str:
    with open(src, "rb") as fh:
        data = fh.read()
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            dst.write(d.decompress(data))
            dst.write(d.flush())
        except zlib.error as e:
            return f"gzip stream damaged ({e}); tshark read the part before it"
        if not d.eof:
            return "gzip stream cut short; tshark read the part before the cut"
        data = d.unused_data
        if data[:2] != GZIP_MAGIC:
            break
    return ""


class _ZIn(ctypes.Structure):
    _fields_ = [("src", ctypes.c_void_p), ("size", ctypes.c_size_t), ("pos", ctypes.c_size_t)]


class _ZOut(ctypes.Structure):
    _fields_ = [("dst", ctypes.c_void_p), ("size", ctypes.c_size_t), ("pos", ctypes.c_size_t)]


def unzstd(src: Path, dst) -> str:
    lib = None
    for name in [ctypes.util.find_library("zstd"), "libzstd.so.1", "libzstd.1.dylib"]:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        exe = shutil.which("zstd")
        if exe is None:
            raise RuntimeError("zstd-compressed and neither libzstd nor the zstd tool is available")
        dst.flush()
        proc = subprocess.run([exe, "-dc", "--", str(src)], stdout=dst, stderr=subprocess.PIPE)
        return ("zstd stream damaged; tshark read the part before it"
                if proc.returncode else "")
    lib.ZSTD_createDStream.restype = ctypes.c_void_p
    lib.ZSTD_freeDStream.argtypes = [ctypes.c_void_p]
    lib.ZSTD_initDStream.argtypes = [ctypes.c_void_p]
    lib.ZSTD_initDStream.restype = ctypes.c_size_t
    lib.ZSTD_decompressStream.argtypes = [ctypes.c_void_p, ctypes.POINTER(_ZOut),
                                          ctypes.POINTER(_ZIn)]
    lib.ZSTD_decompressStream.restype = ctypes.c_size_t
    lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
    lib.ZSTD_isError.restype = ctypes.c_uint
    lib.ZSTD_DStreamOutSize.restype = ctypes.c_size_t
    ds = lib.ZSTD_createDStream()
    if not ds:
        raise RuntimeError("ZSTD_createDStream failed")
    try:
        lib.ZSTD_initDStream(ds)
        out_size = lib.ZSTD_DStreamOutSize()
        out_buf = ctypes.create_string_buffer(out_size)
        ret = 0
        with open(src, "rb") as fh:
            while True:
                chunk = fh.read(1 << 17)
                if not chunk:
                    break
                in_buf = ctypes.create_string_buffer(chunk, len(chunk))
                zin = _ZIn(ctypes.cast(in_buf, ctypes.c_void_p), len(chunk), 0)
                while True:
                    zout = _ZOut(ctypes.cast(out_buf, ctypes.c_void_p), out_size, 0)
                    ret = lib.ZSTD_decompressStream(ds, ctypes.byref(zout), ctypes.byref(zin))
                    if lib.ZSTD_isError(ret):
                        return "zstd stream damaged; tshark read the part before it"
                    dst.write(out_buf.raw[:zout.pos])
                    if zin.pos >= zin.size and zout.pos < out_size:
                        break
        return "zstd stream cut short; tshark read the part before the cut" if ret else ""
    finally:
        lib.ZSTD_freeDStream(ds)


@dataclass
class Capture:
    path: Path
    key: str
    kind: str
    root: str

    def candidates(self) -> list[str]:
        parts = Path(os.path.abspath(self.path)).parts[1:]
        return [self.key] + ["/".join(parts[i:]) for i in range(len(parts))]


def capture_key(fp: Path, base: Path | None) -> str:
    real = Path(os.path.realpath(fp))
    for d in DEFAULT_DIRS:
        root = Path(os.path.realpath(REPO_ROOT / d))
        try:
            return real.relative_to(root).as_posix()
        except ValueError:
            pass
    if base is None:
        return fp.name
    return fp.relative_to(base).as_posix()


def discover(paths: list[str], explicit: bool) -> tuple[list[Capture], list[str]]:
    caps, skipped = [], []
    for arg in paths:
        disp = arg.rstrip("/") or arg
        p = Path(arg)
        if not explicit and not p.is_absolute():
            p = REPO_ROOT / p
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames.sort()
                for name in sorted(filenames):
                    fp = Path(dirpath) / name
                    if fp.is_file():
                        kind = sniff_file(fp)
                        if kind:
                            caps.append(Capture(fp, capture_key(fp, p), kind, disp))
        elif p.is_file():
            kind = sniff_file(p)
            if kind is None:
                skipped.append(f"skipped: {disp} is not a pcap/pcapng/gzip/zstd file")
            else:
                caps.append(Capture(p, capture_key(p, None), kind, str(p.parent)))
        else:
            skipped.append(f"skipped: {disp} not present")
    return caps, skipped


# --- exceptions -------------------------------------------------------------------------

@dataclass
class Exc:
    line: int
    file: str
    metric: str
    capsift: str
    tshark: str
    reason: str
    exercised: bool = False
    used: bool = False

    def matches_file(self, cands) -> bool:
        return any(fnmatch.fnmatchcase(c, self.file) for c in cands)

    def matches(self, cands, metric, c, t) -> bool:
        return (self.matches_file(cands) and fnmatch.fnmatchcase(metric, self.metric)
                and fnmatch.fnmatchcase(str(c), self.capsift)
                and fnmatch.fnmatchcase(str(t), self.tshark))


def load_exceptions(path: Path) -> tuple[list[Exc], list[str]]:
    excs, problems = [], []
    with open(path, encoding="utf-8") as fh:
        for no, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = line.split("\t")
            if cols[0].strip() == "file" and len(cols) > 1 and cols[1].strip() == "metric":
                continue
            if len(cols) < 5:
                problems.append(f"{path.name}:{no}: expected 5 tab-separated columns "
                                f"(file, metric, capsift, tshark, reason), got {len(cols)}")
                continue
            reason = "\t".join(cols[4:]).strip()
            if not reason or reason.upper() == "TODO":
                problems.append(f"{path.name}:{no}: the reason column is empty or TODO")
                continue
            f, m, c, t = (x.strip() for x in cols[:4])
            if not (f and m and c and t):
                problems.append(f"{path.name}:{no}: empty file/metric/capsift/tshark column")
                continue
            excs.append(Exc(no, f, m, c, t, reason))
    return excs, problems


# --- comparison -------------------------------------------------------------------------

@dataclass
class Diff:
    metric: str      # query@F, queries@NAME/TYPE, response@F, pair@F
    capsift: str
    tshark: str
    note: str = ""   # diagnosis hint, not matched by exceptions

    def text(self) -> str:
        s = f"{self.metric} capsift={self.capsift} tshark={self.tshark}"
        return s + (f" ({self.note})" if self.note else "")


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


def compare(ts: TsharkResult, cr: CapsiftResult, verbose: bool) -> Comparison:
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
                                  "point: " + _cap_list(copy_frames)))
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
                              + (_cap_list(extra) or "none") + "; capsift: "
                              + (_cap_list(rows) or "no row")))
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


def _cap_list(items: list, limit: int = 12) -> str:
    s = ", ".join(items[:limit])
    return s + (f", +{len(items) - limit} more" if len(items) > limit else "")


# --- per file ---------------------------------------------------------------------------

@dataclass
class Outcome:
    capture: Capture
    ts: TsharkResult | None = None
    cs: CapsiftResult | None = None
    skipped: str = ""
    notes: list = field(default_factory=list)


def process(cap: Capture, capsift: str, env: dict) -> Outcome:
    out = Outcome(cap)
    with tempfile.TemporaryDirectory(prefix="capsift-dnsconf-") as tmp:
        tshark_input = str(cap.path)
        if cap.kind in ("gzip", "zstd"):
            plain = Path(tmp) / "capture"
            try:
                with open(plain, "wb") as fh:
                    note = gunzip(cap.path, fh) if cap.kind == "gzip" else unzstd(cap.path, fh)
            except (RuntimeError, OSError) as e:
                out.skipped = f"{cap.kind}: {e}"
                return out
            if note:
                out.notes.append(note)
            if sniff_file(plain) not in ("pcap", "pcapng"):
                out.skipped = f"{cap.kind}-compressed but no pcap/pcapng inside"
                return out
            tshark_input = str(plain)
        try:
            out.ts = run_tshark(tshark_input, env)
        except subprocess.TimeoutExpired:
            out.skipped = f"tshark timed out after {TSHARK_TIMEOUT}s"
            return out
        if out.ts.exit_code or out.ts.error:
            msg = _first_line(out.ts.error.replace(tshark_input, cap.key)) or \
                f"exit {out.ts.exit_code}"
            msg = msg[len("tshark: "):] if msg.startswith("tshark: ") else msg
            out.notes.append(f"tshark stopped early: {msg}")
    out.cs = run_capsift(capsift, str(cap.path))
    return out


def judge(out: Outcome, exceptions: list[Exc], verbose: bool):
    cap = out.capture
    cands = cap.candidates()
    for e in exceptions:
        if e.matches_file(cands):
            e.exercised = True
    ts, cs = out.ts, out.cs
    notes = list(out.notes)
    if cs.error:
        notes.append(cs.error)
    if ts.quoted:
        notes.append(f"{ts.quoted} DNS message(s) inside ICMP quotes not compared")
    if ts.other_port:
        notes.append(f"{ts.other_port} DNS message(s) not on port 53 in their own "
                     f"transport not compared")
    cmp = compare(ts, cs, verbose)
    unexplained, excepted = [], []
    for d in cmp.diffs:
        exc = next((e for e in exceptions if e.matches(cands, d.metric, d.capsift, d.tshark)),
                   None)
        if exc:
            exc.used = True
            excepted.append((d, exc))
        else:
            unexplained.append(d)
    ok = not unexplained and not cs.crash
    if not ts.msgs and not cs.rows and not cs.crash:
        head = f"{cap.key}: no DNS on port 53"
    else:
        head = (f"{cap.key}: {cmp.queries} queries ({cmp.first_tx}/{cmp.rows} capsift rows "
                f"matched at their first frame, {cmp.retrans} further transmissions), "
                f"{cmp.responses_ok}/{cmp.responses} responses agree on name/type/rcode")
    parts = []
    if cs.crash:
        parts.append(f"CRASH {cs.crash}")
    if unexplained:
        shown = unexplained if verbose else unexplained[:MAX_DIFFS_ON_LINE]
        more = len(unexplained) - len(shown)
        parts.append("; ".join("DIFF " + d.text() for d in shown)
                     + (f"; +{more} more differences (--verbose or --template lists all)"
                        if more else ""))
    if excepted:
        parts.append("expected: " + "; ".join(
            f"{d.metric} capsift={d.capsift} tshark={d.tshark} [dns-exceptions:{e.line}]"
            for d, e in excepted))
    if cmp.copies:
        parts.append(f"{cmp.copies} tshark messages are copies at another capture point")
    if cmp.unknown_types:
        parts.append("capsift prints Unknown for " + ", ".join(sorted(cmp.unknown_types)))
    line = ("ok   " if ok else "FAIL ") + head
    if parts:
        line += " | " + " | ".join(parts)
    if notes:
        line += "".join(f" [{n}]" for n in notes)
    return ok, line, cmp.detail, unexplained


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Compare capsift's DNS transactions (table dns) with tshark's DNS "
                    "messages: query names, types, retransmissions, responses and rcodes.")
    ap.add_argument("paths", nargs="*", metavar="DIR_OR_FILE",
                    help="capture files or directories (recursive); default: "
                         + " and ".join(DEFAULT_DIRS) + " relative to the repository root")
    ap.add_argument("--capsift", default=str(REPO_ROOT / "target/release/capsift"))
    ap.add_argument("--exceptions", default=None,
                    help="exceptions TSV (default: tests/conformance/dns-exceptions.tsv "
                         "if it exists)")
    ap.add_argument("--verbose", "-v", action="store_true",
                    help="list every tshark DNS message and every capsift row")
    ap.add_argument("--template", action="store_true",
                    help="print a TSV row (reason TODO) on stderr for every difference "
                         "that no exception explains")
    ap.add_argument("--jobs", type=int, default=2, help="parallel files (default 2)")
    args = ap.parse_args(argv)

    def say(msg=""):
        print(msg, flush=True)

    if shutil.which("tshark") is None:
        print("error: tshark not found on PATH", file=sys.stderr)
        return 2
    capsift = args.capsift
    if not os.path.isfile(capsift) or not os.access(capsift, os.X_OK):
        print(f"error: capsift binary not found or not executable: {capsift}", file=sys.stderr)
        return 2
    capsift = os.path.abspath(capsift)

    exceptions: list[Exc] = []
    problems: list[str] = []
    exc_path = Path(args.exceptions) if args.exceptions else DEFAULT_EXCEPTIONS
    if exc_path.is_file():
        exceptions, problems = load_exceptions(exc_path)
    elif args.exceptions:
        print(f"error: exceptions file not found: {exc_path}", file=sys.stderr)
        return 2

    caps, skipped_msgs = discover(args.paths or DEFAULT_DIRS, bool(args.paths))
    for msg in skipped_msgs:
        say(msg)
    n_skipped = len(skipped_msgs)

    conf_dir = tempfile.mkdtemp(prefix="capsift-dnsconf-profile-")
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=conf_dir, LC_ALL="C")
    passed = failed = 0
    current_root = None
    multi_root = len({c.root for c in caps}) > 1
    template = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(process, c, capsift, env) for c in caps]
            for fut in futures:
                out = fut.result()
                cap = out.capture
                if multi_root and cap.root != current_root:
                    say(f"== {cap.root}")
                current_root = cap.root
                if out.skipped:
                    n_skipped += 1
                    say(f"skipped: {cap.key} ({out.skipped})")
                    continue
                ok, line, detail, unexplained = judge(out, exceptions, args.verbose)
                if ok:
                    passed += 1
                else:
                    failed += 1
                say(line)
                for d in detail:
                    say(d)
                for d in unexplained:
                    template.append(f"{cap.key}\t{d.metric}\t{d.capsift}\t{d.tshark}\tTODO")
    finally:
        shutil.rmtree(conf_dir, ignore_errors=True)

    for p in problems:
        failed += 1
        say(f"BAD exception {p}")
    not_exercised = 0
    for e in exceptions:
        if e.exercised and not e.used:
            failed += 1
            say(f"STALE exception line {e.line}: file={e.file} metric={e.metric} "
                f"capsift={e.capsift} tshark={e.tshark} matches no current difference "
                f"(remove or update it)")
        elif not e.exercised:
            not_exercised += 1
    if not_exercised:
        say(f"note: {not_exercised} exception(s) not exercised (no matching file in this run)")
    if args.template and template:
        print("file\tmetric\tcapsift\ttshark\treason", file=sys.stderr)
        for t in template:
            print(t, file=sys.stderr)
    summary = f"dns-conformance: {passed} passed, {failed} failed"
    if n_skipped:
        summary += f", {n_skipped} skipped"
    say(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
