"""Health checks open what searches need; damaged index files answer 503 or fall back
(#11, finding 5). Each test damages the real files of a live generation."""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import Cli, app_over

from searchapp import operations
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.engine import FALLBACKS, arrayfile, health
from searchapp.engine.arrayfile import DAMAGED
from searchapp.engine.segments import index_segments, segment_files
from searchapp.errors import IndexUnavailable
from searchapp.importers import collect
from searchapp.indexer import MERGE_FACTOR, IndexStore
from searchapp.service import STALE_READ, Engine, SearchQuery

PHRASE = '"social economy"'


def live_file(settings: Settings, suffix: str) -> Path:
    gen = IndexStore(settings.index_dir).current()
    assert gen is not None
    (found,) = [p for p in gen.path.iterdir() if p.name.endswith(suffix)]
    return found


def hits(client: object, q: str) -> list[str]:
    response = client.get("/api/search", query_string={"q": q})  # type: ignore[attr-defined]
    assert response.status_code == 200, response.get_json()
    return [hit["id"] for hit in response.get_json()["hits"]]


@pytest.mark.parametrize("suffix", ["._stored.col", ".trm", ".pst"])
def test_a_missing_segment_file_answers_503_with_the_reason_everywhere(
        samples: Settings, cli: Cli, suffix: str) -> None:
    with app_over(samples) as app:
        some_id = hits(app.test_client(), "cooperative")[0]
    missing = live_file(samples, suffix)
    missing.unlink()
    reason = f"the index is damaged: {missing.name} is missing; run `searchapp reindex`"
    with app_over(samples) as app:  # a worker started after the damage
        client = app.test_client()
        response = client.get("/api/search?q=cooperative")
        assert response.status_code == 503
        error = response.get_json()["error"]
        assert error["code"] == "index_unavailable" and error["message"].startswith(reason)
        health = client.get("/healthz")
        assert health.status_code == 503
        body = health.get_json()
        assert body["status"] == "unavailable" and body["problem"].startswith(reason)
        page = client.get("/?q=cooperative")
        assert page.status_code == 503 and b"Traceback" not in page.data
        assert client.get(f"/api/items/{some_id}").status_code == 503
    result = cli("search", "cooperative")
    assert result.exit_code == 1 and reason in result.output
    result = cli("stats", "--json")
    assert result.exit_code == 0 and reason in json.loads(result.stdout)["index_problem"]
    assert cli("reindex", "-q").exit_code == 0
    with app_over(samples) as app:
        assert app.test_client().get("/healthz").get_json()["status"] == "ok"


def damage(path: Path, *, where: str) -> None:
    """Random bytes over part of an arrays file: its header, or its arrays."""
    data = bytearray(path.read_bytes())
    rng = random.Random(11)
    span = range(20, 400) if where == "header" else range(len(data) - 3_000, len(data) - 16)
    for at in span:
        data[at] = rng.randrange(256)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["header", "arrays"])
def test_random_bytes_in_an_arrays_file_fall_back_counted_and_show_in_health(
        samples: Settings, cli: Cli, where: str) -> None:
    with app_over(samples) as app:
        client = app.test_client()
        before = {q: hits(client, q) for q in (PHRASE, "cooperative", "housing OR energy")}
        assert before[PHRASE]
        FALLBACKS.clear()
        damage(live_file(samples, ".arrays"), where=where)  # while this worker serves
        after = {q: hits(client, q) for q in before}
        assert after == before  # the same answers, from Whoosh's postings
        health = client.get("/healthz")
        assert health.status_code == 200
        body = health.get_json()
        assert body["status"] == "degraded"
        assert ".arrays is damaged (" in body["problem"]
        assert "searches of those segments read Whoosh's postings instead" in body["problem"]
        assert body["engine"]["fallbacks"][DAMAGED] >= 1
        assert body["checked"]["arrays"] == 0 and body["checked"]["segments"] == 1
    result = cli("stats", "--json")
    assert ".arrays is damaged" in json.loads(result.stdout)["index_problem"]
    assert cli("reindex", "-q").exit_code == 0
    with app_over(samples) as app:
        body = app.test_client().get("/healthz").get_json()
        assert body["status"] == "ok" and body["checked"]["arrays"] == 1


def test_healthz_reports_what_it_checked(samples: Settings) -> None:
    with app_over(samples) as app:
        body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "ok"
    assert body["checked"]["segments"] == 1 and body["checked"]["arrays"] == 1
    assert body["checked"]["files"] >= 4


