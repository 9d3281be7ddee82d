"""The HTML pages and feeds, rendered from the same data as the JSON API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    make_response,
    render_template,
    request,
    url_for,
)

from searchapp.catalog import Catalog, Freshness
from searchapp.search import SearchPage, SearchQuery
from searchapp.web.api import (
    engine,
    item_or_404,
    query_from_request,
    revalidated,
    revalidated_with,
)

bp = Blueprint("pages", __name__)

FILTERS = ("organisation", "type", "year", "year_from", "year_to")
FEED_ITEMS = 20
HISTOGRAM_MAX_SPAN = 40  # years; wider ranges show only years that have items
PAGE_WINDOW = 2  # page links shown either side of the current one


def _args_with(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = request.args.to_dict(flat=False)
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
    current = request.args.getlist(name)
    values = [v for v in current if v != value] if value in current else [*current, value]
    return search_url(**{name: values or None})


def page_url(page: int) -> str:
    return url_for("pages.index", **_args_with(page=page))


@dataclass(frozen=True, slots=True)
class Bar:
    year: int
    count: int
    selected: bool
    height: int  # 0–20, in steps of 5% of the tallest bar


def histogram(page: SearchPage) -> list[Bar]:
    """Items per year, oldest first, with empty years between shown as empty bars."""
    dated = {v.value: v for v in page.facets["year"] if isinstance(v.value, int)}
    if not dated:
        return []
    low, high = min(dated), max(dated)
    years = range(low, high + 1) if high - low <= HISTOGRAM_MAX_SPAN else sorted(dated)
    tallest = max(v.count for v in dated.values()) or 1
    bars = []
    for year in years:
        value = dated.get(year)
        count = value.count if value else 0
        height = round(20 * count / tallest)
        bars.append(Bar(year, count, bool(value and value.selected),
                        max(height, 1) if count else 0))
    return bars


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


FRESHNESS = "searchapp.freshness"


def freshness() -> Freshness:
    """The catalog's freshness for this request; recomputed only when the catalog's
    change stamp moves (kept per process)."""
    if "freshness" not in g:
        with Catalog(current_app.config["SEARCHAPP"].catalog) as catalog:
            stamp = catalog.change_stamp()
            cached = current_app.extensions.get(FRESHNESS)
            if cached is None or cached[0] != stamp:
                cached = (stamp, catalog.freshness())
                current_app.extensions[FRESHNESS] = cached
        g.freshness = cached[1]
    return g.freshness  # type: ignore[no-any-return]


def _freshness_stamp() -> str:
    return repr(freshness().to_dict())


@bp.get("/")
@revalidated_with(_freshness_stamp)
def index() -> str:
    result = engine().search(query_from_request())
    filtered = any(request.args.getlist(name) for name in FILTERS)
    return render_template(
        "search.html", page=result, histogram=histogram(result), pagination=pagination(result),
        filtered=filtered, toggle_url=toggle_url, page_url=page_url, search_url=search_url,
        clear_url=search_url(**dict.fromkeys(FILTERS)),
        api_url=url_for("api.search", **_args_with()),
        feed_url=url_for("pages.feed", **_args_with(page=None, per_page=None, sort=None)),
        freshness=freshness(),
    )


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
        html_url=url_for("pages.index", _external=True, **_args_with(page=None, per_page=None)),
        host=request.host.split(":")[0]))
    response.mimetype = "application/atom+xml"
    return response


@bp.get("/opensearch.xml")
def opensearch() -> Response:
    response = make_response(render_template("opensearch.xml"))
    response.mimetype = "application/opensearchdescription+xml"
    return response
