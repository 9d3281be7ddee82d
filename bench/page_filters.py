#!/usr/bin/env python3
"""What the #15 filters and exports cost on a built index, in-process (no HTTP).

For each case, the median and range over `--runs` searches through `Engine.search`
(the page's and the API's path): no filter, a date range, a date preset, a facet
value as stored and the same value typed in lower case (matched without case or
accents). Then a whole export (`Engine.export`, every row read) of a broad query,
capped at `searchapp.export.MAX_EXPORT_ROWS`::

    .venv/bin/python bench/corpus.py --items 100000 --out /tmp/c100k.jsonl
    SEARCHAPP_CATALOG=/tmp/c100k.sqlite3 SEARCHAPP_INDEX_DIR=/tmp/c100k-index \\
        .venv/bin/searchapp import /tmp/c100k.jsonl -q
    SEARCHAPP_CATALOG=/tmp/c100k.sqlite3 SEARCHAPP_INDEX_DIR=/tmp/c100k-index \\
        .venv/bin/python bench/page_filters.py --runs 11
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from searchapp.config import Settings
from searchapp.export import MAX_EXPORT_ROWS
from searchapp.search import Engine, SearchQuery

CASES = {
    "q=cooperative": {"q": ["cooperative"]},
    "+ date_from/date_to (2019-01-01..2024-06-30)": {
        "q": ["cooperative"], "date_from": ["2019-01-01"], "date_to": ["2024-06-30"]},
    "+ past=year": {"q": ["cooperative"], "past": ["year"]},
    "+ organisation=ILO": {"q": ["cooperative"], "organisation": ["ILO"]},
    "+ organisation=ilo (folded)": {"q": ["cooperative"], "organisation": ["ilo"]},
    "browse, date range": {"date_from": ["2019-01-01"], "date_to": ["2024-06-30"]},
}


def timed(run: object, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args()
    engine = Engine.from_settings(Settings.load())
    try:
        print(f"{engine.doc_count():,} documents, engine {engine.stats()['kind']},"
              f" load {os.getloadavg()[0]:.1f}")
        for name, params in CASES.items():
            query = SearchQuery.from_params(params)
            engine.search(query)  # warm
            ms = timed(lambda q=query: engine.search(q), args.runs)
            total = engine.search(query).total
            print(f"{name:46} {total:>7,} items  median {statistics.median(ms):7.1f} ms"
                  f"  (range {min(ms):.1f}-{max(ms):.1f})")

        def export() -> None:
            rows = engine.export(SearchQuery(q="cooperatives OR news", match="any"),
                                 limit=MAX_EXPORT_ROWS).rows
            for _ in rows:
                pass

        ms = timed(export, max(3, args.runs // 3))
        print(f"{'export of ' + format(MAX_EXPORT_ROWS, ',') + ' rows (every row read)':46}"
              f"                median {statistics.median(ms):7.1f} ms"
              f"  (range {min(ms):.1f}-{max(ms):.1f})")
        print(f"fallbacks: {engine.stats()['fallbacks']}")
    finally:
        engine.close()


if __name__ == "__main__":
    main()
