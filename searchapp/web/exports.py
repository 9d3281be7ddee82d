"""A search to take away: every match as CSV or JSON Lines, streamed.

`/search.csv` and `/search.jsonl` take the search page's parameters (`page` and
`per_page` aside: an export has every match, in the page's order, up to
`MAX_EXPORT_ROWS`). The response is written as the rows are read, in
batches, so a long export is never held whole; its headers say how many
items matched and how many rows follow, and whether the cap cut it short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Blueprint, Response

from searchapp.export import MAX_EXPORT_ROWS, csv_lines, json_lines, row
from searchapp.request import PARAMETERS
from searchapp.web.api import engine, only_known, query_from_request, revalidated

bp = Blueprint("exports", __name__)


def _export(encode: Callable[[Iterable[dict[str, Any]]], Iterator[str]], mimetype: str,
            suffix: str) -> Response:
    only_known(PARAMETERS)
    found = engine().export(query_from_request(), limit=MAX_EXPORT_ROWS)
    body = encode(row(item, score) for item, score in found.rows)
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="cooperative-news.{suffix}"'
    response.headers["X-Total-Count"] = str(found.total)
    response.headers["X-Export-Rows"] = str(found.count)
    response.headers["X-Export-Capped"] = "true" if found.capped else "false"
    return response


@bp.get("/search.csv")
@revalidated
def search_csv() -> Response:
    return _export(csv_lines, "text/csv", "csv")


@bp.get("/search.jsonl")
@revalidated
def search_jsonl() -> Response:
    return _export(json_lines, "application/jsonl", "jsonl")
