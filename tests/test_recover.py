"""`searchapp recover`: a lost catalog written anew from the index (#11, finding 8)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from conftest import SAMPLES, Cli, app_over

from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.indexer import IndexStore

FEED_ITEMS = "".join(json.dumps(record) + "\n" for record in (
    {"id": "f1", "title": "Dairy cooperatives merge", "summary": "Two dairies become one.",
     "date": "2021-03-04", "type": "Press release", "url": "https://example.coop/f1",
     "language": "en"},
    {"id": "f2", "title": "Coopératives d'habitants", "language": "fr"},
))


def everything_shown(settings: Settings) -> dict[str, Any]:
    """What readers see: search pages (API and HTML) and every item's page (API and HTML)."""
    shown: dict[str, Any] = {}
    with app_over(settings) as app:
        client = app.test_client()
        for q in ("", "cooperative", "dairy"):
            body = client.get("/api/search", query_string={"q": q, "per_page": 100}).get_json()
            shown[f"search {q}"] = body
            for hit in body["hits"]:
                item = client.get(f"/api/items/{hit['id']}")
                assert item.status_code == 200
                shown[f"item {hit['id']}"] = item.get_json()
                page = client.get(f"/items/{hit['id']}")
                assert page.status_code == 200
                shown[f"page {hit['id']}"] = page.get_data(as_text=True)
    assert shown["search "]["total"] == 37
    return shown


def lose(catalog: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{catalog}{suffix}").unlink(missing_ok=True)


def imported(cli: Cli, tmp_path: Path) -> None:
    assert cli("import", SAMPLES, "-q").exit_code == 0
    feed = tmp_path / "feed.jsonl"
    feed.write_text(FEED_ITEMS, encoding="utf-8")
    result = cli("import", feed, "--org", "ICA", "--url", "https://example.coop/news", "-q")
    assert result.exit_code == 0, result.output


def test_a_deleted_catalog_is_recovered_and_every_page_shows_the_same(
        settings: Settings, cli: Cli, tmp_path: Path) -> None:
    imported(cli, tmp_path)
    before = everything_shown(settings)
    assert before["item f1"]["source_url"] == "https://example.coop/news"
    lose(settings.catalog)
    result = cli("recover")
    assert result.exit_code == 0, result.output
    assert (f"recovered 37 items from index gen-000001 into {settings.catalog}; the index"
            " holds exactly them (no rebuild needed)") in result.stdout
    assert "not recovered (the index does not hold them): the followed sources" in \
        result.stdout
    assert "recovering: 37/37 items" in result.stderr
    assert everything_shown(settings) == before
    assert cli("reindex", "--if-needed").output == "index is up to date; nothing to do\n"
    with app_over(settings) as app:
        assert app.test_client().get("/healthz").get_json()["status"] == "ok"
    # The recovered catalog is a catalog like any other: imports go on from it.
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": "f3", "title": "Dairy farmers vote"}) + "\n")
    result = cli("import", more, "--org", "ICA", "-q")
    assert result.output == "imported: 1 added, 0 updated, 0 unchanged; index updated\n"


def test_a_truncated_catalog_is_moved_aside_and_recovered(
        settings: Settings, cli: Cli, tmp_path: Path) -> None:
    imported(cli, tmp_path)
    before = everything_shown(settings)
    with sqlite3.connect(settings.catalog) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = settings.catalog.read_bytes()
    settings.catalog.write_bytes(data[:len(data) // 3])
    result = cli("recover", "-q")
    assert result.exit_code == 0, result.output
    assert "the catalog it replaced is kept at" in result.stdout
    assert list(settings.catalog.parent.glob("catalog.sqlite3.damaged-*"))
    assert everything_shown(settings) == before


def test_a_catalog_with_items_is_replaced_only_with_force(
        settings: Settings, cli: Cli, tmp_path: Path) -> None:
    imported(cli, tmp_path)
    with sqlite3.connect(settings.catalog) as db:  # a catalog that differs from the index
        db.execute("UPDATE items SET title = 'Edited behind the index' WHERE id = 'f1'")
    result = cli("recover")
    assert result.exit_code == 1
    assert f"the catalog {settings.catalog} holds 37 items; `searchapp recover` fills a lost" \
        " or empty catalog" in result.output and "Nothing was changed" in result.output
    with Catalog(settings.catalog) as catalog:
        edited = catalog.get("f1")
        assert edited is not None and edited.title == "Edited behind the index"
    result = cli("recover", "--force", "-q")
    assert result.exit_code == 0, result.output
    kept = settings.catalog.with_name("catalog.sqlite3.pre-recover")
    assert f"the catalog it replaced is kept at {kept}" in result.stdout
    with Catalog(settings.catalog) as catalog:
        recovered = catalog.get("f1")
        assert recovered is not None and recovered.title == "Dairy cooperatives merge"
        assert catalog.count() == 37
    with Catalog(kept) as catalog:
        old = catalog.get("f1")
        assert old is not None and old.title == "Edited behind the index"


def test_recover_from_a_damaged_index_refuses_and_changes_nothing(
        settings: Settings, cli: Cli, tmp_path: Path) -> None:
    imported(cli, tmp_path)
    lose(settings.catalog)
    gen = IndexStore(settings.index_dir).current()
    assert gen is not None
    terms = min(gen.path.glob("*.trm"))  # one segment's (the feed's import added one)
    terms.unlink()
    result = cli("recover")
    assert result.exit_code == 1
    assert f"{terms.name} is missing" in result.output and "Traceback" not in result.output
    if settings.catalog.exists():
        with Catalog(settings.catalog) as catalog:
            assert catalog.count() == 0
