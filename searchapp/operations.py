"""The operator's work: import inputs and rebuild the index.

The CLI and the admin endpoints both call these, so an import behaves the same
whichever way it arrives: validate everything, store in one transaction under
the import lock, then bring the live index up to date.
"""

from __future__ import annotations

import errno
import logging
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from searchapp import importers, languages, lockfile
from searchapp.catalog import Catalog, DigestSum, ImportReport, SyncPoint
from searchapp.config import Settings
from searchapp.engine.base import FALLBACKS
from searchapp.errors import (
    PROBLEMS_LISTED,
    CatalogError,
    CatalogMissing,
    ImportRejected,
    IndexUnavailable,
    NotFound,
    Problem,
    SearchappError,
    StoredNotIndexed,
)
from searchapp.importers.spool import Spool
from searchapp.indexer import IndexStore, TooManySegments
from searchapp.models import Item

log = logging.getLogger(__name__)


class Progress(Protocol):
    """Told each phase of the work as it starts ("storing", "indexing", ...), with counts
    done and total when they are known (the CLI draws them, a job records them)."""

    def __call__(self, phase: str, done: int | None = None,
                 total: int | None = None) -> None: ...


# The phase while another import or rebuild holds the index lock.
WAITING = lockfile.WAITING
# The phase once every item has gone to the index: its last segments written and synced
# to disk, and swapped in.
WRITING = "writing the index"


def _quiet(phase: str, done: int | None = None, total: int | None = None) -> None:
    """The progress callback that tells no one."""


class TellProblems(Protocol):
    """Given every problem of an import, in order (input by input, each by line), read
    from the import's working file as they are asked for: before `ImportRejected` is
    raised, or, `skipped`, once the valid records are stored and indexed (the command
    line prints them all; the outcome and the error list `PROBLEMS_LISTED`)."""

    def __call__(self, problems: Iterator[Problem], *, skipped: bool) -> None: ...


@dataclass(slots=True)
class ImportOutcome:
    report: ImportReport
    # The first `PROBLEMS_LISTED` problems of the records skipped (`report.skipped`
    # counts them all).
    skipped: list[Problem] = field(default_factory=list)
    # "updated", "rebuilt" or "unchanged"; "not updated" (with `index_problem`) when the
    # items were stored but the index could not be brought up to date.
    index: str = "updated"
    repaired: int = 0  # items stored by earlier imports, indexed only now
    index_problem: str | None = None
    # How the index was brought up to date when not the usual way (`Synced.note`).
    index_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.report.to_dict(), "index": self.index, "repaired": self.repaired,
                "index_problem": self.index_problem, "index_note": self.index_note,
                "errors": [problem.to_dict() for problem in self.skipped],
                "errors_left_out": self.report.skipped - len(self.skipped)}

    def summary(self) -> str:
        """The one line the command line prints."""
        r = self.report
        text = (f"imported: {r.added} added, {r.updated} updated, {r.unchanged} unchanged"
                + (f", {r.skipped} skipped" if r.skipped else ""))
        if self.index_problem is not None:
            return f"{text}; stored, but the index was not updated: {self.index_problem}"
        return (text + f"; index {self.index}" + _repaired(self.repaired)
                + (f" ({self.index_note})" if self.index_note else ""))


def _repaired(n: int) -> str:
    if not n:
        return ""
    return (f" (with {n:,} item{'s' * (n != 1)} an earlier import stored but did not"
            " index)")


@dataclass(frozen=True, slots=True)
class Synced:
    """What bringing the index up to the catalog did."""

    index: str  # "updated", "rebuilt" or "unchanged"
    written: int = 0  # documents written (all of them for a rebuild)
    # Said with the outcome and in the import log when the update was not written the
    # usual way: `SLOW_UPDATE` (Whoosh's writer, the segment writer having failed).
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RebuildOutcome:
    generation: str
    documents: int  # written (for "unchanged": held)
    seconds: float
    index: str = "rebuilt"  # or, for `rebuild(if_needed=True)`, "updated" or "unchanged"

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "documents": self.documents,
                "seconds": round(self.seconds, 3), "index": self.index}


