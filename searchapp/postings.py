"""Posting lists as numpy arrays: which documents a query matches, and their scores.

Whoosh walks its matchers one document at a time in Python, which is what
makes common words slow. `Postings` takes a term's postings as arrays instead
(sliced from the segment's posting arrays file, `searchapp.segments`, or read
block by block from Whoosh's postings for segments without one), scores them
with the searcher's BM25F in one vectorised step, and combines terms with set
operations, so a query over tens of thousands of matches costs a few array
operations. Scored terms are cached for as long as the reader lives (one
index generation, or until new segments are committed).

Scores are the ones Whoosh gives, bit for bit, when every AND or OR in the
query has at most two parts (a word in two fields, two words, a phrase): each
score is then the same one or two IEEE additions of the same per-field BM25F
values. Larger trees may add in another order, so their matches are marked
inexact and callers rescore the few documents around their cut with
`exact_scores`, which asks Whoosh's own matcher. Anything else (a boosted
term, an unusual query type, another weighting model) is matched and scored
by Whoosh's matcher, so results never depend on this module understanding it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.ma  # np.unique and np.isin import it on first use: not in the middle of a search
from numpy.typing import NDArray
from whoosh import query as wq
from whoosh import scoring
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, W3PerDocReader, _lenfield
from whoosh.columns import NumericColumn
from whoosh.matching import Matcher
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import IndexReader, TermNotFound
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

from searchapp.segments import SegmentArrays, load_arrays

Ids = NDArray[np.int32]
Scores = NDArray[np.float64]

# Scored terms are kept in memory up to this many postings in all (12 bytes each:
# document and score); the least recently used go first.
CACHE_POSTINGS = 6_000_000

_EMPTY_IDS: Ids = np.empty(0, dtype=np.int32)
_EMPTY_SCORES: Scores = np.empty(0, dtype=np.float64)
_LENGTHS = np.asarray([byte_to_length(b) for b in range(256)], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class _Leaf:
    """One segment: its reader, where its documents start, its arrays and deletions."""

    reader: IndexReader
    offset: int
    size: int
    arrays: SegmentArrays | None
    deleted: NDArray[np.int64] | None


@dataclass(frozen=True, slots=True)
class Matched:
    """Matching documents in increasing order, with their scores (None: unscored)."""

    ids: Ids
    scores: Scores | None
    exact: bool = True  # scores equal Whoosh's bit for bit

    def __len__(self) -> int:
        return len(self.ids)


def read_postings(matcher: Matcher) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Every (document, weight) of a fresh leaf matcher, block by block when possible."""
    if isinstance(matcher, FilterMatcher):
        raise TypeError("unwrap deletions first")
    if isinstance(matcher, W3LeafMatcher):
        ids: list[NDArray[np.int64]] = []
        weights: list[NDArray[np.float64]] = []
        m = matcher
        while m.is_active():
            m._read_data()
            data = m._data
            n = m._blocklength
            ids.append(np.cumsum(np.asarray(data[0], dtype=np.int64)))  # delta-encoded
            w = data[1]
            if w is None:
                weights.append(np.ones(n, dtype=np.float64))
            elif isinstance(w, float):
                weights.append(np.full(n, w, dtype=np.float64))
            else:
                weights.append(np.asarray(w, dtype=np.float64))
            m._next_block()
        if not ids:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        return np.concatenate(ids), np.concatenate(weights)
    found: list[int] = []
    found_weights: list[float] = []
    while matcher.is_active():
        found.append(matcher.id())
        found_weights.append(matcher.weight())
        matcher.next()
    return np.asarray(found, dtype=np.int64), np.asarray(found_weights, dtype=np.float64)


def _deleted(leaf: IndexReader) -> NDArray[np.int64]:
    """A segment's deleted document numbers."""
    perdoc = getattr(leaf, "_perdoc", None)
    if perdoc is not None and hasattr(perdoc, "deleted_docs"):
        found = perdoc.deleted_docs()
    else:
        found = [d for d in range(leaf.doc_count_all()) if leaf.is_deleted(d)]
    return np.asarray(sorted(found), dtype=np.int64)


