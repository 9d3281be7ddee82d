from __future__ import annotations

from pathlib import Path

import pytest

from searchapp.catalog import Catalog
from searchapp.models import Item, build_item


def items(n: int, *, summary: str = "") -> list[Item]:
    return [build_item({"id": f"i{k}", "title": f"Item {k}", "summary": summary,
                        "date": f"2016-01-{k + 1:02d}"}, organisation="ILO") for k in range(n)]


def test_upsert_reports_added_updated_unchanged(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat:
        first = cat.upsert(items(3), sources=["a.jsonl"])
        assert (first.added, first.updated, first.unchanged) == (3, 0, 0)
        again = cat.upsert(items(3), sources=["a.jsonl"])
        assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
        changed = cat.upsert(items(4, summary="new"), sources=["b.jsonl"])
        assert (changed.added, changed.updated, changed.unchanged) == (1, 3, 0)
        assert cat.count() == 4
        assert cat.get("i0") is not None and cat.get("i0").summary == "new"  # type: ignore[union-attr]
        log = cat.imports()
        assert [entry["sources"] for entry in log] == ["b.jsonl", "a.jsonl", "a.jsonl"]
        assert log[0]["updated"] == 3


def test_a_failing_import_writes_nothing(tmp_path: Path) -> None:
    def exploding() -> object:
        yield from items(2)
        raise RuntimeError("disk on fire")

    with Catalog(tmp_path / "c.db") as cat:
        cat.upsert(items(1))
        with pytest.raises(RuntimeError):
            cat.upsert(exploding())  # type: ignore[arg-type]
        assert cat.count() == 1
        assert len(cat.imports()) == 1


def test_catalog_uses_wal_and_reads_in_id_order(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat:
        cat.upsert(reversed(items(12)))
        assert [i.id for i in cat.iter_items(batch=5)] == sorted(f"i{k}" for k in range(12))
        assert cat._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
