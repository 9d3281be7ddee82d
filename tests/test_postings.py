"""Matching and scoring with posting arrays gives Whoosh's own matches and scores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh import scoring
from whoosh.searching import Searcher

from searchapp import query as parser
from searchapp.indexer import IndexStore
from searchapp.models import Item, build_item
from searchapp.postings import Postings
from searchapp.schema import schema, to_document
from searchapp.search import ranking

WORDS = ["cooperative", "workers", "social", "economy", "refugees", "platform", "union",
         "housing", "energy", "elections", "solidarity", "youth", "women", "bank"]

QUERIES = [
    "cooperative", "social economy", '"social economy"', "refugees OR housing",
    "platform workers union", "co-op", "coop housing", "title:energy", "solid*",
    '"workers union" bank', "cooperative -housing", "cooperative NOT bank",
    "economy youth women elections", "nothingmatchesthis", "bank OR union OR energy OR youth",
]


def corpus(n: int = 400, *, word: str = "") -> Iterator[Item]:
    for k in range(n):
        title = " ".join(WORDS[(k * j + 3) % len(WORDS)] for j in range(1, 2 + k % 5))
        summary = " ".join(WORDS[(k + j * 5) % len(WORDS)] for j in range(k % 11))
        yield build_item({"id": f"d{k:04d}", "title": f"{word} {title}".strip(),
                          "summary": summary, "date": f"{2001 + k % 20}-0{1 + k % 9}-11"},
                         organisation=("ILO", "CECOP", "ICA")[k % 3])


def whoosh_scores(searcher: Searcher, q: wq.Query) -> dict[int, float]:
    return {hit.docnum: hit.score for hit in searcher.search(q, limit=None)}


def check(searcher: Searcher) -> None:
    postings = Postings(searcher)
    reader = searcher.reader()
    for text in QUERIES:
        built = parser.build(parser.parse(text), reader)
        assert built is not None
        for q in (built.query, *([built.exclude] if built.exclude is not None else [])):
            expected = whoosh_scores(searcher, q)
            matched = postings.match(q)
            assert matched.scores is not None
            got = dict(zip(matched.ids.tolist(), matched.scores.tolist(), strict=True))
            assert got.keys() == expected.keys(), text
            if matched.exact:
                assert got == expected, text
            else:
                assert all(got[d] == pytest.approx(s, rel=1e-12) for d, s in expected.items())
                assert postings.exact_scores(q, list(expected)) == expected, text
            assert postings.match(q, scored=False).ids.tolist() == sorted(expected)
    postings.close()


def test_same_matches_and_scores_with_posting_arrays(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.rebuild(corpus(), expected=400)
    assert list(tmp_path.glob("gen-*/*.arrays"))
    ix = store.open()
    with ix.searcher(weighting=ranking()) as searcher:
        check(searcher)


def test_same_without_arrays_with_deletions_and_several_segments(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.rebuild(corpus(300), expected=300)
    # Whoosh's own writer: new segments without arrays; replaced documents deleted.
    store.update(list(corpus(320, word="bank"))[250:], expected=320)
    ix = store.open()
    with ix.searcher(weighting=ranking()) as searcher:
        assert len(searcher.reader().leaf_readers()) == 2
        assert searcher.reader().has_deletions()
        check(searcher)


def test_other_weighting_models_are_left_to_whoosh(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    ix = whoosh_index.create_in(str(tmp_path), schema())
    writer = ix.writer()
    for item in corpus(100):
        writer.add_document(**to_document(item))
    writer.commit()
    for model in (scoring.TF_IDF(), scoring.BM25F(B=0.5, K1=2.0, title_B=0.9)):
        with ix.searcher(weighting=model) as searcher:
            check(searcher)
