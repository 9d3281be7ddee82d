"""The operator's work: import inputs and rebuild the index.

The CLI and the admin endpoints both call these, so an import behaves the same
whichever way it arrives: validate everything, store in one transaction under
the import lock, then bring the live index up to date.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from searchapp.indexer import IndexStore
from searchapp.models import Item


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
                 organisation: str | None = None, skip_invalid: bool = False) -> ImportOutcome:
    """Import files and directories (with manifests) given on the command line."""
    parsed = importers.collect(paths, fmt=fmt, organisation=organisation)
    return import_parsed(settings, parsed, skip_invalid=skip_invalid)


def import_parsed(settings: Settings, parsed: Sequence[importers.Parsed], *,
                  skip_invalid: bool = False) -> ImportOutcome:
    """Store what was parsed, all or nothing, and update the live index."""
    problems = [p for result in parsed for p in result.problems]
    items: dict[str, Item] = {}
    for result in parsed:
        for record in result.records:
            items[record.item.id] = record.item  # a later file wins for the same id
    if problems and (not skip_invalid or not items):
        raise ImportRejected(problems)
    store = IndexStore(settings.index_dir)
    with store.lock(timeout=settings.lock_timeout), Catalog(settings.catalog) as catalog:
        report = catalog.upsert(items.values(), sources=[r.source for r in parsed],
                                skipped=len(problems))
        outcome = ImportOutcome(report, skipped=problems, index="unchanged")
        if report.changed or store.current() is None:
            outcome.index = _sync(store, catalog, report.changed)
    return outcome


@dataclass(slots=True)
class EachOutcome:
    """`import_each`: per input its report, or the error that kept it out."""

    results: list[ImportReport | SearchappError]
    index: str = "unchanged"  # "updated", "rebuilt" or "unchanged"


def import_each(settings: Settings, parsed: Sequence[importers.Parsed]) -> EachOutcome:
    """Store several inputs, each in its own transaction, then update the index once.

    For sources that refresh themselves: the valid records of each input are
    stored (its problems count as skipped), and one input failing to store
    leaves the others stored. Raises `Busy` when the lock is not had in time
    (nothing stored then).
    """
    store = IndexStore(settings.index_dir)
    results: list[ImportReport | SearchappError] = []
    changed: list[Item] = []
    with store.lock(timeout=settings.lock_timeout), Catalog(settings.catalog) as catalog:
        for result in parsed:
            try:
                report = catalog.upsert([r.item for r in result.records], sources=[result.source],
                                        skipped=len(result.problems))
            except CatalogError as exc:
                results.append(exc)
                continue
            results.append(report)
            changed.extend(report.changed)
        outcome = EachOutcome(results)
        if changed or store.current() is None:
            outcome.index = _sync(store, catalog, changed)
    return outcome


def _sync(store: IndexStore, catalog: Catalog, changed: list[Item]) -> str:
    """Apply changed items to the live index; rebuild when that is not possible."""
    if store.current() is not None:
        try:
            store.update(changed, expected=catalog.count())
            return "updated"
        except IndexUnavailable:
            pass  # missing, damaged or out of step with the catalog: start afresh
    with closing(catalog.iter_items()) as items:
        store.rebuild(items, expected=catalog.count())
    return "rebuilt"


def remove_source(settings: Settings, name: str, *, delete_items: bool = False) -> int:
    """Forget a source; with `delete_items` also its items (then the index is rebuilt).

    Returns how many items were removed. Raises `NotFound` for an unknown name.
    """
    store = IndexStore(settings.index_dir)
    with store.lock(timeout=settings.lock_timeout), Catalog(settings.catalog) as catalog:
        if catalog.source(name) is None:
            raise NotFound(f"no source named {name!r}")
        removed = catalog.remove_source(name, delete_items=delete_items)
        if removed:
            with closing(catalog.iter_items()) as items:
                store.rebuild(items, expected=catalog.count())
    return removed


def rebuild(settings: Settings) -> RebuildOutcome:
    """Build a new generation from the catalog and swap it in."""
    started = time.perf_counter()
    store = IndexStore(settings.index_dir)
    with store.lock(timeout=settings.lock_timeout), Catalog(settings.catalog) as catalog:
        expected = catalog.count()
        # Closed here, while the catalog is open, even when the rebuild fails.
        with closing(catalog.iter_items()) as items:
            gen = store.rebuild(items, expected=expected)
    return RebuildOutcome(gen.name, expected, time.perf_counter() - started)


def index_is_current(settings: Settings) -> bool:
    """Whether the live index opens and holds as many documents as the catalog."""
    store = IndexStore(settings.index_dir)
    try:
        ix = store.open()
    except IndexUnavailable:
        return False
    try:
        with Catalog(settings.catalog) as catalog:
            return bool(ix.doc_count() == catalog.count())
    finally:
        ix.close()
