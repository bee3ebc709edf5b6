"""Shared parts of the tshark conformance checks (check_info.py, check_tcp.py,
check_dns.py, check_tls.py).

What is here: the command line common to the checks, the setup checks (tshark on PATH,
the capsift binary, the exceptions file), capture discovery by magic bytes,
decompression of gzip/zstd captures for tshark, the exceptions TSV (loading, matching,
stale detection), running capsift and tshark with timeouts, the per-file parallel
runner with a clean tshark profile, and the summary line and exit status.

Each check keeps what is its own: the tshark fields it reads, the capsift subcommand
and its output, the comparison and the wording of a file's line.

Only the Python 3 standard library is used. The checks import this module from their
own directory (they put it on sys.path), so they run from any working directory.
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
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent


# --- small helpers ----------------------------------------------------------------------

def first_line(text: str) -> str:
    """The first non-blank line of text, stripped, at most 200 characters."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def int_or(text, default=None):
    """An int from a JSON value or a PDML string (base prefixes allowed), else default."""
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


def norm_ip(text: str) -> str:
    try:
        return ipaddress.ip_address(text.strip()).compressed
    except ValueError:
        return text.strip()


def _endpoint(ip: str, port) -> tuple:
    try:
        a = ipaddress.ip_address(ip)
        return (a.version, int(a), int(port), a.compressed)
    except ValueError:
        return (9, 0, int(port), ip)


def flow_key(ip1: str, port1, ip2: str, port2) -> str:
    """Unordered flow key `ip:port-ip:port` (IPv6 as `[ip]:port`), lower endpoint first."""
    eps = sorted([_endpoint(ip1, port1), _endpoint(ip2, port2)])
    return "-".join((f"[{e[3]}]:{e[2]}" if e[0] == 6 else f"{e[3]}:{e[2]}") for e in eps)


def cap_list(items: list, limit: int) -> str:
    """The first `limit` items, comma-separated, and how many more there are."""
    s = ", ".join(items[:limit])
    return s + (f", +{len(items) - limit} more" if len(items) > limit else "")


# --- command line and setup -------------------------------------------------------------

