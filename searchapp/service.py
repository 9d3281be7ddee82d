"""The `Engine`: one open snapshot of the live generation per process, and one search.

`Engine` opens a `searchapp.engine.Snapshot` of the live generation, keeps it
while it is current, and reopens it when a new generation is swapped in or
refreshes it when the live one gets new segments. It talks to the index only
through the snapshot, and hands out only plain values (`SearchPage`, `Item`).
Each snapshot it opens (or refresh with new segments) is warmed up in a
background thread (`Engine._warm`): what the first searches on it would
otherwise build is made ahead of them, first the facet columns, then the
segments' close-words indexes for typo tolerance, then the word table of
search-as-you-type, then the highlighting patterns of the index's English words
(`searchapp.highlight.prepare`). A search waiting for what the warm-up is making lets other
requests use the engine meanwhile (`Engine._aside`), and a warm-up that cannot
start leaves the searches to build what they need (counted). What was made for
segments a new snapshot no longer reads is let go as it opens (`Engine._let_go`).
In `searchapp serve` each worker's engine also watches the live generation
(`Engine.watch`) and opens a new one as soon as it is swapped in, rather than at
the next request.

One search, in order: parse the words (`searchapp.query`), find every
matching document (unscored), filter and count facets over them with the
per-reader columns (`searchapp.facets`), then rank only what the page needs
(`searchapp.ranking`), and load and highlight the page's items.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import math
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from searchapp import feedback as feedbacks
from searchapp import query as parser
from searchapp import ranking
from searchapp.analysis import CHAINS, tongue
from searchapp.analysis import compile as compile_chain
from searchapp.config import Settings
from searchapp.engine import (
    BOUNDS,
    CHOICES,
    FALLBACKS,
    Budget,
    EngineUnavailable,
    Matched,
    Nothing,
    Or,
    Query,
    Snapshot,
    Word,
    completion,
    open_snapshot,
)
from searchapp.engine import words as close_words
from searchapp.engine.health import Checked
from searchapp.engine.health import check as check_index
from searchapp.engine.health import missing as missing_files
from searchapp.engine.plain import (
    WhooshSnapshot,
    language_terms,
    let_go,
    make_close_words,
    make_completion,
    reader_segments,
    reserve_close_words,
    reserve_completion,
    snapshot_over,
)
from searchapp.errors import IndexUnavailable, SearchappError
from searchapp.facets import Columns, Counted
from searchapp.fields import FACET_FIELDS, FACETS, TEXT_FIELDS, UNDATED
from searchapp.highlight import FRAGMENT_CHARS, Marks, highlight
from searchapp.highlight import prepare as prepare_highlighting
from searchapp.indexer import IndexStore
from searchapp.models import Item
from searchapp.page import FacetShown, FacetValue, Hit, Related, SearchPage
from searchapp.request import MAX_YEAR, MIN_YEAR, SearchQuery, check_window, did_you_mean
from searchapp.schema import from_stored
from searchapp.spelling import suggest
from searchapp.suggest import complete

# How often a watching engine (`Engine.watch`) looks for a new generation, in seconds.
WATCH_EVERY = 1.0
WATCH_EVERY_AT_MOST = 30.0  # seconds between looks while they keep failing
# What a read that met files replaced under it answers (503): the index is sound.
STALE_READ = ("the index changed while this request read it (an import or rebuild"
              " committed); ask again")
# What FALLBACKS counts when a request of a watching engine opens a generation itself.
OPENED_AT_REQUEST = "generation: opened by a request, not ahead by the watch"
# What FALLBACKS counts when a search builds the facet columns itself (not made ahead).
COLUMNS_AT_QUERY_TIME = "facet columns: built at query time, not made ahead"
# What FALLBACKS counts when a snapshot's warm-up cannot be started: its searches build
# what it would have made (counted as such).
WARM_UP_NOT_STARTED = "warm-up: not started, searches build what it would have made"
# What FALLBACKS counts when `Engine.watch` cannot be started: requests open new generations.
WATCH_NOT_STARTED = "watch: not started, requests open new generations"
SUGGEST_BELOW = 3  # offer a spelling suggestion when fewer items than this match
RELATED = 5
# Related items are weighed among at most this many candidates: the postings of the
# item's most telling words, read most telling first, until the next would pass it.
RELATED_CANDIDATES = 20_000
RESULT_WINDOW = 10_000  # Settings.max_result_window (a time budget: Settings only)

__all__ = ["Engine", "Export", "FacetValue", "Hit", "Related", "SearchPage", "SearchQuery"]

log = logging.getLogger(__name__)


class Engine:
    """One open snapshot of the live generation, refreshed when it changes."""

    def __init__(self, store: IndexStore, *, engine: str = "auto",
                 weighting: Any = None, feedback: str = feedbacks.NONE,
                 result_window: int = RESULT_WINDOW, time_budget: float | None = None,
                 warm_up: bool = True) -> None:
        """`engine` forces a path (`Settings.engine`); `weighting`, a Whoosh weighting
        model, replaces the tuned BM25F (`Settings.ranking`; others for experiments
        only); `feedback` is the pseudo-relevance feedback searches use unless they
        ask otherwise (`Settings.feedback`); `result_window` bounds how deep pages
        go, `time_budget` how long one search or item's related items may take
        before answering in part (None: no limit; served engines get
        `Settings.search_time_budget`); `warm_up` False leaves what the first
        searches on a new snapshot need to be built by them (tests of that path)."""
        if engine not in CHOICES:
            raise EngineUnavailable(f"SEARCHAPP_ENGINE must be one of {', '.join(CHOICES)},"
                                    f" not {engine!r}")
        if feedback not in feedbacks.CHOICES:
            raise ValueError(f"feedback must be one of {', '.join(feedbacks.CHOICES)},"
                             f" not {feedback!r}")
        self.feedback = feedback
        for language in CHAINS:  # a chain that cannot be compiled fails here, at start-up
            compile_chain(language)
        self.store = store
        self.result_window = result_window
        self.time_budget = time_budget
        self._choice = engine
        self._weighting = weighting
        self._lock = threading.RLock()
        self._snapshot: Snapshot | None = None
        self._stamp: tuple[int, int] | None = None
        self._generation: str | None = None
        self._columns: Columns | None = None
        self._browse: Counted | None = None  # every document counted, for browsing
        # Snapshots an export is still reading (id → how many), closed when it is done.
        self._pins: Counter[int] = Counter()
        # Per thread (per greenlet under gevent): inside `one_look`, the snapshot its
        # first read checked.
        self._looking = threading.local()
        self._warm_up = warm_up
        self._warmer: threading.Thread | None = None
        # The facet columns the current snapshot's warm-up is making (`_warm`).
        self._prepared: _Prepared | None = None
        self._watching = False  # `watch` started: a request opening a generation is counted
        self._ahead = False  # the watch is looking (under the lock)
        self._closed = threading.Event()  # set by `close`: the watch ends
        self._watcher: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        return cls(IndexStore(settings.index_dir, title_boost=settings.title_boost),
                   engine=settings.engine, weighting=settings.ranking().weighting(),
                   feedback=settings.feedback, result_window=settings.max_result_window,
                   time_budget=settings.search_time_budget)

    def close(self) -> None:
        with self._lock:
            self._closed.set()  # (ends `watch`; a request after this opens it again)
            self._watching = False
            self._drop()

    def _drop(self) -> None:
        if self._snapshot is not None and not self._pins[id(self._snapshot)]:
            self._snapshot.close()  # (a pinned one is closed by the export reading it)
        self._columns, self._browse, self._prepared = None, None, None
        self._snapshot, self._stamp, self._generation = None, None, None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Hold the lock while reading the index (not while waiting for what the warm-up
        is making, `_aside`). An error from reading it, when a health check (`check`)
        then finds the live generation damaged, becomes `IndexUnavailable` with the
        check's reason (503, never a traceback) and the snapshot is dropped (so the next
        request reopens it: a segment whose arrays file is damaged is then searched
        through Whoosh's postings). An error from a snapshot an import or rebuild has
        replaced meanwhile (its segments merged away, their files deleted before this
        read opened them), with the live generation sound, is `IndexUnavailable` too:
        a 503 asking to try again, the snapshot dropped. Any other error stays what it
        is."""
        with self._lock:
            waited: list[Snapshot] = []
            try:
                with close_words.waiting_in(functools.partial(self._aside, waited)):
                    yield
            except SearchappError:
                raise
            except Exception as exc:
                # (The read's own snapshot: one that waited aside may find another current.
                # Looked at first: cheap, where the health check reads every segment.)
                if self._stale(waited[0] if waited else self._snapshot):
                    log.warning("a read met files an import or rebuild had replaced under it"
                                " (%s: %s); the request is refused, to be asked again",
                                exc.__class__.__name__, exc)
                    if not waited:
                        self._drop()
                    raise IndexUnavailable(STALE_READ) from exc
                problem = self._damage()
                if problem is None:
                    raise
                log.error("a search met a damaged index (%s: %s): %s", exc.__class__.__name__,
                          exc, problem)
                self._drop()
                raise IndexUnavailable(problem) from exc
            finally:
                for snapshot in waited:
                    self._unpin(snapshot)

    def _stale(self, snapshot: Snapshot | None) -> bool:
        """Whether `snapshot` is no longer what the index holds (best effort)."""
        if snapshot is None:
            return False
        if snapshot is not self._snapshot:
            return True  # (swapped out while its read waited aside)
        try:
            return self.store.pointer_stamp() != self._stamp or not snapshot.up_to_date()
        except Exception:  # noqa: BLE001 (files gone as it looks: stale, surely)
            return True

    @contextlib.contextmanager
    def _aside(self, waited: list[Snapshot]) -> Iterator[None]:
        """While a read (`_reading`) waits for what the warm-up is making (a close-words
        index), other requests use the engine: the lock is let go meanwhile, and the
        snapshot the read began with is pinned until the read is over (a swap meanwhile
        does not close it under the read; `waited`)."""
        if not waited and self._snapshot is not None:  # (the lock held since the read began)
            waited.append(self._snapshot)
            self._pins[id(self._snapshot)] += 1
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()

    def _damage(self) -> str | None:
        try:
            return self.check().problem()
        except IndexUnavailable as exc:
            return str(exc)

    def check(self) -> Checked:
        """Read what searches need from every segment of the live generation, afresh
        (`searchapp.engine.health`: what an import replaces under the check is checked
        again); `IndexUnavailable` when it does not open at all."""
        return check_index(self.store)

    @contextlib.contextmanager
    def one_look(self) -> Iterator[None]:
        """Within the block, this thread's reads check the index for a swap or new
        commits once, at the first of them, and then keep to that snapshot while it
        is the engine's: a request's ETag (`version`) and its search see the same
        state of the index, for one check instead of two. Another thread's swap or
        refresh meanwhile ends the keeping (the next read checks again)."""
        looking = self._looking
        outer = getattr(looking, "depth", 0)
        looking.depth = outer + 1
        try:
            yield
        finally:
            looking.depth = outer
            if not outer:
                looking.seen = None

    def _current(self) -> Snapshot:
        """The snapshot, reopened after a swap or refreshed after new commits."""
        looking = self._looking
        seen = getattr(looking, "seen", None)
        if seen is self._snapshot and seen is not None:
            return seen
        snapshot = self._checked()
        if getattr(looking, "depth", 0):
            looking.seen = snapshot
        return snapshot

    def _checked(self) -> Snapshot:
        stamp = self.store.pointer_stamp()
        if (self._snapshot is None or stamp != self._stamp
                or (self._pins[id(self._snapshot)] and not self._snapshot.up_to_date())):
            # (A pinned snapshot is left as it is: refreshing would close its readers.)
            self._drop()
            gen = self.store.current()
            ix = self.store.open_index()
            # A segment file gone: say which, rather than let Whoosh fail half-way through
            # opening the segments (and leave files open).
            problem = missing_files(ix).problem()
            if problem is not None:
                ix.close()
                raise IndexUnavailable(problem)
            self._snapshot = open_snapshot(ix, choice=self._choice, weighting=self._weighting)
            self._stamp, self._generation = stamp, gen.name if gen else None
            self._took(self._snapshot)
        elif not self._snapshot.up_to_date():
            self._snapshot = self._snapshot.refresh()
            self._columns, self._browse = None, None  # (`_warm` sets `_prepared` anew)
            self._took(self._snapshot)
        return self._snapshot

    def _took(self, snapshot: Snapshot) -> None:
        """A snapshot opened or refreshed: counted if a request did it, what was kept for
        segments it no longer reads let go, its warm-up started."""
        self._opened()
        self._let_go(snapshot)
        self._warm(snapshot)

    def _let_go(self, snapshot: Snapshot) -> None:
        """Let go of what this process made and kept for segments of the index that the
        new snapshot does not read (a generation swapped out, segments merged away):
        close-words indexes, completion word tables, arrays files' checks."""
        if isinstance(snapshot, WhooshSnapshot):
            gone = let_go(snapshot.reader, str(self.store.root))
            if gone:
                log.info("%d close-words indexes, word tables and file checks of segments"
                         " no longer read let go", gone)

    def warm(self) -> None:
        """Open the live generation now (at start-up), so that its warm-up begins before
        the first request; nothing when there is no index to open yet."""
        try:
            with self._reading():
                self._current()
        except SearchappError as exc:
            log.info("warm-up: nothing opened at start-up (%s)", exc)

    def watch(self, every: float = WATCH_EVERY) -> threading.Thread:
        """Look for a new generation (a swap) or new segments (a refresh) every `every`
        seconds in the background, and open it then, starting its warm-up, instead of at
        the next request (`searchapp serve`, in each worker). A request that opens one
        itself meanwhile is counted (`OPENED_AT_REQUEST`). The thread holds the engine
        only while it looks, and ends once the engine is closed or gone. Watching
        already, the watch's thread is returned: callers at the same moment get one
        watch between them (under the lock, as `close` ends it)."""
        with self._lock:
            if self._watcher is not None and self._watcher.is_alive() \
                    and not self._closed.is_set():
                return self._watcher
            self._closed = threading.Event()
            thread = threading.Thread(target=_watching,
                                      args=(weakref.ref(self), every, self._closed),
                                      name="searchapp-watch", daemon=True)
            try:
                thread.start()
            except RuntimeError as exc:  # no thread to be had ("can't start new thread")
                FALLBACKS.count(WATCH_NOT_STARTED)
                log.warning("watch not started: %s: %s; requests open each new generation",
                            exc.__class__.__name__, exc)
                return thread
            self._watching, self._watcher = True, thread
            return thread

    def _look_ahead(self) -> bool:
        """The watch's look (`watch`); False once the engine is closed."""
        with self._reading():
            if self._closed.is_set():
                return False
            self._ahead = True
            try:
                self._current()
            finally:
                self._ahead = False
        return True

    def _opened(self) -> None:
        if self._watching and not self._ahead:
            FALLBACKS.count(OPENED_AT_REQUEST)

    def warmed(self, timeout: float | None = None) -> bool:
        """Wait for the latest snapshot's warm-up; whether it is over."""
        thread = self._warmer
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def _warm(self, snapshot: Snapshot) -> None:
        """Start the snapshot's warm-up. Its close-words indexes not kept yet are
        reserved here, before any search can ask for them (a search needing one before
        it is made waits for it rather than building it a second time), and a reader
        of its own is opened here too, while the snapshot's files are surely there."""
        self._prepared = None
        if not self._warm_up or not isinstance(snapshot, WhooshSnapshot):
            return
        keys = reserve_close_words(snapshot.reader, TEXT_FIELDS)
        table = reserve_completion(snapshot.reader, TEXT_FIELDS)
        try:
            reader = self.store.open_index().reader()
        except Exception as exc:  # noqa: BLE001 (Whoosh raises many kinds on files gone)
            _not_warmed(exc, keys, table)
            return
        # The columns number documents as the reader does: made from a reader of the same
        # segments, with the same deletions, or not at all (a commit came in between).
        prepared = None
        if reader_segments(reader) == reader_segments(snapshot.reader):
            prepared = self._prepared = _Prepared(
                type(snapshot), snapshot.searcher.weighting, snapshot.reason)
        thread = threading.Thread(target=_warming, args=(reader, keys, table, prepared),
                                  name="searchapp-warm-up", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:  # no thread to be had ("can't start new thread")
            self._prepared, self._warmer = None, None
            reader.close()
            _not_warmed(exc, keys, table)
            return
        self._warmer = thread

    def _columns_for(self, snapshot: Snapshot) -> Columns:
        """The snapshot's facet columns: those its warm-up made (waited for while it makes
        them, its first task), or built here, counted in `FALLBACKS`."""
        if self._columns is None:
            prepared = self._prepared
            if prepared is not None:
                prepared.done.wait()
                self._columns = prepared.columns
            if self._columns is None:
                started = time.perf_counter()
                self._columns = Columns(snapshot)
                FALLBACKS.count(COLUMNS_AT_QUERY_TIME)
                log.info("facet columns built at query time in %.2f s, not made ahead",
                         time.perf_counter() - started)
        return self._columns

    @property
    def generation(self) -> str | None:
        return self._generation

    def stats(self) -> dict[str, Any]:
        """Which path serves (and why), and how often it handed work to Whoosh."""
        with self._reading():
            snapshot = self._current()
            return {"kind": snapshot.kind, "reason": snapshot.reason,
                    "fallbacks": FALLBACKS.snapshot(), "bounded": BOUNDS.snapshot()}

    def doc_count(self) -> int:
        with self._reading():
            return self._current().doc_count()

    def version(self) -> str:
        """Changes whenever what a search can return changes (for ETags)."""
        with self._reading():
            snapshot = self._current()  # first: it sets the generation on a first call
            return f"{self._generation}.{snapshot.version()}"

    def get(self, item_id: str) -> Item | None:
        with self._reading():
            snapshot = self._current()
            doc = snapshot.find(item_id)
            return None if doc is None else from_stored(snapshot.stored(doc))

    def complete(self, text: str, *, limit: int = 8) -> list[str]:
        """Whole queries completing what is being typed (`searchapp.suggest`)."""
        with self._reading():
            return complete(self._current().vocabulary(), text, limit=limit)

    def wanted(self, text: str, *, match: str = "all") -> set[str]:
        """The index terms a query looks for (what its highlights mark)."""
        with self._reading():
            snapshot = self._current()
            built = parser.build(parser.parse(text), snapshot.vocabulary(), match=match,
                                 languages=self._columns_for(snapshot)["language"].values)
            return set(built.wanted) if built is not None else set()

    def related(self, item: Item, *, limit: int = RELATED,
                budget: Budget | None = None) -> list[Related]:
        """Items about the same things: the item's most telling words, weighed.

        Each document scores the sum of its scores for those words (each a `Word`
        over the text fields, boosted by its weight), from the words' posting
        lists alone; the lists are read most telling word first, and a word whose
        documents would take the candidates past `RELATED_CANDIDATES` is left
        out. Ties go by document.
        """
        budget = budget if budget is not None else Budget(self.time_budget)
        with self._reading():
            snapshot = self._current()
            key_terms = _key_terms(snapshot, f"{item.title} {item.summary}", item.language)
            ids: list[Any] = []
            scores: list[Any] = []
            read = 0
            for term, weight in key_terms:
                if budget.over():
                    break
                word = Word(tuple((f, term) for f in TEXT_FIELDS), weight)
                found = snapshot.match(word, budget=budget)
                if read and read + len(found) > RELATED_CANDIDATES:
                    BOUNDS.count("related items: over RELATED_CANDIDATES")
                    continue
                read += len(found)
                ids.append(found.ids)
                scores.append(found.scores)
            if not read:
                return []
            every = np.concatenate(ids)
            order = np.argsort(every, kind="stable")  # each document's words in order
            every = every[order]
            first = np.flatnonzero(np.concatenate(([True], every[1:] != every[:-1])))
            docs = every[first]
            totals = np.add.reduceat(np.concatenate(scores)[order], first)
            budget.candidates += len(docs)
            best = np.lexsort((docs, -totals))[:limit + 1]
            ranked = [Related(from_stored(snapshot.stored(int(docs[b]))), float(totals[b]))
                      for b in best]
            return [r for r in ranked if r.item.id != item.id][:limit]

    def search(self, request: SearchQuery, *, budget: Budget | None = None) -> SearchPage:
        """One page of results. Pages past `result_window` are refused (`BadParameter`
        naming `page`); a search that runs out of `time_budget` answers with what it
        found in time, marked partial."""
        check_window(request, self.result_window)
        budget = budget if budget is not None else Budget(self.time_budget)
        with self._reading(), close_words.bounded_by(budget):
            snapshot = self._current()
            found = self._find(snapshot, request, budget)
            request, parsed, built, count = found.request, found.parsed, found.built, found.count
            vocabulary = snapshot.vocabulary()
            wanted = Marks(built.wanted if built is not None else set())
            total = len(found.counted.docs)
            end = request.page * request.per_page
            hits = []
            for docnum, score in (found.ordered(end, end - request.per_page) if total else []):
                item = from_stored(snapshot.stored(docnum))
                hits.append(Hit(item, score, {
                    "title": highlight(item.title, wanted, language=item.language),
                    "summary": highlight(item.summary, wanted, fragment=FRAGMENT_CHARS,
                                         language=item.language),
                }))

            any_words = None
            if total == 0 and request.match == "all" and len(parsed.groups) > 1 \
                    and not budget.over():
                relaxed = parser.build(parsed, vocabulary, match="any", languages=found.languages)
                any_words = len(count(
                    _matching(snapshot, relaxed, scored=False, budget=budget).ids).docs)
            suggestion = None
            if total < SUGGEST_BELOW and parsed.groups and not budget.over():
                fixed = suggest(vocabulary, parsed, request.q, languages=found.languages,
                                tolerated=built.typos if built is not None else ())
                if fixed is not None:
                    better = parser.build(parser.parse(fixed), vocabulary, match=request.match,
                                          languages=found.languages)
                    if len(count(_matching(snapshot, better, scored=False).ids).docs) > total:
                        suggestion = fixed
            facets = _facets(found.counted, request.selected(), found.columns)
            if budget.cut:
                BOUNDS.count("search: out of time")
            return SearchPage(query=request, total=total, hits=hits, facets=facets,
                              suggestion=suggestion, any_words_total=any_words or None,
                              dates=found.dates, shortened=parsed.shortened,
                              too_common=parsed.stopped,
                              only_too_common=parsed.only_stop_words,
                              typos=dict(built.typos) if built is not None else {},
                              warnings=tuple(built.warnings if built is not None else ()),
                              partial=budget.cut, window=self.result_window,
                              unmatched=_unmatched(request, found.columns),
                              work=budget.counts())

    def export(self, request: SearchQuery, *, limit: int, batch: int = 500) -> Export:
        """Every match of a search in its order (page and per_page aside), up to `limit`,
        read in batches as the caller iterates, so a long export is never held whole.

        The snapshot stays open for the export even if a new generation is swapped in
        meanwhile: the export is of the index as it was when it started.
        """
        with self._reading():
            snapshot = self._current()
            found = self._find(snapshot, request)
            total = len(found.counted.docs)
            ordered = found.ordered(limit) if total else []
            self._pins[id(snapshot)] += 1

        return Export(found.request, total, len(ordered),
                      _Rows(self, snapshot, ordered, batch))

    def _unpin(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._pins[id(snapshot)] -= 1
            if not self._pins[id(snapshot)]:
                del self._pins[id(snapshot)]
                if snapshot is not self._snapshot:
                    snapshot.close()

    def _find(self, snapshot: Snapshot, request: SearchQuery,
              budget: Budget | None = None) -> _Found:
        """A search's matches, filtered and counted (the engine lock held), within
        `budget` when one is given."""
        columns = self._columns_for(snapshot)
        request = _canonical(request, columns)
        parsed = parser.parse(request.q)
        selected = request.selected()
        languages = _languages(columns, selected.get("language", ()))
        if parsed.only_stop_words:  # too common to search for: nothing, said so
            built: parser.Built | None = parser.Built(Nothing())
        else:
            built = parser.build(parsed, snapshot.vocabulary(), match=request.match,
                                 languages=languages, budget=budget)
        allowed = _allowed(request, selected, columns)
        dates = request.date_range()

        def count(ids: Any) -> Counted:
            """Filtered by the date range (a filter on every facet), then counted."""
            if dates is not None:
                ids = columns.dated(ids, dates[0].isoformat(), dates[1].isoformat())
            return columns.count(ids, allowed)

        sort = request.sort or ("relevance" if parsed.ranked else "newest")
        ranked = built is not None and not built.everything and sort == "relevance"
        matched = _matching(snapshot, built, scored=ranked, budget=budget)
        if built is None and dates is None and not any(v is not None for v in allowed.values()) \
                and snapshot is self._snapshot:  # (not swapped out while the search waited)
            if self._browse is None:
                self._browse = count(matched.ids)
            counted = self._browse
        else:
            counted = count(matched.ids)
        query: Query | None = built.query if built is not None else None
        if ranked and len(counted.docs) and (request.feedback or self.feedback) == feedbacks.RM3 \
                and not (budget is not None and budget.over()):
            assert query is not None
            query, matched = _with_feedback(snapshot, columns, query, matched, counted.docs)

        # Score ties go to items in the query's likely language first: worked out only
        # when items in two languages tie where a page is ordered (`ranking`).
        prefer = _once(functools.partial(likely_language, snapshot.vocabulary(), parsed,
                                         languages)) if ranked and len(languages) > 1 else None

        def ordered(end: int, start: int = 0) -> list[tuple[int, float | None]]:
            """Matches `start` to `end` (from 0) in the asked order, with their scores."""
            if query is not None and matched.scores is not None:
                return ranking.by_relevance(snapshot, columns, query, matched, counted.docs,
                                            end, start=start, budget=budget, prefer=prefer)
            return ranking.by_date(snapshot, columns, counted.docs, newest=sort != "oldest",
                                   limit=end)[start:end]

        return _Found(request, parsed, built, dates, columns, counted, count, ordered,
                      languages)


def _watching(engine: weakref.ReferenceType[Engine], every: float,
              closed: threading.Event) -> None:
    """`Engine.watch`'s loop. While looks fail (no index yet, files gone), the same
    reason is logged once, and the looks slow down (twice as far apart each time, up to
    `WATCH_EVERY_AT_MOST`): each may run a health check under the engine's lock."""
    wait, said = every, None
    while not closed.wait(wait):
        found = engine()
        if found is None:
            return
        try:
            if not found._look_ahead():
                return
            wait, said = every, None
        except Exception as exc:  # noqa: BLE001 (a swap half-done, files gone: the next look)
            reason = f"{exc.__class__.__name__}: {exc}"
            if reason != said:
                log.info("watch: the live generation not opened (%s); looking again,"
                         " less often while it stays so", reason)
                said = reason
            wait = min(wait * 2, max(every, WATCH_EVERY_AT_MOST))
        finally:
            del found


class _Prepared:
    """Facet columns a warm-up makes for the engine's snapshot: set `done` when made
    (`columns`) or given up (`columns` None). It holds no reader."""

    def __init__(self, kind: type[WhooshSnapshot], weighting: Any, reason: str) -> None:
        self.kind, self.weighting, self.reason = kind, weighting, reason
        self.columns: Columns | None = None
        self.done = threading.Event()


def _facets(counted: Counted, selected: Mapping[str, tuple[str, ...]],
            columns: Columns) -> dict[str, list[FacetValue]]:
    """Each facet's values as shown (`facet_values`), from its counts per code and what
    each code shows, worked out once per column (`FacetShown`)."""
    return {name: columns.kept(name, FacetShown).values(counted.tallies[name],
                                                        set(selected[name]))
            for name in FACET_FIELDS}


def _not_warmed(exc: BaseException, keys: list[tuple[str, str]],
                table: tuple[completion.Key, tuple[str, ...]] | None) -> None:
    """A warm-up that cannot start: said and counted, and what it reserved let go (the
    searches needing it build it, counted as such)."""
    FALLBACKS.count(WARM_UP_NOT_STARTED)
    log.warning("warm-up not started: %s: %s; searches build what it would have made",
                exc.__class__.__name__, exc)
    close_words.release(keys)
    if table is not None:
        completion.release(table[0])


def _warming(reader: Any, keys: list[tuple[str, str]],
             table: tuple[completion.Key, tuple[str, ...]] | None,
             prepared: _Prepared | None) -> None:
    """A snapshot's warm-up (`Engine._warm`), from `reader`, its own (searches go on
    meanwhile on the snapshot's): first the facet columns every search needs (through a
    snapshot of the same kind over `reader`, closed once they are made), then the
    reserved close-words indexes, then the word table, then the highlighting patterns
    of the index's English terms. It holds neither the engine nor
    its snapshot: what closes them is not delayed by it."""
    started = time.perf_counter()
    own: WhooshSnapshot | None = None
    try:
        try:
            if prepared is not None:
                try:
                    own = snapshot_over(prepared.kind, reader, prepared.weighting,
                                        prepared.reason)
                    prepared.columns = Columns(own)
                    log.info("warm-up: facet columns made in %.2f s",
                             time.perf_counter() - started)
                finally:
                    prepared.done.set()
                    if own is not None:
                        own.close()  # (its arrays files; the reader goes on below)
                        own = None
            began = time.perf_counter()
            made = make_close_words(reader, keys)
            log.info("warm-up: %d close-words indexes made in %.2f s", made,
                     time.perf_counter() - began)
            if table is not None:
                began = time.perf_counter()
                words, read, segments = make_completion(reader, *table)
                log.info("warm-up: completion word table (%d words, %d of %d segments read)"
                         " made in %.2f s", words, read, segments, time.perf_counter() - began)
            began = time.perf_counter()
            made = prepare_highlighting(language_terms(reader, TEXT_FIELDS, "en"))
            log.info("warm-up: %d highlighting patterns made in %.2f s", made,
                     time.perf_counter() - began)
        finally:
            if own is not None:
                own.close()
            reader.close()
    except Exception as exc:  # noqa: BLE001 (a generation swapped out or gone: searches build it)
        log.warning("warm-up stopped: %s: %s", exc.__class__.__name__, exc)
    finally:
        if prepared is not None:
            prepared.done.set()
        close_words.release(keys)
        if table is not None:
            completion.release(table[0])


@dataclass(frozen=True, slots=True)
class _Found:
    """One search's matches before any page is cut from them."""

    request: SearchQuery  # facet values as stored
    parsed: parser.ParsedQuery
    built: parser.Built | None
    dates: tuple[dt.date, dt.date] | None
    columns: Columns  # the snapshot's facet columns
    counted: Counted
    count: Callable[[Any], Counted]  # filter and count other matches the same way
    ordered: Callable[..., list[tuple[int, float | None]]]  # (end, start=0)
    languages: tuple[str, ...]  # the languages the query was analysed in


class _Rows:
    """An export's (item, score) rows, read a batch at a time from a pinned snapshot.

    The pin is released when the rows run out, or on `close()` or garbage collection
    of rows never read to the end (a client gone, a HEAD request)."""

    def __init__(self, engine: Engine, snapshot: Snapshot,
                 ordered: list[tuple[int, float | None]], batch: int) -> None:
        self._engine, self._snapshot, self._ordered, self._batch = engine, snapshot, ordered, batch
        self._read: list[tuple[Item, float | None]] = []
        self._next = 0
        self._open = True

    def __iter__(self) -> Iterator[tuple[Item, float | None]]:
        return self

    def __next__(self) -> tuple[Item, float | None]:
        if not self._read:
            if not self._open or self._next >= len(self._ordered):
                self.close()
                raise StopIteration
            chunk = self._ordered[self._next:self._next + self._batch]
            self._next += len(chunk)
            with self._engine._lock:
                self._read = [(from_stored(self._snapshot.stored(d)), score)
                              for d, score in reversed(chunk)]
        return self._read.pop()

    def close(self) -> None:
        if self._open:
            self._open = False
            self._engine._unpin(self._snapshot)

    def __del__(self) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Export:
    """A search's matches to take away: `rows` yields (item, score) in order."""

    query: SearchQuery
    total: int  # every match
    count: int  # the rows `rows` yields: min(total, limit)
    rows: Iterator[tuple[Item, float | None]]

    @property
    def capped(self) -> bool:
        return self.count < self.total


def _matching(snapshot: Snapshot, built: parser.Built | None, *, scored: bool,
              budget: Budget | None = None) -> Matched:
    """Every live document the words match (all of them when there are no words),
    with scores when `scored`, in document order. The exclusions are always read
    whole, so a search cut short by its `budget` never shows an excluded item."""
    if built is None or built.everything:
        found = Matched(snapshot.live(), None)
    else:
        found = snapshot.match(built.query, scored=scored, budget=budget)
    if built is not None and built.exclude is not None and len(found):
        excluded = snapshot.match(built.exclude, scored=False).ids
        keep = ~np.isin(found.ids, excluded)
        found = Matched(found.ids[keep],
                        None if found.scores is None else found.scores[keep], found.exact,
                        found.complete)
    return found


def _languages(columns: Columns, selected: Collection[str]) -> tuple[str, ...]:
    """The languages a query is analysed in: those the `language` filter selects, else
    every language in the index (English alone in an empty one)."""
    present = columns["language"].values
    chosen = [code for code in present if code in selected] if selected else list(present)
    return tuple(chosen) or ("en",)


def _once(work: Callable[[], Any]) -> Callable[[], Any]:
    """`work`, done the first time it is asked for, then remembered."""
    done: list[Any] = []

    def result() -> Any:
        if not done:
            done.append(work())
        return done[0]

    return result


def likely_language(vocabulary: Any, parsed: parser.ParsedQuery,
                    languages: tuple[str, ...]) -> str | None:
    """The language a query is most likely written in, among those searched: the one
    whose items use its words most (documents with each word's term in that language,
    added up), None on a tie. Only breaks ties between equal scores, so a search
    works it out only when items in two languages tie where it orders a page; the
    detector (`searchapp.languages.detect`) is not loaded by a searching process,
    and is unsure on two words."""
    words = [w for clause in parsed.positives for w in parser._WORDS.findall(clause.text)]
    if not words:
        return None
    used: dict[str, int] = {}
    for language in languages:
        used[language] = sum(vocabulary.doc_frequency(f, term) for word in words
                             if (term := parser.term_if_present(vocabulary, word, language))
                             is not None
                             for f in TEXT_FIELDS)
    best = max(used.values())
    leaders = [code for code, count in used.items() if count == best]
    return leaders[0] if best and len(leaders) == 1 else None


def _with_feedback(snapshot: Snapshot, columns: Columns, query: Query, matched: Matched,
                   docs: Any) -> tuple[Query, Matched]:
    """RM3 (`searchapp.feedback`): the query with words from its first hits added as
    optional words, and the matches rescored with them (the same documents)."""
    first = ranking.by_relevance(snapshot, columns, query, matched, docs, feedbacks.DOCS)
    texts = []
    for doc, score in first:
        stored = snapshot.stored(doc)
        texts.append((f"{stored.get('title', '')} {stored.get('summary', '')}", score or 0.0,
                      stored.get("language") or "en"))
    extra = feedbacks.expansion(feedbacks.rm3(texts))
    if extra is None:
        return query, matched
    assert matched.scores is not None
    added = snapshot.match(extra, scored=True)
    scores = matched.scores.copy()
    if len(added):
        assert added.scores is not None
        at = np.searchsorted(added.ids, matched.ids)
        at[at == len(added.ids)] = 0
        found = added.ids[at] == matched.ids
        scores[found] += added.scores[at[found]]
    return Or((query, extra)), Matched(matched.ids, scores, exact=False)


def _key_terms(snapshot: Snapshot, text: str, language: str = "en", *, count: int = 12
               ) -> list[tuple[str, float]]:
    """The terms of `text` (in its `language`) that say most about it: frequent in it,
    rare in the index."""
    vocabulary = snapshot.vocabulary()
    frequency = Counter(tongue(language).analyse(text)[0])
    documents = vocabulary.doc_count() or 1
    weights = {}
    for term, tf in frequency.items():
        df = sum(vocabulary.doc_frequency(f, term) for f in TEXT_FIELDS)
        if df:
            weights[term] = tf * math.log(1 + documents / df)
    return sorted(weights.items(), key=lambda tw: (-tw[1], tw[0]))[:count]


def _canonical(request: SearchQuery, columns: Columns) -> SearchQuery:
    """The request with each facet value as stored: `ilo` selects (and is answered as)
    `ILO`, `cooperatives europe` every stored spelling of it."""
    changed: dict[str, Any] = {}
    for name, facet in FACETS.items():
        given = getattr(request, name)
        stored = tuple(dict.fromkeys(
            facet.from_term(term) for value in given
            for term in columns.stored_forms(name, facet.term(value))))
        if stored != given:
            changed[name] = stored
    return dataclasses.replace(request, **changed) if changed else request


# The filters whose values are names a person types, and may misspell.
NAMED_FILTERS = ("organisation", "type")


def _unmatched(request: SearchQuery,
               columns: Columns) -> tuple[tuple[str, str, str | None], ...]:
    """The values of the named filters that no item has (after `_canonical`), each with
    the closest value items have, if one is close."""
    return tuple((name, value, did_you_mean(value, columns[name].values))
                 for name in NAMED_FILTERS for value in getattr(request, name)
                 if not len(columns[name].codes_of((FACETS[name].term(value),))))


def _allowed(request: SearchQuery, selected: Mapping[str, tuple[str, ...]],
             columns: Columns) -> dict[str, Collection[str] | None]:
    """The facet values each facet lets through (None: no filter on it)."""
    allowed: dict[str, Collection[str] | None] = {
        name: set(values) if values else None for name, values in selected.items()}
    if request.year_from is not None or request.year_to is not None:
        low = request.year_from if request.year_from is not None else MIN_YEAR
        high = request.year_to if request.year_to is not None else MAX_YEAR
        in_range = {v for v in columns["year"].values if v != UNDATED and low <= int(v) <= high}
        years = allowed["year"]
        allowed["year"] = in_range if years is None else set(years) & in_range
    return allowed
