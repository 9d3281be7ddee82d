"""The HTML pages, rendered from the same data as the JSON API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, url_for

from searchapp.web.api import engine, item_or_404, query_from_request

bp = Blueprint("pages", __name__)


def _args_with(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = request.args.to_dict(flat=False)
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value if isinstance(value, list) else [str(value)]
    return args


def toggle_url(name: str, value: str) -> str:
    """This search with one facet value added or removed, from page 1."""
    current = request.args.getlist(name)
    values = [v for v in current if v != value] if value in current else [*current, value]
    return url_for("pages.index", **_args_with(**{name: values or None, "page": None}))


def page_url(page: int) -> str:
    return url_for("pages.index", **_args_with(page=page))


def search_url(**changes: Any) -> str:
    """This search with some parameters changed (None removes one), from page 1."""
    return url_for("pages.index", **_args_with(page=None, **changes))


@bp.get("/")
def index() -> str:
    result = engine().search(query_from_request())
    api_url = url_for("api.search", **_args_with())
    return render_template("search.html", page=result, toggle_url=toggle_url,
                           page_url=page_url, search_url=search_url, api_url=api_url)


@bp.get("/items/<path:item_id>")
def item(item_id: str) -> str:
    found = item_or_404(item_id)
    return render_template("item.html", item=found, related=engine().related(found),
                           api_url=url_for("api.item", item_id=item_id))
