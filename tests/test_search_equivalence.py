"""The arrays path and plain Whoosh give the same `SearchPage`, whole.

The same requests run through `Engine` with `SEARCHAPP_ENGINE=arrays` and
`=whoosh` (plain Whoosh through its public API, `searchapp.engine.plain`),
and the pages must be equal: totals, facet counts, hits in order with their
scores, highlights, suggestions. Over the samples and over a generated corpus
with several segments and deleted documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from searchapp.config import Settings
from searchapp.engine import FALLBACKS
from searchapp.indexer import IndexStore
from searchapp.models import Item, build_item
from searchapp.search import Engine, SearchQuery

WORDS = ["cooperative", "workers", "social", "economy", "refugees", "platform", "union",
         "housing", "energy", "elections", "solidarity", "youth", "women", "bank"]
ORGS = ["ILO", "CECOP", "ICA", "COPAC"]
TYPES = ["News", "Press release", "Event"]


def corpus(n: int, *, offset: int = 0) -> Iterator[Item]:
    for k in range(offset, n):
        title = " ".join(WORDS[(k * j + 1) % len(WORDS)] for j in range(1, 2 + k % 4))
        summary = " ".join(WORDS[(k * 3 + j * 5) % len(WORDS)] for j in range(k % 9))
        date = None if k % 17 == 0 else f"{2005 + k % 12}-{1 + k % 12:02d}-{1 + k % 5:02d}"
        yield build_item({"id": f"x{(k * 7919) % 10007:05d}", "title": title,
                          "summary": summary, "date": date, "type": TYPES[k % 3]},
                         organisation=ORGS[(k * k) % 4])


REQUESTS = [
    SearchQuery(), SearchQuery(sort="oldest"), SearchQuery(organisation=("ILO",)),
    SearchQuery(q="cooperative"), SearchQuery(q="social economy"),
    SearchQuery(q='"social economy"'), SearchQuery(q="refugees OR housing"),
    SearchQuery(q="co-op"), SearchQuery(q="union", organisation=("ILO",)),
    SearchQuery(q="energy", organisation=("ILO", "ICA"), type=("Event",)),
    SearchQuery(q="women", year=(2010, None)), SearchQuery(q="bank", year_from=2008, year_to=2012),
    SearchQuery(q="cooperative -housing"), SearchQuery(q="youth", per_page=5, page=3),
    SearchQuery(q="economy workers", match="any"), SearchQuery(q="platform", type=("News",)),
    SearchQuery(q="solid*"), SearchQuery(q="title:elections"), SearchQuery(q="-bank"),
    SearchQuery(q="bank union energy youth women"), SearchQuery(q="cooperative", sort="newest"),
    SearchQuery(q="solidarty"), SearchQuery(q="refugees platform housing"),
    SearchQuery(q="cooperatvie workrs"), SearchQuery(q="title:elektions OR womn"),
    SearchQuery(q="platfrom", match="any"),
    SearchQuery(q="economy", per_page=100), SearchQuery(q='"workers union" OR "bank youth"'),
    SearchQuery(q="elections", page=2, per_page=3, sort="oldest"),
    # Repeated words (weighted once), RM3 feedback (#12).
    SearchQuery(q="bank union bank", match="any"), SearchQuery(q="economy OR economy OR social"),
    SearchQuery(q="cooperative workers", feedback="rm3"),
    SearchQuery(q="economy social", match="any", feedback="rm3", per_page=20, page=2),
    # Inexact sums, rescored only around the page asked for (ranking.by_relevance).
    SearchQuery(q="bank union energy youth", match="any", page=3, per_page=7),
    SearchQuery(q="women OR housing OR platform", page=2, per_page=20),
]


def compare(store: IndexStore, requests: list[SearchQuery]) -> None:
    fast, plain = Engine(store, engine="arrays"), Engine(store, engine="whoosh")
    assert (fast.stats()["kind"], plain.stats()["kind"]) == ("arrays", "whoosh")
    before = FALLBACKS.snapshot()
    hits = 0
    for request in requests:
        got, expected = fast.search(request), plain.search(request)
        assert got == expected, request
        assert got.to_dict() == expected.to_dict(), request
        hits += len(got.hits)
    assert hits > len(requests)  # the requests find things
    assert FALLBACKS.snapshot() == before  # and the arrays path answered all of it
    item = fast.get(fast.search(SearchQuery(q="cooperative")).hits[0].item.id)
    assert item is not None
    assert fast.related(item) == plain.related(item)
    assert fast.complete("coop") == plain.complete("coop")
    fast.close()
    plain.close()


@pytest.mark.parametrize("update", [None, "segments", "whoosh"])
def test_the_arrays_path_gives_plain_whooshs_pages(tmp_path: Path, update: str | None) -> None:
    store = IndexStore(tmp_path)
    items = list(corpus(600))
    store.rebuild(items[:500] if update else items, expected=500 if update else 600)
    if update:  # more segments (from the segment writer or Whoosh's), replaced documents
        write = store.update if update == "segments" else store.update_with_whoosh
        write(items[450:], expected=600)
        write(list(corpus(640, offset=600)), expected=640)
    compare(store, REQUESTS)


def test_the_same_pages_over_the_samples(samples: Settings) -> None:
    requests = [SearchQuery(q=q) for q in (
        "cooperatives", "social economy", '"social economy"', "refugees", "elections",
        "workers OR employment", "coop*", "ILO -youth", "title:cooperative", "cooperativs")]
    compare(IndexStore(samples.index_dir), [*requests, SearchQuery(),
                                            SearchQuery(year=(None,)), SearchQuery(q="the")])