def _leaf_postings(leaf: IndexReader, fieldname: str, text: str | bytes
                   ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    try:
        matcher = leaf.postings(fieldname, text)
    except TermNotFound:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    if isinstance(matcher, FilterMatcher):
        matcher = matcher.child
    ids, weights = read_postings(matcher)
    if leaf.has_deletions():
        keep = ~np.isin(ids, _deleted(leaf))
        ids, weights = ids[keep], weights[keep]
    return ids, weights


class Postings:
    """Arrays for one open searcher; build anew when the searcher is refreshed."""

    def __init__(self, searcher: Searcher, *, cache_postings: int = CACHE_POSTINGS) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self.size = int(self.reader.doc_count_all())
        weighting = searcher.weighting
        # Vectorised scoring is only for the model it reproduces exactly.
        self._bm25 = (weighting if type(weighting) is scoring.BM25F
                      and not weighting.use_final else None)
        self._leaves: list[_Leaf] = []
        for leaf, offset in self.reader.leaf_readers():
            deleted = _deleted(leaf) if leaf.has_deletions() else None
            self._leaves.append(_Leaf(leaf, offset, int(leaf.doc_count_all()),
                                      load_arrays(leaf), deleted))
        self._lengths: dict[str, NDArray[np.int32]] = {}
        self._cache: OrderedDict[tuple[str, str], tuple[Ids, Scores]] = OrderedDict()
        self._cached = 0
        self._budget = cache_postings
        self._lock = threading.Lock()
        self._live: Ids | None = None

    # Terms ----------------------------------------------------------------

    def lengths(self, fieldname: str) -> NDArray[np.int32]:
        """Each document's length in a field, as Whoosh's scorers see it."""
        found = self._lengths.get(fieldname)
        if found is None:
            found = np.zeros(self.size, dtype=np.int32)
            for leaf in self._leaves:
                found[leaf.offset:leaf.offset + leaf.size] = _leaf_lengths(
                    leaf.reader, fieldname, leaf.size)
            self._lengths[fieldname] = found
        return found

    def term(self, fieldname: str, text: str) -> tuple[Ids, Scores]:
        """The documents containing a term and the term's BM25F score in each."""
        key = (fieldname, text)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        ids64, tf = self.postings(fieldname, text)
        if not len(ids64):
            return _EMPTY_IDS, _EMPTY_SCORES
        scores = (self._score(fieldname, text, ids64, tf) if self._bm25 is not None
                  else np.zeros(len(ids64)))
        found = (ids64.astype(np.int32), scores)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = found
                self._cached += len(ids64)
            while self._cached > self._budget and len(self._cache) > 1:
                _, (old, _) = self._cache.popitem(last=False)
                self._cached -= len(old)
        return found

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
                ids, w = _leaf_postings(leaf.reader, fieldname, text)
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

    def _score(self, fieldname: str, text: str, ids: NDArray[np.int64],
               tf: NDArray[np.float64]) -> Scores:
        """BM25F as `whoosh.scoring.bm25` computes it, one array operation per step."""
        assert self._bm25 is not None
        scorer = self._bm25.scorer(self.searcher, fieldname, text)
        if not isinstance(scorer, scoring.BM25FScorer):
            return tf  # unscorable fields score their weight (WeightScorer)
        fl = self.lengths(fieldname)[ids].astype(np.float64)
        idf, avgfl, b, k1 = scorer.idf, scorer.avgfl, scorer.B, scorer.K1
        scores: Scores = idf * ((tf * (k1 + 1)) / (tf + k1 * ((1 - b) + b * fl / avgfl)))
        return scores

    def close(self) -> None:
        """Let go of the mapped arrays files (the searcher is closed by its owner)."""
        for leaf in self._leaves:
            if leaf.arrays is not None:
                leaf.arrays.close()
        self._leaves.clear()
        self._cache.clear()

    def live(self) -> Ids:
        """Every live (not deleted) document."""
        if self._live is None:
            parts = []
            for leaf in self._leaves:
                docs = np.arange(leaf.offset, leaf.offset + leaf.size, dtype=np.int32)
                if leaf.deleted is not None:
                    docs = np.delete(docs, leaf.deleted)
                parts.append(docs)
            self._live = np.concatenate(parts) if parts else _EMPTY_IDS
        return self._live

    # Queries --------------------------------------------------------------

    def match(self, q: wq.Query, *, scored: bool = True) -> Matched:
        """The documents `q` matches, with Whoosh's scores when `scored`."""
        if scored and self._bm25 is None:
            return self._by_whoosh(q, scored=True)
        return self._eval(q, scored)

    def _eval(self, q: wq.Query, scored: bool) -> Matched:
        kind = type(q)
        if kind is wq.Term and q.boost == 1.0 and isinstance(q.text, str):
            ids, scores = self.term(q.fieldname, q.text)
            return Matched(ids, scores if scored else None)
        if kind is wq.Every:
            ids = self.live()
            return Matched(ids, np.zeros(len(ids)) if scored else None)
        if q is wq.NullQuery:
            return Matched(_EMPTY_IDS, _EMPTY_SCORES if scored else None)
        if kind is wq.Phrase:
            phrase = self._phrase(q, scored)
            if phrase is not None:
                return phrase
        if kind in (wq.Or, wq.And) and q.boost == 1.0 and q.subqueries \
                and not getattr(q, "minmatch", 0) and not getattr(q, "scale", None):
            parts = [self._eval(sub, scored) for sub in q.subqueries]
            combined = _union(parts) if kind is wq.Or else _intersection(parts)
            if len(parts) > 2:
                combined = Matched(combined.ids, combined.scores, exact=False)
            return combined
        return self._by_whoosh(q, scored=scored)

    def _phrase(self, q: wq.Phrase, scored: bool) -> Matched | None:
        """Consecutive words in one field: candidates by set intersection, then
        positions compared as sorted (document, position) keys.

        Whoosh scores a phrase match as the sum of its words' scores, added
        along `make_binary_tree`; the same sums are made here. None when the
        phrase is not a plain one this can answer (Whoosh then does).
        """
        words = list(q.words)
        schema = self.reader.schema
        if (q.boost != 1.0 or q.slop != 1 or len(words) < 2 or q.fieldname not in schema
                or not all(isinstance(w, str) for w in words)
                or not schema[q.fieldname].format.supports("positions")):
            return None
        terms = [self.term(q.fieldname, w) for w in words]
        candidates = terms[0][0]
        for ids, _ in terms[1:]:
            candidates = _common(candidates, ids)
        keys: NDArray[np.int64] | None = None
        positions: dict[str, NDArray[np.int64]] = {}
        for word in dict.fromkeys(words) if len(candidates) else ():
            found = self._positions(q.fieldname, word, candidates)
            if found is None:
                return None
            positions[word] = found
        if not len(candidates):
            return Matched(_EMPTY_IDS, _EMPTY_SCORES if scored else None)
        for word in words:
            keys = positions[word] if keys is None else _common64(keys + 1, positions[word])
        assert keys is not None
        docs = np.unique(keys >> 32).astype(np.int32)
        if not scored:
            return Matched(docs, None)
        per_word = [scores[np.searchsorted(ids, docs)] for ids, scores in terms]
        return Matched(docs, _binary_sum(per_word))

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
            try:
                m = leaf.postings(fieldname, word)
            except TermNotFound:
                continue
            if isinstance(m, FilterMatcher):
                m = m.child
            if not isinstance(m, W3LeafMatcher):
                return None
            low = 0  # candidates before this index were in earlier blocks
            while m.is_active() and low < len(local):
                high = int(np.searchsorted(local, m._maxid, side="right"))
                if high > low:
                    m._read_data()
                    data = m._data
                    ids = np.cumsum(np.asarray(data[0], dtype=np.int64))
                    values = data[2]
                    for j in np.flatnonzero(np.isin(ids, local[low:high])).tolist():
                        base = (int(ids[j]) + offset) << 32
                        keys.extend(base + p for p in decode(values[j]))
                    low = high
                m._next_block()
        if keys:
            found.append(np.asarray(keys, dtype=np.int64))
        if not found:
            return np.empty(0, dtype=np.int64)
        return found[0] if len(found) == 1 else np.sort(np.concatenate(found))

    def _by_whoosh(self, q: wq.Query, *, scored: bool) -> Matched:
        """Matches (and scores) from Whoosh's own matchers, for what `_eval` does not know."""
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

    def exact_scores(self, q: wq.Query, docs: Sequence[int] | NDArray[np.integer[Any]]
                     ) -> dict[int, float]:
        """Whoosh's own scores for some of `q`'s matches (for ordering near a cut)."""
        wanted = sorted(int(d) for d in docs)
        out: dict[int, float] = {}
        context = self.searcher.context()
        leaves = list(self.searcher.leaf_searchers())
        for i, (sub, offset) in enumerate(leaves):
            end = leaves[i + 1][1] if i + 1 < len(leaves) else self.size
            local = [d - offset for d in wanted if offset <= d < end]
            if not local:
                continue
            m = q.matcher(sub, context)
            for d in local:
                if not m.is_active():
                    break
                m.skip_to(d)
                if m.is_active() and m.id() == d:
                    out[d + offset] = m.score()
        return out


def _leaf_lengths(leaf: IndexReader, fieldname: str, n: int) -> NDArray[np.int64]:
    """A segment's document lengths in a field: its one-byte length column, decoded."""
    column = None
    perdoc = getattr(leaf, "_perdoc", None)
    if isinstance(perdoc, W3PerDocReader):
        column = perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    if not isinstance(column, NumericColumn.Reader) or column._fixedlen != 1:
        return np.fromiter((leaf.doc_field_length(d, fieldname, 0) or 0 for d in range(n)),
                           dtype=np.int64, count=n)
    codes = np.zeros(n, dtype=np.uint8)
    count = min(column._count, n)
    if count:
        codes[:count] = np.frombuffer(column._dbfile.get(column._basepos, count), dtype=np.uint8)
    return _LENGTHS[codes]


def _union(parts: Iterable[Matched]) -> Matched:
    parts = list(parts)
    nonempty = [p for p in parts if len(p)]
    scored = parts[0].scores is not None
    if not nonempty:
        return Matched(_EMPTY_IDS, _EMPTY_SCORES if scored else None)
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
            return Matched(_EMPTY_IDS, _EMPTY_SCORES if scored else None)
    if not scored:
        return Matched(ids, None)
    total = np.zeros(len(ids), dtype=np.float64)
    for p in parts:
        assert p.scores is not None
        total += p.scores[np.searchsorted(p.ids, ids)]
    return Matched(ids, total, exact=all(p.exact for p in parts))


def _binary_sum(parts: list[Scores]) -> Scores:
    """Add arrays along the tree `whoosh.util.make_binary_tree` builds (halves, recursively)."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return _binary_sum(parts[:half]) + _binary_sum(parts[half:])


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
        return _EMPTY_IDS
    at = np.searchsorted(large, small)
    at[at == len(large)] = 0
    found: Ids = small[large[at] == small]
    return found