def import_paths(settings: Settings, paths: Sequence[Path | str], *, fmt: str = "auto",
                 organisation: str | None = None, skip_invalid: bool = False,
                 hints: importers.Hints | None = None, progress: Progress = _quiet,
                 names: Sequence[str] | None = None, locked: bool = False,
                 tell: TellProblems | None = None) -> ImportOutcome:
    """Import files and directories (with manifests) given on the command line.

    `hints` carries the other options (page address, selectors, language, type
    from category); a manifest's values win over them.

    Files are read one record at a time into a spool on disk beside the catalog
    (`importers.spool`), so JSON Lines and CSV files of any size, and any number
    of problems, import in bounded memory; `tell` is given every problem. `names`
    (uploads) name the files in problems instead of their paths. `locked`: the
    caller already holds the index lock (an admin job takes it before it reads its
    upload); otherwise it is taken once the files are read and checked, so another
    import need not wait for the reading.
    """
    with _spool(settings, progress) as spool:
        parsed: list[importers.Parsed] = []
        progress("reading", 0)
        detections = Counter(languages.DETECTIONS)
        with _working_file(settings):
            for k, path in enumerate(paths):
                if names is not None:
                    parsed.append(importers.read_file(
                        Path(path), names[k], fmt=fmt,
                        hints=hints or importers.Hints(organisation=organisation),
                        spool=spool))
                    continue
                parsed.extend(importers.collect([path], fmt=fmt, organisation=organisation,
                                                defaults=hints or importers.Hints(),
                                                spool=spool))
        progress("reading", spool.read, spool.read)
        _log_detections(detections, spool.read)
        return _import_spooled(settings, spool, parsed, skip_invalid=skip_invalid,
                               progress=progress, locked=locked, tell=tell)


def import_parsed(settings: Settings, parsed: Sequence[importers.Parsed], *,
                  skip_invalid: bool = False, progress: Progress = _quiet) -> ImportOutcome:
    """Store what was parsed, all or nothing, and update the live index."""
    if sum(len(result.records) for result in parsed) >= RELEASE_MODELS_FROM:
        languages.release_detector()  # the items are built: lingua's models are not needed
    with _spool(settings, progress) as spool:
        with _working_file(settings):
            for result in parsed:
                spool.take(result)
        return _import_spooled(settings, spool, parsed, skip_invalid=skip_invalid,
                               progress=progress)


# An import changing more items than this rebuilds the index rather than update it: an
# update writes its one segment in one process, holding it in memory (about 170 MiB at
# 20,000 items), where a rebuild spreads over a process per core.
UPDATE_AT_MOST = 20_000


# An import that read at least this many items lets lingua's models go (about 340 MB)
# before it stores and indexes them: that many new or changed items are indexed by a
# rebuild, which needs the memory. A smaller import keeps them, as a reload costs 1-7 s
# of CPU that the next import in the same process would pay again (the CLI and the admin
# jobs import once per process; the test suite imports many times in one).
RELEASE_MODELS_FROM = UPDATE_AT_MOST


def _log_detections(before: Counter[str], read: int) -> None:
    """Say how the languages of the items just read were settled (`languages.detect`),
    and after a big import let lingua's models go (`RELEASE_MODELS_FROM`)."""
    if read >= RELEASE_MODELS_FROM:
        languages.release_detector()
    done = languages.DETECTIONS - before
    if done:
        log.info("languages detected: %d by their stop words, %d by lingua (%d of them in its"
                 " high-accuracy mode)", done["stop words"], done["lingua"],
                 done["lingua, high accuracy"])


def _spool(settings: Settings, progress: Progress) -> Spool:
    return Spool(settings.catalog.parent, progress=lambda done: progress("reading", done))


@contextmanager
def _working_file(settings: Settings) -> Iterator[None]:
    """While records go into the spool and are checked there, nothing is stored yet:
    its database's errors (a full disk above all) fail the import as such."""
    try:
        yield
    except sqlite3.Error as exc:
        raise CatalogError(f"import failed, nothing stored: cannot write the import's"
                           f" working file beside the catalog in {settings.catalog.parent}:"
                           f" {exc}") from exc


