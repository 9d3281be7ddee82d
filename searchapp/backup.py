"""Backups of the catalog, restoring one, and recovering a lost one from the index.

A backup is one self-contained SQLite file written with SQLite's online backup
API: a consistent snapshot (every import in it whole or not at all) taken while
the service searches and imports. Copying the file with `cp` is not safe: a
commit may still sit in the ``-wal`` file beside it.

A restore checks the file first (``PRAGMA integrity_check``, and that it is a
searchapp catalog), keeps the catalog it replaces beside it, writes the backup
into the catalog through the same API (so SQLite handles the live file, its
``-wal`` and ``-shm`` as one database; no file is ever swapped under them), and
then rebuilds the index from the restored catalog.

Recovering (`recover`) is for when there is no backup: the index stores every
field of every item, so a lost, truncated or damaged catalog is written anew
from the live generation's stored fields, and the index is then marked as
holding exactly that catalog (no rebuild). What only the catalog kept is not
recovered (`NOT_RECOVERED`).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from searchapp import operations
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.errors import CatalogError, CatalogMissing, IndexUnavailable, SearchappError
from searchapp.indexer import IndexStore
from searchapp.models import Item
from searchapp.schema import from_stored

# What makes a SQLite file a searchapp catalog: these tables with at least these columns.
REQUIRED = {
    "items": {"id", "organisation", "title", "summary", "date", "year", "type", "url",
              "language", "source", "added_at", "updated_at"},
    "imports": {"id", "at", "sources", "added", "updated", "unchanged", "skipped"},
}
PRE_RESTORE_SUFFIX = ".pre-restore"
PRE_RECOVER_SUFFIX = ".pre-recover"
# What the index does not hold, so `recover` cannot bring back.
NOT_RECOVERED = ("the followed sources (add them again with `searchapp sources add`)",
                 "the import log and the admin jobs",
                 "when each item was first added and last changed (now the recovery's time)")


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
        raise CatalogMissing(settings.catalog)
    if target.resolve() == settings.catalog.resolve():
        raise CatalogError("the backup cannot be written over the catalog itself")
    if target.is_dir():
        raise CatalogError(f"{target} is a directory; give the backup's file name")
    if not target.parent.is_dir():
        raise CatalogError(f"cannot write the backup {target}: the folder"
                           f" {target.parent.absolute()} does not exist (make it first)")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with Catalog(settings.catalog, create=False) as catalog, \
                closing(sqlite3.connect(partial)) as copy:
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


def restore(settings: Settings, source: Path, *,
            progress: operations.Progress = operations._quiet) -> RestoreOutcome:
    """Replace the catalog's content with the backup at `source`, then rebuild the index
    (telling `progress` as it goes)."""
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
        # The backup is the truth.
        rebuilt = operations.rebuild(settings, allow_shrink=True, progress=progress)
    except SearchappError as exc:
        raise IndexUnavailable(f"the catalog was restored ({items} items) but the index was not"
                               f" rebuilt: {exc}; run `searchapp reindex`") from exc
    return RestoreOutcome(items, previous, rebuilt)


@dataclass(frozen=True, slots=True)
class RecoverOutcome:
    items: int
    generation: str
    previous: Path | None  # where the catalog it replaced (or the damaged one) was kept


def recover(settings: Settings, *, force: bool = False,
            progress: operations.Progress = operations._quiet) -> RecoverOutcome:
    """Write the catalog anew from the live index's stored fields (see the module docstring).

    Refuses (`CatalogError`, nothing changed) when the catalog opens and holds items,
    unless `force`: then it is kept beside as `<catalog>.pre-recover` and its items are
    replaced. A catalog too damaged to open is moved aside whole, like `restore` does.
    Raises `IndexUnavailable` when the index cannot be read.
    """
    store = IndexStore(settings.index_dir, title_boost=settings.title_boost)
    store.open_index().close()  # IndexUnavailable before the lock's file makes a folder
    with store.lock(timeout=settings.lock_timeout):
        gen = store.current()
        documents = store.document_count()  # IndexUnavailable: nothing to recover from
        assert gen is not None
        previous = None
        try:
            with Catalog(settings.catalog) as catalog:
                held = catalog.count()
        except CatalogError:
            held = None
        if held is None or (settings.catalog.exists() and _damaged(settings.catalog)):
            previous = _keep_previous(settings.catalog)  # moved aside: a fresh file follows
        elif held:
            if not force:
                raise CatalogError(
                    f"the catalog {settings.catalog} holds {held:,} items; `searchapp recover`"
                    f" fills a lost or empty catalog from the index ({documents:,} documents)."
                    " Nothing was changed. To replace its items with the index's anyway, run"
                    " `searchapp recover --force` (the catalog is kept beside it first)")
            previous = _free_name(settings.catalog, PRE_RECOVER_SUFFIX)
            backup(Settings(catalog=settings.catalog), previous)
        items = _stored_items(store)
        with Catalog(settings.catalog) as catalog:
            report = catalog.upsert(operations._counted(items, "recovering", documents,
                                                        progress),
                                    sources=[f"recovered from index {gen.name}"],
                                    replace=True)
            if catalog.count() != documents:
                raise CatalogError(f"recovered {catalog.count():,} items but the index holds"
                                   f" {documents:,} documents; run `searchapp recover` again")
            # The index holds exactly this catalog now: no rebuild needed.
            store.mark_synced(catalog.sync_point(), gen)
            catalog.record_indexed([report.log_id], f"unchanged (recovered from {gen.name})")
    return RecoverOutcome(documents, gen.name, previous)


def _damaged(path: Path) -> bool:
    try:
        check(path)
    except CatalogError:
        return True
    return False


def _stored_items(store: IndexStore) -> Iterator[Item]:
    """Every live document's stored fields, as items, read as they are stored."""
    ix = store.open_index()
    try:
        with ix.reader() as reader:
            for _, stored in reader.iter_docs():
                yield from_stored(stored)
    except (SearchappError, GeneratorExit):
        raise
    except Exception as exc:
        raise IndexUnavailable(f"the index cannot be read to recover the catalog"
                               f" ({exc.__class__.__name__}: {exc}); nothing was"
                               " stored") from exc
    finally:
        ix.close()


def _keep_previous(catalog: Path) -> Path | None:
    """Keep the catalog about to be replaced: a backup of it, or the damaged files moved aside."""
    if not catalog.exists():
        return None
    kept = _free_name(catalog, PRE_RESTORE_SUFFIX)
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


def _free_name(catalog: Path, suffix: str) -> Path:
    """`<catalog><suffix>`, or the first of `<catalog><suffix>-2`, `-3`, … not taken: a
    copy kept by an earlier restore or recovery is never overwritten."""
    kept = catalog.with_name(catalog.name + suffix)
    number = 1
    while kept.exists():
        number += 1
        kept = catalog.with_name(f"{catalog.name}{suffix}-{number}")
    return kept
