"""Orders: by relevance (score, then newest, then id) and by date (then id).

Both take the matches the engine found (`searchapp.engine.Matched`) and the
per-reader columns, and load stored ids only where ties reach the page. The
work of each is bounded: only the documents that can land on the page asked
for are ordered in full, Whoosh rescores at most `RESCORE_WORK` (documents x
terms of the query), and ties are broken by id among at most `TIE_LIMIT`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from searchapp.engine import BOUNDS, Budget, Matched, Query, Snapshot, leaves
from searchapp.facets import Columns, Docs

log = logging.getLogger(__name__)

TIE_LIMIT = 1_000  # break ties by id among at most this many documents
# Whoosh's matcher rescores documents in time proportional to the query's terms, and
# building it costs about as much as rescoring RESCORE_SETUP documents: at most
# RESCORE_WORK of (documents + RESCORE_SETUP) x terms per request; beyond, numpy's
# sums stand.
RESCORE_WORK = 10_000
RESCORE_SETUP = 100


def _slack(exact: bool, *values: float) -> float:
    """How far apart two scores may be and still order either way once rescored."""
    return 0.0 if exact else max(abs(v) for v in values) * 1e-9 + 1e-12


# The query's likely language, or a function that works it out: called only when items
# in two languages have the same score, the only time it can change the order.
Prefer = str | Callable[[], str | None] | None


def by_relevance(snapshot: Snapshot, columns: Columns, query: Query, matched: Matched,
                 docs: Docs, end: int, *, start: int = 0, budget: Budget | None = None,
                 prefer: Prefer = None) -> list[tuple[int, float | None]]:
    """Ranks `start` to `end` (from 0) of `docs` by score, then (with `prefer`, the
    query's likely language) items in that language, then newest, then id.

    One partition finds the scores at both ends of the page; only the documents
    between them (and those tied with them) are ordered, and counted past the
    ones above. When the scores may differ from Whoosh's in the last bit
    (`searchapp.engine.scoring`'s exactness rule), those documents are
    rescored by Whoosh's own matcher, so the order is Whoosh's; unless that
    would exceed `RESCORE_WORK` or the time budget, when numpy's sums stand
    (counted in `BOUNDS`).
    """
    assert matched.scores is not None
    end = min(end, len(docs))
    if start >= end:
        return []
    # `docs` are some of the matches (those the filters let through), or all of them.
    scores = (matched.scores if len(docs) == len(matched.ids)
              else matched.scores[np.searchsorted(matched.ids, docs)])
    if end - start < len(docs):
        ends = -np.partition(-scores, [start, end - 1])
        high, low = float(ends[start]), float(ends[end - 1])
        slack = _slack(matched.exact, high, low)
        above = int(np.count_nonzero(scores > high + slack))
        keep = np.flatnonzero((scores >= low - slack) & (scores <= high + slack))
        docs, scores = docs[keep], scores[keep]
    else:
        above = 0
    if not matched.exact:
        terms = leaves(query)
        if (len(docs) + RESCORE_SETUP) * terms > RESCORE_WORK:
            BOUNDS.count("rescoring: over RESCORE_WORK")
            log.info("not rescoring %d documents of a query of %d terms (over %d):"
                     " numpy's sums stand", len(docs), terms, RESCORE_WORK)
        elif budget is not None and budget.over():
            BOUNDS.count("rescoring: out of time")
        else:
            rescored = snapshot.rescore(query, docs)
            if budget is not None:
                budget.rescored += len(docs)
            scores = np.asarray([rescored.get(d, s) for d, s in
                                 zip(docs.tolist(), scores.tolist(), strict=True)])
    ordered = _ordered(snapshot, columns, docs, scores, start - above, end - above,
                       prefer=prefer)
    return [(d, s) for d, s in ordered]


def _ordered(snapshot: Snapshot, columns: Columns, docs: Docs, scores: Any,
             start: int, end: int, *, prefer: Prefer = None) -> list[tuple[int, float]]:
    """Positions `start` to `end` of `docs` by score, then (with `prefer`) items in
    that language, then newest (undated last), then id; ids are loaded only for ties
    that reach those positions. A `prefer` function is called only when two of `docs`
    in different languages have the same score: within a language, preferring one
    changes nothing."""
    codes = columns["date"].codes[docs].astype(np.int64)
    language = columns["language"]
    if callable(prefer):
        prefer = prefer() if _mixed_ties(scores, language.codes[docs]) else None
    if prefer is not None:
        # One key for score ties: the preferred language first, then newest first,
        # undated last (a code of -1 stays below every date of its group).
        wanted = language.values.index(prefer) if prefer in language.values else -2
        other = language.codes[docs] != wanted
        span = len(columns["date"].values) + 2
        codes = codes - other.astype(np.int64) * span
    order = np.lexsort((-codes, -scores))
    docs, scores, codes = docs[order], scores[order], codes[order]
    same = (scores[1:] == scores[:-1]) & (codes[1:] == codes[:-1])
    group_starts = np.flatnonzero(np.concatenate(([True], ~same)))
    group_ends = np.append(group_starts[1:], len(docs))
    out_docs = docs.tolist()
    for a, b in zip(group_starts.tolist(), group_ends.tolist(), strict=True):
        if b - a < 2 or b <= start or a >= end or b - a > TIE_LIMIT:
            continue  # alone, off the page, or too many (document order stands)
        ids = {d: snapshot.stored(d)["id"] for d in out_docs[a:b]}
        out_docs[a:b] = sorted(out_docs[a:b], key=ids.__getitem__)
    return list(zip(out_docs[start:end], scores[start:end].tolist(), strict=True))


def _mixed_ties(scores: Any, languages: Any) -> bool:
    """Whether two documents with the same score are in different languages."""
    if len(scores) < 2:
        return False
    order = np.lexsort((languages, scores))
    scores, languages = scores[order], languages[order]
    return bool(np.any((scores[1:] == scores[:-1]) & (languages[1:] != languages[:-1])))


def by_date(snapshot: Snapshot, columns: Columns, docs: Docs, *, newest: bool,
            limit: int) -> list[tuple[int, float | None]]:
    """The first `limit` documents by date (undated last), ties by id."""
    ordered, keys = columns.first_by_date(docs, newest=newest, limit=limit)
    if len(ordered) <= TIE_LIMIT:
        ids = {int(d): snapshot.stored(int(d))["id"] for d in ordered}
        pairs = sorted(zip(keys.tolist(), ordered.tolist(), strict=True),
                       key=lambda kd: (kd[0], ids[kd[1]]))
        ordered = np.asarray([d for _, d in pairs], dtype=np.int64)
    return [(int(d), None) for d in ordered[:limit]]
