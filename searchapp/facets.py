"""Per-document columns, facet counts and filters, computed apart from ranking.

For each facet field (and the date), `Columns` holds one small integer code
per document: the position of its value in the field's sorted vocabulary,
built once per open reader (`searchapp.engine.Snapshot.column`). Counting a facet over any number of matches is
then one `bincount`, and filtering one `isin`. Date codes sort like the dates
(ISO dates sort as text), so they double as a sort key.

Counts are disjunctive: a facet's counts use the filters of the *other*
facets only, so a selected value never hides its siblings.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from searchapp.engine import Column, Snapshot
from searchapp.fields import COLUMN_FIELDS, FACET_FIELDS

Docs = NDArray[np.int64] | NDArray[np.int32]  # document numbers, in increasing order


@dataclass(frozen=True, slots=True)
class Counted:
    """The outcome of filtering and counting one set of matches."""

    docs: Docs  # the matches that pass every filter
    # facet → matches per code of its column (`Column.values[code]`)
    tallies: dict[str, NDArray[np.int64]]
    values: dict[str, tuple[str, ...]]  # facet → its column's values

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """facet → value → matches (values with none left out)."""
        return {name: {self.values[name][i]: int(tally[i]) for i in np.flatnonzero(tally)}
                for name, tally in self.tallies.items()}


class Columns:
    """Codes for every document of one reader (build anew when the reader changes)."""

    def __init__(self, snapshot: Snapshot, fields: Sequence[str] = COLUMN_FIELDS) -> None:
        self.fields: dict[str, Column] = {name: snapshot.column(name) for name in fields}
        self._folded: dict[str, dict[str, tuple[str, ...]]] = {}
        self._kept: dict[str, Any] = {}
        self._without: dict[str, bool] = {}  # facet → whether any document has no value

    def _missing(self, name: str) -> bool:
        """Whether some document has no value in `name` (a code of -1): when none has,
        as is usual for a facet, counting needs no look for them."""
        found = self._without.get(name)
        if found is None:
            found = self._without[name] = bool((self.fields[name].codes < 0).any())
        return found

    def kept(self, name: str, make: Callable[[str, tuple[str, ...]], Any]) -> Any:
        """`make(name, values)` of a column's values, made once and kept with the columns
        (what a facet shows of each value: `searchapp.page.FacetShown`)."""
        found = self._kept.get(name)
        if found is None:
            found = self._kept[name] = make(name, self.fields[name].values)
        return found

    def __getitem__(self, name: str) -> Column:
        return self.fields[name]

    def stored_forms(self, name: str, term: str) -> tuple[str, ...]:
        """The values of a facet as stored that `term` names: itself when stored so (a
        facet link), else every value equal to it but for case and accents (`ilo` →
        `ILO`); `(term,)` when none is."""
        if len(self.fields[name].codes_of((term,))):
            return (term,)
        folded = self._folded.get(name)
        if folded is None:
            grouped: dict[str, list[str]] = {}
            for value in self.fields[name].values:
                grouped.setdefault(fold(value), []).append(value)
            folded = self._folded[name] = {k: tuple(v) for k, v in grouped.items()}
        return folded.get(fold(term), (term,))

    def dated(self, matched: Docs, low: str, high: str) -> Docs:
        """The documents of `matched` dated from `low` to `high` (ISO dates, inclusive);
        undated documents never pass."""
        column = self.fields["date"]
        first = bisect.bisect_left(column.values, low)  # values sort like the dates
        last = bisect.bisect_right(column.values, high)  # exclusive
        codes = column.codes[matched]
        return matched[(codes >= first) & (codes < last)]

    def count(self, matched: Docs, allowed: Mapping[str, Collection[str] | None],
              facets: Sequence[str] = FACET_FIELDS) -> Counted:
        """Filter `matched` by the `allowed` values of each facet and count every facet.

        `allowed[name]` is None (or absent) for no filter on that facet.
        """
        local = {name: self.fields[name].codes[matched] for name in facets}
        passes: dict[str, NDArray[np.bool_]] = {}
        for name, values in allowed.items():
            if values is not None:
                passes[name] = np.isin(local[name], self.fields[name].codes_of(values))

        tallies = {}
        for name in facets:
            mask = _all_of(m for n, m in passes.items() if n != name)
            codes = local[name] if mask is None else local[name][mask]
            if self._missing(name):
                codes = codes[codes >= 0]  # (-1: no value)
            tallies[name] = np.bincount(codes, minlength=len(self.fields[name].values))
        everything = _all_of(passes.values())
        return Counted(matched if everything is None else matched[everything], tallies,
                       {name: self.fields[name].values for name in facets})

    def first_by_date(self, docs: Docs, *, newest: bool, limit: int
                      ) -> tuple[Docs, NDArray[np.int64]]:
        """The first `limit` of `docs` by date (undated last), plus every document tied
        with the last of them; returned sorted by (date key, document number), with
        their keys, so the caller can break ties its own way."""
        codes = self.fields["date"].codes[docs].astype(np.int64)
        key = -codes if newest else codes
        key[codes < 0] = np.iinfo(np.int64).max  # undated last either way
        if limit < len(docs):
            cutoff = np.partition(key, limit - 1)[limit - 1]
            keep = np.flatnonzero(key <= cutoff)
            docs, key = docs[keep], key[keep]
        order = np.lexsort((docs, key))
        return docs[order], key[order]


def fold(value: str) -> str:
    """A facet value compared without case, accents or repeated spaces."""
    decomposed = unicodedata.normalize("NFKD", value)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def _all_of(masks: Iterable[NDArray[np.bool_]]) -> NDArray[np.bool_] | None:
    """The documents passing every mask; None when there is no mask at all."""
    combined: NDArray[np.bool_] | None = None
    for mask in masks:
        combined = mask if combined is None else combined & mask
    return combined
