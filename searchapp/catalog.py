"""The SQLite catalog: the source of truth for items and the import log.

The index is derived from this and can always be rebuilt from it. Each import
is one transaction: it lands whole or not at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import hashlib
import itertools
import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from searchapp.errors import (
    BadParameter,
    CatalogDamaged,
    CatalogError,
    CatalogMissing,
    ReadOnly,
)
from searchapp.fields import FACETS
from searchapp.models import GIVEN, Item
from searchapp.sources import Source

if TYPE_CHECKING:
    from searchapp.jobs import Job

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id           TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    title        TEXT NOT NULL,
    summary      TEXT NOT NULL DEFAULT '',
    date         TEXT,
    year         INTEGER,
    type         TEXT NOT NULL,
    url          TEXT,
    language     TEXT NOT NULL DEFAULT 'en',
    source       TEXT NOT NULL DEFAULT '',
    source_url   TEXT,
    added_at     TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    change       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_organisation ON items (organisation);
CREATE INDEX IF NOT EXISTS items_year ON items (year);
CREATE TABLE IF NOT EXISTS imports (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    sources    TEXT NOT NULL,
    added      INTEGER NOT NULL,
    updated    INTEGER NOT NULL,
    unchanged  INTEGER NOT NULL,
    skipped    INTEGER NOT NULL,
    indexed    TEXT
);
CREATE TABLE IF NOT EXISTS sources (
    name          TEXT PRIMARY KEY,
    organisation  TEXT NOT NULL,
    url           TEXT NOT NULL UNIQUE,
    kind          TEXT,
    language      TEXT,
    every         INTEGER NOT NULL,
    selectors     TEXT NOT NULL DEFAULT '{}',
    etag          TEXT,
    last_modified TEXT,
    last_fetched  TEXT,
    last_ok       TEXT,
    last_result   TEXT,
    last_error    TEXT,
    last_error_at TEXT,
    items_seen    INTEGER NOT NULL DEFAULT 0,
    added_at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    phase      TEXT NOT NULL,
    done       INTEGER,
    total      INTEGER,
    created    TEXT NOT NULL,
    started    TEXT,
    finished   TEXT,
    params     TEXT NOT NULL DEFAULT '{}',
    result     TEXT,
    error      TEXT,
    pid        INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
"""

# Columns of the jobs table holding JSON, and the ones a job may change.
_JOB_JSON = ("params", "result", "error")
_JOB_FIELDS = ("state", "phase", "done", "total", "started", "finished", "result", "error",
               "pid")

_COLUMNS = ("id", "organisation", "title", "summary", "date", "type", "url", "language", "source",
            "source_url", "language_origin", "language_confidence")
_INSERT = (f"INSERT INTO items ({', '.join(_COLUMNS)}, year, added_at, updated_at, change)"
           f" VALUES ({', '.join('?' * len(_COLUMNS))}, ?, ?, ?, ?)")
_UPSERT_BATCH = 500
# Records of a spool stored at a time by `Catalog.upsert_spooled` (a span of seq numbers),
# and which of them are new.
SPOOLED_BATCH = 10_000
_SPOOLED_NEW = ("r.seq >= ? AND r.seq < ?"
                " AND NOT EXISTS (SELECT 1 FROM items i WHERE i.id = r.id)")
# Columns added after 0.1.0, created on catalogs made before them: (table, column) → type.
_ADDED_COLUMNS = {("items", "source_url"): "TEXT",
                  ("items", "change"): "INTEGER NOT NULL DEFAULT 0",
                  ("imports", "indexed"): "TEXT",
                  # Items stored before languages were detected have no language_origin:
                  # theirs was given (or the old default, English), and they read as given.
                  ("items", "language_origin"): "TEXT",
                  ("items", "language_confidence"): "REAL"}
# Made after the columns they index exist.
_ADDED_INDEXES = "CREATE INDEX IF NOT EXISTS items_change ON items (change);"
# What the import log says of the index while an import is bringing it up to date (an
# importer killed meanwhile leaves it so, until the next import or rebuild says more).
INDEX_PENDING = "pending"


def item_digest(item: Item) -> int:
    """64 bits of a hash of every field of `item`. Their sum (mod 2**64) over the items
    is the catalog's fingerprint: it changes with any field of any item, in any order."""
    return values_digest(_values(item))


def values_digest(values: Sequence[Any]) -> int:
    """`item_digest` of the item whose `_values` (its columns, in `_COLUMNS` order, which
    is the order of its fields) these are."""
    text = "\x1f".join(["\x00" if v is None else str(v) for v in values])
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


