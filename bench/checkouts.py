#!/usr/bin/env python3
"""Two checkouts of searchapp (or two indexes) compared query by query, interleaved.

Each side is a child process running its own checkout's code (that checkout
first on ``sys.path``, its own ``.venv``) and its `bench.engines.Product`
(the product's `Engine.search`) over an index: by default the 100k index that
checkout's own ``bench/run.py --items 100000`` built under ``bench/out``. The
parent sends each query of ``bench/queries.jsonl`` to both sides in turn,
alternating which goes first, and collects the time each child measured around
``Product.search``. Both sides run at the same moments, so on a shared, noisy
machine their ratio means something where two separate runs would not.

    # #13: today against the last commit before per-language analysis
    git worktree add /tmp/before d988908 && (cd /tmp/before && make .venv/.installed-test \
        && .venv/bin/python bench/run.py --items 100000 --engines product --passes 1 \
           --no-http --no-incremental --no-spelling-cost --no-report)
    .venv/bin/python bench/checkouts.py . /tmp/before --passes 3 --clock cpu
    # the same code over two indexes (say, one with every item in English)
    .venv/bin/python bench/checkouts.py . . --index-b /tmp/en100k/index --clock cpu

``--clock cpu`` times the child's CPU (thread time), which the other
processes on the machine disturb least; ``wall`` is what a caller waits.
Reported per query kind: each side's median p50 and p95 over the passes, and
the ratio A/B with its range over the passes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

CHILD = r"""
import json, sys, time
root, clock, index = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, root)
from pathlib import Path
from bench import queries
from bench.engines import BenchQuery, Product
found = [BenchQuery.from_dict(q) for q in queries.load()]
product = Product(Path(index))
for q in found[:10]:  # open files, build per-reader columns
    product.search(q)
now = time.thread_time if clock == "cpu" else time.perf_counter
print(len(found), flush=True)
for line in sys.stdin:
    q = found[int(line)]
    began = now()
    answer = product.search(q)
    ms = (now() - began) * 1000
    print(json.dumps([ms, answer.total, [doc for doc, _ in answer.top]]), flush=True)
"""


def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="checkout A")
    ap.add_argument("b", type=Path, help="checkout B")
    ap.add_argument("--index-a", type=Path, help="A's index (default: its bench/out/100000/index)")
    ap.add_argument("--index-b", type=Path, help="B's index (default: its bench/out/100000/index)")
    ap.add_argument("--passes", type=int, default=3, help="fresh pairs of processes")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    sides = {"A": (args.a.resolve(), args.index_a or args.a / "bench/out/100000/index"),
             "B": (args.b.resolve(), args.index_b or args.b / "bench/out/100000/index")}
    kinds = [json.loads(line)["kind"]
             for line in (args.a / "bench/queries.jsonl").read_text().splitlines() if line]
    passes: list[tuple[dict[str, list[float]], int]] = []
    for p in range(args.passes):
        children = {name: subprocess.Popen(
            [str(root / ".venv/bin/python"), "-c", CHILD, str(root), args.clock, str(index)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for name, (root, index) in sides.items()}
        counts = {name: int(child.stdout.readline()) for name, child in children.items()}
        if len(set(counts.values())) != 1 or counts["A"] != len(kinds):
            raise SystemExit(f"the two sides have different query sets: {counts}")
        times: dict[str, list[float]] = {"A": [], "B": []}
        differing = 0
        for i in range(len(kinds)):
            got = {}
            for name in ("A", "B") if (i + p) % 2 == 0 else ("B", "A"):
                child = children[name]
                child.stdin.write(f"{i}\n")
                child.stdin.flush()
                got[name] = json.loads(child.stdout.readline())
                times[name].append(got[name][0])
            differing += got["A"][1:] != got["B"][1:]
        for child in children.values():
            child.stdin.close()
            child.wait()
        passes.append((times, differing))
    print(f"A = {sides['A'][0]} over {sides['A'][1]}\nB = {sides['B'][0]} over {sides['B'][1]}")
    print(f"{args.passes} passes of {len(kinds)} queries, {args.clock} ms per search\n")
    print("| kind | A p50 | A p95 | B p50 | B p95 | A/B p50 (range) | A/B p95 (range) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in ["all", *sorted(set(kinds))]:
        picked = [i for i, k in enumerate(kinds) if kind in ("all", k)]
        rows = []
        for times, _ in passes:
            a = [times["A"][i] for i in picked]
            b = [times["B"][i] for i in picked]
            rows.append((statistics.median(a), _percentile(a, 0.95),
                         statistics.median(b), _percentile(b, 0.95)))
        r50 = [r[0] / r[2] for r in rows]
        r95 = [r[1] / r[3] for r in rows]
        med = statistics.median
        print(f"| {kind} | {med(r[0] for r in rows):.2f} | {med(r[1] for r in rows):.2f} |"
              f" {med(r[2] for r in rows):.2f} | {med(r[3] for r in rows):.2f} |"
              f" {med(r50):.2f} ({min(r50):.2f}–{max(r50):.2f}) |"
              f" {med(r95):.2f} ({min(r95):.2f}–{max(r95):.2f}) |")
    print(f"\nqueries whose total or top 10 differ, per pass: {[d for _, d in passes]}")


if __name__ == "__main__":
    main()
