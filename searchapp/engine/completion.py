"""Completion of a word being typed: a sorted word table searched by bisection.

`GET /api/suggest` runs on every keystroke. Reading the spelling words that
start with a prefix from Whoosh's term index and looking up each one's
document count cost about 76 ms of CPU a request at 100,000 items (a few
thousand words for a two-letter prefix). `WordCounts` holds, once per set of
segments, every spelling word of the text fields with the number of
documents using it (summed over the fields and the segments, deleted documents
included, as Whoosh's `doc_frequency` counts them): a sorted list and a numpy
array. A prefix is then two bisections and one partial sort of its slice of
counts: tens of microseconds.

A table is built from a reader's term infos (one walk of each segment's
spelling words) and kept under its segments' files (`key`). After a refresh
adds segments, the new table is the kept one of the segments before plus the
new segments' words (`base_for`): a segment's files never change, and
deleting documents leaves Whoosh's counts as they are. The engine makes
a new snapshot's table ahead of its first completion, in the background
(`reserve`, `make`, `release`; searchapp.service.Engine). A completion that
finds its table still being made does not wait for it: it scans the words as
before (`scan`), counted in `FALLBACKS` (`SCANNED_WHILE_MADE`); one that finds
no table and none being made builds it and keeps it, counted too
(`BUILT_AT_QUERY_TIME`). Tables over segments that are no longer read once a new
generation is swapped in are let go (`let_go`).
"""

from __future__ import annotations

import bisect
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from searchapp.engine.base import swapped_out

if TYPE_CHECKING:
    from searchapp.engine.base import Vocabulary

log = logging.getLogger(__name__)

MAX_SCAN = 5_000  # words looked at per field by `scan` (the fallback), whatever the prefix

# What FALLBACKS counts when a completion could not use a table made ahead.
BUILT_AT_QUERY_TIME = "completion: word table built at query time, not made ahead"
SCANNED_WHILE_MADE = "completion: word table still being made, words scanned"

Key = tuple[str, ...]


class WordCounts:
    """Words in sorted order, each with how many documents use it."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.words = sorted(counts)
        self.counts = np.fromiter((counts[w] for w in self.words), dtype=np.int64,
                                  count=len(self.words))

    def __len__(self) -> int:
        return len(self.words)

    def top(self, prefix: str, limit: int) -> list[str]:
        """The `limit` words starting with `prefix` that the most documents use, most
        used first, ties in word order (code point order, as Python sorts text)."""
        if limit <= 0:
            return []
        words = self.words
        start = bisect.bisect_left(words, prefix)
        end = bisect.bisect_left(words, _after(prefix), start) if prefix else len(words)
        if start >= end:
            return []
        window = self.counts[start:end]
        if len(window) > limit:
            # The limit-th largest count: every word above it, then the first words
            # (in word order) of those equal to it, up to the limit.
            level = np.partition(window, len(window) - limit)[len(window) - limit]
            above = np.flatnonzero(window > level)
            equal = np.flatnonzero(window == level)[:limit - len(above)]
            picked = np.concatenate([above, equal])
        else:
            picked = np.arange(len(window))
        chosen, places = window[picked].tolist(), picked.tolist()
        order = sorted(range(len(places)), key=lambda i: (-chosen[i], places[i]))
        return [words[start + places[i]] for i in order]


def _after(prefix: str) -> str:
    """The first text after every text starting with `prefix` (`prefix` not empty)."""
    last = ord(prefix[-1])
    if last >= sys.maxunicode:
        return prefix + chr(sys.maxunicode)  # (no word has that character)
    return prefix[:-1] + chr(last + 1)


def read(leaves: Iterable[object], fields: Sequence[str], *, pause: int = 0,
         base: WordCounts | None = None) -> WordCounts:
    """The table of `fields` (Whoosh spelling field names) over segment readers
    `leaves` (and the segments of `base`, a table of other segments), from each
    segment's term infos; with `pause`, a `time.sleep(0)` every so many words (under
    gevent, other greenlets run meanwhile)."""
    counts: dict[str, int] = {} if base is None else dict(
        zip(base.words, base.counts.tolist(), strict=True))
    n = 0
    for leaf in leaves:
        for field in fields:
            if field not in leaf.schema:  # type: ignore[attr-defined]
                continue
            for raw, info in leaf.iter_field(field):  # type: ignore[attr-defined]
                word = raw.decode("utf-8") if isinstance(raw, bytes) else raw
                counts[word] = counts.get(word, 0) + int(info.doc_frequency())
                n += 1
                if pause and not n % pause:
                    time.sleep(0)
    return WordCounts(counts)


def scan(vocabulary: Vocabulary, fields: Sequence[str], prefix: str, limit: int) -> list[str]:
    """`WordCounts.top` without a table: the words of each field starting with `prefix`
    (at most `MAX_SCAN` of them per field, in word order) and each one's count looked
    up. What completion did before the tables, about 76 ms at 100,000 items for a
    two-letter prefix; the answer differs from the table's only where a field has more
    than `MAX_SCAN` words with the prefix."""
    counts: dict[str, int] = {}
    for name in fields:
        for n, word in enumerate(vocabulary.words(name, prefix)):
            if n >= MAX_SCAN:
                break
            counts[word] = counts.get(word, 0) + vocabulary.word_count(name, word)
    return sorted(counts, key=lambda w: (-counts[w], w))[:max(limit, 0)]


_CACHE: OrderedDict[Key, WordCounts] = OrderedDict()
_CACHE_TABLES = 4  # sets of segments kept (the live one, one being swapped in, spares)
_PENDING: dict[Key, threading.Event] = {}
_LOCK = threading.Lock()


def _parts(key: Key) -> tuple[Key, Key]:
    """A key's spelling fields and segment files."""
    at = key.index("")
    return key[:at], key[at + 1:]


