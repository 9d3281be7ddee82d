"""The arrays path: which documents a query matches, and their scores, as numpy arrays.

Whoosh walks its matchers one document at a time in Python, which is what
makes common words slow. `ArraysSnapshot` takes a term's postings as arrays
instead (sliced from the segment's posting arrays file,
`searchapp.engine.arrayfile`, or read block by block from Whoosh's postings
for segments without one), scores them with the numpy twin of the ranking
model (`searchapp.engine.scoring`) in one step, and combines terms with set
operations, so a query over tens of thousands of matches costs a few array
operations. Scored terms are cached for as long as the reader lives (one
index generation, or until new segments are committed).

Scores are Whoosh's, bit for bit, under the exactness rule in
`searchapp.engine.scoring`; inexact matches are marked so, and callers
rescore the few documents around their cut (`rescore`). Every query of the
seam's tree is answered here; the one hand-over left, a phrase whose
positions cannot be read as arrays (segments of another codec), goes to
Whoosh's own matcher and is counted in `searchapp.engine.base.FALLBACKS`
with its reason.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.ma
from numpy.typing import NDArray
from whoosh import query as wq
from whoosh.reading import IndexReader
from whoosh.searching import Searcher

from searchapp.engine import scoring
from searchapp.engine.arrayfile import SegmentArrays, open_arrays
from searchapp.engine.base import (
    ARRAYS,
    EMPTY_IDS,
    EMPTY_SCORES,
    FALLBACKS,
    And,
    Budget,
    Column,
    Every,
    Ids,
    Matched,
    Or,
    Phrase,
    Query,
    Scores,
    Term,
    Vocabulary,
    Word,
)
from searchapp.engine.plain import WhooshSnapshot, WhooshVocabulary, to_whoosh
from searchapp.engine.segments import (
    arrays_path,
    deleted,
    leaf_lengths,
    leaf_positions,
    leaf_postings,
    stored_reader,
)

log = logging.getLogger(__name__)

# Scored terms are kept in memory up to this many postings in all (12 bytes each:
# document and score); the least recently used go first.
CACHE_POSTINGS = 6_000_000


@dataclass(frozen=True, slots=True)
class _Leaf:
    """One segment: its reader, where its documents start, its arrays and deletions."""

    reader: IndexReader
    offset: int
    size: int
    arrays: SegmentArrays | None
    deleted: NDArray[np.int64] | None


class ArraysSnapshot(WhooshSnapshot):
    """The fast path over one open searcher whose ranking model `scoring` reproduces."""

    kind = ARRAYS

    def __init__(self, searcher: Searcher, *, reason: str = "",
                 cache_postings: int = CACHE_POSTINGS) -> None:
        super().__init__(searcher, reason=reason)
        why = scoring.unsupported(searcher.weighting)
        if why is not None:
            raise ValueError(f"the arrays path cannot score with this model: {why}")
        self._bm25 = searcher.weighting
        self.size = int(self.reader.doc_count_all())
        self._leaves: list[_Leaf] = []
        for leaf, offset in self.reader.leaf_readers():
            gone = deleted(leaf) if leaf.has_deletions() else None
            self._leaves.append(_Leaf(leaf, offset, int(leaf.doc_count_all()),
                                      _load_arrays(leaf), gone))
        self._lengths: dict[str, NDArray[np.int32]] = {}
        # (field, term) → a term's documents and scores; (("", ""), *terms) → a word's.
        self._cache: OrderedDict[tuple[object, ...], tuple[Ids, Scores]] = OrderedDict()
        self._cached = 0
        self._budget = cache_postings
        self._lock = threading.Lock()
        self._live: Ids | None = None
        self._vocabulary: ArraysVocabulary | None = None
        read = stored_reader(self.reader)
        if read is None:
            FALLBACKS.count("stored fields: not the known segment reader, read through Whoosh")
            log.warning("stored fields: a segment reader is not Whoosh 2.7.4's; reading the"
                        " stored fields through Whoosh's reader, about twice as slow")
        self._read_stored = read

    # Terms ----------------------------------------------------------------

    def up_to_date(self) -> bool:
        """Also False once an arrays file in use has changed on disk since it was verified
        (the refreshed snapshot verifies it again, and leaves it out if it is damaged)."""
        return super().up_to_date() and all(
            leaf.arrays is None or leaf.arrays.unchanged() for leaf in self._leaves)

    def refresh(self) -> ArraysSnapshot:
        self._release()
        return ArraysSnapshot(self.searcher.refresh(), reason=self.reason,
                              cache_postings=self._budget)

    def stored(self, doc: int) -> dict[str, Any]:
        """Read from the segment's stored column directly (`segments.stored_reader`)."""
        if self._read_stored is None:
            return super().stored(doc)
        return self._read_stored(int(doc))

    def lengths(self, fieldname: str) -> NDArray[np.int32]:
        """Each document's length in a field, as Whoosh's scorers see it."""
        found = self._lengths.get(fieldname)
        if found is None:
            found = np.zeros(self.size, dtype=np.int32)
            for leaf in self._leaves:
                found[leaf.offset:leaf.offset + leaf.size] = leaf_lengths(
                    leaf.reader, fieldname, leaf.size)
            self._lengths[fieldname] = found
        return found

    def _cached_get(self, key: tuple[object, ...]) -> tuple[Ids, Scores] | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _cache_put(self, key: tuple[object, ...], found: tuple[Ids, Scores]) -> None:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = found
                self._cached += len(found[0])
            while self._cached > self._budget and len(self._cache) > 1:
                _, (old, _) = self._cache.popitem(last=False)
                self._cached -= len(old)

    def term(self, fieldname: str, text: str) -> tuple[Ids, Scores]:
        """The documents containing a term and the term's BM25 score (in its field) in each."""
        key = (fieldname, text)
        hit = self._cached_get(key)
        if hit is not None:
            return hit
        ids64, tf = self.postings(fieldname, text)
        if not len(ids64):
            return EMPTY_IDS, EMPTY_SCORES
        scores = scoring.term_scores(self._bm25, self.searcher, fieldname, text, tf,
                                     self.lengths(fieldname)[ids64],
                                     df=self.vocabulary().doc_frequency(fieldname, text))
        found = (ids64.astype(np.int32), scores)
        self._cache_put(key, found)
        return found

    def word(self, terms: tuple[tuple[str, str], ...]) -> tuple[Ids, Scores]:
        """The documents having any of a word's terms and the word's BM25F score in each
        (`scoring.WordBM25F`: the fields' normalised frequencies added in the terms'
        order, one saturation, one IDF over these documents)."""
        key = (("", ""), *terms)
        hit = self._cached_get(key)
        if hit is not None:
            return hit
        model = self._bm25
        assert scoring.is_bm25f(model)
        parts = []
        for f, t in terms:
            if f not in self.reader.schema:
                continue
            ids64, weights = self.postings(f, t)
            if len(ids64):
                parts.append((f, ids64, weights))
        if not parts:
            return EMPTY_IDS, EMPTY_SCORES
        ids = parts[0][1] if len(parts) == 1 else _sorted_union([p[1] for p in parts])
        tf = np.zeros(len(ids), dtype=np.float64)
        for f, fids, weights in parts:
            avgfl = self.searcher.avg_field_length(f) or 1
            tf[np.searchsorted(ids, fids)] += model.parts(weights, self.lengths(f)[fids], avgfl)
        idf = model.word_idf(len(self.live()), len(ids))
        found = (ids.astype(np.int32), model.word_scores(idf, tf))
        self._cache_put(key, found)
        return found

    def word_frequency(self, terms: tuple[tuple[str, str], ...]) -> int:
        """The live documents having any of a word's terms (its BM25F document frequency)."""
        return len(self.word(terms)[0])

    def to_whoosh(self, query: Query) -> wq.Query:
        """The Whoosh query for `query`, its words' frequencies taken from the arrays
        (the same counts Whoosh would walk the postings for)."""
        return to_whoosh(query, word_df=self.word_frequency)

    def postings(self, fieldname: str, text: str
                 ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The live documents containing a term (in order) and the term's weight in each."""
        parts, weights = [], []
        for leaf in self._leaves:
            found = leaf.arrays.fields.get(fieldname) if leaf.arrays is not None else None
            if found is not None:
                got = found.postings(text)
                if got is None:
                    continue
                ids, w = got[0].astype(np.int64), got[1].astype(np.float64)
                if leaf.deleted is not None:
                    keep = ~np.isin(ids, leaf.deleted)
                    ids, w = ids[keep], w[keep]
            else:
                ids, w = leaf_postings(leaf.reader, fieldname, text)
            if len(ids):
                parts.append(ids + leaf.offset)
                weights.append(w)
        if not parts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        if len(parts) == 1:
            return parts[0], weights[0]
        return np.concatenate(parts), np.concatenate(weights)

    def docs(self, fieldname: str, text: str) -> NDArray[np.int64]:
        """The live documents containing a term, in order (unscored, uncached)."""
        return self.postings(fieldname, text)[0]

    def _release(self) -> None:
        """Let go of the mapped arrays files, the stored columns' descriptors and the cached
        terms."""
        read = getattr(self, "_read_stored", None)
        if read is not None:
            read.close()
        for leaf in self._leaves:
            if leaf.arrays is not None:
                leaf.arrays.close()
        self._leaves.clear()
        self._cache.clear()
        self._columns.clear()

    def close(self) -> None:
        self._release()
        super().close()

    def column(self, name: str) -> Column:
        """Codes from the field's posting arrays, every term of a segment at once (the
        plain path walks Whoosh's postings term by term; so does this one for a segment
        without arrays). Its values are the segments' terms, sorted (the merged
        lexicon), and each live document's code is its value's place; a document with
        several values gets the last in order, as term-by-term assignment gives it."""
        found = self._columns.get(name)
        if found is None:
            fields = [leaf.arrays.fields.get(name) if leaf.arrays is not None else None
                      for leaf in self._leaves]
            terms = [list(f.terms) if f is not None else
                     [t.decode("utf-8") for t in leaf.reader.lexicon(name)]
                     for leaf, f in zip(self._leaves, fields, strict=True)]
            values = sorted({term for some in terms for term in some if term})
            place = {value: code for code, value in enumerate(values)}
            codes = np.full(self.size, -1, dtype=np.int32)
            for leaf, f, some in zip(self._leaves, fields, terms, strict=True):
                if f is None:
                    for term in some:
                        if term:
                            ids = leaf_postings(leaf.reader, name, term)[0]
                            np.maximum.at(codes, ids + leaf.offset, place[term])
                    continue
                of_term = np.full(len(f.starts) - 1, -1, dtype=np.int32)  # number → code
                for term, t in f.terms.items():
                    of_term[t] = place.get(term, -1)
                owner = np.repeat(of_term, np.diff(f.starts))
                ids = f.ids[:len(owner)].astype(np.int64)
                keep = owner >= 0
                if leaf.deleted is not None:
                    keep &= ~np.isin(ids, leaf.deleted)
                np.maximum.at(codes, ids[keep] + leaf.offset, owner[keep])
            found = self._columns[name] = Column(tuple(values), codes)
        return found

    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            self._vocabulary = ArraysVocabulary(self.reader, self._leaves)
        return self._vocabulary

    def live(self) -> Ids:
        """Every live (not deleted) document."""
        if self._live is None:
            parts = []
            for leaf in self._leaves:
                docs = np.arange(leaf.offset, leaf.offset + leaf.size, dtype=np.int32)
                if leaf.deleted is not None:
                    docs = np.delete(docs, leaf.deleted)
                parts.append(docs)
            self._live = np.concatenate(parts) if parts else EMPTY_IDS
        return self._live

    # Queries --------------------------------------------------------------

    def match(self, query: Query, *, scored: bool = True, budget: Budget | None = None
              ) -> Matched:
        """The documents `query` matches, with Whoosh's scores when `scored`.

        With a `budget`, the time is checked before each part of an AND or OR:
        an OR out of time answers the union of the parts read so far, an AND
        nothing, so an incomplete answer never holds a document that does not
        match.
        """
        if isinstance(query, Term):
            ids, scores = self.term(query.field, query.text)
            if budget is not None:
                budget.read(len(ids))
            return Matched(ids, scoring.boosted(scores, query.boost) if scored else None)
        if isinstance(query, Word):
            if not scoring.is_bm25f(self._bm25):  # per-field kind: an OR of its terms
                return self.match(Or(tuple(Term(f, t, query.boost) for f, t in query.terms)),
                                  scored=scored, budget=budget)
            ids, scores = self.word(query.terms)
            if budget is not None:
                budget.read(len(ids))
                budget.terms += len(query.terms) - 1
            return Matched(ids, scoring.boosted(scores, query.boost) if scored else None)
        if isinstance(query, (And, Or)):
            if not query.parts:
                return Matched.empty(scored=scored)
            parts = []
            for sub in query.parts:
                if budget is not None and budget.over():
                    break
                parts.append(self.match(sub, scored=scored, budget=budget))
            complete = len(parts) == len(query.parts) and all(p.complete for p in parts)
            if isinstance(query, And) and not complete:
                return Matched(EMPTY_IDS, EMPTY_SCORES if scored else None, complete=False)
            if not parts:
                return Matched(EMPTY_IDS, EMPTY_SCORES if scored else None, complete=False)
            combined = _union(parts) if isinstance(query, Or) else _intersection(parts)
            exact = combined.exact and scoring.exact_sum(len(query.parts))
            if not exact or not complete:
                combined = Matched(combined.ids, combined.scores, exact, complete)
            return combined
        if isinstance(query, Phrase):
            phrase = self._phrase(query, scored)
            if isinstance(phrase, Matched):
                if budget is not None:
                    for word in query.words:
                        budget.read(len(self.term(query.field, word)[0]))
                return phrase
            return self._by_whoosh(query, scored=scored, reason=phrase)
        if isinstance(query, Every):
            ids = self.live()
            return Matched(ids, np.zeros(len(ids)) if scored else None)
        return Matched.empty(scored=scored)

    def _phrase(self, q: Phrase, scored: bool) -> Matched | str:
        """Consecutive words in one field: candidates by set intersection, then
        positions compared as sorted (document, position) keys.

        Whoosh scores a phrase match as the sum of its words' scores, added
        along `make_binary_tree`; the same sums are made here. When the phrase
        is not a plain one this can answer, the reason (Whoosh then does).
        """
        words = list(q.words)
        schema = self.reader.schema
        if len(words) < 2 or q.field not in schema \
                or not schema[q.field].format.supports("positions"):
            return "phrase: of one word, or in a field without positions"
        terms = [self.term(q.field, w) for w in words]
        candidates = terms[0][0]
        for ids, _ in terms[1:]:
            candidates = _common(candidates, ids)
        keys: NDArray[np.int64] | None = None
        positions: dict[str, NDArray[np.int64]] = {}
        for word in dict.fromkeys(words) if len(candidates) else ():
            found = self._positions(q.field, word, candidates)
            if found is None:
                return "phrase: positions not readable as arrays"
            positions[word] = found
        if not len(candidates):
            return Matched(EMPTY_IDS, EMPTY_SCORES if scored else None)
        for word in words:
            keys = positions[word] if keys is None else _common64(keys + 1, positions[word])
        assert keys is not None
        docs = _distinct(keys >> 32).astype(np.int32)
        if not scored:
            return Matched(docs, None)
        per_word = [scores[np.searchsorted(ids, docs)] for ids, scores in terms]
        return Matched(docs, scoring.boosted(scoring.binary_sum(per_word), q.boost))

    def _positions(self, fieldname: str, word: str, docs: Ids) -> NDArray[np.int64] | None:
        """Sorted (document << 32 | position) keys of `word` in the given documents."""
        decode = self.reader.schema[fieldname].format.decode_positions
        keys: list[int] = []
        found: list[NDArray[np.int64]] = []
        for part in self._leaves:
            leaf, offset, n = part.reader, part.offset, part.size
            local = docs[(docs >= offset) & (docs < offset + n)].astype(np.int64) - offset
            if not len(local):
                continue
            arrays = part.arrays.fields.get(fieldname) if part.arrays is not None else None
            if arrays is not None:
                some = arrays.keys(word, local)
                if some is None:
                    if word in arrays.terms:
                        return None  # no positions kept for this field
                    continue
                found.append(some + (offset << 32))
                continue
            walked = leaf_positions(leaf, fieldname, word, local, offset, decode)
            if walked is None:
                return None
            keys.extend(walked)
        if keys:
            found.append(np.asarray(keys, dtype=np.int64))
        if not found:
            return np.empty(0, dtype=np.int64)
        return found[0] if len(found) == 1 else np.sort(np.concatenate(found))

    def _by_whoosh(self, query: Query, *, scored: bool, reason: str) -> Matched:
        """Matches (and scores) from Whoosh's own matchers, for what `match` cannot do."""
        FALLBACKS.count(reason)
        q = to_whoosh(query)
        ids: list[int] = []
        scores: list[float] = []
        context = self.searcher.context()
        for sub, offset in self.searcher.leaf_searchers():
            m = q.matcher(sub, context)
            while m.is_active():
                ids.append(m.id() + offset)
                if scored:
                    scores.append(m.score())
                m.next()
        order = np.asarray(ids, dtype=np.int32)
        if scored:
            return Matched(order, np.asarray(scores, dtype=np.float64))
        return Matched(order, None)


class ArraysVocabulary(WhooshVocabulary):
    """Index terms and their document frequencies from the posting arrays (what
    prefix expansion asks most often); the rest from Whoosh's reader.

    Per field, once per reader: every segment's terms merged into one sorted
    list and one table of document frequencies (postings, deleted documents
    included, as Whoosh counts them)."""

    def __init__(self, reader: IndexReader, leaves: list[_Leaf]) -> None:
        super().__init__(reader)
        self._leaves = leaves
        self._fields: dict[str, tuple[list[str], dict[str, int]] | None] = {}

    def _lexicon(self, field: str) -> tuple[list[str], dict[str, int]] | None:
        """The field's terms, sorted, and their frequencies (None: a segment has no
        arrays for it)."""
        if field not in self._fields:
            found = [leaf.arrays.fields.get(field) if leaf.arrays is not None else None
                     for leaf in self._leaves]
            if any(f is None for f in found):
                self._fields[field] = None
            else:
                frequency: dict[str, int] = {}
                for f in found:
                    assert f is not None
                    counts = np.diff(f.starts).tolist()
                    for term, t in f.terms.items():
                        frequency[term] = frequency.get(term, 0) + counts[t]
                self._fields[field] = (sorted(frequency), frequency)
        return self._fields[field]

    def terms(self, field: str, prefix: str) -> Iterator[str]:
        lexicon = self._lexicon(field)
        if lexicon is None:
            yield from super().terms(field, prefix)
            return
        words = lexicon[0]
        start = bisect.bisect_left(words, prefix)
        end = (bisect.bisect_left(words, prefix[:-1] + chr(ord(prefix[-1]) + 1), start)
               if prefix else len(words))
        yield from words[start:end]

    def doc_frequency(self, field: str, term: str) -> int:
        lexicon = self._lexicon(field)
        if lexicon is None:
            return super().doc_frequency(field, term)
        return lexicon[1].get(term, 0)


def _load_arrays(leaf: IndexReader) -> SegmentArrays | None:
    where = arrays_path(leaf)
    return None if where is None else open_arrays(*where)


def _distinct(ordered: NDArray[Any]) -> NDArray[Any]:
    """A sorted array without its repeats. (`np.unique` sorts again, and numpy 2's
    hashing `unique` takes about 1 ms for a few thousand ids: most of a search.)"""
    if len(ordered) < 2:
        return ordered
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def _sorted_union(arrays: list[NDArray[Any]]) -> NDArray[Any]:
    """The ids in any of several sorted arrays, sorted: a stable sort of the
    concatenated runs merges them (timsort finds the runs), then repeats go."""
    return _distinct(np.sort(np.concatenate(arrays), kind="stable"))


def _union(parts: Iterable[Matched]) -> Matched:
    parts = list(parts)
    nonempty = [p for p in parts if len(p)]
    scored = parts[0].scores is not None
    if not nonempty:
        return Matched(EMPTY_IDS, EMPTY_SCORES if scored else None)
    if len(nonempty) == 1:
        return nonempty[0]
    every = np.concatenate([p.ids for p in nonempty])
    # Sorted runs, one after another: a stable sort merges them (and keeps, for a
    # document in several parts, their scores in the parts' order).
    order = np.argsort(every, kind="stable")
    every = every[order]
    first = np.empty(len(every), dtype=bool)
    first[0] = True
    np.not_equal(every[1:], every[:-1], out=first[1:])
    ids = every[first]
    if not scored:
        return Matched(ids, None)
    scores = np.concatenate([p.scores for p in nonempty if p.scores is not None])[order]
    total = np.add.reduceat(scores, np.flatnonzero(first))
    return Matched(ids, total, exact=all(p.exact for p in nonempty))


def _intersection(parts: Iterable[Matched]) -> Matched:
    parts = [p for p in parts]
    scored = parts[0].scores is not None
    ids = parts[0].ids
    for p in parts[1:]:
        ids = _common(ids, p.ids)
        if not len(ids):
            return Matched(EMPTY_IDS, EMPTY_SCORES if scored else None)
    if not scored:
        return Matched(ids, None)
    total = np.zeros(len(ids), dtype=np.float64)
    for p in parts:
        assert p.scores is not None
        total += p.scores[np.searchsorted(p.ids, ids)]
    return Matched(ids, total, exact=all(p.exact for p in parts))


def _common64(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if not len(small) or not len(large):
        return np.empty(0, dtype=np.int64)
    at = np.searchsorted(large, small)
    at[at == len(large)] = 0
    found: NDArray[np.int64] = small[large[at] == small]
    return found


def _common(a: Ids, b: Ids) -> Ids:
    """The sorted ids in both sorted arrays."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if not len(small) or not len(large):
        return EMPTY_IDS
    at = np.searchsorted(large, small)
    at[at == len(large)] = 0
    found: Ids = small[large[at] == small]
    return found
