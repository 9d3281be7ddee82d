"""Plain Whoosh behind the seam, through its public API only.

The straightforward way of answering every `Snapshot` question: matches and
scores from `Searcher.search`, columns from the lexicon and its postings,
stored fields from the reader. It is what `SEARCHAPP_ENGINE=whoosh` serves,
what the arrays path is compared with in tests, and the base the arrays path
builds on for what it shares (stored fields, vocabulary, the reader's life).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from whoosh import query as wq
from whoosh.reading import IndexReader
from whoosh.searching import Searcher

from searchapp.engine.base import (
    WHOOSH,
    And,
    Budget,
    Column,
    Every,
    Ids,
    Matched,
    Nothing,
    Or,
    Phrase,
    Query,
    Snapshot,
    Term,
    Vocabulary,
    leaves,
)


def to_whoosh(q: Query) -> wq.Query:
    """The Whoosh query for a query of the seam."""
    if isinstance(q, Term):
        return wq.Term(q.field, q.text, boost=q.boost)
    if isinstance(q, Phrase):
        return wq.Phrase(q.field, list(q.words))
    if isinstance(q, And):
        return wq.And([to_whoosh(p) for p in q.parts])
    if isinstance(q, Or):
        return wq.Or([to_whoosh(p) for p in q.parts])
    if isinstance(q, Every):
        return wq.Every()
    if isinstance(q, Nothing):
        return wq.NullQuery
    raise TypeError(f"not a query of the seam: {q!r}")


CHECK_EVERY = 64  # matches walked between two looks at the clock


class WhooshVocabulary(Vocabulary):
    def __init__(self, reader: IndexReader) -> None:
        self._reader = reader

    def doc_count(self) -> int:
        return int(self._reader.doc_count())

    def doc_frequency(self, field: str, term: str) -> int:
        return int(self._reader.doc_frequency(field, term))

    def terms(self, field: str, prefix: str) -> Iterator[str]:
        for raw in self._reader.expand_prefix(field, prefix):
            yield raw.decode("utf-8") if isinstance(raw, bytes) else raw

    def _spelling(self, field: str) -> str | None:
        schema = self._reader.schema
        if field not in schema or not schema[field].separate_spelling():
            return None
        return str(schema[field].spelling_fieldname(field))

    def words(self, field: str, prefix: str) -> Iterator[str]:
        spell = self._spelling(field)
        if spell is not None:
            yield from self.terms(spell, prefix)

    def word_count(self, field: str, word: str) -> int:
        spell = self._spelling(field)
        return 0 if spell is None else int(self._reader.doc_frequency(spell, word))

    def near(self, field: str, word: str, *, distance: int, prefix: int) -> Iterator[str]:
        for segment, _ in self._reader.leaf_readers():
            yield from segment.terms_within(field, word, distance, prefix=prefix)


class WhooshSnapshot(Snapshot):
    """Every answer from Whoosh's own searcher (the reference the arrays path meets)."""

    kind = WHOOSH

    def __init__(self, searcher: Searcher, *, reason: str = "") -> None:
        self.searcher = searcher
        self.reader: IndexReader = searcher.reader()
        self.reason = reason
        self._columns: dict[str, Column] = {}

    # What every snapshot shares ------------------------------------------

    def stored(self, doc: int) -> dict[str, Any]:
        return dict(self.searcher.stored_fields(int(doc)))

    def find(self, item_id: str) -> int | None:
        found = self.searcher.document_number(id=item_id)
        return None if found is None else int(found)

    def vocabulary(self) -> Vocabulary:
        return WhooshVocabulary(self.reader)

    def doc_count(self) -> int:
        return int(self.searcher.doc_count())

    def version(self) -> int:
        return int(self.reader.generation())

    def up_to_date(self) -> bool:
        return bool(self.searcher.up_to_date())

    def refresh(self) -> Snapshot:
        return type(self)(self.searcher.refresh(), reason=self.reason)

    def close(self) -> None:
        self._columns.clear()
        self.searcher.close()

    def rescore(self, query: Query, docs: Sequence[int] | NDArray[np.integer[Any]]
                ) -> dict[int, float]:
        """Whoosh's matcher, skipped to each wanted document in turn."""
        whoosh_query = to_whoosh(query)
        wanted = sorted(int(d) for d in docs)
        out: dict[int, float] = {}
        context = self.searcher.context()
        leaves = list(self.searcher.leaf_searchers())
        size = int(self.reader.doc_count_all())
        for i, (sub, offset) in enumerate(leaves):
            end = leaves[i + 1][1] if i + 1 < len(leaves) else size
            local = [d - offset for d in wanted if offset <= d < end]
            if not local:
                continue
            m = whoosh_query.matcher(sub, context)
            for d in local:
                if not m.is_active():
                    break
                m.skip_to(d)
                if m.is_active() and m.id() == d:
                    out[d + offset] = m.score()
        return out

    # Matching, the textbook way --------------------------------------------

    def live(self) -> Ids:
        return np.fromiter(self.reader.all_doc_ids(), dtype=np.int32)

    def match(self, query: Query, *, scored: bool = True, budget: Budget | None = None
              ) -> Matched:
        """Whoosh's matcher over each segment, walked to the end; with a `budget`, the
        time is checked every `CHECK_EVERY` matches and the walk stops when it is up
        (the matches so far are kept, marked incomplete)."""
        q = to_whoosh(query)
        ids: list[int] = []
        scores: list[float] = []
        context = self.searcher.context()
        complete = True
        for sub, offset in self.searcher.leaf_searchers():
            if budget is not None and budget.over():
                complete = False
                break
            m = q.matcher(sub, context)
            n = 0
            while m.is_active():
                ids.append(m.id() + offset)
                if scored:
                    scores.append(m.score())
                n += 1
                if n % CHECK_EVERY == 0 and budget is not None and budget.over():
                    complete = False
                    break
                m.next()
            if budget is not None:
                budget.postings += n
            if not complete:
                break
        if budget is not None:
            budget.terms += leaves(query)
        order = np.asarray(ids, dtype=np.int32)
        return Matched(order, np.asarray(scores, dtype=np.float64) if scored else None,
                       complete=complete)

    def column(self, name: str) -> Column:
        found = self._columns.get(name)
        if found is None:
            codes = np.full(int(self.reader.doc_count_all()), -1, dtype=np.int32)
            values: list[str] = []
            for term in self.reader.lexicon(name):
                if not term:
                    continue
                ids = np.fromiter(self.reader.postings(name, term).all_ids(), dtype=np.int64)
                codes[ids] = len(values)
                values.append(term.decode("utf-8"))
            found = self._columns[name] = Column(tuple(values), codes)
        return found
