"""The seam: what a search asks of one open index reader, and what crosses back.

A `Snapshot` is one reader's view of the index, chosen once when the reader
is opened (`searchapp.engine.open_snapshot`): the arrays path
(`searchapp.engine.arrays`) or plain Whoosh (`searchapp.engine.plain`). What
crosses it are numpy arrays of document numbers and scores, small value
objects (`Matched`, `Column`) and plain dicts of stored fields; queries go in
as a small tree of its own (`Term`, `Word`, `Phrase`, `And`, `Or`, `Every`,
`Nothing`, which `searchapp.query.build` makes and the arrays path
understands in full), and nothing Whoosh-owned comes out. Every time the arrays path hands part of a query to Whoosh, it says why
in `FALLBACKS`, so leaving the fast path is never silent.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Ids = NDArray[np.int32]
Scores = NDArray[np.float64]
Codes = NDArray[np.int32]

EMPTY_IDS: Ids = np.empty(0, dtype=np.int32)
EMPTY_SCORES: Scores = np.empty(0, dtype=np.float64)

ARRAYS, WHOOSH = "arrays", "whoosh"
KINDS = (ARRAYS, WHOOSH)
CHOICES = ("auto", *KINDS)


@dataclass(frozen=True, slots=True)
class Term:
    """Documents with `text` in `field`; scores multiplied by `boost`."""

    field: str
    text: str
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Word:
    """Documents with any of `terms` (field, term text), scored as one word.

    Under BM25F proper (`searchapp.engine.scoring.WordBM25F`) the word's
    frequencies in its terms' fields are added before one saturation, with one
    IDF from the documents having any of the terms; under the per-field kind
    it scores as an OR of its terms (each boosted). A plain query word becomes
    one `Word` over the text fields (`searchapp.query.build`).
    """

    terms: tuple[tuple[str, str], ...]
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Phrase:
    """Documents with `words` one after another in `field`."""

    field: str
    words: tuple[str, ...]
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Every:
    """Every live document."""


@dataclass(frozen=True, slots=True)
class Nothing:
    """No document."""


Query = Term | Word | Phrase | And | Or | Every | Nothing


@dataclass(frozen=True, slots=True)
class Matched:
    """Matching documents in increasing order, with their scores (None: unscored)."""

    ids: Ids
    scores: Scores | None
    exact: bool = True  # scores equal Whoosh's bit for bit

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, *, scored: bool) -> Matched:
        return cls(EMPTY_IDS, EMPTY_SCORES if scored else None)


@dataclass(frozen=True, slots=True)
class Column:
    """One field: its values in order, and each document's value as a code (-1: none)."""

    values: tuple[str, ...]
    codes: Codes

    def codes_of(self, values: Iterable[str]) -> NDArray[np.int32]:
        position = {v: i for i, v in enumerate(self.values)}
        return np.asarray(sorted(position[v] for v in values if v in position), dtype=np.int32)


class Fallbacks:
    """How often the arrays path handed work to Whoosh, per reason (process-wide)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


FALLBACKS = Fallbacks()


class Vocabulary(ABC):
    """The words and terms of one reader, for prefixes, spelling and completion."""

    @abstractmethod
    def doc_count(self) -> int:
        """Live documents."""

    @abstractmethod
    def doc_frequency(self, field: str, term: str) -> int:
        """Documents with `term` in `field` (deleted ones may still count, as in Whoosh)."""

    @abstractmethod
    def terms(self, field: str, prefix: str) -> Iterator[str]:
        """The field's index terms starting with `prefix`, in order."""

    @abstractmethod
    def words(self, field: str, prefix: str) -> Iterator[str]:
        """The field's unstemmed spelling words starting with `prefix`, in order
        (nothing when it keeps no words)."""

    @abstractmethod
    def word_count(self, field: str, word: str) -> int:
        """How many documents use a spelling word in `field`."""

    @abstractmethod
    def near(self, field: str, word: str, *, distance: int, prefix: int) -> Iterator[str]:
        """Index terms of `field` within `distance` edits of `word`, sharing its first
        `prefix` characters."""


class Snapshot(ABC):
    """One open reader of one index generation. Not shared across threads unguarded."""

    kind: str = ""
    reason: str = ""  # why this kind (for the log and the stats)

    @abstractmethod
    def live(self) -> Ids:
        """Every live (not deleted) document, in order."""

    @abstractmethod
    def match(self, query: Query, *, scored: bool = True) -> Matched:
        """The documents `query` matches, with Whoosh's scores when `scored`."""

    @abstractmethod
    def rescore(self, query: Query, docs: Sequence[int] | NDArray[np.integer[Any]]
                ) -> dict[int, float]:
        """Whoosh's exact scores of `query` for some of its matches."""

    @abstractmethod
    def column(self, name: str) -> Column:
        """Each document's value of a one-term field (facets, the date)."""

    @abstractmethod
    def stored(self, doc: int) -> dict[str, Any]:
        """A document's stored fields."""

    @abstractmethod
    def find(self, item_id: str) -> int | None:
        """The live document with this id, if any."""

    @abstractmethod
    def vocabulary(self) -> Vocabulary: ...

    @abstractmethod
    def doc_count(self) -> int:
        """Live documents."""

    @abstractmethod
    def version(self) -> int:
        """Changes whenever the reader's contents change (new segments, deletions)."""

    @abstractmethod
    def up_to_date(self) -> bool:
        """False once the index on disk has moved on (then `refresh`)."""

    @abstractmethod
    def refresh(self) -> Snapshot:
        """A snapshot of the latest contents; this one must not be used after."""

    @abstractmethod
    def close(self) -> None: ...
