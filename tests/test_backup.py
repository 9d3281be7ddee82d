"""`searchapp backup` and `searchapp restore`: real files, real processes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Cli

from searchapp import operations
from searchapp.backup import backup
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.indexer import IndexStore


def write_items(path: Path, n: int, *, start: int = 0, word: str = "harvest") -> Path:
    """English items that say so: an import never loads the language detector for them."""
    with path.open("w", encoding="utf-8") as out:
        for k in range(start, start + n):
            out.write(json.dumps({"id": f"i{k}", "organisation": "ILO", "date": "2021-03-04",
                                  "title": f"{word.title()} report {k}",
                                  "summary": f"The {word} of cooperative number {k}.",
                                  "language": "en"}) + "\n")
    return path


def env_for(settings: Settings) -> dict[str, str]:
    env = {**os.environ, "SEARCHAPP_CATALOG": str(settings.catalog),
           "SEARCHAPP_INDEX_DIR": str(settings.index_dir), "SEARCHAPP_LOCK_TIMEOUT": "60"}
    env.pop("SEARCHAPP_ADMIN_TOKEN", None)
    return env


def searchapp(*args: str | Path) -> list[str]:
    return [str(Path(sys.executable).with_name("searchapp")), *map(str, args)]


def items_in(path: Path) -> set[str]:
    with Catalog(path) as catalog:
        return {item.id for item in catalog.iter_items()}


def test_a_backup_taken_while_another_process_imports_has_all_of_it_or_none(
    settings: Settings, tmp_path: Path,
) -> None:
    operations.import_paths(settings, [write_items(tmp_path / "base.jsonl", 500)])
    batch = write_items(tmp_path / "batch.jsonl", 3_000, start=500)
    before = {f"i{k}" for k in range(500)}
    after = before | {f"i{k}" for k in range(500, 3_500)}
    log = tmp_path / "import.log"
    with log.open("wb") as out:
        importer = subprocess.Popen(searchapp("import", batch), env=env_for(settings),
                                    stdout=out, stderr=subprocess.STDOUT)
    seen: list[set[str]] = []
    during = 0
    while importer.poll() is None or not seen:
        target = tmp_path / f"backup-{len(seen)}.sqlite3"
        running = importer.poll() is None
        backup(settings, target)
        during += running and importer.poll() is None
        seen.append(items_in(target))
        assert not Path(f"{target}-wal").exists()
    assert importer.wait(120) == 0, log.read_text()
    assert during >= 1, "no backup was taken while the import ran"
    assert all(ids in (before, after) for ids in seen), sorted(len(ids) for ids in seen)
    # The command, in its own process, after the import.
    final = tmp_path / "final.sqlite3"
    result = subprocess.run(searchapp("backup", final), env=env_for(settings), check=True,
                            capture_output=True, text=True)
    assert result.stdout.strip() == (f"backed up 3500 items to {final}"
                                     f" ({final.stat().st_size:,} bytes)")
    assert items_in(final) == after


def damage(path: Path) -> None:
    """Overwrite a stretch of pages in the middle of a SQLite file with garbage."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8192] = os.urandom(8192)
    path.write_bytes(bytes(data))


def state(settings: Settings) -> tuple[set[str], str | None, bytes]:
    gen = IndexStore(settings.index_dir).current()
    return (items_in(settings.catalog), gen.name if gen else None,
            settings.catalog.read_bytes())


@pytest.mark.parametrize("spoil", ["damaged", "not_sqlite", "other_database", "missing"])
def test_restoring_a_bad_file_refuses_and_changes_nothing(samples: Settings, cli: Cli,
                                                          tmp_path: Path, spoil: str) -> None:
    bad = tmp_path / "bad.sqlite3"
    if spoil == "damaged":
        operations.import_paths(samples, [write_items(tmp_path / "more.jsonl", 3000)])
        assert cli("backup", bad).exit_code == 0
        damage(bad)
        # integrity_check names the damage, or SQLite refuses the file outright
        expected = f"{bad} is damaged"
    elif spoil == "not_sqlite":
        bad.write_bytes(b"just some text, not a database\n" * 200)
        expected = "is damaged or not a SQLite database"
    elif spoil == "other_database":
        with sqlite3.connect(bad) as db:
            db.execute("CREATE TABLE notes (body TEXT)")
        expected = "is not a searchapp catalog (no items table)"
    else:
        expected = "no such file"
    was = state(samples)
    result = cli("restore", bad)
    assert result.exit_code == 1
    assert expected in result.output
    assert state(samples) == was
    assert not samples.catalog.with_name(samples.catalog.name + ".pre-restore").exists()