_MASK = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class SyncPoint:
    """Which catalog, at which change, with which content: what an index generation
    records it was brought up to (searchapp.indexer), and what the catalog is at now.

    `catalog` is a random id made with the catalog (a backup and its restore share it);
    `change` counts the transactions that changed items; `fingerprint` is the sum of
    every item's `item_digest`, as 16 hex digits."""

    catalog: str
    change: int
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {"catalog": self.catalog, "change": self.change,
                "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: Any) -> SyncPoint:
        """The point in `data` (a ValueError when it is not one)."""
        try:
            point = cls(str(data["catalog"]), int(data["change"]), str(data["fingerprint"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a sync point: {data!r}") from exc
        return point


def _hex(value: int) -> str:
    return f"{value & _MASK:016x}"


class DigestSum:
    """The catalog's fingerprint summed from the items as a reader that reads every one
    of them anyway (a full rebuild) takes them (`passing`), instead of reading them all
    a second time (`Catalog.sync_point(recompute=True)`)."""

    def __init__(self) -> None:
        self.total = 0

    def passing(self, items: Iterable[Item]) -> Iterator[Item]:
        """`items`, each added to the sum as it goes by."""
        for item in items:
            self.total += values_digest(_values(item))
            yield item

    def point(self, at: SyncPoint) -> SyncPoint:
        """`at` (the catalog and change the items were read at) with the summed
        fingerprint: right once every item has gone by."""
        return SyncPoint(at.catalog, at.change, _hex(self.total))


@dataclass(frozen=True, slots=True)
class OrganisationFreshness:
    organisation: str
    has_items: bool  # False for an organisation known only from a source not yet read
    newest: dt.date | None  # the newest item's date
    last_refresh: dt.datetime | None  # the last successful refresh of any of its sources
    followed: bool = False  # whether any source is followed for it

    def to_dict(self) -> dict[str, Any]:
        return {"organisation": self.organisation, "has_items": self.has_items,
                "newest": self.newest.isoformat() if self.newest else None,
                "last_refresh": _iso(self.last_refresh), "followed": self.followed}


@dataclass(frozen=True, slots=True)
class Freshness:
    """How current the catalog is: for stats and the search page footer."""

    changed_at: dt.datetime | None  # the last time an item was added, changed or removed
    organisations: list[OrganisationFreshness]

    def to_dict(self) -> dict[str, Any]:
        return {"changed_at": _iso(self.changed_at),
                "organisations": [o.to_dict() for o in self.organisations]}


@dataclass(slots=True)
class ImportReport:
    """What one import did to the catalog."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    log_id: int | None = None  # its row in the import log

    def to_dict(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": self.skipped}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _item_of(values: Sequence[Any], start: int = 0) -> Item:
    """The item whose columns, in `_COLUMNS` order, begin at `start` in `values`."""
    (item_id, organisation, title, summary, date, kind, url, language, source, source_url,
     origin, confidence) = values[start:start + len(_COLUMNS)]
    return Item(id=item_id, organisation=organisation, title=title, summary=summary,
                date=dt.date.fromisoformat(date) if date else None, type=kind, url=url,
                language=language, source=source, source_url=source_url,
                language_origin=origin or GIVEN, language_confidence=confidence)


def _refuses_writes(exc: OSError | sqlite3.Error) -> bool:
    """Whether `exc` is the disk or the permissions refusing a write."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN"))


def _damaged(exc: BaseException) -> bool:
    """Whether `exc` says the catalog file is no SQLite database or a damaged one."""
    name = getattr(exc, "sqlite_errorname", "")
    return name in ("SQLITE_NOTADB", "SQLITE_CORRUPT")


def _row_to_item(row: sqlite3.Row) -> Item:
    """The item of a row read by column name (`SELECT *`)."""
    return _item_of([row[column] for column in _COLUMNS])


class Catalog:
    """A connection to the catalog database; use as a context manager."""

    def __init__(self, path: Path, *, timeout: float = 30.0, reading: bool = False,
                 create: bool | None = None) -> None:
        """`timeout`: how long a write waits for another writer before failing.

        A catalog that cannot be written (a read-only disk or mount, its
        permissions) is `ReadOnly`; with `reading` (for what only reads: pages,
        items, health) it is opened read-only instead, and `read_only` says so.

        `create` (default: not `reading`): a missing file (and its folder) is made,
        as a first import wants; without it a missing catalog is `CatalogMissing`,
        never replaced by an empty one (a catalog moved away while serving).
        """
        self.path = Path(path)
        self.read_only = False
        self.timeout = timeout
        create = not reading if create is None else create
        if not create and not self.path.exists():
            raise CatalogMissing(self.path)
        try:
            self._db = self._open(timeout, create=create)
        except (OSError, sqlite3.Error) as exc:
            if not create and not self.path.exists():  # gone since the look above
                raise CatalogMissing(self.path) from exc
            if _damaged(exc):
                raise CatalogDamaged(self.path, exc) from exc
            if not _refuses_writes(exc):
                raise CatalogError(f"cannot open catalog {self.path}: {exc}") from exc
            if not reading:
                raise _read_only(self.path, exc) from exc
            self._db = self._open_read_only(timeout)
            self.read_only = True

    def _open(self, timeout: float, *, create: bool) -> sqlite3.Connection:
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite opens a file it may not write read-only without a word, and fails only
        # at the first write: ask first (a read-only mount, its permissions).
        if self.path.exists():
            self._check_writable()
        if create:
            db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        else:  # `mode=rw`: a file that went away meanwhile is an error, not made anew
            db = sqlite3.connect(self.path.resolve().as_uri() + "?mode=rw", uri=True,
                                 timeout=timeout, isolation_level=None)
        self._db = db
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            self._add_missing_columns()
            db.executescript(_ADDED_INDEXES)
            self._start_sync_point()
        except BaseException:
            db.close()
            raise
        return db

    def _check_writable(self) -> None:
        """An OSError when the catalog file may not be written now."""
        if not os.access(self.path, os.W_OK):
            raise OSError(errno.EACCES, "the file cannot be written", str(self.path))

    def _open_read_only(self, timeout: float) -> sqlite3.Connection:
        """The catalog opened for reading only: as it is on disk, or, when SQLite cannot
        share it read-only (no write-ahead index beside it and a folder that cannot be
        written), as a file nothing changes (`immutable`: it is on a read-only disk)."""
        uri = self.path.resolve().as_uri()
        for mode in ("?mode=ro", "?mode=ro&immutable=1"):
            db = sqlite3.connect(uri + mode, uri=True, timeout=timeout, isolation_level=None)
            try:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error as exc:
                db.close()
                failed = exc
                continue
            db.row_factory = sqlite3.Row
            return db
        if not self.path.exists():
            raise CatalogMissing(self.path) from failed
        if _damaged(failed):
            raise CatalogDamaged(self.path, failed) from failed
        raise CatalogError(f"cannot open catalog {self.path}, not even to read it:"
                           f" {failed}") from failed

    def _add_missing_columns(self) -> None:
        columns: dict[str, set[str]] = {}
        for (table, name), kind in _ADDED_COLUMNS.items():
            present = columns.get(table)
            if present is None:
                present = columns[table] = {
                    row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if name not in present:
                try:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):  # another process added it first
                        raise

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: object) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         (key, str(value)))

    def _start_sync_point(self) -> None:
        """Give a catalog made before sync points (or a new one) its id, change count and
        fingerprint, once (the fingerprint reads every item)."""
        if self._meta("fingerprint") is not None and self._meta("catalog_id") is not None:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if self._meta("catalog_id") is None:
                self._set_meta("catalog_id", secrets.token_hex(8))
            if self._meta("fingerprint") is None:
                self._set_meta("fingerprint", _hex(self._fingerprint()))
                self._set_meta("change", self._meta("change") or 0)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _fingerprint(self) -> int:
        total = 0
        for item in self.iter_items():
            total += item_digest(item)
        return total & _MASK

    def sync_point(self, *, recompute: bool = False) -> SyncPoint:
        """Where the catalog is now: its id, change count and fingerprint.

        The fingerprint is kept up to date by every change made through searchapp;
        `recompute` reads every item instead (a change made behind searchapp's back,
        such as an UPDATE in the sqlite3 shell, shows only then).
        """
        fingerprint = _hex(self._fingerprint()) if recompute else self._meta("fingerprint")
        return SyncPoint(self._meta("catalog_id") or "", int(self._meta("change") or 0),
                         fingerprint or "")

    def refingerprint(self, fresh: SyncPoint | None = None) -> SyncPoint:
        """The sync point with the fingerprint read afresh from every item, and kept so
        (for a full rebuild, which reads every item anyway: a change made behind
        searchapp's back then stops showing as a difference). `fresh`: that point, if
        the caller has just read it under the same lock."""
        point = fresh if fresh is not None else self.sync_point(recompute=True)
        self._set_meta("fingerprint", point.fingerprint)
        return point

    def removed_at(self) -> int:
        """The last change that removed items (an index behind it must be rebuilt)."""
        return int(self._meta("removed_at_change") or 0)

    def changed_since(self, change: int) -> Generator[Item, None, None]:
        """The items added or changed by changes after `change`, in id order."""
        return self._items("WHERE change > ? ORDER BY id", (change,))

    def _items(self, where: str, params: tuple[Any, ...] = (), *,
               batch: int = 5_000) -> Generator[Item, None, None]:
        """The items of `SELECT … FROM items {where}`, read `batch` rows at a time (as
        plain tuples of `_COLUMNS`: a quarter faster than by column name)."""
        with closing(self._db.cursor()) as cur:
            cur.row_factory = None
            cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM items {where}", params)
            while rows := cur.fetchmany(batch):
                yield from map(_item_of, rows)

    def items_of(self, ids: Iterable[str]) -> Generator[Item, None, None]:
        """The stored items with these ids (absent ids are left out), a few hundred at a
        time."""
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            yield from self._items(f"WHERE id IN ({', '.join('?' * len(chunk))})",
                                   tuple(chunk))

    def count_changed_since(self, change: int) -> int:
        return int(self._db.execute("SELECT count(*) FROM items WHERE change > ?",
                                    (change,)).fetchone()[0])

    def record_indexed(self, log_ids: Iterable[int | None], what: str) -> None:
        """Say in the import log what became of the index after these imports."""
        try:
            for log_id in log_ids:
                if log_id is not None:
                    self._db.execute("UPDATE imports SET indexed = ? WHERE id = ?",
                                     (what, log_id))
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot write the import log in {self.path}: {exc}") from exc

    def record_interrupted(self, *, keep: Iterable[int | None] = ()) -> int:
        """Imports still `pending` in the log (other than `keep`) were cut off before
        their index update ended (the caller holds the index lock, so none is running);
        say so. How many were."""
        kept = [k for k in keep if k is not None]
        where = f" AND id NOT IN ({', '.join('?' * len(kept))})" if kept else ""
        try:
            return int(self._db.execute(
                f"UPDATE imports SET indexed = ? WHERE indexed = ?{where}",
                ("interrupted before the index was updated", INDEX_PENDING, *kept)).rowcount)
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot write the import log in {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM items").fetchone()[0])

    def get(self, item_id: str) -> Item | None:
        row = self._db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return _row_to_item(row) if row else None

    def organisations_of(self, ids: Iterable[str]) -> dict[str, str]:
        """The organisation of each of `ids` already stored (absent ids are left out)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = self._db.execute(
                f"SELECT id, organisation FROM items WHERE id IN ({', '.join('?' * len(chunk))})",
                chunk)
            found.update((row["id"], row["organisation"]) for row in rows)
        return found

    def iter_items(self, *, batch: int = 5_000) -> Generator[Item, None, None]:
        """Every item in id order, read in batches so memory stays flat."""
        return self._items("ORDER BY id", batch=batch)

    def upsert(self, items: Iterable[Item], *, sources: Iterable[str] = (),
               skipped: int = 0, replace: bool = False) -> ImportReport:
        """Store items in one transaction and log the import.

        An item whose content is unchanged is left alone (its source too), so
        re-importing the same file reports everything unchanged. Its `source_url`
        is only filled in where it had none: an article found through a second
        feed or page keeps the first one's. Items written are marked with this
        transaction's change number, and the fingerprint follows them
        (`sync_point`). With `replace`, every item stored before is removed
        first, in the same transaction (`searchapp recover --force`).
        """
        report = ImportReport(skipped=skipped)
        now = _now()
        db = self._db
        with self._immediate("import failed, nothing stored"):
            change = int(self._meta("change") or 0) + 1
            fingerprint = int(self._meta("fingerprint") or "0", 16)
            if replace and db.execute("DELETE FROM items").rowcount:
                fingerprint = 0
                self._set_meta("removed_at_change", change)
                self._set_meta("items_removed_at", now)
            # In batches: one look-up for a batch's ids, one statement for its new items.
            given = iter(items)
            while batch := list(itertools.islice(given, _UPSERT_BATCH)):
                fingerprint += self._upsert_batch(batch, now, change, report)
            if db.execute("SELECT 1 FROM items WHERE change = ? LIMIT 1",
                          (change,)).fetchone() or replace:
                self._set_meta("change", change)
                self._set_meta("fingerprint", _hex(fingerprint))
            report.log_id = self._log_import(now, sources, report)
        return report

    def _immediate(self, failed: str) -> AbstractContextManager[None]:
        """One write transaction: committed at the end of the block, rolled back if it
        raises; a database error is raised as a CatalogError that starts with `failed`."""
        return self._transaction(lambda: self._db.execute("BEGIN IMMEDIATE"),
                                 lambda exc: CatalogError(f"{failed}: {exc}"))

    @contextmanager
    def _transaction(self, begin: Callable[[], object],
                     failed: Callable[[sqlite3.Error], CatalogError]
                     ) -> Generator[None, None, None]:
        """A write transaction `begin` starts: committed at the end of the block, rolled
        back if it raises; a database error is raised as `failed(error)`."""
        db = self._db
        try:
            begin()
            yield
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise failed(exc) from exc
            raise

    def _log_import(self, now: str, sources: Iterable[str], report: ImportReport) -> int | None:
        """Add the import to the log (its index pending); its row id."""
        return self._db.execute(
            "INSERT INTO imports (at, sources, added, updated, unchanged, skipped, indexed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now, "\n".join(sources), report.added, report.updated,
             report.unchanged, report.skipped, INDEX_PENDING)).lastrowid

    def upsert_spooled(self, spool: Path, *, sources: Iterable[str] = (), skipped: int = 0,
                       progress: Callable[[int, int], None] | None = None) -> ImportReport:
        """`upsert` the records waiting in an import's spool, in one transaction, and log
        the import; SQLite copies the new items itself, Python sees only the records
        whose id is stored already.

        `spool` is the SQLite file of a checked `searchapp.importers.spool.Spool`: its
        table `records` holds at most one record per id, each with an item's columns
        (`_COLUMNS`), its `year` and its `digest` (`item_digest`, as a signed 64-bit
        integer). The rules are `upsert`'s: an id stored for another organisation
        refuses the whole import, an item whose content changed is updated, one whose
        content did not is left alone (its `source_url` filled in where it had none),
        the others are added.
        `progress` is told the records stored so far and how many there are, every
        `SPOOLED_BATCH` records and at the end.
        """
        report = ImportReport(skipped=skipped)
        now = _now()
        db = self._db
        try:
            db.execute("ATTACH DATABASE ? AS spool", (str(spool),))
        except sqlite3.Error as exc:
            raise CatalogError(f"import failed, nothing stored: cannot read the import's"
                               f" working file {spool}: {exc}") from exc
        try:
            with self._immediate("import failed, nothing stored"):
                total, first, last = db.execute(
                    "SELECT count(*), min(seq), max(seq) FROM spool.records").fetchone()
                change = int(self._meta("change") or 0) + 1
                fingerprint = int(self._meta("fingerprint") or "0", 16)
                done = 0
                if progress is not None:
                    progress(0, total)
                for start in range(first or 0, (last or -1) + 1, SPOOLED_BATCH):
                    bounds = (start, start + SPOOLED_BATCH)
                    fingerprint += self._store_spooled_stored(bounds, now, change, report)
                    # The new items: their digests, then the items themselves, in seq order.
                    digests = db.execute(
                        f"SELECT r.digest FROM spool.records r WHERE {_SPOOLED_NEW}", bounds)
                    fingerprint += sum(d for (d,) in digests)
                    report.added += db.execute(
                        f"INSERT INTO items ({', '.join(_COLUMNS)}, year, added_at, updated_at,"
                        f" change) SELECT {', '.join(f'r.{c}' for c in _COLUMNS)}, r.year, ?, ?, ?"
                        f" FROM spool.records r WHERE {_SPOOLED_NEW} ORDER BY r.seq",
                        (now, now, change, *bounds)).rowcount
                    if progress is not None and report.added + report.updated \
                            + report.unchanged > done:
                        done = report.added + report.updated + report.unchanged
                        progress(done, total)
                if report.added + report.updated or db.execute(
                        "SELECT 1 FROM items WHERE change = ? LIMIT 1", (change,)).fetchone():
                    self._set_meta("change", change)
                    self._set_meta("fingerprint", _hex(fingerprint))
                report.log_id = self._log_import(now, sources, report)
        finally:
            db.execute("DETACH DATABASE spool")
        return report

    def _store_spooled_stored(self, bounds: tuple[int, int], now: str, change: int,
                              report: ImportReport) -> int:
        """`upsert_spooled`'s records with seq in [`bounds`) whose id is stored: updated
        or left alone as `upsert` does; returns what they add to the fingerprint."""
        db = self._db
        delta = 0
        updates: list[tuple[Any, ...]] = []
        with closing(db.cursor()) as cursor:
            cursor.row_factory = None  # plain tuples: the spooled columns, then the stored
            cursor.execute(
                f"SELECT {', '.join(f'r.{c}' for c in _COLUMNS)}, r.year, r.digest,"
                f" {', '.join(f'i.{c}' for c in _COLUMNS)}"
                " FROM spool.records r JOIN items i ON i.id = r.id"
                " WHERE r.seq >= ? AND r.seq < ? ORDER BY r.seq", bounds)
            rows = cursor.fetchall()  # at most a batch
        width = len(_COLUMNS)
        for row in rows:
            values = row[:width]
            old, item = _item_of(row, width + 2), _item_of(row)
            if old.organisation != item.organisation:
                raise CatalogError(
                    f"import refused, nothing stored: id {item.id!r} belongs to an item of"
                    f" {old.organisation}, not {item.organisation}")
            if old.content_key() != item.content_key():
                updates.append((*values[1:], row[width], now, change, item.id))
                delta += row[width + 1] - item_digest(old)  # (all sums are mod 2**64)
                report.updated += 1
            else:
                if old.source_url is None and item.source_url:
                    db.execute("UPDATE items SET source_url = ?, change = ? WHERE id = ?",
                               (item.source_url, change, item.id))
                    delta += (item_digest(dataclasses.replace(old, source_url=item.source_url))
                              - item_digest(old))
                report.unchanged += 1
        db.executemany(
            f"UPDATE items SET {', '.join(f'{c} = ?' for c in _COLUMNS[1:])},"
            " year = ?, updated_at = ?, change = ? WHERE id = ?", updates)
        return delta

    def _upsert_batch(self, batch: Sequence[Item], now: str, change: int,
                      report: ImportReport) -> int:
        """Store one batch, its items marked with `change`; returns what the batch adds to
        the fingerprint (the sum of `item_digest`, new minus old)."""
        db = self._db
        delta = 0
        wanted = list(dict.fromkeys(item.id for item in batch))
        stored = {row["id"]: row for row in db.execute(
            f"SELECT * FROM items WHERE id IN ({', '.join('?' * len(wanted))})", wanted)}
        new: list[tuple[Any, ...]] = []
        for item in batch:
            values = _values(item)
            if item.id not in stored:
                new.append((*values, item.year, now, now, change))
                stored[item.id] = None  # given again later in the batch: it is stored by then
                delta += item_digest(item)
                report.added += 1
                continue
            row = stored[item.id]
            if row is None:  # added or changed earlier in this batch
                db.executemany(_INSERT, new)
                new = []
                row = stored[item.id] = db.execute("SELECT * FROM items WHERE id = ?",
                                                   (item.id,)).fetchone()
            if row["organisation"] != item.organisation:
                # Never move an item to another organisation: ids are per organisation.
                raise CatalogError(
                    f"import refused, nothing stored: id {item.id!r} belongs to an item of"
                    f" {row['organisation']}, not {item.organisation}")
            if (old := _row_to_item(row)).content_key() != item.content_key():
                db.execute(
                    f"UPDATE items SET {', '.join(f'{c} = ?' for c in _COLUMNS[1:])},"
                    " year = ?, updated_at = ?, change = ? WHERE id = ?",
                    (*values[1:], item.year, now, change, item.id),
                )
                delta += item_digest(item) - item_digest(old)
                stored[item.id] = None  # changed: read again if given again
                report.updated += 1
            else:
                if row["source_url"] is None and item.source_url:
                    # Learnt later (a manifest gained it): kept, and indexed (the index
                    # stores it), but nothing searchable changed: the item stays
                    # "unchanged".
                    db.execute("UPDATE items SET source_url = ?, change = ? WHERE id = ?",
                               (item.source_url, change, item.id))
                    delta += (item_digest(dataclasses.replace(old, source_url=item.source_url))
                              - item_digest(old))
                    stored[item.id] = None
                report.unchanged += 1
        db.executemany(_INSERT, new)
        return delta

    def backup_to(self, target: sqlite3.Connection) -> None:
        """Copy the whole catalog into `target` with SQLite's online backup API.

        One step, so the copy is one consistent snapshot: an import committing
        meanwhile is in it whole or not at all.
        """
        self._db.backup(target)

    def restore_from(self, source: sqlite3.Connection) -> None:
        """Replace this catalog's whole content with `source`'s, in one write transaction.

        Other connections (serving workers) see the restored content as they see
        any commit; the database's -wal and -shm stay SQLite's business.
        """
        source.backup(self._db)
        self._start_sync_point()  # a backup made before sync points has none

    def facet_counts(self, column: str) -> list[tuple[Any, int]]:
        """Items per value of one column, most first (for `stats`)."""
        if column not in FACETS:
            raise BadParameter("column", f"must be one of {', '.join(FACETS)}, not {column!r}")
        rows = self._db.execute(
            f"SELECT {column}, count(*) AS n FROM items GROUP BY {column}"
            f" ORDER BY n DESC, {column}"
        )
        return [(r[0], r[1]) for r in rows]

    def imports(self, *, limit: int = 10) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM imports ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    # Jobs (searchapp.jobs) --------------------------------------------------

    def add_job(self, job: Job) -> None:
        row = {name: getattr(job, name) for name in
               ("id", "kind", "state", "phase", "done", "total", "created", "started",
                "finished", "params", "result", "error", "pid")}
        for name in _JOB_JSON:
            if row[name] is not None:
                row[name] = json.dumps(row[name], ensure_ascii=False)
        self._write(f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    tuple(row.values()))

    def update_job(self, job_id: str, **fields: Any) -> int:
        """Change some of a job's fields; how many rows changed (0: no such job)."""
        return self._update_job(job_id, fields, only_unfinished=False)

    def finish_job(self, job_id: str, *, state: str, phase: str,
                   result: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
                   finished: str | None = None, only_unfinished: bool = False) -> int:
        """Record how a job ended (`finished`: when, default now); with `only_unfinished`,
        only if it has not ended yet."""
        return self._update_job(job_id, {
            "state": state, "phase": phase, "result": result, "error": error,
            "finished": finished or _now()}, only_unfinished=only_unfinished)

    def _update_job(self, job_id: str, fields: dict[str, Any], *,
                    only_unfinished: bool) -> int:
        unknown = set(fields) - set(_JOB_FIELDS)
        if unknown:
            raise BadParameter("job", f"cannot change {', '.join(sorted(unknown))}")
        values = [json.dumps(v, ensure_ascii=False) if k in _JOB_JSON and v is not None else v
                  for k, v in fields.items()]
        where = " AND state IN ('queued', 'running')" if only_unfinished else ""
        return self._write(
            f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?{where}",
            (*values, job_id))

    def writing(self, *, wait: float | None = None,
                waiting: Callable[[], object] | None = None) -> AbstractContextManager[None]:
        """One write transaction on the jobs, committed at the end of the block. When
        another connection holds the write lock, `waiting` is called, then the lock waited
        for up to `wait` seconds (default: `timeout`): a CatalogError from SQLITE_BUSY past
        that. A catalog made read-only meanwhile is `ReadOnly`, and nothing is written."""
        def begin() -> None:
            try:
                self._busy_timeout(0)
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not getattr(exc, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
                    raise
                if waiting is not None:
                    waiting()
                self._busy_timeout(self.timeout if wait is None else wait)
                self._db.execute("BEGIN IMMEDIATE")
            finally:
                self._busy_timeout(self.timeout)
            try:
                self._check_writable()
            except OSError as exc:
                raise _read_only(self.path, exc) from exc

        return self._transaction(begin, lambda exc: _job_not_recorded(self.path, exc))

    def _busy_timeout(self, seconds: float) -> None:
        self._db.execute(f"PRAGMA busy_timeout = {round(seconds * 1000)}")

    def job(self, job_id: str) -> Job | None:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row else None

    def jobs(self, *, states: tuple[str, ...] | None = None, limit: int = 50) -> list[Job]:
        """The most recent jobs first (only those in `states`, when given)."""
        where = f" WHERE state IN ({', '.join('?' * len(states))})" if states else ""
        rows = self._db.execute(f"SELECT * FROM jobs{where} ORDER BY created DESC, rowid DESC"
                                " LIMIT ?", (*(states or ()), limit))
        return [_row_to_job(r) for r in rows]

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        try:
            return int(self._db.execute(sql, params).rowcount)
        except sqlite3.Error as exc:
            raise _job_not_recorded(self.path, exc) from exc

    # --- sources and freshness ----------------------------------------------------

    def add_source(self, source: Source) -> None:
        """Store a new source; its name and URL must be new."""
        for column, value, option in (("name", source.name, "NAME"), ("url", source.url, "URL")):
            row = self._db.execute(f"SELECT name FROM sources WHERE {column} = ?",
                                   (value,)).fetchone()
            if row:
                raise BadParameter(option, f"source {row[0]!r} already has this {column}"
                                           f" ({value})")
        self._db.execute(
            "INSERT INTO sources (name, organisation, url, kind, language, every, selectors,"
            " added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (source.name, source.organisation, source.url, source.kind, source.language,
             source.every, json.dumps(source.selectors, ensure_ascii=False), _now()))

    def sources(self) -> list[Source]:
        return [_row_to_source(r) for r in
                self._db.execute("SELECT * FROM sources ORDER BY name")]

    def source(self, name: str) -> Source | None:
        row = self._db.execute("SELECT * FROM sources WHERE name = ?", (name,)).fetchone()
        return _row_to_source(row) if row else None

    def save_source_state(self, source: Source) -> None:
        """Write what a refresh learned about a source (validators, times, results)."""
        self._db.execute(
            "UPDATE sources SET kind = ?, etag = ?, last_modified = ?, last_fetched = ?,"
            " last_ok = ?, last_result = ?, last_error = ?, last_error_at = ?, items_seen = ?"
            " WHERE name = ?",
            (source.kind, source.etag, source.last_modified, _iso(source.last_fetched),
             _iso(source.last_ok), source.last_result, source.last_error,
             _iso(source.last_error_at), source.items_seen, source.name))

    def remove_source(self, name: str, *, delete_items: bool = False) -> int:
        """Forget a source; with `delete_items`, also the items it brought. Items removed."""
        db = self._db
        with self._immediate(f"removing source {name!r} failed, nothing changed"):
            removed = 0
            if delete_items:
                fingerprint = int(self._meta("fingerprint") or "0", 16)
                for row in db.execute("SELECT * FROM items WHERE source = ?", (name,)):
                    fingerprint -= item_digest(_row_to_item(row))
                removed = db.execute("DELETE FROM items WHERE source = ?", (name,)).rowcount
                if removed:
                    change = int(self._meta("change") or 0) + 1
                    self._set_meta("change", change)
                    self._set_meta("removed_at_change", change)
                    self._set_meta("fingerprint", _hex(fingerprint))
                    self._set_meta("items_removed_at", _now())
            db.execute("DELETE FROM sources WHERE name = ?", (name,))
        return int(removed)

    def items_per_source(self) -> dict[str, int]:
        rows = self._db.execute("SELECT source, count(*) FROM items GROUP BY source")
        return {r[0]: r[1] for r in rows}

    def change_stamp(self) -> tuple[Any, ...]:
        """Differs whenever `freshness()` may: cheap (a few index lookups, the sources)."""
        db = self._db
        return (db.execute("SELECT max(id) FROM imports").fetchone()[0],
                db.execute("SELECT value FROM meta WHERE key = 'items_removed_at'").fetchone(),
                tuple(tuple(r) for r in db.execute(
                    "SELECT organisation, last_ok FROM sources ORDER BY name")))

    def freshness(self) -> Freshness:
        """When items last changed; per organisation the newest item and last refresh.

        Reads the whole table (0.1-0.2 s at 100,000 items); a caller that needs it
        often keeps it until `change_stamp()` differs.
        """
        db = self._db
        changes = [row[0] for row in (
            db.execute("SELECT at FROM imports WHERE added + updated > 0"
                       " ORDER BY id DESC LIMIT 1").fetchone(),
            db.execute("SELECT value FROM meta WHERE key = 'items_removed_at'").fetchone(),
        ) if row]
        # One pass over the table: faster than the organisation index and a lookup per row.
        newest = {r[0]: r[1] for r in db.execute(
            "SELECT organisation, max(date) FROM items NOT INDEXED GROUP BY organisation")}
        refreshed = {r[0]: r[1] for r in db.execute(
            "SELECT organisation, max(last_ok) FROM sources GROUP BY organisation")}
        out = [OrganisationFreshness(
                   org, org in newest,
                   dt.date.fromisoformat(newest[org]) if newest.get(org) else None,
                   _parse_time(refreshed.get(org)), org in refreshed)
               for org in sorted({*newest, *refreshed}, key=str.casefold)]
        return Freshness(_parse_time(max(changes)) if changes else None, out)


def _read_only(path: Path, exc: OSError | sqlite3.Error) -> ReadOnly:
    return ReadOnly(f"the catalog {path} cannot be written ({exc}): searching and reading go"
                    " on, but imports, refreshes and rebuilds need it writable")


def _job_not_recorded(path: Path, exc: sqlite3.Error) -> CatalogError:
    if _refuses_writes(exc):
        return ReadOnly(f"cannot record the job: the catalog {path} cannot be written ({exc})")
    return CatalogError(f"cannot record the job: {exc}")


def _row_to_job(row: sqlite3.Row) -> Job:
    from searchapp.jobs import Job

    data = dict(row)
    for name in _JOB_JSON:
        if data[name] is not None:
            data[name] = json.loads(data[name])
    return Job(**data)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _row_to_source(row: sqlite3.Row) -> Source:
    return Source(
        name=row["name"], organisation=row["organisation"], url=row["url"], kind=row["kind"],
        language=row["language"], every=row["every"],
        selectors=json.loads(row["selectors"] or "{}"), etag=row["etag"],
        last_modified=row["last_modified"], last_fetched=_parse_time(row["last_fetched"]),
        last_ok=_parse_time(row["last_ok"]), last_result=row["last_result"],
        last_error=row["last_error"], last_error_at=_parse_time(row["last_error_at"]),
        items_seen=row["items_seen"], added_at=_parse_time(row["added_at"]),
    )


def _values(item: Item) -> tuple[Any, ...]:
    return (item.id, item.organisation, item.title, item.summary,
            item.date.isoformat() if item.date else None, item.type, item.url, item.language,
            item.source, item.source_url, item.language_origin, item.language_confidence)
