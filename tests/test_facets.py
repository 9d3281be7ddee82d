"""Facet columns read through posting arrays equal the ones read through Whoosh."""

from __future__ import annotations

from searchapp.config import Settings
from searchapp.facets import Columns
from searchapp.indexer import IndexStore
from searchapp.postings import Postings
from searchapp.search import ranking


def test_columns_are_the_same_either_way(samples: Settings) -> None:
    ix = IndexStore(samples.index_dir).open()
    with ix.searcher(weighting=ranking()) as searcher:
        postings = Postings(searcher)
        plain = Columns(searcher.reader())
        fast = Columns(searcher.reader(), docs=postings.docs)
        for name, column in plain.fields.items():
            assert fast[name].values == column.values
            assert fast[name].codes.tolist() == column.codes.tolist()
        assert (plain["organisation"].codes >= 0).all()
        postings.close()
