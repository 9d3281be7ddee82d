#!/usr/bin/env python3
"""Run a command and report its peak memory summed over all its processes.

Every 0.1 s the resident set (VmRSS) of the command and of every process
descended from it is read from /proc and summed; the report gives the peak of
that sum, the peak of the largest single process, the wall time and the CPU
time of the whole tree (user + system, from the children's rusage)::

    .venv/bin/python bench/peak.py -- .venv/bin/searchapp import --quiet corpus.jsonl

Resident sets are summed as they are, so pages two processes share (the
interpreter, mapped index files) count once per process: the figure is an upper
bound of what the tree needs. The JSON answer goes to stdout, the command's
own output to stderr.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

INTERVAL = 0.1


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> tuple[int, int, int]:
    """(summed KiB, largest KiB, processes) of `root` and its descendants now."""
    tree = _children()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(tree.get(pid, []))
    sizes = [_rss_kib(pid) for pid in pids]
    return sum(sizes), max(sizes, default=0), len(pids)


def measure(command: Sequence[str]) -> dict[str, float | int]:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=sys.stderr)
    peak_sum = peak_one = most = 0
    while process.poll() is None:
        total, largest, count = tree_rss(process.pid)
        peak_sum, peak_one, most = max(peak_sum, total), max(peak_one, largest), max(most, count)
        time.sleep(INTERVAL)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"exit_status": process.returncode, "seconds": round(wall, 2),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_sum_mb": round(peak_sum / 1024, 1),
            "peak_rss_largest_mb": round(peak_one / 1024, 1), "processes": most,
            "load_before": os.getloadavg()[0]}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    load = os.getloadavg()[0]
    result = measure(args)
    result["load_before"] = round(load, 2)
    result["load_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return int(result["exit_status"])


if __name__ == "__main__":
    sys.exit(main())
