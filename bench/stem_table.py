#!/usr/bin/env python3
"""What loading the rebuild's stem tables costs, and the share of it their check takes.

Reads the ``stems-*.pickle`` files a rebuild left in an index folder (build one
with ``searchapp import`` of ``bench/corpus.py``'s items into an empty catalog)
as `segments.StemTable` does at the start of every rebuild and update, and
times, as medians of ``--runs``: the whole load (read, check, unpickle, merge),
the check alone (header, length and CRC-32 of each table) and the unpickling::

    .venv/bin/python bench/corpus.py --items 100000 --out /tmp/corpus-100000.jsonl
    SEARCHAPP_CATALOG=/tmp/st/catalog.sqlite3 SEARCHAPP_INDEX_DIR=/tmp/st/index \\
        .venv/bin/searchapp import /tmp/corpus-100000.jsonl -q
    .venv/bin/python bench/stem_table.py /tmp/st/index
"""

from __future__ import annotations

import argparse
import glob
import os
import pickle
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from searchapp.engine import segments


def median_ms(work: Callable[[], object], runs: int) -> float:
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        took.append(time.perf_counter() - started)
    return statistics.median(took) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="an index folder holding stems-*.pickle")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    paths = sorted(glob.glob(os.path.join(glob.escape(args.folder), "stems-*.pickle")))
    if not paths:
        sys.exit(f"no stem tables in {args.folder}")
    segments._stems_fingerprint()  # once per process, as in a build
    blobs = [Path(p).read_bytes() for p in paths]
    entries = sum(len(t) for t in segments.StemTable(args.folder).known.values())
    print(f"{len(paths)} tables, {sum(map(len, blobs)):,} bytes, {entries:,} words")
    whole = median_ms(lambda: segments.StemTable(args.folder), args.runs)
    check = median_ms(lambda: [segments._stems_payload(b) for b in blobs], args.runs)
    loads = median_ms(lambda: [pickle.loads(segments._stems_payload(b)) for b in blobs],
                      args.runs)
    print(f"load (read, check, unpickle, merge): {whole:.1f} ms")
    print(f"check (header, length, CRC-32):      {check:.2f} ms ({check / whole:.1%})")
    print(f"check and unpickle:                  {loads:.1f} ms")


if __name__ == "__main__":
    main()
