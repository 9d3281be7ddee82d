"""The facet columns (searchapp.facets.Columns): built from every segment's posting
arrays at once, equal to the term-by-term columns of plain Whoosh, and made ahead
of the first search by the engine's warm-up at a start, a swap and a refresh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import app_over, search

from searchapp import operations
from searchapp.config import Settings
from searchapp.engine import FALLBACKS, open_snapshot
from searchapp.engine.segments import SegmentBuilder
from searchapp.fields import COLUMN_FIELDS
from searchapp.indexer import IndexStore
from searchapp.service import COLUMNS_AT_QUERY_TIME, Engine, SearchQuery


def at_query_time() -> int:
    return int(FALLBACKS.snapshot().get(COLUMNS_AT_QUERY_TIME, 0))


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def news(n: int, **changed: Any) -> dict[str, Any]:
    return {"id": f"n{n}", "organisation": ["ICA", "CECOP", "Legacoop"][n % 3],
            "language": ["en", "fr", "it"][n % 3], "date": f"202{n % 4}-0{n % 9 + 1}-1{n % 9}",
            "title": f"Cooperative news number {n}", "summary": "Worker cooperatives.",
            **changed}


@pytest.mark.parametrize("writer", ["segments", "whoosh"])
def test_the_columns_from_arrays_are_the_term_by_term_ones(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        writer: str) -> None:
    operations.import_paths(settings, [write(tmp_path / "a.jsonl",
                                             [news(n) for n in range(60)])])
    if writer == "whoosh":  # the segment writer failing: the update falls back
        def broken(self: SegmentBuilder) -> None:
            raise RuntimeError("a fault of the segment writer")
        monkeypatch.setattr(SegmentBuilder, "commit", broken)
    # A small import: a new segment, with posting arrays from the segment writer and
    # without from Whoosh's; the items it updates are deleted from the first segment.
    operations.import_paths(settings, [write(tmp_path / "b.jsonl", [
        news(1, language="es", date="2019-12-31"), news(2, language="de"),
        news(100, organisation="DGRV", language="de")])])
    monkeypatch.undo()
    store = IndexStore(settings.index_dir)
    fast = open_snapshot(store.open_index(), choice="arrays")
    plain = open_snapshot(store.open_index(), choice="whoosh")
    try:
        leaves = fast._leaves  # type: ignore[attr-defined]
        assert len(leaves) == 2 and (leaves[1].arrays is None) == (writer == "whoosh")
        assert leaves[0].deleted is not None and len(leaves[0].deleted) == 2
        for name in COLUMN_FIELDS:
            mine, theirs = fast.column(name), plain.column(name)
            assert mine.values == theirs.values, name
            assert np.array_equal(mine.codes, theirs.codes), name
    finally:
        fast.close()
        plain.close()
    with app_over(settings) as app:
        every = search(app.test_client(), q="")
        assert every["total"] == 61
        counts = {v["value"]: v["count"] for v in every["facets"]["organisation"]}
        assert counts == {"ICA": 20, "CECOP": 20, "Legacoop": 20, "DGRV": 1}
        languages = {v["value"]: v["count"] for v in every["facets"]["language"]}
        assert languages == {"en": 20, "fr": 20 - 1, "it": 20 - 1, "es": 1, "de": 2}


def test_the_first_search_after_a_start_a_swap_and_a_refresh_finds_them_made(
        samples: Settings, tmp_path: Path) -> None:
    with app_over(samples) as app:
        client = app.test_client()
        engine: Engine = app.extensions["searchapp.engine"]
        engine.warm()  # what each gunicorn worker does as it starts
        assert engine.warmed(timeout=120)
        before = at_query_time()
        first = search(client, q="women")
        assert first["total"] >= 1 and first["facets"]["organisation"]
        assert at_query_time() == before

        operations.rebuild(samples)  # a new generation swapped in
        # The first search opens it, and finds the columns its warm-up makes first.
        assert search(client, q="women")["facets"] == first["facets"]
        assert engine.warmed(timeout=120)
        assert at_query_time() == before

        operations.import_paths(samples, [write(tmp_path / "more.jsonl", [
            news(7, title="Women in cooperatives", organisation="Women's Co-op")])])
        refreshed = search(client, q="women")  # a refresh: a segment more, new numbering
        organisations = {v["value"]: v["count"] for v in refreshed["facets"]["organisation"]}
        assert organisations["Women's Co-op"] == 1
        assert refreshed["total"] == first["total"] + 1
        assert at_query_time() == before


def test_without_a_warm_up_the_search_builds_them_and_it_is_counted(samples: Settings
                                                                   ) -> None:
    engine = Engine(IndexStore(samples.index_dir), warm_up=False)
    try:
        before = at_query_time()
        page = engine.search(SearchQuery(q="women"))
        assert page.total >= 1 and page.facets["organisation"]
        assert at_query_time() == before + 1
        engine.search(SearchQuery(q="refugees"))  # kept for the snapshot
        assert at_query_time() == before + 1
    finally:
        engine.close()
