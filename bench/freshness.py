"""What showing freshness costs: the catalog queries behind `stats` and the page footer.

Builds a catalog of N synthetic items over a few organisations, then times, in
alternating runs: `Catalog.freshness()` (one pass over the items), the
alternative of one `max(date)` lookup per organisation, and
`Catalog.change_stamp()` (what the web layer checks on every page before it
reuses a kept result). Also times storing the items with and without an
(organisation, date) index, the index that would make freshness a lookup but
slows every write. Prints medians and ranges.

    python bench/freshness.py --items 100000 --runs 11
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from searchapp.catalog import Catalog
from searchapp.models import Item


def _items(n: int, organisations: int, seed: int) -> list[Item]:
    rng = random.Random(seed)
    orgs = [f"Organisation {i}" for i in range(organisations)]
    start = dt.date(2000, 1, 1)
    return [Item(id=f"{rng.getrandbits(64):016x}", organisation=rng.choice(orgs),
                 title=f"Item {i}", summary="word " * 60,
                 date=start + dt.timedelta(days=rng.randrange(9000)), source="bench")
            for i in range(n)]


def _per_organisation(db: sqlite3.Connection) -> None:
    for (org,) in db.execute("SELECT DISTINCT organisation FROM items").fetchall():
        db.execute("SELECT max(date) FROM items WHERE organisation = ?", (org,)).fetchone()


def _summary(label: str, seconds: list[float], unit: float = 1000.0, name: str = "ms") -> str:
    return (f"{label}: median {statistics.median(seconds) * unit:.2f} {name},"
            f" range {min(seconds) * unit:.2f}-{max(seconds) * unit:.2f} ({len(seconds)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--organisations", type=int, default=8)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--write-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    items = _items(args.items, args.organisations, args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.sqlite3"
        with Catalog(path) as catalog:
            catalog.upsert(items)
        timings: dict[str, list[float]] = {"freshness": [], "per_org": [], "stamp": []}
        db = sqlite3.connect(path)
        with Catalog(path) as catalog:
            runs: dict[str, Callable[[], object]] = {
                "freshness": catalog.freshness, "per_org": lambda: _per_organisation(db),
                "stamp": catalog.change_stamp}
            for _ in range(args.runs):
                for key, run in runs.items():
                    started = time.perf_counter()
                    run()
                    timings[key].append(time.perf_counter() - started)
        db.close()
    print(f"{args.items:,} items, {args.organisations} organisations")
    print(_summary("  freshness() (one pass)", timings["freshness"]))
    print(_summary("  max(date) per organisation", timings["per_org"]))
    print(_summary("  change_stamp()", timings["stamp"]))

    writes: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.write_runs):
        for indexed in (False, True):
            with tempfile.TemporaryDirectory() as tmp, \
                    Catalog(Path(tmp) / "catalog.sqlite3") as catalog:
                if indexed:
                    catalog._db.execute(
                        "CREATE INDEX items_organisation_date ON items (organisation, date)")
                started = time.perf_counter()
                catalog.upsert(items)
                writes[indexed].append(time.perf_counter() - started)
    print(_summary("  storing them, no extra index", writes[False], 1.0, "s"))
    print(_summary("  storing them, (organisation, date) index", writes[True], 1.0, "s"))


if __name__ == "__main__":
    main()
