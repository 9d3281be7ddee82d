"""Refreshing the sources the operator follows.

`refresh` fetches the named sources, or every one that is due, reads each
answer with the importers, stores what changed (each source in its own
transaction) and updates the index once at the end. A source that fails is
recorded with its error and time and keeps its earlier items; the others go
on. `run_loop` does that until asked to stop. The CLI and the admin endpoint
both call these.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from searchapp import importers, operations
from searchapp.catalog import Catalog, ImportReport
from searchapp.config import Settings
from searchapp.errors import PROBLEMS_LISTED, FetchError, NotFound, SearchappError
from searchapp.fetch import Fetched, Fetcher, FetchOptions
from searchapp.sources import Source, describe_kind, sniff_kind

__all__ = ["RefreshOutcome", "SourceResult", "refresh", "run_loop", "seconds_until_due"]

MAX_PARALLEL = 4  # sources on different hosts fetched at once; one host is always one at a time
LOOP_MAX_WAIT = 60.0  # seconds; the loop looks again at least this often (new sources)

IMPORTED, NOT_MODIFIED, FAILED = "imported", "not modified", "failed"


@dataclass(slots=True)
class SourceResult:
    """What one refresh did for one source."""

    name: str
    status: str  # IMPORTED, NOT_MODIFIED or FAILED
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    error: str | None = None
    problems: list[str] = field(default_factory=list)  # why records were skipped

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def summary(self) -> str:
        if self.status == IMPORTED:
            text = f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged"
            return text + (f", {self.skipped} skipped" if self.skipped else "")
        if self.status == NOT_MODIFIED:
            return "not modified"
        return f"failed: {self.error}"

    def line(self) -> str:
        return f"{self.name}: {self.summary()}"

    def to_dict(self) -> dict[str, Any]:
        """The result as a job records it: the first `PROBLEMS_LISTED` problems, and
        how many more there were."""
        listed = PROBLEMS_LISTED
        return {"name": self.name, "result": self.status, "added": self.added,
                "updated": self.updated, "unchanged": self.unchanged, "skipped": self.skipped,
                "error": self.error, "problems": self.problems[:listed],
                "problems_left_out": max(0, len(self.problems) - listed),
                "summary": self.summary()}


@dataclass(slots=True)
class RefreshOutcome:
    results: list[SourceResult] = field(default_factory=list)
    # "updated", "rebuilt" or "unchanged"; "not updated" (with `index_problem`) when items
    # were stored but the index could not be brought up to date.
    index: str = "unchanged"
    index_problem: str | None = None

    @property
    def failed(self) -> list[SourceResult]:
        return [r for r in self.results if r.failed]

    def to_dict(self) -> dict[str, Any]:
        return {"sources": [r.to_dict() for r in self.results], "index": self.index,
                "index_problem": self.index_problem, "failed": len(self.failed)}


def _quiet(phase: str, done: int | None = None, total: int | None = None) -> None:
    """Progress told to no one."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def refresh(settings: Settings, names: Sequence[str] = (), *,
            now: dt.datetime | None = None,
            progress: operations.Progress | None = None) -> RefreshOutcome:
    """Refresh the named sources (all of them, due or not), or else every due one.

    Raises `NotFound` for a name that is not a source, before fetching anything.
    `progress` is told the phases (fetching, storing, indexing) with counts.
    """
    now = now or _now()
    progress = progress or _quiet
    with Catalog(settings.catalog, create=False) as catalog:
        if names:
            chosen = []
            for name in dict.fromkeys(names):
                source = catalog.source(name)
                if source is None:
                    raise NotFound(f"no source named {name!r} (`searchapp sources list`"
                                   " shows them)")
                chosen.append(source)
        else:
            chosen = [source for source in catalog.sources() if source.is_due(now)]
    outcome = RefreshOutcome()
    if not chosen:
        return outcome

    answers = _fetch_all(settings, chosen, progress)
    results: dict[str, SourceResult] = {}
    to_store: list[tuple[Source, Fetched, str, importers.Parsed]] = []
    for source, answer in zip(chosen, answers, strict=True):
        source.last_fetched = now
        if isinstance(answer, FetchError):
            results[source.name] = _failed(source, str(answer), now)
        elif answer.not_modified:
            source.etag = answer.etag or source.etag
            source.last_modified = answer.last_modified or source.last_modified
            source.last_ok = now
            source.last_result = NOT_MODIFIED
            results[source.name] = SourceResult(source.name, NOT_MODIFIED)
        else:
            read = _read(source, answer)
            if isinstance(read, str):
                results[source.name] = _failed(source, read, now, forget_validators=True)
            else:
                to_store.append((source, answer, *read))

    if to_store:
        try:
            stored = operations.import_each(settings, [parsed for *_, parsed in to_store],
                                            progress=progress)
        except SearchappError as exc:
            for source, *_ in to_store:
                results[source.name] = _failed(source, str(exc), now, forget_validators=True)
        else:
            outcome.index, outcome.index_problem = stored.index, stored.index_problem
            for (source, answer, kind, parsed), report in zip(to_store, stored.results,
                                                              strict=True):
                if isinstance(report, ImportReport):
                    results[source.name] = _imported(source, answer, kind, parsed, report, now)
                else:
                    results[source.name] = _failed(source, str(report), now,
                                                   forget_validators=True)

    with Catalog(settings.catalog, create=False) as catalog:
        for source in chosen:
            catalog.save_source_state(source)
    outcome.results = [results[source.name] for source in chosen]
    return outcome


