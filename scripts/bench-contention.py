#!/usr/bin/env python3
"""How much CPU a job costs when both vCPUs of this machine are busy.

For each command, runs it on two captures one after the other, then on the
same two at once, alternating ROUNDS times, and compares the CPU time the
two runs took (user + sys of the children, from rusage). If the machine's
two cores were independent, the CPU time would be the same both ways; the
difference is what running side by side costs (shared caches, memory, the
hypervisor). `capsift batch -j 2` cannot scale better than its work does
here (docs/PERFORMANCE.md, "Batch scaling").

    python3 scripts/bench-contention.py [ROUNDS]

Needs target/release/capsift and the copies `scripts/bench-batch.sh` makes
in bench-data/batch-in/.
"""
import os
import resource
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPSIFT = os.path.join(ROOT, "target/release/capsift")
A = os.path.join(ROOT, "bench-data/batch-in/node-1.pcap")
B = os.path.join(ROOT, "bench-data/batch-in/node-2.pcap")
COMMANDS = {
    "capsift analyze": lambda f: [CAPSIFT, "analyze", "-q", "--format", "json", f],
    "capsift analyze --no-dedup": lambda f: [CAPSIFT, "analyze", "-q", "--format", "json", "--no-dedup", f],
    "sha256sum": lambda f: ["sha256sum", f],
}


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    for f in (CAPSIFT, A, B):
        if not os.path.exists(f):
            sys.exit(f"{f} is missing: run scripts/bench-batch.sh first")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    cpu = {}
    for _ in range(rounds):
        for name, cmd in COMMANDS.items():
            t = children_cpu()
            subprocess.run(cmd(A), **quiet)
            subprocess.run(cmd(B), **quiet)
            cpu.setdefault((name, "apart"), []).append(children_cpu() - t)
            t = children_cpu()
            runs = [subprocess.Popen(cmd(f), **quiet) for f in (A, B)]
            for r in runs:
                r.wait()
            cpu.setdefault((name, "together"), []).append(children_cpu() - t)
    print(f"| command | rounds | CPU ms, one after the other | CPU ms, at once | more CPU at once |")
    print("|---|---|---|---|---|")
    for name in COMMANDS:
        apart = statistics.median(cpu[(name, "apart")])
        together = statistics.median(cpu[(name, "together")])
        print(
            f"| `{name}` on node-1 and node-2 | {rounds} | {apart * 1000:.0f} | "
            f"{together * 1000:.0f} | {100 * (together / apart - 1):+.1f} % |"
        )


if __name__ == "__main__":
    main()
