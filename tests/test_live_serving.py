"""Searching never notices an import or a rebuild (gunicorn, several workers).

A short run of bench/live.py: clients search while a batch is imported and
the whole index is rebuilt into a new generation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import ROOT

from searchapp import operations
from searchapp.config import Settings

sys.path.insert(0, str(ROOT / "bench"))
import live

ITEMS, BATCH = 3_000, 300


@pytest.mark.parametrize("via", ["cli", "api"])
def test_searches_through_import_and_rebuild_see_old_or_new_never_partial(
    settings: Settings, tmp_path: Path, via: str,
) -> None:
    """With the command line, or as an operator's script would over HTTP: the batch
    uploaded as an import job and the rebuild asked for as a job, each followed to
    `succeeded` at its `Location`."""
    operations.import_paths(settings, [live.write_items(tmp_path / "base.jsonl", ITEMS)])
    batch = live.write_items(tmp_path / "batch.jsonl", BATCH, start=ITEMS)
    run, before, after, health = live.live_run(settings.catalog, settings.index_dir, batch,
                                               workers=3, clients=6, settle=1.2,
                                               via_api=via == "api", token="t0ken")
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
    if via == "api":
        imported, rebuilt = run.jobs["import"], run.jobs["reindex"]
        assert imported["accepted"] == rebuilt["accepted"] == 202
        assert imported["job"]["result"]["added"] == BATCH
        assert rebuilt["job"]["result"]["documents"] == ITEMS + BATCH
        assert rebuilt["job"]["result"]["generation"] == "gen-000002"
        for job in (imported, rebuilt):
            assert job["seen"][0][0] in ("queued", "running")
            assert job["seen"][-1] == ("succeeded", "done") and job["polls"] > 0
    else:
        assert run.jobs == {}


def test_a_job_the_api_refuses_is_reported_not_followed(
    samples: Settings, tmp_path: Path,
) -> None:
    """The script stops with the API's answer when the job is not accepted."""
    env = live.env_for(samples.catalog, samples.index_dir, token="right")
    with live.gunicorn(env, workers=1) as base:
        with pytest.raises(live.JobFailed, match="answered 401"):
            live.run_job(base, "wrong", "/api/admin/reindex", timeout=30)
        with pytest.raises(live.JobFailed, match="answered 400.*'file'"):
            live.run_job(base, "right", "/api/admin/imports", data=b"x=1",
                         content_type="application/x-www-form-urlencoded", timeout=30)
