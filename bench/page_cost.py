#!/usr/bin/env python3
"""What it costs `Engine.search` to turn a page's hits into shown items (#14, item 6).

For each query of ``bench/queries.jsonl`` the page's documents are found once
(untimed, through the engine's own `_find`), then the two parts of the page
are timed alone, in this thread's CPU time:

- ``stored``: reading the page's stored fields and making its `Item`s
  (`Snapshot.stored` + `schema.from_stored`), as `Engine.search` does;
- ``highlight``: the page's title and summary highlights (`Marks` made once
  per page, as `Engine.search` does).

Highlighting is timed cold (the first pass over the queries in a fresh
process: every word seen for the first time, as in `bench/run.py`'s query
passes) and warm (the same pass again, as in a server that has run a while).
Each pass is a fresh process; reported: the median per page over the queries,
per pass, and the median and range of those over the passes. With ``--against``
another checkout (its own code, on the same index) runs a pass beside each of
this one's, the two in alternating order, and the ratios this/other of each pair
are reported too: the figures to trust on a shared machine.

    .venv/bin/python bench/page_cost.py --index bench/out/100000/index --passes 3
    .venv/bin/python bench/page_cost.py --against /tmp/main-archive --passes 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from figures import spread

HERE = Path(__file__).resolve().parent.parent
PARTS = ("stored", "highlight_cold", "highlight_warm")


def one_pass(index_dir: Path) -> dict[str, Any]:
    """(child process, the checkout's code first on `sys.path`) Every query's page: its
    parts timed, cold then warm."""
    from bench import queries as queries_mod
    from bench.engines import BenchQuery
    from searchapp.highlight import FRAGMENT_CHARS, Marks, highlight
    from searchapp.indexer import IndexStore
    from searchapp.schema import from_stored
    from searchapp.service import Engine

    engine = Engine(IndexStore(index_dir), warm_up=False)
    queries = [BenchQuery.from_dict(q) for q in queries_mod.load()]
    pages = []
    with engine._reading():
        snapshot = engine._current()
        for q in queries:
            request = q.request()
            found = engine._find(snapshot, request)
            total = len(found.counted.docs)
            end = request.page * request.per_page
            docs = [d for d, _ in (found.ordered(end, end - request.per_page) if total else [])]
            wanted = set(found.built.wanted) if found.built is not None else set()
            pages.append((docs, wanted))
        out: dict[str, list[float]] = {"stored": [], "highlight_cold": [], "highlight_warm": []}
        items_of = []
        for docs, _ in pages:
            cpu = time.thread_time()
            items = [from_stored(snapshot.stored(d)) for d in docs]
            out["stored"].append((time.thread_time() - cpu) * 1000)
            items_of.append(items)
        for key in ("highlight_cold", "highlight_warm"):
            for (_, wanted), items in zip(pages, items_of):
                cpu = time.thread_time()
                marks = Marks(wanted)
                for item in items:
                    highlight(item.title, marks, language=item.language)
                    highlight(item.summary, marks, fragment=FRAGMENT_CHARS,
                              language=item.language)
                out[key].append((time.thread_time() - cpu) * 1000)
    engine.close()
    return {key: statistics.median(v) for key, v in out.items()} | {
        "pages": len(pages), "items": sum(len(d) for d, _ in pages)}


def child(root: Path, index: Path) -> dict[str, Any]:
    """One pass in a fresh process running `root`'s code (its own venv)."""
    done = subprocess.run([str(root / ".venv/bin/python"), __file__, "child", str(root),
                           str(index)], capture_output=True, text=True, check=False)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"a pass of {root} failed (exit status {done.returncode})")
    return dict(json.loads(done.stdout))


def main() -> int:
    if sys.argv[1:2] == ["child"]:
        sys.path.insert(0, sys.argv[2])
        print(json.dumps(one_pass(Path(sys.argv[3]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, default=HERE / "bench" / "out" / "100000" / "index")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--against", type=Path, help="another checkout, run beside this one")
    a = ap.parse_args()
    sides = [HERE] + ([a.against.resolve()] if a.against else [])
    runs: dict[Path, list[dict[str, Any]]] = {side: [] for side in sides}
    for p in range(a.passes):
        for side in (sides if p % 2 == 0 else sides[::-1]):
            runs[side].append(child(side, a.index))
    first = runs[HERE][0]
    print(f"{first['pages']} pages, {first['items']} items; CPU ms per page, median over the"
          f" queries; median (range) over {a.passes} passes")
    for key in PARTS:
        line = f"  {key:15} " + "   ".join(
            f"{side.name}: {spread([r[key] for r in runs[side]], '.3f')}" for side in sides)
        if a.against:
            line += "   ratio " + spread([x[key] / y[key] for x, y in zip(*runs.values())],
                                         ".3f")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
