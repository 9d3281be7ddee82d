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

import os
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
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
    complete: bool = True  # False: the time budget ran out; these are some of the matches

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


class Budget:
    """One request's allowance: a time budget (`time.monotonic`) and counts of the
    work done under it, so a request can say it was cut short and tests can bound
    work without a clock.

    `over()` is asked before each step that may be skipped; once it answers True
    the budget remembers that something was left out (`cut`).
    """

    __slots__ = ("candidates", "cut", "end", "postings", "rescored", "terms")

    def __init__(self, seconds: float | None = None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds
        self.cut = False
        self.terms = 0  # posting lists read (terms, and the words of phrases)
        self.postings = 0  # postings in them
        self.rescored = 0  # documents rescored by Whoosh's matcher
        self.candidates = 0  # documents weighed as related items

    def over(self) -> bool:
        """Whether the time is up (then the step asking is skipped, and `cut` set)."""
        if self.end is not None and time.monotonic() >= self.end:
            self.cut = True
        return self.cut

    def read(self, postings: int) -> None:
        self.terms += 1
        self.postings += postings

    def counts(self) -> dict[str, int]:
        return {"terms": self.terms, "postings": self.postings, "rescored": self.rescored,
                "candidates": self.candidates}


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
# How often a request's work was bounded, per reason (a rescoring skipped, a time
# budget run out): the answers stay correct but are not as exact or as whole.
BOUNDS = Fallbacks()


def swapped_out(folder: str, live: Collection[str]) -> Callable[[str], bool]:
    """Whether a file (an absolute path) lies in `folder` (an index folder, at any depth)
    and is not in `live` (the files the new live generation reads): what was kept for it
    is let go once a new generation is swapped in (`words.let_go`, `completion.let_go`,
    `arrayfile.let_go`)."""
    inside = os.path.join(os.path.abspath(folder), "")
    return lambda path: path.startswith(inside) and path not in live


def leaves(query: Query) -> int:
    """How many posting lists `query` reads: its terms (a `Word`'s in each field), and
    each word of its phrases."""
    if isinstance(query, Term):
        return 1
    if isinstance(query, Word):
        return len(query.terms)
    if isinstance(query, Phrase):
        return len(query.words)
    if isinstance(query, (And, Or)):
        return sum(leaves(p) for p in query.parts)
    return 0


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

    def top_words(self, fields: Sequence[str], prefix: str, limit: int) -> list[str]:
        """The `limit` spelling words of `fields` starting with `prefix` that the most
        documents use (`word_count` summed over the fields), most used first, ties in
        word order. Here by scanning the words (`searchapp.engine.completion.scan`);
        the Whoosh vocabularies answer from a word table."""
        from searchapp.engine.completion import scan

        return scan(self, fields, prefix, limit)


class Snapshot(ABC):
    """One open reader of one index generation. Not shared across threads unguarded."""

    kind: str = ""
    reason: str = ""  # why this kind (for the log and the stats)

    @abstractmethod
    def live(self) -> Ids:
        """Every live (not deleted) document, in order."""

    @abstractmethod
    def match(self, query: Query, *, scored: bool = True, budget: Budget | None = None
              ) -> Matched:
        """The documents `query` matches, with Whoosh's scores when `scored`.

        With a `budget` whose time runs out, the answer holds only some of the
        matches (never a document that does not match) and is marked incomplete.
        """

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
