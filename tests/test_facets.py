"""Facet columns read through posting arrays equal the ones read through plain Whoosh."""

from __future__ import annotations

from searchapp.config import Settings
from searchapp.engine import open_snapshot
from searchapp.facets import Columns
from searchapp.indexer import IndexStore


def test_columns_are_the_same_either_way(samples: Settings) -> None:
    store = IndexStore(samples.index_dir)
    fast = open_snapshot(store.open_index(), choice="arrays")
    plain = open_snapshot(store.open_index(), choice="whoosh")
    assert (fast.kind, plain.kind) == ("arrays", "whoosh")
    by_arrays, by_whoosh = Columns(fast), Columns(plain)
    for name, column in by_whoosh.fields.items():
        assert by_arrays[name].values == column.values
        assert by_arrays[name].codes.tolist() == column.codes.tolist()
    assert (by_whoosh["organisation"].codes >= 0).all()
    assert len(by_whoosh["organisation"].values) == 2  # CECOP and ILO
    fast.close()
    plain.close()
