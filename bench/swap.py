#!/usr/bin/env python3
"""The first query after a swap: opened by that query, or ahead by the watch.

A copy of an index folder (default: the one `bench/run.py` built for
``--items``) that holds two generations is served by one engine per run, a
fresh process, warmed up at start as a `searchapp serve` worker is. Then the
swap: CURRENT is pointed at the other generation (atomically, as a rebuild's
last step does; the rebuild itself is left out, it only costs time), and
after ``--after`` seconds the first query (`cooperative`) is timed, with what
the engine counted meanwhile. ``request``: the engine does not watch, the
query opens the new generation itself (main before #14's watch, or any engine
outside `searchapp serve`). ``watch``: `Engine.watch()` as each worker runs
it, once a second. The modes alternate, so both see the same load::

    .venv/bin/python bench/swap.py --index /tmp/main100k/index --copy /tmp/swap100k --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from figures import spread

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def one(index: str, mode: str, after: float) -> dict[str, object]:
    from searchapp import service
    from searchapp.engine import FALLBACKS
    from searchapp.indexer import IndexStore
    from searchapp.service import Engine, SearchQuery

    store = IndexStore(Path(index))
    engine = Engine(store, time_budget=3.0)
    engine.warm()
    if mode == "watch":
        engine.watch()
    engine.warmed()
    engine.search(SearchQuery(q="cooperative"))
    live = store.current()
    assert live is not None
    other = next(g for g in store.generations() if g.name != live.name)
    before = FALLBACKS.snapshot()
    pointer = Path(index) / "CURRENT"
    tmp = pointer.with_name("CURRENT.tmp")
    tmp.write_text(other.name + "\n", encoding="ascii")
    os.replace(tmp, pointer)  # the swap
    time.sleep(after)
    started = time.perf_counter()
    page = engine.search(SearchQuery(q="cooperative"))
    out: dict[str, object] = {"mode": mode, "s": round(time.perf_counter() - started, 3),
                              "total": page.total, "partial": page.partial,
                              "generation": engine.generation}
    out["counted"] = {k: v - before.get(k, 0) for k, v in FALLBACKS.snapshot().items()
                      if v != before.get(k, 0)}
    out["opened_at_request"] = out["counted"].get(service.OPENED_AT_REQUEST, 0)  # type: ignore[attr-defined]
    engine.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", help="an index folder with two generations"
                        " (default: bench/out/<items>/index)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--copy", required=True, help="where to copy it (it is swapped there)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--after", type=float, default=3.0,
                        help="seconds between the swap and the first query")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.copy, args.one, args.after)))
        return
    index = args.index or str(ROOT / "bench" / "out" / str(args.items) / "index")
    if not Path(args.copy).exists():
        shutil.copytree(index, args.copy)
    runs: dict[str, list[dict[str, object]]] = {"request": [], "watch": []}
    for _ in range(args.runs):
        for mode, found in runs.items():
            done = subprocess.run([sys.executable, __file__, "--copy", args.copy, "--after",
                                   str(args.after), "--one", mode],
                                  check=True, capture_output=True, text=True)
            found.append(json.loads(done.stdout.splitlines()[-1]))
            print(done.stdout.strip(), file=sys.stderr)
    print(f"| first query after a swap ({args.after:g} s after it) | s | partial |"
          " opened by the request |")
    print("|---|---|---|---|")
    for mode, found in runs.items():
        times = [float(r["s"]) for r in found]  # type: ignore[arg-type]
        print(f"| {mode} | {spread(times)} |"
              f" {sum(bool(r['partial']) for r in found)}/{len(found)} |"
              f" {'/'.join(sorted({str(r['opened_at_request']) for r in found}))} |")


if __name__ == "__main__":
    main()
