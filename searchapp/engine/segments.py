"""Whoosh's private parts, in one module: the whole-segment writer and the block readers.

Everything here leans on Whoosh 2.7.4's internals (its codec's block format,
its writers' and readers' underscored attributes); nothing else in searchapp
does. Pinning Whoosh to 2.7.4 (pyproject.toml) is what keeps it true, and
tests/test_segments.py compares what this writes with what Whoosh writes.

Writing: a full rebuild knows every document up front, so it does not need
Whoosh's general-purpose writer, which sends each posting through a generator
chain, an external sort and a per-posting encoder, all in Python.
`SegmentBuilder` analyses each text once with the compiled analysis chain
(`searchapp.analysis.compile`), gathers the postings of each term in lists as
the documents arrive (they come in document order, so nothing needs sorting
but the vocabulary), and writes them with Whoosh's codec a term at a time.
Stored fields go through Whoosh's per-document writer, columns and field
lengths through its column writers. The segment is the one Whoosh's writer
would write for the same documents. Its files are kept separate rather than
joined into a compound file, which Whoosh would copy into each reader's
memory. Beside each segment goes its posting arrays file
(`searchapp.engine.arrayfile`).

Reading: a segment's postings block by block as arrays (`read_postings`),
its deletions, its one-byte field lengths, and the path of its arrays file,
for the arrays path (`searchapp.engine.arrays`).
"""

from __future__ import annotations

import bisect
import itertools
import logging
import os
import re
import zlib
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from whoosh import index as whoosh_index
from whoosh.analysis.tokenizers import IDTokenizer
from whoosh.codec.whoosh3 import (
    LENGTHS_COLUMN,
    WHOOSH3_HEADER_MAGIC,
    W3FieldWriter,
    W3LeafMatcher,
    W3PerDocReader,
    W3TermInfo,
    _lenfield,
)
from whoosh.columns import NumericColumn
from whoosh.compat import dumps
from whoosh.fields import FieldType, Schema
from whoosh.filedb import filetables
from whoosh.filedb.filestore import OverlayStorage
from whoosh.formats import Existence, Positions
from whoosh.index import Index
from whoosh.matching import Matcher
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import IndexReader, TermNotFound
from whoosh.system import _INT_SIZE as _UINT_SIZE
from whoosh.system import pack_int, pack_long, pack_uint, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import SegmentWriter

from searchapp.analysis import Analysed, Chain, Multilingual, chain_for
from searchapp.engine.arrayfile import arrays_name, write_arrays
from searchapp.engine.base import FALLBACKS

log = logging.getLogger(__name__)

# One segment holds at most this many postings (a new one is started after).
SEGMENT_POSTINGS = 4_000_000
# A segment's terms are pickled into blocks about this many postings at a time.
WRITE_CHUNK = 1 << 17


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


class _Flat:
    """One field's postings while a segment is gathered, 12 bytes a row rather than
    Python objects: a row per token (its term's number and its position; 0 in fields
    without positions), and per document that has rows, its number and row count.
    Rows come in document order and, within a document, in position order."""

    __slots__ = ("counts", "docs", "positions", "terms", "vocab")

    def __init__(self) -> None:
        self.vocab = _Vocab()
        self.terms = array("i")
        self.positions = array("i")
        self.docs = array("i")
        self.counts = array("i")

    def sorted_rows(self, base: int) -> tuple[list[str], Any, Any, Any]:
        """(the terms in written order, then per row in (term, document, position)
        order: the term's rank in that order, the segment-local document, the position)."""
        texts = list(self.vocab)
        ranked = sorted(range(len(texts)), key=texts.__getitem__)
        rank = np.empty(len(texts), dtype=np.int32)
        rank[np.asarray(ranked, dtype=np.int64)] = np.arange(len(texts), dtype=np.int32)
        keys = rank[np.frombuffer(self.terms, dtype=np.int32)]
        order = np.argsort(keys, kind="stable")  # rows were in (document, position) order
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


