"""What was asked: `SearchQuery`, its limits, and reading it from request parameters.

The HTML page, the JSON API, the feed and the CLI all build a `SearchQuery`
with `from_params` (or directly), so every one of them accepts the same
parameters and rejects bad ones with the same `BadParameter` message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from searchapp import feedback as feedbacks
from searchapp import query as parser
from searchapp.errors import BadParameter
from searchapp.fields import FACETS

SORTS = ("relevance", "newest", "oldest")
MATCHES = ("all", "any")
DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100
MAX_PAGE = 1_000
# Longer is refused (400). A long query within it is answered with its first
# `searchapp.query.MAX_QUERY_TERMS` analysed terms, and says it was shortened.
MAX_QUERY_CHARS = 20_000
MIN_YEAR, MAX_YEAR = 1000, 9999


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What was asked: words, filters, order and page. Validated on creation."""

    q: str = ""
    organisation: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    year: tuple[int | None, ...] = ()  # None selects undated items
    language: tuple[str, ...] = ()  # two-letter codes
    # (Each facet of searchapp.fields.FACETS is an attribute of the same name.)
    year_from: int | None = None
    year_to: int | None = None
    sort: str | None = None  # None: relevance with words, newest without
    match: str = "all"  # "any": items with any of the words
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    # Pseudo-relevance feedback for this search (`searchapp.feedback`): "rm3" or
    # "none"; None: the server's setting (`Settings.feedback`).
    feedback: str | None = None

    def __post_init__(self) -> None:
        if len(self.q) > MAX_QUERY_CHARS:
            raise BadParameter("q", f"is {len(self.q)} characters long; the limit is"
                                    f" {MAX_QUERY_CHARS}")
        if self.sort is not None and self.sort not in SORTS:
            raise BadParameter("sort", f"must be one of {', '.join(SORTS)}, not {self.sort!r}")
        if self.feedback is not None and self.feedback not in feedbacks.CHOICES:
            raise BadParameter("feedback", f"must be one of {', '.join(feedbacks.CHOICES)},"
                                           f" not {self.feedback!r}")
        if self.match not in MATCHES:
            raise BadParameter("match", f"must be one of {', '.join(MATCHES)},"
                                        f" not {self.match!r}")
        if not 1 <= self.page <= MAX_PAGE:
            raise BadParameter("page", f"must be between 1 and {MAX_PAGE}")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise BadParameter("per_page", f"must be between 1 and {MAX_PER_PAGE}")
        for name in ("year_from", "year_to"):
            value = getattr(self, name)
            if value is not None and not MIN_YEAR <= value <= MAX_YEAR:
                raise BadParameter(name, f"must be a year between {MIN_YEAR} and {MAX_YEAR}")
        if (self.year_from is not None and self.year_to is not None
                and self.year_from > self.year_to):
            raise BadParameter("year_from", f"{self.year_from} is after year_to"
                                            f" {self.year_to}")

    @property
    def effective_sort(self) -> str:
        return self.sort or ("relevance" if parser.parse(self.q).ranked else "newest")

    def filters(self) -> dict[str, tuple[Any, ...]]:
        """The selected values of each facet, as given."""
        return {name: getattr(self, name) for name in FACETS}

    def selected(self) -> dict[str, tuple[str, ...]]:
        """Selected facet values as index terms."""
        return {name: tuple(facet.term(v) for v in getattr(self, name))
                for name, facet in FACETS.items()}

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> SearchQuery:
        """Build from request-style parameters (each name → list of strings)."""

        def one(name: str, default: str = "") -> str:
            values = params.get(name) or [default]
            return values[-1]

        def integer(name: str, default: int | None) -> int | None:
            raw = one(name).strip()
            if not raw:
                return default
            try:
                return int(raw)
            except ValueError:
                raise BadParameter(name, f"must be a whole number, not {raw!r}") from None

        chosen = {name: _unique(facet.parse(v) for v in params.get(name, []) if v.strip())
                  for name, facet in FACETS.items()}
        return cls(
            q=one("q"),
            **chosen,
            year_from=integer("year_from", None),
            year_to=integer("year_to", None),
            sort=one("sort").strip() or None,
            match=one("match").strip() or "all",
            page=integer("page", 1) or 0,
            per_page=integer("per_page", DEFAULT_PER_PAGE) or 0,
            feedback=one("feedback").strip() or None,
        )


def _unique(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))
