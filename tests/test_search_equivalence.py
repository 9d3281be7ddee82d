"""`Engine.search` answers exactly what the straightforward Whoosh way answers.

The reference is the textbook approach: the same Whoosh query, every match
scored by the searcher with `groupedby` facets (one more grouped search per
filtered facet, as facet counts are disjunctive), the top ordered by score,
then newest, then id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from whoosh import query as wq
from whoosh import sorting

from searchapp import query as parser
from searchapp.indexer import IndexStore
from searchapp.models import Item, build_item
from searchapp.schema import FACET_FIELDS, year_term
from searchapp.search import Engine, SearchQuery, ranking

WORDS = ["cooperative", "workers", "social", "economy", "refugees", "platform", "union",
         "housing", "energy", "elections", "solidarity", "youth", "women", "bank"]
ORGS = ["ILO", "CECOP", "ICA", "COPAC"]
TYPES = ["News", "Press release", "Event"]


def corpus(n: int) -> Iterator[Item]:
    for k in range(n):
        title = " ".join(WORDS[(k * j + 1) % len(WORDS)] for j in range(1, 2 + k % 4))
        summary = " ".join(WORDS[(k * 3 + j * 5) % len(WORDS)] for j in range(k % 9))
        date = None if k % 17 == 0 else f"{2005 + k % 12}-{1 + k % 12:02d}-{1 + k % 5:02d}"
        yield build_item({"id": f"x{(k * 7919) % 10007:05d}", "title": title,
                          "summary": summary, "date": date, "type": TYPES[k % 3]},
                         organisation=ORGS[(k * k) % 4])


REQUESTS = [
    SearchQuery(q="cooperative"), SearchQuery(q="social economy"),
    SearchQuery(q='"social economy"'), SearchQuery(q="refugees OR housing"),
    SearchQuery(q="co-op"), SearchQuery(q="union", organisation=("ILO",)),
    SearchQuery(q="energy", organisation=("ILO", "ICA"), type=("Event",)),
    SearchQuery(q="women", year=(2010, None)), SearchQuery(q="bank", year_from=2008, year_to=2012),
    SearchQuery(q="cooperative -housing"), SearchQuery(q="youth", per_page=5, page=3),
    SearchQuery(q="economy workers", match="any"), SearchQuery(q="platform", type=("News",)),
    SearchQuery(q="solid*"), SearchQuery(q="title:elections"),
]


def reference(searcher: Any, request: SearchQuery) -> dict[str, Any]:
    built = parser.build(parser.parse(request.q), searcher.reader(), match=request.match)
    assert built is not None
    selected: dict[str, list[str]] = {
        "organisation": list(request.organisation), "type": list(request.type),
        "year": [year_term(y) for y in request.year]}
    if request.year_from is not None or request.year_to is not None:
        years = [str(y) for y in range(request.year_from or 1000, (request.year_to or 9999) + 1)]
        selected["year"] = [y for y in (selected["year"] or years) if y in years]
    selected = {k: v for k, v in selected.items() if v}

    def only(skip: str | None) -> wq.Query | None:
        parts = [wq.Or([wq.Term(k, v) for v in vs]) for k, vs in selected.items() if k != skip]
        return wq.And(parts) if parts else None

    facets = [sorting.FieldFacet(name, maptype=sorting.Count) for name in FACET_FIELDS]
    results = searcher.search(built.query, limit=None, groupedby=facets, filter=only(None),
                              mask=built.exclude)
    counts = {name: dict(results.groups(name)) for name in FACET_FIELDS}
    for name in selected:
        other = searcher.search(built.query, limit=None, filter=only(name), mask=built.exclude,
                                groupedby=[sorting.FieldFacet(name, maptype=sorting.Count)])
        counts[name] = dict(other.groups(name))
    ranked = sorted(((hit.score, hit.get("date") or "", hit["id"]) for hit in results),
                    key=lambda e: (-e[0], -int(e[1].replace("-", "") or 0), e[2]))
    end = request.page * request.per_page
    return {"total": len(results), "counts": counts,
            "top": [(i, s) for s, _, i in ranked[end - request.per_page:end]]}


@pytest.mark.parametrize("update", [False, True])
def test_search_equals_the_groupedby_way(tmp_path: Path, update: bool) -> None:
    store = IndexStore(tmp_path)
    items = list(corpus(600))
    store.rebuild(items[:500] if update else items, expected=500 if update else 600)
    if update:  # a second segment from Whoosh's writer, and replaced documents
        store.update(items[450:], expected=600)
    engine = Engine(store)
    ix = store.open()
    with ix.searcher(weighting=ranking()) as searcher:
        for request in REQUESTS:
            page = engine.search(request)
            expected = reference(searcher, request)
            assert page.total == expected["total"], request
            for name in FACET_FIELDS:
                got = {("undated" if v.value is None else str(v.value)): v.count
                       for v in page.facets[name] if v.count}
                assert got == expected["counts"][name], (request, name)
            assert [(h.item.id, h.score) for h in page.hits] == expected["top"], request
    engine.close()
