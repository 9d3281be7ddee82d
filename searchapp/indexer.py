"""Index generations on disk: full rebuilds, incremental updates, the swap.

Layout of the index directory::

    CURRENT          name of the live generation (replaced atomically)
    gen-000007/      the live generation, a Whoosh index, and SYNCED: the catalog
                     change it holds (searchapp.catalog.SyncPoint)
    gen-000006/      the previous one (live before it), kept until the next swap
    gen-000008.tmp/  a rebuild in progress (or the debris of a crashed one)
    gen-000008/      an orphan: renamed into place by a rebuild killed before CURRENT
                     named it, never live (debris: the next rebuild removes it)
    .lock            held (flock) by whoever is importing or rebuilding

A rebuild writes a new generation beside the live one, checks its document
count against what was fed to it, syncs every file of it to the disk, and only
then points CURRENT at it, so a reader never sees a half-built index and a crash,
or a power cut, leaves the old one serving or the whole new one. Each rebuild numbers
its generation above every one present, so a generation numbered above the live one
was never live (an orphan), and the previous one is the live one's highest below it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whoosh import index as whoosh_index
from whoosh.fields import Schema
from whoosh.index import Index
from whoosh.reading import TermNotFound
from whoosh.writing import SegmentWriter

from searchapp import lockfile
from searchapp.catalog import SyncPoint
from searchapp.engine import pool
from searchapp.engine.health import missing
from searchapp.engine.scoring import TITLE_BOOST
from searchapp.engine.segments import (
    SegmentBuilder,
    StemTable,
    abandon,
    cancel,
    commit_durably,
    fsync_path,
    index_segments,
    remove_unlisted,
    segment_id,
    sync_folder,
)
from searchapp.errors import IndexUnavailable
from searchapp.models import Item
from searchapp.schema import for_whoosh, schema, to_document

log = logging.getLogger(__name__)

POINTER = "CURRENT"
LOCK = lockfile.LOCK
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


class IndexStore:
    """The index directory and its generations."""

    def __init__(self, root: Path, *, title_boost: float = TITLE_BOOST) -> None:
        self.root = Path(root)
        self.schema = schema(title_boost=title_boost)
        self._pointer = os.fspath(self.root / POINTER)  # (looked at on every request)

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
            st = os.stat(self._pointer)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def open_index(self) -> Index:
        """Open the live generation with the schema from code (for searchapp.engine)."""
        gen = self.current()
        if gen is None:
            raise IndexUnavailable(
                f"no index in {self.root.absolute()}: run `searchapp reindex` to build it"
                " from the catalog"
            )
        if not gen.path.is_dir():
            raise IndexUnavailable(self._missing(gen))
        try:
            return whoosh_index.open_dir(str(gen.path), schema=self.schema)
        except Exception as exc:  # Whoosh raises many kinds on a damaged index
            raise IndexUnavailable(
                f"index generation {gen.name} cannot be opened ({exc.__class__.__name__}: {exc});"
                " run `searchapp reindex` to rebuild it from the catalog"
            ) from exc

    def _missing(self, gen: Generation) -> str:
        """Why the live generation `gen`, not on disk, cannot be searched, and what to run.
        The previous generation is not served in its place: it may hold items removed
        from the catalog since (and lacks those added), and nothing would show it."""
        kept = self.previous(gen)
        previous = (f"; the previous generation {kept.name} is kept, but it holds the catalog"
                    " as it was before the last rebuild, so it is not searched in its place"
                    if kept is not None else "")
        return (f"the live index generation {gen.name} is missing (named by"
                f" {self.root / POINTER}, but {gen.path} is not there){previous}; run"
                " `searchapp reindex` to rebuild the index from the catalog")

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
        except Exception as exc:  # Whoosh raises many kinds on damaged files
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
        """Every generation folder, live or not, oldest first."""
        if not self.root.is_dir():
            return []
        found = [Generation(p.name, p) for p in self.root.iterdir() if _GENERATION.match(p.name)]
        return sorted(found, key=_number)

    def previous(self, live: Generation) -> Generation | None:
        """The generation that was live before `live` (kept for a while after the swap)."""
        older = [g for g in self.generations() if _number(g) < _number(live)]
        return older[-1] if older else None

    def orphans(self, live: Generation) -> list[Generation]:
        """Generations that were never live: numbered above `live`, renamed into place by
        a rebuild killed before CURRENT named them."""
        return [g for g in self.generations() if _number(g) > _number(live)]

    def size_bytes(self, gen: Generation) -> int:
        """Bytes in the generation's files (0 when its folder is not there)."""
        if not gen.path.is_dir():
            return 0
        return sum(f.stat().st_size for f in gen.path.iterdir() if f.is_file())

    # Writing --------------------------------------------------------------

    def lock(self, *, timeout: float = 5.0,
             waiting: Callable[[], object] | None = None) -> contextlib.AbstractContextManager[None]:
        """Exclusive across processes; the kernel drops it if the holder dies. `waiting`
        is called once when the lock is busy, before waiting for it (`lockfile.hold`)."""
        return lockfile.hold(self.root, timeout=timeout, waiting=waiting)

    def busy(self) -> bool:
        """Whether an import or rebuild holds the lock now, in any process
        (`lockfile.held`)."""
        return lockfile.held(self.root)

    def rebuild(self, items: Iterable[Item], *, expected: int,
                synced: SyncPoint | Callable[[], SyncPoint] | None = None) -> Generation:
        """Write every item into a new generation and make it live.

        The caller holds the lock. `expected` is the catalog's count; a new
        generation holding any other number of documents is thrown away.
        `synced` is the catalog's sync point the items were read at, recorded in
        the generation; or a function giving it, called once every item has been
        read and the count checked (the caller sums the fingerprint from the items).
        What a killed rebuild left under the new generation's name goes first; the
        rest of the debris is `remove_debris`'s (`operations.rebuild` calls it).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        live = self.current()
        existing = self.generations()
        number = _number(existing[-1]) + 1 if existing else 1
        gen = Generation(f"gen-{number:06d}", self.root / f"gen-{number:06d}")
        building = self.root / f"{gen.name}.tmp"
        shutil.rmtree(building, ignore_errors=True)
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
            # On the disk in this order, so that after a power cut CURRENT names the old
            # generation or a whole new one: every file of the new one and its folder,
            # then its name, then CURRENT (`_point_to`).
            sync_folder(building)
            os.rename(building, gen.path)
            fsync_path(self.root)
            self._point_to(gen, replacing=live)
        except OSError as exc:
            self._abandon(building, gen)
            raise IndexUnavailable(
                f"rebuild failed, the live index was left as it was: {_reason(exc)}"
            ) from exc
        except BaseException:
            self._abandon(building, gen)
            raise
        # The one it replaced stays, as the previous generation; the rest (older ones,
        # orphans) go.
        self._prune(keep=(gen.name, live.name if live is not None else None))
        return gen

    def _abandon(self, building: Path, gen: Generation) -> None:
        """Remove what a failed rebuild wrote: the generation it was building, under its
        temporary name or its own, unless CURRENT already names it."""
        shutil.rmtree(building, ignore_errors=True)
        with contextlib.suppress(IndexUnavailable):  # (CURRENT unreadable: left alone)
            if self.current() != gen:
                shutil.rmtree(gen.path, ignore_errors=True)

    def update(self, items: Iterable[Item], *, expected: int, count: int | None = None,
               items_of: Callable[[list[str]], Iterable[Item]] | None = None) -> int:
        """Add or replace items in the live generation; returns documents written.

        The items go into one new segment written by the segment writer (the
        rebuild's, `searchapp.engine.segments`), with its posting arrays; the
        documents they replace are marked deleted, and the new table of contents
        lists both at once, so a reader sees all of the update or none of it.
        `count` is how many items there are (for the merge plan). With
        `items_of` (ids → the catalog's items), small segments are merged
        into the new one as they pile up (`merge_plan`): their live documents are
        read from the catalog and written again, and the merged segments are left
        out. Raises `TooManySegments` (before writing anything) when the index
        would keep more than `SMALL_SEGMENTS` small segments: a rebuild merges
        them. Raises `IndexUnavailable` when the result disagrees with `expected`
        (the caller then rebuilds).
        """
        def write(ix: Index) -> int:
            _remove_unlisted(ix, "an earlier update that did not finish")
            segments = index_segments(ix)
            adding = count if count is not None else max(1, expected - ix.doc_count())
            merged = merge_plan(segments, adding) if items_of is not None else []
            small = [s for s in segments if s.doc_count_all() < MERGE_UP_TO and s not in merged]
            if len(small) + 1 > SMALL_SEGMENTS:
                raise TooManySegments(
                    f"the live index has {len(small)} small segments (imports' updates); a"
                    " rebuild merges them")
            with contextlib.closing(ix.reader()) as reader:
                return self._write_segment(ix, reader, items, merged, items_of)

        return self._updating(write, expected=expected)

    def _updating(self, write: Callable[[Index], int], *, expected: int) -> int:
        """The frame of both updates (`update`, `update_with_whoosh`): `write` (which
        returns the documents it wrote) into the live generation, the files it wrote
        removed should it fail, then the document count checked against the catalog's
        `expected` (`IndexUnavailable` when they differ: the caller rebuilds)."""
        ix = self.open_index()
        try:
            try:
                written = write(ix)
            except BaseException:
                _remove_unlisted(ix, "this update, which failed")
                raise
            documents = ix.doc_count()
        finally:
            ix.close()
        if documents != expected:
            raise IndexUnavailable(f"the index holds {documents} documents after the update but"
                                   f" the catalog has {expected}")
        return written

    def _write_segment(self, ix: Index, reader: Any, items: Iterable[Item],
                       merged: list[Any], items_of: Callable[[list[str]], Iterable[Item]]
                       | None) -> int:
        """`update`'s writing: the items, then the merged segments' other live documents,
        as one new segment; the replaced documents deleted."""
        builder = SegmentBuilder(ix, segment_postings=_ONE_SEGMENT,
                                 stems=StemTable(str(self.root)), durable=True)
        # The merged segments' live documents, by id, to be written again (those the
        # update replaces are written from `items`).
        leaving = {s.segment_id() for s in merged}
        again: dict[str, None] = {}
        for leaf, _ in reader.leaf_readers():
            if segment_id(leaf) in leaving:
                again.update((fields["id"], None) for _, fields in leaf.iter_docs())
        builder.leave_out(leaving)
        written = changed = 0
        try:
            for item in items:
                changed += 1
                again.pop(item.id, None)
                for docnum in _documents_with(reader, item.id):
                    builder.delete(docnum)
                builder.add(to_document(item))
                written += 1
            if again:
                assert items_of is not None
                for item in items_of(list(again)):
                    builder.add(to_document(item))
                    written += 1
            builder.commit()
        except BaseException:
            cancel(builder)
            raise
        builder.save_stems(str(self.root), _UPDATE_STEMS)
        log.info("index updated: %d documents written as a new segment, %d of them from"
                 " %d small segments merged into it", written, written - changed,
                 len(merged))
        return written

    def update_with_whoosh(self, items: Iterable[Item], *, expected: int) -> int:
        """`update` through Whoosh's own writer (about 3 ms an item, no posting arrays):
        what an update falls back to when the segment writer fails."""
        def write(ix: Index) -> int:
            writer: SegmentWriter = ix.writer(limitmb=WRITER_LIMIT_MB)
            unique = [name for name, field in ix.schema.items() if field.unique]
            written = 0
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
                commit_durably(writer)
            except BaseException:
                abandon(writer)
                raise
            return written

        return self._updating(write, expected=expected)

    def _point_to(self, gen: Generation, *, replacing: Generation | None) -> None:
        """Make `gen` live: CURRENT written beside, synced, renamed over, the folder
        synced. Should that last sync fail, `gen` is live but the switch may not be on the
        disk (IndexUnavailable says so); any other failure leaves CURRENT as it was."""
        tmp = self.root / f"{POINTER}.tmp"
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(gen.name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / POINTER)
        try:
            fsync_path(self.root)
        except OSError as exc:
            then = (f"the index could be back at {replacing.name}" if replacing is not None
                    else "there could be no index")
            raise IndexUnavailable(
                f"rebuilt {gen.name} and made it live ({self.root / POINTER} names it), but"
                f" syncing {self.root} after the switch failed ({_reason(exc)}), so the switch"
                f" may not be on the disk: after a power cut {then}; check the disk, then run"
                " `searchapp reindex` again"
            ) from exc

    def remove_debris(self) -> None:
        """Remove what a crashed or failed rebuild or update left behind: unfinished
        generations, orphans (`orphans`), and files in the live one that its table of
        contents does not list (the caller holds the lock). An update removes the latter
        itself, and a rebuild the unfinished generation in its way (`update`, `rebuild`)."""
        for path in self.root.glob("gen-*.tmp"):
            shutil.rmtree(path, ignore_errors=True)
        live = self.current()
        if live is None:
            return
        for orphan in self.orphans(live):
            log.warning("removing index generation %s: a rebuild was stopped before %s named"
                        " it, so it was never live (%s is)", orphan.name, self.root / POINTER,
                        live.name)
            shutil.rmtree(orphan.path, ignore_errors=True)
        try:
            ix = self.open_index()
        except IndexUnavailable:
            return  # a rebuild replaces it whole
        try:
            _remove_unlisted(ix, "an earlier update that did not finish")
        finally:
            ix.close()

    def _prune(self, *, keep: tuple[str | None, ...]) -> None:
        for gen in self.generations():
            if gen.name not in keep:
                shutil.rmtree(gen.path, ignore_errors=True)


class TooManySegments(IndexUnavailable):
    """An update would leave more small segments than `SMALL_SEGMENTS` (a rebuild then
    merges them)."""


# Small segments (fewer documents than MERGE_UP_TO) are merged by size level, a level
# being a power of MERGE_FACTOR: an update whose segment, with the small segments at or
# below its level, would make MERGE_FACTOR segments writes their live documents again
# into its own (and so on up the levels), as long as that segment stays under
# MERGE_UP_TO documents. At most MERGE_FACTOR - 1 small segments stay per level; each
# document is written again about once per level it climbs (1,000-item imports: about
# 2.3 times in all; bench/RESULTS.md, "#14 small imports, stop 21"). Each segment costs
# every search a share (12 segments at 100,000 items: 1.36 times the CPU of 2), hence a
# small factor. Beyond SMALL_SEGMENTS small segments (segments just under the cap
# cannot merge), the next import's index update is a rebuild.
MERGE_FACTOR = 4
MERGE_UP_TO = 20_000
SMALL_SEGMENTS = 10
# An update is written as one segment, whatever its postings (all or nothing: one TOC).
_ONE_SEGMENT = 1 << 62
# The stem table an update leaves (`segments.StemTable`): the words it stemmed.
_UPDATE_STEMS = "update"


def _number(gen: Generation) -> int:
    return int(gen.name[4:])


def _reason(exc: OSError) -> str:
    return "the disk is full" if exc.errno == errno.ENOSPC else str(exc)


def _level(documents: int) -> int:
    return int(math.log(max(documents, 1), MERGE_FACTOR) + 1e-9)


def merge_plan(segments: list[Any], adding: int) -> list[Any]:
    """Which of the live generation's `segments` an update writing `adding` documents
    merges into its new segment (see MERGE_FACTOR): small ones by level, and every
    segment whose documents are all deleted."""
    merged = [s for s in segments if s.doc_count() == 0]
    rest = sorted((s for s in segments
                   if s.doc_count_all() < MERGE_UP_TO and s.doc_count() > 0),
                  key=lambda s: s.doc_count())
    size = adding
    while True:
        lower = [s for s in rest if _level(s.doc_count()) <= _level(size)]
        total = size + sum(s.doc_count() for s in lower)
        if len(lower) + 1 < MERGE_FACTOR or total >= MERGE_UP_TO:
            return merged
        merged += lower
        rest = [s for s in rest if s not in lower]
        size = total


def _documents_with(reader: Any, item_id: str) -> list[int]:
    """The live documents of `reader` whose id is `item_id`."""
    if not reader.doc_count_all():
        return []
    try:
        postings = reader.postings("id", item_id)
    except TermNotFound:
        return []
    return [d for d in postings.all_ids() if not reader.is_deleted(d)]


def _remove_unlisted(ix: Index, whose: str) -> None:
    """`segments.remove_unlisted`, logged; a failure to remove is logged too (the next
    write tries again)."""
    try:
        removed = remove_unlisted(ix)
    except Exception as exc:  # noqa: BLE001 (a damaged TOC: a rebuild replaces it whole)
        log.warning("the files of %s could not be removed from the index (%s: %s)", whose,
                    exc.__class__.__name__, exc)
        return
    if removed:
        log.info("removed from the index the files of %s: %s", whose, ", ".join(removed))


def _write_synced(folder: Path, point: SyncPoint) -> None:
    tmp = folder / f"{SYNCED}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(point.to_dict(), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / SYNCED)
    fsync_path(folder)
