"""Writing whole Whoosh segments at once, and posting arrays beside them.

A full rebuild knows every document up front, so it does not need Whoosh's
general-purpose writer, which sends each posting through a generator chain,
an external sort and a per-posting encoder, all in Python. `SegmentBuilder`
analyses each text once, gathers the postings of each term in lists as the
documents arrive (they come in document order, so nothing needs sorting but
the vocabulary), and writes them with Whoosh's codec a term at a time. Stored
fields go through Whoosh's per-document writer, columns and field lengths
through its column writers. The segment is the one Whoosh's writer would
write for the same documents: same terms, postings, weights, positions,
lengths, stored fields and columns (tests/test_segments.py compares them).
Its files are kept separate rather than joined into a compound file, which
Whoosh would copy into each reader's memory. `build` can spread the work over
several processes, each writing segments of its own.

Beside each segment it writes ``MAIN_<segment>.arrays``: every indexed
field's posting lists (documents, weights, frequencies and positions) as flat
numpy arrays. `searchapp.postings` maps that file into memory to answer
queries without decoding Whoosh's pickled blocks; the name follows Whoosh's
segment file pattern, so Whoosh deletes the file when it merges the segment
away. Segments written by Whoosh itself (incremental imports) have no arrays
file and are read block by block instead.
"""

from __future__ import annotations

import itertools
import json
import mmap
import os
import pickle
import queue
import re
import shutil
import subprocess
import sys
import threading
import zlib
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from whoosh import index as whoosh_index
from whoosh.analysis import (
    CharsetFilter,
    CompositeAnalyzer,
    LowercaseFilter,
    RegexTokenizer,
    StopFilter,
)
from whoosh.analysis.tokenizers import IDTokenizer
from whoosh.codec.whoosh3 import (
    LENGTHS_COLUMN,
    WHOOSH3_HEADER_MAGIC,
    W3FieldWriter,
    W3TermInfo,
    _lenfield,
)
from whoosh.compat import dumps
from whoosh.fields import FieldType
from whoosh.filedb.filestore import OverlayStorage
from whoosh.formats import Existence, Positions
from whoosh.index import Index
from whoosh.system import _INT_SIZE as _UINT_SIZE
from whoosh.system import pack_int, pack_uint, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import SegmentWriter

from searchapp.analysis import SnowballStemFilter
from searchapp.errors import IndexUnavailable

ARRAYS_EXT = "arrays"
_MAGIC = b"SAPOSTS2"  # the format's version: files of other versions are not read
# One segment holds at most this many postings (a new one is started after).
SEGMENT_POSTINGS = 40_000_000

# What the fast path needs from an analyzer: text → (terms, first position, words).
Analyse = Callable[[str], tuple[list[str], int, list[str]]]


def fast_analyser(analyzer: Any) -> Analyse | None:
    """The analyzer as one function, when it is exactly the chain this knows.

    Returns the stems of the kept tokens, the position of the first kept one
    (Whoosh's StopFilter numbers kept tokens from there on), and the kept
    words before stemming (the spelling words). None for any other chain, in
    which case the builder uses the analyzer itself.
    """
    if type(analyzer) is not CompositeAnalyzer:
        return None
    items = list(analyzer.items)
    kinds = [type(i) for i in items]
    if kinds != [RegexTokenizer, LowercaseFilter, CharsetFilter, StopFilter,
                 SnowballStemFilter]:
        return None
    tokenizer, _, charset, stop, stemmer = items
    if tokenizer.gaps or tokenizer.expression.groups or not stop.renumber:
        return None
    findall = tokenizer.expression.findall
    charmap = charset.charmap
    stops, low, high = stop.stops, stop.min, stop.max
    stem = stemmer.stem
    ascii_lower = "".join(chr(c) for c in range(128)).lower()
    ascii_kept = ascii_lower.translate(charmap) == ascii_lower  # folding only touches the rest
    plain_stops = low <= 1 and high is None  # tokens are never empty

    class Stems(dict[str, str]):
        def __missing__(self, word: str) -> str:
            found: str = stem(word)
            self[word] = found
            return found

    stems = Stems()

    def analyse(text: str) -> tuple[list[str], int, list[str]]:
        words = [w.lower() for w in findall(text)]
        if not (ascii_kept and text.isascii()):
            words = [w.translate(charmap) for w in words]
        if plain_stops:
            kept = [i for i, w in enumerate(words) if w not in stops]
        else:
            kept = [i for i, w in enumerate(words)
                    if len(w) >= low and (high is None or len(w) <= high) and w not in stops]
        if not kept:
            return [], 0, []
        surface = [words[i] for i in kept] if len(kept) < len(words) else words
        return [stems[w] for w in surface], kept[0], surface

    return analyse


