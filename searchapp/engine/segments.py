"""Whoosh's private parts, in one module: the whole-segment writer and the block readers.

Everything here leans on Whoosh 2.7.4's internals (its codec's block format,
its writers' and readers' underscored attributes); nothing else in searchapp
does. Pinning Whoosh to 2.7.4 (pyproject.toml) is what keeps it true, and
tests/test_segments.py compares what this writes with what Whoosh writes.

Writing: a full rebuild knows every document up front, so it does not need
Whoosh's general-purpose writer, which sends each posting through a generator
chain, an external sort and a per-posting encoder, all in Python.
`SegmentBuilder` gathers documents a batch at a time: each text is split into
words with the analysis chain's token pattern, each distinct word is analysed
once per build and language (`searchapp.analysis.word_entries`, the chain's own
steps word by word; the stemmer only for words the last build's `StemTable` does
not hold), and positions, lengths and postings are worked out with numpy for the
batch. Stored fields go into Whoosh's stored column a batch at a
time, columns and field lengths through its column writers; postings are
written in Whoosh's codec's block format, block headers, term infos and the
term index's records and hash tables made with numpy. A reader sees the
segment Whoosh's writer would write for the same documents (the same terms,
postings, stored fields and lengths); the bytes differ in these ways: posting
blocks are pickled with protocol 4 (Whoosh uses 2), and those of fewer than
`COMPRESS_FROM` postings are not compressed; stored fields are zlib streams at
level 0 (`STORED_LEVEL`; Whoosh uses 3); and within a run of colliding keys the
term index's hash slots may be in another order (every key is still found where
Whoosh's reader probes). Its files are kept separate rather than joined into a
compound file, which Whoosh would copy into each reader's memory. Beside each segment goes its posting arrays file
(`searchapp.engine.arrayfile`).

Reading: a segment's postings block by block as arrays (`read_postings`),
its deletions, its one-byte field lengths, and the path of its arrays file,
for the arrays path (`searchapp.engine.arrays`).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import glob
import itertools
import logging
import os
import pickle
import re
import shutil
import struct
import weakref
import zlib
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from whoosh import index as whoosh_index
from whoosh.analysis.tokenizers import IDTokenizer
from whoosh.codec.whoosh3 import (
    LENGTHS_COLUMN,
    STORED_COLUMN,
    WHOOSH3_HEADER_MAGIC,
    W3FieldWriter,
    W3LeafMatcher,
    W3PerDocReader,
    W3TermInfo,
    _lenfield,
)
from whoosh.columns import (
    CompressedBytesColumn,
    NumericColumn,
    PickleColumn,
    VarBytesColumn,
)
from whoosh.compat import dumps
from whoosh.fields import FieldType, Schema
from whoosh.filedb import filetables
from whoosh.filedb.filestore import OverlayStorage
from whoosh.filedb.structfile import BufferFile
from whoosh.formats import Existence, Positions
from whoosh.index import TOC, Index, clean_files
from whoosh.matching import Matcher
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import IndexReader, TermNotFound
from whoosh.system import _INT_SIZE as _UINT_SIZE
from whoosh.system import pack_int, pack_uint, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import SegmentWriter

from searchapp.analysis import (
    Chain,
    Multilingual,
    WordEntries,
    WordEntry,
    chain_for,
    token_pattern,
    word_entries,
)
from searchapp.engine.arrayfile import arrays_name, write_arrays
from searchapp.engine.base import FALLBACKS

log = logging.getLogger(__name__)

# One segment holds at most this many postings (a new one is started after).
SEGMENT_POSTINGS = 4_000_000
# A segment's terms are pickled into blocks about this many postings at a time.
WRITE_CHUNK = 1 << 17
# The pickle protocol of a posting block's data (its ids, weights and values). Whoosh
# writes protocol 2, in which each value (bytes: a posting's positions) is pickled as
# a call to `_codecs.encode` of a str; protocol 4 keeps them as bytes. Whoosh's reader
# unpickles either (`pickle.loads` reads any protocol) to the same tuples; with 4 a
# block pickles about ten times faster and compresses to about a third
# (bench/RESULTS.md, "Rebuild speed").
_DATA_PROTOCOL = 4
# A posting block of fewer postings is written uncompressed (its header says so, and
# Whoosh's reader checks each block's flag; Whoosh compresses every block). Below 16
# postings zlib saves little (25-40 % of a block of about 100 bytes, 6 % of a postings
# file in all) for a quarter of the CPU zlib spends on postings (bench/RESULTS.md,
# "Rebuild speed, continued").
COMPRESS_FROM = 16
# The zlib level of each document's stored fields. Whoosh's stored column compresses
# each document apart (level 3): about 24 µs per document of 640 bytes here, a sixth
# of a build worker's CPU; at level 0 (zlib's stored blocks, still read by Whoosh's
# `zlib.decompress`) it is 2 µs and reads back faster, for a stored column ~40 % larger.
STORED_LEVEL = 0
# Whether the postings of a field whose every term has one posting of weight 1 and no
# value (the id field, a block per document) are made at once from byte templates
# (`_single_postings`); the same bytes as the general loop, a sixth of its CPU.
SINGLES_AT_ONCE = True
# Documents are gathered this many at a time (fewer when segments are small: about a
# twentieth of a segment's postings at ~100 postings a document). numpy's cost per call
# is spread over more documents: 2,048 takes about 0.89 of the CPU 256 takes per
# document (bench/RESULTS.md, "#14 rebuild at 1M, stop 21").
BATCH = 2048


# While a segment is gathered, each term has a list of postings in document order,
# each one an int, (document << _SHIFT) | position, when it has one position below
# 2 ** _SHIFT (nearly all of them; in fields without positions, the position is 0),
# else (document, positions) or, from Whoosh's own analysis, (document, frequency,
# value bytes, weight, positions or None).
_SHIFT = 16
_LOW = (1 << _SHIFT) - 1


class _Vocab(dict[str, int]):
    """Term text → a number, given in the order terms are first seen."""

    def __missing__(self, key: str) -> int:
        number = self[key] = len(self)
        return number


class _Registry(dict[str, int]):
    """Term text → a number for the whole build (every segment, every text field),
    and the texts by number."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def __missing__(self, key: str) -> int:
        number = self[key] = len(self.texts)
        self.texts.append(key)
        return number


class _Words(dict[str, int]):
    """One analysed field's words in one document language, as written → a code; per
    code (`_TextField`'s arrays): its term's number, its second term's (or -1), its
    spelling word's (-1 for a stop word)."""

    def __init__(self, owner: _TextField, entry: Callable[[str], WordEntry]) -> None:
        super().__init__()
        self._owner = owner
        self._entry = entry

    def __missing__(self, word: str) -> int:
        terms, spelling = self._entry(word)
        owner = self._owner
        code = self[word] = len(owner.main)
        if len(terms) > 2:
            raise ValueError(f"{word!r} analyses into more than two terms: {terms!r}")
        owner.main.append(owner.terms[terms[0]] if terms else -1)
        owner.extra.append(owner.terms[terms[1]] if len(terms) > 1 else -1)
        owner.spell.append(owner.spelling[spelling] if terms else -1)
        return code


class _TextField:
    """How a text field with a compiled chain is gathered a batch at a time: its
    texts tokenised by the chain's pattern, each distinct word (per document
    language) analysed once for the whole build, the rest in numpy."""

    def __init__(self, chain: Chain | Multilingual, entries: dict[str, Callable[[str], WordEntry]],
                 terms: _Registry, spelling: _Registry, stems: StemTable | None = None) -> None:
        self.findall = token_pattern(chain).findall
        self.chain = chain
        self.entries = entries  # per language, shared by the fields of one chain
        self.stems = stems
        self.terms = terms
        self.spelling = spelling
        self.main = array("i")
        self.extra = array("i")
        self.spell = array("i")
        self.words: dict[str, _Words] = {}

    def words_of(self, language: str) -> _Words:
        found = self.words.get(language)
        if found is None:
            entry = self.entries.get(language)
            if entry is None:
                entry = self.entries[language] = _entry_for(self.chain, language, self.stems)
            found = self.words[language] = _Words(self, entry)
        return found

    def gather(self, texts: list[str], languages: list[str]
               ) -> tuple[Any, Any, Any, tuple[Any, Any]]:
        """Rows of a batch of texts: term numbers and positions per row in (text,
        position) order, each text's row count, and the kept tokens' (text index,
        spelling word number)."""
        words = list(map(self.findall, texts))
        getters = {language: self.words_of(language).__getitem__ for language in set(languages)}
        codes = np.fromiter(itertools.chain.from_iterable(
            map(map, [getters[language] for language in languages], words)), dtype=np.int64)
        count = len(texts)
        per_text = np.fromiter(map(len, words), dtype=np.int64, count=count)
        del words
        main = np.frombuffer(self.main, dtype=np.int32)[codes]
        kept = np.flatnonzero(main >= 0)
        text_of = np.repeat(np.arange(count, dtype=np.int64), per_text)[kept]
        # Stop words are dropped; kept tokens are numbered from the first kept one's
        # place among all the text's tokens, one after the other (as StopFilter renumbers).
        starts = np.cumsum(per_text) - per_text
        kept_starts = np.searchsorted(text_of, np.arange(count))
        kept_counts = np.bincount(text_of, minlength=count)
        has = kept_counts > 0
        first = np.zeros(count, dtype=np.int64)
        first[has] = kept[kept_starts[has]] - starts[has]
        positions = first[text_of] + np.arange(len(kept)) - kept_starts[text_of]
        terms = main[kept]
        codes = codes[kept]
        extra = np.frombuffer(self.extra, dtype=np.int32)[codes]
        second = extra >= 0
        if second.any():  # a second term at some words' positions, right after the first
            repeat = 1 + second.astype(np.int64)
            row_token = np.repeat(np.arange(len(kept)), repeat)
            rows_terms = terms[row_token]
            rows_terms[(np.cumsum(repeat) - 1)[second]] = extra[second]
            rows_positions, rows_text = positions[row_token], text_of[row_token]
        else:
            rows_terms, rows_positions, rows_text = terms, positions, text_of
        spelled = np.frombuffer(self.spell, dtype=np.int32)[codes]
        return (rows_terms, rows_positions, np.bincount(rows_text, minlength=count),
                (text_of, spelled))


