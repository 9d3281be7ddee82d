"""Index generations on disk: full rebuilds, incremental updates, the swap.

Layout of the index directory::

    CURRENT          name of the live generation (replaced atomically)
    gen-000007/      the live generation, a Whoosh index, and SYNCED: the catalog
                     change it holds (searchapp.catalog.SyncPoint)
    gen-000006/      the previous one, kept until the next swap
    gen-000008.tmp/  a rebuild in progress (or the debris of a crashed one)
    .lock            held (flock) by whoever is importing or rebuilding

A rebuild writes a new generation beside the live one, checks its document
count against what was fed to it, and only then points CURRENT at it, so a
reader never sees a half-built index and a crash leaves the old one serving.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh.fields import Schema
from whoosh.index import Index
from whoosh.writing import SegmentWriter

from searchapp.catalog import SyncPoint
from searchapp.engine import pool
from searchapp.engine.health import missing
from searchapp.engine.scoring import TITLE_BOOST
from searchapp.errors import Busy, IndexUnavailable
from searchapp.models import Item
from searchapp.schema import for_whoosh, schema, to_document

POINTER = "CURRENT"
LOCK = ".lock"
SYNCED = "SYNCED"  # in a generation: the catalog's SyncPoint it was last brought up to
_GENERATION = re.compile(r"^gen-(\d{6})$")
WRITER_LIMIT_MB = 256
# Rebuilds of at least this many items use this many processes (each writes
# segments of its own; see searchapp.engine.pool).
PARALLEL_FROM = 20_000
BUILD_WORKERS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class Generation:
    name: str
    path: Path


def _shape(schema: Schema) -> dict[str, tuple[str, bool, bool, bool, float, str]]:
    """What an index must have been written with to be searched as declared; the field
    boost too (the title's, `Settings.title_boost`, is part of the ranking), and the
    analyzer's kind (an index whose texts were analysed otherwise, before #13 every
    text in English with its terms untagged, finds nothing a query asks for)."""
    return {name: (type(field).__name__, bool(field.indexed), bool(field.stored),
                   field.column_type is not None,
                   float(getattr(getattr(field, "format", None), "field_boost", 1.0)),
                   type(getattr(field, "analyzer", None)).__name__)
            for name, field in schema.items()}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class IndexStore:
    """The index directory and its generations."""

    def __init__(self, root: Path, *, title_boost: float = TITLE_BOOST) -> None:
        self.root = Path(root)
        self.schema = schema(title_boost=title_boost)

    # Reading --------------------------------------------------------------

    def current(self) -> Generation | None:
        """The live generation, or None when no index has been built."""
        try:
            name = (self.root / POINTER).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexUnavailable(f"cannot read {self.root / POINTER}: {exc}") from exc
        if not _GENERATION.match(name):
            raise IndexUnavailable(f"{self.root / POINTER} names no generation ({name!r})")
        return Generation(name, self.root / name)

    def pointer_stamp(self) -> tuple[int, int] | None:
        """A cheap fingerprint of CURRENT, to notice a swap without reading it."""
        try:
            st = os.stat(self.root / POINTER)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def open_index(self) -> Index:
        """Open the live generation with the schema from code (for searchapp.engine)."""
        gen = self.current()
        if gen is None:
            raise IndexUnavailable(
                f"no index in {self.root}: run `searchapp reindex` to build it from the catalog"
            )
        try:
            return whoosh_index.open_dir(str(gen.path), schema=self.schema)
        except Exception as exc:  # Whoosh raises many kinds on a damaged index
            raise IndexUnavailable(
                f"index generation {gen.name} cannot be opened ({exc.__class__.__name__}: {exc});"
                " run `searchapp reindex` to rebuild it from the catalog"
            ) from exc

    def document_count(self) -> int:
        """Live documents in the live generation (IndexUnavailable when it cannot open)."""
        ix = self.open_index()
        try:
            problem = missing(ix).problem()  # before Whoosh opens the segments
            if problem is not None:
                raise IndexUnavailable(problem)
            return int(ix.doc_count())
        except IndexUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 (Whoosh raises many kinds on damaged files)
            raise IndexUnavailable(
                f"the segments of the live index generation cannot be opened"
                f" ({exc.__class__.__name__}: {exc}); run `searchapp reindex` to rebuild it"
                " from the catalog") from exc
        finally:
            ix.close()

    def written_as_declared(self) -> bool:
        """Whether the live generation was written with today's fields (searchapp.fields):
        the same names, each indexed, stored and kept as a column the same way, with
        the same field boost."""
        gen = self.current()
        if gen is None:
            return False
        try:
            ix = whoosh_index.open_dir(str(gen.path))  # with the schema it was written with
        except Exception:  # noqa: BLE001 (Whoosh raises many kinds on a damaged index)
            return False
        try:
            return _shape(ix.schema) == _shape(self.schema)
        finally:
            ix.close()

    def synced(self, gen: Generation | None = None) -> SyncPoint | None:
        """The catalog sync point the generation (the live one by default) was last brought
        up to; None when it records none (built before sync points, or its record is
        unreadable: then only a rebuild can vouch for it)."""
        gen = gen if gen is not None else self.current()
        if gen is None:
            return None
        try:
            return SyncPoint.from_dict(json.loads((gen.path / SYNCED).read_text("utf-8")))
        except (OSError, ValueError):
            return None

    def mark_synced(self, point: SyncPoint, gen: Generation | None = None) -> None:
        """Record that the generation (the live one by default) holds the catalog at `point`
        (written beside, then renamed over, the old record)."""
        gen = gen if gen is not None else self.current()
        if gen is None:
            raise IndexUnavailable(f"no index in {self.root} to mark")
        _write_synced(gen.path, point)

    def generations(self) -> list[Generation]:
        if not self.root.is_dir():
            return []
        found = [Generation(p.name, p) for p in self.root.iterdir() if _GENERATION.match(p.name)]
        return sorted(found, key=lambda g: g.name)

    def size_bytes(self, gen: Generation) -> int:
        return sum(f.stat().st_size for f in gen.path.iterdir() if f.is_file())

    # Writing --------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, *, timeout: float = 5.0,
             waiting: Callable[[], object] | None = None) -> Iterator[None]:
        """Exclusive across processes; the kernel drops it if the holder dies. `waiting`
        is called once when the lock is busy, before waiting for it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise IndexUnavailable(f"cannot write to the index directory {self.root}:"
                                   f" {exc.strerror}") from exc
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if waiting is not None:
                        waiting()
                        waiting = None
                    if time.monotonic() >= deadline:
                        raise Busy("another import or rebuild is running; try again when it"
                                   " has finished") from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def rebuild(self, items: Iterable[Item], *, expected: int,
                synced: SyncPoint | Callable[[], SyncPoint] | None = None) -> Generation:
        """Write every item into a new generation and make it live.

        The caller holds the lock. `expected` is the catalog's count; a new
        generation holding any other number of documents is thrown away.
        `synced` is the catalog's sync point the items were read at, recorded in
        the generation; or a function giving it, called once every item has been
        read and the count checked (the caller sums the fingerprint from the items).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_debris()
        existing = self.generations()
        number = int(existing[-1].name[4:]) + 1 if existing else 1
        gen = Generation(f"gen-{number:06d}", self.root / f"gen-{number:06d}")
        building = self.root / f"{gen.name}.tmp"
        try:
            building.mkdir()
            ix = whoosh_index.create_in(str(building), self.schema)
            # Whole segments at once, with their posting arrays (searchapp.engine.segments);
            # large rebuilds in several processes (searchapp.engine.pool).
            workers = BUILD_WORKERS if expected >= PARALLEL_FROM else 1
            pool.build(ix, (to_document(item) for item in items), workers=workers,
                       stems=str(self.root))
            count = ix.doc_count()
            ix.close()
            if count != expected:
                raise IndexUnavailable(
                    f"rebuild wrote {count} documents but the catalog has {expected};"
                    " the live index was left as it was"
                )
            if synced is not None:
                _write_synced(building, synced() if callable(synced) else synced)
            os.rename(building, gen.path)
            self._point_to(gen)
        except OSError as exc:
            shutil.rmtree(building, ignore_errors=True)
            reason = "the disk is full" if exc.errno == errno.ENOSPC else str(exc)
            raise IndexUnavailable(
                f"rebuild failed, the live index was left as it was: {reason}"
            ) from exc
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        self._prune(keep=(gen.name, existing[-1].name if existing else None))
        return gen

    def update(self, items: Iterable[Item], *, expected: int) -> int:
        """Add or replace items in the live generation; returns documents written.

        Raises `IndexUnavailable` when the result disagrees with `expected`
        (the caller then rebuilds).
        """
        ix = self.open_index()
        written = 0
        try:
            writer: SegmentWriter = ix.writer(limitmb=WRITER_LIMIT_MB)
            unique = [name for name, field in ix.schema.items() if field.unique]
            try:
                # What `update_document` does, with one searcher for the whole batch
                # instead of a new reader over every segment for each document.
                with writer.searcher() as committed:
                    for item in items:
                        doc = for_whoosh(item)
                        for name in unique:
                            for docnum in committed.document_numbers(**{name: doc[name]}):
                                writer.delete_document(docnum)
                        writer.add_document(**doc)
                        written += 1
            except BaseException:
                writer.cancel()
                raise
            writer.commit()
            count = ix.doc_count()
        finally:
            ix.close()
        if count != expected:
            raise IndexUnavailable(
                f"the index holds {count} documents after the update but the catalog has"
                f" {expected}"
            )
        return written

    def _point_to(self, gen: Generation) -> None:
        tmp = self.root / f"{POINTER}.tmp"
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(gen.name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / POINTER)
        _fsync_dir(self.root)

    def _remove_debris(self) -> None:
        """Remove what a crashed rebuild left behind (we hold the lock)."""
        for path in self.root.glob("gen-*.tmp"):
            shutil.rmtree(path, ignore_errors=True)

    def _prune(self, *, keep: tuple[str | None, ...]) -> None:
        for gen in self.generations():
            if gen.name not in keep:
                shutil.rmtree(gen.path, ignore_errors=True)


def _write_synced(folder: Path, point: SyncPoint) -> None:
    tmp = folder / f"{SYNCED}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(point.to_dict(), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / SYNCED)
