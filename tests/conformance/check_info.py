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

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPT_DIR))
import conformance_common as cc  # noqa: E402  (the shared module beside this script)

DEFAULT_DIRS = ["captures", "../shared/corpus"]  # relative to the repository root
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
    err = cc.tshark_stderr(proc.stderr)
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


def run_capsift(capsift: str, path: str) -> CapsiftResult:
    zero = {k: 0 for k in BASE_METRICS}
    proc, stderr, crash = cc.run_capsift([capsift, "info", "--json", path], CAPSIFT_TIMEOUT)
    if crash:
        return CapsiftResult(zero, crash=crash)
    nonzero = ""
    if proc.returncode != 0:
        nonzero = f"capsift exit {proc.returncode}"
        try:
            doc = json.loads(proc.stdout.decode("utf-8", "replace"))
            assert isinstance(doc["files"][0], dict)
        except Exception:
            msg = cc.first_line(stderr) or cc.first_line(proc.stdout.decode("utf-8", "replace"))
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
                             f"{cc.first_line(proc.stdout.decode('utf-8', 'replace'))[:80]!r} "
                             "(counted as packets=0)")
    m, missing = capsift_metrics(entry)
    info = ""
    if nonzero:
        info = f"{nonzero}, JSON used"
        if entry.get("complete") is False:
            info += ", complete=false"
    return CapsiftResult(m, missing_keys=missing, info=info)


# --- driver ---------------------------------------------------------------------------

@dataclass
class Outcome(cc.Outcome):
    tshark: dict | None = None
    capsift: CapsiftResult | None = None
    diffs: list = field(default_factory=list)      # (metric, capsift, tshark)
    excepted: list = field(default_factory=list)   # (metric, capsift, tshark, exception)


def process(cap: cc.Capture, capsift: str | None, env: dict) -> Outcome:
    out = Outcome(cap)

    def run(path: str) -> TsharkResult:
        tr = run_tshark(path, env)
        if tr.non_packet_records:
            out.notes.append(f"tshark also listed {tr.non_packet_records} non-packet "
                             "record(s) (pcapng custom blocks), not counted")
        return tr

    tr = cc.run_tshark_on(cap, out, "capsift-conf-", run, TSHARK_TIMEOUT, detailed=True,
                          stopped=lambda tr, why: f"tshark stopped early ({why}); counted "
                                                  f"the {tr.metrics['packets']} frames it "
                                                  "printed")
    if tr is None:
        return out
    out.tshark = tr.metrics
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


def judge(out: Outcome, exceptions: list, template_rows: list, missing_keys: dict, say):
    """Print a file's line; True when it passed."""
    cap = out.capture
    notes = "".join(f" [{n}]" for n in out.notes)
    for k in out.capsift.missing_keys:
        missing_keys[k] = missing_keys.get(k, 0) + 1
    cands, _ = cc.exercise(exceptions, cap)
    unexplained, excepted = cc.explain(out.diffs, exceptions, cands)
    out.excepted += [(m, c, t, e) for (m, c, t), e in excepted]
    template_rows += [f"{cap.key}\t{m}\t{c}\t{t}\tTODO" for m, c, t in unexplained]
    parts = [f"DIFF {m} capsift={c} tshark={t}" for m, c, t in unexplained]
    if out.capsift.crash:
        parts.insert(0, f"CRASH {out.capsift.crash}")
    exc_note = ""
    if out.excepted:
        exc_note = " (expected: " + ", ".join(
            f"{m} capsift={c} tshark={t} [exceptions:{e.line}]"
            for m, c, t, e in out.excepted) + ")"
    if parts:
        say(f"FAIL {cap.key}: " + "; ".join(parts) + exc_note + notes)
        return False
    say(f"ok   {cap.key}{exc_note}{notes}")
    return True


def main(argv=None) -> int:
    ap = cc.new_parser("Compare `capsift info --json` with counts derived from tshark.",
                       DEFAULT_DIRS, DEFAULT_EXCEPTIONS, recursive="searched recursively",
                       capsift_help="capsift binary (default: target/release/capsift in "
                                    "the repo)")
    ap.add_argument("--tshark-only", action="store_true",
                    help="only print the metrics derived from tshark for each file")
    ap.add_argument("--update-exceptions-template", action="store_true",
                    help="print TSV rows (reason TODO) for the unexplained differences on "
                         "stdout; the report goes to stderr")
    cc.add_jobs_option(ap, "workers")
    args = ap.parse_args(argv)

    say = cc.make_say(sys.stderr if args.update_exceptions_template else sys.stdout)
    st = cc.setup(args, DEFAULT_DIRS, DEFAULT_EXCEPTIONS, say,
                  with_capsift=not args.tshark_only, header_on_first_line=True,
                  keep_explicit_slash=True)
    if st is None:
        return 2

    template_rows: list[str] = []
    missing_keys: dict[str, int] = {}

    def report(out: Outcome):
        if args.tshark_only:
            notes = "".join(f" [{n}]" for n in out.notes)
            say(f"{out.capture.key}: {format_metrics(out.tshark)}{notes}")
            return None
        return judge(out, st.exceptions, template_rows, missing_keys, say)

    tally = cc.run_all(st.caps, args.jobs, lambda c, env: process(c, st.capsift, env), report,
                       say, "capsift-conf-wsprofile-", st.skipped)

    if args.tshark_only:
        say(f"tshark-only: {tally.done} files"
            + (f", {tally.skipped} skipped" if tally.skipped else ""))
        return 0

    tally.failed += cc.report_exceptions(st.exceptions, st.problems, say)
    if missing_keys:
        say("note: capsift JSON lacks keys (counted as 0): " + ", ".join(
            f"{k} ({n} files)" for k, n in sorted(missing_keys.items())))

    if args.update_exceptions_template:
        cc.print_template(template_rows, header="# file\tmetric\tcapsift\ttshark\treason")

    return cc.finish("conformance", tally, say)


if __name__ == "__main__":
    sys.exit(main())
