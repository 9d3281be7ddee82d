"""Searching, as the rest of searchapp (and bench/) imports it.

The parts live in modules of their own: `searchapp.request` (what was asked),
`searchapp.page` (what is answered), `searchapp.ranking` (the orders) and
`searchapp.service` (the `Engine`); this module names them in one place.
"""

from __future__ import annotations

from typing import Any

from searchapp.engine.scoring import Ranking
from searchapp.page import FacetValue, Hit, Related, SearchPage
from searchapp.request import (
    DEFAULT_PER_PAGE,
    MATCHES,
    MAX_PAGE,
    MAX_PER_PAGE,
    MAX_QUERY_CHARS,
    SORTS,
    SearchQuery,
)
from searchapp.service import Engine

__all__ = ["DEFAULT_PER_PAGE", "MATCHES", "MAX_PAGE", "MAX_PER_PAGE", "MAX_QUERY_CHARS",
           "SORTS", "Engine", "FacetValue", "Hit", "Related", "SearchPage", "SearchQuery",
           "ranking"]


def ranking() -> Any:
    """The product's Whoosh weighting model (for bench/, which builds Whoosh searchers of
    its own; searchapp itself passes `Settings.ranking()` to the engine)."""
    return Ranking().weighting()
