#!/usr/bin/env python3
"""Two checkouts of searchapp (or two indexes) compared query by query, interleaved.

Each side is a child process running its own checkout's code (that checkout
first on ``sys.path``, its own ``.venv``) and its `bench.engines.Product`
(the product's `Engine.search`), or with ``--engine request`` its
`bench.engines.Request` (the whole ``GET /api/search`` through the app's test
client, on the catalog beside the index), over an index: by default the 100k index that
checkout's own ``bench/run.py --items 100000`` built under ``bench/out``. The
parent sends each query of ``bench/queries.jsonl`` to both sides in turn,
alternating which goes first, and collects the time each child measured around
the search. Both sides run at the same moments, so on a shared, noisy
machine their ratio means something where two separate runs would not.

    # #13: today against the last commit before per-language analysis
    git worktree add /tmp/before d988908 && (cd /tmp/before && make .venv/.installed-test \
        && .venv/bin/python bench/run.py --items 100000 --engines product --passes 1 \
           --no-http --no-incremental --no-spelling-cost --no-report)
    .venv/bin/python bench/checkouts.py . /tmp/before --passes 3 --clock cpu
    # the same code over two indexes (say, one with every item in English)
    .venv/bin/python bench/checkouts.py . . --index-b /tmp/en100k/index --clock cpu
    # #14: the whole /api/search request before and after, each beside FTS5
    .venv/bin/python bench/checkouts.py . /tmp/before --engine request --fts5 --clock cpu

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

from figures import spread

CHILD = r"""
import json, sys, time
root, clock, index, engine, fts = sys.argv[1:6]
sys.path.insert(0, root)
from pathlib import Path
from bench import queries
from bench.engines import BenchQuery, Product
found = [BenchQuery.from_dict(q) for q in queries.load()]
if engine == "request":  # the whole GET /api/search through the app's test client
    from bench.engines import Request  # (a checkout older than it has no Request)
    made = Request(Path(index), Path(index).parent / "catalog.sqlite3")
    def run(q):
        response = made.get(q)
        response.get_data()
        return response
    def answer_of(q, response):
        return made.answer(q, response)
else:
    made = Product(Path(index))
    run = made.search
    def answer_of(q, answer):
        return answer
other = None
if fts:
    from bench.engines import Fts5
    other = Fts5(Path(fts))
for q in found[:10]:  # open files, build per-reader columns
    run(q)
    if other is not None:
        other.search(q)
now = time.thread_time if clock == "cpu" else time.perf_counter
print(len(found), flush=True)
for line in sys.stdin:
    q = found[int(line)]
    began = now()
    got = run(q)
    ms = (now() - began) * 1000
    answer = answer_of(q, got)
    fts_ms = None
    if other is not None:
        began = now()
        other.search(q)
        fts_ms = (now() - began) * 1000
    print(json.dumps([ms, answer.total, [doc for doc, _ in answer.top], fts_ms]), flush=True)
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
    ap.add_argument("--engine", choices=("product", "request"), default="product",
                    help="what is timed: Engine.search, or the whole GET /api/search through"
                         " the app's test client (the index's catalog beside it)")
    ap.add_argument("--fts5", action="store_true",
                    help="also time SQLite FTS5 on each query (in A's process, after A's"
                         " search; its database beside A's index) and report A/FTS5 and"
                         " B/FTS5")
    args = ap.parse_args()
    sides = {"A": (args.a.resolve(), args.index_a or args.a / "bench/out/100000/index"),
             "B": (args.b.resolve(), args.index_b or args.b / "bench/out/100000/index")}
    kinds = [json.loads(line)["kind"]
             for line in (args.a / "bench/queries.jsonl").read_text().splitlines() if line]
    passes: list[tuple[dict[str, list[float]], int]] = []
    for p in range(args.passes):
        children = {name: subprocess.Popen(
            [str(root / ".venv/bin/python"), "-c", CHILD, str(root), args.clock, str(index),
             args.engine, str(Path(index).parent / "fts5.sqlite3")
             if args.fts5 and name == "A" else ""],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for name, (root, index) in sides.items()}
        counts = {name: int(child.stdout.readline()) for name, child in children.items()}
        if len(set(counts.values())) != 1 or counts["A"] != len(kinds):
            raise SystemExit(f"the two sides have different query sets: {counts}")
        times: dict[str, list[float]] = {"A": [], "B": [], "fts5": []}
        differing = 0
        for i in range(len(kinds)):
            got = {}
            for name in ("A", "B") if (i + p) % 2 == 0 else ("B", "A"):
                child = children[name]
                child.stdin.write(f"{i}\n")
                child.stdin.flush()
                got[name] = json.loads(child.stdout.readline())
                times[name].append(got[name][0])
                if got[name][3] is not None:
                    times["fts5"].append(got[name][3])
            differing += got["A"][1:3] != got["B"][1:3]
        for child in children.values():
            child.stdin.close()
            child.wait()
        passes.append((times, differing))
    print(f"A = {sides['A'][0]} over {sides['A'][1]}\nB = {sides['B'][0]} over {sides['B'][1]}")
    print(f"{args.passes} passes of {len(kinds)} queries, {args.engine}, {args.clock} ms"
          " per search\n")
    fts = args.fts5
    print("| kind | A p50 | A p95 | B p50 | B p95 | A/B p50 (range) | A/B p95 (range) |"
          + (" FTS5 p50 | A/FTS5 p50 (range) | B/FTS5 p50 (range) |" if fts else ""))
    print("|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if fts else ""))
    med = statistics.median

    def cell(ratios: list[float]) -> str:
        return spread(ratios, dash="–")

    for kind in ["all", *sorted(set(kinds))]:
        picked = [i for i, k in enumerate(kinds) if kind in ("all", k)]
        rows = []
        for times, _ in passes:
            a = [times["A"][i] for i in picked]
            b = [times["B"][i] for i in picked]
            f = [times["fts5"][i] for i in picked] if fts else [1.0]
            rows.append((statistics.median(a), _percentile(a, 0.95),
                         statistics.median(b), _percentile(b, 0.95), statistics.median(f)))
        line = (f"| {kind} | {med(r[0] for r in rows):.2f} | {med(r[1] for r in rows):.2f} |"
                f" {med(r[2] for r in rows):.2f} | {med(r[3] for r in rows):.2f} |"
                f" {cell([r[0] / r[2] for r in rows])} | {cell([r[1] / r[3] for r in rows])} |")
        if fts:
            line += (f" {med(r[4] for r in rows):.2f} | {cell([r[0] / r[4] for r in rows])} |"
                     f" {cell([r[2] / r[4] for r in rows])} |")
        print(line)
    print(f"\nqueries whose total or top 10 differ, per pass: {[d for _, d in passes]}")


if __name__ == "__main__":
    main()
