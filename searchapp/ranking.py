"""Orders: by relevance (score, then newest, then id) and by date (then id).

Both take the matches the engine found (`searchapp.engine.Matched`) and the
per-reader columns, and load stored ids only where ties reach the page.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from searchapp.engine import Matched, Query, Snapshot
from searchapp.facets import Columns, Docs

TIE_LIMIT = 1_000  # break date ties by id among at most this many documents


def _near_cut(matched: Matched, docs: Docs, limit: int) -> tuple[Docs, Any]:
    """`docs` with their scores, cut to the best `limit` and every document that may
    tie with the last of them (within rounding, when the scores are inexact)."""
    assert matched.scores is not None
    scores = matched.scores[np.searchsorted(matched.ids, docs)]
    if len(docs) > limit:
        cut = -np.partition(-scores, limit - 1)[limit - 1]
        slack = 0.0 if matched.exact else abs(cut) * 1e-9 + 1e-12
        keep = np.flatnonzero(scores >= cut - slack)
        docs, scores = docs[keep], scores[keep]
    return docs, scores


def by_relevance(snapshot: Snapshot, columns: Columns, query: Query, matched: Matched,
                 docs: Docs, limit: int, *, prefer: str | None = None
                 ) -> list[tuple[int, float | None]]:
    """The first `limit` of `docs` by score, then (with `prefer`, the query's likely
    language) items in that language, then newest, then id.

    The best `limit` are picked with one partition, together with every
    document that ties with the last of them. When the scores may differ from
    Whoosh's in the last bit (`searchapp.engine.scoring`'s exactness rule),
    the picked documents are rescored by Whoosh's own matcher, so the order
    is always Whoosh's.
    """
    docs, scores = _near_cut(matched, docs, limit)
    found = list(zip(scores.tolist(), docs.tolist(), strict=True))
    if not matched.exact:
        rescored = snapshot.rescore(query, docs)
        found = [(rescored.get(d, s), d) for s, d in found]
    date_codes = columns["date"].codes
    if prefer is not None:
        # One key for score ties: the preferred language first (0), then newest first,
        # undated last.
        language = columns["language"]
        other = language.codes != (language.values.index(prefer)
                                   if prefer in language.values else -2)
        span = int(len(columns["date"].values)) + 2
        date_codes = date_codes.astype(np.int64) - other.astype(np.int64) * span
    # Newest first, undated (code -1) last, as the date's position in the sorted dates.
    keyed = sorted((-s, -int(date_codes[d]), d) for s, d in found)
    ties: dict[tuple[float, int], int] = {}
    for s, c, _ in keyed:
        ties[(s, c)] = ties.get((s, c), 0) + 1
    # Ids (stored fields) only for documents tied on score and date with another
    # one, in the groups that reach into the first `limit`.
    needed = {(s, c) for s, c, _ in keyed[:limit] if ties[(s, c)] > 1}
    ids = {d: snapshot.stored(d)["id"] for s, c, d in keyed if (s, c) in needed}
    keyed.sort(key=lambda e: (e[0], e[1], ids.get(e[2], "")))
    return [(d, -s) for s, _, d in keyed[:limit]]


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


def by_score(snapshot: Snapshot, query: Query, matched: Matched,
             limit: int) -> list[tuple[int, float]]:
    """The first `limit` matches by score, ties by document number (as Whoosh's
    top-N collector orders them; for related items)."""
    if not len(matched):
        return []
    docs, scores = _near_cut(matched, matched.ids, limit)
    found = dict(zip(docs.tolist(), scores.tolist(), strict=True))
    if not matched.exact:
        found.update(snapshot.rescore(query, docs))
    return sorted(found.items(), key=lambda ds: (-ds[1], ds[0]))[:limit]
