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

Every read's spool (each record's columns, its digest included, and the problems)
is summed up in a SHA-256, which must be the same for every checkout and run.

``--lingua-batches SIZE`` times instead, in this process, lingua's detectors one
text at a time against `compute_language_confidence_values_in_parallel` over
batches of SIZE texts, on the texts the stop-word shortcut leaves.

Runs go round the checkouts in turn (a, b, a, b, ...) so the load falls on both
alike; prints one JSON line per run, then medians with the range over runs::

    git archive 572969b --prefix=before/ | tar -x -C /tmp/readcost
    .venv/bin/python bench/read_cost.py --code before=/tmp/readcost/before --code after=. \\
        --runs 3 /work/wt-bench/bench/out/corpus-100000-20240601.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import closing
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


def _spooled(path: Path, problems: list[Any]) -> str:
    """A SHA-256 of every spooled record, column by column (its digest included), and of
    the problems: what two checkouts must agree on."""
    sha = hashlib.sha256()
    with closing(sqlite3.connect(path)) as db:
        for row in db.execute("SELECT * FROM records ORDER BY seq"):
            sha.update(repr(row).encode("utf-8", "surrogatepass"))
    sha.update(repr(problems).encode("utf-8", "surrogatepass"))
    return sha.hexdigest()[:16]


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
            result[f"spool {phase}"] = _spooled(spool.file, spool.problems())
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


def lingua_batches(corpus: Path, runs: int, batch: int) -> None:
    """lingua one text at a time against `compute_language_confidence_values_in_parallel`
    over batches of `batch` texts, on the texts of `corpus` the stop words leave (the
    trigram detector), and on those the trigrams then leave (high accuracy), in turn:
    CPU of the whole process (lingua's threads included) and wall seconds, and whether
    the answers agree (the language, the confidence up to lingua's own jitter)."""
    from searchapp import languages

    with corpus.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    left = [text for r in records
            if languages._by_stop_words(text := f"{r['title'].strip()}\n"
                                        f"{(r.get('summary') or '').strip()}".strip()) is None]
    trigrams, accurate = languages._detector("trigrams"), languages._detector("all")
    asked_again = []  # what `detect` asks the high-accuracy mode
    for text in left:
        top = trigrams.compute_language_confidence_values(text)[0]
        if top.language.iso_code_639_1.name != "EN" or top.value < languages.TRIGRAMS_ENGLISH_AT:
            asked_again.append(text)
    accurate.compute_language_confidence_values_in_parallel(asked_again)  # every model loaded
    print(f"{len(left):,} texts to the trigrams, {len(asked_again):,} of them on to the high"
          f" accuracy mode; load {_load()}")

    def serial(detector: Any, texts: list[str]) -> list[tuple[Any, float]]:
        return [(top.language, top.value) for top in
                (detector.compute_language_confidence_values(t)[0] for t in texts)]

    def parallel(detector: Any, texts: list[str]) -> list[tuple[Any, float]]:
        return [(values[0].language, values[0].value)
                for start in range(0, len(texts), batch)
                for values in detector.compute_language_confidence_values_in_parallel(
                    texts[start:start + batch])]

    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    answers: dict[tuple[str, str], list[tuple[Any, float]]] = {}
    for _ in range(runs):
        for stage, detector, texts in (("trigrams", trigrams, left),
                                       ("high accuracy", accurate, asked_again)):
            for how, call in (("one at a time", serial), ("in parallel", parallel)):
                cpu, wall = time.process_time(), time.perf_counter()
                answers[stage, how] = call(detector, texts)
                times.setdefault((stage, how), []).append(
                    (time.process_time() - cpu, time.perf_counter() - wall))
    print(f"\n| stage | how | CPU s (median, range over {runs} runs) | wall s |"
          " languages differing | confidences differing by over 1e-12 |")
    print("|---|---|---:|---:|---:|---:|")
    for (stage, how), measured in times.items():
        ones, theirs = answers[stage, "one at a time"], answers[stage, how]
        languages_differ = sum(a[0] != b[0] for a, b in zip(ones, theirs, strict=True))
        apart = sum(abs(a[1] - b[1]) > 1e-12 for a, b in zip(ones, theirs, strict=True))
        cpu = [c for c, _ in measured]
        wall = [w for _, w in measured]
        print(f"| {stage} | {how} | {statistics.median(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f})"
              f" | {statistics.median(wall):.2f} ({min(wall):.2f}-{max(wall):.2f}) |"
              f" {languages_differ} | {apart} |")
    print(f"load {_load()}")


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
    parser.add_argument("--lingua-batches", type=int, metavar="SIZE",
                        help="instead: lingua one text at a time against in parallel over"
                             " batches of SIZE texts, in this process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lingua_batches:
        lingua_batches(args.corpus, args.runs, args.lingua_batches)
        return 0
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
    print(f"\n| measure (median, range over {args.runs} runs; functions: CPU µs an item) | "
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
    spooled = {r[f"spool {phase}"] for n in names for r in runs[n] for phase in ("cold", "warm")}
    same = "the same in every run" if len(spooled) == 1 else "DIFFERENT"
    print(f"\nspooled records and problems: {same} ({', '.join(sorted(spooled))})")
    return 0 if len(spooled) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
