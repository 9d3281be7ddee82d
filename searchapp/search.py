"""Searching: a `SearchQuery` in, a `SearchPage` of plain dataclasses out.

`Engine` keeps one open Whoosh searcher per process and refreshes it when a
new generation is swapped in or the live one gets new segments; nothing
Whoosh-owned leaves this module.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from whoosh import qparser, scoring, sorting
from whoosh import query as wq
from whoosh.searching import Searcher

from searchapp.analysis import terms as analyse
from searchapp.errors import BadParameter
from searchapp.facets import FacetColumns
from searchapp.highlight import FRAGMENT_CHARS, highlight
from searchapp.indexer import IndexStore
from searchapp.models import Item
from searchapp.schema import UNDATED, from_stored, schema, year_term

SORTS = ("relevance", "newest", "oldest")
DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100
MAX_PAGE = 1_000
MAX_QUERY_CHARS = 500
TEXT_FIELDS = ("title", "summary")
# `title:` with nothing after it: dropped rather than searched as the word "title".
_EMPTY_FIELD = re.compile(r"\b\w+:(?=\s|$)")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What was asked: words, filters, order and page. Validated on creation."""

    q: str = ""
    organisation: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    year: tuple[int | None, ...] = ()  # None selects undated items
    sort: str | None = None  # None: relevance with words, newest without
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def __post_init__(self) -> None:
        if len(self.q) > MAX_QUERY_CHARS:
            raise BadParameter("q", f"is {len(self.q)} characters long; the limit is"
                                    f" {MAX_QUERY_CHARS}")
        if self.sort is not None and self.sort not in SORTS:
            raise BadParameter("sort", f"must be one of {', '.join(SORTS)}, not {self.sort!r}")
        if not 1 <= self.page <= MAX_PAGE:
            raise BadParameter("page", f"must be between 1 and {MAX_PAGE}")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise BadParameter("per_page", f"must be between 1 and {MAX_PER_PAGE}")

    @property
    def effective_sort(self) -> str:
        return self.sort or ("relevance" if self.q.strip() else "newest")

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

        def integer(name: str, default: int) -> int:
            raw = one(name, str(default)).strip()
            try:
                return int(raw)
            except ValueError:
                raise BadParameter(name, f"must be a whole number, not {raw!r}") from None

        years: list[int | None] = []
        for raw in params.get("year", []):
            text = raw.strip()
            if text.lower() in ("", "null", "none", UNDATED):
                years.append(None)
                continue
            try:
                years.append(int(text))
            except ValueError:
                raise BadParameter("year", f"must be a year like 2017 or 'undated',"
                                           f" not {raw!r}") from None
        sort = one("sort").strip() or None
        return cls(
            q=one("q"),
            organisation=_unique(v.strip() for v in params.get("organisation", []) if v.strip()),
            type=_unique(v.strip() for v in params.get("type", []) if v.strip()),
            year=_unique(years),
            sort=sort,
            page=integer("page", 1),
            per_page=integer("per_page", DEFAULT_PER_PAGE),
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

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "count": self.count, "selected": self.selected}


@dataclass(frozen=True, slots=True)
class SearchPage:
    query: SearchQuery
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    suggestion: str | None = None
    generation: str | None = field(default=None, compare=False)

    @property
    def sort(self) -> str:
        return self.query.effective_sort

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.query.per_page))

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query.q, "total": self.total, "page": self.query.page,
            "per_page": self.query.per_page, "sort": self.sort,
            "hits": [h.to_dict() for h in self.hits],
            "facets": {name: [v.to_dict() for v in values]
                       for name, values in self.facets.items()},
            "suggestion": self.suggestion,
        }


