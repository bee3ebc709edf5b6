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
DEFAULT_DIRS = ["captures", "../shared/corpus/tls"]  # relative to REPO_ROOT
DEFAULT_EXCEPTIONS = SCRIPT_DIR / "tls-exceptions.tsv"
TSHARK_TIMEOUT = 900
CAPSIFT_TIMEOUT = 900
# capsift keeps at most this many SAN dNSNames per certificate (src/tls/cert.rs MAX_SAN).
CAPSIFT_MAX_SAN = 512
# Unexplained differences written on a file's line (all of them with --verbose).
MAX_DIFFS_ON_LINE = 10
# Longest value written in a DIFF (the exceptions file is matched against the full value).
MAX_VALUE_SHOWN = 160
SAN_OID = "2.5.29.17"

# --- names ------------------------------------------------------------------------------


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


def _endpoint(ip: str, port: int) -> tuple:
    try:
        a = ipaddress.ip_address(ip)
        return (a.version, int(a), int(port), a.compressed)
    except ValueError:
        return (9, 0, int(port), ip)


def flow_key(ip1: str, port1, ip2: str, port2) -> str:
    """Unordered connection key `ip:port-ip:port` (IPv6 as `[ip]:port`), lower endpoint
    first (as in check_tcp.py)."""
    eps = sorted([_endpoint(ip1, port1), _endpoint(ip2, port2)])
    return "-".join((f"[{e[3]}]:{e[2]}" if e[0] == 6 else f"{e[3]}:{e[2]}") for e in eps)


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
        return flow_key(self.src, self.sport, self.dst, self.dport)


@dataclass
class TsharkResult:
    msgs: list = field(default_factory=list)
    exit_code: int = 0
    error: str = ""
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
            last_type = _int(f.get("show"), None)
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
                    frame = _int(f.get("show"), 0)
        elif pname in ("icmp", "icmpv6"):
            quoted = True       # what follows is a quoted datagram
        elif quoted:
            if pname == "tls":
                res.quoted += 1
        elif pname in ("ip", "ipv6"):
            pre = pname + "."
            for f in proto.findall("field"):
                if f.get("name") == pre + "src":
                    src = norm_ip(f.get("show", ""))
                elif f.get("name") == pre + "dst":
                    dst = norm_ip(f.get("show", ""))
            have_tcp = False
        elif pname == "tcp":
            have_tcp = True
            for f in proto.findall("field"):
                n = f.get("name")
                if n == "tcp.srcport":
                    sport = _int(f.get("show"), 0)
                elif n == "tcp.dstport":
                    dport = _int(f.get("show"), 0)
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
    res = TsharkResult()
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(tshark_command(path, decode_ports), stdout=subprocess.PIPE,
                                stderr=errf, env=env)
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
        return flow_key(self.client, self.cport, self.server, self.sport)

    @property
    def sans(self) -> list:
        return self.cert_san.split(" ") if self.cert_san else []


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
    cmd = [capsift, "table", "tls", "--format", "ndjson", "-q", path]
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
            sni = r.get("sni")
            res.rows.append(Row(
                n=n,
                frame=int(r["frame"]),
                client=norm_ip(str(r["client_ip"])),
                cport=int(r["client_port"]),
                server=norm_ip(str(r["server_ip"])),
                sport=int(r["server_port"]),
                tunnel=str(r.get("tunnel") or ""),
                sni=None if sni is None else str(sni),
                cert_san=str(r.get("cert_san") or ""),
                chain_length=_int(r.get("chain_length"), 0) or 0,
                verdict=str(r.get("verdict") or ""),
            ))
        except (ValueError, TypeError, KeyError) as e:
            res.error = res.error or f"capsift output line {no} is not a tls row ({e})"
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
    metric: str      # sni@NAME or san@KEY[#n]
    capsift: str
    tshark: str
    note: str = ""   # diagnosis hint, not matched by exceptions

    def text(self) -> str:
        s = (f"{self.metric} capsift={shorten(self.capsift)} "
             f"tshark={shorten(self.tshark)}")
        return s + (f" ({self.note})" if self.note else "")


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


def _cap_list(items: list, limit: int = 8) -> str:
    s = ", ".join(items[:limit])
    return s + (f", +{len(items) - limit} more" if len(items) > limit else "")


def _set_delta(cs: list, ts: list) -> str:
    c, t = Counter(cs), Counter(ts)
    only_c, only_t = list((c - t).elements()), list((t - c).elements())
    parts = []
    if only_c:
        parts.append(f"{len(only_c)} only in capsift: " + _cap_list([esc(n) for n in only_c], 4))
    if only_t:
        parts.append(f"{len(only_t)} only in tshark: " + _cap_list([esc(n) for n in only_t], 4))
    if not parts:
        parts.append("same names, different order" if cs != ts else "")
    return "; ".join(p for p in parts if p)


