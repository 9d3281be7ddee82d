"""Searching: a `SearchQuery` in, a `SearchPage` of plain dataclasses out.

`Engine` keeps one open Whoosh searcher per process and refreshes it when a
new generation is swapped in or the live one gets new segments; nothing
Whoosh-owned leaves this module.

One search, in order: parse the words (`searchapp.query`), find every
matching document (unscored), filter and count facets over them with the
per-reader columns (`searchapp.facets`), then rank only what the page needs:
Whoosh's top-N scoring for relevance, the date column otherwise.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from whoosh import query as wq
from whoosh import scoring
from whoosh.searching import Searcher

from searchapp import query as parser
from searchapp.analysis import terms as analyse
from searchapp.errors import BadParameter
from searchapp.facets import Columns, Counted, Docs
from searchapp.highlight import FRAGMENT_CHARS, highlight
from searchapp.indexer import IndexStore
from searchapp.models import Item
from searchapp.postings import Matched, Postings
from searchapp.schema import FACET_FIELDS, UNDATED, from_stored, year_term
from searchapp.spelling import suggest

T = TypeVar("T")

SORTS = ("relevance", "newest", "oldest")
MATCHES = ("all", "any")
DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100
MAX_PAGE = 1_000
MAX_QUERY_CHARS = 2_000
MIN_YEAR, MAX_YEAR = 1000, 9999
SUGGEST_BELOW = 3  # offer a spelling suggestion when fewer items than this match
TIE_LIMIT = 1_000  # break date ties by id among at most this many documents
RELATED = 5


def ranking() -> scoring.WeightingModel:
    """BM25F as tuned on the Cranfield collection (see bench/RESULTS.md)."""
    return scoring.BM25F(B=0.95, K1=1.5)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What was asked: words, filters, order and page. Validated on creation."""

    q: str = ""
    organisation: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    year: tuple[int | None, ...] = ()  # None selects undated items
    year_from: int | None = None
    year_to: int | None = None
    sort: str | None = None  # None: relevance with words, newest without
    match: str = "all"  # "any": items with any of the words
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def __post_init__(self) -> None:
        if len(self.q) > MAX_QUERY_CHARS:
            raise BadParameter("q", f"is {len(self.q)} characters long; the limit is"
                                    f" {MAX_QUERY_CHARS}")
        if self.sort is not None and self.sort not in SORTS:
            raise BadParameter("sort", f"must be one of {', '.join(SORTS)}, not {self.sort!r}")
        if self.match not in MATCHES:
            raise BadParameter("match", f"must be one of {', '.join(MATCHES)},"
                                        f" not {self.match!r}")
        if not 1 <= self.page <= MAX_PAGE:
            raise BadParameter("page", f"must be between 1 and {MAX_PAGE}")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise BadParameter("per_page", f"must be between 1 and {MAX_PER_PAGE}")
        for name in ("year_from", "year_to"):
            value = getattr(self, name)
            if value is not None and not MIN_YEAR <= value <= MAX_YEAR:
                raise BadParameter(name, f"must be a year between {MIN_YEAR} and {MAX_YEAR}")
        if (self.year_from is not None and self.year_to is not None
                and self.year_from > self.year_to):
            raise BadParameter("year_from", f"{self.year_from} is after year_to"
                                            f" {self.year_to}")

    @property
    def effective_sort(self) -> str:
        return self.sort or ("relevance" if parser.parse(self.q).ranked else "newest")

    @property
    def filtered(self) -> bool:
        return bool(self.organisation or self.type or self.year
                    or self.year_from is not None or self.year_to is not None)

    def selected(self) -> dict[str, tuple[str, ...]]:
        """Selected facet values as index terms."""
        return {"organisation": self.organisation, "type": self.type,
                "year": tuple(year_term(y) for y in self.year)}

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> SearchQuery:
        """Build from request-style parameters (each name → list of strings)."""

        def one(name: str, default: str = "") -> str:
            values = params.get(name) or [default]
            return values[-1]

        def integer(name: str, default: int | None) -> int | None:
            raw = one(name).strip()
            if not raw:
                return default
            try:
                return int(raw)
            except ValueError:
                raise BadParameter(name, f"must be a whole number, not {raw!r}") from None

        years: list[int | None] = []
        for raw in params.get("year", []):
            text = raw.strip()
            if text.lower() in ("null", "none", UNDATED):
                years.append(None)
                continue
            if not text:
                continue
            try:
                years.append(int(text))
            except ValueError:
                raise BadParameter("year", f"must be a year like 2017 or 'undated',"
                                           f" not {raw!r}") from None
        return cls(
            q=one("q"),
            organisation=_unique(v.strip() for v in params.get("organisation", []) if v.strip()),
            type=_unique(v.strip() for v in params.get("type", []) if v.strip()),
            year=_unique(years),
            year_from=integer("year_from", None),
            year_to=integer("year_to", None),
            sort=one("sort").strip() or None,
            match=one("match").strip() or "all",
            page=integer("page", 1) or 0,
            per_page=integer("per_page", DEFAULT_PER_PAGE) or 0,
        )