def test_any_flipped_byte_or_cut_of_an_arrays_file_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    fields = {"title": {"terms": ["a", "b", "c"],
                        "starts": np.asarray([0, 2, 3, 5], dtype=np.int64),
                        "ids": np.asarray([0, 4, 2, 1, 3], dtype=np.int32),
                        "weights": rng.random(5).astype(np.float32),
                        "freqs": np.asarray([1, 2, 1, 1, 3], dtype=np.int32),
                        "positions": np.arange(8, dtype=np.int32),
                        "position_starts": np.asarray([0, 3, 4, 8], dtype=np.int64)}}
    arrayfile.write_arrays(str(tmp_path), "seg", 5, fields)
    path = tmp_path / "seg.arrays"
    good = path.read_bytes()
    assert arrayfile.verify(str(path), 5) is None
    assert arrayfile.verify(str(path), 6) is not None  # another segment's file
    for at in range(len(good)):
        bad = bytearray(good)
        bad[at] ^= 0x5A
        path.write_bytes(bytes(bad))
        assert arrayfile.verify(str(path), 5) is not None, f"byte {at} flipped unnoticed"
    for size in (0, 10, len(good) // 2, len(good) - 1):
        path.write_bytes(good[:size])
        assert arrayfile.verify(str(path), 5) is not None
        assert arrayfile.open_arrays(str(path), 5) is None


def test_a_stored_column_cut_short_while_serving_answers_503_with_the_reason(
        samples: Settings) -> None:
    # The page's items are read from the column file directly (`segments.StoredFields`):
    # a file cut short under a serving worker is an error the health check explains,
    # never a crash of the worker.
    with app_over(samples) as app:
        client = app.test_client()
        assert hits(client, "cooperative")
        column = live_file(samples, "._stored.col")
        with column.open("r+b") as fh:
            fh.truncate(100)
        response = client.get("/api/search?q=cooperative")
        assert response.status_code == 503
        error = response.get_json()["error"]
        assert error["code"] == "index_unavailable"
        assert error["message"].startswith("the index is damaged")
        assert client.get("/healthz").status_code == 503


def write_items(path: Path, start: int, n: int) -> Path:
    """English items (an import never loads the language detector for them)."""
    path.write_text("".join(json.dumps({
        "id": f"h{k:04d}", "organisation": "ILO", "date": "2021-03-04", "language": "en",
        "title": f"Cooperative housing report {k}", "summary": f"The housing of {k}."})
        + "\n" for k in range(start, start + n)), encoding="utf-8")
    return path


def segment_ids(store: IndexStore) -> set[str]:
    ix = store.open_index()
    try:
        return {segment.segment_id() for segment in index_segments(ix)}
    finally:
        ix.close()


def merging(settings: Settings, tmp_path: Path) -> IndexStore:
    """An index whose next 5-item import merges its small segments away: a rebuild of 60
    items, then MERGE_FACTOR - 1 imports of 5 (`indexer.merge_plan`)."""
    outcome = operations.import_paths(settings, [write_items(tmp_path / "0.jsonl", 0, 60)])
    assert outcome.index == "rebuilt"
    for n in range(1, MERGE_FACTOR):
        outcome = operations.import_paths(
            settings, [write_items(tmp_path / f"{n}.jsonl", 55 + 5 * n, 5)])
        assert outcome.index == "updated"
    store = IndexStore(settings.index_dir)
    assert len(segment_ids(store)) == MERGE_FACTOR
    return store


def merge(settings: Settings, store: IndexStore, tmp_path: Path) -> None:
    """The import that merges the small segments away (their files deleted)."""
    before = segment_ids(store)
    outcome = operations.import_paths(settings, [write_items(tmp_path / "m.jsonl", 200, 5)])
    assert outcome.index == "updated"
    after = segment_ids(store)
    assert len(before - after) == MERGE_FACTOR - 1 and len(after) == 2
    folder, _ = segment_files_of(store)
    assert not [name for name in os.listdir(folder)
                if name.startswith(tuple(f"{segid}." for segid in before - after))]


def segment_files_of(store: IndexStore) -> tuple[str, list[str]]:
    ix = store.open_index()
    try:
        listed = segment_files(ix)
    finally:
        ix.close()
    assert listed is not None
    return listed


def test_a_check_whose_segments_an_import_merges_away_checks_the_new_ones(
        settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Stop 22: /healthz answered 503 "the index is damaged ... run `searchapp reindex`"
    # during small imports. The check opened a reader over a table of contents, an
    # import's update merged those segments away and deleted their files, and the check
    # then read the stored fields, which Whoosh opens only then. Here the same, in that
    # order: two checks opened, a real import, then the reads.
    store = merging(settings, tmp_path)
    raw, checking = health.Look(store), health.Look(store)
    merge(settings, store, tmp_path)
    try:  # read as it was opened, the old table of contents looks damaged...
        seen = raw.read()
        assert any("stored fields of document 0 cannot be read" in why for why in seen.broken)
        assert raw.replaced()
    finally:
        raw.close()
    caplog.set_level(logging.INFO, "searchapp.engine.health")
    found = health.check(store, first=checking)  # ...the check reads the new one instead
    assert found.problem() is None, found.problem()
    assert found.segments == 2 and found.arrays == 2
    assert "checked again in the new one" in caplog.text
    with app_over(settings) as app:
        body = app.test_client().get("/healthz").get_json()
        assert body["status"] == "ok" and body["checked"]["segments"] == 2


def test_damage_that_the_new_table_of_contents_still_has_is_reported(
        settings: Settings, tmp_path: Path) -> None:
    store = merging(settings, tmp_path)
    checking = health.Look(store)
    merge(settings, store, tmp_path)
    folder, ids = segment_files_of(store)
    gone = next(name for name in sorted(os.listdir(folder))
                if name.endswith("._stored.col") and name.startswith(tuple(ids)))
    os.unlink(os.path.join(folder, gone))  # a file of a segment the new TOC lists
    found = health.check(store, first=checking)
    assert found.broken == [f"{gone} is missing"]
    with app_over(settings) as app:
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        assert response.get_json()["problem"].startswith(
            f"the index is damaged: {gone} is missing; run `searchapp reindex`")


@pytest.mark.parametrize("recorded", [False, True])
def test_healthz_says_an_import_is_under_way_while_the_index_lock_is_held(
        samples: Settings, tmp_path: Path, recorded: bool) -> None:
    # An import stores its items in the catalog, then updates the index, holding the
    # index lock throughout. A check between the two finds the index behind the catalog;
    # one that counts the index's documents before the update and reads its sync record
    # after it (`recorded`) finds the same record and different counts. Either is an
    # import going by, not a reason to rebuild.
    store = IndexStore(samples.index_dir)
    (parsed,) = collect([write_items(tmp_path / "more.jsonl", 0, 5)], organisation="ILO")
    with Catalog(samples.catalog) as catalog:
        items = catalog.count()
        catalog.upsert(r.item for r in parsed.records)
        if recorded:
            store.mark_synced(catalog.sync_point())
    with app_over(samples) as app:
        client = app.test_client()
        with store.lock():
            assert store.busy()
            response = client.get("/healthz")
            body = response.get_json()
            assert response.status_code == 200 and body["status"] == "degraded"
            said = (f"the index holds {items:,} documents and the catalog {items + 5:,} items"
                    if recorded else
                    "the index is behind the catalog: 5 items stored but not indexed yet")
            assert body["problem"] == (f"{said}: an import or rebuild is under way (the index"
                                       " lock is held): look again once it has finished")
        assert not store.busy()
        body = client.get("/healthz").get_json()  # the lock let go, it stays so: advice
        assert body["status"] == "degraded"
        assert body["problem"].endswith("run `searchapp reindex`" if recorded else
                                        "the next import or `searchapp reindex --if-needed`"
                                        " indexes them")


def test_a_read_whose_segments_an_import_merged_away_is_a_503_to_ask_again(
        settings: Settings, tmp_path: Path) -> None:
    # The same race in a search: its snapshot opened, then an import merges segments away
    # (their files deleted) before the read opens their stored columns. The index is
    # sound: the answer is a 503 asking again (not a 500, not "damaged"), and the next
    # request reads the new table of contents.
    store = merging(settings, tmp_path)
    engine = Engine(store)
    try:
        # (`_reading` is what every request does around its reads.)
        with pytest.raises(IndexUnavailable) as raised, engine._reading():
            snapshot = engine._current()
            merge(settings, store, tmp_path)
            for doc in range(75):  # the 60 rebuilt, then 3 imports' 5 each
                snapshot.stored(doc)
        assert str(raised.value) == STALE_READ
        page = engine.search(SearchQuery(q="housing", per_page=100))
        assert page.total == 80 and len(page.hits) == 80
    finally:
        engine.close()
