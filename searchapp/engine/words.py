"""Words close to a mistyped one, found in memory: typo tolerance without a scan.

Whoosh can walk a Levenshtein automaton over a segment's word list, but it
does so one term-index lookup at a time, in Python: hundreds of ms per word over
100,000 items (bench/RESULTS.md). `CloseWords` holds one segment's words
instead, grouped by first letter and length, with each word's letter counts
in a numpy matrix. A word within d edits has the same first letter (the rule
typo tolerance keeps), a length within d, and letter counts within 2d (an
edit changes at most two counts), so one vectorised comparison over a small
group leaves a handful of words for the exact edit distance.

The index is built from a segment's spelling words and kept per segment
(`for_segment`), so a refresh that adds a segment builds only the new one. The
engine makes a new snapshot's indexes ahead of its first search, in the
background (`reserve`, `make`, `release`; searchapp.service.Engine): a search
that needs one still being made waits for it, and one built at query time
instead is counted in `FALLBACKS` (`BUILT_AT_QUERY_TIME`) and logged. The wait
is bounded by the search's time budget (`bounded_by`): past it, the segment
gives no close words, the budget is marked cut (the answer says partial) and
that is counted too (`NOT_READY_IN_BUDGET`). The engine lets other requests in
while a search waits (`waiting_in`). The indexes of segments that are
no longer read once a new generation is swapped in are let go (`let_go`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager

import numpy as np
from numpy.typing import NDArray

from searchapp.engine.base import FALLBACKS, Budget, swapped_out

log = logging.getLogger(__name__)

_BINS = 27  # a-z, then everything else


@functools.lru_cache(maxsize=65_536)
def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Letters added, dropped or changed, and neighbours swapped, to make `a` into `b`
    (the optimal string alignment distance); above `limit`, some value over it.
    With a limit only the cells within `limit` of the diagonal are computed."""
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    big = len(a) + len(b) + 1
    band = big if limit is None else limit
    before: list[int] | None = None
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [big] * (len(b) + 1)
        if i <= band:
            current[0] = i
        for j in range(max(1, i - band), min(len(b), i + band) + 1):
            y = b[j - 1]
            best = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (x != y))
            if before is not None and j > 1 and x == b[j - 2] and a[i - 2] == y:
                best = min(best, before[j - 2] + 1)
            current[j] = best
        if limit is not None and min(current) > limit:
            return limit + 1
        before, row = row, current
    return row[-1]


def _counts(words: list[str]) -> NDArray[np.uint8]:
    """Each word's letter counts (a-z, then one bin for anything else)."""
    if not words:
        return np.zeros((0, _BINS), dtype=np.uint8)
    codes = np.frombuffer("".join(words).encode("utf-32-le"), dtype=np.uint32)
    bins = np.where((codes >= 97) & (codes <= 122), codes - 97, _BINS - 1).astype(np.intp)
    owner = np.repeat(np.arange(len(words)), [len(w) for w in words])
    counts = np.zeros((len(words), _BINS), dtype=np.int32)
    np.add.at(counts, (owner, bins), 1)
    return np.minimum(counts, 255).astype(np.uint8)


class CloseWords:
    """One segment's words, for finding those within a few edits of a word."""

    def __init__(self, words: Iterable[str]) -> None:
        ordered = sorted({w for w in words if w}, key=lambda w: (w[0], len(w), w))
        self.words = ordered
        self.counts = _counts(ordered)
        self.groups: dict[tuple[str, int], tuple[int, int]] = {}
        for i, w in enumerate(ordered):
            key = (w[0], len(w))
            start, _ = self.groups.get(key, (i, i))
            self.groups[key] = (start, i + 1)

    def __len__(self) -> int:
        return len(self.words)

    def near(self, word: str, *, distance: int) -> list[tuple[str, int]]:
        """(word, edits) for the words within `distance` edits of `word` that start
        with its first letter (`word` itself included when present)."""
        if not word:
            return []
        target = _counts([word])[0].astype(np.int16)
        found = []
        for length in range(max(1, len(word) - distance), len(word) + distance + 1):
            span = self.groups.get((word[0], length))
            if span is None:
                continue
            start, end = span
            gap = np.abs(self.counts[start:end].astype(np.int16) - target).sum(axis=1)
            for k in np.flatnonzero(gap <= 2 * distance).tolist():
                candidate = self.words[start + k]
                edits = edit_distance(word, candidate, distance)
                if edits <= distance:
                    found.append((candidate, edits))
        return found


_CACHE: OrderedDict[tuple[str, str], CloseWords] = OrderedDict()
_CACHE_SEGMENTS = 64  # segments × fields kept (each a few MB at 100,000 items)
_LOCK = threading.Lock()


# What FALLBACKS counts when a search builds a kept index itself (not made ahead).
BUILT_AT_QUERY_TIME = "close words: built at query time, not made ahead"
# What FALLBACKS counts when a search's budget ran out waiting for an index made ahead.
NOT_READY_IN_BUDGET = "close words: not made within the search's time budget, left out"
# Keys being made ahead (`reserve`) → set when made or given up (`make`, `release`).
_PENDING: dict[tuple[str, str], threading.Event] = {}
# The budget of the search running in this thread (or greenlet), for `for_segment`'s wait.
_BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "close_words_budget", default=None)
# What the search running in this thread (or greenlet) does while it waits (`waiting_in`).
_MEANWHILE: contextvars.ContextVar[Callable[[], AbstractContextManager[object]] | None] = \
    contextvars.ContextVar("close_words_meanwhile", default=None)


