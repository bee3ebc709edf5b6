#!/usr/bin/env python3
"""Conformance check: per-flow TCP analysis counters, `capsift table flows` against tshark.

Usage:
    python3 tests/conformance/check_tcp.py [--capsift PATH] [--exceptions TSV]
                                           [--verbose] [--jobs N] [DIR_OR_FILE ...]

With no DIR_OR_FILE, `captures/` and `../shared/corpus/tcp/` (relative to the repository
root) are scanned recursively; a missing one is reported as skipped. Captures are
recognised by their magic bytes (pcap, pcapng, gzip, zstd).

For every file, tshark runs once and capsift twice (default settings and `--no-dedup`).
The TCP analysis flags tshark sets (retransmission, fast retransmission, spurious
retransmission, duplicate ACK, out-of-order) are summed per unordered flow key
{ip:port, ip:port}; capsift's `retransmissions`, `fast_retransmissions`,
`spurious_retransmissions`, `dup_acks` and `out_of_order` are summed per the same key
(over tunnels and port reuse). See README.md beside this file.

Only the Python 3 standard library and tshark are needed.

Exit status: 0 when everything matched (or every difference is covered by
tcp-exceptions.tsv), 1 when a file failed or an exception is stale/invalid,
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
import zlib
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
DEFAULT_DIRS = ["captures", "../shared/corpus/tcp"]  # relative to REPO_ROOT
DEFAULT_EXCEPTIONS = SCRIPT_DIR / "tcp-exceptions.tsv"
TSHARK_TIMEOUT = 900
CAPSIFT_TIMEOUT = 900

# Compared metrics: capsift JSON key -> short label for the summary line.
COMPARED = ["retransmissions", "fast_retransmissions", "dup_acks", "out_of_order"]
INFORMATIONAL = ["spurious_retransmissions"]
ALL_METRICS = COMPARED + INFORMATIONAL
SHORT = {
    "retransmissions": "retrans",
    "fast_retransmissions": "fast",
    "dup_acks": "dupack",
    "out_of_order": "ooo",
    "spurious_retransmissions": "spurious",
}

# --- tshark ---------------------------------------------------------------------------

TSHARK_FIELDS = [
    "frame.number",                           # 0
    "frame.protocols",                        # 1
    "ip.src",                                 # 2
    "ipv6.src",                               # 3
    "tcp.srcport",                            # 4
    "ip.dst",                                 # 5
    "ipv6.dst",                               # 6
    "tcp.dstport",                            # 7
    "tcp.stream",                             # 8
    "tcp.analysis.retransmission",            # 9
    "tcp.analysis.fast_retransmission",       # 10
    "tcp.analysis.spurious_retransmission",   # 11
    "tcp.analysis.duplicate_ack",             # 12
    "tcp.analysis.out_of_order",              # 13
]
FLAG_COLUMNS = {
    "retransmissions": 9,
    "fast_retransmissions": 10,
    "spurious_retransmissions": 11,
    "dup_acks": 12,
    "out_of_order": 13,
}
# After one of these, the rest of frame.protocols is a quoted/sampled packet, not a layer
# of this frame: ICMP errors quote the offending datagram (tshark does no sequence
# analysis on it), sFlow carries sampled headers of other packets.
QUOTING_PROTOCOLS = {"icmp", "icmpv6", "sflow"}


def tshark_command(path: str) -> list[str]:
    cmd = ["tshark", "-n", "-r", path, "-d", "udp.port==8472,vxlan", "-Y", "tcp",
           "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    return cmd


def norm_ip(text: str) -> str:
    try:
        return ipaddress.ip_address(text.strip()).compressed
    except ValueError:
        return text.strip()


def endpoint(ip: str, port) -> tuple:
    try:
        a = ipaddress.ip_address(ip)
        return (a.version, int(a), int(port), a.compressed)
    except ValueError:
        return (9, 0, int(port), ip)


def flow_key(ip1: str, port1, ip2: str, port2) -> str:
    """Unordered flow key `ip:port-ip:port` (IPv6 as `[ip]:port`), lower endpoint first."""
    eps = sorted([endpoint(ip1, port1), endpoint(ip2, port2)])
    return "-".join((f"[{e[3]}]:{e[2]}" if e[0] == 6 else f"{e[3]}:{e[2]}") for e in eps)


@dataclass
class FlowStats:
    counts: dict = field(default_factory=lambda: {m: 0 for m in ALL_METRICS})
    packets: int = 0
    first_frame: int = 0
    last_frame: int = 0
    groups: set = field(default_factory=set)   # tshark streams / capsift tunnels
    rows: int = 0                               # capsift rows (flows) merged into this key
    frames: dict = field(default_factory=lambda: {m: [] for m in ALL_METRICS})  # tshark only

    def see_frame(self, n: int):
        if n and (not self.first_frame or n < self.first_frame):
            self.first_frame = n
        if n > self.last_frame:
            self.last_frame = n


@dataclass
class TsharkResult:
    flows: dict
    exit_code: int
    error: str = ""
    quoted_skipped: int = 0


def _nth(cell: str, n: int) -> str:
    vals = cell.split(",") if cell else []
    return vals[n] if 0 <= n < len(vals) else ""


def parse_tshark_line(cols: list[str]):
    """Return (key, frame, stream, flags) or None for a frame whose TCP header is inside
    an ICMP quote (or that cannot be attributed)."""
    protos = [t for t in cols[1].split(":") if t]
    try:
        tcp_at = protos.index("tcp")
    except ValueError:
        return None
    before = protos[:tcp_at]
    if any(t in QUOTING_PROTOCOLS for t in before):
        return "quoted"
    # The IP header that carries this TCP header is the last ip/ipv6 before it; its
    # fields are occurrence number (count of that protocol before it) - 1.
    last_ip = next((t for t in reversed(before) if t in ("ip", "ipv6")), None)
    if last_ip is None:
        return None
    idx = before.count(last_ip) - 1
    if last_ip == "ip":
        src, dst = _nth(cols[2], idx), _nth(cols[5], idx)
    else:
        src, dst = _nth(cols[3], idx), _nth(cols[6], idx)
    sport, dport = _nth(cols[4], 0), _nth(cols[7], 0)
    if not (src and dst and sport and dport):
        return None
    try:
        key = flow_key(norm_ip(src), int(sport), norm_ip(dst), int(dport))
    except ValueError:
        return None
    flags = {m: bool(cols[c].strip()) for m, c in FLAG_COLUMNS.items()}
    return key, int(cols[0]), _nth(cols[8], 0), flags


def run_tshark(path: str, env: dict) -> TsharkResult:
    flows: dict[str, FlowStats] = {}
    quoted = 0
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(tshark_command(path), stdout=subprocess.PIPE, stderr=errf,
                                env=env)
        try:
            for raw in proc.stdout:
                cols = raw.decode("utf-8", "replace").rstrip("\r\n").split("\t")
                if len(cols) < 2 or not cols[0].strip().isdigit():
                    continue
                cols += [""] * (len(TSHARK_FIELDS) - len(cols))
                r = parse_tshark_line(cols)
                if r == "quoted":
                    quoted += 1
                    continue
                if r is None:
                    continue
                key, frame, stream, flags = r
                fs = flows.setdefault(key, FlowStats())
                fs.packets += 1
                fs.see_frame(frame)
                if stream:
                    fs.groups.add(f"stream {stream}")
                for m, on in flags.items():
                    if on:
                        fs.counts[m] += 1
                        fs.frames[m].append(frame)
            proc.wait(timeout=TSHARK_TIMEOUT)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        errf.seek(0)
        err = "\n".join(l for l in errf.read().decode("utf-8", "replace").splitlines()
                        if l.strip() and "Running as user" not in l)
    return TsharkResult(flows, proc.returncode, err if proc.returncode else "", quoted)


# --- capsift --------------------------------------------------------------------------

@dataclass
class CapsiftResult:
    flows: dict = field(default_factory=dict)
    copies_skipped: int = 0
    error: str = ""     # non-zero exit / unparsable output
    crash: str = ""     # panic, signal, timeout


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def _int(v) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            return 0
    return 0


def run_capsift(capsift: str, path: str, no_dedup: bool) -> CapsiftResult:
    cmd = [capsift, "table", "flows", "--format", "ndjson", "-q"]
    if no_dedup:
        cmd.append("--no-dedup")
    cmd.append(path)
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
    for no, line in enumerate(proc.stdout.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError) as e:
            res.error = res.error or f"capsift output line {no} is not JSON ({e})"
            continue
        res.copies_skipped += _int(row.get("copies_skipped", 0))
        if str(row.get("proto", "")).lower() != "tcp":
            continue
        try:
            key = flow_key(norm_ip(str(row["src_ip"])), int(row["src_port"]),
                           norm_ip(str(row["dst_ip"])), int(row["dst_port"]))
        except (KeyError, ValueError, TypeError):
            res.error = res.error or f"capsift row {no} lacks src/dst ip/port"
            continue
        fs = res.flows.setdefault(key, FlowStats())
        fs.rows += 1
        fs.packets += _int(row.get("packets_fwd", 0)) + _int(row.get("packets_rev", 0))
        fs.see_frame(_int(row.get("first_frame", 0)))
        fs.see_frame(_int(row.get("last_frame", 0)))
        fs.groups.add(str(row.get("tunnel", "")) or "plain")
        for m in ALL_METRICS:
            fs.counts[m] += _int(row.get(m, 0))
    return res


# --- capture discovery and decompression ----------------------------------------------

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


# --- exceptions -----------------------------------------------------------------------

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


# --- comparison -----------------------------------------------------------------------

def parse_totals(spec: str):
    """`*` -> {}; `retransmissions=0,dup_acks=0` (long or short metric names) -> dict.
    Returns (dict, bad_item_or_empty)."""
    spec = spec.strip()
    if spec == "*":
        return {}, ""
    names = {m: m for m in ALL_METRICS}
    names.update({v: k for k, v in SHORT.items()})
    out = {}
    for item in spec.split(","):
        name, eq, val = item.strip().partition("=")
        if not eq or name.strip() not in names or not val.strip().isdigit():
            return {}, item
        out[names[name.strip()]] = int(val)
    return out, ""


STRICT = False


def tolerance(t: int) -> float:
    """A flow's counter passes when |capsift - tshark| <= max(2, 2% of tshark)
    (0 with --strict)."""
    return 0.0 if STRICT else max(2.0, 0.02 * t)


def compare(cap_flows: dict, ts_flows: dict):
    """Return (failing, tolerated, spurious_info): lists of (metric@flow, capsift, tshark)."""
    failing, tolerated, info = [], [], []
    for key in sorted(set(cap_flows) | set(ts_flows)):
        c = cap_flows.get(key, FlowStats()).counts
        t = ts_flows.get(key, FlowStats()).counts
        for m in COMPARED:
            if c[m] == t[m]:
                continue
            item = (f"{m}@{key}", c[m], t[m])
            (tolerated if abs(c[m] - t[m]) <= tolerance(t[m]) else failing).append(item)
        for m in INFORMATIONAL:
            if c[m] != t[m]:
                info.append((f"{m}@{key}", c[m], t[m]))
    return failing, tolerated, info


def totals(flows: dict) -> dict:
    out = {m: 0 for m in ALL_METRICS}
    for fs in flows.values():
        for m in ALL_METRICS:
            out[m] += fs.counts[m]
    return out


def fmt_totals(cap_flows: dict, ts_flows: dict) -> str:
    c, t = totals(cap_flows), totals(ts_flows)
    return " ".join(f"{SHORT[m]} {c[m]}/{t[m]}" for m in ALL_METRICS)


def fmt_frames(frames: list, limit: int = 25) -> str:
    if not frames:
        return "-"
    s = ",".join(str(f) for f in frames[:limit])
    return s + (f",... (+{len(frames) - limit})" if len(frames) > limit else "")


def verbose_table(ts: TsharkResult, runs: list[tuple[str, CapsiftResult]], only_diff: bool):
    lines = []
    keys = set(ts.flows)
    for _, cr in runs:
        keys |= set(cr.flows)
    for key in sorted(keys):
        t = ts.flows.get(key, FlowStats())
        block = []
        differs = False
        for label, cr in runs:
            c = cr.flows.get(key, FlowStats())
            cells = []
            for m in ALL_METRICS:
                mark = "" if c.counts[m] == t.counts[m] else "*"
                if mark and m in COMPARED:
                    differs = True
                cells.append(f"{SHORT[m]} {c.counts[m]}/{t.counts[m]}{mark}")
            block.append(f"      {label:<9} pkts {c.packets}/{t.packets}  " + "  ".join(cells)
                         + f"  capsift frames {c.first_frame}-{c.last_frame} rows={c.rows} "
                         + f"[{','.join(sorted(c.groups))}]")
        if only_diff and not differs:
            continue
        lines.append(f"    flow {key}  tshark frames {t.first_frame}-{t.last_frame} "
                     f"[{','.join(sorted(t.groups, key=lambda s: (len(s), s)))}]")
        lines.extend(block)
        for m in ALL_METRICS:
            if t.frames[m]:
                lines.append(f"      tshark {m} frames: {fmt_frames(t.frames[m])}")
    return lines


@dataclass
class Outcome:
    capture: Capture
    ts: TsharkResult | None = None
    default: CapsiftResult | None = None
    nodedup: CapsiftResult | None = None
    skipped: str = ""
    notes: list = field(default_factory=list)


def process(cap: Capture, capsift: str, env: dict) -> Outcome:
    out = Outcome(cap)
    with tempfile.TemporaryDirectory(prefix="capsift-tcpconf-") as tmp:
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
        if out.ts.exit_code:
            msg = _first_line(out.ts.error.replace(tshark_input, cap.key)) or \
                f"exit {out.ts.exit_code}"
            msg = msg[len("tshark: "):] if msg.startswith("tshark: ") else msg
            out.notes.append(f"tshark stopped early: {msg}")
    out.default = run_capsift(capsift, str(cap.path), no_dedup=False)
    if out.default.copies_skipped:
        out.nodedup = run_capsift(capsift, str(cap.path), no_dedup=True)
    else:
        out.nodedup = CapsiftResult()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Compare capsift's per-flow TCP analysis counters with tshark's.")
    ap.add_argument("paths", nargs="*", metavar="DIR_OR_FILE",
                    help="capture files or directories (recursive); default: "
                         + " and ".join(DEFAULT_DIRS) + " relative to the repository root")
    ap.add_argument("--capsift", default=str(REPO_ROOT / "target/release/capsift"))
    ap.add_argument("--exceptions", default=None,
                    help="exceptions TSV (default: tests/conformance/tcp-exceptions.tsv "
                         "if it exists)")
    ap.add_argument("--verbose", "-v", action="store_true",
                    help="print per-flow tables (all flows of each file, with tshark's "
                         "flagged frame numbers)")
    ap.add_argument("--strict", action="store_true",
                    help="no tolerance: every differing counter is a difference")
    ap.add_argument("--jobs", type=int, default=2, help="parallel files (default 2)")
    args = ap.parse_args(argv)
    global STRICT
    STRICT = args.strict

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

    conf_dir = tempfile.mkdtemp(prefix="capsift-tcpconf-profile-")
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=conf_dir, LC_ALL="C")
    passed = failed = 0
    current_root = None
    multi_root = len({c.root for c in caps}) > 1
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
                ok, line, detail = judge(out, exceptions, args.verbose)
                if ok:
                    passed += 1
                else:
                    failed += 1
                say(line)
                for d in detail:
                    say(d)
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
    summary = f"tcp-conformance: {passed} passed, {failed} failed"
    if n_skipped:
        summary += f", {n_skipped} skipped"
    say(summary)
    return 1 if failed else 0


def _explain(cands, diffs, exceptions):
    """Split diffs into (unexplained, excepted[(diff, exc)])."""
    unexplained, excepted = [], []
    for d in diffs:
        exc = next((e for e in exceptions
                    if e.metric != "dedup" and e.matches(cands, d[0], d[1], d[2])), None)
        if exc:
            excepted.append((d, exc))
        else:
            unexplained.append(d)
    return unexplained, excepted


def judge(out: Outcome, exceptions: list[Exc], verbose: bool):
    cap = out.capture
    cands = cap.candidates()
    file_excs = [e for e in exceptions if e.matches_file(cands)]
    for e in file_excs:
        e.exercised = True
    dedup_exc = next((e for e in file_excs if e.metric == "dedup"), None)
    ts = out.ts
    notes = list(out.notes)
    if ts.quoted_skipped:
        notes.append(f"{ts.quoted_skipped} ICMP-quoted TCP frames skipped")

    crashes = [f"CRASH ({lbl}) {cr.crash}" for lbl, cr in
               (("default", out.default), ("no-dedup", out.nodedup)) if cr.crash]
    for lbl, cr in (("default", out.default), ("no-dedup", out.nodedup)):
        if cr.error:
            notes.append(f"{lbl}: {cr.error}")

    d_fail, d_tol, d_info = compare(out.default.flows, ts.flows)
    d_unexp, d_exc = _explain(cands, d_fail, exceptions)
    copies = out.default.copies_skipped
    n_fail = n_tol = n_info = n_unexp = n_exc = None
    if copies:
        n_fail, n_tol, n_info = compare(out.nodedup.flows, ts.flows)
        n_unexp, n_exc = _explain(cands, n_fail, exceptions)

    # A `dedup` row may pin the file-wide totals of the default run (capsift column)
    # and of tshark (tshark column), e.g. `retransmissions=0,dup_acks=0`; `*` = any.
    pin_errors = []
    if dedup_exc is not None:
        for side, spec, flows in (("capsift default", dedup_exc.capsift, out.default.flows),
                                  ("tshark", dedup_exc.tshark, ts.flows)):
            want, bad = parse_totals(spec)
            if bad:
                pin_errors.append(f"tcp-exceptions:{dedup_exc.line}: cannot parse {bad!r}")
                continue
            have = totals(flows)
            for m, v in want.items():
                if have[m] != v:
                    pin_errors.append(f"{side} total {m}={have[m]}, tcp-exceptions:"
                                      f"{dedup_exc.line} expects {v}")

    mode = "default"
    used: list[Exc] = []
    if not d_unexp and not crashes:
        ok = True
        used = [e for _, e in d_exc]
    elif copies and dedup_exc and not n_unexp and not crashes and not pin_errors:
        ok = True
        mode = "no-dedup"
        used = [dedup_exc] + [e for _, e in n_exc]
    else:
        ok = False
        used = [e for _, e in d_exc]
        if copies and dedup_exc:
            used.append(dedup_exc)   # the file fails anyway; don't also call it stale
    for e in used:
        e.used = True

    def fmt(items, prefix=""):
        return "; ".join(f"{prefix}{m} capsift={c} tshark={t}" for m, c, t in items)

    n_flows = len(set(out.default.flows) | set(ts.flows))
    head = f"{cap.key}: {n_flows} tcp flows; default {fmt_totals(out.default.flows, ts.flows)}"
    if copies:
        head += (f"; copies_skipped={copies}, no-dedup "
                 f"{fmt_totals(out.nodedup.flows, ts.flows)}")
    parts = []
    if ok:
        line = f"ok   {head}"
        if mode == "no-dedup":
            line += (f" [passes with --no-dedup; default differs by copies: "
                     f"tcp-exceptions:{dedup_exc.line}]")
        excs = d_exc if mode == "default" else n_exc
        if excs:
            parts.append("expected: " + ", ".join(
                f"{m} capsift={c} tshark={t} [tcp-exceptions:{e.line}]" for (m, c, t), e in excs))
        tol = d_tol if mode == "default" else n_tol
        if tol:
            parts.append(f"{len(tol)} within tolerance: " + fmt(tol[:4])
                         + (f"; +{len(tol) - 4} more (--verbose)" if len(tol) > 4 else ""))
    else:
        line = f"FAIL {head}"
        parts += crashes
        if d_unexp:
            parts.append("default: " + fmt(d_unexp, "DIFF "))
        if copies and dedup_exc is not None:
            parts += [f"PIN {e}" for e in pin_errors]
        if copies:
            if n_unexp:
                parts.append("no-dedup: " + fmt(n_unexp, "DIFF "))
            elif dedup_exc is None:
                parts.append("no-dedup run matches tshark (add a `dedup` exception if the "
                             "difference is copies of one packet at several capture points)")
    info = d_info if mode == "default" else n_info
    if info:
        parts.append("info: " + fmt(info[:4]) + (f"; +{len(info) - 4} more" if len(info) > 4
                                                 else ""))
    if parts:
        line += " | " + " | ".join(parts)
    if notes:
        line += "".join(f" [{n}]" for n in notes)

    detail = []
    if verbose:
        runs = [("default", out.default)] + ([("no-dedup", out.nodedup)] if copies else [])
        detail = verbose_table(ts, runs, only_diff=False)
        if d_tol and mode == "default":
            detail.append("    within tolerance: " + fmt(d_tol))
    return ok, line, detail


if __name__ == "__main__":
    sys.exit(main())