def _unique(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True, slots=True)
class Hit:
    item: Item
    score: float | None
    highlights: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        data = self.item.to_dict()
        return {
            "id": data["id"], "title": data["title"], "summary": data["summary"],
            "organisation": data["organisation"], "date": data["date"], "year": data["year"],
            "type": data["type"], "url": data["url"],
            "score": None if self.score is None else round(self.score, 4),
            "highlights": self.highlights,
        }


@dataclass(frozen=True, slots=True)
class FacetValue:
    value: str | int | None
    count: int
    selected: bool

    @property
    def label(self) -> str:
        return "Undated" if self.value is None else str(self.value)

    @property
    def param(self) -> str:
        """The value as a request parameter (`year=undated` for undated items)."""
        return UNDATED if self.value is None else str(self.value)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "count": self.count, "selected": self.selected}


@dataclass(frozen=True, slots=True)
class SearchPage:
    query: SearchQuery
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    suggestion: str | None = None
    # With no item having every word: how many have any of them (else None).
    any_words_total: int | None = None
    generation: str | None = field(default=None, compare=False)

    @property
    def sort(self) -> str:
        return self.query.effective_sort

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.query.per_page))

    def to_dict(self) -> dict[str, Any]:
        q = self.query
        return {
            "query": q.q, "total": self.total, "page": q.page, "per_page": q.per_page,
            "sort": self.sort, "match": q.match,
            "filters": {"organisation": list(q.organisation), "type": list(q.type),
                        "year": list(q.year), "year_from": q.year_from, "year_to": q.year_to},
            "hits": [h.to_dict() for h in self.hits],
            "facets": {name: [v.to_dict() for v in values]
                       for name, values in self.facets.items()},
            "suggestion": self.suggestion,
            "any_words": (None if self.any_words_total is None
                          else {"match": "any", "total": self.any_words_total}),
        }


@dataclass(frozen=True, slots=True)
class Related:
    item: Item
    score: float