def test_restore_brings_back_the_items_and_titles_of_the_backup(samples: Settings, cli: Cli,
                                                                tmp_path: Path) -> None:
    first = write_items(tmp_path / "first.jsonl", 20, word="harvest")
    operations.import_paths(samples, [first])
    backup = tmp_path / "nightly.sqlite3"
    assert cli("backup", backup).exit_code == 0
    in_backup = items_in(backup)
    # After the backup: the same ids get new titles (same count), and more items arrive.
    operations.import_paths(samples, [write_items(tmp_path / "first.jsonl", 20, word="drought")])
    operations.import_paths(samples, [write_items(tmp_path / "later.jsonl", 5, start=100,
                                                  word="drought")])
    assert json.loads(cli("search", "drought", "--json").output)["total"] == 25
    generation = IndexStore(samples.index_dir).current()
    result = cli("restore", backup)
    assert result.exit_code == 0, result.output
    assert f"restored {len(in_backup)} items from {backup}; rebuilt gen-" in result.output
    kept = samples.catalog.with_name(samples.catalog.name + ".pre-restore")
    assert f"the catalog it replaced is kept at {kept}" in result.output
    assert items_in(samples.catalog) == in_backup
    assert len(items_in(kept)) == len(in_backup) + 5
    assert IndexStore(samples.index_dir).current() != generation
    assert json.loads(cli("search", "drought", "--json").output)["total"] == 0
    found = json.loads(cli("search", "harvest", "--json", "--limit", "50").output)
    assert found["total"] == 20
    assert {hit["title"] for hit in found["hits"]} == {f"Harvest report {k}" for k in range(20)}


def test_restore_over_a_damaged_catalog_moves_it_aside(samples: Settings, cli: Cli,
                                                       tmp_path: Path) -> None:
    backup = tmp_path / "good.sqlite3"
    assert cli("backup", backup).exit_code == 0
    in_backup = items_in(backup)
    operations.import_paths(samples, [write_items(tmp_path / "more.jsonl", 3000)])
    damage(samples.catalog)
    Path(f"{samples.catalog}-wal").write_bytes(b"a stale write-ahead log" * 100)
    result = cli("restore", backup)
    assert result.exit_code == 0, result.output
    assert ".damaged-" in result.output
    assert items_in(samples.catalog) == in_backup
    assert json.loads(cli("search", "--json").output)["total"] == len(in_backup)


def test_each_restore_keeps_the_catalog_it_replaced(samples: Settings, cli: Cli,
                                                    tmp_path: Path) -> None:
    """Two restores in a row: the first safety copy is not overwritten by the second."""
    nightly = tmp_path / "nightly.sqlite3"
    assert cli("backup", nightly).exit_code == 0
    kept = []
    for n in (3, 5):
        operations.import_paths(samples, [write_items(tmp_path / f"more{n}.jsonl", n)])
        result = cli("restore", nightly)
        assert result.exit_code == 0, result.output
        kept.append(result.output.split("the catalog it replaced is kept at ")[1].split("\n")[0])
    first, second = map(Path, kept)
    assert first == samples.catalog.with_name("catalog.sqlite3.pre-restore")
    assert second == samples.catalog.with_name("catalog.sqlite3.pre-restore-2")
    assert len(items_in(first)) == len(items_in(nightly)) + 3
    assert len(items_in(second)) == len(items_in(nightly)) + 5


def test_a_backup_into_a_missing_folder_says_so(samples: Settings, cli: Cli,
                                                tmp_path: Path) -> None:
    result = cli("backup", tmp_path / "backups" / "catalog.sqlite3")
    assert result.exit_code == 1
    assert (f"cannot write the backup {tmp_path}/backups/catalog.sqlite3: the folder"
            f" {tmp_path}/backups does not exist (make it first)") in result.stderr
    assert "unable to open database file" not in result.stderr
    assert not (tmp_path / "backups").exists()
