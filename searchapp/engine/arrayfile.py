"""The posting arrays file: one segment's posting lists as flat numpy arrays.

Beside each segment it writes, the segment writer (`searchapp.engine.segments`)
writes ``<segment>.arrays``: for every indexed field, its terms and their
postings (documents, weights, frequencies and positions) as flat arrays. The
arrays path maps the file into memory to answer queries without decoding
Whoosh's pickled blocks. The name follows Whoosh's segment file pattern, so
Whoosh deletes the file when it merges the segment away.

Layout: the magic (its version: files of other versions are not read), the
header length (8 bytes, little-endian), a JSON header (document count; per
field its terms and, per array, dtype, offset and length), then the arrays,
each starting on a 64-byte boundary, then a trailer: the CRC-32 of the header,
the CRC-32 of everything after it (padding and arrays) and the arrays' length
in bytes (4, 4 and 8 bytes, little-endian).

A file is checked before it is used (`verify`): its size against the
trailer, both checksums, and that the arrays fit together (term starts
within the postings, documents within the segment, positions within their
array). A file that fails is not mapped: its segment is searched through
Whoosh's own postings instead, and that is counted in `FALLBACKS` and logged.
The checksums of a file are computed once per process while the file's
size and modification time stay the same.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import threading
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from searchapp.engine.base import FALLBACKS, swapped_out

log = logging.getLogger(__name__)

ARRAYS_EXT = "arrays"
_MAGIC = b"SAPOSTS3"
_TRAILER = 16
# What FALLBACKS counts when a segment's arrays file cannot be used.
DAMAGED = "segment arrays file damaged or unreadable"


def arrays_name(segment_id: str) -> str:
    return f"{segment_id}.{ARRAYS_EXT}"


def write_arrays(folder: str | None, segment_id: str, doccount: int,
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
    if folder is None:  # not on disk (a RAM index): nothing to map
        return
    path = os.path.join(folder, arrays_name(segment_id))
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(_MAGIC)
        fh.write(len(head).to_bytes(8, "little"))
        fh.write(head)
        pad = b"\0" * (start - fh.tell())
        fh.write(pad)
        written = 0
        crc = zlib.crc32(pad)
        for name, parts in header["fields"].items():
            for key, (_, at, _) in parts["arrays"].items():
                arr = blobs.pop(0)
                gap = b"\0" * (at - written)
                data = arr.data.cast("B")
                fh.write(gap)
                fh.write(data)
                crc = zlib.crc32(data, zlib.crc32(gap, crc))
                written = at + arr.nbytes
        fh.write(zlib.crc32(head).to_bytes(4, "little") + crc.to_bytes(4, "little")
                 + written.to_bytes(8, "little"))
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


class Damaged(ValueError):
    """An arrays file that must not be used; the message says why."""


class SegmentArrays:
    """The arrays file of one segment, mapped read-only once `verify` has passed it."""

    def __init__(self, path: str, doccount: int) -> None:
        self.path = path
        with open(path, "rb") as fh:
            self.stamp = _stamp(os.fstat(fh.fileno()))
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            header, start = _header(self._map, doccount)
            _verified(path, self.stamp, self._map, header, start)
            self.fields: dict[str, FieldArrays] = {}
            for name, entry in header["fields"].items():
                arrays = {key: np.frombuffer(self._map, dtype=np.dtype(dtype), count=count,
                                             offset=start + offset)
                          for key, (dtype, offset, count) in entry["arrays"].items()}
                self.fields[name] = FieldArrays(
                    {t: i for i, t in enumerate(entry["terms"])}, arrays["starts"],
                    arrays["ids"], arrays["weights"], arrays.get("freqs"),
                    arrays.get("positions"), arrays.get("position_starts"))
        except BaseException:
            self.close()
            raise

    def unchanged(self) -> bool:
        """Whether the file is still the one verified (same size and modification time)."""
        try:
            return _stamp(os.stat(self.path)) == self.stamp
        except OSError:
            return False

    def close(self) -> None:
        getattr(self, "fields", {}).clear()
        try:
            self._map.close()
        except BufferError:  # arrays still refer to it; the mapping goes with them
            pass


Stamp = tuple[int, int, int, int]
_VERIFIED: dict[str, Stamp] = {}  # files whose checksums and structure passed, as they were
_VERIFIED_LOCK = threading.Lock()


def let_go(folder: str, live: Collection[str]) -> int:
    """Forget the checks of arrays files in `folder` (an index folder, at any depth)
    that are not in `live` (absolute paths: those the live generation reads); how many."""
    out = swapped_out(folder, live)
    with _VERIFIED_LOCK:
        gone = [p for p in _VERIFIED if out(os.path.abspath(p))]
        for path in gone:
            del _VERIFIED[path]
    return len(gone)


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _header(buf: Any, doccount: int) -> tuple[dict[str, Any], int]:
    """The JSON header and where the arrays start; `Damaged` when the file's frame is off."""
    size = len(buf)
    if size < len(_MAGIC) + 8 + _TRAILER or buf[:len(_MAGIC)] != _MAGIC:
        raise Damaged("not a posting arrays file of this version")
    length = int.from_bytes(buf[len(_MAGIC):len(_MAGIC) + 8], "little")
    at = len(_MAGIC) + 8
    if at + length + _TRAILER > size:
        raise Damaged(f"its header claims {length:,} bytes; the file has {size:,}")
    head = bytes(buf[at:at + length])
    trailer = bytes(buf[size - _TRAILER:])
    if zlib.crc32(head) != int.from_bytes(trailer[:4], "little"):
        raise Damaged("its header does not match its checksum")
    start = -(-(at + length) // 64) * 64
    data = int.from_bytes(trailer[8:], "little")
    if start + data + _TRAILER != size:
        raise Damaged(f"it is {size:,} bytes long; its header and arrays make"
                      f" {start + data + _TRAILER:,}")
    try:
        header = json.loads(head.decode("utf-8"))
    except ValueError as exc:
        raise Damaged(f"its header is not JSON ({exc})") from None
    if header.get("doccount") != doccount:
        raise Damaged(f"it is for {header.get('doccount')} documents; the segment has"
                      f" {doccount}")
    return header, start


def _verified(path: str, stamp: Stamp, buf: Any, header: dict[str, Any], start: int) -> None:
    """Check the arrays' checksum and how they fit together (`Damaged` if not), once per
    process for each state of the file."""
    with _VERIFIED_LOCK:
        if _VERIFIED.get(path) == stamp:
            return
    size = len(buf)
    head_end = len(_MAGIC) + 8 + int.from_bytes(buf[len(_MAGIC):len(_MAGIC) + 8], "little")
    crc = zlib.crc32(memoryview(buf)[head_end:size - _TRAILER])
    if crc != int.from_bytes(buf[size - _TRAILER + 4:size - 8], "little"):
        raise Damaged("its arrays do not match their checksum")
    end = size - _TRAILER - start
    for name, entry in header["fields"].items():
        arrays = {}
        for key, (dtype, offset, count) in entry["arrays"].items():
            kind = np.dtype(dtype)
            if offset < 0 or count < 0 or offset + count * kind.itemsize > end:
                raise Damaged(f"field {name}: array {key} lies outside the file")
            arrays[key] = np.frombuffer(buf, dtype=kind, count=count, offset=start + offset)
        _check_field(name, len(entry["terms"]), arrays, header["doccount"])
    with _VERIFIED_LOCK:
        _VERIFIED[path] = stamp


def _check_field(name: str, terms: int, arrays: dict[str, NDArray[Any]], doccount: int) -> None:
    starts, ids, weights = arrays.get("starts"), arrays.get("ids"), arrays.get("weights")
    if starts is None or ids is None or weights is None:
        raise Damaged(f"field {name}: starts, ids or weights missing")
    if len(starts) != terms + 1 or (len(starts) and int(starts[0]) != 0) \
            or np.any(np.diff(starts) < 0) or int(starts[-1]) != len(ids) \
            or len(weights) != len(ids):
        raise Damaged(f"field {name}: its term starts do not fit its postings")
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= doccount):
        raise Damaged(f"field {name}: a posting names a document outside the segment")
    freqs, positions = arrays.get("freqs"), arrays.get("positions")
    position_starts = arrays.get("position_starts")
    if freqs is None and positions is None and position_starts is None:
        return
    if freqs is None or positions is None or position_starts is None:
        raise Damaged(f"field {name}: its positions are incomplete")
    if len(freqs) != len(ids) or (len(freqs) and int(freqs.min()) < 0) \
            or int(freqs.sum(dtype=np.int64)) != len(positions) \
            or len(position_starts) != terms + 1 \
            or (terms and int(position_starts[-1]) != len(positions)) \
            or np.any(np.diff(position_starts) < 0):
        raise Damaged(f"field {name}: its positions do not fit its postings")


def _why(exc: BaseException) -> str:
    """Why an arrays file was refused, for people."""
    return str(exc) if isinstance(exc, Damaged) else f"{exc.__class__.__name__}: {exc}"


def verify(path: str, doccount: int) -> str | None:
    """Why the arrays file at `path` (for a segment of `doccount` documents) cannot be
    used, or None when it can (or there is none). For health checks: reads the whole
    file unless this process already verified it as it is."""
    try:
        arrays = SegmentArrays(path, doccount)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _why(exc)
    arrays.close()
    return None


def open_arrays(path: str, doccount: int) -> SegmentArrays | None:
    """The arrays file at `path` for a segment of `doccount` documents, or None: no file
    (segments Whoosh wrote itself have none), or one that fails `verify` (then the
    segment's postings are read from Whoosh's files: counted in `FALLBACKS` and logged)."""
    try:
        return SegmentArrays(path, doccount)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        why = _why(exc)
        FALLBACKS.count(DAMAGED)
        log.warning("not using the posting arrays file %s (%s): its segment is searched"
                    " through Whoosh's postings, more slowly; `searchapp reindex` writes it"
                    " anew", path, why)
        return None