class Engine:
    """One open searcher over the live generation, refreshed when it changes."""

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._searcher: Searcher | None = None
        self._stamp: tuple[int, int] | None = None
        self._generation: str | None = None
        self._columns: Columns | None = None
        self._postings: Postings | None = None
        self._browse: Counted | None = None  # every document counted, for browsing

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
        self._forget()
        self._searcher, self._stamp, self._generation = None, None, None

    def _forget(self) -> None:
        """Drop what was computed from the current reader."""
        if self._postings is not None:
            self._postings.close()
        self._postings, self._columns, self._browse = None, None, None

    def _current(self) -> Searcher:
        """The searcher, reopened after a swap or refreshed after new commits."""
        stamp = self.store.pointer_stamp()
        if self._searcher is None or stamp != self._stamp:
            self._drop()
            ix = self.store.open()
            gen = self.store.current()
            self._searcher = ix.searcher(weighting=ranking())
            self._stamp, self._generation = stamp, gen.name if gen else None
        elif not self._searcher.up_to_date():
            self._searcher = self._searcher.refresh()
            self._forget()
        return self._searcher

    def _postings_for(self, searcher: Searcher) -> Postings:
        if self._postings is None:
            self._postings = Postings(searcher)
        return self._postings

    def _columns_for(self, searcher: Searcher) -> Columns:
        if self._columns is None:
            self._columns = Columns(searcher.reader(), docs=self._postings_for(searcher).docs)
        return self._columns

    @property
    def generation(self) -> str | None:
        return self._generation

    def doc_count(self) -> int:
        with self._lock:
            return int(self._current().doc_count())

    def version(self) -> str:
        """Changes whenever what a search can return changes (for ETags)."""
        with self._lock:
            return f"{self._generation}.{self._current().reader().generation()}"

    def with_reader(self, work: Callable[[Any], T]) -> T:
        """Run `work` on the current reader; nothing Whoosh-owned may escape it."""
        with self._lock:
            return work(self._current().reader())

    def get(self, item_id: str) -> Item | None:
        with self._lock:
            fields = self._current().document(id=item_id)
            return from_stored(fields) if fields else None

    def related(self, item: Item, *, limit: int = RELATED) -> list[Related]:
        """Items about the same things: the item's most telling words, searched."""
        with self._lock:
            searcher = self._current()
            key_terms = _key_terms(searcher.reader(), f"{item.title} {item.summary}")
            if not key_terms:
                return []
            like = wq.Or([wq.Term(f, term, boost=weight)
                          for term, weight in key_terms for f in parser.TEXT_FIELDS])
            results = searcher.search(like, limit=limit + 1)
            found = [Related(from_stored(hit.fields()), hit.score) for hit in results]
            return [r for r in found if r.item.id != item.id][:limit]

    def search(self, request: SearchQuery) -> SearchPage:
        with self._lock:
            searcher = self._current()
            postings = self._postings_for(searcher)
            columns = self._columns_for(searcher)
            reader = searcher.reader()
            parsed = parser.parse(request.q)
            built = parser.build(parsed, reader, match=request.match)
            allowed = _allowed(request, columns)
            sort = request.sort or ("relevance" if parsed.ranked else "newest")
            ranked = (built is not None and not isinstance(built.query, wq.Every)
                      and sort == "relevance")
            matched = self._matching(postings, built, scored=ranked)
            if built is None and not any(v is not None for v in allowed.values()):
                if self._browse is None:
                    self._browse = columns.count(matched.ids, allowed)
                counted = self._browse
            else:
                counted = columns.count(matched.ids, allowed)
            total = len(counted.docs)
            hits = (self._page(searcher, postings, columns, request, sort, built, matched,
                               counted.docs) if total else [])

            any_words = None
            if total == 0 and request.match == "all" and len(parsed.groups) > 1:
                relaxed = parser.build(parsed, reader, match="any")
                any_words = len(columns.count(
                    self._matching(postings, relaxed, scored=False).ids, allowed).docs)
            suggestion = None
            if total < SUGGEST_BELOW and parsed.groups:
                fixed = suggest(reader, parsed, request.q)
                if fixed is not None:
                    better = parser.build(parser.parse(fixed), reader, match=request.match)
                    if len(columns.count(self._matching(postings, better, scored=False).ids,
                                         allowed).docs) > total:
                        suggestion = fixed
            facets = {name: _facet_values(name, counted.counts[name], request)
                      for name in FACET_FIELDS}
            return SearchPage(query=request, total=total, hits=hits, facets=facets,
                              suggestion=suggestion, any_words_total=any_words or None,
                              generation=self._generation)

    @staticmethod
    def _matching(postings: Postings, built: parser.Built | None, *, scored: bool) -> Matched:
        """Every live document the words match (all of them when there are no words),
        with scores when `scored`, in document order."""
        if built is None or isinstance(built.query, wq.Every):
            found = Matched(postings.live(), None)
        else:
            found = postings.match(built.query, scored=scored)
        if built is not None and built.exclude is not None and len(found):
            excluded = postings.match(built.exclude, scored=False).ids
            keep = ~np.isin(found.ids, excluded)
            found = Matched(found.ids[keep],
                            None if found.scores is None else found.scores[keep], found.exact)
        return found

    def _page(self, searcher: Searcher, postings: Postings, columns: Columns,
              request: SearchQuery, sort: str, built: parser.Built | None, matched: Matched,
              docs: Docs) -> list[Hit]:
        end = request.page * request.per_page
        start = end - request.per_page
        if built is not None and matched.scores is not None:
            ranked = _by_relevance(searcher, postings, columns, built.query, matched, docs, end)
        else:
            ranked = _by_date(searcher, columns, docs, newest=sort != "oldest", limit=end)
        wanted = built.wanted if built is not None else set()
        hits = []
        for docnum, score in ranked[start:end]:
            item = from_stored(searcher.stored_fields(docnum))
            hits.append(Hit(item, score, {
                "title": highlight(item.title, wanted),
                "summary": highlight(item.summary, wanted, fragment=FRAGMENT_CHARS),
            }))
        return hits


