#!/usr/bin/env python3
"""The first queries after a start: with and without the engine's warm-up.

Each run is a fresh process (what a gunicorn worker is after a start or, for
the engine, after a swap) over an index (default: the one `bench/run.py` built
for ``--items``), with the served time budget (3 s). ``cold``: the engine as
before the warm-up (``warm_up=False``), the first plain query then the first
typo query straight away. ``warmed``: `Engine.warm()` at start, the warm-up
waited for (its time printed), then the same two queries. Printed per run: each
query's wall time and whether it answered partial, how many close-words
indexes were built at query time (the `FALLBACKS` counter), and the facet
columns: whether the first query built them (`facet columns: built at query
time`, counted since #14) and the CPU seconds of building them in the process
(`Columns`, timed apart after the queries). ``--before DIR`` runs the same
modes on another copy of the package too (`git archive <commit> searchapp |
tar -x -C DIR`), alternated with this one::

    .venv/bin/python bench/warm_up.py --index /tmp/main100k/index --runs 3
    .venv/bin/python bench/warm_up.py --index /tmp/main100k/index --runs 3 --before /tmp/main
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from figures import spread

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERIES = ("cooperative", "cooperatvie")


def one(index: str, mode: str, budget: float) -> dict[str, object]:
    from searchapp.engine import FALLBACKS, open_snapshot
    from searchapp.engine.words import BUILT_AT_QUERY_TIME
    from searchapp.indexer import IndexStore
    from searchapp.service import Engine, SearchQuery

    engine = Engine(IndexStore(Path(index)), time_budget=budget, warm_up=mode == "warmed")
    out: dict[str, object] = {"mode": mode}
    if mode == "warmed":
        started = time.perf_counter()
        engine.warm()
        engine.warmed()
        out["warm_up_s"] = round(time.perf_counter() - started, 3)
    for q in QUERIES:
        started = time.perf_counter()
        page = engine.search(SearchQuery(q=q))
        out[q] = {"s": round(time.perf_counter() - started, 3), "total": page.total,
                  "partial": page.partial}
    out["built_at_query_time"] = FALLBACKS.snapshot().get(BUILT_AT_QUERY_TIME, 0)
    from searchapp import service

    counted = getattr(service, "COLUMNS_AT_QUERY_TIME", None)  # (not counted before #14)
    out["columns_at_query_time"] = "-" if counted is None else FALLBACKS.snapshot().get(
        counted, 0)
    engine.close()
    from searchapp.facets import Columns

    snapshot = open_snapshot(IndexStore(Path(index)).open_index())
    started = time.process_time()
    Columns(snapshot)
    out["columns_cpu_s"] = round(time.process_time() - started, 3)
    snapshot.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", help="an index folder (default: bench/out/<items>/index)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=3.0)
    parser.add_argument("--before", help="another copy of the package (its parent folder),"
                        " run alternately with this one")
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    index = args.index or str(ROOT / "bench" / "out" / str(args.items) / "index")
    if args.one:
        if args.code:
            sys.path.insert(0, args.code)
        print(json.dumps(one(index, args.one, args.budget)))
        return
    codes = {"": str(ROOT)} if not args.before else {"before ": args.before, "": str(ROOT)}
    runs: dict[str, list[dict[str, object]]] = {
        name + mode: [] for name in codes for mode in ("cold", "warmed")}
    for _ in range(args.runs):
        for mode, found in runs.items():  # alternated, so that all see the same load
            code = codes["before " if mode.startswith("before ") else ""]
            done = subprocess.run([sys.executable, __file__, "--index", index, "--budget",
                                   str(args.budget), "--code", code,
                                   "--one", mode.removeprefix("before ")],
                                  check=True, capture_output=True, text=True)
            found.append(json.loads(done.stdout.splitlines()[-1]))
            print(mode, done.stdout.strip(), file=sys.stderr)
    print("| mode | first query s | first typo query s | typo partial | built at query time |"
          " warm-up s | columns at query time | columns CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, found in runs.items():
        first = [r[QUERIES[0]]["s"] for r in found]  # type: ignore[index]
        typo = [r[QUERIES[1]]["s"] for r in found]  # type: ignore[index]
        partial = sum(bool(r[QUERIES[1]]["partial"]) for r in found)  # type: ignore[index]
        built = sorted({int(r["built_at_query_time"]) for r in found})  # type: ignore[call-overload]
        warm = [float(r["warm_up_s"]) for r in found if "warm_up_s" in r]  # type: ignore[arg-type]
        columns = sorted({str(r["columns_at_query_time"]) for r in found})
        cpu = [float(r["columns_cpu_s"]) for r in found]  # type: ignore[arg-type]
        print(f"| {mode} | {spread(first)} | {spread(typo)} | {partial}/{len(found)} |"
              f" {'/'.join(map(str, built))} | {spread(warm) if warm else '-'} |"
              f" {'/'.join(columns)} | {spread(cpu)} |")


if __name__ == "__main__":
    main()