def new_parser(description: str, default_dirs: list[str], default_exceptions: Path, *,
               recursive: str = "recursive", capsift_help: str | None = None):
    """An ArgumentParser with the arguments every check has: DIR_OR_FILE ..., --capsift,
    --exceptions. Add the check's own options, then add_jobs_option()."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("paths", nargs="*", metavar="DIR_OR_FILE",
                    help=f"capture files or directories ({recursive}); default: "
                         + " and ".join(default_dirs) + " relative to the repository root")
    ap.add_argument("--capsift", default=str(REPO_ROOT / "target/release/capsift"),
                    help=capsift_help)
    ap.add_argument("--exceptions", default=None,
                    help=f"exceptions TSV (default: {default_exceptions.relative_to(REPO_ROOT)} "
                         "if it exists)")
    return ap


def add_verbose_option(ap, help: str):
    ap.add_argument("--verbose", "-v", action="store_true", help=help)


def add_jobs_option(ap, what: str = "files"):
    ap.add_argument("--jobs", type=int, default=2, help=f"parallel {what} (default 2)")


def make_say(stream=None):
    """print() to stream (stdout by default, looked up at call time), flushed."""
    def say(msg=""):
        print(msg, file=stream if stream is not None else sys.stdout, flush=True)
    return say


@dataclass
class Setup:
    capsift: str | None        # absolute path of the binary; None: not needed
    exceptions: list
    problems: list             # invalid rows of the exceptions file
    caps: list                 # Capture
    skipped: int               # DIR_OR_FILE arguments reported as skipped
    say: object                # prints a line of the report


def setup(args, default_dirs: list[str], default_exceptions: Path, say=None, *,
          with_capsift: bool = True, header_on_first_line: bool = False,
          keep_explicit_slash: bool = False) -> Setup | None:
    """Check tshark, the capsift binary and the exceptions file (errors on stderr; None
    means exit status 2), then find the captures and report (with say, by default on
    stdout) the skipped arguments."""
    say = say or make_say()
    if shutil.which("tshark") is None:
        print("error: tshark not found on PATH", file=sys.stderr)
        return None
    capsift = None
    if with_capsift:
        capsift = args.capsift
        if not os.path.isfile(capsift) or not os.access(capsift, os.X_OK):
            print(f"error: capsift binary not found or not executable: {capsift}",
                  file=sys.stderr)
            return None
        capsift = os.path.abspath(capsift)

    exceptions: list[Exc] = []
    problems: list[str] = []
    if with_capsift:
        exc_path = Path(args.exceptions) if args.exceptions else default_exceptions
        if exc_path.is_file():
            exceptions, problems = load_exceptions(exc_path, header_on_first_line)
        elif args.exceptions:
            print(f"error: exceptions file not found: {exc_path}", file=sys.stderr)
            return None

    caps, skipped_msgs = discover(args.paths or default_dirs, bool(args.paths), default_dirs,
                                  keep_explicit_slash)
    for msg in skipped_msgs:
        say(msg)
    return Setup(capsift, exceptions, problems, caps, len(skipped_msgs), say)


# --- capture discovery ------------------------------------------------------------------

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


def capture_key(fp: Path, base: Path | None, default_dirs: list[str]) -> str:
    """Path of a capture relative to the directory it was found in. A file under one
    of the default directories (given directly or through a subdirectory) is keyed
    relative to that default directory, so keys match the exceptions file either way."""
    real = Path(os.path.realpath(fp))
    for d in default_dirs:
        root = Path(os.path.realpath(REPO_ROOT / d))
        try:
            return real.relative_to(root).as_posix()
        except ValueError:
            pass
    if base is None:
        return fp.name
    return fp.relative_to(base).as_posix()


def discover(paths: list[str], explicit: bool, default_dirs: list[str],
             keep_explicit_slash: bool = False) -> tuple[list[Capture], list[str]]:
    """Captures (recognised by magic bytes) in the given files and directories, and the
    `skipped: ...` lines for the arguments that are missing or not captures. Without
    `explicit`, relative paths are taken from the repository root. An argument is
    displayed without a trailing slash, unless it was given explicitly and
    keep_explicit_slash is set (check_info.py)."""
    caps, skipped = [], []
    for arg in paths:
        disp = arg if explicit and keep_explicit_slash else (arg.rstrip("/") or arg)
        p = Path(arg)
        if not explicit and not p.is_absolute():
            p = REPO_ROOT / p
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                # captures/hostile/ is built to be broken: tests/cli/hostile_captures.rs covers it.
                dirnames[:] = sorted(d for d in dirnames
                                     if not (d == "hostile" and Path(dirpath) == REPO_ROOT / "captures"))
                for name in sorted(filenames):
                    fp = Path(dirpath) / name
                    if fp.is_file():
                        kind = sniff_file(fp)
                        if kind:
                            caps.append(Capture(fp, capture_key(fp, p, default_dirs), kind,
                                                disp))
        elif p.is_file():
            kind = sniff_file(p)
            if kind is None:
                skipped.append(f"skipped: {disp} is not a pcap/pcapng/gzip/zstd file")
            else:
                caps.append(Capture(p, capture_key(p, None, default_dirs), kind,
                                    str(p.parent)))
        else:
            skipped.append(f"skipped: {disp} not present")
    return caps, skipped


# --- decompression for tshark -----------------------------------------------------------

def gunzip(src: Path, dst) -> str:
    """Decompress (possibly multi-member, possibly truncated) gzip; returns a note."""
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
    return ""


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


def unzstd(src: Path, dst, detailed: bool = False) -> str:
    """Decompress zstd into dst (binary file). Returns a note (with `detailed`, the
    decompressor's own error text is in it); raises RuntimeError if no decompressor is
    available."""
    lib = _zstd_lib()
    if lib is None:
        exe = shutil.which("zstd")
        if exe is None:
            raise RuntimeError("zstd-compressed and neither libzstd nor the zstd tool is available")
        dst.flush()
        proc = subprocess.run([exe, "-dc", "--", str(src)], stdout=dst, stderr=subprocess.PIPE)
        if proc.returncode == 0:
            return ""
        if detailed:
            return f"zstd stream damaged ({first_line(proc.stderr.decode('utf-8', 'replace'))})"
        return "zstd stream damaged; tshark read the part before it"
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
                        why = (f" ({lib.ZSTD_getErrorName(ret).decode()})" if detailed
                               else "")
                        return f"zstd stream damaged{why}; tshark read the part before it"
                    dst.write(out_buf.raw[:zout.pos])
                    if zin.pos >= zin.size and zout.pos < out_size:
                        break
        if ret != 0:
            return "zstd stream cut short; tshark read the part before the cut"
        return ""
    finally:
        lib.ZSTD_freeDStream(ds)


def tshark_input(cap: Capture, tmp: str, notes: list, detailed: bool = False) -> tuple[str, str]:
    """(file tshark reads, skip reason): the capture itself, or for gzip/zstd its
    decompressed copy in the directory tmp. A note about a damaged or cut stream is
    appended to notes. `detailed` (check_info.py) words the notes and the skip reason
    with the decompressor's error."""
    if cap.kind not in ("gzip", "zstd"):
        return str(cap.path), ""
    plain = Path(tmp) / "capture"
    try:
        with open(plain, "wb") as fh:
            note = (gunzip(cap.path, fh) if cap.kind == "gzip"
                    else unzstd(cap.path, fh, detailed))
    except (RuntimeError, OSError) as e:
        return "", f"{cap.kind}: {e}"
    if note:
        notes.append(note)
    if sniff_file(plain) not in ("pcap", "pcapng"):
        if not detailed:
            return "", f"{cap.kind}-compressed but no pcap/pcapng inside"
        return "", (f"{note.split(';')[0]}: no capture data could be decompressed"
                    if note else f"{cap.kind}-compressed but not a pcap/pcapng inside")
    return str(plain), ""


# --- running tshark and capsift ---------------------------------------------------------

def run_tshark_on(cap: Capture, out, tmp_prefix: str, run, timeout: float,
                  detailed: bool = False, stopped=None):
    """Call run(path) (which runs tshark and returns its result, with `error` and
    `exit_code`) on the capture, decompressed first into a temporary directory if it is
    gzip/zstd, and return the result; None when the file is skipped (out.skipped says
    why: nothing to decompress, tshark timed out). Notes go to out.notes, among them
    `tshark stopped early: WHY` when tshark failed (stopped(result, WHY) words it
    otherwise; WHY: see tshark_failure())."""
    with tempfile.TemporaryDirectory(prefix=tmp_prefix) as tmp:
        path, out.skipped = tshark_input(cap, tmp, out.notes, detailed)
        if out.skipped:
            return None
        try:
            res = run(path)
        except subprocess.TimeoutExpired:
            out.skipped = f"tshark timed out after {timeout}s"
            return None
        if res.exit_code or res.error:
            why = tshark_failure(res.error, res.exit_code, path, cap.key)
            out.notes.append(stopped(res, why) if stopped else f"tshark stopped early: {why}")
        return res


def tshark_stderr(raw: bytes) -> str:
    """tshark's stderr without blank lines and the `Running as user` warning."""
    return "\n".join(l for l in raw.decode("utf-8", "replace").splitlines()
                     if l.strip() and "Running as user" not in l)


def stream_tshark(cmd: list[str], env: dict, consume, timeout: float) -> tuple[int, str]:
    """Run tshark, handing its stdout (a binary pipe) to consume() while it runs; wait
    at most `timeout` seconds after that (subprocess.TimeoutExpired). tshark is killed
    if anything goes wrong. Returns (exit code, filtered stderr)."""
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, env=env)
        try:
            consume(proc.stdout)
            proc.wait(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        errf.seek(0)
        err = tshark_stderr(errf.read())
    return proc.returncode, err


@dataclass
class PdmlResult:
    """What run_tshark_pdml() collects; the checks add their counters."""
    msgs: list = field(default_factory=list)
    exit_code: int = 0
    error: str = ""


def run_tshark_pdml(cmd: list[str], env: dict, res: PdmlResult, parse_packet,
                    timeout: float):
    """Run tshark `-T pdml`, calling parse_packet(<packet> element, res) for every packet.
    Sets res.exit_code and res.error (tshark's stderr when it failed, else a note when
    the PDML was cut short)."""
    def consume(stdout):
        try:
            for event, elem in ET.iterparse(stdout, events=("end",)):
                if elem.tag == "packet":
                    parse_packet(elem, res)
                    elem.clear()
        except ET.ParseError as e:
            # tshark stopped mid-document (damaged capture); keep what was read.
            res.error = f"PDML cut short ({e})"

    rc, err = stream_tshark(cmd, env, consume, timeout)
    res.exit_code = rc
    if rc:
        res.error = err or res.error
    return res


def tshark_failure(error: str, exit_code: int, tshark_input_path: str, key: str) -> str:
    """Why tshark stopped, for a file's note: the first line of its error (with the
    temporary file named by the capture's key, without the `tshark: ` prefix)."""
    msg = first_line(error.replace(tshark_input_path, key)) or f"exit {exit_code}"
    return msg[len("tshark: "):] if msg.startswith("tshark: ") else msg


def run_capsift(cmd: list[str], timeout: float):
    """Run capsift. Returns (process or None, stderr text, crash): crash is the reason
    when capsift timed out, could not start, was killed by a signal or panicked (always
    a failure), else ""."""
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", f"capsift timed out after {timeout}s"
    except OSError as e:
        return None, "", f"cannot run capsift: {e}"
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode < 0:
        return proc, stderr, f"capsift killed by signal {-proc.returncode}"
    if "panicked at" in stderr or proc.returncode == 101:
        tail = stderr[stderr.find("panicked at"):] if "panicked at" in stderr else stderr
        msg = " ".join(l.strip() for l in tail.splitlines() if l.strip())[:300]
        return proc, stderr, f"capsift panicked (exit {proc.returncode}): {msg}"
    return proc, stderr, ""


def capsift_ndjson_lines(cmd: list[str], timeout: float, res) -> list | None:
    """Run a capsift command that prints NDJSON. Sets res.crash (then returns None) and,
    on a non-zero exit, res.error; returns the non-blank output lines as (number, line)."""
    proc, stderr, res.crash = run_capsift(cmd, timeout)
    if res.crash:
        return None
    if proc.returncode != 0:
        res.error = f"capsift exit {proc.returncode}: {first_line(stderr)}"
    return [(no, line) for no, line in
            enumerate(proc.stdout.decode("utf-8", "replace").splitlines(), 1) if line.strip()]


@dataclass
class TableResult:
    """capsift's rows from `capsift table ... --format ndjson`."""
    rows: list = field(default_factory=list)
    error: str = ""     # non-zero exit / a line that is no valid row
    crash: str = ""     # panic, signal, timeout


def capsift_table_rows(cmd: list[str], timeout: float, what: str, make_row) -> TableResult:
    """Run `capsift table ... --format ndjson` and append make_row(n, object) to res.rows
    for its n-th JSON object (make_row raises KeyError/ValueError/TypeError for an object
    that is no valid row; it is counted in n all the same). The first line that is no
    JSON object or no valid row is reported in res.error."""
    res = TableResult()
    lines = capsift_ndjson_lines(cmd, timeout, res)
    n = 0
    for no, line in lines or []:
        try:
            r = json.loads(line)
            if not isinstance(r, dict):
                raise TypeError("not an object")
            n += 1
            res.rows.append(make_row(n, r))
        except (ValueError, TypeError, KeyError) as e:
            res.error = res.error or f"capsift output line {no} is not a {what} row ({e})"
    return res


# --- per-file parallel runner -----------------------------------------------------------

@dataclass
class Outcome:
    """What work() returns for a capture; the checks add their results."""
    capture: Capture
    skipped: str = ""                              # why the file was not compared
    notes: list = field(default_factory=list)      # written after the file's line


@dataclass
class TableOutcome(Outcome):
    """Outcome of one tshark PDML run and one `capsift table` run."""
    ts: PdmlResult | None = None
    cs: TableResult | None = None


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    done: int = 0     # files processed (not skipped)


def run_all(caps: list[Capture], jobs: int, work, judge, say, profile_prefix: str,
            skipped: int = 0) -> Tally:
    """Run work(capture, env) for every capture on `jobs` threads, with a clean tshark
    profile (so a personal Wireshark configuration cannot change decoding) in env. In
    capture order: print `== ROOT` when the captures come from several roots, report the
    outcomes with a `skipped` reason, and hand the others to judge(outcome), which
    returns True (passed), False (failed) or None (neither)."""
    tally = Tally(skipped=skipped)
    conf_dir = tempfile.mkdtemp(prefix=profile_prefix)
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=conf_dir, LC_ALL="C")
    current_root = None
    multi_root = len({c.root for c in caps}) > 1
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(work, c, env) for c in caps]
            for fut in futures:
                out = fut.result()
                cap = out.capture
                if multi_root and cap.root != current_root:
                    say(f"== {cap.root}")
                current_root = cap.root
                if out.skipped:
                    tally.skipped += 1
                    say(f"skipped: {cap.key} ({out.skipped})")
                    continue
                tally.done += 1
                ok = judge(out)
                if ok is True:
                    tally.passed += 1
                elif ok is False:
                    tally.failed += 1
    finally:
        shutil.rmtree(conf_dir, ignore_errors=True)
    return tally


