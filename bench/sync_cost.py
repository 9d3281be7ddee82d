#!/usr/bin/env python3
"""What syncing a rebuilt generation to the disk before the swap costs (#14, stop 23).

`searchapp reindex` of the same catalog by two copies of the code, alternating, each
into an index folder of its own (a first, uncounted rebuild each leaves its stem
tables, as on a live system): ``--before`` a folder holding the code without the
syncs (``git archive <commit> searchapp | tar -x -C DIR``), and this checkout. Each
rebuild is a fresh process; wall time, and CPU seconds (user + system) of it and its
index workers::

    git archive 9adeecc searchapp | tar -x -C /tmp/dswap/before
    cp /work/wt-bench/bench/out/100000/catalog.sqlite3 /tmp/dswap/100k/
    .venv/bin/python bench/sync_cost.py --catalog /tmp/dswap/100k/catalog.sqlite3 \\
        --before /tmp/dswap/before --work /tmp/dswap/100k --rounds 4

With ``--where``, one more rebuild by this checkout under ``strace -f -T -e fsync``
says which files the time in fsync goes to (strace slows the calls it traces). With
``--in-fsync N``, N more rounds, both copies alternating, each rebuild under ``strace
--seccomp-bpf`` (only the fsync calls stopped): the time each spends in fsync, in all
and on the stem tables (stop 24: written durably since).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import spread

ROOT = Path(__file__).resolve().parent.parent


def reindex(code: Path, catalog: Path, index: Path, *, prefix: tuple[str, ...] = ()
            ) -> tuple[float, float, float]:
    """Wall and CPU seconds (user + system, and system alone) of one `searchapp reindex`
    run by the code in `code`."""
    env = {**os.environ, "SEARCHAPP_CATALOG": str(catalog), "SEARCHAPP_INDEX_DIR": str(index),
           "PYTHONPATH": str(code)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([*prefix, sys.executable, "-m", "searchapp.cli", "reindex"],
                          env=env, cwd=index.parent, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"reindex by {code} failed: {done.stderr}")
    system = after.ru_stime - before.ru_stime
    return wall, after.ru_utime - before.ru_utime + system, system


def in_fsync(code: Path, catalog: Path, index: Path, *, only: bool = False
             ) -> tuple[float, collections.Counter[str], collections.Counter[str]]:
    """Wall seconds of one traced rebuild by the code in `code`, and the seconds and calls
    in fsync by kind of file (`only`: with `--seccomp-bpf`, the other calls not stopped)."""
    options = ("--seccomp-bpf",) if only else ()
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        wall, _, _ = reindex(code, catalog, index,
                             prefix=("strace", *options, "-f", "-qq", "-T", "-y", "-o", out.name,
                                     "-e", "trace=fsync,fdatasync"))
        spent: collections.Counter[str] = collections.Counter()
        calls: collections.Counter[str] = collections.Counter()
        for line in out.read().splitlines():
            m = re.search(r"fsync\(\d+<(.*)>\)\s+= 0 <([\d.]+)>", line)
            if not m:
                continue
            path, seconds = m.group(1), float(m.group(2))
            name = os.path.basename(path)
            if os.path.isdir(path) or re.fullmatch(r"gen-\d+(\.tmp)?|index|part-\d+", name):
                kind = "folders"
            elif ".toc" in name:
                kind = "tables of contents"
            elif "." in name and name.startswith("MAIN_"):
                kind = name.split(".", 1)[1].removesuffix(".tmp")
            else:
                kind = re.sub(r"\d+", "N", name)
            spent[kind] += seconds
            calls[kind] += 1
    return wall, spent, calls


def where(catalog: Path, index: Path) -> None:
    """Time in fsync by kind of file, in one traced rebuild by this checkout."""
    _, spent, calls = in_fsync(ROOT, catalog, index)
    print(f"fsync, one traced rebuild: {sum(spent.values()):.2f} s in {sum(calls.values())}"
          " calls")
    for kind, seconds in spent.most_common():
        print(f"  {kind}: {seconds:.3f} s, {calls[kind]} calls")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--catalog", type=Path, required=True)
    ap.add_argument("--before", type=Path, required=True, help="the code without the syncs")
    ap.add_argument("--work", type=Path, required=True, help="where the index folders go")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--where", action="store_true")
    ap.add_argument("--in-fsync", type=int, default=0, metavar="N",
                    help="N more rounds, the time in fsync of each rebuild")
    args = ap.parse_args()
    codes = {"before": args.before, "after": ROOT}
    indexes = {name: args.work / f"index-{name}" for name in codes}
    for name, code in codes.items():  # the stem tables, as a live system has them
        reindex(code, args.catalog, indexes[name])
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in codes}
    print(f"load before: {os.getloadavg()}")
    for k in range(args.rounds):
        order = list(codes) if k % 2 == 0 else list(reversed(codes))
        for name in order:
            wall, cpu, system = reindex(codes[name], args.catalog, indexes[name])
            runs[name].append((wall, cpu, system))
            print(f"round {k + 1} {name}: wall {wall:.2f} s, cpu {cpu:.2f} s"
                  f" (system {system:.2f} s),"
                  f" load {os.getloadavg()[0]:.1f}", flush=True)
    for name in codes:
        print(f"{name}: wall {spread([r[0] for r in runs[name]], unit=' s')},"
              f" cpu {spread([r[1] for r in runs[name]], unit=' s')},"
              f" system {spread([r[2] for r in runs[name]], unit=' s')}")
    diffs = [a[0] - b[0] for a, b in zip(runs["after"], runs["before"], strict=True)]
    print(f"after - before, same round: wall {spread(diffs, '+.2f', unit=' s')}")
    print(f"load after: {os.getloadavg()}")
    if args.where:
        where(args.catalog, indexes["after"])
    for k in range(args.in_fsync):
        order = list(codes) if k % 2 == 0 else list(reversed(codes))
        for name in order:
            wall, spent, calls = in_fsync(codes[name], args.catalog, indexes[name], only=True)
            stems = sum(s for kind, s in spent.items() if kind.startswith("stems-"))
            print(f"in fsync, round {k + 1} {name}: wall {wall:.2f} s, fsync"
                  f" {sum(spent.values()):.3f} s in {sum(calls.values())} calls, of which"
                  f" stem tables {stems:.3f} s, load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