class SegmentBuilder:
    """Writes documents into new segments of `ix` (a fresh index, or one to append to)."""

    def __init__(self, ix: Index, *, segment_postings: int = SEGMENT_POSTINGS) -> None:
        self.ix = ix
        self.schema = ix.schema
        self.segment_postings = segment_postings
        # Each text field's analysis, per document language (searchapp.analysis): one
        # set of stem caches per chain, for as long as this builder writes.
        self._analysers: dict[str, Callable[[str, str], Analysed]] = {}
        by_chain: dict[Any, Callable[[str, str], Analysed]] = {}
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
                    if key not in by_chain:
                        by_chain[key] = _per_language(chain)
                    self._analysers[name] = by_chain[key]
        self._spell_names = {name: self.schema[name].spelling_fieldname(name)
                             for name in self.schema.names()
                             if self.schema[name].separate_spelling()}
        # Fields gathered flat (`_Flat`): the compiled chains' and the plain ID fields'.
        self._flat_names = set(self._analysers) | {
            name for name in self.schema.names()
            if self.schema[name].indexed and type(self.schema[name].analyzer) is IDTokenizer
            and type(self.schema[name].format) is Existence}
        self._encoded: dict[int, bytes] = {}
        self.documents = 0
        self._writer: SegmentWriter | None = None

    # Documents ----------------------------------------------------------

    def _start(self) -> None:
        # Separate files, not a compound one: readers map them rather than copy them
        # into memory, so every serving process shares them through the page cache.
        self._writer = self.ix.writer(compound=False)
        # Keyed by text: str order is UTF-8 byte order, the order Whoosh writes terms in.
        self._terms: dict[str, defaultdict[str, list[Any]]] = {}
        self._flat: dict[str, _Flat] = {name: _Flat() for name in self._flat_names}
        self._spelling: dict[str, Counter[str]] = {}
        self._lengths: dict[str, list[int]] = {}
        self._columns: defaultdict[str, list[tuple[int, Any]]] = defaultdict(list)
        self._pending = 0
        self._order: dict[frozenset[str], list[tuple[str, FieldType]]] = {}
        for spelled in self._spell_names.values():
            self._spelling[spelled] = Counter()

    def add(self, fields: Mapping[str, Any]) -> None:
        """Add one document (the keyword arguments `add_document` would take)."""
        if self._writer is None:
            self._start()
        writer = self._writer
        assert writer is not None
        docnum = writer.docnum
        perdoc = writer.perdocwriter
        key = frozenset(fields)
        order = self._order.get(key)
        if order is None:
            names = sorted(n for n in fields if not n.startswith("_"))
            writer._check_fields(self.schema, names)
            order = self._order[key] = [(n, self.schema[n]) for n in names]
        perdoc.start_doc(docnum)
        stored = perdoc._storedfields
        columns = self._columns
        language = fields.get("language") or "en"
        for name, field in order:
            value = fields[name]
            if value is None:
                continue
            if field.indexed:
                self._index(name, field, value, docnum, language)
            if field.stored:
                stored[name] = value
            if field.column_type:
                columns[name].append((docnum, field.to_column_value(value)))
        perdoc.finish_doc()
        writer._added = True
        writer.docnum += 1
        self.documents += 1
        if self._pending >= self.segment_postings:
            self.commit()

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

    def _index(self, name: str, field: FieldType, value: Any, docnum: int,
               language: str = "en") -> int:
        """Gather one field's postings (text analysed in the document's language);
        returns its length (for scorable fields)."""
        analyse = self._analysers.get(name)
        if analyse is not None and isinstance(value, str):
            stems, first, words, extra = analyse(value, language)
            flat = self._flat[name]
            n = len(stems)
            if not extra:
                flat.terms.extend(map(flat.vocab.__getitem__, stems))
                flat.positions.extend(range(first, first + n))
                rows = n
            else:  # a second term at some words' positions: rows in position order
                vocab = flat.vocab
                placed = sorted([*zip(range(first, first + n), map(vocab.__getitem__, stems)),
                                 *((pos, vocab[s]) for s, pos in extra)])
                flat.terms.extend(t for _, t in placed)
                flat.positions.extend(p for p, _ in placed)
                rows = len(placed)
            if rows:
                flat.docs.append(docnum)
                flat.counts.append(rows)
                self._pending += rows
            length = n + len(extra)  # as Whoosh counts every token
            self._set_length(name, docnum, length)
            if name in self._spell_names:
                self._spelling[self._spell_names[name]].update(set(words))
            return length
        if name in self._flat_names and analyse is None and isinstance(value, str):
            flat = self._flat[name]
            flat.terms.append(flat.vocab[value])
            flat.positions.append(0)
            flat.docs.append(docnum)
            flat.counts.append(1)
            self._pending += 1
            return 0
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
        if not field.scorable:
            length = 0
        else:
            self._set_length(name, docnum, length)
        if name in self._spell_names:
            self._spelling[self._spell_names[name]].update(field.spellable_words(value))
        return length

    def _set_length(self, name: str, docnum: int, length: int) -> None:
        lengths = self._lengths.setdefault(name, [])
        if len(lengths) < docnum:
            lengths.extend([0] * (docnum - len(lengths)))
        lengths.append(length)

    # Writing ------------------------------------------------------------

    def commit(self) -> None:
        """Write what has been added as one segment and make it part of the index."""
        writer = self._writer
        if writer is None:
            return
        self._writer = None
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
        fieldwriter.close()
        writer.pool.cleanup()
        writer._assemble_segment()
        segment = writer.get_segment()
        write_arrays(getattr(writer.storage, "folder", None), segment.segment_id(),
                     segment.doc_count_all(), arrays)
        writer._commit_toc(list(writer.segments) + [segment])
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
            coded = np.asarray([byte_to_length(c) if c else 0 for c in map(length_to_byte, raw)]
                               + [0] * max(0, int(ids.max()) + 1 - len(raw)), dtype=np.int64)
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
        postfile = fw._postfile
        offset = postfile.tell()
        pending: list[bytes] = []
        pending_size = 0
        prefix = pack_ushort(fw._fieldid)
        magic = WHOOSH3_HEADER_MAGIC
        keys: list[bytes] = []
        infos: list[bytes] = []
        # Terms a chunk of about WRITE_CHUNK postings at a time: the Python lists the
        # pickling needs stay small whatever the segment's size.
        nterms = len(term_texts)
        edges = np.unique(np.concatenate((
            [0], np.searchsorted(term_starts, np.arange(WRITE_CHUNK, n, WRITE_CHUNK)),
            [nterms]))).tolist()
        for t0, t1 in itertools.pairwise(edges):
            p0, p1 = int(term_starts[t0]), int(term_ends[t1 - 1])
            b0, b1 = int(term_blocks[t0]), int(term_blocks[t1])
            id_list = ids[p0:p1].tolist()
            delta_list = deltas[p0:p1].tolist()
            w_list = weights32[p0:p1].tolist()
            values: list[bytes] = self._values(field, freqs[p0:p1], places,
                                               first_rows[p0:p1]) if positional else []
            bstart = (block_starts[b0:b1] - p0).tolist()
            bend = (block_ends[b0:b1] - p0).tolist()
            bsum, bmax = block_sum[b0:b1].tolist(), block_max[b0:b1].tolist()
            blow, bhigh = block_low[b0:b1].tolist(), block_high[b0:b1].tolist()
            min_list: list[int | None] = [None if v == big else v
                                          for v in block_minlen[b0:b1].tolist()]
            max_list: list[int] = block_maxlen[b0:b1].tolist()
            tblocks = (term_blocks[t0:t1 + 1] - b0).tolist()
            for t in range(t1 - t0):
                text = term_texts[t0 + t]
                start = offset
                pending.append(magic)
                offset += len(magic)
                weight_sum = 0.0
                term_min: int | None = None
                term_max = 0
                term_weight = 0.0
                last_block = tblocks[t + 1] - 1
                for b in range(tblocks[t], last_block + 1):
                    at, end = bstart[b], bend[b]
                    low, high = blow[b], bhigh[b]
                    if low == high == 1.0:
                        mini_weights: Any = None
                    elif low == high:
                        mini_weights = w_list[at]
                    else:
                        mini_weights = tuple(w_list[at:end])
                    if fixedsize is None or fixedsize < 0:
                        mini_values: Any = tuple(values[at:end])
                    elif fixedsize == 0:
                        mini_values = None
                    else:
                        mini_values = b"".join(values[at:end])
                    data = dumps((tuple(delta_list[at:end]), mini_weights, mini_values), 2)
                    count = end - at
                    # zlib costs more than it saves on a block this small (as in `_block`).
                    comp = compression if count >= 4 else 0
                    if comp:
                        data = zlib.compress(data, comp)
                    minlength, maxlength, maxweight = min_list[b], max_list[b], float(bmax[b])
                    head = dumps((count, id_list[end - 1], maxweight, comp,
                                  length_to_byte(minlength), length_to_byte(maxlength)), 2)
                    size = len(head) + len(data)
                    pending.append(pack_int(-size if b == last_block else size))
                    pending.append(head)
                    pending.append(data)
                    offset += _UINT_SIZE + size
                    # W3TermInfo.add_block
                    weight_sum += bsum[b]
                    if minlength is not None:
                        term_min = minlength if term_min is None else min(term_min, minlength)
                    term_max = max(term_max, maxlength)
                    term_weight = max(term_weight, maxweight)
                first = bstart[tblocks[t]]
                keys.append(prefix + text.encode("utf-8"))
                infos.append(_terminfo(weight_sum, bend[last_block] - first, term_min, term_max,
                                       term_weight, id_list[first], id_list[bend[last_block] - 1],
                                       start, offset - start))
                pending_size += offset - start
                if pending_size >= 1 << 20:
                    postfile.write(b"".join(pending))
                    pending.clear()
                    pending_size = 0
            _add_terms(fw, keys, infos)
            keys.clear()
            infos.clear()
        if pending:
            postfile.write(b"".join(pending))
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
        for p in np.unique(firsts[singles]).tolist():
            v = encoded.get(p)
            if v is None:
                v = encoded[p] = encode([p])
            table[p] = v
        values = np.empty(len(first_rows), dtype=object)
        values[singles] = table[firsts[singles]]
        place_list = None
        for k in np.flatnonzero(~singles).tolist():
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
        """One posting (document 0, weight 1) per document a word is in, as Whoosh writes."""
        fw.start_field(name, field)
        prefix = pack_ushort(fw._fieldid)
        keys: list[bytes] = []
        infos: list[bytes] = []
        for word in sorted(words):
            keys.append(prefix + word.encode("utf-8"))
            infos.append(_emit_zeros(fw, words[word]))
        _add_terms(fw, keys, infos)
        fw.finish_field()