@contextlib.contextmanager
def bounded_by(budget: Budget | None) -> Iterator[None]:
    """Within the block, waiting for an index being made ahead ends with `budget`'s time."""
    token = _BUDGET.set(budget)
    try:
        yield
    finally:
        _BUDGET.reset(token)


@contextlib.contextmanager
def waiting_in(meanwhile: Callable[[], AbstractContextManager[object]]) -> Iterator[None]:
    """Within the block, each wait for an index being made ahead is done inside
    `meanwhile()` (the engine lets other requests in while a search waits)."""
    token = _MEANWHILE.set(meanwhile)
    try:
        yield
    finally:
        _MEANWHILE.reset(token)


def _wait(key: tuple[str, str], pending: threading.Event) -> bool:
    """Wait for an index being made ahead, within the search's budget; whether it is
    settled (made or given up). When the budget runs out first, it is marked cut."""
    budget = _BUDGET.get()
    end = None if budget is None else budget.end
    meanwhile = _MEANWHILE.get()
    with meanwhile() if meanwhile is not None else contextlib.nullcontext():
        settled = pending.wait(None if end is None else max(0.0, end - time.monotonic()))
    if settled:
        return True
    assert budget is not None
    budget.cut = True
    FALLBACKS.count(NOT_READY_IN_BUDGET)
    log.warning("close words: the index of %s (%s) was not made within the search's time"
                " budget; the search answers without its close words, partial", key[0], key[1])
    return False


def _keep(key: tuple[str, str], made: CloseWords, *,
          reserved: threading.Event | None = None) -> bool:
    """Keep `made` under `key`; with `reserved`, only while that reservation stands (not
    let go meanwhile). Whether it is kept."""
    with _LOCK:
        if reserved is not None and _PENDING.get(key) is not reserved:
            return False
        _CACHE[key] = made
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_SEGMENTS:
            _CACHE.popitem(last=False)
        return True


def kept() -> dict[tuple[str, str], CloseWords]:
    """The indexes kept now, by key (a copy)."""
    with _LOCK:
        return dict(_CACHE)


def let_go(folder: str, live: Collection[str]) -> int:
    """Let go of the indexes of segments in `folder` (an index folder, at any depth)
    whose files are not in `live` (those the new live generation reads): kept or being
    made (searches waiting for one go on; its making stops, or is not kept). How many."""
    out = swapped_out(folder, live)
    with _LOCK:
        gone = [k for k in dict.fromkeys((*_CACHE, *_PENDING)) if out(k[0])]
        for key in gone:
            _CACHE.pop(key, None)
    release(gone)
    return len(gone)


def reserve(keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Mark the keys not yet kept nor being made as made ahead: until `make` or
    `release` settles each, a search needing it waits instead of building it. The
    keys marked (the caller must settle every one)."""
    with _LOCK:
        mine = [k for k in dict.fromkeys(keys) if k not in _CACHE and k not in _PENDING]
        for key in mine:
            _PENDING[key] = threading.Event()
    return mine


def release(keys: Iterable[tuple[str, str]]) -> None:
    """Let the searches waiting for these keys go on (they build what is not kept)."""
    for key in keys:
        with _LOCK:
            pending = _PENDING.pop(key, None)
        if pending is not None:
            pending.set()


def make(key: tuple[str, str], words: Callable[[], Iterable[str]]) -> bool:
    """Build a reserved key's index ahead of the searches needing it, and keep it (not
    when it was let go, `let_go`, before or meanwhile); whether it was kept."""
    with _LOCK:
        reserved = _PENDING.get(key)
    if reserved is None:
        return False
    try:
        return _keep(key, CloseWords(words()), reserved=reserved)
    finally:
        with _LOCK:
            if _PENDING.get(key) is reserved:
                del _PENDING[key]
        reserved.set()


_NONE = CloseWords(())  # what a segment gives when its index is not made in time


def for_segment(key: tuple[str, str] | None, words: Callable[[], Iterable[str]]
                ) -> CloseWords:
    """The close-words index of one segment's field, built from `words()` once and
    kept under `key` (None: not kept, for segments that cannot be told apart); while
    it is being made ahead (`reserve`), waited for, within the search's time budget
    (`bounded_by`; past it, an empty index)."""
    if key is not None:
        with _LOCK:
            found = _CACHE.get(key)
            if found is not None:
                _CACHE.move_to_end(key)
                return found
            pending = _PENDING.get(key)
        if pending is not None:
            if not _wait(key, pending):
                return _NONE
            with _LOCK:
                found = _CACHE.get(key)
            if found is not None:
                return found
    made = CloseWords(words())
    if key is not None:
        FALLBACKS.count(BUILT_AT_QUERY_TIME)
        log.warning("close words: the index of %s (%s) was built at query time, not ahead",
                    key[0], key[1])
        _keep(key, made)
    return made
