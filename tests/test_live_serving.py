"""Searching never notices an import or a rebuild (gunicorn, several workers).

A short run of bench/live.py: clients search while a batch is imported and
the whole index is rebuilt into a new generation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import ROOT

from searchapp import operations
from searchapp.config import Settings

sys.path.insert(0, str(ROOT / "bench"))
import live

ITEMS, BATCH = 3_000, 300


def test_searches_through_import_and_rebuild_see_old_or_new_never_partial(
    settings: Settings, tmp_path: Path,
) -> None:
    # The items declare their language: this test is about serving through an import
    # and a rebuild, not about detecting languages (which would load the detector
    # in the import process).
    base = live.write_items(tmp_path / "base.jsonl", ITEMS, language="en")
    operations.import_paths(settings, [base])
    batch = live.write_items(tmp_path / "batch.jsonl", BATCH, start=ITEMS, language="en")
    run, before, after, health = live.live_run(settings.catalog, settings.index_dir, batch,
                                               workers=3, clients=6, settle=1.2)
    assert before[""] == ITEMS and after[""] == ITEMS + BATCH
    assert len(run.samples) > 100
    assert [s for s in run.samples if s.status != 200] == []
    assert [s for s in run.samples if s.total not in (before[s.query], after[s.query])] == []
    # Within a second of the import and of the swap, every worker answers with the new state.
    for mark in ("import_end", "reindex_end"):
        late = [s for s in run.samples if s.at > run.marks[mark] + 1.0]
        assert late, f"no requests after {mark}"
        assert all(s.total == after[s.query] for s in late)
    phases = run.summary()
    assert phases["rebuild"]["requests"] > 0 and phases["import"]["requests"] > 0
    body = json.loads(health)
    assert body["status"] == "ok" and body["documents"] == ITEMS + BATCH
    assert body["generation"] == "gen-000002"