def _import_spooled(settings: Settings, spool: Spool, parsed: Sequence[importers.Parsed], *,
                    skip_invalid: bool, progress: Progress, locked: bool = False,
                    tell: TellProblems | None = None) -> ImportOutcome:
    """Check what was spooled, then store it, all or nothing, and update the live index
    (`import_paths` for `tell`)."""
    progress("checking", 0, spool.read)  # (ids against each other and the catalog's)
    with Catalog(settings.catalog) as catalog, _working_file(settings):
        spool.check(catalog.organisations_of)
        problems = spool.problem_count()
        listed = list(spool.problems(limit=PROBLEMS_LISTED))
        kept = spool.count()
    progress("checking", spool.read, spool.read)
    if problems and (not skip_invalid or not kept):
        _tell(settings, spool, tell, skipped=False)
        raise ImportRejected(listed, total=problems)
    store = IndexStore(settings.index_dir, title_boost=settings.title_boost)
    with _lock(store, settings, progress, locked=locked), Catalog(settings.catalog) as catalog:
        catalog.record_interrupted()  # under the lock: an import still pending has died
        before = catalog.sync_point().change
        report = catalog.upsert_spooled(
            spool.file, sources=[r.source for r in parsed], skipped=problems,
            progress=lambda done, total: progress("storing", done, total))
        outcome = ImportOutcome(report, skipped=listed, index="unchanged")
        try:
            synced = _sync(store, catalog, progress)
        except Exception as exc:  # stored either way: say so, whatever broke
            outcome.index, outcome.index_problem = "not updated", _reason(exc)
            _record_not_indexed(catalog, [report.log_id], outcome.index_problem, exc)
            raise StoredNotIndexed(outcome.summary(), outcome.to_dict()) from exc
        outcome.index, outcome.index_note = synced.index, synced.note
        if synced.index == "updated":
            outcome.repaired = synced.written - catalog.count_changed_since(before)
        _record_indexed(catalog, [report.log_id], _logged(synced, outcome.repaired))
    if problems:
        _tell(settings, spool, tell, skipped=True)
    return outcome


def _tell(settings: Settings, spool: Spool, tell: TellProblems | None, *,
          skipped: bool) -> None:
    """Give `tell` the spool's problems; when they cannot be read back (a full disk, for
    sorting them), say whether the valid records were stored."""
    if tell is None:
        return
    try:
        tell(spool.problems(), skipped=skipped)
    except sqlite3.Error as exc:
        raise CatalogError(
            f"the import's problems could not be read back from its working file beside"
            f" the catalog in {settings.catalog.parent}: {exc}; "
            + ("the valid records were stored" if skipped else "nothing stored")) from exc


def new_install(settings: Settings) -> bool:
    """Whether a missing catalog may be made here: on a new install, no index built yet
    either. Beside a built index, a missing catalog was lost (moved, deleted, a mount
    gone), and an empty one the index was not built from must not take its place."""
    try:
        return IndexStore(settings.index_dir).current() is None
    except SearchappError:  # an index is there, if unreadable
        return False


def _existing(settings: Settings) -> None:
    """`CatalogMissing` when there is no catalog: only an import makes one (checked
    before the index lock, whose file would make the index's folder)."""
    if not settings.catalog.exists():
        raise CatalogMissing(settings.catalog)


def _lock(store: IndexStore, settings: Settings, progress: Progress, *,
          locked: bool = False) -> AbstractContextManager[None]:
    """The index lock, saying so when it must be waited for; nothing when the caller
    holds it (`locked`)."""
    if locked:
        return nullcontext()
    return store.lock(timeout=settings.lock_timeout, waiting=lambda: progress(WAITING))


def _reason(exc: BaseException) -> str:
    """Why the index could not be brought up to date, for a person."""
    if isinstance(exc, SearchappError):
        return str(exc)
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return f"the disk is full ({exc.filename or exc.strerror})"
        if exc.errno == errno.EDQUOT:
            return f"the disk quota is used up ({exc.filename or exc.strerror})"
        if exc.errno == errno.EFBIG:
            return f"a file grew past the size allowed ({exc.filename or exc.strerror})"
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return f"{exc.__class__.__name__}: {exc}"


# What a write that ran out of room raises: no space, no quota, a file size limit.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _record_not_indexed(catalog: Catalog, log_ids: list[int | None], reason: str,
                        exc: BaseException) -> None:
    log.error("items stored but the index was not updated: %s", reason,
              exc_info=not isinstance(exc, (SearchappError, OSError)))
    _record_indexed(catalog, log_ids, f"not updated: {reason}")