# --- exceptions -------------------------------------------------------------------------

@dataclass
class Exc:
    """One row of an exceptions TSV: file, metric, capsift, tshark (fnmatch patterns),
    reason."""
    line: int
    file: str
    metric: str
    capsift: str
    tshark: str
    reason: str
    exercised: bool = False   # its file pattern matched a file of this run
    used: bool = False        # it matched a difference

    def matches_file(self, cands) -> bool:
        return any(fnmatch.fnmatchcase(c, self.file) for c in cands)

    def matches(self, cands, metric, c, t) -> bool:
        return (self.matches_file(cands) and fnmatch.fnmatchcase(metric, self.metric)
                and fnmatch.fnmatchcase(str(c), self.capsift)
                and fnmatch.fnmatchcase(str(t), self.tshark))


def load_exceptions(path: Path, header_on_first_line: bool = False
                    ) -> tuple[list[Exc], list[str]]:
    """The rows of an exceptions TSV and the problems with invalid rows. A header row
    (`file<TAB>metric...`) is skipped; with header_on_first_line (check_info.py), so is
    any first line starting with `file`."""
    excs, problems = [], []
    with open(path, encoding="utf-8") as fh:
        for no, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = line.split("\t")
            if cols[0].strip() == "file" and (
                    (header_on_first_line and no == 1)
                    or (len(cols) > 1 and cols[1].strip() == "metric")):
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
            excs.append(Exc(no, f, m, c, t, reason))
    return excs, problems