# While a segment is gathered, each term has a list of postings in document order,
# each one an int, (document << _SHIFT) | position, when it has one position below
# 2 ** _SHIFT (nearly all of them; in fields without positions, the position is 0),
# else (document, positions) or, from Whoosh's own analysis, (document, frequency,
# value bytes, weight, positions or None).
_SHIFT = 16
_LOW = (1 << _SHIFT) - 1


class SegmentBuilder:
    """Writes documents into new segments of `ix` (a fresh index, or one to append to)."""

    def __init__(self, ix: Index, *, segment_postings: int = SEGMENT_POSTINGS) -> None:
        self.ix = ix
        self.schema = ix.schema
        self.segment_postings = segment_postings
        self._analysers: dict[str, Analyse | None] = {}
        for name in self.schema.names():
            field = self.schema[name]
            if field.indexed and isinstance(field.format, Positions):
                self._analysers[name] = fast_analyser(field.analyzer)
        self._spell_names = {name: self.schema[name].spelling_fieldname(name)
                             for name in self.schema.names()
                             if self.schema[name].separate_spelling()}
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
        for name, field in order:
            value = fields[name]
            if value is None:
                continue
            if field.indexed:
                self._index(name, field, value, docnum)
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

    def _index(self, name: str, field: FieldType, value: Any, docnum: int) -> int:
        """Gather one field's postings; returns its length (for scorable fields)."""
        terms = self._terms.get(name)
        if terms is None:
            terms = self._terms[name] = defaultdict(list)
        analyse = self._analysers.get(name)
        if analyse is not None and isinstance(value, str):
            stems, first, words = analyse(value)
            base = docnum << _SHIFT
            if len(set(stems)) == len(stems) and first + len(stems) <= _LOW:
                for pos, s in enumerate(stems, first):
                    terms[s].append(base | pos)
                self._pending += len(stems)
            else:
                places: defaultdict[str, list[int]] = defaultdict(list)
                for pos, s in enumerate(stems, first):
                    places[s].append(pos)
                for s, poslist in places.items():
                    if len(poslist) == 1 and poslist[0] <= _LOW:
                        terms[s].append(base | poslist[0])
                    else:
                        terms[s].append((docnum, poslist))
                self._pending += len(places)
            length = len(stems)
            self._set_length(name, docnum, length)
            if name in self._spell_names:
                self._spelling[self._spell_names[name]].update(set(words))
            return length
        if type(field.analyzer) is IDTokenizer and type(field.format) is Existence \
                and isinstance(value, str):
            terms[value].append(docnum << _SHIFT)
            self._pending += 1
            return 0
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
        names = sorted(set(self._terms) | set(self._spelling))
        for name in names:
            field = self.schema[name]
            if name in self._spelling:
                self._write_spelling(fieldwriter, name, field, self._spelling[name])
            else:
                arrays[name] = self._write_field(fieldwriter, name, field, self._terms[name],
                                                 base)
        fieldwriter.close()
        writer.pool.cleanup()
        writer._assemble_segment()
        segment = writer.get_segment()
        _write_arrays(writer.storage, segment.segment_id(), segment.doc_count_all(), arrays)
        writer._commit_toc(list(writer.segments) + [segment])
        writer._finish()

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
        for word in sorted(words):
            _emit_zeros(fw, word.encode("utf-8"), words[word])
        fw.finish_field()


_ZERO_BLOCKS: dict[tuple[int, int, int, bool], bytes] = {}  # (size, value size, zlib, last)


