"""Where an import's valid records wait, on disk, until the whole input is checked.

A file of any size is read one record at a time (`importers.collect` with a
spool): each valid record goes into a temporary SQLite file beside the
catalog instead of a list in memory. Once every input is read, `check` finds
in one pass over the repeated ids what `importers.parse_bytes` and
`importers.check_organisations` find in memory (an id twice in one input, an
id given to two organisations, an id stored for another organisation), and
leaves one record per id. The catalog stores them from the spool's file itself
(`Catalog.upsert_spooled`):
each record carries its item's `year` and `digest` for it, worked out as it is
read. The problems found go to a table of the same file and are read back in
order (`problems`): a file of nothing but invalid lines has as many problems as
lines. Memory stays bounded by a batch of records and one of problems, whatever
the size of the input or the number of its problems.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from searchapp.catalog import _COLUMNS, _values, values_digest
from searchapp.errors import CatalogError, Problem

if TYPE_CHECKING:
    from searchapp.importers import Parsed, Record

# The catalog's item columns (`searchapp.catalog._COLUMNS`), so a spooled record
# reads back as the item it was.
_BATCH = 2_000
REPORT_EVERY = 10_000  # records between two calls of the reading progress
# A spool's folder is held (`HELD`, flock) while its import lives; one not held and
# older than this was left by an import that was killed, and the next import removes it.
LEFT_AFTER = 60.0
HELD = "held"

log = logging.getLogger(__name__)

# Each record's `item_digest` is kept as SQLite keeps integers, signed 64-bit (the same
# value mod 2**64, which is how the catalog sums them).
_HALF, _WRAP = 1 << 63, 1 << 64


class Spool:
    """Records of one import in a temporary database; use as a context manager."""

    def __init__(self, folder: Path,
                 progress: Callable[[int], None] | None = None) -> None:
        self._held: int | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            remove_left(folder)
            self._folder = Path(tempfile.mkdtemp(prefix=".import-", dir=folder))
            self._held = os.open(self._folder / HELD, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if self._held is not None:
                os.close(self._held)
                self._held = None
            raise CatalogError(f"cannot write the import's working file in {folder} (beside"
                               f" the catalog): {exc.strerror or exc}; nothing was stored"
                               ) from exc
        self._path = self._folder / "spool.db"
        try:
            self._db = _records_file(self._path)
        except sqlite3.Error as exc:  # a full disk, above all
            self._release()
            raise CatalogError(f"cannot write the import's working file {self._path}"
                               f" (beside the catalog): {exc}; nothing was stored") from exc
        self._db.row_factory = sqlite3.Row
        self._inputs: list[Parsed] = []
        self._numbers: dict[int, int] = {}  # each input's number in `_inputs`, by its id()
        self._batch: list[tuple[Any, ...]] = []
        self._problems: list[tuple[int, int, str]] = []
        self._progress = progress
        self.read = 0  # records taken so far
        # Records read for this spool by another process meanwhile (`importers.split`),
        # counted in the reading progress.
        self.elsewhere: Callable[[], int] = lambda: 0

    # Reading ------------------------------------------------------------------

    def take(self, parsed: Parsed, *, records: bool = True) -> None:
        """From now on, `parsed`'s problems come here rather than into its list, and its
        valid records too unless not `records` (an input read whole keeps them until it
        is checked); those it already holds are moved here."""
        src = self._numbers.get(id(parsed))
        if src is None:
            src = self._numbers[id(parsed)] = len(self._inputs)
            self._inputs.append(parsed)
            sink = parsed.problem_sink = _problem_sink(src, self._problems, self._flush)
            for problem in parsed.problems:
                sink(problem.line, problem.message)
            parsed.problems = []
        if records:
            self._take_records(parsed, src)

    def _take_records(self, parsed: Parsed, src: int) -> None:
        def add(record: Record) -> None:
            self._batch.append(_row(src, record))
            self.read += 1
            if len(self._batch) >= _BATCH:
                self._flush()
            if self.read % REPORT_EVERY == 0:
                self.report()

        parsed.sink = add
        for record in parsed.records:
            add(record)
        parsed.records = []

    def report(self) -> None:
        """Call the reading progress with the records read so far, here and elsewhere."""
        if self._progress is not None:
            self._progress(self.read + self.elsewhere())

    @property
    def folder(self) -> Path:
        """The import's own folder, removed with the spool (`Part`s' files go there)."""
        return self._folder

    def append(self, parsed: Parsed, part: Path, *, line_offset: int, read: int) -> None:
        """Take the records and problems of a `Part`'s file as `parsed`'s, after those
        taken so far, in the order written, their lines moved on by `line_offset`;
        `read` records."""
        self._flush()
        src = self._src(parsed)
        columns = ", ".join(_COLUMNS)
        self._db.execute("ATTACH DATABASE ? AS part", (str(part),))
        try:
            self._db.execute("BEGIN")
            self._db.execute(f"INSERT INTO records (src, line, {columns}, year, digest)"
                             f" SELECT ?, line + ?, {columns}, year, digest FROM part.records"
                             f" ORDER BY seq", (src, line_offset))
            self._db.execute("INSERT INTO problems (src, line, message) SELECT ?, line + ?,"
                             " message FROM part.problems ORDER BY seq", (src, line_offset))
            self._db.execute("COMMIT")
        finally:
            self._db.execute("DETACH DATABASE part")
        self.read += read

    def discard(self, parsed: Parsed) -> None:
        """Forget every record and problem taken from `parsed` (its input turned out
        unreadable)."""
        self._flush()
        for table in ("records", "problems"):
            self._db.execute(f"DELETE FROM {table} WHERE src = ?", (self._src(parsed),))

    def _src(self, parsed: Parsed) -> int:
        """The number `parsed`'s records and problems are written under (`take` gave it)."""
        return self._numbers[id(parsed)]

    def _flush(self) -> None:
        _insert(self._db, _INSERT, self._batch)
        _insert(self._db, _INSERT_PROBLEM, self._problems)

    # Checking -----------------------------------------------------------------

    def check(self, stored: Callable[[Sequence[str]], Mapping[str, str]]) -> None:
        """Turn into problems of their inputs the records `importers.parse_bytes` and
        `importers.check_organisations` refuse, with their messages, and drop them; of
        the records of one id left (all of one organisation), keep the last read.

        `stored` looks ids up in the catalog: their organisations.
        """
        from searchapp.importers import also_given, duplicate_id, moved_id

        self._flush()
        db = self._db
        db.execute("CREATE INDEX records_id ON records (id, seq)")
        owners = self._stored_owners(stored)
        refused: set[int] = set()
        superseded: list[int] = []
        # The records of each id that occurs more than once, in the order read.
        rows = db.execute("SELECT seq, src, line, id, organisation, date, title FROM records"
                          " WHERE id IN (SELECT id FROM records GROUP BY id HAVING count(*) > 1)"
                          " ORDER BY id, seq")
        group: list[sqlite3.Row] = []
        for row in [*rows, None]:
            if group and (row is None or row["id"] != group[0]["id"]):
                first_line: dict[int, int] = {}
                kept: list[sqlite3.Row] = []
                for each in group:
                    source = self._inputs[each["src"]]
                    if each["src"] in first_line:
                        date = dt.date.fromisoformat(each["date"]) if each["date"] else None
                        source.problem(each["line"], duplicate_id(
                            each["id"], each["organisation"], date, each["title"],
                            first_line[each["src"]]))
                        refused.add(each["seq"])
                        continue
                    first_line[each["src"]] = each["line"]
                    if each["seq"] in owners:
                        continue  # refused below, as every record of an id stored elsewhere
                    if kept and kept[0]["organisation"] != each["organisation"]:
                        earlier = kept[0]
                        source.problem(each["line"], also_given(
                            each["id"], each["organisation"], earlier["organisation"],
                            self._inputs[earlier["src"]].source, earlier["line"]))
                        refused.add(each["seq"])
                        continue
                    kept.append(each)
                superseded.extend(each["seq"] for each in kept[:-1])
                group = []
            if row is not None:
                group.append(row)
        for seq, (src, line, item_id, organisation, owner) in owners.items():
            if seq not in refused:
                self._inputs[src].problem(line, moved_id(item_id, organisation, owner))
                refused.add(seq)
        db.execute("BEGIN")
        db.executemany("DELETE FROM records WHERE seq = ?",
                       [(seq,) for seq in sorted({*refused, *superseded})])
        db.execute("COMMIT")

    def _stored_owners(self, stored: Callable[[Sequence[str]], Mapping[str, str]]
                       ) -> dict[int, tuple[int, int, str, str, str]]:
        """Records whose id the catalog holds for another organisation: by seq, their
        (src, line, id, organisation, the stored organisation)."""
        found: dict[int, tuple[int, int, str, str, str]] = {}
        with closing(self._db.execute("SELECT seq, src, line, id, organisation FROM records"
                                      " ORDER BY seq")) as cursor:
            while rows := cursor.fetchmany(500):
                owners = stored([row["id"] for row in rows])
                for row in rows:
                    owner = owners.get(row["id"])
                    if owner is not None and owner != row["organisation"]:
                        found[row["seq"]] = (row["src"], row["line"], row["id"],
                                             row["organisation"], owner)
        return found

    # Giving -------------------------------------------------------------------

    def count(self) -> int:
        self._flush()
        return int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])

    @property
    def file(self) -> Path:
        """The spool's SQLite file (table `records`), every record taken so far written
        to it: what `Catalog.upsert_spooled` stores from."""
        self._flush()
        return self._path

    def problem_count(self) -> int:
        self._flush()
        return int(self._db.execute("SELECT count(*) FROM problems").fetchone()[0])

    def problems(self, *, limit: int | None = None) -> Iterator[Problem]:
        """The problems taken, by input (in the order taken) and then by line, the first
        `limit` of them if given: read from the file as they are asked for."""
        self._flush()
        with closing(self._db.execute(
                "SELECT src, line, message FROM problems ORDER BY src, line, seq LIMIT ?",
                (-1 if limit is None else limit,))) as cursor:
            while rows := cursor.fetchmany(500):
                for src, line, message in rows:
                    yield Problem(self._inputs[src].source, line, message)

    def close(self) -> None:
        self._db.close()
        self._release()

    def _release(self) -> None:
        """Remove the spool's folder, with its files, and let go of it."""
        shutil.rmtree(self._folder, ignore_errors=True)
        if self._held is not None:
            os.close(self._held)
            self._held = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Part:
    """The records and problems of one part of an input, read by another process than
    the import's (`importers.split`), in a file of the spool's tables (`src` 0) that
    `Spool.append` then takes; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = _records_file(path)
        self._batch: list[tuple[Any, ...]] = []
        self._problems: list[tuple[int, int, str]] = []
        self.read = 0

    def take(self, parsed: Parsed) -> None:
        """From now on, `parsed`'s valid records and problems come here."""
        parsed.problem_sink = _problem_sink(0, self._problems, self.flush)

        def add(record: Record) -> None:
            self._batch.append(_row(0, record))
            self.read += 1
            if len(self._batch) >= _BATCH:
                self.flush()

        parsed.sink = add

    def flush(self) -> None:
        _insert(self._db, _INSERT, self._batch)
        _insert(self._db, _INSERT_PROBLEM, self._problems)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_INSERT = (f"INSERT INTO records (src, line, {', '.join(_COLUMNS)}, year, digest)"
           f" VALUES ({', '.join('?' * (len(_COLUMNS) + 4))})")