def exercise(exceptions: list[Exc], cap: Capture) -> tuple[list[str], list[Exc]]:
    """Mark the exceptions whose file pattern matches this capture as exercised. Returns
    the capture's candidates (see Capture.candidates) and those exceptions."""
    cands = cap.candidates()
    hit = [e for e in exceptions if e.matches_file(cands)]
    for e in hit:
        e.exercised = True
    return cands, hit


def explain(diffs: list, exceptions: list[Exc], cands: list[str], fields=None,
            mark_used: bool = True, accept=None) -> tuple[list, list]:
    """Split diffs into (unexplained, excepted [(diff, exception)]). fields(diff) gives
    (metric, capsift, tshark) (default: the diff is that tuple); only exceptions for
    which accept(e) holds are tried; with mark_used, a matching exception is used."""
    unexplained, excepted = [], []
    for d in diffs:
        metric, c, t = fields(d) if fields else d
        exc = next((e for e in exceptions if (accept is None or accept(e))
                    and e.matches(cands, metric, c, t)), None)
        if exc:
            if mark_used:
                exc.used = True
            excepted.append((d, exc))
        else:
            unexplained.append(d)
    return unexplained, excepted


def report_exceptions(exceptions: list[Exc], problems: list[str], say) -> int:
    """Report invalid rows (BAD) and rows that matched a file of this run but none of its
    differences (STALE); note how many matched no file. Returns the number of failures."""
    failed = 0
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
    return failed


