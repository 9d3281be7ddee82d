"""The SQLite catalog: the source of truth for items and the import log.

The index is derived from this and can always be rebuilt from it. Each import
is one transaction: it lands whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Generator, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from searchapp.errors import CatalogError
from searchapp.fields import FACETS
from searchapp.models import Item

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
    added_at     TEXT NOT NULL,
    updated_at   TEXT NOT NULL
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
    skipped    INTEGER NOT NULL
);
"""

_COLUMNS = ("id", "organisation", "title", "summary", "date", "type", "url", "language", "source")


@dataclass(slots=True)
class ImportReport:
    """What one import did to the catalog."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    changed: list[Item] = field(default_factory=list)

    def to_dict(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": self.skipped}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _row_to_item(row: sqlite3.Row) -> Item:
    return Item(
        id=row["id"], organisation=row["organisation"], title=row["title"],
        summary=row["summary"], date=dt.date.fromisoformat(row["date"]) if row["date"] else None,
        type=row["type"], url=row["url"], language=row["language"], source=row["source"],
    )


class Catalog:
    """A connection to the catalog database; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise CatalogError(f"cannot open catalog {self.path}: {exc}") from exc

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

    def iter_items(self, *, batch: int = 5_000) -> Generator[Item, None, None]:
        """Every item in id order, read in batches so memory stays flat."""
        with closing(self._db.cursor()) as cur:
            cur.execute("SELECT * FROM items ORDER BY id")
            while rows := cur.fetchmany(batch):
                yield from map(_row_to_item, rows)

    def upsert(self, items: Iterable[Item], *, sources: Iterable[str] = (),
               skipped: int = 0) -> ImportReport:
        """Store items in one transaction and log the import.

        An item whose content is unchanged is left alone (its source too), so
        re-importing the same file reports everything unchanged.
        """
        report = ImportReport(skipped=skipped)
        now = _now()
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            for item in items:
                row = db.execute("SELECT * FROM items WHERE id = ?", (item.id,)).fetchone()
                values = _values(item)
                if row is None:
                    db.execute(
                        f"INSERT INTO items ({', '.join(_COLUMNS)}, year, added_at, updated_at)"
                        f" VALUES ({', '.join('?' * len(_COLUMNS))}, ?, ?, ?)",
                        (*values, item.year, now, now),
                    )
                    report.added += 1
                    report.changed.append(item)
                elif _row_to_item(row).content_key() != item.content_key():
                    db.execute(
                        f"UPDATE items SET {', '.join(f'{c} = ?' for c in _COLUMNS[1:])},"
                        " year = ?, updated_at = ? WHERE id = ?",
                        (*values[1:], item.year, now, item.id),
                    )
                    report.updated += 1
                    report.changed.append(item)
                else:
                    report.unchanged += 1
            db.execute(
                "INSERT INTO imports (at, sources, added, updated, unchanged, skipped)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (now, "\n".join(sources), report.added, report.updated, report.unchanged,
                 report.skipped),
            )
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise CatalogError(f"import failed, nothing stored: {exc}") from exc
            raise
        return report

    def facet_counts(self, column: str) -> list[tuple[Any, int]]:
        """Items per value of one column, most first (for `stats`)."""
        if column not in FACETS:
            raise ValueError(column)
        rows = self._db.execute(
            f"SELECT {column}, count(*) AS n FROM items GROUP BY {column}"
            f" ORDER BY n DESC, {column}"
        )
        return [(r[0], r[1]) for r in rows]

    def imports(self, *, limit: int = 10) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM imports ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]


def _values(item: Item) -> tuple[Any, ...]:
    return (item.id, item.organisation, item.title, item.summary,
            item.date.isoformat() if item.date else None, item.type, item.url, item.language,
            item.source)
