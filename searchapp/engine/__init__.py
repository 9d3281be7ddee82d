"""The search engine behind one seam: `Snapshot`, opened once per index reader.

`open_snapshot` chooses the path for a reader and records it (`kind`,
`reason`): the arrays path (`searchapp.engine.arrays`) whenever its scores
are Whoosh's, plain Whoosh (`searchapp.engine.plain`) otherwise, or
whichever `SEARCHAPP_ENGINE` (`Settings.engine`) forces. The rest of
searchapp talks to the snapshot and never to Whoosh.

Modules: `base` (the seam), `arrays` and `plain` (its two sides), `scoring`
(the ranking model and its numpy twin), `segments` (every use of Whoosh's
private attributes: the whole-segment writer and the block readers),
`arrayfile` (the posting arrays file format), `pool` (full rebuilds, in
parallel worker processes).
"""

from __future__ import annotations

import logging
from typing import Any

from whoosh.index import Index

from searchapp.engine import scoring
from searchapp.engine.base import (
    ARRAYS,
    CHOICES,
    FALLBACKS,
    WHOOSH,
    And,
    Column,
    Every,
    Ids,
    Matched,
    Nothing,
    Or,
    Phrase,
    Query,
    Scores,
    Snapshot,
    Term,
    Vocabulary,
    Word,
)
from searchapp.errors import SearchappError

__all__ = ["ARRAYS", "CHOICES", "FALLBACKS", "WHOOSH", "And", "Column", "EngineUnavailable",
           "Every", "Ids", "Matched", "Nothing", "Or", "Phrase", "Query", "Scores", "Snapshot",
           "Term", "Vocabulary", "Word", "choose", "open_snapshot"]

log = logging.getLogger(__name__)


class EngineUnavailable(SearchappError):
    """The engine asked for (SEARCHAPP_ENGINE) cannot serve this index or model."""

    code = "engine_unavailable"
    status = 500


def choose(choice: str, weighting: Any) -> tuple[str, str]:
    """The path for a reader searched with `weighting`, and why."""
    if choice not in CHOICES:
        raise EngineUnavailable(f"SEARCHAPP_ENGINE must be one of {', '.join(CHOICES)},"
                                f" not {choice!r}")
    why_not = scoring.unsupported(weighting)
    if choice == WHOOSH:
        return WHOOSH, "SEARCHAPP_ENGINE=whoosh"
    if choice == ARRAYS:
        if why_not is not None:
            raise EngineUnavailable(f"SEARCHAPP_ENGINE=arrays, but {why_not}")
        return ARRAYS, "SEARCHAPP_ENGINE=arrays"
    if why_not is not None:
        return WHOOSH, why_not
    return ARRAYS, "the ranking model has a numpy twin"


def open_snapshot(ix: Index, *, choice: str = "auto", weighting: Any = None) -> Snapshot:
    """A snapshot of `ix`'s latest contents on the chosen path (see `choose`).

    `weighting` is a Whoosh weighting model (default: `scoring.Ranking()`'s);
    only experiments pass another.
    """
    from searchapp.engine.arrays import ArraysSnapshot
    from searchapp.engine.plain import WhooshSnapshot

    model = weighting if weighting is not None else scoring.Ranking().weighting()
    kind, reason = choose(choice, model)
    if kind == WHOOSH and choice == "auto":
        FALLBACKS.count("reader opened on plain Whoosh")
        log.warning("searching with plain Whoosh, several times slower than the arrays path:"
                    " %s", reason)
    searcher = ix.searcher(weighting=model)
    if kind == ARRAYS:
        return ArraysSnapshot(searcher, reason=reason)
    return WhooshSnapshot(searcher, reason=reason)
