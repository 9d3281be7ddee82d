#!/usr/bin/env python3
"""The CPU an import spends per item while reading (#14): checkouts side by side.

For each checkout (``--code name=folder``, its folder first on PYTHONPATH with this
venv) a fresh process reads a JSON Lines corpus the way `searchapp import` does
(`importers.collect` into a `Spool`), twice: "cold" as an import does, lingua's
models loaded on first use, then "warm" with them loaded. It then times each
per-item function of the reading on every record of the corpus, through the
product's own functions:

- ``json.loads``: one line;
- ``jsonl._record``: the checks of one decoded record (its `parsed.add` a no-op);
- ``build_item (language given)``: `models.build_item` with ``language="en"``, and
  three of its parts: ``_text`` (the seven fields it reads, together), ``parse_date``
  and ``check_id``;
- ``detect``: `languages.detect` on the title and summary (models loaded);
- ``_by_stop_words``: the stop-word shortcut on the text `detect` gives it;
- ``values_digest``: `catalog.values_digest(catalog._values(item))`;
- ``Spool add``: `Spool.take`'s `add` of one record (its batched inserts included).

Runs go round the checkouts in turn (a, b, a, b, ...) so the load falls on both
alike; prints one JSON line per run, then medians with the range over runs::

    git archive 572969b --prefix=before/ | tar -x -C /tmp/readcost
    .venv/bin/python bench/read_cost.py --code before=/tmp/readcost/before --code after=. \\
        --runs 3 /work/wt-bench/bench/out/corpus-100000-20240601.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FUNCTIONS = ("json.loads", "jsonl._record", "build_item (language given)", "_text x 7",
             "parse_date", "check_id", "detect", "_by_stop_words", "values_digest",
             "Spool add")
# The fields `build_item` reads with `_text`, and their limits.
TEXT_FIELDS = (("organisation", 2_000), ("title", 1_000), ("summary", 20_000), ("type", 2_000),
               ("url", 2_000), ("language", 2_000), ("id", 2_000))


def _cpu_us(calls: Iterable[Any], call: Callable[[Any], object]) -> float:
    """CPU µs per call of `call` over `calls` (a list)."""
    calls = list(calls)
    started = time.process_time()
    for each in calls:
        call(each)
    return (time.process_time() - started) / len(calls) * 1e6


def child(corpus: Path, work: Path) -> dict[str, Any]:
    import searchapp
    from searchapp import catalog, importers, languages, models
    from searchapp.importers import jsonl
    from searchapp.importers.spool import Spool

    result: dict[str, Any] = {"searchapp": str(Path(searchapp.__file__).parent.parent)}
    for phase in ("cold", "warm"):
        with Spool(work) as spool:
            cpu, wall = time.process_time(), time.perf_counter()
            importers.collect([corpus], spool=spool)
            result[f"read {phase}, CPU s"] = round(time.process_time() - cpu, 3)
            result[f"read {phase}, wall s"] = round(time.perf_counter() - wall, 3)
            result["items"] = spool.read
    with corpus.open(encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    records = [json.loads(line) for line in lines]
    texts = [f"{r['title'].strip()}\n{(r.get('summary') or '').strip()}".strip()
             for r in records]
    items = [models.build_item(r, language="en") for r in records]

    class Discard:  # what `_record` hands a valid record to
        def add(self, *args: object, **kwargs: object) -> None:
            pass

        def problem(self, line: int, message: str) -> None:
            raise AssertionError(message)

    discard, hints = Discard(), importers.Hints()
    us = {
        "json.loads": _cpu_us(lines, json.loads),
        "jsonl._record": _cpu_us(records, lambda r: jsonl._record(r, 1, discard, hints)),
        "build_item (language given)": _cpu_us(
            records, lambda r: models.build_item(r, language="en")),
        "_text x 7": _cpu_us(records, lambda r: [models._text(r, name, limit=limit)
                                                  for name, limit in TEXT_FIELDS]),
        "parse_date": _cpu_us(records, lambda r: models.parse_date(r.get("date"))),
        "check_id": _cpu_us(items, lambda i: models.check_id(i.id)),
        "detect": _cpu_us(records, lambda r: languages.detect(r["title"], r.get("summary") or "")),
        "_by_stop_words": _cpu_us(texts, languages._by_stop_words),
        "values_digest": _cpu_us(items, lambda i: catalog.values_digest(catalog._values(i))),
    }
    with Spool(work) as spool:
        parsed = importers.Parsed(str(corpus))
        spool.take(parsed)
        assert parsed.sink is not None
        us["Spool add"] = _cpu_us((importers.Record(n, i) for n, i in enumerate(items, 1)),
                                  parsed.sink)
    result["us per item"] = {name: round(value, 2) for name, value in us.items()}
    result["detections"] = dict(languages.DETECTIONS)
    return result


def _load() -> str:
    return os.getloadavg().__repr__()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--code", action="append", default=[], metavar="NAME=FOLDER",
                        help="a checkout to run (its folder goes first on PYTHONPATH)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None,
                        help="where the spools go (default: a temporary folder)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="read-cost-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(child(args.corpus.resolve(), work)))
        return 0
    codes = dict(code.split("=", 1) for code in args.code) or {"this": str(HERE.parent)}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
    for run in range(args.runs):
        for name, folder in codes.items():
            env = {**os.environ, "PYTHONPATH": str(Path(folder).resolve())}
            load = _load()
            done = subprocess.run([sys.executable, __file__, "--child", "--work", str(work),
                                   str(args.corpus.resolve())], env=env, capture_output=True,
                                  text=True, check=True, cwd=work)
            result = {"code": name, "run": run + 1, "load before": load, "load after": _load(),
                      **json.loads(done.stdout.strip().splitlines()[-1])}
            print(json.dumps(result), flush=True)
            runs[name].append(result)

    def cell(values: list[float]) -> str:
        return (f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
                if len(values) > 1 else f"{values[0]:.2f}")

    names = list(codes)
    print(f"\n| per item, CPU µs (median, range over {args.runs} runs) | "
          + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for key in ("read cold, CPU s", "read warm, CPU s", "read cold, wall s",
                "read warm, wall s"):
        print(f"| {key} | " + " | ".join(cell([r[key] for r in runs[n]]) for n in names) + " |")
    for key in ("read cold", "read warm"):
        print(f"| {key}, µs/item | " + " | ".join(
            cell([r[f"{key}, CPU s"] / r["items"] * 1e6 for r in runs[n]]) for n in names) + " |")
    for function in FUNCTIONS:
        print(f"| {function} | " + " | ".join(
            cell([r["us per item"][function] for r in runs[n]]) for n in names) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
