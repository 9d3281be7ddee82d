"""The HTML pages and feeds, rendered from the same data as the JSON API."""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.parse
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    has_request_context,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from searchapp import fields, urls
from searchapp.catalog import Catalog, Freshness
from searchapp.engine import Budget
from searchapp.errors import CatalogDamaged, CatalogMissing
from searchapp.export import MAX_EXPORT_ROWS
from searchapp.fields import FACETS
from searchapp.search import SearchQuery
from searchapp.web.api import (
    engine,
    item_or_404,
    query_from_request,
    revalidated,
    revalidated_with,
)
from searchapp.web.page_parts import (
    args_with,
    chips,
    date_presets,
    day_label,
    describe_filters,
    facet_views,
    page_args,
    page_url,
    pagination,
    search_url,
    swap_url,
    toggle_url,
    use_args,
    year_offer,
    year_rows,
)
from searchapp.web.page_request import FILTERS, SEARCH_PARAMS, Asked, read_page_request

bp = Blueprint("pages", __name__)

FEED_ITEMS = 20
# What the search box sends along with a new query (filters only "within these filters").
KEPT_BY_THE_BOX = (*FILTERS, "sort", "match")


@bp.app_template_filter("host")
def host_filter(link: str | None) -> str:
    """The site an http(s) link leads to (``ilo.org``), "" for anything else: a link
    out is only made where this is not empty."""
    return urls.host(link)


@bp.app_template_filter("site")
def site_filter(link: str | None) -> str:
    """The home page of the site of an http(s) link (a feed's address is no page to show)."""
    return urls.site(link)


@bp.app_template_filter("number")
def number_filter(n: int) -> str:
    """A count as the page shows every count: with thousands separators (``49,554``)."""
    return f"{n:,}"


@bp.app_template_filter("language_name")
def language_name_filter(code: str) -> str:
    """A language in its own words ("Français"), else its code."""
    return fields.language_name(code)


FRESHNESS = "searchapp.freshness"


def freshness() -> Freshness | None:
    """The catalog's freshness for this request; recomputed only when the catalog's
    change stamp moves (kept per process). None when the catalog is missing or
    damaged: the search is answered from the index all the same, without the footer
    (/healthz and the item pages say what is wrong)."""
    if "freshness" not in g:
        try:
            with Catalog(current_app.config["SEARCHAPP"].catalog, reading=True) as catalog:
                stamp = catalog.change_stamp()
                cached = current_app.extensions.get(FRESHNESS)
                if cached is None or cached[0] != stamp:
                    cached = (stamp, catalog.freshness())
                    current_app.extensions[FRESHNESS] = cached
            g.freshness = cached[1]
        except (CatalogMissing, CatalogDamaged) as exc:
            current_app.logger.warning("search page without freshness: %s", exc)
            g.freshness = None
    return g.freshness  # type: ignore[no-any-return]


def _freshness_stamp() -> str:
    found = freshness()
    return repr(found.to_dict() if found is not None else None)


@bp.get("/")
@revalidated_with(_freshness_stamp)
def index() -> BaseResponse:
    if "box" in request.args:
        return _from_search_box()
    asked = read_page_request(request.args, window=engine().result_window)
    use_args(asked.args)
    result = engine().search(asked.query)
    asked = as_stored(asked, result.query)
    use_args(asked.args)
    found = chips(result.query)
    show = asked.args.get("show")
    taken = args_with(page=None, per_page=None, show=None)
    html = render_template(
        "search.html", page=result, asked=asked, chips=found,
        keep=[(name, v) for name in KEPT_BY_THE_BOX for v in asked.args.getlist(name)],
        filters_text=describe_filters(found), facets=facet_views(result, show),
        years=year_rows(result), offer=year_offer(asked.query), pagination=pagination(result),
        presets=date_presets(result.query), day_label=day_label,
        csv_url=url_for("exports.search_csv", **taken),
        jsonl_url=url_for("exports.search_jsonl", **taken), export_cap=MAX_EXPORT_ROWS,
        filtered=bool(found), toggle_url=toggle_url, page_url=page_url, search_url=search_url,
        swap_url=swap_url,
        clear_url=search_url(**dict.fromkeys(FILTERS)),
        api_url=url_for("api.search", **args_with(show=None)),
        feed_url=url_for("pages.feed", **args_with(page=None, per_page=None, sort=None,
                                                    show=None)),
        freshness=freshness(),
    )
    return make_response(html, 400 if asked.errors else 200)


def as_stored(asked: Asked, stored: SearchQuery) -> Asked:
    """The request with each facet value spelt as stored (`ilo` → `ILO`), so links and
    chips show, toggle and remove the value the search used."""
    args = asked.args.copy()
    for name, facet in FACETS.items():
        if name in args and getattr(stored, name) != getattr(asked.query, name):
            args.setlist(name, [facet.param(v) for v in getattr(stored, name)])
    return dataclasses.replace(asked, query=stored, args=args)


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
            [(k, v) for k, vs in page_args().lists() if k in SEARCH_PARAMS for v in vs])
    elif request.endpoint == "pages.item":
        back = request.args.get("back", "")
    else:
        return
    if back:
        values["back"] = back


@bp.app_context_processor
def _back() -> dict[str, Any]:
    return {"back_url": back_url, "back_query": back_query}


def back_url() -> str:
    """The search the visitor came from: the `back` parameter, or a same-origin Referer."""
    query = urllib.parse.urlencode(_came_from())
    return url_for("pages.index") + (f"?{query}" if query else "")


def back_query() -> str:
    """The words of the search the visitor came from ('' if none), for the search box."""
    return next((v for k, v in _came_from() if k == "q"), "")


def _came_from() -> list[tuple[str, str]]:
    """The search parameters of `back_url`."""
    back = request.args.get("back")
    if back is None and request.referrer:
        came_from = urllib.parse.urlsplit(request.referrer)
        if came_from.netloc == request.host and came_from.path == url_for("pages.index"):
            back = came_from.query
    return [(k, v) for k, v in urllib.parse.parse_qsl(back or "") if k in SEARCH_PARAMS]


@bp.get("/items/<path:item_id>")
@revalidated
def item(item_id: str) -> str:
    found = item_or_404(item_id)
    budget = Budget(engine().time_budget)
    related = engine().related(found, budget=budget)
    return render_template("item.html", item=found, related=related,
                           related_partial=budget.cut,
                           api_url=url_for("api.item", item_id=item_id))


@bp.get("/feed.atom")
@revalidated
def feed() -> Response:
    """The newest items matching a search, for feed readers (undated items have no place)."""
    asked = query_from_request()
    newest = dataclasses.replace(asked, sort="newest", page=1, per_page=FEED_ITEMS)
    result = engine().search(newest)
    entries = [h for h in result.hits if h.item.date is not None]
    updated = max((h.item.date for h in entries if h.item.date), default=dt.date(1970, 1, 1))
    response = make_response(render_template(
        "feed.atom.xml", page=result, entries=entries, updated=updated,
        self_url=request.url,
        html_url=url_for("pages.index", _external=True,
                         **args_with(page=None, per_page=None, show=None)),
        host=request.host.split(":")[0]))
    response.mimetype = "application/atom+xml"
    return response


@bp.get("/opensearch.xml")
def opensearch() -> Response:
    response = make_response(render_template("opensearch.xml"))
    response.mimetype = "application/opensearchdescription+xml"
    return response