_TERMINFO = W3TermInfo._struct.pack


def _terminfo(weight: float, df: int, minlength: int | None, maxlength: int,
              maxweight: float, minid: int, maxid: int, offset: int, length: int) -> bytes:
    """`W3TermInfo.to_bytes` of a term whose postings are in the postings file."""
    return (_TERMINFO(False, weight, df, 0 if minlength is None else length_to_byte(minlength),
                      length_to_byte(maxlength), maxweight, minid, maxid)
            + pack_long(offset) + pack_int(length))


def _add_terms(fw: W3FieldWriter, keys: list[bytes], infos: list[bytes]) -> None:
    """`OrderedHashWriter.add` of many keys (in increasing order) in one write."""
    if not keys:
        return
    tindex = fw._tindex
    if keys[0] <= tindex.lastkey:  # as OrderedHashWriter.add checks
        raise ValueError(f"Keys must increase: {tindex.lastkey!r}..{keys[0]!r}")
    dbfile = tindex.dbfile
    pos = dbfile.tell()
    at = tindex.index.append
    buckets = tindex.buckets
    hashfn = tindex.hashfn
    lengths = filetables._lengths.pack
    records = []
    for key, info in zip(keys, infos, strict=True):
        at(pos)
        h = hashfn(key)
        buckets[h & 255].append((h, pos))
        record = lengths(len(key), len(info)) + key + info
        records.append(record)
        pos += len(record)
    dbfile.write(b"".join(records))
    tindex.lastkey = keys[-1]