def _record_indexed(catalog: Catalog, log_ids: list[int | None], what: str) -> None:
    """Say in the import log what became of the index; a log that cannot be written
    (the catalog's disk full too) is logged, and the import's outcome stands."""
    try:
        catalog.record_indexed(log_ids, what)
    except CatalogError as exc:
        log.warning("the import log could not be told the index was %s (%s); it says"
                    " the import was interrupted once another import or rebuild starts",
                    what, exc)


def _logged(synced: Synced, repaired: int) -> str:
    """What the import log says of the index after an import."""
    return (synced.index + (f"; repaired {repaired} items of earlier imports" if repaired else "")
            + (f"; {synced.note}" if synced.note else ""))


@dataclass(slots=True)
class EachOutcome:
    """`import_each`: per input its report, or the error that kept it out."""

    results: list[ImportReport | SearchappError]
    # "updated", "rebuilt" or "unchanged"; "not updated" (with `index_problem`) when the
    # items were stored but the index could not be brought up to date.
    index: str = "unchanged"
    index_problem: str | None = None


def import_each(settings: Settings, parsed: Sequence[importers.Parsed], *,
                progress: Progress = _quiet) -> EachOutcome:
    """Store several inputs, each in its own transaction, then update the index once.

    For sources that refresh themselves: the valid records of each input are
    stored (its problems count as skipped, records that would move an id to
    another organisation among them), and one input failing to store
    leaves the others stored. Raises `Busy` when the lock is not had in time
    (nothing stored then).
    """
    store = IndexStore(settings.index_dir)
    results: list[ImportReport | SearchappError] = []
    with _lock(store, settings, progress), \
            Catalog(settings.catalog, create=False) as catalog:
        # An id stays with its organisation: records that would move one are skipped.
        importers.check_organisations(parsed, catalog.organisations_of)
        catalog.record_interrupted()  # under the lock: an import still pending has died
        before = catalog.sync_point().change
        for done, result in enumerate(parsed):
            progress("storing", done, len(parsed))
            try:
                report = catalog.upsert([r.item for r in result.records], sources=[result.source],
                                        skipped=len(result.problems))
            except CatalogError as exc:
                results.append(exc)
                continue
            results.append(report)
        progress("storing", len(parsed), len(parsed))
        outcome = EachOutcome(results)
        log_ids = [r.log_id for r in results if isinstance(r, ImportReport)]
        try:
            synced = _sync(store, catalog, progress)
        except Exception as exc:  # noqa: BLE001 (stored either way: say so, whatever broke)
            outcome.index, outcome.index_problem = "not updated", _reason(exc)
            _record_not_indexed(catalog, log_ids, outcome.index_problem, exc)
            return outcome
        outcome.index = synced.index
        repaired = synced.written - catalog.count_changed_since(before) \
            if synced.index == "updated" else 0
        _record_indexed(catalog, log_ids, _logged(synced, repaired))
    return outcome


def remove_source(settings: Settings, name: str, *, delete_items: bool = False,
                  progress: Progress = _quiet) -> int:
    """Forget a source; with `delete_items` also its items (then the index is rebuilt).

    Returns how many items were removed. Raises `NotFound` for an unknown name.
    """
    store = IndexStore(settings.index_dir)
    _existing(settings)
    with _lock(store, settings, progress), \
            Catalog(settings.catalog, create=False) as catalog:
        if catalog.source(name) is None:
            raise NotFound(f"no source named {name!r}")
        removed = catalog.remove_source(name, delete_items=delete_items)
        if removed:
            expected = catalog.count()
            point = catalog.sync_point()
            with closing(catalog.iter_items()) as items:
                store.rebuild(_counted(items, "rebuilding the index", expected, progress,
                                       then=WRITING), expected=expected, synced=point)
    return removed