def base_for(key: Key) -> tuple[WordCounts, frozenset[str]] | None:
    """A kept table of the same fields over the most of `key`'s segment files and no
    other (a generation before a refresh added segments), and those files: a new
    table is that one plus the segments it lacks. (A segment's files never change, and
    deleting documents leaves its counts as they are.)"""
    fields, files = _parts(key)
    wanted = set(files)
    best: tuple[WordCounts, frozenset[str]] | None = None
    with _LOCK:
        for other, table in _CACHE.items():
            its_fields, its_files = _parts(other)
            if its_fields == fields and set(its_files) <= wanted \
                    and (best is None or len(its_files) > len(best[1])):
                best = table, frozenset(its_files)
    return best


def kept(key: Key) -> WordCounts | None:
    with _LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
        return found


def being_made(key: Key) -> bool:
    with _LOCK:
        return key in _PENDING


def keep(key: Key, table: WordCounts, *, reserved: bool = False) -> bool:
    """Keep `table` under `key`; with `reserved`, only while it is still being made (not
    let go meanwhile, `let_go`). Whether it is kept."""
    with _LOCK:
        if reserved and key not in _PENDING:
            return False
        _CACHE[key] = table
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_TABLES:
            _CACHE.popitem(last=False)
        return True


def tables() -> dict[Key, WordCounts]:
    """The tables kept now, by key (a copy)."""
    with _LOCK:
        return dict(_CACHE)


def let_go(folder: str, live: Collection[str]) -> int:
    """Let go of the tables, kept or being made, over a segment in `folder` (an index
    folder, at any depth) whose file is not in `live` (those the new live generation
    reads); a table over live segments only is kept (a refresh's new table starts from
    it, `base_for`). How many."""
    out = swapped_out(folder, live)
    with _LOCK:
        doomed = [k for k in dict.fromkeys((*_CACHE, *_PENDING)) if any(map(out, _parts(k)[1]))]
        for key in doomed:
            _CACHE.pop(key, None)
    for key in doomed:
        release(key)
    return len(doomed)


def reserve(key: Key) -> bool:
    """Mark `key`'s table as being made ahead, unless it is kept or already being
    made; whether it was marked (then the caller must `make` or `release` it)."""
    with _LOCK:
        if key in _CACHE or key in _PENDING:
            return False
        _PENDING[key] = threading.Event()
        return True


def release(key: Key) -> None:
    with _LOCK:
        pending = _PENDING.pop(key, None)
    if pending is not None:
        pending.set()


def wait(key: Key, timeout: float | None = None) -> bool:
    """Wait until `key`'s table is no longer being made; whether it is not."""
    with _LOCK:
        pending = _PENDING.get(key)
    return pending is None or pending.wait(timeout)
