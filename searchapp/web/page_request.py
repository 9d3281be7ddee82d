"""Reading a search page's parameters forgivingly: what can run, and what was wrong.

The JSON API answers a bad parameter with a 400 and nothing else; the page runs
the search without it, says why, and keeps everything else as the visitor left it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from searchapp.errors import BadParameter
from searchapp.fields import FACETS
from searchapp.request import FILTER_PARAMS, PARAMETERS, check_window, did_you_mean, parse_date
from searchapp.search import SearchQuery

FILTERS = FILTER_PARAMS
SEARCH_PARAMS = PARAMETERS
# Parameters of the page alone: `show` expands one facet; `box` and `within` come from
# the search box, whose "within these filters" checkbox decides whether filters stay.
VIEW_PARAMS = ("show", "box", "within")
UNKNOWN_SHOWN = 3  # unknown parameters named in notices; the rest are counted
NOTICE_CHARS = 60  # an unknown parameter is quoted up to this length
LABELS = {"q": "The search",
          **{name: f"The {facet.heading.lower()} filter" for name, facet in FACETS.items()},
          "year_from": "The first year", "year_to": "The last year",
          "date_from": "The first date", "date_to": "The last date",
          "past": "The period",
          "sort": "The order", "match": "The match mode", "page": "The page number",
          "per_page": "The number of items per page", "feedback": "The feedback setting"}


@dataclass(frozen=True, slots=True)
class Asked:
    """A page request: the query it could run, and what was wrong with the rest."""

    query: SearchQuery
    errors: dict[str, str]  # parameter → message, for parameters that were left out
    notices: list[str]  # things set right without asking (a reversed range, unknown names)
    args: MultiDict[str, str]  # the parameters the query was built from


def read_page_request(args: MultiDict[str, str], *, window: int | None = None) -> Asked:
    """The search a page asks for; bad parameters are left out and reported, not fatal.

    The JSON API answers a bad parameter with a 400; the page keeps the search box and
    filters as they were and marks what it could not use. A page past the result
    `window` is such a bad parameter (`page`).
    """
    params: dict[str, list[str]] = {k: args.getlist(k) for k in SEARCH_PARAMS if k in args}
    unknown = [name for name in args if name not in SEARCH_PARAMS and name not in VIEW_PARAMS]
    notices = [_unknown_notice(name, args.getlist(name)) for name in unknown[:UNKNOWN_SHOWN]]
    if len(unknown) > UNKNOWN_SHOWN:
        notices.append(f"{len(unknown) - UNKNOWN_SHOWN} more unknown parameters were ignored.")
    low, high = _year(params, "year_from"), _year(params, "year_to")
    if low is not None and high is not None and low > high:
        params["year_from"], params["year_to"] = [str(high)], [str(low)]
        notices.append(f"The year range {low}–{high} was reversed: showing {high}–{low}.")
    first, last = _date(params, "date_from"), _date(params, "date_to")
    if first is not None and last is not None and first > last:
        params["date_from"], params["date_to"] = [last], [first]
        notices.append(f"The date range {first} to {last} was reversed: showing {last} to"
                       f" {first}.")
    errors: dict[str, str] = {}
    while True:
        try:
            query = SearchQuery.from_params(params)
            if window is not None:
                check_window(query, window)
            kept = MultiDict([(k, v) for k, vs in params.items() for v in vs])
            kept.update([(k, v) for k, vs in args.lists() if k == "show" for v in vs])
            in_order = {k: errors[k] for k in SEARCH_PARAMS if k in errors}
            return Asked(query, in_order, notices, kept)
        except BadParameter as exc:
            if exc.name not in params:
                raise
            message = str(exc).removeprefix(f"{exc.name}: ")
            errors[exc.name] = f"{LABELS.get(exc.name, exc.name)} {message}."
            del params[exc.name]


def _year(params: Mapping[str, Sequence[str]], name: str) -> int | None:
    values = params.get(name) or [""]
    text = values[-1].strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else None


def _date(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The date as given when it is one (compared as text: ISO dates sort as dates)."""
    values = params.get(name) or [""]
    text = values[-1].strip()
    try:
        parse_date(name, text)
    except BadParameter:
        return None
    return text


def _unknown_notice(name: str, values: list[str]) -> str:
    shown = urllib.parse.urlencode([(name, values[0] if values else "")])
    if len(shown) > NOTICE_CHARS:
        shown = shown[:NOTICE_CHARS - 1] + "…"
    guess = did_you_mean(name)
    hint = f": did you mean {guess}?" if guess else "."
    return f"?{shown} was ignored{hint}"
