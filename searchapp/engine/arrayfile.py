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
each starting on a 64-byte boundary.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

ARRAYS_EXT = "arrays"
_MAGIC = b"SAPOSTS2"


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




def open_arrays(path: str, doccount: int) -> SegmentArrays | None:
    """The arrays file at `path` for a segment of `doccount` documents, or None (no file,
    a damaged one, or one of another version or segment)."""
    if not os.path.exists(path):
        return None
    try:
        return SegmentArrays(path, doccount)
    except (OSError, ValueError, KeyError):
        return None
