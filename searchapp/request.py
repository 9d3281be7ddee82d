"""What was asked: `SearchQuery`, its limits, and reading it from request parameters.

The HTML page, the JSON API, the feed and the CLI all build a `SearchQuery`
with `from_params` (or directly), so every one of them accepts the same
parameters and rejects bad ones with the same `BadParameter` message.
"""

from __future__ import annotations

import calendar
import datetime as dt
import difflib
import re
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
# Values one facet may select in one search (each chip of the page links to the search
# without it, so the page grows with their square).
MAX_FACET_VALUES = 50
_WHOLE = re.compile(r"[+-]?[0-9]{1,18}")
# Values listed per facet in the JSON (`facet_size`); the rest are counted as truncated.
DEFAULT_FACET_SIZE, MAX_FACET_SIZE = 100, 1_000
# Date presets (`past`): the window ending today (UTC), one of these long.
PRESETS = {"week": "past week", "month": "past month", "year": "past year"}
# Every parameter a search understands, in the order the docs list them.
FILTER_PARAMS = (*FACETS, "year_from", "year_to", "date_from", "date_to", "past")
PARAMETERS = ("q", *FILTER_PARAMS, "sort", "match", "page", "per_page", "feedback")


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
    date_from: dt.date | None = None  # only items dated on or after (undated ones excluded)
    date_to: dt.date | None = None  # only items dated on or before
    past: str | None = None  # a preset of PRESETS: the week, month or year up to today
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
        for name in FACETS:
            if len(getattr(self, name)) > MAX_FACET_VALUES:
                raise BadParameter(name, f"selects {len(getattr(self, name))} values; the"
                                         f" limit is {MAX_FACET_VALUES}")
        for name in ("year_from", "year_to"):
            value = getattr(self, name)
            if value is not None and not MIN_YEAR <= value <= MAX_YEAR:
                raise BadParameter(name, f"must be a year between {MIN_YEAR} and {MAX_YEAR}")
        if (self.year_from is not None and self.year_to is not None
                and self.year_from > self.year_to):
            raise BadParameter("year_from", f"{self.year_from} is after year_to"
                                            f" {self.year_to}")
        if self.date_from is not None and self.date_to is not None \
                and self.date_from > self.date_to:
            raise BadParameter("date_from", f"{self.date_from} is after date_to {self.date_to}")
        if self.past is not None and self.past not in PRESETS:
            raise BadParameter("past", f"must be one of {', '.join(PRESETS)}, not {self.past!r}")

    def date_range(self, today: dt.date | None = None) -> tuple[dt.date, dt.date] | None:
        """The dates an item must fall between (inclusive), from `date_from`, `date_to`
        and `past` together; None when no date filter is on. Undated items never pass."""
        if self.date_from is None and self.date_to is None and self.past is None:
            return None
        low, high = self.date_from or dt.date.min, self.date_to or dt.date.max
        if self.past is not None:
            end = today or utc_today()
            low, high = max(low, preset_start(self.past, end)), min(high, end)
        return low, high

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
            return whole_number(name, raw) if raw else default

        def date(name: str) -> dt.date | None:
            raw = one(name).strip()
            return parse_date(name, raw) if raw else None

        chosen = {name: _unique(facet.parse(v) for v in given if v.strip())
                  for name, facet in FACETS.items() if (given := params.get(name))}
        return cls(
            q=one("q"),
            **chosen,
            year_from=integer("year_from", None),
            year_to=integer("year_to", None),
            date_from=date("date_from"),
            date_to=date("date_to"),
            past=one("past").strip().lower() or None,
            sort=one("sort").strip() or None,
            match=one("match").strip() or "all",
            page=integer("page", 1) or 0,
            per_page=integer("per_page", DEFAULT_PER_PAGE) or 0,
            feedback=one("feedback").strip() or None,
        )


def whole_number(name: str, raw: str) -> int:
    """`raw` as a whole number written in ASCII digits (Python's `int` also takes other
    scripts' digits and underscores: `٢٠١٧`, `1_999`), else `BadParameter` naming it."""
    if not _WHOLE.fullmatch(raw):
        raise BadParameter(name, f"must be a whole number, not {raw[:40]!r}")
    return int(raw)


def check_window(query: SearchQuery, window: int, *, size: str = "{} per page") -> None:
    """Refuse a page reaching past the first `window` results of a search (as
    Elasticsearch's ``max_result_window``): ranking that deep costs work in
    proportion to the depth, and nobody reads that far. `size` words the page size
    as the caller's user gives it."""
    last = query.page * query.per_page
    if last > window:
        raise BadParameter("page", f"{query.page} with {size.format(query.per_page)} reaches past"
                                   f" the first {window:,} results (the most a search"
                                   " shows): narrow the search instead")


def _unique(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))


# Names other sites use for our parameters (for "did you mean").
ALIASES = {"org": "organisation", "organization": "organisation", "orgs": "organisation",
           "query": "q", "search": "q", "from": "date_from", "to": "date_to",
           "since": "date_from", "until": "date_to", "start_date": "date_from",
           "end_date": "date_to", "kind": "type", "date": "year", "order": "sort",
           "lang": "language", "size": "per_page", "limit": "per_page"}


def did_you_mean(name: str, known: Sequence[str] = PARAMETERS) -> str | None:
    """The known parameter (or other known name) a mistyped or foreign one most likely
    means, if any, whatever their case."""
    folded = {k.casefold(): k for k in known}
    guess = ALIASES.get(name.casefold()) or next(
        iter(difflib.get_close_matches(name.casefold(), folded, n=1, cutoff=0.6)), None)
    return folded.get(guess) if guess is not None else None


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(name: str, raw: str) -> dt.date:
    """An ISO date (2017-05-31) from a request, or a BadParameter naming `name`."""
    if not _ISO_DATE.fullmatch(raw):
        raise BadParameter(name, f"must be a date like 2017-05-31 (YYYY-MM-DD), not {raw!r}")
    try:
        found = dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise BadParameter(name, f"{raw!r} is not a date on the calendar ({exc})") from None
    if not MIN_YEAR <= found.year <= MAX_YEAR:
        raise BadParameter(name, f"must be a date in the years {MIN_YEAR} to {MAX_YEAR}")
    return found


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def preset_start(past: str, today: dt.date) -> dt.date:
    """The first day of a `past` window ending `today`: the same day one week, month
    or year before (the month's last day when that month is shorter)."""
    if past == "week":
        return today - dt.timedelta(days=7)
    months = 1 if past == "month" else 12
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    month += 1
    return dt.date(year, month, min(today.day, calendar.monthrange(year, month)[1]))
