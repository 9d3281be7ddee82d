#!/usr/bin/env python3
"""Where the whole ``GET /api/search`` request's time goes, as `bench/run.py` times it.

Two measurements over the bench's queries (`bench/queries.jsonl`), each query
answered once per process, as `bench/run.py`'s query pass does (10 queries to
warm up, the engines' warm-up waited for), CPU time of the searching thread:

- ``layers``: FTS5's bare query, then the request through the app's test
  client, with its layers under CPU timers (wrapping costs about 1 µs a call):
  the test client's own work, Flask and Werkzeug around the view (with the
  ``after_request`` hooks), the view around `Engine.search` (the ETag's look
  at the index, the parameters, `to_dict`, the JSON body), and `Engine.search`
  by part. The median over the queries of each part.
- ``order``: FTS5, then `Engine.search` (the bench's *product*) and the whole
  request, in an order that alternates query by query: each one's median when
  it is the first of the two to answer a query and when it is the second.
  `bench/run.py` rotates product, FTS5 and request, so the product answers
  second on two queries in three, right after the request answered the same
  words: the second answer finds the query's postings and stored fields in the
  CPU's caches and the process's word caches warm.

    .venv/bin/python bench/request_layers.py --work bench/out/100000 --runs 3

``--work`` is a directory with ``catalog.sqlite3``, ``index/`` and
``fts5.sqlite3`` (what ``bench/run.py --items 100000`` leaves in
``bench/out/100000``); each run is a fresh process.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (label, parts added, parts taken away): each shown part from the timers' totals.
PARTS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("the whole request (bench/run.py's *request*)", ("request",), ()),
    ("FTS5's bare query", ("fts5",), ()),
    ("test client's own work (outside the WSGI app)", ("request",), ("server",)),
    ("Flask and Werkzeug around the view, after_request hooks", ("server",), ("view",)),
    ("the view around Engine.search", ("view",), ("search",)),
    ("  of which the ETag's look at the index (Engine.version)", ("version",), ()),
    ("  of which SearchPage.to_dict", ("to_dict",), ()),
    ("  of which the JSON body (orjson, the Response)", ("json",), ()),
    ("Engine.search", ("search",), ()),
    ("  parsing the query", ("parse",), ()),
    ("  building the engine's query (stemming in each language)", ("build",), ()),
    ("  matching (posting arrays; the reader's first use of each term)", ("matching",), ()),
    ("  the rest of finding: facet columns, filters, counts", ("find",),
     ("parse", "build", "matching")),
    ("  ranking the page", ("rank",), ()),
    ("  the page's stored fields", ("stored", "from_stored"), ()),
    ("  highlighting the page's titles and summaries", ("highlight",), ()),
    ("  facet values", ("facets",), ()),
    ("  the rest of Engine.search", ("search",),
     ("find", "rank", "stored", "from_stored", "highlight", "facets")),
)


def _timers() -> tuple[dict[str, float], Callable[[Any, str, str], None]]:
    """CPU time per label, and what wraps a callable to add to its label (the outermost
    call only, so recursion is counted once)."""
    spent: dict[str, float] = collections.defaultdict(float)
    inside: collections.Counter[str] = collections.Counter()

    def wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if inside[label]:
                return original(*args, **kwargs)
            inside[label] += 1
            began = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.thread_time() - began
                inside[label] -= 1

        setattr(owner, name, timed)

    return spent, wrap


def layers(work: Path) -> dict[str, float]:
    """(child) Each part's median CPU ms over the queries, the request answering each
    query once, after FTS5."""
    from flask import Flask

    import searchapp.query as parser
    from bench import queries as queries_mod
    from bench.engines import BenchQuery, Fts5, Request
    from bench.run import timed_search
    from searchapp import page, ranking, service
    from searchapp.web import api

    queries = [BenchQuery.from_dict(q) for q in queries_mod.load()]
    request = Request(work / "index", work / "catalog.sqlite3")
    engine = request.app.extensions["searchapp.engine"]
    fts = Fts5(work / "fts5.sqlite3")
    spent, wrap = _timers()
    for owner, name, label in (
            (Flask, "wsgi_app", "server"), (Flask, "dispatch_request", "view"),
            (service.Engine, "search", "search"), (service.Engine, "version", "version"),
            (service.Engine, "_find", "find"), (parser, "parse", "parse"),
            (parser, "build", "build"), (service, "_matching", "matching"),
            (service, "highlight", "highlight"), (service, "_facets", "facets"),
            (service, "from_stored", "from_stored"), (ranking, "by_relevance", "rank"),
            (ranking, "by_date", "rank"), (page.SearchPage, "to_dict", "to_dict"),
            (api, "search_json", "json")):
        wrap(owner, name, label)
    service.parser = parser  # (the service calls parse and build through the module)
    for q in queries[:10]:
        request.search(q)
        fts.search(q)
    engine.warmed()
    wrap(type(engine._current()), "stored", "stored")
    rows = []
    for q in queries:
        fts_ms = timed_search(fts, q)[2]
        spent.clear()
        spent["request"] = timed_search(request, q)[2] / 1000
        spent["fts5"] = fts_ms / 1000
        rows.append({label: 1000 * (sum(spent.get(k, 0.0) for k in plus)
                                    - sum(spent.get(k, 0.0) for k in minus))
                     for label, plus, minus in PARTS})
    request.close()
    fts.close()
    return {label: statistics.median(r[label] for r in rows) for label, _, _ in PARTS}


def order(work: Path) -> dict[str, float]:
    """(child) Median CPU ms of the product and of the request when first and when second
    to answer a query (the order alternates query by query), and of FTS5."""
    from bench import queries as queries_mod
    from bench.engines import BenchQuery, Fts5, Product, Request
    from bench.run import timed_search

    queries = [BenchQuery.from_dict(q) for q in queries_mod.load()]
    product, request = Product(work / "index"), Request(work / "index",
                                                         work / "catalog.sqlite3")
    fts = Fts5(work / "fts5.sqlite3")
    for q in queries[:10]:
        product.search(q)
        request.search(q)
        fts.search(q)
    product.engine.warmed()
    request.app.extensions["searchapp.engine"].warmed()
    times: dict[str, list[float]] = collections.defaultdict(list)
    for i, q in enumerate(queries):
        times["fts5"].append(timed_search(fts, q)[2])
        pair = [("product", product), ("request", request)]
        for place, (name, engine) in zip(("first", "second"), pair if i % 2 else pair[::-1]):
            times[f"{name} {place}"].append(timed_search(engine, q)[2])
    for engine in (product, request, fts):
        engine.close()
    return {name: statistics.median(values) for name, values in sorted(times.items())}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("layers", "order"):  # a child
        found = layers(Path(argv[1])) if argv[0] == "layers" else order(Path(argv[1]))
        print(json.dumps(found))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "100000")
    ap.add_argument("--runs", type=int, default=3, help="fresh processes of each kind")
    a = ap.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {"layers": [], "order": []}
    for _ in range(a.runs):
        for kind, found in runs.items():
            done = subprocess.run([sys.executable, __file__, kind, str(a.work)],
                                  stdout=subprocess.PIPE, check=True, text=True)
            found.append(json.loads(done.stdout))
    print(f"{a.runs} runs, CPU ms of the searching thread, median over the 360 queries;"
          " the median (range) over the runs\n")
    for kind, found in runs.items():
        print("| part | CPU ms |" if kind == "layers" else "\n| engine, place | CPU ms |")
        print("|---|---:|")
        for label in found[0]:
            values = [each[label] for each in found]
            print(f"| {label} | {statistics.median(values):.2f}"
                  f" ({min(values):.2f}-{max(values):.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
