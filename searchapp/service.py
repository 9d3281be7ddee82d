"""The `Engine`: one open snapshot of the live generation per process, and one search.

`Engine` opens a `searchapp.engine.Snapshot` of the live generation, keeps it
while it is current, and reopens it when a new generation is swapped in or
refreshes it when the live one gets new segments. It talks to the index only
through the snapshot, and hands out only plain values (`SearchPage`, `Item`).

One search, in order: parse the words (`searchapp.query`), find every
matching document (unscored), filter and count facets over them with the
per-reader columns (`searchapp.facets`), then rank only what the page needs
(`searchapp.ranking`), and load and highlight the page's items.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from searchapp import feedback as feedbacks
from searchapp import query as parser
from searchapp import ranking
from searchapp.analysis import CHAINS
from searchapp.analysis import compile as compile_chain
from searchapp.analysis import TOKEN_PATTERN, tongue
from searchapp.config import Settings
from searchapp.engine import (
    CHOICES,
    FALLBACKS,
    EngineUnavailable,
    Matched,
    Nothing,
    Or,
    Query,
    Snapshot,
    open_snapshot,
)
from searchapp.facets import Columns, Counted
from searchapp.fields import FACET_FIELDS, TEXT_FIELDS, UNDATED
from searchapp.highlight import FRAGMENT_CHARS, highlight
from searchapp.indexer import IndexStore
from searchapp.models import Item
from searchapp.page import FacetValue, Hit, Related, SearchPage, facet_values
from searchapp.request import MAX_YEAR, MIN_YEAR, SearchQuery
from searchapp.schema import from_stored
from searchapp.spelling import suggest
from searchapp.suggest import complete

_WORDS = re.compile(TOKEN_PATTERN)
SUGGEST_BELOW = 3  # offer a spelling suggestion when fewer items than this match
RELATED = 5

__all__ = ["Engine", "FacetValue", "Hit", "Related", "SearchPage", "SearchQuery"]


class Engine:
    """One open snapshot of the live generation, refreshed when it changes."""

    def __init__(self, store: IndexStore, *, engine: str = "auto",
                 weighting: Any = None, feedback: str = feedbacks.NONE) -> None:
        """`engine` forces a path (`Settings.engine`); `weighting`, a Whoosh weighting
        model, replaces the tuned BM25F (`Settings.ranking`; others for experiments
        only); `feedback` is the pseudo-relevance feedback searches use unless they
        ask otherwise (`Settings.feedback`)."""
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
        self._choice = engine
        self._weighting = weighting
        self._lock = threading.RLock()
        self._snapshot: Snapshot | None = None
        self._stamp: tuple[int, int] | None = None
        self._generation: str | None = None
        self._columns: Columns | None = None
        self._browse: Counted | None = None  # every document counted, for browsing

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        return cls(IndexStore(settings.index_dir, title_boost=settings.title_boost),
                   engine=settings.engine, weighting=settings.ranking().weighting(),
                   feedback=settings.feedback)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._snapshot is not None:
            self._snapshot.close()
        self._columns, self._browse = None, None
        self._snapshot, self._stamp, self._generation = None, None, None

    def _current(self) -> Snapshot:
        """The snapshot, reopened after a swap or refreshed after new commits."""
        stamp = self.store.pointer_stamp()
        if self._snapshot is None or stamp != self._stamp:
            self._drop()
            gen = self.store.current()
            self._snapshot = open_snapshot(self.store.open_index(), choice=self._choice,
                                           weighting=self._weighting)
            self._stamp, self._generation = stamp, gen.name if gen else None
        elif not self._snapshot.up_to_date():
            self._snapshot = self._snapshot.refresh()
            self._columns, self._browse = None, None
        return self._snapshot

    def _columns_for(self, snapshot: Snapshot) -> Columns:
        if self._columns is None:
            self._columns = Columns(snapshot)
        return self._columns

    @property
    def generation(self) -> str | None:
        return self._generation

    def stats(self) -> dict[str, Any]:
        """Which path serves (and why), and how often it handed work to Whoosh."""
        with self._lock:
            snapshot = self._current()
            return {"kind": snapshot.kind, "reason": snapshot.reason,
                    "fallbacks": FALLBACKS.snapshot()}

    def doc_count(self) -> int:
        with self._lock:
            return self._current().doc_count()

    def version(self) -> str:
        """Changes whenever what a search can return changes (for ETags)."""
        with self._lock:
            snapshot = self._current()  # first: it sets the generation on a first call
            return f"{self._generation}.{snapshot.version()}"

    def get(self, item_id: str) -> Item | None:
        with self._lock:
            snapshot = self._current()
            doc = snapshot.find(item_id)
            return None if doc is None else from_stored(snapshot.stored(doc))

    def complete(self, text: str, *, limit: int = 8) -> list[str]:
        """Whole queries completing what is being typed (`searchapp.suggest`)."""
        with self._lock:
            return complete(self._current().vocabulary(), text, limit=limit)

    def wanted(self, text: str, *, match: str = "all") -> set[str]:
        """The index terms a query looks for (what its highlights mark)."""
        with self._lock:
            snapshot = self._current()
            built = parser.build(parser.parse(text), snapshot.vocabulary(), match=match,
                                 languages=self._columns_for(snapshot)["language"].values)
            return set(built.wanted) if built is not None else set()

    def related(self, item: Item, *, limit: int = RELATED) -> list[Related]:
        """Items about the same things: the item's most telling words, searched."""
        with self._lock:
            snapshot = self._current()
            key_terms = _key_terms(snapshot, f"{item.title} {item.summary}", item.language)
            if not key_terms:
                return []
            like = parser.like(key_terms)
            best = ranking.by_score(snapshot, like, snapshot.match(like, scored=True),
                                    limit + 1)
            found = [Related(from_stored(snapshot.stored(d)), s) for d, s in best]
            return [r for r in found if r.item.id != item.id][:limit]

    def search(self, request: SearchQuery) -> SearchPage:
        with self._lock:
            snapshot = self._current()
            columns = self._columns_for(snapshot)
            vocabulary = snapshot.vocabulary()
            parsed = parser.parse(request.q)
            if parsed.only_stop_words:  # too common to search for: nothing, said so
                built = parser.Built(Nothing())
            selected = request.selected()
            languages = _languages(columns, selected.get("language", ()))
            built = parser.build(parsed, vocabulary, match=request.match, languages=languages)
            allowed = _allowed(request, selected, columns)
            sort = request.sort or ("relevance" if parsed.ranked else "newest")
            ranked = built is not None and not built.everything and sort == "relevance"
            matched = _matching(snapshot, built, scored=ranked)
            if built is None and not any(v is not None for v in allowed.values()):
                if self._browse is None:
                    self._browse = columns.count(matched.ids, allowed)
                counted = self._browse
            else:
                counted = columns.count(matched.ids, allowed)
            total = len(counted.docs)
            query: Query | None = built.query if built is not None else None
            if ranked and total and (request.feedback or self.feedback) == feedbacks.RM3:
                assert query is not None
                query, matched = _with_feedback(snapshot, columns, query, matched,
                                                counted.docs)
            prefer = likely_language(vocabulary, parsed, languages) \
                if ranked and len(languages) > 1 else None
            hits = _page(snapshot, columns, request, sort, built, query, matched,
                         counted.docs, prefer) if total else []

            any_words = None
            if total == 0 and request.match == "all" and len(parsed.groups) > 1:
                relaxed = parser.build(parsed, vocabulary, match="any", languages=languages)
                any_words = len(columns.count(
                    _matching(snapshot, relaxed, scored=False).ids, allowed).docs)
            suggestion = None
            if total < SUGGEST_BELOW and parsed.groups:
                fixed = suggest(vocabulary, parsed, request.q, languages=languages,
                                tolerated=built.typos if built is not None else ())
                if fixed is not None:
                    better = parser.build(parser.parse(fixed), vocabulary, match=request.match,
                                          languages=languages)
                    if len(columns.count(_matching(snapshot, better, scored=False).ids,
                                         allowed).docs) > total:
                        suggestion = fixed
            facets = {name: facet_values(name, counted.counts[name], set(selected[name]))
                      for name in FACET_FIELDS}
            return SearchPage(query=request, total=total, hits=hits, facets=facets,
                              suggestion=suggestion, any_words_total=any_words or None,
                              shortened=parsed.shortened,
                              too_common=parsed.stopped,
                              only_too_common=parsed.only_stop_words,
                              typos=dict(built.typos) if built is not None else {})


