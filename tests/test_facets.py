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


def test_a_document_with_no_value_in_a_facet_is_counted_in_the_others(
        samples: Settings) -> None:
    """Counting looks for documents without a value (code -1) only in a facet that has
    any: such a document counts in every other facet and in none of that one's values."""
    import numpy as np

    from searchapp.engine import Column
    from searchapp.fields import FACET_FIELDS

    store = IndexStore(samples.index_dir)
    snapshot = open_snapshot(store.open_index())
    try:
        columns = Columns(snapshot)
        everyone = np.arange(len(columns["type"].codes), dtype=np.int64)
        whole = columns.count(everyone, {})
        codes = columns["type"].codes.copy()
        lost = columns["type"].values[codes[0]]
        codes[0] = -1  # as a field an older index has no value of
        doctored = Columns(snapshot)
        doctored.fields["type"] = Column(columns["type"].values, codes)
        counted = doctored.count(everyone, {})
        for name in FACET_FIELDS:
            expected = dict(whole.counts[name])
            if name == "type":
                expected[lost] -= 1
                expected = {v: n for v, n in expected.items() if n}
            assert counted.counts[name] == expected, name
        assert sum(counted.counts["type"].values()) == len(everyone) - 1
    finally:
        snapshot.close()