def add_template_option(ap):
    ap.add_argument("--template", action="store_true",
                    help="print a TSV row (reason TODO) on stderr for every difference "
                         "that no exception explains")


def print_template(rows: list[str], header: str = "file\tmetric\tcapsift\ttshark\treason",
                   stream=None):
    """TSV rows (reason TODO) for the unexplained differences, under a header."""
    print(header, file=stream)
    for row in rows:
        print(row, file=stream)


# --- a file's line and the summary ------------------------------------------------------

@dataclass
class Diff:
    """A difference: metric, capsift's and tshark's values (what an exception matches)
    and a diagnosis hint (not matched)."""
    metric: str
    capsift: str
    tshark: str
    note: str = ""

    def show(self, value: str) -> str:
        """A value as written in a DIFF."""
        return value

    def show_expected(self, value: str) -> str:
        """A value as written in the `expected:` part (differences an exception explains)."""
        return value

    def text(self) -> str:
        s = f"{self.metric} capsift={self.show(self.capsift)} tshark={self.show(self.tshark)}"
        return s + (f" ({self.note})" if self.note else "")

    def fields(self) -> tuple:
        return self.metric, self.capsift, self.tshark


def verdict(diffs: list, exceptions: list[Exc], cands: list[str], crash: str, verbose: bool,
            limit: int) -> tuple[bool, list, list, list]:
    """Match the differences (Diff) against the exceptions. Returns (ok, unexplained,
    excepted, parts): parts are the `CRASH` and `DIFF` parts of the file's line."""
    unexplained, excepted = explain(diffs, exceptions, cands, Diff.fields)
    parts = []
    if crash:
        parts.append(f"CRASH {crash}")
    if unexplained:
        parts.append(diff_part(unexplained, verbose, limit))
    return not unexplained and not crash, unexplained, excepted, parts


