"""Plain Whoosh behind the seam, through its public API only.

The straightforward way of answering every `Snapshot` question: matches and
scores from `Searcher.search`, columns from the lexicon and its postings,
stored fields from the reader. It is what `SEARCHAPP_ENGINE=whoosh` serves,
what the arrays path is compared with in tests, and the base the arrays path
builds on for what it shares (stored fields, vocabulary, the reader's life).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from whoosh import matching
from whoosh import query as wq
from whoosh.reading import IndexReader
from whoosh.searching import Searcher

from searchapp.analysis import tag
from searchapp.engine import arrayfile, completion, scoring, words
from searchapp.engine.base import (
    FALLBACKS,
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
    Word,
    leaves,
)
from searchapp.engine.segments import arrays_path, segment_id
from searchapp.engine.words import for_segment

log = logging.getLogger(__name__)

# A word's documents (live, having any of its terms), when the caller knows them.
WordFrequency = Callable[[tuple[tuple[str, str], ...]], int]


def to_whoosh(q: Query, *, word_df: WordFrequency | None = None) -> wq.Query:
    """The Whoosh query for a query of the seam (`word_df`: see `WordQuery`)."""
    if isinstance(q, Term):
        return wq.Term(q.field, q.text, boost=q.boost)
    if isinstance(q, Word):
        return WordQuery(q.terms, boost=q.boost, word_df=word_df)
    if isinstance(q, Phrase):
        return wq.Phrase(q.field, list(q.words), boost=q.boost)
    if isinstance(q, And):
        return wq.And([to_whoosh(p, word_df=word_df) for p in q.parts])
    if isinstance(q, Or):
        return wq.Or([to_whoosh(p, word_df=word_df) for p in q.parts])
    if isinstance(q, Every):
        return wq.Every()
    if isinstance(q, Nothing):
        return wq.NullQuery
    raise TypeError(f"not a query of the seam: {q!r}")


CHECK_EVERY = 64  # matches walked between two looks at the clock


class WordQuery(wq.Query):  # type: ignore[misc]
    """A word in several fields, scored as one term by `scoring.WordBM25F`.

    The Whoosh reference of the seam's `Word`: its matcher walks the terms'
    postings together and, for each document, adds the fields' normalised
    frequencies (`WordBM25F.part`) before one saturation (`word_score`), with
    one IDF from the live documents having any of the terms. `word_df` gives
    that count when the caller already knows it (the arrays path, rescoring);
    otherwise it is counted here, once per query, by walking the postings.
    Under another weighting model the word is an OR of its terms, each boosted.
    """

    def __init__(self, terms: tuple[tuple[str, str], ...], *, boost: float = 1.0,
                 word_df: WordFrequency | None = None) -> None:
        self.terms_ = tuple(terms)
        self.boost = boost
        self._word_df = word_df
        self._df: int | None = None

    def __repr__(self) -> str:
        return f"WordQuery({self.terms_!r}, boost={self.boost!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return (type(other) is WordQuery and self.terms_ == other.terms_
                and self.boost == other.boost)

    def __hash__(self) -> int:
        return hash((WordQuery, self.terms_, self.boost))

    def is_leaf(self) -> bool:
        return True

    def field(self) -> None:
        return None

    def has_terms(self) -> bool:
        return True

    def terms(self, phrases: bool = False) -> Iterator[tuple[str, str]]:
        yield from self.terms_

    def with_boost(self, boost: float) -> WordQuery:
        return WordQuery(self.terms_, boost=boost, word_df=self._word_df)

    def estimate_size(self, ixreader: IndexReader) -> int:
        return sum(int(ixreader.doc_frequency(f, t)) for f, t in self.terms_)

    def normalize(self) -> WordQuery:
        return self

    def simplify(self, ixreader: IndexReader) -> WordQuery:
        return self

    def _frequency(self, parent: Searcher) -> int:
        if self._df is None:
            if self._word_df is not None:
                self._df = int(self._word_df(self.terms_))
            else:
                reader = parent.reader()
                docs: set[int] = set()
                for f, t in self.terms_:
                    if f in reader.schema and (f, t) in reader:
                        docs.update(reader.postings(f, t).all_ids())
                self._df = len(docs)
        return self._df

    def matcher(self, searcher: Searcher, context: Any = None) -> Any:
        model = context.weighting if context is not None else searcher.weighting
        if not scoring.is_bm25f(model):
            return wq.Or([wq.Term(f, t, boost=self.boost) for f, t in self.terms_]
                         ).matcher(searcher, context)
        reader = searcher.reader()
        parent = searcher.get_parent()
        subs = [(f, reader.postings(f, t)) for f, t in self.terms_
                if f in reader.schema and (f, t) in reader]
        if not subs:
            return matching.NullMatcher()
        idf = model.word_idf(int(parent.doc_count()), self._frequency(parent))
        averages = {f: parent.avg_field_length(f) or 1 for f, _ in subs}
        return _WordMatcher(subs, searcher, model, idf, averages, self.boost)


class _WordMatcher(matching.Matcher):  # type: ignore[misc]
    """The documents of a `WordQuery` in order, each scored once (see there)."""

    def __init__(self, subs: list[tuple[str, Any]], searcher: Searcher,
                 model: scoring.WordBM25F, idf: float, averages: dict[str, float],
                 boost: float) -> None:
        self._subs = subs
        self._searcher = searcher
        self._model = model
        self._idf = idf
        self._averages = averages
        self._boost = boost

    def _active(self) -> list[tuple[str, Any]]:
        return [(f, m) for f, m in self._subs if m.is_active()]

    def is_active(self) -> bool:
        return any(m.is_active() for _, m in self._subs)

    def id(self) -> int:
        first: int = min(m.id() for _, m in self._active())  # (Whoosh's matchers are untyped)
        return first

    def next(self) -> None:
        current = self.id()
        for _, m in self._active():
            if m.id() == current:
                m.next()

    def skip_to(self, target: int) -> None:
        for _, m in self._active():
            if m.id() < target:
                m.skip_to(target)

    def score(self) -> float:
        current = self.id()
        tf = 0.0
        for f, m in self._active():
            if m.id() == current:
                length = self._searcher.doc_field_length(current, f, 1)
                tf += self._model.part(m.weight(), length, self._averages[f])
        found = self._model.word_score(self._idf, tf)
        return found if self._boost == 1.0 else found * self._boost

    def weight(self) -> float:
        current = self.id()
        weight: float = sum(m.weight() for _, m in self._active() if m.id() == current)
        return weight

    def supports(self, astype: str) -> bool:
        return False

    def supports_block_quality(self) -> bool:
        return False

    def replace(self, minquality: float = 0) -> Any:
        return self if self.is_active() else matching.NullMatcher()

    def copy(self) -> _WordMatcher:
        return _WordMatcher([(f, m.copy()) for f, m in self._subs], self._searcher,
                            self._model, self._idf, self._averages, self._boost)

    def reset(self) -> None:
        for _, m in self._subs:
            m.reset()

    def depth(self) -> int:
        deepest: int = max(m.depth() for _, m in self._subs)
        return 1 + deepest

    def children(self) -> list[Any]:
        return [m for _, m in self._subs]

    def matching_terms(self, id: int | None = None) -> Iterator[tuple[str, bytes]]:
        current = self.id() if id is None else id
        for _, m in self._active():
            if m.id() == current:
                yield from m.matching_terms(current)


class WhooshVocabulary(Vocabulary):
    def __init__(self, reader: IndexReader) -> None:
        self._reader = reader
        # Spelling fields → their word table (`searchapp.engine.completion`).
        self._tables: dict[tuple[str, ...], completion.WordCounts] = {}

    def doc_count(self) -> int:
        return int(self._reader.doc_count())

    def doc_frequency(self, field: str, term: str) -> int:
        return int(self._reader.doc_frequency(field, term))

    def terms(self, field: str, prefix: str) -> Iterator[str]:
        for raw in self._reader.expand_prefix(field, prefix):
            yield raw.decode("utf-8") if isinstance(raw, bytes) else raw

    def _spelling(self, field: str) -> str | None:
        return _spelling(self._reader, field)

    def words(self, field: str, prefix: str) -> Iterator[str]:
        spell = self._spelling(field)
        if spell is not None:
            yield from self.terms(spell, prefix)

    def word_count(self, field: str, word: str) -> int:
        spell = self._spelling(field)
        return 0 if spell is None else int(self._reader.doc_frequency(spell, word))

    def top_words(self, fields: Sequence[str], prefix: str, limit: int) -> list[str]:
        """From the word table of the fields' spelling words (made ahead by the engine's
        warm-up; see `searchapp.engine.completion`); by scanning while it is being made."""
        spells = tuple(dict.fromkeys(s for s in map(self._spelling, fields) if s is not None))
        if not spells:
            return []
        table = self._table(spells)
        if table is None:
            return super().top_words(fields, prefix, limit)
        return table.top(prefix, limit)

    def _table(self, spells: tuple[str, ...]) -> completion.WordCounts | None:
        """The word table of `spells`: kept, or built now (counted); None while the
        warm-up is making it."""
        found = self._tables.get(spells)
        if found is not None:
            return found
        key = completion_key(self._reader, spells)
        if key is not None:
            found = completion.kept(key)
            if found is None and completion.being_made(key):
                FALLBACKS.count(completion.SCANNED_WHILE_MADE)
                return None
            found = found or completion.kept(key)  # (made since the first look?)
        if found is None:
            started = time.perf_counter()
            found, read, segments = read_completion(self._reader, key, spells)
            FALLBACKS.count(completion.BUILT_AT_QUERY_TIME)
            log.warning("completion: the word table (%d words, %d of %d segments read) was"
                        " built at query time in %.2f s, not ahead", len(found), read,
                        segments, time.perf_counter() - started)
            if key is not None:
                completion.keep(key, found)
        self._tables[spells] = found
        return found

    def near(self, field: str, word: str, *, distance: int, prefix: int) -> Iterator[str]:
        """From each segment's close-words index (`searchapp.engine.words`); Whoosh's
        own automaton, much slower, only when not even the first letter is fixed."""
        if field not in self._reader.schema:
            return
        spell = self._spelling(field) or field
        for segment, _ in self._reader.leaf_readers():
            if prefix < 1:
                yield from segment.terms_within(field, word, distance, prefix=prefix)
                continue
            key = _close_key(segment, spell)
            if key is None:  # not on disk: not kept
                FALLBACKS.count("close words: segment without a path, index not kept")
                log.warning("close words: a segment has no path; its word index is built"
                            " for each mistyped word")
            index = for_segment(key, functools.partial(_words, segment, spell))
            for found, _ in index.near(word, distance=distance):
                if found.startswith(word[:prefix]):
                    yield found


def _spelling(reader: IndexReader, field: str) -> str | None:
    schema = reader.schema
    if field not in schema or not schema[field].separate_spelling():
        return None
    return str(schema[field].spelling_fieldname(field))


def _close_key(segment: IndexReader, spell: str) -> tuple[str, str] | None:
    """What a segment's close-words index for a spelling field is kept under (None:
    the segment is not on disk)."""
    where = arrays_path(segment)
    if where is None or not os.path.dirname(where[0]):
        return None
    return os.path.abspath(where[0]), spell


def _words(segment: IndexReader, fieldname: str, *, pause: int = 0) -> Iterator[str]:
    """The field's words; with `pause`, a pause every so many words (`time.sleep(0)`:
    under gevent, other greenlets run meanwhile)."""
    for n, raw in enumerate(segment.lexicon(fieldname), 1):
        if pause and not n % pause:
            time.sleep(0)
        yield raw.decode("utf-8") if isinstance(raw, bytes) else raw


def reserve_close_words(reader: IndexReader, fields: Iterable[str]) -> list[tuple[str, str]]:
    """Reserve (`words.reserve`) the close-words indexes of `reader`'s segments for
    `fields` that are not kept yet, for `make_close_words` to make ahead of the
    searches needing them; the keys reserved."""
    spells = [_spelling(reader, f) or f for f in fields if f in reader.schema]
    keys = (_close_key(segment, spell) for segment, _ in reader.leaf_readers()
            for spell in dict.fromkeys(spells))
    return words.reserve(k for k in keys if k is not None)


def completion_key(reader: IndexReader, spells: Sequence[str]) -> completion.Key | None:
    """What the word table of `reader`'s segments for spelling fields `spells` is kept
    under (None: a segment is not on disk, the table is not kept)."""
    paths = []
    for segment, _ in reader.leaf_readers():
        key = _close_key(segment, "")
        if key is None:
            return None
        paths.append(key[0])
    return (*spells, "", *paths)


def read_completion(reader: IndexReader, key: completion.Key | None, spells: Sequence[str],
                    *, pause: int = 0) -> tuple[completion.WordCounts, int, int]:
    """The word table of `reader`'s segments for `spells`, from a kept table of some of
    them when there is one (`completion.base_for`) and the others' term infos; with how
    many segments were read, of how many."""
    leaves = [leaf for leaf, _ in reader.leaf_readers()]
    base = completion.base_for(key) if key is not None else None
    if base is None:
        return completion.read(leaves, spells, pause=pause), len(leaves), len(leaves)
    table, files = base
    new = [leaf for leaf in leaves if (_close_key(leaf, "") or ("",))[0] not in files]
    return completion.read(new, spells, pause=pause, base=table), len(new), len(leaves)


def reserve_completion(reader: IndexReader, fields: Iterable[str]
                       ) -> tuple[completion.Key, tuple[str, ...]] | None:
    """Reserve (`completion.reserve`) the word table of `reader`'s segments for the
    spelling fields of `fields`, for `make_completion` to make ahead of the completions
    needing it; its key and spelling fields, or None when it is kept or not to be made."""
    spells = tuple(dict.fromkeys(s for s in (_spelling(reader, f) for f in fields)
                                 if s is not None))
    key = completion_key(reader, spells) if spells else None
    if key is None or not completion.reserve(key):
        return None
    return key, spells


def language_terms(reader: IndexReader, fields: Iterable[str], language: str
                   ) -> Iterator[str]:
    """The terms of `language` in `fields`, untagged (for the warm-up: the heads of the
    index's English terms that highlighting looks for, `searchapp.highlight.prepare`)."""
    prefix = tag(language, "")
    for f in fields:
        if f in reader.schema:
            for raw in reader.expand_prefix(f, prefix):
                text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
                yield text[len(prefix):]


def reader_segments(reader: IndexReader) -> list[tuple[str, int, int]]:
    """Which segments a reader reads, in its order, and how many live documents each has
    (a segment's deletions only grow, so equal counts are equal deletions)."""
    return [(segment_id(leaf) or repr(leaf), int(leaf.doc_count_all()), int(leaf.doc_count()))
            for leaf, _ in reader.leaf_readers()]


def snapshot_over(kind: type[WhooshSnapshot], reader: IndexReader, weighting: Any,
                  reason: str) -> WhooshSnapshot:
    """A snapshot of `kind` over `reader`, which it leaves open when closed (the warm-up's
    own, for the facet columns)."""
    return kind(Searcher(reader, weighting=weighting, closereader=False), reason=reason)


def make_completion(reader: IndexReader, key: completion.Key, spells: tuple[str, ...]
                    ) -> tuple[int, int, int]:
    """Make the reserved word table from `reader` (another reader of the same segments,
    checked here: this runs beside searches) and keep it; how many words it has, and
    how many segments were read (`read_completion`) of how many."""
    try:
        if completion_key(reader, spells) != key or not completion.being_made(key):
            return 0, 0, 0  # (not its segments, or let go since reserved)
        table, read, segments = read_completion(reader, key, spells, pause=4096)
        if not completion.keep(key, table, reserved=True):  # let go meanwhile
            return 0, 0, 0
        return len(table), read, segments
    finally:
        completion.release(key)


def let_go(reader: IndexReader, folder: str) -> int:
    """Let go of what was made and kept for segments in `folder` (an index folder) that
    `reader` (of the live generation) does not read: their close-words indexes
    (`words.let_go`), word tables (`completion.let_go`) and arrays files' checks
    (`arrayfile.let_go`); how many."""
    live = {key[0] for segment, _ in reader.leaf_readers()
            if (key := _close_key(segment, "")) is not None}
    return (words.let_go(folder, live) + completion.let_go(folder, live)
            + arrayfile.let_go(folder, live))


def make_close_words(reader: IndexReader, keys: list[tuple[str, str]]) -> int:
    """Make the reserved `keys` from `reader` (another reader of the same segments
    than the one they were reserved from: this runs beside searches), and release
    any of them it does not find; how many it made and kept (one let go meanwhile,
    `words.let_go`, is not)."""
    wanted, made = set(keys), 0
    try:
        for segment, _ in reader.leaf_readers():
            for spell in dict.fromkeys(k[1] for k in keys):
                key = _close_key(segment, spell)
                if key in wanted:
                    made += words.make(key, functools.partial(_words, segment, spell,
                                                              pause=4096))
    finally:
        words.release(keys)
    return made


# A generation's folder unchanged for this long (by its modification time) is trusted to
# show a commit by a change of that time (`WhooshSnapshot.up_to_date`).
SETTLED_NS = 2_000_000_000


class WhooshSnapshot(Snapshot):
    """Every answer from Whoosh's own searcher (the reference the arrays path meets)."""

    kind = WHOOSH

    def __init__(self, searcher: Searcher, *, reason: str = "") -> None:
        self.searcher = searcher
        self.reader: IndexReader = searcher.reader()
        self.reason = reason
        self._columns: dict[str, Column] = {}
        # One vocabulary per snapshot: what the query build keeps with it (the small
        # languages' word heads, `query.language_heads`) is then worked out once.
        self._words: Vocabulary | None = None
        # The generation's folder (a file index), and its (inode, modification time) when
        # a look found the index unchanged and the folder settled (`up_to_date`).
        self._folder: str | None = getattr(getattr(searcher._ix, "storage", None),
                                           "folder", None)
        self._settled: tuple[int, int] | None = None

    # What every snapshot shares ------------------------------------------

    def stored(self, doc: int) -> dict[str, Any]:
        return dict(self.searcher.stored_fields(int(doc)))

    def find(self, item_id: str) -> int | None:
        found = self.searcher.document_number(id=item_id)
        return None if found is None else int(found)

    def vocabulary(self) -> Vocabulary:
        if self._words is None:
            self._words = WhooshVocabulary(self.reader)
        return self._words

    def doc_count(self) -> int:
        return int(self.searcher.doc_count())

    def version(self) -> int:
        return int(self.reader.generation())

    def up_to_date(self) -> bool:
        """Whether no commit has come since the snapshot was opened. Asked on every
        request (with its ETag), so the folder's listing (Whoosh's look for a newer
        table of contents) is spared while the folder is unchanged: a commit adds files
        to it, which moves its modification time on. Only a folder last changed more
        than `SETTLED_NS` before a look that found the index unchanged is trusted so,
        since a file system keeps that time in coarse ticks: any later change gets a
        later time."""
        if self._folder is None:
            return bool(self.searcher.up_to_date())
        try:
            st = os.stat(self._folder)
        except OSError:
            return bool(self.searcher.up_to_date())
        stamp = (st.st_ino, st.st_mtime_ns)
        if stamp == self._settled:
            return True
        looked = time.time_ns()
        fresh = bool(self.searcher.up_to_date())
        if fresh and looked - st.st_mtime_ns > SETTLED_NS:
            self._settled = stamp
        return fresh

    def refresh(self) -> Snapshot:
        return type(self)(self.searcher.refresh(), reason=self.reason)

    def close(self) -> None:
        self._columns.clear()
        self.searcher.close()

    def rescore(self, query: Query, docs: Sequence[int] | NDArray[np.integer[Any]]
                ) -> dict[int, float]:
        """Whoosh's matcher, skipped to each wanted document in turn."""
        whoosh_query = self.to_whoosh(query)
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

    def to_whoosh(self, query: Query) -> wq.Query:
        """The Whoosh query for `query` on this reader."""
        return to_whoosh(query)

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
