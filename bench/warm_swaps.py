#!/usr/bin/env python3
"""Swaps one after another in one serving process: what it keeps, and who waits.

A copy of a catalog and its index (default: the ones `bench/run.py` built for
``--items``) is served by one engine, warmed up at start as a `searchapp serve`
worker is, with the served time budget (3 s). Then ``--swaps`` times: a
`searchapp reindex` in another process (a new generation swapped in), the first
typo query (`cooperatvie`) sent, and, as soon as it has opened the new
generation, a plain query (`housing`) beside it; each one's wall time. Once the
warm-up is over, a typo query and a completion, then what the process keeps
of the close-words indexes and completion word tables (how many, of which
generations, and their size: the words and arrays they hold). ``--before DIR``
runs the same on another copy of the package too (`git archive <commit>
searchapp | tar -x -C DIR`)::

    .venv/bin/python bench/warm_swaps.py --catalog /tmp/c/instance/catalog.sqlite3 \
        --index /tmp/c/index --copy /tmp/warm-swaps --swaps 3 --before /tmp/main
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Runs this file (argv[2]) with the package of argv[1] first on the path.
_WITH_PACKAGE = ("import runpy, sys; sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[2:];"
                 " runpy.run_path(sys.argv[0], run_name='__main__')")


def kept(index: Path) -> dict[str, Any]:
    """The close-words indexes and word tables kept for segments of `index`."""
    from searchapp.engine import completion, words

    gc.collect()
    inside = str(index.resolve())
    indexes = {k: v for k, v in words._CACHE.items() if k[0].startswith(inside)}
    tables = {k: v for k, v in completion._CACHE.items()
              if any(p.startswith(inside) for p in k)}
    size = sum(sum(map(sys.getsizeof, v.words)) + sys.getsizeof(v.words) + v.counts.nbytes
               for v in (*indexes.values(), *tables.values()))
    return {"indexes": len(indexes), "tables": len(tables), "mb": round(size / 1e6, 1),
            "generations": sorted({Path(k[0]).parent.name for k in indexes})}


def _ask(engine: Any, q: str, name: str, times: dict[str, Any]) -> None:
    from searchapp.service import SearchQuery

    began = time.perf_counter()
    page = engine.search(SearchQuery(q=q))
    times[name] = round(time.perf_counter() - began, 3)
    times[f"{name}_partial"] = page.partial


def one(catalog: Path, index: Path, swaps: int) -> list[dict[str, Any]]:
    from searchapp.engine import FALLBACKS
    from searchapp.indexer import IndexStore
    from searchapp.service import Engine, SearchQuery

    env = dict(os.environ, SEARCHAPP_CATALOG=str(catalog), SEARCHAPP_INDEX_DIR=str(index),
               PYTHONPATH=str(Path(sys.path[0])))
    engine = Engine(IndexStore(index), time_budget=3.0)
    engine.warm()
    engine.warmed()
    engine.search(SearchQuery(q="cooperatvie"))
    engine.complete("co")
    rows = [{"swap": 0, **kept(index)}]
    for n in range(1, swaps + 1):
        subprocess.run([sys.executable, "-m", "searchapp.cli", "reindex"], env=env, check=True,
                       capture_output=True)
        live = IndexStore(index).current()
        assert live is not None
        before = FALLBACKS.snapshot()
        times: dict[str, Any] = {}
        typo = threading.Thread(target=_ask, args=(engine, "cooperatvie", "typo", times))
        typo.start()
        while engine.generation != live.name:
            time.sleep(0.001)
        plain = threading.Thread(target=_ask, args=(engine, "housing", "plain", times))
        plain.start()
        typo.join()
        plain.join()
        counted = {k: v - before.get(k, 0) for k, v in FALLBACKS.snapshot().items()
                   if v != before.get(k, 0)}
        engine.warmed()
        engine.search(SearchQuery(q="cooperatvie"))
        engine.complete("co")
        rows.append({"swap": n, **times, "counted": counted, **kept(index)})
    engine.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--catalog", type=Path, help="default: bench/out/<items>/catalog.sqlite3")
    parser.add_argument("--index", type=Path, help="default: bench/out/<items>/index")
    parser.add_argument("--copy", type=Path, required=True,
                        help="where to copy them, once per package (swapped there)")
    parser.add_argument("--swaps", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another copy of the package to run too")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        catalog, index, swaps = args.one
        print(json.dumps(one(Path(catalog), Path(index), int(swaps))))
        return
    out = ROOT / "bench" / "out" / str(args.items)
    catalog = args.catalog or out / "catalog.sqlite3"
    index = args.index or out / "index"
    packages = {"this": ROOT, **({"before": args.before} if args.before else {})}
    for name, package in packages.items():
        where = args.copy / name
        if where.exists():
            shutil.rmtree(where)
        (where / "instance").mkdir(parents=True)
        for f in catalog.parent.glob(catalog.name + "*"):
            shutil.copy2(f, where / "instance" / f.name)
        shutil.copytree(index, where / "index")
        done = subprocess.run(
            [sys.executable, "-c", _WITH_PACKAGE, str(package), __file__, "--copy", str(where), "--one",
             str(where / "instance" / catalog.name), str(where / "index"), str(args.swaps)],
            check=True, capture_output=True, text=True)
        rows = json.loads(done.stdout.splitlines()[-1])
        print(f"## {name} ({package})")
        print("| swap | typo query s | plain query beside it s | kept: indexes, tables, MB |"
              " generations kept | counted |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['swap']} | {r.get('typo', '')} | {r.get('plain', '')} |"
                  f" {r['indexes']}, {r['tables']}, {r['mb']} | {' '.join(r['generations'])} |"
                  f" {r.get('counted', '')} |")


if __name__ == "__main__":
    main()