def judge_table(out: TableOutcome, exceptions: list[Exc], verbose: bool, limit: int, tag: str,
                compare, describe):
    """A file's verdict for a check of a TableOutcome (check_dns.py, check_tls.py).
    compare(ts, cs, verbose) returns the comparison (with `diffs`, a list of Diff, and
    `detail`, the lines printed under the file's line); describe(out, comparison) returns
    (summary, notes, parts) for the file's line `ok   KEY: SUMMARY | CRASH ... | DIFF ...
    | expected: ... [TAG:LINE] | PARTS [out.notes] [capsift's error] [NOTES]`.
    Returns (ok, line, detail, unexplained)."""
    cands, _ = exercise(exceptions, out.capture)
    cmp = compare(out.ts, out.cs, verbose)
    ok, unexplained, excepted, parts = verdict(cmp.diffs, exceptions, cands, out.cs.crash,
                                               verbose, limit)
    if excepted:
        parts.append("expected: " + "; ".join(
            f"{d.metric} capsift={d.show_expected(d.capsift)} "
            f"tshark={d.show_expected(d.tshark)} [{tag}:{e.line}]" for d, e in excepted))
    summary, notes, more_parts = describe(out, cmp)
    notes = list(out.notes) + ([out.cs.error] if out.cs.error else []) + notes
    line = file_line(("ok   " if ok else "FAIL ") + f"{out.capture.key}: {summary}",
                     parts + more_parts, notes)
    return ok, line, cmp.detail, unexplained


def diff_part(unexplained: list, verbose: bool, limit: int) -> str:
    """`DIFF ...` for the unexplained differences (objects with text()), the first
    `limit` of them unless verbose."""
    shown = unexplained if verbose else unexplained[:limit]
    more = len(unexplained) - len(shown)
    return ("; ".join("DIFF " + d.text() for d in shown)
            + (f"; +{more} more differences (--verbose or --template lists all)"
               if more else ""))


def file_line(line: str, parts: list[str], notes: list[str]) -> str:
    """`ok   HEAD` / `FAIL HEAD` with ` | part` for each part and ` [note]` for each note."""
    if parts:
        line += " | " + " | ".join(parts)
    if notes:
        line += "".join(f" [{n}]" for n in notes)
    return line


def check_files(st: Setup, jobs: int, work, judge, profile_prefix: str, name: str,
                template: bool = False) -> int:
    """Run work(capture, env) for every capture (see run_all) and judge(outcome) ->
    (ok, line, detail lines, unexplained differences with metric/capsift/tshark); print
    each file's line and detail, then the exceptions report, with `template` the TSV rows
    for the unexplained differences on stderr, and the summary. Returns the exit status."""
    say = st.say
    rows = []

    def report(out) -> bool:
        ok, line, detail, unexplained = judge(out)
        say(line)
        for d in detail:
            say(d)
        for d in unexplained:
            rows.append(f"{out.capture.key}\t{d.metric}\t{d.capsift}\t{d.tshark}\tTODO")
        return ok

    tally = run_all(st.caps, jobs, work, report, say, profile_prefix, st.skipped)
    tally.failed += report_exceptions(st.exceptions, st.problems, say)
    if template and rows:
        print_template(rows, stream=sys.stderr)
    return finish(name, tally, say)


def finish(name: str, tally: Tally, say) -> int:
    """Print the summary line; the exit status: 1 when a file or an exception failed."""
    summary = f"{name}: {tally.passed} passed, {tally.failed} failed"
    if tally.skipped:
        summary += f", {tally.skipped} skipped"
    say(summary)
    return 1 if tally.failed else 0