def _emit_zeros(fw: W3FieldWriter, tbytes: bytes, n: int) -> None:
    """`_emit_term` for n postings of document 0 with weight 1 and no value or length
    (a spelling word): the blocks are all alike, so each kind is made once."""
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
    postfile.write(b"".join(parts))
    info = W3TermInfo()
    info._weight = float(n)
    info._df = n
    info._maxweight = 1
    info._minid, info._maxid = 0, 0
    info.set_extent(start, postfile.tell() - start)
    fw._tindex.add(pack_ushort(fw._fieldid) + tbytes, info.to_bytes())


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


# The arrays file ------------------------------------------------------------


def arrays_name(segment_id: str) -> str:
    return f"{segment_id}.{ARRAYS_EXT}"


def _write_arrays(storage: Any, segment_id: str, doccount: int,
                  fields: Mapping[str, Mapping[str, Any]]) -> None:
    """One file: magic, header length, a JSON header, then 64-byte aligned arrays."""
    header: dict[str, Any] = {"doccount": doccount, "fields": {}}
    blobs: list[NDArray[Any]] = []
    offset = 0
    for name, parts in fields.items():
        if not parts:
            continue
        entry: dict[str, Any] = {"terms": parts["terms"], "arrays": {}}
        for key, value in parts.items():
            if key == "terms":
                continue
            arr = np.ascontiguousarray(value)
            offset = -(-offset // 64) * 64
            entry["arrays"][key] = [arr.dtype.str, offset, int(arr.size)]
            blobs.append(arr)
            offset += arr.nbytes
        header["fields"][name] = entry
    head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    start = -(-(len(_MAGIC) + 8 + len(head)) // 64) * 64
    folder = getattr(storage, "folder", None)
    if folder is None:  # not on disk (a RAM index): nothing to map
        return
    path = os.path.join(folder, arrays_name(segment_id))
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(_MAGIC)
        fh.write(len(head).to_bytes(8, "little"))
        fh.write(head)
        fh.write(b"\0" * (start - fh.tell()))
        written = 0
        for name, parts in header["fields"].items():
            for key, (_, at, _) in parts["arrays"].items():
                arr = blobs.pop(0)
                fh.write(b"\0" * (at - written))
                fh.write(arr.tobytes())
                written = at + arr.nbytes
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class FieldArrays:
    """One field's posting lists in one segment, as flat arrays."""

    terms: dict[str, int]  # term → its number (rows of `starts`)
    starts: NDArray[np.int64]  # postings of term t: [starts[t], starts[t + 1])
    ids: NDArray[np.int32]  # segment-local document numbers
    weights: NDArray[np.float32]  # as stored in the postings (frequency x field boost)
    freqs: NDArray[np.int32] | None  # positions per posting (fields with positions)
    positions: NDArray[np.int32] | None  # every posting's positions, in posting order
    position_starts: NDArray[np.int64] | None  # per term, into `positions`

    def postings(self, text: str) -> tuple[NDArray[np.int32], NDArray[np.float32]] | None:
        t = self.terms.get(text)
        if t is None:
            return None
        a, b = int(self.starts[t]), int(self.starts[t + 1])
        return self.ids[a:b], self.weights[a:b]

    def keys(self, text: str, docs: NDArray[np.int64]) -> NDArray[np.int64] | None:
        """(document << 32 | position) for each occurrence of the term in the given
        (sorted, segment-local) documents, sorted; None when the term is absent."""
        t = self.terms.get(text)
        if t is None or self.freqs is None or self.positions is None \
                or self.position_starts is None:
            return None
        a, b = int(self.starts[t]), int(self.starts[t + 1])
        ids = self.ids[a:b]
        at = np.searchsorted(ids, docs)
        at = at[at < len(ids)]
        chosen = at[ids[at] == docs[:len(at)]] if len(at) else at
        if not len(chosen):
            return np.empty(0, dtype=np.int64)
        freqs = self.freqs[a:b].astype(np.int64)
        before = np.cumsum(freqs) - freqs  # where each posting's positions start
        counts = freqs[chosen]
        starts = before[chosen] + int(self.position_starts[t])
        # Every position index of the chosen postings, in order.
        steps = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        where = np.repeat(starts, counts) + steps
        owners = np.repeat(ids[chosen].astype(np.int64), counts)
        keys: NDArray[np.int64] = (owners << 32) | self.positions[where].astype(np.int64)
        return keys


class SegmentArrays:
    """The arrays file of one segment, mapped read-only."""

    def __init__(self, path: str, doccount: int) -> None:
        with open(path, "rb") as fh:
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        buf = self._map
        if buf[:len(_MAGIC)] != _MAGIC:
            raise ValueError(f"{path} is not a posting arrays file")
        size = int.from_bytes(buf[len(_MAGIC):len(_MAGIC) + 8], "little")
        at = len(_MAGIC) + 8
        header = json.loads(bytes(buf[at:at + size]).decode("utf-8"))
        if header["doccount"] != doccount:
            raise ValueError(f"{path} is for {header['doccount']} documents, not {doccount}")
        start = -(-(at + size) // 64) * 64
        self.fields: dict[str, FieldArrays] = {}
        for name, entry in header["fields"].items():
            arrays = {key: np.frombuffer(buf, dtype=np.dtype(dtype), count=count,
                                         offset=start + offset)
                      for key, (dtype, offset, count) in entry["arrays"].items()}
            self.fields[name] = FieldArrays(
                {t: i for i, t in enumerate(entry["terms"])}, arrays["starts"], arrays["ids"],
                arrays["weights"], arrays.get("freqs"), arrays.get("positions"),
                arrays.get("position_starts"))

    def close(self) -> None:
        self.fields.clear()
        try:
            self._map.close()
        except BufferError:  # arrays still refer to it; the mapping goes with them
            pass


_SEGMENT_FILE = re.compile(r"^[A-Za-z0-9_]+$")


def load_arrays(reader: Any) -> SegmentArrays | None:
    """The arrays file of a segment reader's segment, or None (no file, or not ours)."""
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
    path = os.path.join(folder, arrays_name(segid))
    if not os.path.exists(path):
        return None
    try:
        return SegmentArrays(path, segment.doc_count_all())
    except (OSError, ValueError, KeyError):
        return None


def build(ix: Index, documents: Iterable[Mapping[str, Any]], *, workers: int = 1) -> int:
    """Write `documents` into `ix`; returns how many were written.

    With `workers` > 1, that many child processes each write segments from
    every `workers`-th chunk of documents, and their segments are then moved
    into `ix` and listed in one new table of contents (see `_build_parallel`).
    """
    if workers > 1:
        return _build_parallel(ix, documents, workers)
    builder = SegmentBuilder(ix)
    try:
        for doc in documents:
            builder.add(doc)
    except BaseException:
        if builder._writer is not None:
            builder._writer.cancel()
        raise
    builder.commit()
    return builder.documents


CHUNK = 500  # documents sent to a worker at a time
_WORKER = "import sys; from searchapp.segments import serve_part; serve_part(sys.argv[1])"


class BuildFailed(IndexUnavailable):
    """A worker process of a parallel build failed; nothing it wrote is kept."""


def _build_parallel(ix: Index, documents: Iterable[Mapping[str, Any]], workers: int) -> int:
    """Several processes each build segments of their own in a folder of their own
    (whole chunks of documents, dealt in turn); then their segment files move into
    `ix`'s folder and one new table of contents lists them all.

    The workers are fresh interpreters fed through a pipe: they hold none of
    this process's files (its index lock above all), and a worker whose feeder
    dies (even by SIGKILL) reads the end of its input and stops. A worker that
    fails makes the build fail with its error (a full disk stays an OSError);
    every worker reports how many documents it wrote, and the total must be
    what was sent.
    """
    folder = Path(ix.storage.folder)
    parts = [folder / f"part-{k}" for k in range(workers)]
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(part)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for part in parts]

    def report(k: int) -> tuple[str, Any, str]:
        proc = procs[k]
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.close()
        except OSError:
            pass
        out = proc.stdout.read()
        proc.wait()
        try:
            status, value, message = pickle.loads(out)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError):  # it died
            return ("error", None, f"index worker {k} died (exit status {proc.returncode})")
        return (str(status), value, f"index worker {k}: {message}")

    def failed(k: int) -> BaseException:
        status, value, message = report(k)
        if status == "oserror":
            return OSError(value, message)
        return BuildFailed(message if status != "ok" else
                           f"index worker {k} stopped reading before the end")

    # One feeding thread per worker, so that a worker busy with its last chunk
    # never holds up the others: chunks wait in a short queue, not in the pipe.
    inboxes: list[queue.Queue[Any]] = [queue.Queue(maxsize=4) for _ in range(workers)]
    broken: list[bool] = [False] * workers

    def feed(k: int) -> None:
        stdin = procs[k].stdin
        assert stdin is not None
        while True:
            chunk = inboxes[k].get()
            try:
                pickle.dump(chunk, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                if chunk is None:
                    stdin.flush()
            except OSError:  # the worker is gone: its report says why
                broken[k] = True
                return
            if chunk is None:
                return

    feeders = [threading.Thread(target=feed, args=(k,), daemon=True) for k in range(workers)]
    for thread in feeders:
        thread.start()

    def send(k: int, chunk: Any) -> None:
        while True:
            if broken[k]:
                raise failed(k)
            try:
                inboxes[k].put(chunk, timeout=0.5)
                return
            except queue.Full:
                continue

    try:
        for k in range(workers):
            send(k, ix.schema)
        sent = 0
        chunk: list[Mapping[str, Any]] = []
        turn = 0
        for doc in documents:
            chunk.append(doc)
            if len(chunk) == CHUNK:
                send(turn, chunk)
                sent += len(chunk)
                chunk, turn = [], (turn + 1) % workers
        if chunk:
            send(turn, chunk)
            sent += len(chunk)
        for k in range(workers):
            send(k, None)
        for k, thread in enumerate(feeders):
            thread.join()
            if broken[k]:
                raise failed(k)
        written = 0
        for k in range(workers):
            status, value, message = report(k)
            if status == "oserror":
                raise OSError(value, message)
            if status != "ok":
                raise BuildFailed(message)
            written += int(value)
        if written != sent:
            raise BuildFailed(f"the index workers wrote {written} documents of {sent}")
        found = []
        for part in parts:
            pix = whoosh_index.open_dir(str(part), schema=ix.schema)
            found.extend(pix._segments())
            pix.close()
        for segment in found:
            for part in parts:
                for path in part.glob(f"{segment.segment_id()}.*"):
                    os.replace(path, folder / path.name)
        writer = ix.writer()
        writer._close_segment()  # it writes no segment of its own, only the new TOC
        writer._commit_toc(list(writer.segments) + found)
        writer._finish()
        return written
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for k, thread in enumerate(feeders):
            while thread.is_alive():  # wake it (its worker is dead: it will stop)
                try:
                    inboxes[k].put_nowait(None)
                except queue.Full:
                    try:
                        inboxes[k].get_nowait()
                    except queue.Empty:
                        pass
                thread.join(timeout=0.2)
        for proc in procs:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
        for part in parts:
            shutil.rmtree(part, ignore_errors=True)


def serve_part(path: str) -> None:
    """(a worker process of `build`) Build segments in a new index at `path` from
    the schema and document chunks pickled on stdin; pickle the outcome to stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    outcome: tuple[str, Any, str]
    try:
        schema = pickle.load(stdin)
        os.makedirs(path)
        builder = SegmentBuilder(whoosh_index.create_in(path, schema))
        while (chunk := pickle.load(stdin)) is not None:
            for doc in chunk:
                builder.add(doc)
        builder.commit()
        outcome = ("ok", builder.documents, "done")
    except EOFError:  # whoever fed us is gone: nothing to report to
        sys.exit(1)
    except OSError as exc:
        outcome = ("oserror", exc.errno, f"{exc.strerror or exc}")
    except BaseException as exc:  # noqa: BLE001 (reported to the parent, which raises it)
        outcome = ("error", None, f"{exc.__class__.__name__}: {exc}")
    try:
        stdout.write(pickle.dumps(outcome))
        stdout.flush()
    except OSError:
        sys.exit(1)
