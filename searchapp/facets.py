"""Facet counts over every match, computed apart from ranking.

For each facet field, `FacetColumns` holds one small integer code per document
(the position of its value in the field's vocabulary), built once per open
reader. Counting a facet is then one `bincount` over the codes of the matching
documents, whatever their number. Counts are disjunctive: a facet's counts use
the filters of the *other* facets only, so a selected value never hides its
siblings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from whoosh.reading import IndexReader

from searchapp.schema import FACET_FIELDS

Codes = NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class Column:
    """One facet field: its values, and each document's value as a code (-1: none)."""

    values: tuple[str, ...]
    codes: Codes

    def code_of(self, value: str) -> int | None:
        try:
            return self.values.index(value)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Counted:
    """Raw counts for one facet: value → number of matching documents."""

    field: str
    counts: dict[str, int]


class FacetColumns:
    """Facet codes for every document of one reader (rebuild when it changes)."""

    def __init__(self, reader: IndexReader, fields: Sequence[str] = FACET_FIELDS) -> None:
        size = reader.doc_count_all()
        self.columns: dict[str, Column] = {}
        for name in fields:
            codes = np.full(size, -1, dtype=np.int32)
            values: list[str] = []
            for code, term in enumerate(reader.lexicon(name)):
                ids = np.fromiter(reader.postings(name, term).all_ids(), dtype=np.int64)
                codes[ids] = code
                values.append(term.decode("utf-8"))
            self.columns[name] = Column(tuple(values), codes)

    def count(
        self, matched: NDArray[np.int64], selected: Mapping[str, Sequence[str]]
    ) -> tuple[int, list[Counted]]:
        """Count every facet over `matched` documents, given the selected values.

        Returns the number of documents passing every filter, and the counts.
        """
        local = {name: col.codes[matched] for name, col in self.columns.items()}
        passes: dict[str, NDArray[np.bool_]] = {}
        for name, values in selected.items():
            if not values or name not in self.columns:
                continue
            wanted = [c for v in values if (c := self.columns[name].code_of(v)) is not None]
            passes[name] = np.isin(local[name], np.asarray(wanted, dtype=np.int32))

        everything = _all_of(passes.values())
        total = int(everything.sum()) if everything is not None else len(matched)

        result = []
        for name, col in self.columns.items():
            mask = _all_of(m for n, m in passes.items() if n != name)
            codes = local[name] if mask is None else local[name][mask]
            codes = codes[codes >= 0]
            tally = np.bincount(codes, minlength=len(col.values))
            counts = {col.values[i]: int(tally[i]) for i in np.flatnonzero(tally)}
            result.append(Counted(name, counts))
        return total, result


def _all_of(masks: Iterable[NDArray[np.bool_]]) -> NDArray[np.bool_] | None:
    """The documents passing every mask; None when there is no mask at all."""
    combined: NDArray[np.bool_] | None = None
    for mask in masks:
        combined = mask if combined is None else combined & mask
    return combined
