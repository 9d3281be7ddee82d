"""A search to take away: every match as CSV or JSON Lines, streamed.

`/search.csv` and `/search.jsonl` take the search page's parameters (`page` and
`per_page` aside: an export has every match, in the page's order, up to
`MAX_EXPORT_ROWS`). The response is written as the rows are read, in
batches, so a long export is never held whole; its headers say how many
items matched and how many rows follow, and whether the cap cut it short.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Blueprint, Response

from searchapp.models import Item
from searchapp.request import PARAMETERS
from searchapp.web.api import engine, only_known, query_from_request, revalidated

bp = Blueprint("exports", __name__)

MAX_EXPORT_ROWS = 10_000
FIELDS = ("id", "date", "organisation", "type", "language", "title", "summary", "url",
          "score")
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection);
# such a cell is written with a leading apostrophe, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def row(item: Item, score: float | None) -> dict[str, Any]:
    """One exported item: the same fields, in the same order, in both formats."""
    return {"id": item.id, "date": item.date.isoformat() if item.date else None,
            "organisation": item.organisation, "type": item.type, "language": item.language,
            "title": item.title, "summary": item.summary, "url": item.url,
            "score": None if score is None else round(score, 4)}


def spreadsheet_safe(value: Any) -> str:
    """A CSV cell that no spreadsheet runs as a formula (empty for null)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(FORMULA_STARTS) else text


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: Iterable[Any]) -> str:
        writer.writerow(cells)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(FIELDS)
    for r in rows:
        yield line(spreadsheet_safe(r[name]) for name in FIELDS)


def json_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for r in rows:
        yield json.dumps(r, ensure_ascii=False) + "\n"


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
