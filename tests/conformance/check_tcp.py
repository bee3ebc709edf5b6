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

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPT_DIR))
import conformance_common as cc  # noqa: E402  (the shared module beside this script)

DEFAULT_DIRS = ["captures", "../shared/corpus/tcp"]  # relative to the repository root
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
        key = cc.flow_key(cc.norm_ip(src), int(sport), cc.norm_ip(dst), int(dport))
    except ValueError:
        return None
    flags = {m: bool(cols[c].strip()) for m, c in FLAG_COLUMNS.items()}
    return key, int(cols[0]), _nth(cols[8], 0), flags


def run_tshark(path: str, env: dict) -> TsharkResult:
    flows: dict[str, FlowStats] = {}
    quoted = 0

    def consume(stdout):
        nonlocal quoted
        for raw in stdout:
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

    rc, err = cc.stream_tshark(tshark_command(path), env, consume, TSHARK_TIMEOUT)
    return TsharkResult(flows, rc, err if rc else "", quoted)


# --- capsift --------------------------------------------------------------------------

@dataclass
class CapsiftResult:
    flows: dict = field(default_factory=dict)
    copies_skipped: int = 0
    error: str = ""     # non-zero exit / unparsable output
    crash: str = ""     # panic, signal, timeout


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
    lines = cc.capsift_ndjson_lines(cmd, CAPSIFT_TIMEOUT, res)
    for no, line in lines or []:
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
            key = cc.flow_key(cc.norm_ip(str(row["src_ip"])), int(row["src_port"]),
                              cc.norm_ip(str(row["dst_ip"])), int(row["dst_port"]))
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
class Outcome(cc.Outcome):
    ts: TsharkResult | None = None
    default: CapsiftResult | None = None
    nodedup: CapsiftResult | None = None


def process(cap: cc.Capture, capsift: str, env: dict) -> Outcome:
    out = Outcome(cap)
    out.ts = cc.run_tshark_on(cap, out, "capsift-tcpconf-",
                              lambda path: run_tshark(path, env), TSHARK_TIMEOUT)
    if out.ts is None:
        return out
    out.default = run_capsift(capsift, str(cap.path), no_dedup=False)
    if out.default.copies_skipped:
        out.nodedup = run_capsift(capsift, str(cap.path), no_dedup=True)
    else:
        out.nodedup = CapsiftResult()
    return out


def main(argv=None) -> int:
    ap = cc.new_parser("Compare capsift's per-flow TCP analysis counters with tshark's.",
                       DEFAULT_DIRS, DEFAULT_EXCEPTIONS)
    cc.add_verbose_option(ap, "print per-flow tables (all flows of each file, with tshark's "
                              "flagged frame numbers)")
    ap.add_argument("--strict", action="store_true",
                    help="no tolerance: every differing counter is a difference")
    cc.add_jobs_option(ap)
    args = ap.parse_args(argv)
    global STRICT
    STRICT = args.strict

    st = cc.setup(args, DEFAULT_DIRS, DEFAULT_EXCEPTIONS)
    if st is None:
        return 2
    return cc.check_files(st, args.jobs, lambda c, env: process(c, st.capsift, env),
                          lambda out: judge(out, st.exceptions, args.verbose),
                          "capsift-tcpconf-profile-", "tcp-conformance")


def _explain(cands, diffs, exceptions):
    """Split diffs into (unexplained, excepted[(diff, exc)]); `dedup` rows are not tried
    and a match is not yet marked used (judge decides which run counts)."""
    return cc.explain(diffs, exceptions, cands, mark_used=False,
                      accept=lambda e: e.metric != "dedup")


def judge(out: Outcome, exceptions: list[cc.Exc], verbose: bool):
    cap = out.capture
    cands, file_excs = cc.exercise(exceptions, cap)
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
    used: list[cc.Exc] = []
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
    line = cc.file_line(line, parts, notes)

    detail = []
    if verbose:
        runs = [("default", out.default)] + ([("no-dedup", out.nodedup)] if copies else [])
        detail = verbose_table(ts, runs, only_diff=False)
        if d_tol and mode == "default":
            detail.append("    within tolerance: " + fmt(d_tol))
    return ok, line, detail, []   # no --template here: nothing to list


if __name__ == "__main__":
    sys.exit(main())
