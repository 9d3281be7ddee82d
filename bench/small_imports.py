#!/usr/bin/env python3
"""Small imports into a big catalog (#14): `searchapp import` of a few files into a
copy of an existing catalog and index, each run under `bench/peak.py`.

Each run starts from a fresh copy of `--base` (its catalog.sqlite3 and index/, as
`bench/run.py` leaves them in bench/out/<N>/), made under `--work`; the code
imported is the checkout `--code` (its folder goes first on PYTHONPATH, with this
venv). Runs go round the files and checkouts in turn (a, b, a, b, ...) so that the
load falls on both alike. Prints one JSON line per run, then a table of medians
with the range over runs::

    .venv/bin/python bench/small_imports.py --base bench/out/100000 --work /tmp/si \\
        --code before=/tmp/before --code after=. --runs 3 new1k.jsonl new5k.jsonl

The import's summary line (`index updated` or `index rebuilt`) is in each JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from figures import spread

HERE = Path(__file__).resolve().parent
_CLI = "import sys; from searchapp.cli import main; sys.argv[0] = 'searchapp'; sys.exit(main())"


def fresh_copy(base: Path, work: Path) -> tuple[Path, Path]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for path in base.iterdir():
        if path.name.startswith("catalog.sqlite3"):
            shutil.copy2(path, work / path.name)
    shutil.copytree(base / "index", work / "index")
    os.sync()  # the copy's dirty pages written now, not during the import's fsyncs
    return work / "catalog.sqlite3", work / "index"


def run_once(code: Path, base: Path, work: Path, items: Path) -> dict[str, object]:
    catalog, index = fresh_copy(base, work)
    env = {**os.environ, "SEARCHAPP_CATALOG": str(catalog), "SEARCHAPP_INDEX_DIR": str(index),
           "PYTHONPATH": str(code.resolve())}
    done = subprocess.run([sys.executable, str(HERE / "peak.py"), "--", sys.executable, "-c",
                           _CLI, "import", str(items)],
                          env=env, capture_output=True, text=True, check=False,
                          cwd=work)  # not the checkout's folder: `-c` puts the cwd first
    result = json.loads(done.stdout.strip().splitlines()[-1])
    summary = [line for line in done.stderr.splitlines() if line.startswith("imported:")]
    result["summary"] = summary[-1] if summary else done.stderr.strip()[-300:]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--code", action="append", required=True, help="name=checkout")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()
    codes = [(name, Path(path)) for name, path in (c.split("=", 1) for c in args.code)]
    results: dict[tuple[str, str], list[dict[str, object]]] = {}
    for _ in range(args.runs):
        for items in args.files:
            for name, code in codes:
                result = run_once(code, args.base, args.work, items)
                result.update(code=name, items=items.name)
                print(json.dumps(result), flush=True)
                results.setdefault((items.name, name), []).append(result)
    shutil.rmtree(args.work, ignore_errors=True)
    print("\n| items | code | runs | CPU s | wall s | peak MiB summed | load |")
    print("|---|---|---:|---:|---:|---:|---|")
    for (items_name, name), runs in results.items():
        def cell(key: str, runs: list[dict[str, object]] = runs) -> str:
            values = [float(r[key]) for r in runs]  # type: ignore[arg-type]
            return spread(values) if len(values) > 1 else f"{values[0]:.2f}"
        loads = [float(r["load_before"]) for r in runs]  # type: ignore[arg-type]
        print(f"| {items_name} | {name} | {len(runs)} | {cell('cpu_seconds')} | "
              f"{cell('seconds')} | {cell('peak_rss_sum_mb')} | "
              f"{min(loads):.1f}-{max(loads):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
