"""What a search answers: plain dataclasses, and their JSON shapes.

`SearchPage` is what the HTML page, the JSON API, the feed and the CLI all
render; `to_dict` is the `/api/search` shape (described in
`searchapp.web.openapi`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from searchapp.fields import FACETS
from searchapp.models import Item
from searchapp.request import DEFAULT_FACET_SIZE, SearchQuery


@dataclass(frozen=True, slots=True)
class Hit:
    item: Item
    score: float | None
    highlights: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        item, date, score = self.item, self.item.date, self.score
        return {
            "id": item.id, "title": item.title, "summary": item.summary,
            "organisation": item.organisation,
            "date": None if date is None else date.isoformat(),
            "year": None if date is None else date.year,
            "type": item.type, "url": item.url, "language": item.language,
            "score": None if score is None else round(score, 4),
            "highlights": dict(self.highlights),
        }


@dataclass(frozen=True, slots=True)
class FacetValue:
    value: str | int | None  # as in JSON (a year is a number; None: undated)
    count: int
    selected: bool
    label: str  # as a reader sees it ("Undated", "Français")
    param: str  # as a request parameter (`year=undated`, `language=fr`)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "label": self.label, "count": self.count,
                "selected": self.selected}


@dataclass(frozen=True, slots=True)
class SearchPage:
    query: SearchQuery
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    suggestion: str | None = None
    # With no item having every word: how many have any of them (else None).
    any_words_total: int | None = None
    # The dates items had to fall between (date_from, date_to and past together).
    dates: tuple[dt.date, dt.date] | None = None
    # The query was too long: only its first words were searched (query.MAX_QUERY_TERMS).
    shortened: bool = False
    # Stop words left out of the search (folded); `only_too_common` when the query
    # had no other words, so nothing was searched for.
    too_common: tuple[str, ...] = ()
    only_too_common: bool = False
    # Words no item has, matched by typo tolerance: as typed (folded) → the close
    # words of the index they matched.
    typos: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # What of the query was left out or narrowed to bound its work (for the reader).
    warnings: tuple[str, ...] = ()
    # The time budget ran out: these are the best of the matches found in time.
    partial: bool = False
    window: int | None = None  # results that can be paged through (max_result_window)
    # Filter values no item has (organisation, type): (filter, value, the closest value
    # items have or None), so a misspelt one is not just 0 results.
    unmatched: tuple[tuple[str, str, str | None], ...] = ()
    # Work done (posting lists and postings read, documents rescored): for tests and
    # benchmarks, not shown.
    work: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def sort(self) -> str:
        return self.query.effective_sort

    @property
    def pages(self) -> int:
        """Pages of results, up to the last one within the result window."""
        pages = math.ceil(self.total / self.query.per_page)
        if self.window is not None:
            pages = min(pages, self.window // self.query.per_page)
        return max(1, pages)

    def to_dict(self, *, facet_size: int = DEFAULT_FACET_SIZE) -> dict[str, Any]:
        """The `/api/search` shape; each facet lists its first `facet_size` values (and
        every selected one), and `facets_truncated` says which facets had more."""
        q = self.query
        facets, truncated = {}, {}
        for name, values in self.facets.items():
            kept = values if len(values) <= facet_size else [
                v for i, v in enumerate(values) if i < facet_size or v.selected]
            facets[name] = [{"value": v.value, "label": v.label, "count": v.count,
                             "selected": v.selected} for v in kept]  # (FacetValue.to_dict)
            truncated[name] = len(kept) < len(values)
        low, high = self.dates if self.dates is not None else (None, None)
        return {
            "query": q.q, "total": self.total, "page": q.page, "per_page": q.per_page,
            "sort": self.sort, "match": q.match,
            "filters": {**{name: list(values) for name, values in q.filters().items()},
                        "year_from": q.year_from, "year_to": q.year_to,
                        "date_from": _iso(q.date_from), "date_to": _iso(q.date_to),
                        "past": q.past},
            "dates": None if self.dates is None else {
                "from": None if low == dt.date.min else _iso(low),
                "to": None if high == dt.date.max else _iso(high)},
            "hits": [h.to_dict() for h in self.hits],
            "facets": facets,
            "facet_size": facet_size,
            "facets_truncated": truncated,
            "suggestion": self.suggestion,
            "shortened": self.shortened,
            "any_words": (None if self.any_words_total is None
                          else {"match": "any", "total": self.any_words_total}),
            "too_common": list(self.too_common),
            "typos": [{"word": word, "matched": list(matched)}
                      for word, matched in self.typos.items()],
            "partial": self.partial,
            "warnings": list(self.warnings),
            "unmatched": [{"filter": name, "value": value, "did_you_mean": guess}
                          for name, value, guess in self.unmatched],
        }


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


@dataclass(frozen=True, slots=True)
class Related:
    item: Item
    score: float


def facet_values(name: str, counts: Mapping[str, int],
                 selected: Collection[str]) -> list[FacetValue]:
    """A facet's values as shown: counted or selected (`selected`: index terms); years
    newest first (undated last), others by count, then label. (A search lists them
    from its counts per code, `FacetShown.values`, in the same order.)"""
    facet = FACETS[name]
    values = []
    for term in {*counts, *selected}:
        count = counts.get(term, 0)
        if count or term in selected:
            value = facet.from_term(term)
            values.append(FacetValue(value, count, term in selected, facet.label(value),
                                     facet.param(value)))
    values.sort(key=_newest if facet.newest_first else _most)
    return values


def _newest(v: FacetValue) -> tuple[bool, int]:
    return v.value is None, -int(v.value or 0)


def _most(v: FacetValue) -> tuple[int, str, str]:
    return -v.count, v.label.casefold(), v.param


class FacetShown:
    """What a facet shows of each value of its column, worked out once per column
    (`searchapp.facets.Columns.kept`): the value as in JSON, its label and parameter,
    and its place in the facet's order among equal counts. A search then lists its
    facet values from its counts per code (`values`): what `facet_values` lists."""

    __slots__ = ("code", "name", "newest_first", "rank", "shown")

    def __init__(self, name: str, terms: tuple[str, ...]) -> None:
        facet = FACETS[name]
        self.name = name
        self.code = {term: i for i, term in enumerate(terms)}
        self.shown: list[tuple[str | int | None, str, str]] = []
        for term in terms:
            value = facet.from_term(term)
            self.shown.append((value, facet.label(value), facet.param(value)))
        self.newest_first = facet.newest_first
        # Each code's place in the order among equal counts (no two values tie in it).
        blank = [FacetValue(value, 0, False, label, param) for value, label, param in self.shown]
        order = sorted(range(len(terms)), key=lambda i: (_newest if self.newest_first
                                                         else _most)(blank[i]))
        self.rank = np.empty(len(terms), dtype=np.int64)
        self.rank[order] = np.arange(len(terms))

    def values(self, tally: NDArray[np.int64], selected: Collection[str]) -> list[FacetValue]:
        """`facet_values` from the matches per code (`tally`) and the selected index
        terms, without a look at the values with no match."""
        chosen = [code for term in selected if (code := self.code.get(term)) is not None]
        codes = np.flatnonzero(tally)
        if chosen:
            codes = np.union1d(codes, np.asarray(chosen, dtype=np.int64))
        counts = tally[codes]
        ranks = self.rank[codes]
        order = np.argsort(ranks) if self.newest_first else np.lexsort((ranks, -counts))
        shown, picked = self.shown, set(chosen)
        values = []
        for code, count in zip(codes[order].tolist(), counts[order].tolist()):
            value, label, param = shown[code]
            values.append(FacetValue(value, count, code in picked, label, param))
        if len(chosen) < len(selected):  # selected, but no item has it: shown with 0
            values += facet_values(self.name, {}, [t for t in selected if t not in self.code])
            values.sort(key=_newest if self.newest_first else _most)
        return values
