"""The operator's work: import inputs and rebuild the index.

The CLI and the admin endpoints both call these, so an import behaves the same
whichever way it arrives: validate everything, store in one transaction under
the import lock, then bring the live index up to date.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from searchapp import importers
from searchapp.catalog import Catalog, ImportReport
from searchapp.config import Settings
from searchapp.errors import (
    CatalogError,
    ImportRejected,
    IndexUnavailable,
    NotFound,
    Problem,
    SearchappError,
)
from searchapp.importers.spool import Spool
from searchapp.indexer import IndexStore
from searchapp.models import Item


class Progress(Protocol):
    """Told each phase of the work as it starts ("storing", "indexing", ...), with counts
    done and total when they are known (the CLI draws them, a job records them)."""

    def __call__(self, phase: str, done: int | None = None,
                 total: int | None = None) -> None: ...


def _quiet(phase: str, done: int | None = None, total: int | None = None) -> None:
    """The progress callback that tells no one."""


@dataclass(slots=True)
class ImportOutcome:
    report: ImportReport
    skipped: list[Problem] = field(default_factory=list)
    index: str = "updated"  # "updated", "rebuilt" or "unchanged"

    def to_dict(self) -> dict[str, Any]:
        return {**self.report.to_dict(), "index": self.index,
                "errors": [{"source": p.source, "line": p.line, "message": p.message}
                           for p in self.skipped]}


@dataclass(frozen=True, slots=True)
class RebuildOutcome:
    generation: str
    documents: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "documents": self.documents,
                "seconds": round(self.seconds, 3)}


def import_paths(settings: Settings, paths: Sequence[Path | str], *, fmt: str = "auto",
                 organisation: str | None = None, skip_invalid: bool = False,
                 hints: importers.Hints | None = None, progress: Progress = _quiet,
                 names: Sequence[str] | None = None) -> ImportOutcome:
    """Import files and directories (with manifests) given on the command line.

    `hints` carries the other options (page address, selectors, language, type
    from category); a manifest's values win over them.

    Files are read one record at a time into a spool on disk beside the catalog
    (`importers.spool`), so JSON Lines and CSV files of any size import in
    bounded memory. `names` (uploads) name the files in problems instead of
    their paths.
    """
    with _spool(settings, progress) as spool:
        parsed: list[importers.Parsed] = []
        progress("reading", 0)
        for k, path in enumerate(paths):
            if names is not None:
                parsed.append(importers.read_file(Path(path), names[k], fmt=fmt, hints=hints
                                                  or importers.Hints(organisation=organisation),
                                                  spool=spool))
                continue
            parsed.extend(importers.collect([path], fmt=fmt, organisation=organisation,
                                            defaults=hints or importers.Hints(), spool=spool))
        progress("reading", spool.read, spool.read)
        return _import_spooled(settings, spool, parsed, skip_invalid=skip_invalid,
                               progress=progress)


def import_parsed(settings: Settings, parsed: Sequence[importers.Parsed], *,
                  skip_invalid: bool = False, progress: Progress = _quiet) -> ImportOutcome:
    """Store what was parsed, all or nothing, and update the live index."""
    with _spool(settings, progress) as spool:
        for result in parsed:
            spool.take(result)
        return _import_spooled(settings, spool, parsed, skip_invalid=skip_invalid,
                               progress=progress)


# An import changing more items than this rebuilds the index rather than update it
# (Whoosh's writer, which updates, is several times slower per item than a rebuild).
UPDATE_AT_MOST = 20_000


def _spool(settings: Settings, progress: Progress) -> Spool:
    return Spool(settings.catalog.parent, progress=lambda done: progress("reading", done))


def _import_spooled(settings: Settings, spool: Spool, parsed: Sequence[importers.Parsed], *,
                    skip_invalid: bool, progress: Progress) -> ImportOutcome:
    """Check what was spooled, then store it, all or nothing, and update the live index."""
    progress("checking")
    with Catalog(settings.catalog) as catalog:
        spool.check(catalog.organisations_of)
    problems = spool.problems()
    kept = spool.count()
    if problems and (not skip_invalid or not kept):
        raise ImportRejected(problems)
    store = IndexStore(settings.index_dir, title_boost=settings.title_boost)
    with store.lock(timeout=settings.lock_timeout), Catalog(settings.catalog) as catalog:
        report = catalog.upsert(_counted(spool.items(), "storing", kept, progress),
                                sources=[r.source for r in parsed], skipped=len(problems),
                                keep_changed=UPDATE_AT_MOST)
        outcome = ImportOutcome(report, skipped=problems, index="unchanged")
        if report.added or report.updated or store.current() is None:
            outcome.index = _sync(store, catalog,
                                  report.changed if report.changed_kept else None, progress)
    return outcome


@dataclass(slots=True)
class EachOutcome:
    """`import_each`: per input its report, or the error that kept it out."""

    results: list[ImportReport | SearchappError]
    index: str = "unchanged"  # "updated", "rebuilt" or "unchanged"


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
    changed: list[Item] = []
    with store.lock(timeout=settings.lock_timeout), Catalog(settings.catalog) as catalog:
        # An id stays with its organisation: records that would move one are skipped.
        importers.check_organisations(parsed, catalog.organisations_of)
        for done, result in enumerate(parsed):
            progress("storing", done, len(parsed))
            try:
                report = catalog.upsert([r.item for r in result.records], sources=[result.source],
                                        skipped=len(result.problems))
            except CatalogError as exc:
                results.append(exc)
                continue
            results.append(report)
            changed.extend(report.changed)
        progress("storing", len(parsed), len(parsed))
        outcome = EachOutcome(results)
        if changed or store.current() is None:
            outcome.index = _sync(store, catalog, changed, progress)
    return outcome


def remove_source(settings: Settings, name: str, *, delete_items: bool = False,
                  progress: Progress = _quiet) -> int:
    """Forget a source; with `delete_items` also its items (then the index is rebuilt).

    Returns how many items were removed. Raises `NotFound` for an unknown name.
    """
    store = IndexStore(settings.index_dir)
    with store.lock(timeout=settings.lock_timeout), Catalog(settings.catalog) as catalog:
        if catalog.source(name) is None:
            raise NotFound(f"no source named {name!r}")
        removed = catalog.remove_source(name, delete_items=delete_items)
        if removed:
            expected = catalog.count()
            with closing(catalog.iter_items()) as items:
                store.rebuild(_counted(items, "rebuilding the index", expected, progress),
                              expected=expected)
    return removed


def _sync(store: IndexStore, catalog: Catalog, changed: list[Item] | None,
          progress: Progress) -> str:
    """Apply changed items to the live index; rebuild when that is not possible, or when
    there are too many to list (`changed` is None)."""
    if changed is not None and store.current() is not None:
        try:
            store.update(_counted(changed, "indexing", len(changed), progress),
                         expected=catalog.count())
            return "updated"
        except IndexUnavailable:
            pass  # missing, damaged or out of step with the catalog: start afresh
    expected = catalog.count()
    try:
        _check_shrink(store, catalog, expected)
    except IndexUnavailable as exc:
        raise IndexUnavailable(f"the items were stored in the catalog, but the index was not"
                               f" rebuilt from it: {exc}") from exc
    with closing(catalog.iter_items()) as items:
        store.rebuild(_counted(items, "rebuilding the index", expected, progress),
                      expected=expected)
    return "rebuilt"


def _counted(items: Iterable[Item], phase: str, total: int, progress: Progress, *,
             every: int = 1_000) -> Iterator[Item]:
    """`items`, telling `progress` the phase now and how many have gone by as they go
    (every `every`, and at the end)."""
    progress(phase, 0, total)

    def counting() -> Iterator[Item]:
        done = 0
        for done, item in enumerate(items, 1):
            yield item
            if done % every == 0:
                progress(phase, done, total)
        progress(phase, done, total)

    return counting()


def rebuild(settings: Settings, *, progress: Progress = _quiet,
            check_space: bool = True, allow_shrink: bool = False) -> RebuildOutcome:
    """Build a new generation from the catalog and swap it in.

    First, unless told not to, check that the disk has room for the new
    generation beside the live one (`room_needed`), and that the catalog is
    not empty or far smaller than the live index (a truncated catalog, or
    SEARCHAPP_CATALOG pointing at the wrong file, would otherwise replace the
    last copy of the real data); refuse if not.
    """
    started = time.perf_counter()
    store = IndexStore(settings.index_dir, title_boost=settings.title_boost)
    with store.lock(timeout=settings.lock_timeout), Catalog(settings.catalog) as catalog:
        expected = catalog.count()
        if not allow_shrink:
            _check_shrink(store, catalog, expected)
        if check_space:
            _check_room(store, catalog, expected)
        # Closed here, while the catalog is open, even when the rebuild fails.
        with closing(catalog.iter_items()) as items:
            gen = store.rebuild(_counted(items, "indexing", expected, progress),
                                expected=expected)
    return RebuildOutcome(gen.name, expected, time.perf_counter() - started)


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
    and holds as many documents as the catalog."""
    store = IndexStore(settings.index_dir, title_boost=settings.title_boost)
    try:
        documents = store.document_count()
    except IndexUnavailable:
        return False
    if not store.written_as_declared():
        return False
    with Catalog(settings.catalog) as catalog:
        return documents == catalog.count()
