#!/usr/bin/env python3
"""Bounded work per request (#11, finding 2): the issue's expensive inputs, timed.

Builds a catalog and index of N synthetic items once (`bench/corpus.py` over
the AG News and Reuters text in ``../shared/data``, imported the product's
way, cached under ``bench/out/bounded-<N>/``), then times each input through
the product's whole request path (the Flask app's `/api/search` and
`/api/items/<id>`, in-process). Each run is a fresh process: its first answer
is the cold one (nothing cached), then the same request is repeated and the
median of the repeats is the warm figure, each as wall-clock seconds and as
the process's CPU seconds (less sensitive to a shared machine's load; a run
killed by ``--timeout`` keeps the answers it gave)::

    .venv/bin/python bench/bounded.py --items 100000 --runs 3
    .venv/bin/python bench/bounded.py --items 100000 --runs 3 --before /tmp/before-tree

The inputs:

- ``prefixes``: 32 two-letter prefixes joined by OR (``co* OR pr* OR …``);
- ``prefixes-deep``: the same at ``page=100&per_page=100``, the deepest page
  within the result window;
- ``prefixes-1000``: the same at ``page=1000&per_page=100`` (a 400 now);
- ``phrases``: the 32 most frequent two-word title phrases, joined by OR;
- ``related``: `/api/items/<id>` (an item and its related items) for 5 items.

With ``--before TREE`` (a source tree of an earlier commit, e.g. from ``git
archive``) each run times that code too, input by input, killed after
``--timeout`` seconds (the issue's old server killed its worker after 60).
Prints a JSON report (medians and ranges over the runs, machine, load, date).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PREFIXES = ["co", "pr", "st", "re", "in", "ma", "de", "ex", "ba", "se", "tr", "ch", "pa", "fi",
            "sa", "pe", "mi", "ca", "di", "bo", "ho", "to", "gr", "fo", "ne", "wa", "po", "ra",
            "la", "su", "me", "te"]
INPUTS = ("prefixes", "prefixes-deep", "prefixes-1000", "phrases", "related")
RELATED_ITEMS = 5


def build(work: Path, items: int) -> tuple[Path, Path, Path]:
    sys.path.insert(0, str(HERE))
    import corpus as corpus_mod

    from searchapp import operations
    from searchapp.config import Settings

    catalog, index_dir, data = work / "catalog.sqlite3", work / "index", work / "corpus.jsonl"
    if not catalog.exists():
        corpus_mod.write(data, items)
        settings = Settings.load({"catalog": catalog, "index_dir": index_dir}, environ={})
        operations.import_paths(settings, [data])
    return catalog, index_dir, data


def phrases(data: Path, count: int = 32) -> list[str]:
    """The most frequent two-word phrases of the first 20,000 titles (words over three
    letters, so no stop words)."""
    seen: collections.Counter[str] = collections.Counter()
    with open(data, encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if n >= 20_000:
                break
            words = re.findall(r"[a-z]+", json.loads(line)["title"].lower())
            seen.update(f"{a} {b}" for a, b in itertools.pairwise(words)
                        if len(a) > 3 and len(b) > 3)
    return [p for p, _ in seen.most_common(count)]


def requests_for(name: str, data: Path) -> list[str]:
    prefixes = " OR ".join(f"{p}*" for p in PREFIXES)
    from urllib.parse import urlencode
    if name == "prefixes":
        return ["/api/search?" + urlencode({"q": prefixes})]
    if name == "prefixes-deep":
        return ["/api/search?" + urlencode({"q": prefixes, "page": 100, "per_page": 100})]
    if name == "prefixes-1000":
        return ["/api/search?" + urlencode({"q": prefixes, "page": 1000, "per_page": 100})]
    if name == "phrases":
        return ["/api/search?" + urlencode({"q": " OR ".join(f'"{p}"' for p in phrases(data))})]
    if name == "related":
        return [f"/api/items/bench-{k * 19_997:07d}" for k in range(RELATED_ITEMS)]
    raise ValueError(name)


def worker(catalog: Path, index_dir: Path, data: Path, name: str, repeats: int) -> None:
    """(a fresh process) Time one input: the first answer, then `repeats` more."""
    from searchapp import create_app

    app = create_app({"catalog": catalog, "index_dir": index_dir})
    client = app.test_client()
    client.get("/api/search?q=bank")  # the reader is open, as in a serving process
    paths = requests_for(name, data)
    for _ in range(repeats + 1):
        start, cpu = time.perf_counter(), time.process_time()
        for path in paths:
            response = client.get(path)
            body = response.get_json()
        answer: dict[str, Any] = {"seconds": time.perf_counter() - start,
                                  "cpu": time.process_time() - cpu,
                                  "status": response.status_code}
        if isinstance(body, dict) and "total" in body:
            answer.update(total=body["total"], partial=body.get("partial"),
                          warnings=len(body.get("warnings", ())))
        if isinstance(body, dict) and "related" in body:
            answer.update(related=len(body["related"]), partial=body.get("related_partial"))
        print(json.dumps(answer), flush=True)  # one line per answer: a kill keeps the rest


def run_one(tree: Path, catalog: Path, index_dir: Path, data: Path, name: str, repeats: int,
            timeout: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name,
               "--catalog", str(catalog), "--index-dir", str(index_dir), "--data", str(data),
               "--repeats", str(repeats)]
    try:
        done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True,
                              timeout=timeout, check=False)
        out, killed = done.stdout, False
    except subprocess.TimeoutExpired as exc:
        out, killed = exc.stdout or "", True
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
    else:
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1:]}
    answers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    got: dict[str, Any] = {"answered": len(answers)}
    if killed:
        got["killed_after"] = timeout
    if answers:
        got.update({k: v for k, v in answers[-1].items() if k not in ("seconds", "cpu")})
        got["cold"], got["cold_cpu"] = answers[0]["seconds"], answers[0]["cpu"]
        if len(answers) > 1:
            got["warm"] = statistics.median(a["seconds"] for a in answers[1:])
            got["warm_cpu"] = statistics.median(a["cpu"] for a in answers[1:])
    return got


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5, help="warm repeats per run")
    ap.add_argument("--inputs", default=",".join(INPUTS))
    ap.add_argument("--before", type=Path, help="source tree of the code to compare with")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds, per input and run")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--catalog", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--index-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker(a.catalog, a.index_dir, a.data, a.worker, a.repeats)
        return 0
    work = a.work or HERE / "out" / f"bounded-{a.items}"
    catalog, index_dir, data = build(work, a.items)
    trees = {"after": ROOT} | ({"before": a.before.resolve()} if a.before else {})
    names = [n for n in a.inputs.split(",") if n]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        t: {n: [] for n in names} for t in trees}
    load = [os.getloadavg()[0]]
    for r in range(a.runs):
        for name in names:
            for label, tree in trees.items():  # back to back: the same machine load
                got = run_one(tree, catalog, index_dir, data, name, a.repeats, a.timeout)
                runs[label][name].append(got)
                print(f"[run {r + 1}] {label} {name}: {got}", file=sys.stderr, flush=True)
        load.append(os.getloadavg()[0])
    report: dict[str, Any] = {
        "items": a.items, "runs": a.runs, "repeats": a.repeats,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cores": os.cpu_count(),
                    "load_1min": {"min": min(load), "max": max(load)}},
        "command": "bench/bounded.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    for label in trees:
        summary: dict[str, Any] = {}
        for name, got in runs[label].items():
            figures = {f"{key}_s": spread([g[key] for g in got if key in g])
                       for key in ("cold", "warm", "cold_cpu", "warm_cpu")
                       if any(key in g for g in got)}
            summary[name] = {
                "answer": {k: v for k, v in (got[-1] if got else {}).items()
                           if k not in ("cold", "warm", "cold_cpu", "warm_cpu")},
                "killed": sum(1 for g in got if "killed_after" in g),
                "errors": [g["error"] for g in got if "error" in g],
                **figures,
            }
        report[label] = summary
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