def _sync(store: IndexStore, catalog: Catalog, progress: Progress, *,
          point: SyncPoint | None = None) -> Synced:
    """Bring the live index up to the catalog, by what it holds rather than its count.

    The live generation records the catalog's sync point it was last brought
    up to (`IndexStore.synced`). The same catalog at the same change and
    fingerprint: nothing to do. The same catalog further on, with no items
    removed since: the items changed since then are written into the live
    generation as a new segment (`_update`; also those of an earlier import
    whose index update was cut off: the repair). Otherwise (no index, another
    catalog, items removed, a record missing, more than `UPDATE_AT_MOST` items
    to write, too many small segments, an update that fails), a full rebuild. The caller holds
    the lock; `point` is the catalog's sync point when the caller has it.
    """
    point = point if point is not None else catalog.sync_point()
    synced = store.synced() if store.current() is not None else None
    if synced == point:
        return Synced("unchanged")
    changed = catalog.count_changed_since(synced.change) if synced is not None else 0
    # Many changed items are written by a whole rebuild (in several processes).
    if synced is not None and synced.catalog == point.catalog \
            and catalog.removed_at() <= synced.change < point.change \
            and changed <= UPDATE_AT_MOST:
        try:
            note = _update(store, catalog, synced.change, changed, progress)
            store.mark_synced(point)
            return Synced("updated", changed, note=note)
        except TooManySegments as exc:
            log.info("%s: rebuilding the index instead of updating it", exc)
        except (IndexUnavailable, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in NO_ROOM:
                raise  # out of room: a rebuild would need more than the update did
            # Missing, damaged, unwritable or out of step with the catalog: start afresh.
            log.warning("the index update failed (%s); rebuilding it from the catalog",
                        _reason(exc))
    expected = catalog.count()
    _check_shrink(store, catalog, expected)
    with closing(catalog.iter_items()) as items:
        store.rebuild(_counted(items, "rebuilding the index", expected, progress,
                               then=WRITING), expected=expected, synced=point)
    return Synced("rebuilt", expected)


# What FALLBACKS counts when an index update is written by Whoosh's writer because the
# segment writer failed.
UPDATED_BY_WHOOSH = "index update: Whoosh's writer, the segment writer failed"
# What the import's outcome, its summary line and the import log say then: the counter
# above lives in the importing process (a command, a job), which is gone by the time
# anyone asks `/healthz`.
SLOW_UPDATE = ("written by Whoosh's writer: the segment writer failed, see the log;"
               " searches are slower until `searchapp reindex`")


def _update(store: IndexStore, catalog: Catalog, since: int, changed: int,
            progress: Progress) -> str | None:
    """Write the items changed since change `since` into the live generation: as a new
    segment by the segment writer (`IndexStore.update`), or, should that fail other than
    by a full disk or a damaged index (a fault of its own; nothing of it is kept), by
    Whoosh's writer, logged and counted (`UPDATED_BY_WHOOSH`): then `SLOW_UPDATE`, for the
    outcome to say, else None."""
    expected = catalog.count()
    try:
        with closing(catalog.changed_since(since)) as items:
            store.update(_counted(items, "indexing", changed, progress, then=WRITING),
                         expected=expected, count=changed, items_of=catalog.items_of)
        return None
    except (IndexUnavailable, OSError):
        raise
    except Exception as exc:  # any fault of the fast path: the slow one follows
        FALLBACKS.count(UPDATED_BY_WHOOSH)
        log.warning("the segment writer failed to update the index (%s); writing the update"
                    " with Whoosh's writer instead, about 3 ms an item", _reason(exc),
                    exc_info=True)
    with closing(catalog.changed_since(since)) as items:
        store.update_with_whoosh(_counted(items, "indexing", changed, progress, then=WRITING),
                                 expected=expected)
    return SLOW_UPDATE


def _counted(items: Iterable[Item], phase: str, total: int, progress: Progress, *,
             then: str | None = None, every: int = 1_000) -> Iterator[Item]:
    """`items`, telling `progress` the phase now and how many have gone by as they go
    (every `every`, and at the end); once the last has gone by, the phase `then` if
    given (what is done with them before the work ends)."""
    progress(phase, 0, total)

    def counting() -> Iterator[Item]:
        done = 0
        for done, item in enumerate(items, 1):
            yield item
            if done % every == 0:
                progress(phase, done, total)
        progress(phase, done, total)
        if then is not None:
            progress(then)

    return counting()


def rebuild(settings: Settings, *, progress: Progress = _quiet,
            check_space: bool = True, allow_shrink: bool = False,
            if_needed: bool = False, locked: bool = False) -> RebuildOutcome:
    """Build a new generation from the catalog and swap it in.

    First, unless told not to, check that the disk has room for the new
    generation beside the live one (`room_needed`), and that the catalog is
    not empty or far smaller than the live index (a truncated catalog, or
    SEARCHAPP_CATALOG pointing at the wrong file, would otherwise replace the
    last copy of the real data); refuse if not.

    With `if_needed`, an index that is only behind the catalog (the same
    catalog, no item removed since, the kept fingerprint the one read afresh)
    is brought up to date in place, writing only the items changed since
    (`RebuildOutcome.index` "updated"); one that already holds what the catalog
    holds is left alone ("unchanged"). `locked`: the caller holds the index lock.
    """
    started = time.perf_counter()
    store = IndexStore(settings.index_dir, title_boost=settings.title_boost)
    _existing(settings)
    with _lock(store, settings, progress, locked=locked), \
            Catalog(settings.catalog, create=False) as catalog:
        catalog.record_interrupted()  # under the lock: an import still pending has died
        store.remove_debris()  # before its size is measured for the room a rebuild needs
        fresh = None  # the fingerprint read afresh, once
        if if_needed:
            kept = catalog.sync_point()
            fresh = catalog.sync_point(recompute=True)
            if kept == fresh and _opens_as_declared(store):
                synced = store.synced()
                if synced == kept:
                    return RebuildOutcome(_live_name(store), catalog.count(),
                                          time.perf_counter() - started, "unchanged")
                if synced is not None and synced.catalog == kept.catalog \
                        and catalog.removed_at() <= synced.change < kept.change:
                    done = _sync(store, catalog, progress, point=kept)
                    return RebuildOutcome(_live_name(store), done.written,
                                          time.perf_counter() - started, done.index)
        expected = catalog.count()
        if not allow_shrink:
            _check_shrink(store, catalog, expected)
        if check_space:
            _check_room(store, catalog, expected)
        # The fingerprint read afresh is kept with the new generation (a change made
        # behind searchapp's back then stops showing as a difference): unless it was
        # just read, summed from the items as the rebuild reads them, and kept once
        # they have all been read and written.
        digests = DigestSum() if fresh is None else None
        at = catalog.sync_point()

        def read_at() -> SyncPoint:
            return catalog.refingerprint(fresh if digests is None else digests.point(at))

        # Closed here, while the catalog is open, even when the rebuild fails.
        with closing(catalog.iter_items()) as items:
            read = items if digests is None else digests.passing(items)
            gen = store.rebuild(_counted(read, "indexing", expected, progress, then=WRITING),
                                expected=expected, synced=read_at)
    return RebuildOutcome(gen.name, expected, time.perf_counter() - started)


def _live_name(store: IndexStore) -> str:
    gen = store.current()
    return gen.name if gen is not None else ""


def _opens_as_declared(store: IndexStore) -> bool:
    try:
        store.document_count()
    except IndexUnavailable:
        return False
    return store.written_as_declared()


# Room a new generation is expected to take: the live one's size per item times
# the items to write, with this margin; without a live generation, this many
# times the catalog file (the index, with its posting arrays, is larger).
ROOM_MARGIN = 1.2
ROOM_PER_CATALOG_BYTE = 3.0


def room_needed(store: IndexStore, catalog: Catalog, items: int) -> int:
    """Bytes a rebuild of `items` items should find free in the index directory."""
    gen = store.current()
    if gen is not None and gen.path.is_dir():
        size = store.size_bytes(gen)
        documents = _live_documents(store)
        if documents:
            return int(size * max(items, 1) / documents * ROOM_MARGIN)
    return int(catalog.path.stat().st_size * ROOM_PER_CATALOG_BYTE)


def indexed_documents(settings: Settings) -> int:
    """Documents in the live index (0 when there is none or it cannot be opened)."""
    return _live_documents(IndexStore(settings.index_dir))


def _live_documents(store: IndexStore) -> int:
    try:
        return store.document_count()
    except IndexUnavailable:
        return 0


# A rebuild from a catalog with fewer than this share of the live index's documents
# is refused unless forced.
SHRINK_LIMIT = 0.5


def _check_shrink(store: IndexStore, catalog: Catalog, items: int) -> None:
    live = _live_documents(store)
    if live and items < live * SHRINK_LIMIT:
        raise IndexUnavailable(
            f"refusing to rebuild: the catalog {catalog.path} has {items:,} items but the live"
            f" index holds {live:,}; the rebuild would drop {live - items:,} of them. If this"
            " catalog is the right one (the items were deleted on purpose), run"
            " `searchapp reindex --force`; if not, point SEARCHAPP_CATALOG at the right"
            " catalog or `searchapp restore` a backup. The live index was left as it was")


def _check_room(store: IndexStore, catalog: Catalog, items: int) -> None:
    needed = room_needed(store, catalog, items)
    free = shutil.disk_usage(store.root).free
    if free < needed:
        raise IndexUnavailable(
            f"not enough room for a rebuild: it needs about {needed:,} bytes free in"
            f" {store.root} (a new generation beside the live one) and {free:,} are free;"
            " free some room and try again (or --force to try anyway). The live index"
            " was left as it was")


def index_is_current(settings: Settings) -> bool:
    """Whether the live index opens, was written with today's fields (and title boost),
    and holds what the catalog holds: it records the catalog's id, change count and
    fingerprint, and the fingerprint, read afresh from every item, is the one the catalog
    keeps (an edit made behind searchapp's back shows there), and the document count
    agrees."""
    return index_problem(settings) is None


def index_problem(settings: Settings, *, recompute: bool = True) -> str | None:
    """Why the live index does not hold what the catalog holds (None: it does).

    With `recompute`, the catalog's fingerprint is read afresh from every item
    (`reindex --if-needed`); without, the one kept with the catalog is used
    (`/healthz`, cheap).
    """
    store = IndexStore(settings.index_dir, title_boost=settings.title_boost)
    try:
        documents = store.document_count()
    except IndexUnavailable as exc:
        return str(exc)
    if not store.written_as_declared():
        return ("the index was written with other fields or another title boost; run"
                " `searchapp reindex`")
    with Catalog(settings.catalog, reading=True) as catalog:
        return sync_problem(store, catalog, documents, recompute=recompute)


# What `sync_problem` says instead of advising a rebuild while the index lock is held.
UNDER_WAY = ("an import or rebuild is under way (the index lock is held): look again once"
             " it has finished")


def sync_problem(store: IndexStore, catalog: Catalog, documents: int, *,
                 recompute: bool = False) -> str | None:
    """Why the live generation (holding `documents`) is not the catalog's content, by
    what it records it was brought up to (None: it is). While an import or rebuild holds
    the index lock, the index lagging behind the catalog, or the count read before it
    wrote and the record after (`/healthz` reads one, then the other), is what an import
    passes through: the reason says it is under way instead of advising a rebuild."""
    synced = store.synced()
    point = catalog.sync_point(recompute=recompute)
    if synced is None:
        return ("the index does not record which catalog change it holds (built by an"
                " older searchapp, or its record is damaged); run `searchapp reindex`")
    if synced.catalog != point.catalog:
        if documents and not catalog.count():  # a rebuild would refuse to empty the index
            return (f"the catalog {catalog.path} holds no items and the index was built"
                    f" from another catalog, with {documents:,} items (was the catalog"
                    " emptied, cut short or replaced?): restore it from a backup (`searchapp"
                    " restore`), run `searchapp recover` to rebuild it from the index, or"
                    " point SEARCHAPP_CATALOG at the right catalog")
        return ("the index was built from another catalog; run `searchapp reindex` (or"
                " point SEARCHAPP_CATALOG at the right catalog)")
    if synced.change < point.change:
        behind = catalog.count_changed_since(synced.change)
        last = catalog.imports(limit=1)
        said = last[0].get("indexed") if last else None
        why = f" (the last import: index {said})" if said and not said.startswith(
            ("updated", "rebuilt", "unchanged")) else ""
        stored = (f"the index is behind the catalog: {behind:,} item{'s' * (behind != 1)}"
                  " stored but not indexed")
        if store.busy():
            return f"{stored} yet: {UNDER_WAY}"
        return (f"{stored}{why}; the next import or `searchapp reindex --if-needed` indexes"
                " them")
    if synced != point:
        return ("the catalog's content differs from what the index holds (changed outside"
                " searchapp, or an older copy of the catalog put in its place); run"
                " `searchapp reindex`")
    items = catalog.count()
    if documents != items:
        held = f"the index holds {documents:,} documents and the catalog {items:,} items"
        if store.busy():
            return f"{held}: {UNDER_WAY}"
        return f"{held}; run `searchapp reindex`"
    return None