def _fetch_all(settings: Settings, sources: list[Source],
               progress: operations.Progress) -> list[Fetched | FetchError]:
    """Every source's answer or fetch error, in order; hosts in parallel, each host serially."""

    def fetch(source: Source) -> Fetched | FetchError:
        try:
            return fetcher.get(source.url, etag=source.etag, last_modified=source.last_modified)
        except FetchError as exc:
            return exc

    answers: list[Fetched | FetchError] = []
    progress("fetching", 0, len(sources))
    with Fetcher(FetchOptions.from_settings(settings)) as fetcher, \
            ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(sources))) as pool:
        for answer in pool.map(fetch, sources):
            answers.append(answer)
            progress("fetching", len(answers), len(sources))
    return answers


def _read(source: Source, answer: Fetched) -> tuple[str, importers.Parsed] | str:
    """The answer's kind and parsed items, or why it cannot be used."""
    kind = sniff_kind(answer.content_type, answer.body)
    if kind is None:
        what = answer.content_type or "data of no declared type"
        return f"{answer.url} answered with {what}, not a feed, page or listing"
    if source.kind and kind != source.kind:
        return (f"expected {describe_kind(source.kind)} but {answer.url} answered with"
                f" {describe_kind(kind)} ({answer.content_type or 'no Content-Type'})")
    hints = importers.Hints(organisation=source.organisation, url=answer.url,
                            selectors=source.selectors or None, language=source.language)
    parsed = importers.parse_bytes(answer.body, name=source.name, hints=hints)
    if not parsed.records:
        if parsed.problems:
            more = len(parsed.problems) - 1
            return str(parsed.problems[0]) + (f" (and {more} more problems)" if more else "")
        if source.items_seen:
            return (f"found no items at {answer.url} (there were {source.items_seen} last"
                    " time); earlier items kept")
        return f"found no items at {answer.url}"
    return kind, parsed


def _failed(source: Source, message: str, now: dt.datetime, *,
            forget_validators: bool = False) -> SourceResult:
    """Record a failure. After an answer that could not be used, the validators are
    dropped, so the next refresh reads the whole answer again instead of a 304."""
    source.last_result = FAILED
    source.last_error = message
    source.last_error_at = now
    if forget_validators:
        source.etag = source.last_modified = None
    return SourceResult(source.name, FAILED, error=message)


def _imported(source: Source, answer: Fetched, kind: str, parsed: importers.Parsed,
              report: ImportReport, now: dt.datetime) -> SourceResult:
    result = SourceResult(source.name, IMPORTED, added=report.added, updated=report.updated,
                          unchanged=report.unchanged, skipped=report.skipped,
                          problems=[str(p) for p in parsed.problems])
    source.kind = source.kind or kind
    source.etag = answer.etag
    source.last_modified = answer.last_modified
    source.last_ok = now
    source.last_result = result.summary()
    source.items_seen = len(parsed.records)
    return result


def seconds_until_due(settings: Settings, *, now: dt.datetime | None = None) -> float | None:
    """Seconds until the next source is due (0 if one is due now); None without sources."""
    now = now or _now()
    with Catalog(settings.catalog, create=False) as catalog:
        sources = catalog.sources()
    if not sources:
        return None
    waits = [((due - now).total_seconds() if (due := s.next_due()) else 0.0) for s in sources]
    return max(0.0, min(waits))


def run_loop(settings: Settings, stop: threading.Event, echo: Callable[[str], None], *,
             max_wait: float = LOOP_MAX_WAIT) -> None:
    """Refresh due sources until `stop` is set; a round in progress finishes first."""
    while not stop.is_set():
        try:
            outcome = refresh(settings)
        except SearchappError as exc:  # the lock was busy, the catalog unreadable: next round
            echo(f"refresh: {exc}")
        else:
            for result in outcome.results:
                echo(result.line())
                for problem in result.problems:
                    echo(f"  skipped {problem}")
        try:
            wait = seconds_until_due(settings)
        except SearchappError:
            wait = None
        stop.wait(max_wait if wait is None else min(max(wait, 1.0), max_wait))
