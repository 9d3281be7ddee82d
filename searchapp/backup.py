"""Backups of the catalog, and restoring one.

A backup is one self-contained SQLite file written with SQLite's online backup
API: a consistent snapshot (every import in it whole or not at all) taken while
the service searches and imports. Copying the file with `cp` is not safe: a
commit may still sit in the ``-wal`` file beside it.

A restore checks the file first (``PRAGMA integrity_check``, and that it is a
searchapp catalog), keeps the catalog it replaces beside it, writes the backup
into the catalog through the same API (so SQLite handles the live file, its
``-wal`` and ``-shm`` as one database; no file is ever swapped under them), and
then rebuilds the index from the restored catalog.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from searchapp import operations
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.errors import CatalogError, IndexUnavailable, SearchappError
from searchapp.indexer import IndexStore

# What makes a SQLite file a searchapp catalog: these tables with at least these columns.
REQUIRED = {
    "items": {"id", "organisation", "title", "summary", "date", "year", "type", "url",
              "language", "source", "added_at", "updated_at"},
    "imports": {"id", "at", "sources", "added", "updated", "unchanged", "skipped"},
}
PRE_RESTORE_SUFFIX = ".pre-restore"


@dataclass(frozen=True, slots=True)
class BackupOutcome:
    path: Path
    items: int
    bytes: int


@dataclass(frozen=True, slots=True)
class RestoreOutcome:
    items: int
    previous: Path | None  # where the replaced catalog was kept
    rebuild: operations.RebuildOutcome


def backup(settings: Settings, target: Path) -> BackupOutcome:
    """Write a consistent copy of the catalog to `target` (replaced atomically if it exists)."""
    target = Path(target)
    if not settings.catalog.exists():
        raise CatalogError(f"there is no catalog at {settings.catalog} to back up")
    if target.resolve() == settings.catalog.resolve():
        raise CatalogError("the backup cannot be written over the catalog itself")
    if target.is_dir():
        raise CatalogError(f"{target} is a directory; give the backup's file name")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with Catalog(settings.catalog) as catalog, closing(sqlite3.connect(partial)) as copy:
            catalog.backup_to(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
        items = check(partial)
        os.replace(partial, target)
    except OSError as exc:
        raise CatalogError(f"cannot write the backup {target}: {exc.strerror or exc}") from exc
    except sqlite3.Error as exc:
        raise CatalogError(f"backup failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return BackupOutcome(target, items, target.stat().st_size)


def check(path: Path) -> int:
    """The number of items in the catalog file at `path`; `CatalogError` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such file")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check(10)")]
            if problems != ["ok"]:
                raise CatalogError(f"{path} is damaged (PRAGMA integrity_check:"
                                   f" {'; '.join(problems)})")
            for table, columns in REQUIRED.items():
                found = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if not found:
                    raise CatalogError(f"{path} is not a searchapp catalog (no {table} table)")
                if columns - found:
                    raise CatalogError(f"{path} is not a searchapp catalog ({table} lacks"
                                       f" {', '.join(sorted(columns - found))})")
            return int(db.execute("SELECT count(*) FROM items").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise CatalogError(f"{path} is damaged or not a SQLite database ({exc})") from exc


def restore(settings: Settings, source: Path) -> RestoreOutcome:
    """Replace the catalog's content with the backup at `source`, then rebuild the index."""
    source = Path(source)
    if source.exists() and settings.catalog.exists() and source.samefile(settings.catalog):
        raise CatalogError("that is the catalog itself, not a backup of it")
    items = check(source)
    store = IndexStore(settings.index_dir)
    with store.lock(timeout=settings.lock_timeout):
        previous = _keep_previous(settings.catalog)
        try:
            with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro",
                                         uri=True)) as backup_db, \
                    Catalog(settings.catalog) as catalog:
                catalog.restore_from(backup_db)
        except sqlite3.Error as exc:
            raise CatalogError(f"restore failed, the catalog is unchanged: {exc}") from exc
    try:
        rebuilt = operations.rebuild(settings, allow_shrink=True)  # the backup is the truth
    except SearchappError as exc:
        raise IndexUnavailable(f"the catalog was restored ({items} items) but the index was not"
                               f" rebuilt: {exc}; run `searchapp reindex`") from exc
    return RestoreOutcome(items, previous, rebuilt)


def _keep_previous(catalog: Path) -> Path | None:
    """Keep the catalog about to be replaced: a backup of it, or the damaged files moved aside."""
    if not catalog.exists():
        return None
    kept = catalog.with_name(catalog.name + PRE_RESTORE_SUFFIX)
    try:
        check(catalog)
    except CatalogError:
        # Unreadable or damaged: move it and its -wal/-shm aside whole; start a fresh file.
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        kept = catalog.with_name(f"{catalog.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = catalog.with_name(catalog.name + suffix)
            if part.exists():
                os.replace(part, kept.with_name(kept.name + suffix))
        return kept
    backup(Settings(catalog=catalog), kept)
    return kept