def compare(ts: TsharkResult, cr: CapsiftResult, verbose: bool) -> Comparison:
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
        hints = [f"tshark ClientHello frames: " + (_cap_list(
            [f"{m.frame}" + (f" [{m.key}]" if len(set(x.key for x in tf)) > 1 else "")
             for m in tf]) or "none")]
        hints.append("capsift rows: " + (_cap_list(
            [f"frame {r.frame}" + (f" [{r.key}]" if len(set(x.key for x in cf)) > 1 else "")
             for r in cf]) or "none"))
        per_conn = Counter(m.key for m in tf)
        again = [k for k, v in per_conn.items() if v > 1]
        if again:
            hints.append(f"tshark sees several ClientHellos on one connection: "
                         + _cap_list(again, 3))
        cs_keys = {r.key for r in cr.rows}
        missing = sorted({m.key for m in tf} - cs_keys)
        if missing and c < t:
            hints.append("capsift has no row for " + _cap_list(missing, 3))
        ts_keys = {m.key for m in ts.msgs}
        extra = sorted({r.key for r in cf} - ts_keys)
        if extra and c > t:
            hints.append("tshark decoded no TLS on " + _cap_list(extra, 3))
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

@dataclass
class Outcome:
    capture: Capture
    ts: TsharkResult | None = None
    cs: CapsiftResult | None = None
    skipped: str = ""
    notes: list = field(default_factory=list)


def undecoded_ports(ts: TsharkResult, cs: CapsiftResult) -> set:
    """Server ports of capsift handshakes (with an SNI or a certificate) on connections
    where tshark decoded no ClientHello or Certificate."""
    seen = {m.key for m in ts.msgs}
    return {r.sport for r in cs.rows
            if r.key not in seen and (r.sni is not None or r.chain_length > 0)}


def process(cap: Capture, capsift: str, env: dict, decode_as: bool) -> Outcome:
    out = Outcome(cap)
    out.cs = run_capsift(capsift, str(cap.path))
    with tempfile.TemporaryDirectory(prefix="capsift-tlsconf-") as tmp:
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
            ports = undecoded_ports(out.ts, out.cs) if decode_as else set()
            if ports:
                out.ts = run_tshark(tshark_input, env, ports)
                out.notes.append("tshark run with " + " ".join(
                    f"-d tcp.port=={p},tls" for p in sorted(ports)))
        except subprocess.TimeoutExpired:
            out.skipped = f"tshark timed out after {TSHARK_TIMEOUT}s"
            return out
        if out.ts.exit_code or out.ts.error:
            msg = _first_line(out.ts.error.replace(tshark_input, cap.key)) or \
                f"exit {out.ts.exit_code}"
            msg = msg[len("tshark: "):] if msg.startswith("tshark: ") else msg
            out.notes.append(f"tshark stopped early: {msg}")
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
        notes.append(f"{ts.quoted} TLS record(s) inside ICMP quotes not compared")
    if ts.other_transport:
        notes.append(f"{ts.other_transport} ClientHello(s) not over TCP (QUIC, DTLS, ...) "
                     f"not compared")
    cmp = compare(ts, cs, verbose)
    if cmp.client_certs:
        notes.append(f"{cmp.client_certs} client Certificate message(s) not compared")
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
        head = f"{cap.key}: no TLS handshakes"
    else:
        head = (f"{cap.key}: SNI {cmp.sni_agree} agree (tshark {cmp.hellos_sni} of "
                f"{cmp.hellos} ClientHellos, capsift {cmp.rows_sni} of {cmp.rows} rows), "
                f"leaf SANs {cmp.certs_agree}/{cmp.certs} server certificates agree")
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
            f"{d.metric} capsift={shorten(d.capsift, 60)} tshark={shorten(d.tshark, 60)} "
            f"[tls-exceptions:{e.line}]" for d, e in excepted))
    line = ("ok   " if ok else "FAIL ") + head
    if parts:
        line += " | " + " | ".join(parts)
    if notes:
        line += "".join(f" [{n}]" for n in notes)
    return ok, line, cmp.detail, unexplained


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Compare capsift's TLS handshakes (table tls) with tshark's: the SNIs "
                    "of the ClientHellos and the SAN dNSNames of the servers' leaf "
                    "certificates.")
    ap.add_argument("paths", nargs="*", metavar="DIR_OR_FILE",
                    help="capture files or directories (recursive); default: "
                         + " and ".join(DEFAULT_DIRS) + " relative to the repository root")
    ap.add_argument("--capsift", default=str(REPO_ROOT / "target/release/capsift"))
    ap.add_argument("--exceptions", default=None,
                    help="exceptions TSV (default: tests/conformance/tls-exceptions.tsv "
                         "if it exists)")
    ap.add_argument("--verbose", "-v", action="store_true",
                    help="list every ClientHello and Certificate tshark decoded and every "
                         "capsift row")
    ap.add_argument("--template", action="store_true",
                    help="print a TSV row (reason TODO) on stderr for every difference "
                         "that no exception explains")
    ap.add_argument("--no-decode-as", dest="decode_as", action="store_false",
                    help="do not re-run tshark with -d tcp.port==P,tls for server ports "
                         "where capsift found TLS and tshark decoded none")
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

    conf_dir = tempfile.mkdtemp(prefix="capsift-tlsconf-profile-")
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=conf_dir, LC_ALL="C")
    passed = failed = 0
    current_root = None
    multi_root = len({c.root for c in caps}) > 1
    template = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(process, c, capsift, env, args.decode_as) for c in caps]
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
    summary = f"tls-conformance: {passed} passed, {failed} failed"
    if n_skipped:
        summary += f", {n_skipped} skipped"
    say(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
