"""The index is compared with the catalog by content, and repaired (#11, finding 4).

Each live generation records the catalog change and fingerprint it holds
(`index/gen-*/SYNCED`). An import whose items were stored but whose index
update failed (killed, a full disk) says so (exit status 3, a failed job with
its result, `/healthz` degraded with the reason, the import log), and the next
import, even an unchanged one, or `reindex --if-needed` indexes what is missing.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, Cli, app_over
from test_faults import catalog_count, live_total, run, searchapp, tmpfs

from searchapp import operations
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.indexer import Generation, IndexStore

sys.path.insert(0, str(ROOT / "bench"))
from live import write_items

TOKEN = "sync-test-token"


def health(settings: Settings) -> dict[str, object]:
    with app_over(settings) as app:
        response = app.test_client().get("/healthz")
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def found(settings: Settings, q: str) -> list[str]:
    with app_over(settings) as app:
        body = app.test_client().get("/api/search", query_string={"q": q}).get_json()
    return [hit["id"] for hit in body["hits"]]


def import_log(settings: Settings) -> list[str]:
    """What the import log says of the index, oldest import first."""
    with Catalog(settings.catalog) as catalog:
        return [row["indexed"] for row in reversed(catalog.imports(limit=100))]


def test_an_edit_that_keeps_the_count_is_seen_and_rebuilt(samples: Settings, cli: Cli) -> None:
    assert health(samples)["status"] == "ok"
    assert cli("reindex", "--if-needed", "-q").output == "index is up to date; nothing to do\n"
    with sqlite3.connect(samples.catalog) as db:  # behind searchapp's back: same count
        (item_id,) = db.execute("SELECT id FROM items ORDER BY id LIMIT 1").fetchone()
        db.execute("UPDATE items SET title = 'Zanzibar clove growers unite' WHERE id = ?",
                   (item_id,))
    assert found(samples, "zanzibar") == []
    result = cli("reindex", "--if-needed", "-q")
    assert result.exit_code == 0, result.output
    assert "the catalog's content differs from what the index holds" in result.output
    assert "rebuilt gen-000002: 35 items" in result.output
    assert found(samples, "zanzibar") == [item_id]
    assert cli("reindex", "--if-needed", "-q").output == "index is up to date; nothing to do\n"


def test_a_reindex_keeps_the_fingerprint_of_what_it_read(samples: Settings, cli: Cli) -> None:
    # A plain reindex sums the fingerprint from the items it indexes (it does not read
    # the catalog a second time for it): an edit made behind searchapp's back is in the
    # new generation, and afterwards the index is current, by the catalog read afresh.
    with sqlite3.connect(samples.catalog) as db:
        (item_id,) = db.execute("SELECT id FROM items ORDER BY id DESC LIMIT 1").fetchone()
        db.execute("UPDATE items SET summary = 'Zanzibar clove growers unite' WHERE id = ?",
                   (item_id,))
    assert cli("reindex", "-q").exit_code == 0
    assert found(samples, "zanzibar") == [item_id]
    with Catalog(samples.catalog) as catalog:
        fresh = catalog.sync_point(recompute=True)
        assert catalog.sync_point() == fresh
    assert IndexStore(samples.index_dir).synced() == fresh
    assert health(samples)["status"] == "ok"
    assert cli("reindex", "--if-needed", "-q").output == "index is up to date; nothing to do\n"


def test_an_edit_behind_searchapps_back_during_a_reindex_is_seen_afterwards(
        samples: Settings, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another program edits two items while the rebuild is reading the catalog. The new
    # generation records the fingerprint of what it read (the read's own snapshot), so
    # the edit is not taken as indexed: `--if-needed` then sees it and rebuilds.
    with sqlite3.connect(samples.catalog) as db:
        first, last = (row[0] for row in db.execute(
            "SELECT id FROM items WHERE id IN ((SELECT MIN(id) FROM items),"
            " (SELECT MAX(id) FROM items)) ORDER BY id"))
    reading = Catalog.iter_items

    def edited_midway(self: Catalog, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        for n, item in enumerate(reading(self, *args, **kwargs)):
            if n == 10:
                with sqlite3.connect(samples.catalog) as db:
                    db.executemany("UPDATE items SET summary = 'Zanzibar clove growers'"
                                   " WHERE id = ?", [(first,), (last,)])
            yield item

    monkeypatch.setattr(Catalog, "iter_items", edited_midway)
    operations.rebuild(samples)
    monkeypatch.setattr(Catalog, "iter_items", reading)
    assert found(samples, "zanzibar") == []  # the rebuild read the items as they were
    with Catalog(samples.catalog) as catalog:
        assert IndexStore(samples.index_dir).synced() != catalog.sync_point(recompute=True)
    result = cli("reindex", "--if-needed", "-q")
    assert result.exit_code == 0, result.output
    assert "the catalog's content differs from what the index holds" in result.output
    assert sorted(found(samples, "zanzibar")) == sorted([first, last])
    assert cli("reindex", "--if-needed", "-q").output == "index is up to date; nothing to do\n"


def test_an_older_copy_of_the_catalog_with_the_same_count_is_seen(
        samples: Settings, cli: Cli, tmp_path: Path) -> None:
    older = tmp_path / "older.sqlite3"
    assert cli("backup", older).exit_code == 0
    with Catalog(samples.catalog) as catalog:
        item = next(catalog.iter_items())
    edited = tmp_path / "edited.jsonl"
    edited.write_text(json.dumps({"id": item.id, "organisation": item.organisation,
                                  "title": "Quinoa growers federate"}) + "\n")
    assert cli("import", edited, "-q").exit_code == 0
    assert found(samples, "quinoa") == [item.id]
    # Put back by copying the file (not `searchapp restore`): same count, older titles.
    for suffix in ("-wal", "-shm"):
        Path(f"{samples.catalog}{suffix}").unlink(missing_ok=True)
    older.replace(samples.catalog)
    body = health(samples)
    assert body["status"] == "degraded" and body["items"] == body["documents"] == 35
    assert "the catalog's content differs from what the index holds" in str(body["problem"])
    result = cli("reindex", "--if-needed", "-q")
    assert result.exit_code == 0 and "rebuilt" in result.output
    assert found(samples, "quinoa") == []
    assert health(samples)["status"] == "ok"


def test_an_import_killed_after_storing_is_repaired_by_the_next_one(
        settings: Settings, cli: Cli, tmp_path: Path) -> None:
    operations.import_paths(settings, [SAMPLES])
    batch = write_items(tmp_path / "batch.jsonl", 4_000, language="en")
    proc = searchapp(settings, "import", str(batch), "--org", "ILO", "-q")
    # Killed the moment the catalog has committed, while the index is being updated.
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        with sqlite3.connect(f"file:{settings.catalog}?mode=ro", uri=True) as db:
            if db.execute("SELECT count(*) FROM items").fetchone()[0] > 35:
                break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    if proc.returncode != -signal.SIGKILL:
        pytest.skip("the import ended before it could be killed")
    assert import_log(settings) == ["rebuilt", "pending"]
    body = health(settings)
    assert body["status"] == "degraded" and body["items"] == 4_035
    assert "4,000 items stored but not indexed" in str(body["problem"])
    assert "the next import or `searchapp reindex --if-needed` indexes them" in \
        str(body["problem"])

    # The same import again: nothing changes in the catalog, and the index catches up.
    result = cli("import", batch, "--org", "ILO", "-q")
    assert result.exit_code == 0, result.output
    assert result.output == ("imported: 0 added, 0 updated, 4000 unchanged; index updated"
                             " (with 4,000 items an earlier import stored but did not"
                             " index)\n")
    with app_over(settings) as app:
        assert app.test_client().get("/api/search").get_json()["total"] == 4_035
    assert health(settings)["status"] == "ok"
    assert import_log(settings) == ["rebuilt", "interrupted before the index was updated",
                                    "updated; repaired 4000 items of earlier imports"]


def test_reindex_if_needed_indexes_only_what_is_missing(settings: Settings,
                                                         tmp_path: Path) -> None:
    operations.import_paths(settings, [SAMPLES])
    store = IndexStore(settings.index_dir)
    before = store.synced()
    assert before is not None
    with Catalog(settings.catalog) as catalog:  # stored, index never told (a kill)
        from searchapp.importers import collect
        more = write_items(tmp_path / "more.jsonl", 30, language="en")
        (parsed,) = collect([more], organisation="ILO")
        catalog.upsert(r.item for r in parsed.records)
    result = run(settings, "reindex", "--if-needed", "-q")
    assert result.returncode == 0, result.stderr
    assert "the index is behind the catalog: 30 items stored but not indexed" in result.stderr
    assert result.stdout.startswith("brought gen-000001 up to date: 30 items indexed")
    assert store.current() is not None and store.current().name == "gen-000001"  # no rebuild
    assert run(settings, "reindex", "--if-needed").stdout == \
        "index is up to date; nothing to do\n"


def test_a_full_index_disk_during_an_import_is_stored_not_indexed_then_repaired(
        tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "700k") as disk:
        settings = Settings.load({"catalog": tmp_path / "catalog.sqlite3",
                                  "index_dir": disk / "index"}, environ={})
        operations.import_paths(settings, [SAMPLES])
        batch = write_items(tmp_path / "batch.jsonl", 3_000, language="en")
        result = run(settings, "import", str(batch), "--org", "ILO", "-q")
        assert result.returncode == 3, result.stderr
        assert result.stdout == ""
        assert "imported: 3000 added, 0 updated, 0 unchanged; stored, but the index was not" \
               " updated: " in result.stderr and "the disk is full" in result.stderr
        assert "Traceback" not in result.stderr
        body = health(settings)
        assert body["status"] == "degraded" and body["documents"] == 35
        assert "3,000 items stored but not indexed (the last import: index not updated:" \
            in str(body["problem"]) and "the disk is full" in str(body["problem"])

        # Over HTTP the job fails (never a plain success) and carries what was stored.
        with app_over(settings, admin_token=TOKEN) as app:
            client = app.test_client()
            response = client.post(
                "/api/admin/imports?wait=120", headers={"Authorization": f"Bearer {TOKEN}"},
                data={"file": (io.BytesIO(b'{"id": "late1", "title": "Dairy cooperatives'
                                          b' merge", "language": "en"}\n'), "late.jsonl"),
                      "organisation": "ICA"}, content_type="multipart/form-data")
            job = response.get_json()
        assert job["state"] == "failed", job
        assert job["error"]["code"] == "stored_not_indexed"
        assert job["result"]["added"] == 1 and job["result"]["index"] == "not updated"
        assert "the disk is full" in job["result"]["index_problem"]

        grown = subprocess.run(["mount", "-o", "remount,size=64m", str(disk)],
                               capture_output=True, check=False)
        assert grown.returncode == 0, grown.stderr
        result = run(settings, "import", str(batch), "--org", "ILO", "-q")
        assert result.returncode == 0, result.stderr
        assert result.stdout == ("imported: 0 added, 0 updated, 3000 unchanged; index"
                                 " updated (with 3,001 items an earlier import stored but"
                                 " did not index)\n")
        assert found(settings, "dairy") == ["late1"]
        assert health(settings)["status"] == "ok"
        log = import_log(settings)
        assert log[1].startswith("not updated: ") and "the disk is full" in log[1]
        assert log[-1] == "updated; repaired 3001 items of earlier imports"


def fill(disk: Path, name: str) -> Path:
    """A file taking every byte still free on `disk`."""
    path = disk / name
    with open(path, "wb") as fh:
        stat = os.statvfs(disk)
        if stat.f_bavail:
            os.posix_fallocate(fh.fileno(), 0, stat.f_bavail * stat.f_frsize)
    return path


def updating(settings: Settings, tmp_path: Path
             ) -> tuple[Generation, set[str], subprocess.Popen[bytes]]:
    """The samples imported, then `searchapp import` of 5,000 more started and caught as
    its index update begins writing (its first file in the live generation): the
    generation, the files it had before, and the running import."""
    assert run(settings, "import", str(SAMPLES), "-q").returncode == 0
    batch = write_items(tmp_path / "batch.jsonl", 5_000, language="en")
    gen = IndexStore(settings.index_dir).current()
    assert gen is not None
    before = set(os.listdir(gen.path))
    proc = searchapp(settings, "import", str(batch), "--org", "ILO", "-q")
    while not set(os.listdir(gen.path)) - before:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.002)
    return gen, before, proc


def test_a_disk_that_fills_during_an_imports_index_update_leaves_the_index_as_it_was(
        tmp_path: Path) -> None:
    # The adversary's finding: catalog and index on one disk, which fills up while
    # `searchapp import` writes its index update. Seen: a traceback and exit status 1
    # (writing "not updated" into the import log failed too), the update's files left in
    # the live generation, and `searchapp reindex` refusing for want of room they took.
    # (64 MB: `reindex` asks for room by the live index's size per item, which the 35
    # samples' small index puts at about 10 KB.)
    with tmpfs(tmp_path / "small", "64m") as disk:
        settings = Settings.load({"catalog": disk / "instance" / "catalog.sqlite3",
                                  "index_dir": disk / "index"}, environ={})
        # The moment the update's writer opens its files (the items stored, the segment
        # gathered in memory before anything is written), the disk fills up.
        gen, before, proc = updating(settings, tmp_path)
        proc.send_signal(signal.SIGSTOP)
        ballast = fill(disk, "ballast")
        proc.send_signal(signal.SIGCONT)
        out, err = (stream.decode() for stream in proc.communicate(timeout=300))
        assert proc.returncode == 3, err  # the CLI's status for "stored, not indexed"
        assert "Traceback" not in err and out == ""
        errors = [line for line in err.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1 and errors[0].startswith(
            "Error: imported: 5000 added, 0 updated, 0 unchanged; stored, but the index was"
            " not updated: the disk is full"), err
        # All of the import in the catalog, none of it in the index, nothing left over.
        assert catalog_count(settings) == 5_035
        assert live_total(settings) == 35
        assert set(os.listdir(gen.path)) == before
        assert not list(settings.index_dir.glob("gen-*.tmp"))
        body = health(settings)
        assert body["status"] == "degraded" and body["documents"] == 35
        assert "5,000 items stored but not indexed" in str(body["problem"])

        # Still full (what the failed import freed taken too): a clear refusal.
        more = fill(disk, "more")
        result = run(settings, "reindex")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("Error: ") == 1
        assert live_total(settings) == 35

        ballast.unlink()  # room again
        more.unlink()
        result = run(settings, "reindex", "-q")
        assert result.returncode == 0, result.stderr
        assert live_total(settings) == 5_035
        assert health(settings)["status"] == "ok"
        later = write_items(tmp_path / "later.jsonl", 500, start=5_000, language="en")
        result = run(settings, "import", str(later), "--org", "ICA", "-q")
        assert result.returncode == 0, result.stderr
        assert result.stdout == "imported: 500 added, 0 updated, 0 unchanged; index updated\n"
        assert live_total(settings) == 5_535
        assert health(settings)["status"] == "ok"


def unlisted(settings: Settings) -> list[str]:
    """Files in the live generation that belong to no segment its table of contents lists
    (and no table of contents, no record of ours)."""
    store = IndexStore(settings.index_dir)
    ix = store.open_index()
    try:
        listed = {segment.segment_id() for segment in ix._segments()}
        gen = store.current()
        assert gen is not None
        return sorted(name for name in os.listdir(gen.path)
                      if name not in ("MAIN_WRITELOCK", "SYNCED")
                      and not re.fullmatch(r"_MAIN_\d+\.toc", name)
                      and name.split(".")[0] not in listed)
    finally:
        ix.close()


def test_what_a_killed_index_update_left_goes_with_the_next_write(settings: Settings,
                                                                  tmp_path: Path) -> None:
    _, _, proc = updating(settings, tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert unlisted(settings) != []  # its segment's files (and Whoosh's temporary folder)
    assert live_total(settings) == 35 and catalog_count(settings) == 5_035
    result = run(settings, "reindex", "--if-needed", "-q")  # an update, not a rebuild
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("brought gen-000001 up to date: 5000 items indexed")
    assert unlisted(settings) == []
    assert live_total(settings) == 5_035
    assert health(settings)["status"] == "ok"