def _key_terms(reader: Any, text: str, *, count: int = 12) -> list[tuple[str, float]]:
    """The terms of `text` that say most about it: frequent in it, rare in the index."""
    frequency = Counter(analyse(text))
    documents = reader.doc_count() or 1
    weights = {}
    for term, tf in frequency.items():
        df = sum(reader.doc_frequency(f, term) for f in parser.TEXT_FIELDS)
        if df:
            weights[term] = tf * math.log(1 + documents / df)
    return sorted(weights.items(), key=lambda tw: (-tw[1], tw[0]))[:count]


def _allowed(request: SearchQuery, columns: Columns) -> dict[str, Collection[str] | None]:
    """The facet values each facet lets through (None: no filter on it)."""
    selected = request.selected()
    allowed: dict[str, Collection[str] | None] = {
        name: set(values) if values else None for name, values in selected.items()}
    if request.year_from is not None or request.year_to is not None:
        low = request.year_from if request.year_from is not None else MIN_YEAR
        high = request.year_to if request.year_to is not None else MAX_YEAR
        in_range = {v for v in columns["year"].values if v != UNDATED and low <= int(v) <= high}
        years = allowed["year"]
        allowed["year"] = in_range if years is None else set(years) & in_range
    return allowed


def _by_relevance(searcher: Searcher, postings: Postings, columns: Columns, query: wq.Query,
                  matched: Matched, docs: Docs, limit: int) -> list[tuple[int, float | None]]:
    """The first `limit` of `docs` by score, then newest, then id.

    Scores come with the matches (`searchapp.postings`): the best `limit`
    are picked with one partition, together with every document that ties
    with the last of them. When the match's scores may differ from Whoosh's
    in the last bit (trees of more than two parts), the picked documents and
    any within rounding of the cut are rescored by Whoosh's own matcher, so
    the order is always Whoosh's.
    """
    assert matched.scores is not None
    scores = matched.scores[np.searchsorted(matched.ids, docs)]
    exact = matched.exact
    if len(docs) > limit:
        cut = -np.partition(-scores, limit - 1)[limit - 1]
        slack = 0.0 if exact else abs(cut) * 1e-9 + 1e-12
        keep = np.flatnonzero(scores >= cut - slack)
        docs, scores = docs[keep], scores[keep]
    found = list(zip(scores.tolist(), docs.tolist(), strict=True))
    if not exact:
        rescored = postings.exact_scores(query, docs)
        found = [(rescored.get(d, s), d) for s, d in found]
    date_codes = columns["date"].codes
    # Newest first, undated (code -1) last, as the date's position in the sorted dates.
    keyed = sorted((-s, -int(date_codes[d]), d) for s, d in found)
    ties: dict[tuple[float, int], int] = {}
    for s, c, _ in keyed:
        ties[(s, c)] = ties.get((s, c), 0) + 1
    # Ids (stored fields) only for documents tied on score and date with another
    # one, in the groups that reach into the first `limit`.
    needed = {(s, c) for s, c, _ in keyed[:limit] if ties[(s, c)] > 1}
    ids = {d: searcher.stored_fields(d)["id"] for s, c, d in keyed if (s, c) in needed}
    keyed.sort(key=lambda e: (e[0], e[1], ids.get(e[2], "")))
    return [(d, -s) for s, _, d in keyed[:limit]]


def _by_date(searcher: Searcher, columns: Columns, docs: Docs, *, newest: bool,
             limit: int) -> list[tuple[int, float | None]]:
    """The first `limit` documents by date (undated last), ties by id."""
    ordered, keys = columns.first_by_date(docs, newest=newest, limit=limit)
    if len(ordered) <= TIE_LIMIT:
        ids = {int(d): searcher.stored_fields(int(d))["id"] for d in ordered}
        pairs = sorted(zip(keys.tolist(), ordered.tolist(), strict=True),
                       key=lambda kd: (kd[0], ids[kd[1]]))
        ordered = np.asarray([d for _, d in pairs], dtype=np.int64)
    return [(int(d), None) for d in ordered[:limit]]


def _facet_values(name: str, counts: Mapping[str, int],
                  request: SearchQuery) -> list[FacetValue]:
    selected = set(request.selected()[name])
    values = [FacetValue(_facet_value(name, k), counts.get(k, 0), k in selected)
              for k in set(counts) | selected if counts.get(k, 0) or k in selected]
    if name == "year":
        values.sort(key=lambda v: (v.value is None, -int(v.value or 0)))
    else:
        values.sort(key=lambda v: (-v.count, str(v.value).casefold()))
    return values


def _facet_value(name: str, key: str) -> str | int | None:
    if name == "year":
        return None if key == UNDATED else int(key)
    return key
