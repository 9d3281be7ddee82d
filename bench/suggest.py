#!/usr/bin/env python3
"""CPU per `GET /api/suggest` request: the word table against the scan it replaced.

Each run is a fresh process serving the app over an index (default: the one
`bench/run.py` built for ``--items``) through Flask's test client, with the
engine's warm-up on. ``table``: the warm-up is waited for, so completions
come from the word table (`searchapp.engine.completion`). ``scan``: the
table's key is held reserved, as while a warm-up is making it, so every
completion scans the words and looks up each count (the code of before,
kept as the fallback). The modes alternate run by run, so both see the same
load. Per request the process's CPU time (`time.process_time`) is taken;
printed: per prefix the median over requests and runs, and over all
prefixes the median and range of the runs' medians, and the table's build::

    .venv/bin/python bench/suggest.py --index /tmp/main100k/index --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from figures import spread

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# What a user types, letter by letter: two letters and up.
PREFIXES = ("co", "coo", "coop", "ma", "mar", "wo", "wor", "th", "re", "in", "pr", "st",
            "de", "ge", "ér", "tr", "zz")


def one(index: str, mode: str, rounds: int) -> dict[str, object]:
    from searchapp import create_app
    from searchapp.engine import FALLBACKS, completion
    from searchapp.engine.plain import reserve_completion
    from searchapp.fields import TEXT_FIELDS
    from searchapp.indexer import IndexStore

    catalog = Path(index).parent / "catalog.sqlite3"
    held = None
    if mode == "scan":
        ix = IndexStore(Path(index)).open_index()
        with ix.reader() as reader:
            held = reserve_completion(reader, TEXT_FIELDS)
        ix.close()
    app = create_app({"catalog": catalog, "index_dir": index})
    engine = app.extensions["searchapp.engine"]
    client = app.test_client()
    out: dict[str, object] = {"mode": mode}
    started = time.perf_counter()
    engine.warm()
    engine.warmed()
    out["warm_up_s"] = round(time.perf_counter() - started, 3)
    client.get("/api/suggest", query_string={"q": "co"})  # the first request's one-offs
    per: dict[str, list[float]] = {p: [] for p in PREFIXES}
    alone: dict[str, list[float]] = {p: [] for p in PREFIXES}  # Engine.complete only
    for _ in range(rounds):
        for prefix in PREFIXES:
            begun = time.process_time()
            response = client.get("/api/suggest", query_string={"q": prefix})
            per[prefix].append(time.process_time() - begun)
            assert response.status_code == 200
            begun = time.process_time()
            engine.complete(prefix)
            alone[prefix].append(time.process_time() - begun)
    out["ms"] = {p: [round(s * 1000, 4) for s in v] for p, v in per.items()}
    out["engine_ms"] = {p: [round(s * 1000, 4) for s in v] for p, v in alone.items()}
    out["fallbacks"] = {k: v for k, v in FALLBACKS.snapshot().items() if "completion" in k}
    if held is not None:
        completion.release(held[0])
    engine.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", help="an index folder (default: bench/out/<items>/index)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    index = args.index or str(ROOT / "bench" / "out" / str(args.items) / "index")
    if args.one:
        print(json.dumps(one(index, args.one, args.rounds)))
        return
    runs: dict[str, list[dict[str, object]]] = {"scan": [], "table": []}
    for _ in range(args.runs):
        for mode, found in runs.items():
            done = subprocess.run([sys.executable, __file__, "--index", index, "--rounds",
                                   str(args.rounds), "--one", mode],
                                  check=True, capture_output=True, text=True)
            result = json.loads(done.stdout.splitlines()[-1])
            found.append(result)
            print(json.dumps({k: v for k, v in result.items() if "ms" not in k}),
                  file=sys.stderr)

    def median_ms(found: list[dict[str, object]], prefix: str, what: str = "ms") -> float:
        return statistics.median(s for r in found for s in r[what][prefix])  # type: ignore[index]

    print("| prefix | request CPU ms: scan | table | ratio | `Engine.complete` CPU ms: scan |"
          " table |")
    print("|---|---|---|---|---|---|")
    for prefix in PREFIXES:
        old, new = median_ms(runs["scan"], prefix), median_ms(runs["table"], prefix)
        print(f"| {prefix} | {old:.3f} | {new:.3f} | {old / new:.0f}× |"
              f" {median_ms(runs['scan'], prefix, 'engine_ms'):.3f} |"
              f" {median_ms(runs['table'], prefix, 'engine_ms'):.3f} |")
    for mode, found in runs.items():
        medians = [statistics.median(s for v in r["ms"].values() for s in v)  # type: ignore[attr-defined]
                   for r in found]
        alone = [statistics.median(s for v in r["engine_ms"].values() for s in v)  # type: ignore[attr-defined]
                 for r in found]
        print(f"{mode}: all prefixes, request CPU median of the runs' medians"
              f" {spread(medians, '.3f', unit=' ms')},"
              f" `Engine.complete` {spread(alone, '.3f', unit=' ms')}; warm-up"
              f" {statistics.median(float(r['warm_up_s']) for r in found):.2f} s"  # type: ignore[arg-type]
              f"; fallbacks {found[-1]['fallbacks']}")


if __name__ == "__main__":
    main()
