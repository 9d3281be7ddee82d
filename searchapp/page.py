"""What a search answers: plain dataclasses, and their JSON shapes.

`SearchPage` is what the HTML page, the JSON API, the feed and the CLI all
render; `to_dict` is the `/api/search` shape (described in
`searchapp.web.openapi`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from searchapp.models import Item
from searchapp.request import SearchQuery
from searchapp.schema import UNDATED


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


def facet_values(name: str, counts: Mapping[str, int],
                 request: SearchQuery) -> list[FacetValue]:
    """A facet's values as shown: counted or selected; years newest first, others by count."""
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