_ZERO_BLOCKS: dict[tuple[int, int, int, bool], bytes] = {}  # (size, value size, zlib, last)


def _emit_zeros(fw: W3FieldWriter, n: int) -> bytes:
    """`_emit_term` for n postings of document 0 with weight 1 and no value or length
    (a spelling word): the blocks are all alike, so each kind is made once. Returns
    the term's info, for the term index."""
    limit = fw._codec._blocklimit
    postfile = fw._postfile
    start = postfile.tell()
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
    data = b"".join(parts)
    postfile.write(data)
    return _terminfo(float(n), n, None, 0, 1, 0, 0, start, len(data))


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
    comp = fw._codec._compression if len(ids) >= 4 else 0
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

    The one liberty: blocks of fewer than 4 postings are not compressed (readers
    check each block's compression flag), since zlib costs more than it saves there.
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


def _per_language(chain: Chain | Multilingual) -> Callable[[str, str], Analysed]:
    """A compiled chain as (text, language) → its analysis."""
    if isinstance(chain, Multilingual):
        return chain.analyser()
    single = chain.analyser()

    def analyse(text: str, language: str) -> Analysed:
        stems, first, words = single(text)
        return stems, first, words, []

    return analyse


# Whole indexes ----------------------------------------------------------------


def create_index(path: str, schema: Schema) -> Index:
    return whoosh_index.create_in(path, schema)


def segments_of(path: str, schema: Schema) -> list[Any]:
    """The segments of the index at `path` (to move them into another one)."""
    ix = whoosh_index.open_dir(path, schema=schema)
    try:
        return list(ix._segments())
    finally:
        ix.close()


def adopt_segments(ix: Index, found: list[Any]) -> None:
    """List segments whose files were moved into `ix`'s folder in a new table of contents."""
    writer = ix.writer()
    writer._close_segment()  # it writes no segment of its own, only the new TOC
    writer._commit_toc(list(writer.segments) + found)
    writer._finish()


def cancel(builder: SegmentBuilder) -> None:
    """Throw away what a builder has gathered but not committed."""
    if builder._writer is not None:
        builder._writer.cancel()
        builder._writer = None


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


def stored_reader(reader: IndexReader) -> Callable[[int], dict[str, Any]] | None:
    """A document number → its stored fields, read from each segment's stored column
    directly: what `reader.stored_fields` answers (the fields the schema has), without
    Whoosh's per-field generator and its copies (about half the time of loading a
    page's items). None when a segment's reader is not the 2.7.4 codec's (the caller
    then reads through Whoosh's public API)."""
    leaves = reader.leaf_readers()
    perdocs = [getattr(leaf, "_perdoc", None) for leaf, _ in leaves]
    if not leaves or not all(isinstance(p, W3PerDocReader) for p in perdocs):
        return None
    starts = [offset for _, offset in leaves]
    reads = [p.stored_fields for p in perdocs]  # type: ignore[union-attr]
    names = frozenset(reader.schema.names())
    where = bisect.bisect_right

    def stored(doc: int) -> dict[str, Any]:
        leaf = where(starts, doc) - 1
        return {name: value for name, value in reads[leaf](doc - starts[leaf]).items()
                if name in names}

    return stored


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