_INSERT_PROBLEM = "INSERT INTO problems (src, line, message) VALUES (?, ?, ?)"


def _insert(db: sqlite3.Connection, sql: str, batch: list[Any]) -> None:
    """Write a batch of rows (`_row`, or a problem's) to `db` with `sql` in one
    transaction, and empty it."""
    if batch:
        db.execute("BEGIN")
        db.executemany(sql, batch)
        db.execute("COMMIT")
        batch.clear()


def _problem_sink(src: int, batch: list[tuple[int, int, str]],
                  flush: Callable[[], None]) -> Callable[[int, str], None]:
    """A `Parsed.problem_sink` adding each problem to `batch` as a row of the `problems`
    table, under `src`, and calling `flush` once the batch is full."""

    def problem(line: int, message: str) -> None:
        batch.append((src, line, message))
        if len(batch) >= _BATCH:
            flush()

    return problem


def _records_file(path: Path) -> sqlite3.Connection:
    """A new SQLite file at `path` with empty `records` and `problems` tables, written
    for speed: it is a working file, thrown away if the import does not end."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16000",
                       "temp_store = FILE"):
            db.execute(f"PRAGMA {pragma}")
        db.execute(f"CREATE TABLE records (seq INTEGER PRIMARY KEY, src INTEGER NOT NULL,"
                   f" line INTEGER NOT NULL, {', '.join(_COLUMNS)}, year INTEGER,"
                   f" digest INTEGER NOT NULL)")
        db.execute("CREATE TABLE problems (seq INTEGER PRIMARY KEY, src INTEGER NOT NULL,"
                   " line INTEGER NOT NULL, message TEXT NOT NULL)")
    except sqlite3.Error:
        db.close()
        raise
    return db


def _row(src: int, record: Record) -> tuple[Any, ...]:
    """A record as a row of the `records` table (without its seq)."""
    item = record.item
    values = _values(item)
    digest = values_digest(values)
    return (src, record.line, *values, item.year, digest - _WRAP if digest >= _HALF else digest)


def remove_left(folder: Path, *, older_than: float = LEFT_AFTER) -> list[Path]:
    """Remove the spool folders in `folder` that no live import holds and that were last
    changed over `older_than` seconds ago (a killed import's: its file is about the size
    of its input, and nothing else would ever remove it); which were removed."""
    removed = []
    for left in folder.glob(".import-*"):
        try:
            if time.time() - left.stat().st_mtime <= older_than:
                continue  # (an import starting now may not hold its folder yet)
            fd = os.open(left / HELD, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # held: an import still at work
        finally:
            os.close(fd)  # (the lock, if had, goes with it; the folder goes next)
        shutil.rmtree(left, ignore_errors=True)
        removed.append(left)
    if removed:
        log.info("removed the working files of %d import(s) that ended without"
                 " removing them: %s", len(removed), ", ".join(p.name for p in removed))
    return removed