class Engine:
    """One open searcher over the live generation, refreshed when it changes."""

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._searcher: Searcher | None = None
        self._stamp: tuple[int, int] | None = None
        self._generation: str | None = None
        self._columns: FacetColumns | None = None
        self._parser = qparser.MultifieldParser(
            list(TEXT_FIELDS), schema(), group=qparser.AndGroup
        )
        self._parser.add_plugin(qparser.PlusMinusPlugin())
        self._parser.remove_plugin_class(qparser.BoostPlugin)
        self._parser.remove_plugin_class(qparser.RangePlugin)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
        self._searcher, self._columns, self._stamp, self._generation = None, None, None, None

    def _current(self) -> Searcher:
        """The searcher, reopened after a swap or refreshed after new commits."""
        stamp = self.store.pointer_stamp()
        if self._searcher is None or stamp != self._stamp:
            self._drop()
            ix = self.store.open()
            gen = self.store.current()
            self._searcher = ix.searcher(weighting=scoring.BM25F())
            self._stamp, self._generation = stamp, gen.name if gen else None
        elif not self._searcher.up_to_date():
            self._searcher = self._searcher.refresh()
            self._columns = None
        return self._searcher

    @property
    def generation(self) -> str | None:
        return self._generation

    def doc_count(self) -> int:
        with self._lock:
            return int(self._current().doc_count())

    def get(self, item_id: str) -> Item | None:
        with self._lock:
            fields = self._current().document(id=item_id)
            return from_stored(fields) if fields else None

    def search(self, request: SearchQuery) -> SearchPage:
        with self._lock:
            searcher = self._current()
            if self._columns is None:
                self._columns = FacetColumns(searcher.reader())
            columns = self._columns
            words = self.parse(request.q)
            if words is None:
                matched = np.fromiter(searcher.reader().all_doc_ids(), dtype=np.int64)
                ranked: wq.Query = wq.Every()
            else:
                matched = np.fromiter(searcher.docs_for_query(words), dtype=np.int64)
                ranked = words
            total, counted = columns.count(matched, request.selected())
            hits = self._top(searcher, request, ranked, words) if total else []
            facets = {c.field: _facet_values(c.field, c.counts, request) for c in counted}
            return SearchPage(query=request, total=total, hits=hits, facets=facets,
                              generation=self._generation)

    def parse(self, text: str) -> wq.Query | None:
        """The words of a query as a Whoosh query; None when there are no words."""
        text = _EMPTY_FIELD.sub(" ", text)
        if not analyse(text) and "*" not in text:
            return None
        try:
            parsed = self._parser.parse(text)
        except Exception:  # noqa: BLE001 - any parser failure: search the words instead
            parsed = None
        if parsed is None or parsed is wq.NullQuery:
            return self.plain(text)
        return parsed

    @staticmethod
    def plain(text: str) -> wq.Query | None:
        """Every word must appear, in the title or the summary."""
        words = list(dict.fromkeys(analyse(text)))
        if not words:
            return None
        return wq.And([wq.Or([wq.Term(f, w) for f in TEXT_FIELDS]) for w in words])

    def _top(self, searcher: Searcher, request: SearchQuery, ranked: wq.Query,
             words: wq.Query | None) -> list[Hit]:
        filters = [wq.Or([wq.Term(name, v) for v in values])
                   for name, values in request.selected().items() if values]
        limit = request.page * request.per_page
        sort = request.effective_sort
        sortedby: sorting.FacetType | None = None
        if sort != "relevance" or words is None:
            newest = sort != "oldest"
            sortedby = sorting.MultiFacet([
                sorting.FieldFacet("date", reverse=newest),
                sorting.FieldFacet("id"),
            ])
        results = searcher.search(ranked, limit=limit, sortedby=sortedby,
                                  filter=wq.And(filters) if filters else None)
        wanted = _query_terms(searcher, words)
        start = (request.page - 1) * request.per_page
        hits = []
        for hit in results[start:limit]:
            item = from_stored(hit.fields())
            score = hit.score if sortedby is None else None
            hits.append(Hit(item, score, {
                "title": highlight(item.title, wanted),
                "summary": highlight(item.summary, wanted, fragment=FRAGMENT_CHARS),
            }))
        return hits


def _query_terms(searcher: Searcher, words: wq.Query | None) -> frozenset[str]:
    """The index terms a person searched for (prefixes expanded), for highlighting."""
    return frozenset() if words is None else frozenset(_positive(words, searcher.reader()))


def _positive(node: wq.Query, reader: Any) -> set[str]:
    # Excluded words (NOT / -word) are not what the person is looking for.
    if isinstance(node, wq.Not):
        return set()
    if isinstance(node, wq.AndNot):
        return _positive(node.a, reader)
    if node.is_leaf():
        return {text.decode("utf-8") if isinstance(text, bytes) else text
                for name, text in node.existing_terms(reader, expand=True)
                if name in TEXT_FIELDS}
    return set().union(*(_positive(child, reader) for child in node.children()))


def _facet_values(name: str, counts: Mapping[str, int],
                  request: SearchQuery) -> list[FacetValue]:
    selected = set(request.selected()[name])
    keys = set(counts) | selected
    values = [FacetValue(_facet_value(name, k), counts.get(k, 0), k in selected) for k in keys
              if counts.get(k, 0) or k in selected]
    if name == "year":
        values.sort(key=lambda v: (v.value is None, -int(v.value or 0)))
    else:
        values.sort(key=lambda v: (-v.count, str(v.value).casefold()))
    return values


def _facet_value(name: str, key: str) -> str | int | None:
    if name == "year":
        return None if key == UNDATED else int(key)
    return key
