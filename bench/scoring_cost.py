#!/usr/bin/env python3
"""What ranking costs: the scoring kinds and RM3 feedback timed side by side.

One process, one index (the one `bench/run.py --items N` built), three
engines over it: the per-field kind (`Settings.scoring="fields"`, the model
before issue #12; a `Word` is then an OR of per-field terms), BM25F proper
(the default) and BM25F proper with RM3 feedback. The fixed query set
(`bench/queries.jsonl`) runs once untimed on each (warm-up), then query by
query on each in turn (the order rotates), so all three see the same load::

    .venv/bin/python bench/scoring_cost.py --items 100000 --passes 3

Prints p50 and p95 per engine, over all queries and per kind, as the median
over passes, and the ratios to the per-field kind. The per-field kind here
runs today's code (its `Word` nodes, k3 weights), so this isolates the cost
of scoring a word once across fields, and of feedback; `bench/run.py` before
and after measures the whole change.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import queries as queries_mod
from bench.engines import BenchQuery
from searchapp.engine.scoring import Ranking
from searchapp.indexer import IndexStore
from searchapp.search import Engine

ENGINES = ("fields", "bm25f", "bm25f+rm3")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def open_engines(index_dir: Path) -> dict[str, Engine]:
    store = IndexStore(index_dir)
    return {"fields": Engine(store, weighting=Ranking(kind="fields").weighting()),
            "bm25f": Engine(store),
            "bm25f+rm3": Engine(store, feedback="rm3")}


def one_pass(index_dir: Path, queries: list[BenchQuery], turn: int
             ) -> dict[str, dict[str, list[float]]]:
    engines = open_engines(index_dir)
    for engine in engines.values():  # warm-up: open the snapshot, load the arrays
        for q in queries:
            engine.search(q.request())
    times: dict[str, dict[str, list[float]]] = {e: {} for e in engines}
    names = list(engines)
    for i, q in enumerate(queries):
        k = (i + turn) % len(names)
        for name in names[k:] + names[:k]:
            started = time.perf_counter()
            engines[name].search(q.request())
            ms = (time.perf_counter() - started) * 1000
            times[name].setdefault("all", []).append(ms)
            times[name].setdefault(q.kind, []).append(ms)
    for engine in engines.values():
        engine.close()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--passes", type=int, default=3)
    a = ap.parse_args()
    index_dir = ROOT / "bench" / "out" / str(a.items) / "index"
    if not index_dir.exists():
        raise SystemExit(f"no index at {index_dir}: run bench/run.py --items {a.items} first")
    queries = [BenchQuery.from_dict(q) for q in queries_mod.load()]
    passes = [one_pass(index_dir, queries, p) for p in range(a.passes)]
    kinds = ["all", *sorted({q.kind for q in queries})]
    print(f"{len(queries)} queries, {a.passes} passes; p50 / p95 ms (median over passes)")
    base = {}
    for name in ENGINES:
        cells = []
        for kind in kinds:
            p50 = statistics.median(percentile(t[name][kind], 50) for t in passes)
            p95 = statistics.median(percentile(t[name][kind], 95) for t in passes)
            if name == "fields":
                base[kind] = (p50, p95)
            ratio = "" if name == "fields" else \
                f" (×{p50 / base[kind][0]:.2f}, ×{p95 / base[kind][1]:.2f})"
            cells.append(f"{kind} {p50:.2f}/{p95:.1f}{ratio}")
        print(f"{name}: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
