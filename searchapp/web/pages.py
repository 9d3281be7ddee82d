"""The HTML pages and feeds, rendered from the same data as the JSON API."""

from __future__ import annotations

import datetime as dt
import difflib
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Response,
    g,
    has_request_context,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from searchapp.errors import BadParameter
from searchapp.search import FacetValue, SearchPage, SearchQuery
from searchapp.web.api import engine, item_or_404, query_from_request, revalidated

bp = Blueprint("pages", __name__)

FILTERS = ("organisation", "type", "year", "year_from", "year_to")
SEARCH_PARAMS = ("q", *FILTERS, "sort", "match", "page", "per_page")
# Parameters of the page alone: `show` expands one facet; `box` and `within` come from
# the search box, whose "within these filters" checkbox decides whether filters stay.
VIEW_PARAMS = ("show", "box", "within")
ALIASES = {"org": "organisation", "organization": "organisation", "orgs": "organisation",
           "query": "q", "search": "q", "from": "year_from", "to": "year_to",
           "kind": "type", "date": "year", "order": "sort"}
FACETS = (("organisation", "Organisation", "organisations"), ("type", "Type", "types"))
UNKNOWN_SHOWN = 3  # unknown parameters named in notices; the rest are counted
NOTICE_CHARS = 60  # an unknown parameter is quoted up to this length
FACET_TOP = 10  # values a facet shows before "Show all N"
YEAR_BINS_ABOVE = 15  # more years than this are grouped into bins
YEAR_BIN = 5
HISTOGRAM_MAX_SPAN = 40  # years; wider ranges show only years that have items
PAGE_WINDOW = 2  # page links shown either side of the current one
FEED_ITEMS = 20
YEAR_IN_QUERY = re.compile(r"(?<![\w:.-])(1[0-9]{3}|2[0-9]{3})(?![\w.-])")
# Where a bad parameter is shown: the form control it belongs to, if it has one.
CONTROLS = {"q": "q", "sort": "sort", "year_from": "year_from", "year_to": "year_to"}
LABELS = {"q": "The search", "organisation": "The organisation filter", "type": "The type filter",
          "year": "The year filter", "year_from": "The first year", "year_to": "The last year",
          "sort": "The order", "match": "The match mode", "page": "The page number",
          "per_page": "The number of items per page"}


def _page_args() -> MultiDict[str, str]:
    """This request's parameters as the page uses them: set right, the bad ones left out."""
    args: MultiDict[str, str] = g.get("page_args", request.args)
    return args


