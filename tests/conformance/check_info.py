#!/usr/bin/env python3
"""Conformance check: compare `capsift info --json` with counts derived from tshark.

Usage:
    python3 tests/conformance/check_info.py [--capsift PATH] [--exceptions TSV]
                                            [--tshark-only] [--update-exceptions-template]
                                            [--jobs N] [DIR_OR_FILE ...]

With no DIR_OR_FILE, the directories `captures/` and `../shared/corpus/` (relative to
the repository root) are scanned; a missing one is reported as skipped.

Only the Python 3 standard library and tshark are needed (see README.md beside this
file for what is compared and how the tshark counts are derived).

Exit status: 0 when everything matched (differences all covered by exceptions),
1 when a file failed or an exception is stale/invalid, 2 on a usage/setup error.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import ctypes.util
import fnmatch
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
DEFAULT_DIRS = ["captures", "../shared/corpus"]  # relative to REPO_ROOT
DEFAULT_EXCEPTIONS = SCRIPT_DIR / "exceptions.tsv"

# --- tshark invocation ----------------------------------------------------------------

# 8472 is the Linux kernel / Flannel VXLAN port (tshark only knows 4789 by default),
# 51871 is a common WireGuard port used by Kubernetes CNIs (Calico uses 51820, which
# tshark already knows; Cilium uses 51871).
TSHARK_DECODE_AS = ["udp.port==8472,vxlan", "udp.port==51871,wg"]
TSHARK_FIELDS = [
    "frame.number",
    "frame.encap_type",
    "frame.protocols",
    "vxlan.vni",
    "geneve.vni",
    "vlan.id",
    "wg.type",
    "ieee8021ad.id",
]
TSHARK_TIMEOUT = 600
CAPSIFT_TIMEOUT = 600


def tshark_command(path: str) -> list[str]:
    cmd = ["tshark", "-n", "-r", path]
    for d in TSHARK_DECODE_AS:
        cmd += ["-d", d]
    cmd += ["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    return cmd


# Protocols after which the rest of frame.protocols is a *quoted* packet, not a layer
# of this frame: ICMP/ICMPv6 errors quote the offending datagram; sFlow carries sampled
# headers of other packets.
QUOTING_PROTOCOLS = {"icmp", "icmpv6", "sflow"}
IP_PROTOCOLS = {"ip": "ipv4", "ipv6": "ipv6"}
IPIP_KINDS = ["ipv4_in_ipv4", "ipv6_in_ipv4", "ipv4_in_ipv6", "ipv6_in_ipv6"]
WG_MESSAGES = {
    1: "handshake_initiation",
    2: "handshake_response",
    3: "cookie_reply",
    4: "transport_data",
}

# Metrics always present on both sides (missing = 0); per-id metrics
# (vxlan.vni.N, geneve.vni.N, vlan.id.N) are added when non-zero.
BASE_METRICS = (
    ["packets", "vxlan.packets", "geneve.packets", "gre.packets", "ipip.packets"]
    + ["ipip." + k for k in IPIP_KINDS]
    + ["vlan.packets", "wireguard.packets"]
    + ["wireguard." + m for m in WG_MESSAGES.values()]
)


def _parse_int(text: str):
    text = text.strip()
    try:
        return int(text, 0)
    except ValueError:
        try:
            return int(text, 10)  # e.g. "010"
        except ValueError:
            return None


def _values(cell: str) -> list:
    out = []
    for v in cell.split(","):
        if v.strip() == "":
            continue
        n = _parse_int(v)
        out.append(n if n is not None else v.strip())
    return out


def frame_metrics(protocols: str, vxlan_vnis: list, geneve_vnis: list, vlan_ids: list,
                  wg_types: list, svlan_ids: list = ()) -> set[str]:
    """Metric names (each counted once) that one frame contributes to."""
    toks = [t for t in protocols.split(":") if t]
    for i, t in enumerate(toks):
        if t in QUOTING_PROTOCOLS:
            toks = toks[:i]
            break
    out: set[str] = set()

    # Field occurrences come in protocol-tree order, so the first k values belong to
    # the k layers that precede the ICMP/sFlow quote.
    n_vxlan = toks.count("vxlan")
    if n_vxlan:
        out.add("vxlan.packets")
        for v in vxlan_vnis[:n_vxlan]:
            out.add(f"vxlan.vni.{v}")
    n_geneve = toks.count("geneve")
    if n_geneve:
        out.add("geneve.packets")
        for v in geneve_vnis[:n_geneve]:
            out.add(f"geneve.vni.{v}")
    if "gre" in toks:
        out.add("gre.packets")
    # tshark calls an 802.1Q tag (TPID 0x8100/0x9100) `vlan` and an 802.1ad S-tag
    # (TPID 0x88a8) `ieee8021ad`; both are VLAN tags.
    n_vlan = toks.count("vlan")
    n_svlan = toks.count("ieee8021ad")
    if n_vlan or n_svlan:
        out.add("vlan.packets")
        for v in list(vlan_ids[:n_vlan]) + list(svlan_ids[:n_svlan]):
            out.add(f"vlan.id.{v}")
    n_wg = toks.count("wg")
    if n_wg:
        out.add("wireguard.packets")
        for v in wg_types[:n_wg]:
            name = WG_MESSAGES.get(v) if isinstance(v, int) else None
            out.add(f"wireguard.{name}" if name else f"wireguard.type.{v}")

    # IP-in-IP: an ip/ipv6 directly after another ip/ipv6, skipping IPv6 extension
    # header pseudo-protocols (ipv6.hopopts, ipv6.fraghdr, ipv6.routing, ...).
    chain = [t for t in toks if not t.startswith("ipv6.")]
    for outer, inner in zip(chain, chain[1:]):
        if outer in IP_PROTOCOLS and inner in IP_PROTOCOLS:
            out.add("ipip.packets")
            out.add(f"ipip.{IP_PROTOCOLS[inner]}_in_{IP_PROTOCOLS[outer]}")
    return out


@dataclass
class TsharkResult:
    metrics: dict
    exit_code: int
    error: str = ""
    non_packet_records: int = 0


def run_tshark(path: str, env: dict) -> TsharkResult:
    proc = subprocess.run(tshark_command(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=TSHARK_TIMEOUT)
    metrics = {k: 0 for k in BASE_METRICS}
    non_packet = 0
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        cols = line.split("\t")
        if len(cols) < 2 or _parse_int(cols[0]) is None:
            continue
        cols += [""] * (len(TSHARK_FIELDS) - len(cols))
        f = dict(zip(TSHARK_FIELDS, cols))
        if not f["frame.encap_type"].strip():
            # Not a packet: tshark 4.0 also lists pcapng Custom Blocks as "frames"
            # (no interface, no encapsulation, protocols "data").
            non_packet += 1
            continue
        metrics["packets"] += 1
        for name in frame_metrics(f["frame.protocols"], _values(f["vxlan.vni"]),
                                  _values(f["geneve.vni"]), _values(f["vlan.id"]),
                                  _values(f["wg.type"]), _values(f["ieee8021ad.id"])):
            metrics[name] = metrics.get(name, 0) + 1
    err = "\n".join(l for l in proc.stderr.decode("utf-8", "replace").splitlines()
                    if l.strip() and "Running as user" not in l)
    return TsharkResult(metrics, proc.returncode, err if proc.returncode else "", non_packet)


# --- capsift side ---------------------------------------------------------------------

@dataclass
class CapsiftResult:
    metrics: dict
    error: str = ""        # non-zero exit / unparsable output: reported, packets=0
    crash: str = ""        # panic, signal or timeout: always a failure
    info: str = ""         # non-zero exit that still printed the JSON
    missing_keys: list = field(default_factory=list)


def _num(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, str):
        n = _parse_int(v)
        return n if n is not None else 0
    return 0


def _id_key(k) -> str:
    n = _parse_int(str(k))
    return str(n) if n is not None else str(k)


def capsift_metrics(entry: dict) -> tuple[dict, list]:
    missing = []

    def get(obj, key, path):
        if isinstance(obj, dict) and key in obj:
            return obj[key]
        missing.append(path)
        return None

    m = {k: 0 for k in BASE_METRICS}
    m["packets"] = _num(get(entry, "packets", "packets"))
    tunnels = get(entry, "tunnels", "tunnels") or {}

    vx = get(tunnels, "vxlan", "tunnels.vxlan") if tunnels else None
    if isinstance(vx, dict):
        m["vxlan.packets"] = _num(get(vx, "packets", "tunnels.vxlan.packets"))
        for k, v in (get(vx, "vnis", "tunnels.vxlan.vnis") or {}).items():
            m[f"vxlan.vni.{_id_key(k)}"] = _num(v)
    gn = get(tunnels, "geneve", "tunnels.geneve") if tunnels else None
    if isinstance(gn, dict):
        m["geneve.packets"] = _num(get(gn, "packets", "tunnels.geneve.packets"))
        for k, v in (get(gn, "vnis", "tunnels.geneve.vnis") or {}).items():
            m[f"geneve.vni.{_id_key(k)}"] = _num(v)
    gre = get(tunnels, "gre", "tunnels.gre") if tunnels else None
    if isinstance(gre, dict):
        m["gre.packets"] = _num(get(gre, "packets", "tunnels.gre.packets"))
    ipip = get(tunnels, "ipip", "tunnels.ipip") if tunnels else None
    if isinstance(ipip, dict):
        m["ipip.packets"] = _num(get(ipip, "packets", "tunnels.ipip.packets"))
        for k in IPIP_KINDS:
            m[f"ipip.{k}"] = _num(get(ipip, k, f"tunnels.ipip.{k}"))
    vlan = get(tunnels, "vlan", "tunnels.vlan") if tunnels else None
    if isinstance(vlan, dict):
        m["vlan.packets"] = _num(get(vlan, "packets", "tunnels.vlan.packets"))
        for k, v in (get(vlan, "ids", "tunnels.vlan.ids") or {}).items():
            m[f"vlan.id.{_id_key(k)}"] = _num(v)
    wg = get(tunnels, "wireguard", "tunnels.wireguard") if tunnels else None
    if isinstance(wg, dict):
        m["wireguard.packets"] = _num(get(wg, "packets", "tunnels.wireguard.packets"))
        msgs = get(wg, "messages", "tunnels.wireguard.messages") or {}
        for name in WG_MESSAGES.values():
            m[f"wireguard.{name}"] = _num(get(msgs, name, f"tunnels.wireguard.messages.{name}")
                                          if msgs else None)
    # Drop zero per-id entries so they compare like tshark's (absent = 0).
    m = {k: v for k, v in m.items() if v or k in BASE_METRICS}
    return m, missing


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def run_capsift(capsift: str, path: str) -> CapsiftResult:
    zero = {k: 0 for k in BASE_METRICS}
    try:
        proc = subprocess.run([capsift, "info", "--json", path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=CAPSIFT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return CapsiftResult(zero, crash=f"capsift timed out after {CAPSIFT_TIMEOUT}s")
    except OSError as e:
        return CapsiftResult(zero, crash=f"cannot run capsift: {e}")
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode < 0:
        return CapsiftResult(zero, crash=f"capsift killed by signal {-proc.returncode}")
    if "panicked at" in stderr or proc.returncode == 101:
        tail = stderr[stderr.find("panicked at"):] if "panicked at" in stderr else stderr
        msg = " ".join(l.strip() for l in tail.splitlines() if l.strip())[:300]
        return CapsiftResult(zero, crash=f"capsift panicked (exit {proc.returncode}): {msg}")
    nonzero = ""
    if proc.returncode != 0:
        nonzero = f"capsift exit {proc.returncode}"
        try:
            doc = json.loads(proc.stdout.decode("utf-8", "replace"))
            assert isinstance(doc["files"][0], dict)
        except Exception:
            msg = _first_line(stderr) or _first_line(proc.stdout.decode("utf-8", "replace"))
            return CapsiftResult(zero, error=f"{nonzero}: {msg} (counted as packets=0)")
    try:
        doc = json.loads(proc.stdout.decode("utf-8", "replace"))
        files = doc["files"]
        entry = None
        for f in files:
            if isinstance(f, dict) and f.get("path") == path:
                entry = f
        if entry is None:
            entry = files[0]
        if not isinstance(entry, dict):
            raise TypeError("files[0] is not an object")
    except (ValueError, KeyError, IndexError, TypeError) as e:
        return CapsiftResult(zero, error=f"capsift output is not the expected JSON "
                             f"({type(e).__name__}: {e}): "
                             f"{_first_line(proc.stdout.decode('utf-8', 'replace'))[:80]!r} "
                             "(counted as packets=0)")
    m, missing = capsift_metrics(entry)
    info = ""
    if nonzero:
        info = f"{nonzero}, JSON used"
        if entry.get("complete") is False:
            info += ", complete=false"
    return CapsiftResult(m, missing_keys=missing, info=info)


# --- capture discovery and decompression ----------------------------------------------

PCAP_MAGICS = {bytes.fromhex(h) for h in
               ["a1b2c3d4", "d4c3b2a1", "a1b23c4d", "4d3cb2a1", "a1b2cd34", "34cdb2a1"]}
PCAPNG_MAGIC = bytes.fromhex("0a0d0d0a")
GZIP_MAGIC = bytes.fromhex("1f8b")
ZSTD_MAGIC = bytes.fromhex("28b52ffd")


def sniff(data: bytes) -> str | None:
    if data[:4] in PCAP_MAGICS:
        return "pcap"
    if data[:4] == PCAPNG_MAGIC:
        return "pcapng"
    if data[:2] == GZIP_MAGIC:
        return "gzip"
    if data[:4] == ZSTD_MAGIC:
        return "zstd"
    return None


def sniff_file(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return sniff(fh.read(4))
    except OSError:
        return None


def gunzip(src: Path, dst) -> str:
    """Decompress (possibly multi-member, possibly truncated) gzip; returns a note."""
    note = ""
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
            break  # trailing garbage after the last member
    return note


class _ZIn(ctypes.Structure):
    _fields_ = [("src", ctypes.c_void_p), ("size", ctypes.c_size_t), ("pos", ctypes.c_size_t)]


class _ZOut(ctypes.Structure):
    _fields_ = [("dst", ctypes.c_void_p), ("size", ctypes.c_size_t), ("pos", ctypes.c_size_t)]


_ZSTD_LIB = None


def _zstd_lib():
    """libzstd via ctypes (Debian's libwireshark depends on libzstd1), or None."""
    global _ZSTD_LIB
    if _ZSTD_LIB is None:
        lib = None
        for name in [ctypes.util.find_library("zstd"), "libzstd.so.1", "libzstd.1.dylib"]:
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if lib is not None:
            lib.ZSTD_createDStream.restype = ctypes.c_void_p
            lib.ZSTD_freeDStream.argtypes = [ctypes.c_void_p]
            lib.ZSTD_initDStream.argtypes = [ctypes.c_void_p]
            lib.ZSTD_initDStream.restype = ctypes.c_size_t
            lib.ZSTD_decompressStream.argtypes = [ctypes.c_void_p, ctypes.POINTER(_ZOut),
                                                  ctypes.POINTER(_ZIn)]
            lib.ZSTD_decompressStream.restype = ctypes.c_size_t
            lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
            lib.ZSTD_isError.restype = ctypes.c_uint
            lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
            lib.ZSTD_getErrorName.restype = ctypes.c_char_p
            lib.ZSTD_DStreamOutSize.restype = ctypes.c_size_t
        _ZSTD_LIB = lib or False
    return _ZSTD_LIB or None


def unzstd(src: Path, dst) -> str:
    """Decompress zstd into dst (binary file). Returns a note; raises RuntimeError if no
    decompressor is available."""
    lib = _zstd_lib()
    if lib is None:
        exe = shutil.which("zstd")
        if exe is None:
            raise RuntimeError("zstd-compressed and neither libzstd nor the zstd tool is available")
        proc = subprocess.run([exe, "-dc", "--", str(src)], stdout=dst, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            return f"zstd stream damaged ({_first_line(proc.stderr.decode('utf-8', 'replace'))})"
        return ""
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
                        return (f"zstd stream damaged ({lib.ZSTD_getErrorName(ret).decode()}); "
                                "tshark read the part before it")
                    dst.write(out_buf.raw[:zout.pos])
                    if zin.pos >= zin.size and zout.pos < out_size:
                        break
        if ret != 0:
            return "zstd stream cut short; tshark read the part before the cut"
        return ""
    finally:
        lib.ZSTD_freeDStream(ds)


# --- exceptions -----------------------------------------------------------------------

@dataclass
class Exception_:
    line: int
    file: str
    metric: str
    capsift: str
    tshark: str
    reason: str
    exercised: bool = False   # its file pattern matched a file of this run
    used: bool = False        # it matched a difference

    def matches_file(self, candidates: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(c, self.file) for c in candidates)

    def matches(self, candidates, metric, cval, tval) -> bool:
        return (self.matches_file(candidates)
                and fnmatch.fnmatchcase(metric, self.metric)
                and fnmatch.fnmatchcase(str(cval), self.capsift)
                and fnmatch.fnmatchcase(str(tval), self.tshark))


def load_exceptions(path: Path) -> tuple[list[Exception_], list[str]]:
    excs, problems = [], []
    with open(path, encoding="utf-8") as fh:
        for no, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = line.split("\t")
            if cols[0].strip() == "file" and no == 1 or (cols[0].strip() == "file"
                                                         and len(cols) > 1
                                                         and cols[1].strip() == "metric"):
                continue  # header
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
            excs.append(Exception_(no, f, m, c, t, reason))
    return excs, problems


# --- driver ---------------------------------------------------------------------------

@dataclass
class Capture:
    path: Path        # as found on disk
    key: str          # path relative to the directory it was found in (or the file name)
    kind: str         # pcap / pcapng / gzip / zstd
    root: str         # the DIR_OR_FILE argument it came from, as displayed

    def candidates(self) -> list[str]:
        """Strings an exception's `file` pattern is matched against: the key, and every
        trailing part of the absolute path (so `encap/x.pcap` also matches when the file
        was given directly or through another directory)."""
        parts = Path(os.path.abspath(self.path)).parts[1:]
        return [self.key] + ["/".join(parts[i:]) for i in range(len(parts))]


@dataclass
class Outcome:
    capture: Capture
    tshark: dict | None = None
    capsift: CapsiftResult | None = None
    notes: list = field(default_factory=list)
    skipped: str = ""
    diffs: list = field(default_factory=list)      # (metric, capsift, tshark)
    excepted: list = field(default_factory=list)   # (metric, capsift, tshark, exception)


def capture_key(fp: Path, base: Path) -> str:
    """Path of a capture relative to the directory it was found in. A file under one
    of the default directories (given directly or through a subdirectory) is keyed
    relative to that default directory, so keys match exceptions.tsv either way."""
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


def discover(args_paths: list[str], explicit: bool) -> tuple[list[Capture], list[str]]:
    caps, skipped = [], []
    for arg in args_paths:
        disp = arg
        p = Path(arg)
        if not explicit and not p.is_absolute():
            p = REPO_ROOT / p
            disp = arg.rstrip("/")
        if p.is_dir():
            found = []
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames.sort()
                for name in sorted(filenames):
                    fp = Path(dirpath) / name
                    if not fp.is_file():
                        continue
                    kind = sniff_file(fp)
                    if kind:
                        found.append(Capture(fp, capture_key(fp, p), kind, disp))
            caps.extend(found)
        elif p.is_file():
            kind = sniff_file(p)
            if kind is None:
                skipped.append(f"skipped: {disp} is not a pcap/pcapng/gzip/zstd file")
            else:
                caps.append(Capture(p, capture_key(p, None), kind, str(p.parent)))
        else:
            skipped.append(f"skipped: {disp} not present")
    return caps, skipped


def process(cap: Capture, capsift: str | None, env: dict) -> Outcome:
    out = Outcome(cap)
    with tempfile.TemporaryDirectory(prefix="capsift-conf-") as tmp:
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
            inner = sniff_file(plain)
            if inner not in ("pcap", "pcapng"):
                out.skipped = (f"{note.split(';')[0]}: no capture data could be decompressed"
                               if note else f"{cap.kind}-compressed but not a pcap/pcapng inside")
                return out
            tshark_input = str(plain)
        try:
            tr = run_tshark(tshark_input, env)
        except subprocess.TimeoutExpired:
            out.skipped = f"tshark timed out after {TSHARK_TIMEOUT}s"
            return out
        out.tshark = tr.metrics
        if tr.non_packet_records:
            out.notes.append(f"tshark also listed {tr.non_packet_records} non-packet "
                             "record(s) (pcapng custom blocks), not counted")
        if tr.exit_code:
            msg = _first_line(tr.error.replace(tshark_input, cap.key)) or f"exit {tr.exit_code}"
            msg = msg[len("tshark: "):] if msg.startswith("tshark: ") else msg
            out.notes.append(f"tshark stopped early ({msg}); counted the "
                             f"{tr.metrics['packets']} frames it printed")
    if capsift is None:
        return out
    cr = run_capsift(capsift, str(cap.path))
    out.capsift = cr
    if cr.error:
        out.notes.append(cr.error)
    if cr.info:
        out.notes.append(cr.info)
    for metric in sorted(set(out.tshark) | set(cr.metrics), key=metric_sort_key):
        c, t = cr.metrics.get(metric, 0), out.tshark.get(metric, 0)
        if c != t:
            out.diffs.append((metric, c, t))
    return out


def metric_sort_key(m: str):
    if m == "packets":
        return (0, "", 0, m)
    head, _, rest = m.partition(".")
    order = ["vxlan", "geneve", "gre", "ipip", "vlan", "wireguard"]
    group = order.index(head) + 1 if head in order else 99
    tail = rest.rsplit(".", 1)
    if len(tail) == 2 and tail[1].lstrip("-").isdigit():
        return (group, tail[0], int(tail[1]), m)
    return (group, "" if rest == "packets" else rest, -1, m)


def format_metrics(metrics: dict) -> str:
    keys = sorted(metrics, key=metric_sort_key)
    return " ".join(f"{k}={metrics[k]}" for k in keys if k == "packets" or metrics[k])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Compare `capsift info --json` with counts derived from tshark.")
    ap.add_argument("paths", nargs="*", metavar="DIR_OR_FILE",
                    help="capture files or directories (searched recursively); default: "
                         + " and ".join(DEFAULT_DIRS) + " relative to the repository root")
    ap.add_argument("--capsift", default=str(REPO_ROOT / "target/release/capsift"),
                    help="capsift binary (default: target/release/capsift in the repo)")
    ap.add_argument("--exceptions", default=None,
                    help=f"exceptions TSV (default: {DEFAULT_EXCEPTIONS.relative_to(REPO_ROOT)} "
                         "if it exists)")
    ap.add_argument("--tshark-only", action="store_true",
                    help="only print the metrics derived from tshark for each file")
    ap.add_argument("--update-exceptions-template", action="store_true",
                    help="print TSV rows (reason TODO) for the unexplained differences on "
                         "stdout; the report goes to stderr")
    ap.add_argument("--jobs", type=int, default=2, help="parallel workers (default 2)")
    args = ap.parse_args(argv)

    report = sys.stderr if args.update_exceptions_template else sys.stdout

    def say(msg=""):
        print(msg, file=report, flush=True)

    if shutil.which("tshark") is None:
        print("error: tshark not found on PATH", file=sys.stderr)
        return 2

    capsift = None
    if not args.tshark_only:
        capsift = args.capsift
        if not os.path.isfile(capsift) or not os.access(capsift, os.X_OK):
            print(f"error: capsift binary not found or not executable: {capsift}", file=sys.stderr)
            return 2
        capsift = os.path.abspath(capsift)

    exceptions: list[Exception_] = []
    problems: list[str] = []
    if not args.tshark_only:
        exc_path = Path(args.exceptions) if args.exceptions else DEFAULT_EXCEPTIONS
        if exc_path.is_file():
            exceptions, problems = load_exceptions(exc_path)
        elif args.exceptions:
            print(f"error: exceptions file not found: {exc_path}", file=sys.stderr)
            return 2

    explicit = bool(args.paths)
    caps, skipped_msgs = discover(args.paths or DEFAULT_DIRS, explicit)
    for msg in skipped_msgs:
        say(msg)
    n_skipped = len(skipped_msgs)

    # A clean tshark profile so a personal Wireshark configuration cannot change decoding.
    conf_dir = tempfile.mkdtemp(prefix="capsift-conf-wsprofile-")
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=conf_dir, LC_ALL="C")

    passed = failed = 0
    template_rows = []
    missing_keys: dict[str, int] = {}
    crashes = 0
    n_done = 0
    current_root = None
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(process, c, capsift, env) for c in caps]
            for fut in futures:
                out = fut.result()
                cap = out.capture
                if cap.root != current_root and len({c.root for c in caps}) > 1:
                    say(f"== {cap.root}")
                current_root = cap.root
                notes = "".join(f" [{n}]" for n in out.notes)
                if out.skipped:
                    n_skipped += 1
                    say(f"skipped: {cap.key} ({out.skipped})")
                    continue
                n_done += 1
                if args.tshark_only:
                    say(f"{cap.key}: {format_metrics(out.tshark)}{notes}")
                    continue
                for k in out.capsift.missing_keys:
                    missing_keys[k] = missing_keys.get(k, 0) + 1
                cands = cap.candidates()
                for e in exceptions:
                    if e.matches_file(cands):
                        e.exercised = True
                unexplained = []
                for metric, c, t in out.diffs:
                    exc = next((e for e in exceptions if e.matches(cands, metric, c, t)), None)
                    if exc:
                        exc.used = True
                        out.excepted.append((metric, c, t, exc))
                    else:
                        unexplained.append((metric, c, t))
                        template_rows.append(f"{cap.key}\t{metric}\t{c}\t{t}\tTODO")
                parts = [f"DIFF {m} capsift={c} tshark={t}" for m, c, t in unexplained]
                if out.capsift.crash:
                    crashes += 1
                    parts.insert(0, f"CRASH {out.capsift.crash}")
                exc_note = ""
                if out.excepted:
                    exc_note = " (expected: " + ", ".join(
                        f"{m} capsift={c} tshark={t} [exceptions:{e.line}]"
                        for m, c, t, e in out.excepted) + ")"
                if parts:
                    failed += 1
                    say(f"FAIL {cap.key}: " + "; ".join(parts) + exc_note + notes)
                else:
                    passed += 1
                    say(f"ok   {cap.key}{exc_note}{notes}")
    finally:
        shutil.rmtree(conf_dir, ignore_errors=True)

    if args.tshark_only:
        say(f"tshark-only: {n_done} files"
            + (f", {n_skipped} skipped" if n_skipped else ""))
        return 0

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
    if missing_keys:
        say("note: capsift JSON lacks keys (counted as 0): " + ", ".join(
            f"{k} ({n} files)" for k, n in sorted(missing_keys.items())))

    if args.update_exceptions_template:
        print("# file\tmetric\tcapsift\ttshark\treason")
        for row in template_rows:
            print(row)

    summary = f"conformance: {passed} passed, {failed} failed"
    if n_skipped:
        summary += f", {n_skipped} skipped"
    say(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