def _entry_for(chain: Chain | Multilingual, language: str, stems: StemTable | None
               ) -> Callable[[str], WordEntry]:
    """`word_entries`, with the stems an earlier build worked out when there are."""
    if stems is None:
        return word_entries(chain, language)
    key = _stems_key(chain, language)
    known = stems.known.pop(key, None)
    if not known:
        return word_entries(chain, language)
    entry = word_entries(chain, language, known)
    if not isinstance(entry, WordEntries):
        return entry
    # A sample of them, spread over the table, stemmed again: any difference (another
    # stemmer, analysis code or a damaged file the fingerprint did not tell) and the
    # table is not used.
    fresh = word_entries(chain, language)
    step = max(1, len(known) // _STEMS_CHECKED)
    if any(fresh(word)[0] != (term,) for word, term in itertools.islice(known.items(), 0, None,
                                                                         step)):
        FALLBACKS.count("stem table discarded")
        log.warning("stem table %s: its stems are not what the stemmer gives; not used"
                    " (every word is stemmed afresh)", key)
        return fresh
    return entry


def _stems_key(chain: Chain | Multilingual, language: str) -> str:
    return f"chain-{chain.language}" if isinstance(chain, Chain) else f"multilingual-{language}"


class _Flat:
    """One field's postings while a segment is gathered, 12 bytes a row rather than
    Python objects: a row per token (its term's number and its position; 0 in fields
    without positions), and per document that has rows, its number and row count.
    Rows come in document order and, within a document, in position order."""

    __slots__ = ("counts", "docs", "positions", "shared", "terms", "vocab")

    def __init__(self, shared: _Registry | None = None) -> None:
        # Term numbers: the build's (text fields) or this segment's own (ID fields).
        self.shared = shared
        self.vocab = _Vocab()
        self.terms = array("i")
        self.positions = array("i")
        self.docs = array("i")
        self.counts = array("i")

    def sorted_rows(self, base: int) -> tuple[list[str], Any, Any, Any]:
        """(the terms in written order, then per row in (term, document, position)
        order: the term's rank in that order, the segment-local document, the position)."""
        numbers = np.frombuffer(self.terms, dtype=np.int32)
        if self.shared is not None:
            every = self.shared.texts
            used = np.flatnonzero(np.bincount(numbers, minlength=len(every)))
            texts = [every[k] for k in used.tolist()]
        else:
            used = None
            texts = list(self.vocab)
        ranked = sorted(range(len(texts)), key=texts.__getitem__)
        rank = np.empty(len(texts), dtype=np.int32)
        rank[np.asarray(ranked, dtype=np.int64)] = np.arange(len(texts), dtype=np.int32)
        if used is not None:
            spread = np.zeros(len(self.shared.texts), dtype=np.int32)  # type: ignore[union-attr]
            spread[used] = rank
            rank = spread
        keys = rank[numbers]
        del numbers
        order = _stable_order(keys, len(texts))  # rows were in (document, position) order
        keys = keys[order]
        docs = np.repeat(np.frombuffer(self.docs, dtype=np.int32) - base,
                         np.frombuffer(self.counts, dtype=np.int32))[order]
        places = np.frombuffer(self.positions, dtype=np.int32)[order]
        del order
        # Read once: the rows' memory goes back now, before the field is written.
        self.vocab = _Vocab()
        self.terms, self.positions, self.docs, self.counts = (array("i") for _ in range(4))
        return [texts[i] for i in ranked], keys, docs, places

    def merge_into(self, terms: defaultdict[str, list[Any]]) -> None:
        """Add these rows to postings gathered the general way (entries as in
        `SegmentBuilder._terms`), keeping each term's entries in document order."""
        texts, keys, docs, places = self.sorted_rows(0)
        touched = set()
        at, n = 0, len(keys)
        key_list, doc_list, place_list = keys.tolist(), docs.tolist(), places.tolist()
        while at < n:
            end = at + 1
            while end < n and key_list[end] == key_list[at] and doc_list[end] == doc_list[at]:
                end += 1
            text, doc = texts[key_list[at]], doc_list[at]
            if end - at == 1 and place_list[at] <= _LOW:
                terms[text].append((doc << _SHIFT) | place_list[at])
            else:
                terms[text].append((doc, place_list[at:end]))
            touched.add(text)
            at = end
        for text in touched:
            terms[text].sort(key=lambda e: e >> _SHIFT if type(e) is int else e[0])


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or a folder (a folder: the names in it) by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync(folder: str, names: Iterable[str]) -> None:
    """fsync these files of `folder`, then the folder itself (so the names are on the
    disk too)."""
    for name in names:
        fsync_path(os.path.join(folder, name))
    fsync_path(folder)


def sync_folder(folder: str | os.PathLike[str]) -> None:
    """fsync every file under `folder`, then each folder (its names), innermost first:
    a new index generation, before it goes live."""
    for where, _, files in os.walk(folder, topdown=False):
        _sync(where, files)


class _SyncedRenames:
    """A Whoosh file storage whose renames reach the disk in order: the file's contents
    before it takes the new name, the folder's names after. Whoosh's `TOC.write` writes
    a table of contents under a temporary name and renames it into place unsynced, so a
    power cut just after could leave the newest table of contents empty or partial."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def __iter__(self) -> Any:
        return iter(self._storage)

    def rename_file(self, frm: str, to: str, safe: bool = False) -> None:
        folder = self._storage.folder
        fsync_path(os.path.join(folder, frm))
        self._storage.rename_file(frm, to, safe=safe)
        fsync_path(folder)


def commit_toc(writer: Any, segments: list[Any], *, before: set[str]) -> None:
    """Whoosh's `SegmentWriter._commit_toc` (a new table of contents listing `segments`,
    then the files of every other segment and table of contents deleted), durable
    for an index on disk: the files of the segments it lists that are not among
    `before` (the ids the writer's own table of contents listed: the new ones) are
    synced, then the new table of contents is written, synced and renamed into place,
    and the folder synced, all before anything is deleted. A power cut leaves the old
    table of contents or a whole new one, each with all of its segments' files."""
    folder = getattr(writer.storage, "folder", None)
    if folder is None:  # not on disk
        writer._commit_toc(segments)
        return
    new = [f"{s.segment_id()}." for s in segments if s.segment_id() not in before]
    _sync(folder, [name for name in os.listdir(folder) if name.startswith(tuple(new))]
          if new else [])
    TOC(writer.schema, segments, writer.generation).write(_SyncedRenames(writer.storage),
                                                          writer.indexname)
    clean_files(writer.storage, writer.indexname, writer.generation, segments)


def commit_durably(writer: Any) -> None:
    """`writer.commit()` (Whoosh's writer: an update written without the segment
    writer) with its table of contents committed as `commit_toc` does."""
    # (The ids now: Whoosh's commit may append its new segment to `writer.segments`.)
    before = {s.segment_id() for s in writer.segments}
    writer._commit_toc = functools.partial(commit_toc, writer, before=before)
    writer.commit()


class SegmentBuilder:
    """Writes documents into new segments of `ix` (a fresh index, or one to append to)."""

    def __init__(self, ix: Index, *, segment_postings: int = SEGMENT_POSTINGS,
                 batch: int = BATCH, stems: StemTable | None = None,
                 durable: bool = False) -> None:
        self.ix = ix
        # Into a live generation (an import's update): the new segment's files and then
        # the new table of contents reach the disk before the old one and the merged
        # segments' files are deleted, so a power cut leaves one or the other. (A
        # rebuild's new generation is not live until the swap, and is thrown away if
        # anything fails before it.)
        self.durable = durable
        self.schema = ix.schema
        self.segment_postings = segment_postings
        self.batch = max(1, min(batch, segment_postings // 2_000))
        # Each text field with a compiled chain (searchapp.analysis) is gathered a batch
        # at a time (`_TextField`); the fields of one chain share its per-language word
        # analysis (one stem cache each), and every text field the build's term numbers.
        self._terms_registry = _Registry()
        self._spelling_registry = _Registry()
        self._texts: dict[str, _TextField] = {}
        self._chains: dict[Any, Chain | Multilingual] = {}
        by_chain: dict[Any, dict[str, Callable[[str], WordEntry]]] = {}
        self._by_chain = by_chain
        for name in self.schema.names():
            field = self.schema[name]
            if field.indexed and isinstance(field.format, Positions):
                chain = chain_for(field.analyzer)
                if chain is None:
                    FALLBACKS.count("analyzer not compiled")
                    log.warning("field %r: its analyzer is not a compiled chain"
                                " (searchapp.analysis); indexing it through Whoosh's analyzer,"
                                " several times slower", name)
                else:
                    key = chain.language if isinstance(chain, Chain) else Multilingual
                    self._texts[name] = _TextField(chain, by_chain.setdefault(key, {}),
                                                   self._terms_registry,
                                                   self._spelling_registry, stems)
                    self._chains[key] = chain
        self._spell_names = {name: self.schema[name].spelling_fieldname(name)
                             for name in self.schema.names()
                             if self.schema[name].separate_spelling()}
        # Fields gathered flat (`_Flat`): the compiled chains' and the plain ID fields'.
        self._flat_names = set(self._texts) | {
            name for name in self.schema.names()
            if self.schema[name].indexed and type(self.schema[name].analyzer) is IDTokenizer
            and type(self.schema[name].format) is Existence}
        self._encoded: dict[int, bytes] = {}
        self._order: dict[frozenset[str], list[str]] = {}
        self._stored_names: dict[frozenset[str], list[str]] = {}
        self._batch: list[Mapping[str, Any]] = []
        self._warned: set[str] = set()
        self.documents = 0
        self._writer: SegmentWriter | None = None
        # Segments the next table of contents leaves out (`leave_out`: an update that
        # writes their live documents again, merging them into its segment).
        self._left_out: set[str] = set()

    @property
    def stems_computed(self) -> int:
        """How many words the stemmer was called for (the rest came from a stem table)."""
        return sum(entry.computed for entries in self._by_chain.values()
                   for entry in entries.values() if isinstance(entry, WordEntries))

    def save_stems(self, folder: str, part: int | str = 0) -> None:
        """Keep the stems of this build's words for the next (`StemTable`), as
        `stems-<part>.pickle` in `folder`, synced to the disk before and after it takes
        that name (a power cut leaves the old table or the new one, not one cut short).
        A file that cannot be written is logged and left out: the next build stems those
        words again."""
        tables: dict[str, dict[str, str]] = {}
        for key, entries in self._by_chain.items():
            for language, entry in entries.items():
                if isinstance(entry, WordEntries) and entry.stems:
                    table = tables.setdefault(_stems_key(self._chains[key], language), {})
                    table.update(entry.stems)
        path = os.path.join(folder, f"{_STEMS_FILE}{part}.pickle")
        payload = pickle.dumps({"fingerprint": _stems_fingerprint(), "tables": tables},
                               protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with open(f"{path}.tmp", "wb") as fh:
                fh.write(_STEMS_MAGIC + _STEMS_HEADER.pack(len(payload), zlib.crc32(payload)))
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(f"{path}.tmp", path)
            fsync_path(folder)
        except OSError as exc:
            log.warning("stem table %s not written, or not synced to the disk (%s): the next"
                        " rebuild may stem its words again", path, exc.strerror or exc)

    # Updates ------------------------------------------------------------

    def delete(self, docnum: int) -> None:
        """Mark a document of the index's segments (numbered as its reader numbers them)
        deleted in the next table of contents, as Whoosh's `delete_document` does."""
        if self._writer is None:
            self._start()
        assert self._writer is not None
        self._writer.delete_document(docnum)

    def leave_out(self, segment_ids: set[str]) -> None:
        """Leave these segments out of the next table of contents (their files go when
        it is written): the caller writes their live documents again."""
        self._left_out |= set(segment_ids)

    # Documents ----------------------------------------------------------

    def _start(self) -> None:
        # Separate files, not a compound one: readers map them rather than copy them
        # into memory, so every serving process shares them through the page cache.
        self._writer = self.ix.writer(compound=False)
        # Keyed by text: str order is UTF-8 byte order, the order Whoosh writes terms in.
        self._terms: dict[str, defaultdict[str, list[Any]]] = {}
        self._flat: dict[str, _Flat] = {
            name: _Flat(self._terms_registry if name in self._texts else None)
            for name in self._flat_names}
        self._spelling: dict[str, Counter[str]] = {}
        # Per spelling field: in how many documents each spelling word is (by number).
        self._spelled: dict[str, Any] = {}
        self._lengths: dict[str, list[int]] = {}
        self._columns: defaultdict[str, list[tuple[int, Any]]] = defaultdict(list)
        self._pending = 0
        for spelled in self._spell_names.values():
            self._spelling[spelled] = Counter()

    def add(self, fields: Mapping[str, Any]) -> None:
        """Add one document (the keyword arguments `add_document` would take). Documents
        are gathered a batch at a time: a bad one may raise on a later `add` or at
        `commit` (the build fails either way)."""
        if self._writer is None:
            self._start()
        self._batch.append(fields)
        if len(self._batch) >= self.batch:
            self._flush()
            if self._pending >= self.segment_postings:
                self.commit()

    def _flush(self) -> None:
        """Gather the batch of documents: field by field, each over the whole batch."""
        docs, self._batch = self._batch, []
        if not docs:
            return
        writer = self._writer
        assert writer is not None
        perdoc = writer.perdocwriter
        first = writer.docnum
        count = len(docs)
        present: set[str] = set()
        stored_names: list[str] = []
        for key in set(map(frozenset, docs)):
            names = self._order.get(key)
            if names is None:
                names = sorted(n for n in key if not n.startswith("_"))
                writer._check_fields(self.schema, names)
                self._order[key] = names
            present.update(names)
        names = sorted(present)
        stored_key = frozenset(names)
        stored_names = self._stored_names.get(stored_key)  # type: ignore[assignment]
        if stored_names is None:
            stored_names = self._stored_names[stored_key] = [
                n for n in names if self.schema[n].stored]
        languages = [doc.get("language") or "en" for doc in docs]
        plain = set(map(type, docs)) == {dict}
        for name in names:
            field = self.schema[name]
            values = (list(map(dict.get, cast("list[dict[str, Any]]", docs),  # all dicts
                               itertools.repeat(name))) if plain
                      else [doc.get(name) for doc in docs])
            if field.indexed:
                self._index(name, field, values, first, languages)
            if field.column_type:
                to_column = field.to_column_value
                self._columns[name].extend([(first + k, to_column(v))
                                            for k, v in enumerate(values) if v is not None])
        self._store(perdoc, first, [{n: v for n in stored_names if (v := doc.get(n)) is not None}
                                    for doc in docs])
        perdoc._doccount = first + count
        perdoc._docnum = first + count - 1
        writer._added = True
        writer.docnum += count
        self.documents += count

    def _store(self, perdoc: Any, first: int, stored: list[dict[str, Any]]) -> None:
        """The documents' stored fields, as `finish_doc` adds them to the `_stored`
        column one by one (pickled, then compressed), in one write."""
        column = perdoc._get_column("_stored")
        inner: Any = getattr(column, "_child", None)  # a Whoosh column or None (untyped)
        if (type(column) is not PickleColumn.Writer
                or type(inner) is not CompressedBytesColumn.Writer or not all(stored)):
            FALLBACKS.count("stored fields written document by document")
            if "stored" not in _SAID:
                _SAID.add("stored")
                log.warning("stored fields written through Whoosh document by document"
                            " (column %s, or a document without stored fields)",
                            type(column).__name__)
            for k, fields in enumerate(stored):
                if fields:
                    perdoc._docnum = first + k
                    perdoc.add_column_value("_stored", STORED_COLUMN, fields)
            return
        compress, level = inner._compress, inner._level
        if compress is zlib.compress:
            level = STORED_LEVEL
        blobs = [compress(dumps(fields, 2), level) for fields in stored]
        inner.fill(first)
        inner._dbfile.write(b"".join(blobs))
        sizes = list(map(len, blobs))
        offsets = list(itertools.accumulate(sizes, initial=inner._offset_base))
        inner._lengths.extend(sizes)
        inner._offsets.extend(offsets[:-1])
        inner._offset_base = offsets[-1]
        inner._count = first + len(stored)

    def _write_columns(self, perdoc: Any) -> None:
        """The sortable fields' columns and the field lengths, as `add_field` and
        `add_column_value` would have written them document by document."""
        for name, pairs in self._columns.items():
            column = self.schema[name].column_type
            if not perdoc._has_column(name):
                perdoc._create_column(name, column)
            add = perdoc._get_column(name).add
            for docnum, value in pairs:
                add(docnum, value)
        for name, lengths in self._lengths.items():
            lenfield = _lenfield(name)
            if not perdoc._has_column(lenfield):
                perdoc._create_column(lenfield, LENGTHS_COLUMN)
            add = perdoc._get_column(lenfield).add
            for docnum, length in enumerate(lengths):
                if length:
                    add(docnum, length_to_byte(length))
            perdoc._fieldlengths[name] += sum(lengths)

    def _index(self, name: str, field: FieldType, values: list[Any], first: int,
               languages: list[str]) -> None:
        """Gather one field's postings over a batch (texts analysed in their documents'
        languages), and its lengths (scorable fields)."""
        lengths: Any = None
        text = self._texts.get(name)
        general: Sequence[int] = range(len(values))
        if name in self._flat_names:
            kinds = set(map(type, values))
            if kinds == {str}:
                chosen: Any = range(len(values))
                general = []
            elif kinds <= {str, type(None)}:
                chosen = [k for k, v in enumerate(values) if v is not None]
                general = []
            else:
                chosen = [k for k, v in enumerate(values) if isinstance(v, str)]
                general = [k for k, v in enumerate(values)
                           if v is not None and not isinstance(v, str)]
            flat = self._flat[name]
            every = type(chosen) is range
            picked = values if every else [values[k] for k in chosen]
            if text is not None and chosen:
                terms, positions, rows, (kept_of, spelled) = text.gather(
                    picked, languages if every else [languages[k] for k in chosen])
                flat.terms.frombytes(terms.astype(np.int32).tobytes())
                flat.positions.frombytes(positions.astype(np.int32).tobytes())
                docs = np.asarray(chosen, dtype=np.int64) + first
                some = rows > 0
                flat.docs.frombytes(docs[some].astype(np.int32).tobytes())
                flat.counts.frombytes(rows[some].astype(np.int32).tobytes())
                self._pending += len(terms)
                lengths = np.zeros(len(values), dtype=np.int64)
                lengths[chosen] = rows  # as Whoosh counts every token
                spelling = self._spell_names.get(name)
                if spelling is not None and len(spelled):
                    # In how many documents each spelling word is: distinct (text, word).
                    pairs = _sorted_distinct(np.sort((kept_of << 32) | spelled.astype(np.int64)))
                    found = np.bincount(pairs & 0xFFFFFFFF,
                                        minlength=len(self._spelling_registry.texts))
                    had = self._spelled.get(spelling)
                    if had is not None:
                        found[:len(had)] += had
                    self._spelled[spelling] = found
            elif text is None and chosen:
                flat.terms.extend(map(flat.vocab.__getitem__, picked))
                flat.positions.extend([0] * len(chosen))
                flat.docs.extend([first + k for k in chosen])
                flat.counts.extend([1] * len(chosen))
                self._pending += len(chosen)
        for k in general:
            value = values[k]
            if value is None:
                continue
            if name in self._flat_names:
                # Not a text: a list of terms, which only Whoosh's own analysis takes.
                FALLBACKS.count("value analysed by Whoosh")
                if name not in self._warned:
                    self._warned.add(name)
                    log.warning("field %r: a value that is not a string (%s) is indexed"
                                " through Whoosh's analysis, one value at a time, slowly",
                                name, type(value).__name__)
            length = self._index_whoosh(name, field, value, first + k)
            if field.scorable:
                if lengths is None:
                    lengths = np.zeros(len(values), dtype=np.int64)
                lengths[k] = length
        if lengths is not None:
            had = self._lengths.setdefault(name, [])
            if len(had) < first:
                had.extend([0] * (first - len(had)))
            had.extend(lengths.tolist())

    def _index_whoosh(self, name: str, field: FieldType, value: Any, docnum: int) -> int:
        """Gather one value's postings through Whoosh's own analysis; its length."""
        terms = self._terms.get(name)
        if terms is None:
            terms = self._terms[name] = defaultdict(list)
        length = 0
        positions = isinstance(field.format, Positions)
        for tbytes, freq, weight, vbytes in field.index(value):
            terms[tbytes.decode("utf-8")].append(
                (docnum, freq, vbytes, weight,
                 field.format.decode_positions(vbytes) if positions else None))
            self._pending += 1
            length += freq
        if name in self._spell_names:
            self._spelling[self._spell_names[name]].update(field.spellable_words(value))
        return length

    # Writing ------------------------------------------------------------

    def commit(self) -> None:
        """Write what has been added as one segment and make it part of the index."""
        if self._writer is None:
            return
        self._flush()
        writer = self._writer
        self._writer = None
        try:
            self._write(writer)
        except BaseException:
            abandon(writer)  # a full disk or a bad value half-way: the lock goes
            raise

    def _write(self, writer: Any) -> None:
        """`commit`'s writing: the spelling counts, the columns, the fields' postings,
        the term index, the arrays file and the new TOC."""
        for spelling, found in self._spelled.items():
            words = self._spelling[spelling]
            texts = self._spelling_registry.texts
            for k in np.flatnonzero(found).tolist():
                words[texts[k]] += int(found[k])
        self._spelled = {}
        if not writer._added:
            writer.cancel()
            return
        base = writer.docbase
        self._write_columns(writer.perdocwriter)
        writer.perdocwriter.close()
        fieldwriter: W3FieldWriter = writer.fieldwriter
        arrays: dict[str, dict[str, Any]] = {}
        flat = {name: data for name, data in self._flat.items() if len(data.terms)}
        names = sorted(set(self._terms) | set(self._spelling) | set(flat))
        for name in names:
            field = self.schema[name]
            if name in self._spelling:
                self._write_spelling(fieldwriter, name, field, self._spelling[name])
            elif name in self._terms:  # some values Whoosh's analysis had to index
                terms = self._terms[name]
                if name in flat:
                    flat.pop(name).merge_into(terms)
                arrays[name] = self._write_field(fieldwriter, name, field, terms, base)
            else:
                arrays[name] = self._write_flat(fieldwriter, name, field, flat.pop(name), base)
            self._flat.pop(name, None)
        _fast_hashes(fieldwriter._tindex)
        fieldwriter.close()
        writer.pool.cleanup()
        writer._assemble_segment()
        segment = writer.get_segment()
        write_arrays(getattr(writer.storage, "folder", None), segment.segment_id(),
                     segment.doc_count_all(), arrays)
        kept = [s for s in writer.segments if s.segment_id() not in self._left_out]
        folder = getattr(writer.storage, "folder", None)
        if self.durable and folder is not None:
            commit_toc(writer, kept + [segment],
                       before={s.segment_id() for s in writer.segments})
        else:
            writer._commit_toc(kept + [segment])
        writer._finish()

    def _write_flat(self, fw: W3FieldWriter, name: str, field: FieldType, flat: _Flat,
                    base: int) -> dict[str, Any]:
        """`_write_field` for postings gathered flat: grouped, counted and measured
        with numpy a field at a time; only the blocks' pickling goes term by term."""
        fw.start_field(name, field)
        texts, keys, docs, places = flat.sorted_rows(base)
        rows = len(keys)
        # A posting per (term, document): its first row and its frequency.
        new = np.ones(rows, dtype=bool)
        new[1:] = (keys[1:] != keys[:-1]) | (docs[1:] != docs[:-1])
        first_rows = np.flatnonzero(new)
        del new
        freqs = np.diff(np.append(first_rows, rows)).astype(np.int32)
        term_of = keys[first_rows]
        ids = docs[first_rows]
        del keys, docs
        n = len(first_rows)
        is_start = np.ones(n, dtype=bool)
        is_start[1:] = term_of[1:] != term_of[:-1]
        term_starts = np.flatnonzero(is_start)
        del is_start
        term_texts = [texts[r] for r in term_of[term_starts].tolist()]
        del texts, term_of
        fb = field.format.field_boost
        weights32 = (freqs * fb).astype(np.float32)  # what a block holds
        # Blocks of at most `limit` postings within each term.
        limit = fw._codec._blocklimit
        term_ends = np.append(term_starts[1:], n)
        within = np.arange(n, dtype=np.int64) - np.repeat(term_starts, term_ends - term_starts)
        block_starts = np.flatnonzero(within % limit == 0)
        del within
        block_ends = np.append(block_starts[1:], n)
        term_blocks = np.append(np.searchsorted(block_starts, term_starts), len(block_starts))
        deltas = np.empty(n, dtype=np.int32)  # each block's first id whole, then deltas
        deltas[0] = ids[0]
        deltas[1:] = np.diff(ids)
        deltas[block_starts] = ids[block_starts]
        block_sum = np.add.reduceat(weights32, block_starts, dtype=np.float64)
        # A weight is the frequency times the (positive) field boost: the largest and
        # smallest weights of a block are those of its largest and smallest frequencies.
        high_freq = np.maximum.reduceat(freqs, block_starts)
        block_max = np.maximum(high_freq * fb, 0)  # as Python computes them
        block_low = (np.minimum.reduceat(freqs, block_starts) * fb).astype(np.float32)
        block_high = (high_freq * fb).astype(np.float32)
        del high_freq
        nblocks = len(block_starts)
        big = np.iinfo(np.int64).max
        if field.scorable and name in self._lengths:
            raw = self._lengths[name]
            coded = _LENGTHS[_length_bytes(np.asarray(raw, dtype=np.int64))]  # 0 stays 0
            if len(coded) <= int(ids.max()):
                coded = np.append(coded, np.zeros(int(ids.max()) + 1 - len(coded), np.int64))
            lens = coded[ids]
            block_minlen = np.minimum.reduceat(np.where(lens > 0, lens, big), block_starts)
            block_maxlen = np.maximum.reduceat(lens, block_starts)
            del lens, coded
        else:
            block_minlen = np.full(nblocks, big, dtype=np.int64)
            block_maxlen = np.zeros(nblocks, dtype=np.int64)
        positional = isinstance(field.format, Positions)
        fixedsize = fw._format.fixed_value_size()
        compression = fw._codec._compression
        # What each block's header says, and each term's info, worked out for all at once.
        block_counts = np.diff(np.append(block_starts, n))
        block_comp = np.where(block_counts >= COMPRESS_FROM, compression, 0)  # as `_block`
        block_minbyte = np.where(block_minlen == big, 0, _length_bytes(block_minlen))
        block_maxbyte = _length_bytes(block_maxlen)
        # Weights in a block: all 1 (pickled as None), all alike (one float), or each.
        block_kind = np.where(block_low == block_high, np.where(block_low == 1.0, 0, 1), 2)
        first_blocks = term_blocks[:-1]
        nterms = len(term_texts)
        infos = np.zeros(nterms, dtype=_TERMINFO_DTYPE)
        infos["df"] = term_ends - term_starts
        low_bytes = np.minimum.reduceat(np.where(block_minbyte == 0, 256, block_minbyte),
                                        first_blocks)
        infos["minlength"] = np.where(low_bytes == 256, 0, low_bytes)
        infos["maxlength"] = np.maximum.reduceat(block_maxbyte, first_blocks)
        infos["maxweight"] = np.maximum.reduceat(block_max, first_blocks)
        infos["minid"] = ids[term_starts]
        infos["maxid"] = ids[term_ends - 1]
        # A term's weight: its blocks' sums added one after the other, as W3TermInfo does.
        weight = block_sum[first_blocks]
        for t in np.flatnonzero(np.diff(term_blocks) > 1).tolist():
            total = 0.0
            for b in range(int(term_blocks[t]), int(term_blocks[t + 1])):
                total += float(block_sum[b])
            weight[t] = total
        infos["weight"] = weight
        term_offsets = np.zeros(nterms, dtype=np.int64)  # where each term's postings start
        postfile = fw._postfile
        offset = postfile.tell()
        pending: list[bytes] = []
        magic = WHOOSH3_HEADER_MAGIC
        magic_size = len(magic)
        packed = pack_int
        compress = zlib.compress
        # Terms a chunk of about WRITE_CHUNK postings at a time: the Python lists the
        # pickling needs stay small whatever the segment's size.
        edges = np.unique(np.concatenate((
            [0], np.searchsorted(term_starts, np.arange(WRITE_CHUNK, n, WRITE_CHUNK)),
            [nterms]))).tolist()
        if (SINGLES_AT_ONCE and n and n == nterms and fixedsize == 0 and not block_kind.any()
                and not block_comp.any()):
            # Every term has one posting of weight 1 and no value (the id field): all
            # their blocks at once, from byte templates, rather than term by term.
            body, sizes = _single_postings(ids, block_max, block_minbyte, block_maxbyte)
            term_offsets = offset + np.cumsum(sizes) - sizes
            postfile.write(body)
            offset += len(body)
            edges = []
        for t0, t1 in itertools.pairwise(edges):
            p0, p1 = int(term_starts[t0]), int(term_ends[t1 - 1])
            b0, b1 = int(term_blocks[t0]), int(term_blocks[t1])
            delta_list = deltas[p0:p1].tolist()
            w_list = weights32[p0:p1].tolist()
            values: list[bytes] = self._values(field, freqs[p0:p1], places,
                                               first_rows[p0:p1]) if positional else []
            value_of = _block_values(fixedsize, values)
            heads = list(zip(block_counts[b0:b1].tolist(), ids[block_ends[b0:b1] - 1].tolist(),
                             block_max[b0:b1].tolist(), block_comp[b0:b1].tolist(),
                             block_minbyte[b0:b1].tolist(), block_maxbyte[b0:b1].tolist()))
            bstart = (block_starts[b0:b1] - p0).tolist()
            bend = (block_ends[b0:b1] - p0).tolist()
            kinds = block_kind[b0:b1].tolist()
            tblocks = (term_blocks[t0:t1 + 1] - b0).tolist()
            starts_out: list[int] = []
            for t in range(t1 - t0):
                start = offset
                pending.append(magic)
                offset += magic_size
                last_block = tblocks[t + 1] - 1
                for b in range(tblocks[t], last_block + 1):
                    at, end = bstart[b], bend[b]
                    kind = kinds[b]
                    data = dumps((tuple(delta_list[at:end]),
                                  None if kind == 0 else w_list[at] if kind == 1
                                  else tuple(w_list[at:end]), value_of(at, end)),
                                 _DATA_PROTOCOL)
                    head = heads[b]
                    if head[3]:
                        data = compress(data, head[3])
                    head_bytes = dumps(head, 2)
                    size = len(head_bytes) + len(data)
                    pending.append(packed(-size if b == last_block else size))
                    pending.append(head_bytes)
                    pending.append(data)
                    offset += _UINT_SIZE + size
                starts_out.append(start)
            term_offsets[t0:t1] = starts_out
            pending_size = sum(map(len, pending))
            if pending_size >= 1 << 20:
                postfile.write(b"".join(pending))
                pending.clear()
        if pending:
            postfile.write(b"".join(pending))
        infos["offset"] = term_offsets
        infos["length"] = np.diff(np.append(term_offsets, offset))  # terms follow each other
        prefix = pack_ushort(fw._fieldid)
        _add_terms(fw, [prefix + text.encode("utf-8") for text in term_texts], infos.tobytes(),
                   _TERMINFO_DTYPE.itemsize)
        assert postfile.tell() == offset
        fw.finish_field()
        if field.unique:
            return {}
        out: dict[str, Any] = {
            "terms": term_texts,
            "starts": np.append(term_starts, n).astype(np.int64),
            "ids": ids.astype(np.int32),
            "weights": weights32,
        }
        if positional:
            out["freqs"] = freqs
            out["positions"] = places.astype(np.int32)
            out["position_starts"] = np.append(first_rows[term_starts], rows).astype(np.int64)
        return out

    def _values(self, field: FieldType, freqs: Any, places: Any, first_rows: Any) -> list[bytes]:
        """Each posting's value in a positions field (Whoosh's `Positions.encode`): one
        made once per position for the postings with one, each made apart for the rest."""
        encode = field.format.encode
        encoded = self._encoded
        firsts = places[first_rows]
        singles = freqs == 1
        table = np.empty(int(firsts.max()) + 1 if len(firsts) else 0, dtype=object)
        for p in np.flatnonzero(np.bincount(firsts[singles])).tolist():
            v = encoded.get(p)
            if v is None:
                v = encoded[p] = encode([p])
            table[p] = v
        values = np.empty(len(first_rows), dtype=object)
        values[singles] = table[firsts[singles]]
        several = ~singles
        if type(field.format).encode is Positions.encode:  # Whoosh's, not a subclass's
            several &= freqs > _LIST_BATCH
            at_once = np.flatnonzero(~singles & ~several)
            if len(at_once):
                values[at_once] = _encode_positions(places, first_rows[at_once],
                                                    freqs[at_once])
        place_list = None
        for k in np.flatnonzero(several).tolist():
            if place_list is None:
                place_list = places.tolist()
            at = int(first_rows[k])
            values[k] = encode(place_list[at:at + int(freqs[k])])
        return values.tolist()

    def _write_field(self, fw: W3FieldWriter, name: str, field: FieldType,
                     terms: dict[str, list[Any]], base: int) -> dict[str, Any]:
        fw.start_field(name, field)
        fb = field.format.field_boost
        lengths = None
        if field.scorable and name in self._lengths:
            # What Whoosh's scorers read back: the length through its one-byte code.
            raw = self._lengths[name]
            lengths = [byte_to_length(c) if c else 0 for c in map(length_to_byte, raw)]
        keep = not field.unique
        out_terms: list[str] = []
        starts = [0]
        position_starts = [0]
        ids: list[int] = []
        tfs: list[float] = []
        freqs: list[int] = []
        positions: list[int] = []
        positional = isinstance(field.format, Positions)
        encode = field.format.encode
        encoded = self._encoded
        single = b"" if not positional else None  # the value of a one-position posting
        for text in sorted(terms):
            entries = terms[text]
            if all(type(e) is int for e in entries):
                docs = [(e >> _SHIFT) - base for e in entries]
                places = [e & _LOW for e in entries]
                counts = [1] * len(entries)
                weights = [fb] * len(entries)
                if single is None:
                    values = []
                    for p in places:
                        v = encoded.get(p)
                        if v is None:
                            v = encoded[p] = encode([p])
                        values.append(v)
                else:
                    values = [single] * len(entries)
            else:
                docs, places, counts, weights, values = [], [], [], [], []
                for e in entries:
                    if type(e) is int:
                        p = e & _LOW
                        docs.append((e >> _SHIFT) - base)
                        places.append(p)
                        counts.append(1)
                        weights.append(fb)
                        if single is None:
                            v = encoded.get(p)
                            if v is None:
                                v = encoded[p] = encode([p])
                            values.append(v)
                        else:
                            values.append(single)
                    elif len(e) == 2:
                        docs.append(e[0] - base)
                        places.append(e[1])
                        counts.append(len(e[1]))
                        weights.append(len(e[1]) * fb)
                        values.append(encode(e[1]))
                    else:
                        docs.append(e[0] - base)
                        places.append(e[4])
                        counts.append(e[1])
                        weights.append(e[3] * 1.0)
                        values.append(e[2])
            _emit_term(fw, text.encode("utf-8"), docs, weights, values,
                       [lengths[d] for d in docs] if lengths is not None else None)
            if keep:
                out_terms.append(text)
                ids.extend(docs)
                tfs.extend(weights)
                starts.append(len(ids))
                if positional:
                    freqs.extend(counts)
                    for p in places:
                        if type(p) is int:
                            positions.append(p)
                        else:
                            positions.extend(p)
                    position_starts.append(len(positions))
        fw.finish_field()
        if not keep:
            return {}
        out: dict[str, Any] = {
            "terms": out_terms,
            "starts": np.asarray(starts, dtype=np.int64),
            "ids": np.asarray(ids, dtype=np.int32),
            "weights": np.asarray(tfs, dtype=np.float32),
        }
        if positional:
            out["freqs"] = np.asarray(freqs, dtype=np.int32)
            out["positions"] = np.asarray(positions, dtype=np.int32)
            out["position_starts"] = np.asarray(position_starts, dtype=np.int64)
        return out

    def _write_spelling(self, fw: W3FieldWriter, name: str, field: FieldType,
                        words: Counter[str]) -> None:
        """One posting (document 0, weight 1) per document a word is in, as Whoosh writes:
        a word's postings depend only on its count, so each count's are made once."""
        fw.start_field(name, field)
        texts = sorted(words)
        counts = [words[w] for w in texts]
        made = {n: _zeros(fw, n) for n in set(counts)}
        parts = list(map(made.__getitem__, counts))
        postfile = fw._postfile
        sizes = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        infos = np.zeros(len(texts), dtype=_TERMINFO_DTYPE)
        infos["offset"] = postfile.tell() + np.cumsum(sizes) - sizes
        infos["length"] = sizes
        infos["weight"] = infos["df"] = counts
        infos["maxweight"] = 1.0
        postfile.write(b"".join(parts))
        prefix = pack_ushort(fw._fieldid)
        _add_terms(fw, [prefix + w.encode("utf-8") for w in texts], infos.tobytes(),
                   _TERMINFO_DTYPE.itemsize)
        fw.finish_field()


def _single_postings(ids: Any, maxweights: Any, minbytes: Any, maxbytes: Any
                     ) -> tuple[bytes, Any]:
    """The postings of terms with one posting each, of weight 1 and no value (its
    document `ids[t]`; its block header's maximum weight and length bytes), byte for
    byte as `_write_flat`'s loop writes them, for every term at once; and each term's
    size. A term's postings are one block: the header magic, the block's size
    (negative: its last block), the header pickled with protocol 2, `(1, id, maxweight,
    0, minbyte, maxbyte)`, and the data with `_DATA_PROTOCOL` (4), `((id,), None, None)`.
    Those pickles differ only in the bytes of these numbers, so each is a template with
    the numbers written in; an id is pickled in 1, 2 or 4 bytes (`K`, `M`, `J`)."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= 1 << 31):
        raise ValueError("a document number out of a pickled int's range")
    width = np.where(ids < 256, 1, np.where(ids < 65536, 2, 4))  # the id's bytes
    sizes = 52 + 2 * width
    ends = np.cumsum(sizes)
    starts = ends - sizes
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
    for w, opcode in ((1, b"K"), (2, b"M"), (4, b"J")):
        rows = np.flatnonzero(width == w)
        if not len(rows):
            continue
        number = opcode + bytes(w)  # the id's place
        head = b"\x80\x02(K\x01" + number + b"G" + bytes(8) + b"K\x00K\x00K\x00tq\x00."
        data = (b"\x80\x04\x95" + (len(number) + 7).to_bytes(8, "little") + number
                + b"\x85\x94NN\x87\x94.")
        template = WHOOSH3_HEADER_MAGIC + pack_int(-(len(head) + len(data))) + head + data
        assert len(template) == 52 + 2 * w
        block = np.tile(np.frombuffer(template, dtype=np.uint8), (len(rows), 1))
        id_bytes = ids[rows].astype("<u4").view(np.uint8).reshape(-1, 4)[:, :w]
        at = 8 + 6  # after the magic, the size, and the header's PROTO, MARK, K 1, opcode
        block[:, at:at + w] = id_bytes
        at += w + 1  # the float's opcode G
        block[:, at:at + 8] = np.asarray(maxweights, dtype=">f8")[rows].view(
            np.uint8).reshape(-1, 8)
        at += 8 + 2 + 1  # K 0 (not compressed), K
        block[:, at] = np.asarray(minbytes)[rows]
        block[:, at + 2] = np.asarray(maxbytes)[rows]
        at += 3 + 4 + 3 + 8 + 1  # tq\0. ; the data's PROTO, FRAME and its size; opcode
        block[:, at:at + w] = id_bytes
        out[starts[rows][:, None] + np.arange(len(template))] = block
    return out.tobytes(), sizes


# Pickle's protocol 2 writes a list's items in batches of this many (`pickle._BATCHSIZE`):
# a longer list of positions is encoded by Whoosh's `Positions.encode` itself.
_LIST_BATCH = 1000
_LIST_START = b"\x80\x02]q\x00("  # PROTO 2, EMPTY_LIST, BINPUT 0, MARK
_LIST_END = b"e."  # APPENDS, STOP


def _encode_positions(places: Any, first_rows: Any, freqs: Any) -> list[bytes]:
    """What Whoosh's `Positions.encode` gives for each posting of 2 to `_LIST_BATCH`
    positions (those of rows `first_rows[k]` on, `freqs[k]` of them), made for all at
    once: the count as 4 bytes, big-endian, then the position deltas pickled as a list
    (protocol 2: each a BININT1, BININT2 or BININT, by size)."""
    counts = freqs.astype(np.int64)
    total = int(counts.sum())
    posting_start = np.cumsum(counts) - counts  # each posting's first delta
    rows = np.repeat(first_rows.astype(np.int64) - posting_start, counts) + np.arange(total)
    positions = places[rows].astype(np.int64)
    deltas = np.empty(total, dtype=np.int64)
    deltas[0] = positions[0]
    deltas[1:] = np.diff(positions)
    deltas[posting_start] = positions[posting_start]
    sizes = np.where(deltas < 1 << 8, 2, np.where(deltas < 1 << 16, 3, 5))
    head, tail = 4 + len(_LIST_START), len(_LIST_END)
    lengths = head + tail + np.add.reduceat(sizes, posting_start)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    out = np.zeros(int(ends[-1]), dtype=np.uint8)
    for k in range(4):  # the count, big-endian
        out[starts + k] = (counts >> (8 * (3 - k))) & 0xFF
    for k, byte in enumerate(_LIST_START):
        out[starts + 4 + k] = byte
    for k, byte in enumerate(_LIST_END):
        out[ends - tail + k] = byte
    within = np.cumsum(sizes) - sizes
    within -= np.repeat(within[posting_start], counts)
    at = np.repeat(starts + head, counts) + within  # each delta's opcode
    out[at] = np.where(sizes == 2, ord("K"), np.where(sizes == 3, ord("M"), ord("J")))
    for k in range(4):  # little-endian
        some = sizes > k + 1
        out[at[some] + 1 + k] = (deltas[some] >> (8 * k)) & 0xFF
    data = out.tobytes()
    return [data[a:b] for a, b in zip(starts.tolist(), ends.tolist())]


def _stable_order(keys: Any, bound: int) -> Any:
    """`np.argsort(keys, kind="stable")` for keys in [0, bound): numpy's stable sort is
    a radix sort only for integers of up to 16 bits, so keys below 2 ** 16 are sorted as
    such, and larger ones in two stable passes, by their low 16 bits and then by their
    high ones (about half the CPU of one stable sort of 32-bit keys, 4M of them)."""
    if bound <= 1 << 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    # As 32-bit numbers (len(keys) < 2 ** 31): the passes' orders held at once take
    # less memory than one 64-bit order more.
    low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable").astype(np.int32)
    high = np.argsort((keys[low] >> 16).astype(np.uint16), kind="stable")
    return low[high]


def _sorted_distinct(ordered: Any) -> Any:
    """A sorted array without its repeats: what `np.unique` gives for one already sorted.
    (numpy 2's `np.unique` hashes, then sorts: about 3 ms for the 25,000 (text, word)
    pairs of a batch, where sorting them is 0.35 ms; bench/RESULTS.md, "#14 rebuild at
    1M, stop 21".)"""
    if len(ordered) < 2:
        return ordered
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def _block_values(fixedsize: int | None, values: list[bytes]) -> Callable[[int, int], Any]:
    """How a block's values are kept, by the format's value size (`_block`)."""
    if fixedsize is None or fixedsize < 0:
        return lambda at, end: tuple(values[at:end])
    if fixedsize == 0:
        return lambda at, end: None
    return lambda at, end: b"".join(values[at:end])


# W3TermInfo.to_bytes of a term whose postings are in the postings file, as a record.
_TERMINFO_DTYPE = np.dtype([
    ("inlined", "u1"), ("weight", ">f4"), ("df", ">u4"), ("minlength", "u1"),
    ("maxlength", "u1"), ("maxweight", ">f4"), ("minid", ">u4"), ("maxid", ">u4"),
    ("offset", ">i8"), ("length", ">i4")])
assert _TERMINFO_DTYPE.itemsize == W3TermInfo._struct.size + 12
assert filetables._lengths.format in ("!ii", b"!ii")  # a term record's two lengths


def _length_bytes(lengths: Any) -> Any:
    """`length_to_byte` of many lengths (none None)."""
    return np.minimum(np.searchsorted(_LENGTHS, lengths, side="left"), 255)


def _add_terms(fw: W3FieldWriter, keys: list[bytes], infos: bytes, size: int) -> None:
    """`OrderedHashWriter.add` of many keys (in increasing order), each with its
    `size` bytes of `infos`, in one write."""
    if not keys:
        return
    tindex = fw._tindex
    if keys[0] <= tindex.lastkey:  # as OrderedHashWriter.add checks
        raise ValueError(f"Keys must increase: {tindex.lastkey!r}..{keys[0]!r}")
    dbfile = tindex.dbfile
    # Each record: the key's and the value's lengths ("!ii"), the key, the value.
    key_sizes = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    record_sizes = 8 + key_sizes + size
    ends = np.cumsum(record_sizes)
    starts = ends - record_sizes
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
    lengths = np.empty((len(keys), 2), dtype=">i4")
    lengths[:, 0] = key_sizes
    lengths[:, 1] = size
    out[starts[:, None] + np.arange(8)] = lengths.view(np.uint8).reshape(-1, 8)
    key_bytes = np.frombuffer(b"".join(keys), dtype=np.uint8)
    key_starts = np.cumsum(key_sizes) - key_sizes
    out[np.repeat(starts + 8 - key_starts, key_sizes) + np.arange(len(key_bytes))] = key_bytes
    out[(starts + 8 + key_sizes)[:, None] + np.arange(size)] = np.frombuffer(
        infos, dtype=np.uint8).reshape(-1, size)
    pos = dbfile.tell()
    positions = (starts + pos).tolist()
    tindex.index.extend(positions)
    buckets = tindex.buckets
    hashfn = tindex.hashfn
    for key, at in zip(keys, positions, strict=True):
        h = hashfn(key)
        buckets[h & 255].append((h, at))
    dbfile.write(out.tobytes())
    tindex.lastkey = keys[-1]


_ZERO_BLOCKS: dict[tuple[int, int, int, bool], bytes] = {}  # (size, value size, zlib, last)


def _zeros(fw: W3FieldWriter, n: int) -> bytes:
    """The postings `_emit_term` writes for n postings of document 0 with weight 1 and
    no value or length (a spelling word): the blocks are all alike, so each kind is
    made once."""
    limit = fw._codec._blocklimit
    parts = [WHOOSH3_HEADER_MAGIC]
    for at in range(0, n, limit):
        size = min(limit, n - at)
        key = (size, fw._format.fixed_value_size() or 0, fw._codec._compression, at + size == n)
        block = _ZERO_BLOCKS.get(key)
        if block is None:
            # Each posting's value: frequency 1 (Whoosh's writer leaves there whatever
            # value its last posting had; a merge reads it back, so it must be there).
            one = pack_uint(1) if fw._format.fixed_value_size() == _UINT_SIZE else b""
            block = _ZERO_BLOCKS[key] = _block(fw, [0] * size, array("f", [1.0] * size),
                                               1, [one] * size, None, 0, at + size == n)
        parts.append(block)
    return b"".join(parts)


def _fast_hashes(tindex: Any) -> None:
    """Let a term index lay out its hash tables with numpy when it closes."""
    if type(tindex) is filetables.OrderedHashWriter:
        tindex._write_hashes = lambda: _write_hashes(tindex)
        return
    FALLBACKS.count("term index hash tables laid out by Whoosh")
    if "hashes" not in _SAID:
        _SAID.add("hashes")
        log.warning("term index %s: its hash tables are laid out by Whoosh, entry by entry",
                    type(tindex).__name__)


# Which slow paths have been logged already (once per process each).
_SAID: set[str] = set()


def _write_hashes(tindex: Any) -> None:
    """`HashWriter._write_hashes`: per bucket a table of twice its entries' slots, each
    entry in the first free slot from its own on (linear probing, as readers look),
    laid out a bucket at a time: entries in order of their slot, each one after the
    one before if that is further on. A bucket whose entries would wrap around its
    table's end is laid out as Whoosh does it, entry by entry."""
    dbfile = tindex.dbfile
    pointer = np.dtype([("hash", ">u4"), ("position", ">i8")])
    assert pointer.itemsize == filetables._pointer.size
    for entries in tindex.buckets:
        numslots = 2 * len(entries)
        tindex.directory.append((dbfile.tell(), numslots))
        if not entries:
            continue
        found = np.asarray(entries, dtype=np.int64)
        home = (found[:, 0] >> 8) % numslots
        order = np.argsort(home, kind="stable")
        steps = np.arange(len(order))
        slots = np.maximum.accumulate(home[order] - steps) + steps
        table = np.zeros(numslots, dtype=pointer)
        if slots[-1] < numslots:
            table["hash"][slots] = found[order, 0]
            table["position"][slots] = found[order, 1]
        else:
            taken = [(0, 0)] * numslots
            for hashval, position in entries:
                slot = (hashval >> 8) % numslots
                while taken[slot] != (0, 0):
                    slot = (slot + 1) % numslots
                taken[slot] = (hashval, position)
            table["hash"] = [h for h, _ in taken]
            table["position"] = [p for _, p in taken]
        dbfile.write(table.tobytes())


def _block(fw: W3FieldWriter, ids: list[int], weights: Any, maxweight: float,
           values: list[bytes], minlength: int | None, maxlength: int, last: bool) -> bytes:
    """One posting block as `W3PostingsWriter._write_block` writes it."""
    fixedsize = fw._format.fixed_value_size()
    mini_ids = (ids[0], *[b - a for a, b in itertools.pairwise(ids)])
    if all(w == 1.0 for w in weights):
        mini_weights: Any = None
    elif all(w == weights[0] for w in weights):
        mini_weights = weights[0]
    else:
        mini_weights = tuple(weights)
    if fixedsize is None or fixedsize < 0:
        mini_values: Any = tuple(values)
    elif fixedsize == 0:
        mini_values = None
    else:
        mini_values = b"".join(values)
    data = dumps((mini_ids, mini_weights, mini_values), 2)
    # zlib costs more than it saves on a block this small (readers check per block).
    comp = fw._codec._compression if len(ids) >= COMPRESS_FROM else 0
    if comp:
        data = zlib.compress(data, comp)
    head = dumps((len(ids), ids[-1], maxweight, comp, length_to_byte(minlength),
                  length_to_byte(maxlength)), 2)
    size = len(head) + len(data)
    block: bytes = pack_int(-size if last else size) + head + data
    return block


def _emit_term(fw: W3FieldWriter, tbytes: bytes, docs: list[int], weights: list[Any],
               values: list[bytes] | None, lengths: list[int] | None) -> None:
    """Write one term's posting blocks and term info, byte for byte as Whoosh's
    `W3PostingsWriter` and `W3FieldWriter.finish_term` would for the same postings,
    in one write instead of a dozen per block.

    The one liberty: blocks of fewer than `COMPRESS_FROM` postings are not compressed
    (readers check each block's compression flag), since zlib costs more than it
    saves there.
    """
    limit = fw._codec._blocklimit
    postfile = fw._postfile
    start = postfile.tell()
    info = W3TermInfo()
    parts = [WHOOSH3_HEADER_MAGIC]
    n = len(docs)
    for at in range(0, n, limit):
        end = min(at + limit, n)
        ids = docs[at:end]
        block_weights = array("f", weights[at:end])
        maxweight = max(0, max(weights[at:end]))
        if lengths is not None:
            chunk = [x for x in lengths[at:end] if x]
            minlength, maxlength = (min(chunk), max(chunk)) if chunk else (None, 0)
        else:
            minlength, maxlength = None, 0
        # W3TermInfo.add_block
        info._weight += sum(block_weights)
        info._df += end - at
        info._minlength = minlength if info._minlength is None \
            else min(info._minlength, minlength)
        info._maxlength = max(info._maxlength, maxlength)
        info._maxweight = max(info._maxweight, maxweight)
        if info._minid is None:
            info._minid = ids[0]
        info._maxid = ids[-1]
        kept = [v for v in values[at:end] if v] if values is not None else []
        parts.append(_block(fw, ids, block_weights, maxweight, kept, minlength, maxlength,
                            end == n))
    postfile.write(b"".join(parts))
    info.set_extent(start, postfile.tell() - start)
    fw._tindex.add(pack_ushort(fw._fieldid) + tbytes, info.to_bytes())


# Stem tables ------------------------------------------------------------------

_STEMS_FILE = "stems-"
_STEMS_CHECKED = 32  # entries of a loaded table stemmed again before it is used
# A stem table file: this line, the pickled table's length and CRC-32, the pickled table.
_STEMS_MAGIC = b"searchapp stem table 2\n"
_STEMS_HEADER = struct.Struct("<QI")


class StemTable:
    """The stems earlier builds worked out (folded word → term, per chain and document
    language), read from the `stems-<part>.pickle` files in `folder` (`save_stems`
    writes them beside the index): a rebuild then calls the stemmer only for words
    it has not seen, each worker the same words otherwise (bench/RESULTS.md,
    "Rebuild speed, continued"). A file made by other analysis code (its
    fingerprint: nltk's Snowball source and version, searchapp.analysis's source,
    the Unicode tables) or by an older searchapp is passed over; one that cannot be
    read, is cut short or does not match its checksum (a damaged file: one flipped
    byte in a stem would otherwise be indexed, and saved again by every rebuild) is
    logged, counted and passed over; and each table is checked on a sample before
    use (`_entry_for`), against a stemmer that changed with no change to the
    fingerprint."""

    def __init__(self, folder: str | None) -> None:
        self.known: dict[str, dict[str, str]] = {}
        if not folder:
            return
        fingerprint = _stems_fingerprint()
        for path in sorted(glob.glob(os.path.join(glob.escape(folder),
                                                  f"{_STEMS_FILE}*.pickle"))):
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
                if not data.startswith(_STEMS_MAGIC) and data[:1] == b"\x80":
                    log.info("stem table %s was made by an older searchapp: not used", path)
                    continue
                found = pickle.loads(_stems_payload(data))
                if not isinstance(found, dict):
                    raise TypeError("not a stem table")
                if found.get("fingerprint") != fingerprint:
                    log.info("stem table %s was made by other analysis code: not used", path)
                    continue
                for key, stems in found["tables"].items():
                    self.known.setdefault(key, {}).update(stems)
            except Exception as exc:  # noqa: BLE001 (a damaged pickle raises many kinds)
                FALLBACKS.count("stem table discarded")
                log.warning("stem table %s cannot be read (%s: %s); not used (its words are"
                            " stemmed afresh)", path, exc.__class__.__name__, exc)


def _stems_payload(data: bytes) -> bytes:
    """The pickled table in a stem table file's bytes, once its length and checksum
    say it is whole (ValueError if not)."""
    start = len(_STEMS_MAGIC) + _STEMS_HEADER.size
    if not data.startswith(_STEMS_MAGIC) or len(data) < start:
        raise ValueError("not a stem table file")
    size, crc = _STEMS_HEADER.unpack_from(data, len(_STEMS_MAGIC))
    payload = data[start:]
    if len(payload) != size:
        raise ValueError(f"damaged: {len(payload):,} bytes of table where its header says"
                         f" {size:,}")
    if zlib.crc32(payload) != crc:
        raise ValueError("damaged: its contents do not match their checksum")
    return payload


@functools.cache
def _stems_fingerprint() -> str:
    import hashlib
    import unicodedata

    import nltk
    import nltk.stem.snowball

    from searchapp import analysis

    digest = hashlib.sha256()
    for module in (nltk.stem.snowball, analysis):
        with open(str(module.__file__), "rb") as fh:
            digest.update(fh.read())
    return f"1 {nltk.__version__} {unicodedata.unidata_version} {digest.hexdigest()}"


# Whole indexes ----------------------------------------------------------------


def create_index(path: str, schema: Schema) -> Index:
    return whoosh_index.create_in(path, schema)


def segments_of(path: str, schema: Schema) -> list[Any]:
    """The segments of the index at `path` (to move them into another one)."""
    ix = whoosh_index.open_dir(path, schema=schema)
    try:
        return index_segments(ix)
    finally:
        ix.close()


def index_segments(ix: Index) -> list[Any]:
    """The segments of `ix`'s latest table of contents (each with `segment_id()`,
    `doc_count()` live and `doc_count_all()` written)."""
    return list(ix._segments())


def segment_id(leaf: IndexReader) -> str | None:
    """The id of the segment a leaf reader reads (None: not a segment's reader)."""
    segment = getattr(leaf, "_segment", None)
    return None if segment is None else str(segment.segment_id())


def adopt_segments(ix: Index, found: list[Any]) -> None:
    """List segments whose files were moved into `ix`'s folder in a new table of contents."""
    writer = ix.writer()
    writer._close_segment()  # it writes no segment of its own, only the new TOC
    writer._commit_toc(list(writer.segments) + found)
    writer._finish()


def cancel(builder: SegmentBuilder) -> None:
    """Throw away what a builder has gathered but not committed."""
    builder._batch = []
    if builder._writer is not None:
        abandon(builder._writer)
        builder._writer = None


def abandon(writer: Any) -> None:
    """Give up a Whoosh writer that failed, whatever state it was left in: its files
    closed as far as they close (closing one flushes it, and on a full disk that fails
    again), its temporary folder removed and Whoosh's write lock released, so that the
    process can write to the index again. Its segment's files stay until
    `remove_unlisted`."""
    if writer.is_closed:
        return
    steps = [w.close for w in (writer.perdocwriter, writer.fieldwriter) if not w.is_closed]
    for step in [*steps, writer.pool.cleanup, writer._tempstorage.destroy]:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 (a failed writer fails in many ways)
            log.debug("abandoning an index writer: %s: %s", exc.__class__.__name__, exc)
    if writer.writelock:
        with contextlib.suppress(Exception):
            writer.writelock.release()
    writer.is_closed = True


def remove_unlisted(ix: Index) -> list[str]:
    """Remove from `ix`'s folder what its table of contents does not list, and say what:
    the files of a segment an update began but did not commit (a full disk, a crash,
    `kill -9`), a table of contents half written, a writer's temporary folder. The
    caller holds the index lock, so no other writer is at work; readers hold only
    segments a table of contents lists (Whoosh's own commit removes the files of
    segments it leaves out the same way)."""
    storage = ix.storage
    folder = getattr(storage, "folder", None)
    if folder is None:  # not on disk
        return []
    listed = {segment.segment_id() for segment in ix._segments()}
    name = ix.indexname
    segment_file = TOC._segment_pattern(name)
    toc_being_written = re.compile(rf"^_{re.escape(name)}_\d+\.toc\.")
    removed = []
    for entry in sorted(os.listdir(folder)):
        found = segment_file.match(entry)
        path = os.path.join(folder, entry)
        try:
            if entry == f"{name}.tmp" and os.path.isdir(path):
                shutil.rmtree(path)
            elif (found and found.group(1) not in listed) or toc_being_written.match(entry):
                os.remove(path)
            else:
                continue
        except FileNotFoundError:
            continue
        removed.append(entry)
    return removed


# Reading ----------------------------------------------------------------------

_LENGTHS = np.asarray([byte_to_length(b) for b in range(256)], dtype=np.int64)
_SEGMENT_FILE = re.compile(r"^[A-Za-z0-9_]+$")


def arrays_path(reader: IndexReader) -> tuple[str, int] | None:
    """Where a segment reader's arrays file would be, and its document count."""
    segment = getattr(reader, "_segment", None)
    storage = getattr(reader, "_storage", None)
    if isinstance(storage, OverlayStorage):  # a compound segment: (its file, the folder)
        storage = storage.b
    folder = getattr(storage, "folder", None)
    if segment is None or folder is None:
        return None
    segid = segment.segment_id()
    if not _SEGMENT_FILE.match(segid):
        return None
    return os.path.join(folder, arrays_name(segid)), int(segment.doc_count_all())


STORED_THROUGH_WHOOSH = "stored fields: a segment's column not read directly, read through Whoosh"


class StoredFields:
    """A document number → its stored fields, read from each segment's stored column
    directly: what `reader.stored_fields` answers (the fields the schema has).

    A document's value is `loads(decompress(bytes))`, its bytes read at the offset and
    length Whoosh's own column reader found when it opened the column: one `os.pread`
    on a descriptor of the column file kept for the purpose (a compound segment's
    column is already in memory: Whoosh's buffer is sliced), with no seek, nor Whoosh's
    three wrapped readers and its per-field generator: about half the time of reading a
    page's items. (A mapping would save another microsecond an item, but a column file
    cut short while it is mapped kills the process; a short read is an error the
    engine's health check then explains.) The format is Whoosh's: nothing about it
    changes.

    The columns are opened at the first read, as Whoosh opens them, so a damaged
    column is met by a search (which the engine's health check then explains) rather
    than by opening the snapshot. A column that is not a pickle column over
    (compressed) bytes in a file or in memory is read through Whoosh's reader, logged
    and counted (`STORED_THROUGH_WHOOSH`). `close` lets the descriptors go."""

    def __init__(self, leaves: list[tuple[int, W3PerDocReader]], names: frozenset[str]
                 ) -> None:
        self._starts = [start for start, _ in leaves]
        self._perdocs = [perdoc for _, perdoc in leaves]
        # Per segment: (a descriptor or a buffer, where the column starts, offsets,
        # lengths, compressed), or (None, Whoosh's read) for a column read through Whoosh.
        self._columns: list[tuple[Any, ...]] | None = None
        self._names = names
        self._open = True
        # The descriptors are closed by `close`, or when the reader is collected unclosed.
        self._descriptors: list[int] = []
        self._close = weakref.finalize(self, _close_all, self._descriptors)

    def __call__(self, doc: int) -> dict[str, Any]:
        if not self._open:
            raise ValueError("stored fields read after their snapshot was closed")
        columns = self._columns if self._columns is not None else self._opened()
        leaf = bisect.bisect_right(self._starts, doc) - 1
        source, *column = columns[leaf]
        doc -= self._starts[leaf]
        if source is None:
            found: dict[str, Any] = column[0](doc)
        else:
            base, offsets, lengths, compressed = column
            length = lengths[doc]
            if not length:
                return {}
            at = base + offsets[doc]
            if type(source) is int:
                value = os.pread(source, length, at)
                if len(value) != length:
                    raise OSError(f"a stored column is cut short: {len(value)} of {length}"
                                  f" bytes at {at}")
            else:
                value = source[at:at + length]
            if compressed:
                value = zlib.decompress(value)
            if not value:
                return {}
            found = pickle.loads(value)
        if self._names.issuperset(found):
            return found
        return {name: v for name, v in found.items() if name in self._names}

    def _opened(self) -> list[tuple[Any, ...]]:
        columns: list[tuple[Any, ...]] = []
        for perdoc in self._perdocs:
            pickled = perdoc._cached_reader("_stored", STORED_COLUMN)
            column: Any = getattr(pickled, "_child", None)  # a Whoosh column or None (untyped)
            source: Any = None
            if type(pickled) is PickleColumn.Reader and type(column) in (
                    CompressedBytesColumn.Reader, VarBytesColumn.Reader):
                dbfile = column._dbfile
                if isinstance(dbfile, BufferFile):  # in a compound segment, or in memory
                    source = dbfile._buf
                elif dbfile.is_real:
                    self._descriptors.append(os.dup(dbfile.fileno()))
                    source = self._descriptors[-1]
            if source is None:
                FALLBACKS.count(STORED_THROUGH_WHOOSH)
                log.warning("stored fields: a segment's stored column (%s over %s) is not read"
                            " directly; reading it through Whoosh's reader, about twice as"
                            " slow", type(pickled).__name__, type(column).__name__)
                columns.append((None, perdoc.stored_fields))
            else:
                columns.append((source, column._basepos, column._offsets,
                                column._lengths, type(column) is CompressedBytesColumn.Reader))
        self._columns = columns
        return columns

    def close(self) -> None:
        self._open = False
        self._close()


def _close_all(descriptors: list[int]) -> None:
    for fd in descriptors:
        os.close(fd)
    descriptors.clear()


def stored_reader(reader: IndexReader) -> StoredFields | None:
    """The direct reader of `reader`'s stored fields (`StoredFields`); None when a
    segment's reader is not the 2.7.4 codec's (the caller then reads through Whoosh's
    public API)."""
    leaves = reader.leaf_readers()
    perdocs = [getattr(leaf, "_perdoc", None) for leaf, _ in leaves]
    if not leaves or not all(isinstance(p, W3PerDocReader) for p in perdocs):
        return None
    return StoredFields([(start, perdoc) for (_, start), perdoc in zip(leaves, perdocs,
                                                                       strict=True)],
                        frozenset(reader.schema.names()))


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


def deleted(leaf: IndexReader) -> NDArray[np.int64]:
    """A segment's deleted document numbers."""
    perdoc = getattr(leaf, "_perdoc", None)
    if perdoc is not None and hasattr(perdoc, "deleted_docs"):
        found = perdoc.deleted_docs()
    else:
        found = [d for d in range(leaf.doc_count_all()) if leaf.is_deleted(d)]
    return np.asarray(sorted(found), dtype=np.int64)


def leaf_postings(leaf: IndexReader, fieldname: str, text: str | bytes
                  ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """A segment's live postings of a term, as arrays."""
    try:
        matcher = leaf.postings(fieldname, text)
    except TermNotFound:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    if isinstance(matcher, FilterMatcher):
        matcher = matcher.child
    ids, weights = read_postings(matcher)
    if leaf.has_deletions():
        keep = ~np.isin(ids, deleted(leaf))
        ids, weights = ids[keep], weights[keep]
    return ids, weights


def leaf_lengths(leaf: IndexReader, fieldname: str, n: int) -> NDArray[np.int64]:
    """A segment's document lengths in a field: its one-byte length column, decoded."""
    schema = getattr(leaf, "schema", None)
    if schema is not None and fieldname in schema and not schema[fieldname].scorable:
        # No lengths are kept for it (the language or organisation of an item): every
        # document's is 0, as Whoosh answers each one, without asking 100,000 times.
        return np.zeros(n, dtype=np.int64)
    column = None
    perdoc = getattr(leaf, "_perdoc", None)
    if isinstance(perdoc, W3PerDocReader):
        column = perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    if not isinstance(column, NumericColumn.Reader) or column._fixedlen != 1:
        FALLBACKS.count("field lengths read document by document")
        log.warning("field %r: no one-byte length column in a segment; its %d lengths are"
                    " read document by document, slowly", fieldname, n)
        return np.fromiter((leaf.doc_field_length(d, fieldname, 0) or 0 for d in range(n)),
                           dtype=np.int64, count=n)
    codes = np.zeros(n, dtype=np.uint8)
    count = min(column._count, n)
    if count:
        codes[:count] = np.frombuffer(column._dbfile.get(column._basepos, count), dtype=np.uint8)
    return _LENGTHS[codes]


def leaf_positions(leaf: IndexReader, fieldname: str, word: str, local: NDArray[np.int64],
                   offset: int, decode: Any) -> list[int] | None:
    """(document << 32 | position) keys of `word` in some (sorted, segment-local)
    documents, read block by block; None when the postings are not Whoosh 3 blocks."""
    keys: list[int] = []
    try:
        m = leaf.postings(fieldname, word)
    except TermNotFound:
        return keys
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
    return keys


# Checking ---------------------------------------------------------------------

# The files a Whoosh 3 segment must have (terms, postings, stored fields), unless it is
# one compound file (`.seg`), as segments Whoosh writes itself are.
_SEGMENT_FILES = (".trm", ".pst", "._stored.col")


def segment_files(ix: Index) -> tuple[str, list[str]] | None:
    """The folder of an on-disk index and the ids of its segments (from its table of
    contents, without opening them); None for an index not in a folder."""
    folder = getattr(ix.storage, "folder", None)
    if folder is None:
        return None
    return folder, [segment.segment_id() for segment in ix._segments()]


def missing_files(folder: str, segid: str, present: set[str]) -> list[str]:
    """The files a segment must have that are missing or unreadable, for people
    (`present`: the names in `folder` that start with the segment's id and a dot)."""
    wanted = [f"{segid}.seg"] if f"{segid}.seg" in present else \
        [f"{segid}{ext}" for ext in _SEGMENT_FILES]
    problems = [f"{name} is missing" for name in wanted if name not in present]
    for name in sorted(present):
        try:
            with open(os.path.join(folder, name), "rb") as fh:
                fh.read(1)
        except OSError as exc:
            problems.append(f"{name} cannot be read ({exc.strerror or exc})")
    return problems


def check_segment(leaf: IndexReader) -> list[str]:
    """Read from one open segment what a search needs: a stored document at each end, and
    the first postings of every indexed field. What failed, for people."""
    segment = getattr(leaf, "_segment", None)
    segid = segment.segment_id() if segment is not None else "?"
    problems: list[str] = []
    n = int(leaf.doc_count_all())
    for doc in sorted({0, n - 1}) if n else ():
        try:
            leaf.stored_fields(doc)
        except Exception as exc:  # noqa: BLE001 (Whoosh raises many kinds on damaged files)
            problems.append(f"segment {segid}: stored fields of document {doc} cannot be read"
                            f" ({exc.__class__.__name__}: {exc})")
            break
    for fieldname in leaf.indexed_field_names():
        try:
            for term in itertools.islice(leaf.lexicon(fieldname), 1):
                matcher = leaf.postings(fieldname, term)
                if matcher.is_active():
                    matcher.id()
                    matcher.weight()
        except Exception as exc:  # noqa: BLE001 (as above)
            problems.append(f"segment {segid}: the terms or postings of field {fieldname}"
                            f" cannot be read ({exc.__class__.__name__}: {exc})")
    return problems