def _args_with(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {k: v for k, v in _page_args().to_dict(flat=False).items()
                            if k in SEARCH_PARAMS or k == "show"}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value if isinstance(value, list) else [str(value)]
    return args


def search_url(**changes: Any) -> str:
    """This search with some parameters changed (None removes one), from page 1."""
    return url_for("pages.index", **_args_with(page=None, **changes))


def toggle_url(name: str, value: str) -> str:
    """This search with one facet value added or removed, from page 1."""
    current = _page_args().getlist(name)
    values = [v for v in current if v != value] if value in current else [*current, value]
    return search_url(**{name: values or None})


def page_url(page: int) -> str:
    return url_for("pages.index", **_args_with(page=page))


# What the visitor asked for, read forgivingly -----------------------------


@dataclass(frozen=True, slots=True)
class Asked:
    """A page request: the query it could run, and what was wrong with the rest."""

    query: SearchQuery
    errors: dict[str, str]  # parameter → message, for parameters that were left out
    notices: list[str]  # things set right without asking (a reversed range, unknown names)
    args: MultiDict[str, str]  # the parameters the query was built from


def read_page_request(args: MultiDict[str, str]) -> Asked:
    """The search a page asks for; bad parameters are left out and reported, not fatal.

    The JSON API answers a bad parameter with a 400; the page keeps the search box and
    filters as they were and marks what it could not use.
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
    errors: dict[str, str] = {}
    while True:
        try:
            query = SearchQuery.from_params(params)
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
    return int(text) if text.isdigit() else None


def _unknown_notice(name: str, values: list[str]) -> str:
    shown = urllib.parse.urlencode([(name, values[0] if values else "")])
    if len(shown) > NOTICE_CHARS:
        shown = shown[:NOTICE_CHARS - 1] + "…"
    guess = ALIASES.get(name.casefold()) or next(
        iter(difflib.get_close_matches(name, SEARCH_PARAMS, n=1, cutoff=0.6)), None)
    hint = f": did you mean {guess}?" if guess else "."
    return f"?{shown} was ignored{hint}"


# Filters in sight ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chip:
    """One active filter, shown above the results with a link that removes it."""

    name: str  # the facet: organisation, type, year or range
    label: str
    remove_url: str


def chips(query: SearchQuery) -> list[Chip]:
    out: list[Chip] = []
    for name in ("organisation", "type"):
        out += [Chip(name, value, toggle_url(name, value)) for value in getattr(query, name)]
    for year in query.year:
        param = "undated" if year is None else str(year)
        label = "Undated" if year is None else str(year)
        out.append(Chip("year", label, toggle_url("year", _as_given("year", param))))
    low, high = query.year_from, query.year_to
    if low is not None or high is not None:
        label = (f"{low}–{high}" if low is not None and high is not None
                 else f"From {low}" if low is not None else f"Up to {high}")
        out.append(Chip("range", label, search_url(year_from=None, year_to=None)))
    return out


def _as_given(name: str, value: str) -> str:
    """The request's own spelling of a value (`year=Undated`), so toggling removes it."""
    for given in _page_args().getlist(name):
        if given.strip().casefold() == value.casefold():
            return given
    return value


def describe_filters(found: list[Chip]) -> str:
    """The filters in words: values of one facet joined by "or", facets by commas."""
    groups: dict[str, list[str]] = {}
    for chip in found:
        groups.setdefault(chip.name, []).append(chip.label)
    return ", ".join(" or ".join(labels) for labels in groups.values())


# Long facet lists tamed -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class FacetView:
    """A facet as the page shows it: its top values, with the rest one link away."""

    name: str
    heading: str
    plural: str
    values: list[FacetValue]
    visible: list[bool]  # per value: shown before "Show all"
    expanded: bool
    show_all_url: str
    show_top_url: str

    @property
    def hidden(self) -> int:
        return self.visible.count(False)

    @property
    def filterable(self) -> bool:
        """Long enough that a filter-as-you-type box helps."""
        return len(self.values) > FACET_TOP


def facet_views(page: SearchPage, show: str | None) -> list[FacetView]:
    views = []
    for name, heading, plural in FACETS:
        values = list(page.facets.get(name, []))
        expanded = show == name
        visible = [expanded or i < FACET_TOP or v.selected for i, v in enumerate(values)]
        views.append(FacetView(
            name, heading, plural, values, visible, expanded,
            show_all_url=search_url(show=name) + f"#facet-{name}",
            show_top_url=search_url(show=None) + f"#facet-{name}"))
    return views


@dataclass(frozen=True, slots=True)
class YearRow:
    """One bar of the year histogram: a year, or a bin of years when there are many."""

    label: str
    count: int
    selected: bool
    url: str | None  # None for an empty year or bin: nothing to link to
    width: int  # 0–20, in steps of 5% of the longest bar
    span: int  # years in the row: 1, or YEAR_BIN for a bin


def year_rows(page: SearchPage) -> list[YearRow]:
    """Items per year, newest first, grouped into bins of five years when there are many.

    With a year range chosen, only the years in it are shown: choosing a bin zooms in.
    """
    values = page.facets.get("year", [])
    low, high = page.query.year_from, page.query.year_to
    dated = {v.value: v for v in values if isinstance(v.value, int)  # zoomed into a range
             and (low is None or v.value >= low) and (high is None or v.value <= high)}
    rows: list[tuple[str, int, bool, str | None]] = []
    if dated:
        low, high = min(dated), max(dated)
        years = list(range(low, high + 1)) if high - low <= HISTOGRAM_MAX_SPAN else sorted(dated)
        if len(years) > YEAR_BINS_ABOVE:
            rows = _bins(page.query, dated, years)
        else:
            for year in reversed(years):
                value = dated.get(year)
                count = value.count if value else 0
                url = toggle_url("year", _as_given("year", str(year))) if value else None
                rows.append((str(year), count, bool(value and value.selected), url))
    for value in values:
        if value.value is None:
            url = toggle_url("year", _as_given("year", value.param))
            rows.append(("Undated", value.count, value.selected, url))
    longest = max((count for _, count, _, _ in rows), default=0) or 1
    return [YearRow(label, count, selected, url,
                    max(round(20 * count / longest), 1) if count else 0,
                    YEAR_BIN if "–" in label else 1)
            for label, count, selected, url in rows]


def _bins(query: SearchQuery, dated: dict[Any, FacetValue],
          years: list[int]) -> list[tuple[str, int, bool, str | None]]:
    starts = sorted({y - y % YEAR_BIN for y in years}, reverse=True)
    if years == list(range(years[0], years[-1] + 1)):  # a continuous span: show empty bins too
        starts = list(range(starts[0], starts[-1] - 1, -YEAR_BIN))
    rows: list[tuple[str, int, bool, str | None]] = []
    for start in starts:
        end = start + YEAR_BIN - 1
        count = sum(v.count for y, v in dated.items() if start <= y <= end)
        selected = (query.year_from, query.year_to) == (start, end)
        url = (search_url(year_from=None, year_to=None) if selected
               else search_url(year=None, year_from=start, year_to=end))
        rows.append((f"{start}–{end}", count, selected, url if count or selected else None))
    return rows


def pagination(page: SearchPage) -> list[int | None]:
    """Page numbers to link, None where a run of pages is left out."""
    current, last = page.query.page, page.pages
    shown = {1, last, *range(current - PAGE_WINDOW, current + PAGE_WINDOW + 1)}
    numbers = sorted(n for n in shown if 1 <= n <= last)
    out: list[int | None] = []
    for n in numbers:
        if out and n - (out[-1] or 0) > 1:
            out.append(None)
        out.append(n)
    return out


@dataclass(frozen=True, slots=True)
class YearOffer:
    """A query naming a year, offered as the year filter ("Items from 2017?")."""

    year: int
    total: int
    url: str
    rest: str  # the query without the year, "" when the year was all of it


def year_offer(query: SearchQuery) -> YearOffer | None:
    found = YEAR_IN_QUERY.search(query.q)
    if not found or int(found.group(1)) in query.year:
        return None
    year = int(found.group(1))
    rest = " ".join((query.q[:found.start()] + " " + query.q[found.end():]).split())
    params = {k: v for k, v in _args_with(page=None, show=None).items()}
    params.update(q=[rest], year=[str(year)])
    try:
        total = engine().search(SearchQuery.from_params({**params, "per_page": ["1"]})).total
    except BadParameter:
        return None
    if not total:
        return None
    return YearOffer(year, total, search_url(q=rest or None, year=str(year)), rest)


# Views ------------------------------------------------------------------------


@bp.get("/")
@revalidated
def index() -> BaseResponse:
    if "box" in request.args:
        return _from_search_box()
    asked = read_page_request(request.args)
    g.page_args = asked.args
    result = engine().search(asked.query)
    found = chips(asked.query)
    show = asked.args.get("show")
    html = render_template(
        "search.html", page=result, asked=asked, chips=found,
        filters_text=describe_filters(found), facets=facet_views(result, show),
        years=year_rows(result), offer=year_offer(asked.query), pagination=pagination(result),
        filtered=bool(found), toggle_url=toggle_url, page_url=page_url, search_url=search_url,
        clear_url=search_url(**dict.fromkeys(FILTERS)),
        api_url=url_for("api.search", **_args_with(show=None)),
        feed_url=url_for("pages.feed", **_args_with(page=None, per_page=None, sort=None,
                                                    show=None)),
    )
    return make_response(html, 400 if asked.errors else 200)


def _from_search_box() -> BaseResponse:
    """A query typed in the box: filters stay only when "within these filters" is ticked."""
    leave = {"box", "within", "page", "show"}
    if "within" not in request.args:
        leave.update(FILTERS)
    args: dict[str, Any] = {k: v for k, v in request.args.to_dict(flat=False).items()
                            if k not in leave}
    return redirect(url_for("pages.index", **args), 303)


@bp.url_defaults
def _carry_the_search(endpoint: str, values: dict[str, Any]) -> None:
    """Links to an item from a search carry that search, for the item's "Back to search"."""
    if endpoint != "pages.item" or "back" in values or not has_request_context():
        return
    if request.endpoint == "pages.index":
        back = urllib.parse.urlencode(
            [(k, v) for k, vs in _page_args().lists() if k in SEARCH_PARAMS for v in vs])
    elif request.endpoint == "pages.item":
        back = request.args.get("back", "")
    else:
        return
    if back:
        values["back"] = back


@bp.app_context_processor
def _back() -> dict[str, Any]:
    return {"back_url": back_url}


def back_url() -> str:
    """The search the visitor came from: the `back` parameter, or a same-origin Referer."""
    back = request.args.get("back")
    if back is None and request.referrer:
        came_from = urllib.parse.urlsplit(request.referrer)
        if came_from.netloc == request.host and came_from.path == url_for("pages.index"):
            back = came_from.query
    pairs = [(k, v) for k, v in urllib.parse.parse_qsl(back or "") if k in SEARCH_PARAMS]
    query = urllib.parse.urlencode(pairs)
    return url_for("pages.index") + (f"?{query}" if query else "")


@bp.get("/items/<path:item_id>")
@revalidated
def item(item_id: str) -> str:
    found = item_or_404(item_id)
    return render_template("item.html", item=found, related=engine().related(found),
                           api_url=url_for("api.item", item_id=item_id))


@bp.get("/feed.atom")
@revalidated
def feed() -> Response:
    """The newest items matching a search, for feed readers (undated items have no place)."""
    asked = query_from_request()
    newest = SearchQuery(
        q=asked.q, organisation=asked.organisation, type=asked.type, year=asked.year,
        year_from=asked.year_from, year_to=asked.year_to, match=asked.match, sort="newest",
        per_page=FEED_ITEMS)
    result = engine().search(newest)
    entries = [h for h in result.hits if h.item.date is not None]
    updated = max((h.item.date for h in entries if h.item.date), default=dt.date(1970, 1, 1))
    response = make_response(render_template(
        "feed.atom.xml", page=result, entries=entries, updated=updated,
        self_url=request.url,
        html_url=url_for("pages.index", _external=True,
                         **_args_with(page=None, per_page=None, show=None)),
        host=request.host.split(":")[0]))
    response.mimetype = "application/atom+xml"
    return response


@bp.get("/opensearch.xml")
def opensearch() -> Response:
    response = make_response(render_template("opensearch.xml"))
    response.mimetype = "application/opensearchdescription+xml"
    return response
