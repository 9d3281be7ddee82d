"""What the search page shows besides the hits: filter chips, facets, the year chart.

Plain dataclasses built from a `SearchPage` and the request's parameters; the
template only lays them out. Links are this search with one thing changed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from flask import g, request, url_for
from werkzeug.datastructures import MultiDict

from searchapp.errors import BadParameter
from searchapp.fields import FACETS as DECLARED
from searchapp.request import PRESETS
from searchapp.search import SearchPage, SearchQuery
from searchapp.web.api import engine
from searchapp.web.page_request import SEARCH_PARAMS

# The facets listed as values (the year has rows of its own: `year_rows`).
FACETS = tuple((name, facet.heading, facet.plural) for name, facet in DECLARED.items()
               if name != "year")
FACET_TOP = 10  # values a facet shows before "Show all N"
YEAR_BINS_ABOVE = 15  # more years than this are grouped into bins
YEAR_BIN = 5
HISTOGRAM_MAX_SPAN = 40  # years; wider ranges show only years that have items
PAGE_WINDOW = 2  # page links shown either side of the current one
UNDATED_SPELLINGS = {"undated", "none", "null"}  # as SearchQuery.from_params reads them
YEAR_IN_QUERY = re.compile(r"(?<![\w:.-])(1[0-9]{3}|2[0-9]{3})(?![\w.-])")


class FacetEntry(Protocol):
    """One counted facet value, as the engine reports it."""

    @property
    def value(self) -> str | int | None: ...
    @property
    def count(self) -> int: ...
    @property
    def selected(self) -> bool: ...
    @property
    def label(self) -> str: ...
    @property
    def param(self) -> str: ...


def use_args(args: MultiDict[str, str]) -> None:
    """Build this request's links from these parameters rather than the raw ones."""
    g.page_args = args


def page_args() -> MultiDict[str, str]:
    """This request's parameters as the page uses them: set right, the bad ones left out."""
    args: MultiDict[str, str] = g.get("page_args", request.args)
    return args


def args_with(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {k: v for k, v in page_args().to_dict(flat=False).items()
                            if k in SEARCH_PARAMS or k == "show"}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value if isinstance(value, list) else [str(value)]
    return args


def search_url(**changes: Any) -> str:
    """This search with some parameters changed (None removes one), from page 1."""
    return url_for("pages.index", **args_with(page=None, **changes))


def toggle_url(name: str, value: str) -> str:
    """This search with one facet value added or removed, from page 1."""
    current = page_args().getlist(name)
    values = [v for v in current if v != value] if value in current else [*current, value]
    return search_url(**{name: values or None})


def swap_url(name: str, value: str, instead: str) -> str:
    """This search with one facet value in place of another, from page 1."""
    return search_url(**{name: [instead if v == value else v
                                for v in page_args().getlist(name)]})


def page_url(page: int) -> str:
    return url_for("pages.index", **args_with(page=page))


# Filters in sight ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chip:
    """One active filter, shown above the results with a link that removes it."""

    name: str  # the facet: organisation, type, year or range
    label: str
    remove_url: str


def chips(query: SearchQuery) -> list[Chip]:
    out: list[Chip] = []
    for name, _, _ in FACETS:
        shown = DECLARED[name].label
        out += [Chip(name, shown(value), toggle_url(name, _as_given(name, value)))
                for value in getattr(query, name)]
    for year in query.year:
        param = "undated" if year is None else str(year)
        label = "Undated" if year is None else str(year)
        out.append(Chip("year", label, toggle_url("year", _as_given("year", param))))
    low, high = query.year_from, query.year_to
    if low is not None or high is not None:
        label = (f"{low}–{high}" if low is not None and high is not None
                 else f"From {low}" if low is not None else f"Up to {high}")
        out.append(Chip("range", label, search_url(year_from=None, year_to=None)))
    if query.past is not None:
        out.append(Chip("past", PRESETS[query.past].capitalize(), search_url(past=None)))
    first, last = query.date_from, query.date_to
    if first is not None or last is not None:
        label = (f"{day_label(first)} – {day_label(last)}" if first and last
                 else f"From {day_label(first)}" if first else f"Up to {day_label(last)}")
        out.append(Chip("dates", label, search_url(date_from=None, date_to=None)))
    return out


def day_label(day: dt.date | None) -> str:
    """A date as a reader sees it: 5 Mar 2017."""
    return "" if day is None else f"{day.day} {day:%b %Y}"


def _as_given(name: str, value: str) -> str:
    """The request's own spelling of a value (` ILO`, `year=none`), so toggling removes it."""
    for given in page_args().getlist(name):
        if _same(given, value):
            return given
    return value


def _same(given: str, value: str) -> bool:
    given, value = given.strip().casefold(), value.strip().casefold()
    return given == value or {given, value} <= UNDATED_SPELLINGS


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
    values: Sequence[FacetEntry]
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
    rows: list[tuple[str, int, bool, str | None, int]] = []
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
                rows.append((str(year), count, bool(value and value.selected), url, 1))
    for value in values:
        if value.value is None:
            url = toggle_url("year", _as_given("year", value.param))
            rows.append(("Undated", value.count, value.selected, url, 1))
    longest = max((row[1] for row in rows), default=0) or 1
    return [YearRow(label, count, selected, url,
                    max(round(20 * count / longest), 1) if count else 0, span)
            for label, count, selected, url, span in rows]


def _bins(query: SearchQuery, dated: Mapping[Any, FacetEntry],
          years: list[int]) -> list[tuple[str, int, bool, str | None, int]]:
    starts = sorted({y - y % YEAR_BIN for y in years}, reverse=True)
    if years == list(range(years[0], years[-1] + 1)):  # a continuous span: show empty bins too
        starts = list(range(starts[0], starts[-1] - 1, -YEAR_BIN))
    rows: list[tuple[str, int, bool, str | None, int]] = []
    for start in starts:
        end = start + YEAR_BIN - 1
        count = sum(v.count for y, v in dated.items() if start <= y <= end)
        selected = (query.year_from, query.year_to) == (start, end)
        url = (search_url(year_from=None, year_to=None) if selected
               else search_url(year=None, year_from=start, year_to=end))
        rows.append((f"{start}–{end}", count, selected, url if count or selected else None,
                     YEAR_BIN))
    return rows


@dataclass(frozen=True, slots=True)
class Preset:
    """A "past week / month / year" link of the date filter."""

    label: str
    url: str
    selected: bool


def date_presets(query: SearchQuery) -> list[Preset]:
    """The date presets, each replacing any date filter (chosen again: removed)."""
    return [Preset(label.capitalize(),
                   search_url(past=None if query.past == name else name,
                              date_from=None, date_to=None),
                   query.past == name)
            for name, label in PRESETS.items()]


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
    params = args_with(page=None, show=None, q=rest, year=year, per_page=1)
    try:
        total = engine().search(SearchQuery.from_params(params)).total
    except BadParameter:
        return None
    if not total:
        return None
    return YearOffer(year, total, search_url(q=rest or None, year=str(year)), rest)
