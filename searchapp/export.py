"""A search's matches as rows to take away: CSV (spreadsheet-safe) and JSON Lines.

Both formats carry the same fields in the same order (`FIELDS`); the web
routes (`searchapp.web.exports`) stream them, at most `MAX_EXPORT_ROWS` rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from searchapp.models import Item

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
