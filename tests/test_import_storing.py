"""Storing an import's records from its spool (#14): SQLite copies the new items in
batches of the spool, in one transaction, with `upsert`'s rules and fingerprint."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import Cli
from test_streaming import stats, write_jsonl

from searchapp import catalog as catalog_module
from searchapp.catalog import Catalog, item_digest
from searchapp.config import Settings
from searchapp.models import DETECTED, Item


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    """Records stored 7 at a time, so a small file spans several batches."""
    monkeypatch.setattr(catalog_module, "SPOOLED_BATCH", 7)
    return 7


def _in_step(settings: Settings) -> None:
    """The fingerprint kept up to date by the import is the one read from every item."""
    with Catalog(settings.catalog) as catalog:
        assert catalog.sync_point() == catalog.sync_point(recompute=True)


def _title(settings: Settings, item_id: str) -> str | None:
    with Catalog(settings.catalog) as catalog:
        item = catalog.get(item_id)
    return item.title if item else None


def test_an_import_over_several_batches_stores_every_item_once(
        cli: Cli, settings: Settings, tmp_path: Path, small_batches: int) -> None:
    first = write_jsonl(tmp_path / "first.jsonl", 30)
    # s2 (first batch) and s25 (fourth) again in a later file: the later one wins.
    second = tmp_path / "second.jsonl"
    second.write_text("".join(json.dumps({"id": f"s{k}", "organisation": "ICA",
                                          "title": f"Renamed {k}", "language": "en"}) + "\n"
                              for k in (25, 2)), encoding="utf-8")
    result = cli("import", first, second)
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported: 30 added, 0 updated, 0 unchanged; index rebuilt\n"
    assert "storing: 30/30 items" in result.stderr
    assert stats(cli)["items"] == 30
    assert (_title(settings, "s2"), _title(settings, "s25")) == ("Renamed 2", "Renamed 25")
    assert _title(settings, "s29") == "Cooperative housing report number 29"
    assert json.loads(cli("search", "--json", "renamed").stdout)["total"] == 2
    _in_step(settings)


def test_a_second_import_updates_what_changed_in_any_batch(
        cli: Cli, settings: Settings, tmp_path: Path, small_batches: int) -> None:
    assert cli("import", write_jsonl(tmp_path / "a.jsonl", 30)).exit_code == 0
    changed = write_jsonl(tmp_path / "b.jsonl", 30, bad={
        k: json.dumps({"id": f"s{k - 1}", "organisation": "ICA", "date": "2020-05-01",
                       "title": f"Revised report {k - 1}"}) for k in (3, 15, 28)})
    result = cli("import", changed, write_jsonl(tmp_path / "c.jsonl", 4, start=30))
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported: 4 added, 3 updated, 27 unchanged; index updated\n"
    assert _title(settings, "s14") == "Revised report 14"
    assert json.loads(cli("search", "--json", "revised").stdout)["total"] == 3
    _in_step(settings)
    # The same files again: nothing changed, and the index is left as it is.
    result = cli("import", changed, tmp_path / "c.jsonl")
    assert result.stdout == "imported: 0 added, 0 updated, 34 unchanged; index unchanged\n"
    _in_step(settings)


def test_an_address_learnt_later_is_kept_without_counting_as_a_change(
        cli: Cli, settings: Settings, tmp_path: Path, small_batches: int) -> None:
    items = write_jsonl(tmp_path / "a.jsonl", 20)
    assert cli("import", items).exit_code == 0
    result = cli("import", items, "--url", "https://news.example.org/feed")
    assert result.stdout == "imported: 0 added, 0 updated, 20 unchanged; index updated\n"
    with Catalog(settings.catalog) as catalog:
        assert {item.source_url for item in catalog.iter_items()} == {
            "https://news.example.org/feed"}
    _in_step(settings)
    # Another address later changes nothing: the first one found stays.
    result = cli("import", items, "--url", "https://other.example.org/")
    assert result.stdout == "imported: 0 added, 0 updated, 20 unchanged; index unchanged\n"


def test_a_failure_while_storing_a_later_batch_stores_nothing(
        cli: Cli, settings: Settings, tmp_path: Path, small_batches: int) -> None:
    assert cli("import", write_jsonl(tmp_path / "a.jsonl", 5)).exit_code == 0
    before = stats(cli)
    # The catalog itself refuses one row of the fourth batch (a trigger: SQLite's own
    # refusal, as a full disk or a constraint would be).
    with sqlite3.connect(settings.catalog) as db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON items WHEN NEW.id = 's25'"
                   " BEGIN SELECT RAISE(ABORT, 'row refused'); END")
    result = cli("import", write_jsonl(tmp_path / "b.jsonl", 30, start=3))
    assert result.exit_code == 1
    assert "import failed, nothing stored: row refused" in result.stderr
    assert stats(cli) == before
    with Catalog(settings.catalog) as catalog:
        assert catalog.count() == 5 and len(catalog.imports()) == 1
    _in_step(settings)
    assert not list(settings.catalog.parent.glob(".import-*"))  # the spool is gone


def test_an_invalid_record_past_the_first_batchs_length_stores_nothing(
        cli: Cli, tmp_path: Path, small_batches: int) -> None:
    # Refused while reading, before any batch is stored (a failure while storing a later
    # batch is test_a_failure_while_storing_a_later_batch_stores_nothing).
    big = write_jsonl(tmp_path / "big.jsonl", 30, bad={24: '{"id": "x", "title": "No org"}'})
    result = cli("import", big)
    assert result.exit_code == 1
    assert f"{big}:24: organisation is missing" in result.stderr
    assert stats(cli)["items"] == 0


def test_detected_languages_are_stored_with_their_confidence(
        cli: Cli, settings: Settings, tmp_path: Path, small_batches: int) -> None:
    items = write_jsonl(tmp_path / "a.jsonl", 10)  # no language: each is detected
    assert cli("import", items).exit_code == 0
    with Catalog(settings.catalog) as catalog:
        stored = list(catalog.iter_items())
    assert {(item.language, item.language_origin) for item in stored} == {("en", DETECTED)}
    assert all(item.language_confidence is not None for item in stored)
    assert cli("import", items).stdout.startswith("imported: 0 added, 0 updated, 10 unchanged")
    _in_step(settings)


def test_an_items_digest_hashes_its_fields_in_order() -> None:
    """The fingerprint's definition: stored catalogs and index generations carry it."""
    import datetime as dt
    import hashlib

    item = Item(id="a/1", organisation="ICA", title="Café", summary="x\x1fy",
                date=dt.date(2020, 1, 2), url=None, language="fr", source="f.jsonl",
                language_origin=DETECTED, language_confidence=0.734)
    text = "\x1f".join("\x00" if v is None else str(v) for v in (
        "a/1", "ICA", "Café", "x\x1fy", dt.date(2020, 1, 2), "News", None, "fr", "f.jsonl",
        None, DETECTED, 0.734))
    expected = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(),
                              "little")
    assert item_digest(item) == expected


def test_an_id_of_another_organisation_refuses_the_spool_whole(
        settings: Settings, tmp_path: Path, small_batches: int) -> None:
    # `Spool.check` finds these first; the catalog still refuses them if given one.
    from searchapp import importers
    from searchapp.importers.spool import Spool

    with Catalog(settings.catalog) as catalog:
        catalog.upsert([Item(id="s12", organisation="ILO", title="Decent work")])
        with Spool(tmp_path / "work") as spool:
            importers.collect([write_jsonl(tmp_path / "a.jsonl", 20, language="en")],
                              spool=spool)
            with pytest.raises(catalog_module.CatalogError) as refused:
                catalog.upsert_spooled(spool.file)
        assert str(refused.value) == ("import refused, nothing stored: id 's12' belongs to"
                                      " an item of ILO, not ICA")
        assert catalog.count() == 1 and len(catalog.imports()) == 1
        assert catalog.sync_point() == catalog.sync_point(recompute=True)