def _matching(snapshot: Snapshot, built: parser.Built | None, *, scored: bool) -> Matched:
    """Every live document the words match (all of them when there are no words),
    with scores when `scored`, in document order."""
    if built is None or built.everything:
        found = Matched(snapshot.live(), None)
    else:
        found = snapshot.match(built.query, scored=scored)
    if built is not None and built.exclude is not None and len(found):
        excluded = snapshot.match(built.exclude, scored=False).ids
        keep = ~np.isin(found.ids, excluded)
        found = Matched(found.ids[keep],
                        None if found.scores is None else found.scores[keep], found.exact)
    return found


def _languages(columns: Columns, selected: Collection[str]) -> tuple[str, ...]:
    """The languages a query is analysed in: those the `language` filter selects, else
    every language in the index (English alone in an empty one)."""
    present = columns["language"].values
    chosen = [code for code in present if code in selected] if selected else list(present)
    return tuple(chosen) or ("en",)


def likely_language(vocabulary: Any, parsed: parser.ParsedQuery,
                    languages: tuple[str, ...]) -> str | None:
    """The language a query is most likely written in, among those searched: the one
    whose items use its words most (documents with each word's term in that language,
    added up), None on a tie. Cheap enough for every search; the detector
    (`searchapp.languages.detect`) is not loaded by a searching process, and is
    unsure on two words. Only breaks ties between equal scores."""
    words = [w for clause in parsed.positives for w in _WORDS.findall(clause.text)]
    if not words:
        return None
    used: dict[str, int] = {}
    for language in languages:
        analyse = tongue(language)
        used[language] = sum(vocabulary.doc_frequency(f, term) for word in words
                             if (term := analyse.query_term(word)) is not None
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


def _page(snapshot: Snapshot, columns: Columns, request: SearchQuery, sort: str,
          built: parser.Built | None, query: Query | None, matched: Matched,
          docs: Any, prefer: str | None = None) -> list[Hit]:
    end = request.page * request.per_page
    start = end - request.per_page
    if query is not None and matched.scores is not None:
        ordered = ranking.by_relevance(snapshot, columns, query, matched, docs, end,
                                       prefer=prefer)
    else:
        ordered = ranking.by_date(snapshot, columns, docs, newest=sort != "oldest", limit=end)
    wanted = built.wanted if built is not None else set()
    hits = []
    for docnum, score in ordered[start:end]:
        item = from_stored(snapshot.stored(docnum))
        hits.append(Hit(item, score, {
            "title": highlight(item.title, wanted, language=item.language),
            "summary": highlight(item.summary, wanted, fragment=FRAGMENT_CHARS,
                                 language=item.language),
        }))
    return hits


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
