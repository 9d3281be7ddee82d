"""What the index/catalog sync and the deep health check cost (#11, findings 4 and 5).

Over N synthetic items (bench/live.py's generator) in a temporary directory:

- storing them in the catalog (`Catalog.upsert`, one transaction), which now
  also marks each item with its change and keeps the fingerprint; with
  `--before TREE` the same upsert is timed from another checkout's
  `searchapp` (run in a child process), alternating, for the ratio;
- reading the fingerprint afresh from every item (`reindex --if-needed`);
- `/healthz`'s check of the live generation (`Engine.check`): the first
  time in a process (the arrays files' checksums computed) and after
  (cached while the files do not change);
- a whole `/healthz` request, warm.

    python bench/health.py --items 100000 --runs 5 [--before /tmp/before]

Prints one JSON line per run, then medians with their range.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from live import write_items

UPSERT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from searchapp.catalog import Catalog
from searchapp.importers import collect
(parsed,) = collect([Path(sys.argv[2])], organisation="ILO")
items = [r.item for r in parsed.records]
with Catalog(Path(sys.argv[3])) as catalog:
    started = time.perf_counter()
    catalog.upsert(items)
    print(time.perf_counter() - started)
"""


def upsert_seconds(tree: Path, items: Path, catalog: Path) -> float:
    out = subprocess.run([sys.executable, "-c", UPSERT, str(tree), str(items), str(catalog)],
                         capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return float(out.stdout.strip().splitlines()[-1])


def one_run(n: int, folder: Path, before: Path | None) -> dict[str, float]:
    from searchapp import create_app, operations
    from searchapp.catalog import Catalog
    from searchapp.config import Settings
    from searchapp.search import Engine

    items = write_items(folder / "items.jsonl", n)
    result: dict[str, float] = {}
    result["upsert_after_s"] = upsert_seconds(ROOT, items, folder / "after.sqlite3")
    if before is not None:
        result["upsert_before_s"] = upsert_seconds(before, items, folder / "before.sqlite3")
    settings = Settings.load({"catalog": folder / "catalog.sqlite3",
                              "index_dir": folder / "index"}, environ={})
    operations.import_paths(settings, [items], organisation="ILO")
    with Catalog(settings.catalog) as catalog:
        started = time.perf_counter()
        catalog.sync_point(recompute=True)
        result["fingerprint_s"] = time.perf_counter() - started
    engine = Engine.from_settings(settings)
    try:
        started = time.perf_counter()
        checked = engine.check()
        result["check_first_s"] = time.perf_counter() - started
        assert checked.problem() is None, checked.problem()
        started = time.perf_counter()
        engine.check()
        result["check_again_s"] = time.perf_counter() - started
    finally:
        engine.close()
    result["arrays_mb"] = sum(p.stat().st_size for p in (folder / "index").glob(
        "gen-*/*.arrays")) / 1e6
    app = create_app({"catalog": settings.catalog, "index_dir": settings.index_dir})
    client = app.test_client()
    assert client.get("/healthz").get_json()["status"] == "ok"
    started = time.perf_counter()
    for _ in range(5):
        client.get("/healthz")
    result["healthz_warm_s"] = (time.perf_counter() - started) / 5
    app.extensions["searchapp.engine"].close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout, for the upsert ratio")
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            result = one_run(args.items, Path(folder), args.before)
        print(json.dumps({k: round(v, 4) for k, v in result.items()}), flush=True)
        runs.append(result)
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"{key}: median {statistics.median(values):.3f}"
              f" (range {min(values):.3f}-{max(values):.3f})")
    if args.before is not None:
        ratios = [r["upsert_after_s"] / r["upsert_before_s"] for r in runs]
        print(f"upsert after/before: median {statistics.median(ratios):.2f}"
              f" (range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
