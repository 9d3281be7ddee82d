"""The Whoosh schema and the item ↔ document mapping."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

from whoosh.fields import ID, STORED, TEXT, Schema

from searchapp.analysis import analyzer
from searchapp.engine.scoring import TITLE_BOOST
from searchapp.models import Item

# The `year` term of items without a date, so they can be counted and filtered.
UNDATED = "undated"
FACET_FIELDS = ("organisation", "year", "type")
# Per-document columns kept in memory: the facets, and the date for sorting.
COLUMN_FIELDS = (*FACET_FIELDS, "date")


def schema(*, title_boost: float = TITLE_BOOST) -> Schema:
    """The schema, built from code; indexes are always opened with it. The title
    boost (`Settings.title_boost`) is applied when documents are written."""
    return _schema(title_boost)


@functools.cache
def _schema(title_boost: float) -> Schema:
    text = analyzer()
    return Schema(
        id=ID(stored=True, unique=True),
        # spelling=True keeps the unstemmed words too, for "did you mean".
        title=TEXT(analyzer=text, stored=True, field_boost=title_boost, spelling=True),
        summary=TEXT(analyzer=text, stored=True, spelling=True),
        organisation=ID(stored=True, sortable=True),
        type=ID(stored=True, sortable=True),
        year=ID(stored=True, sortable=True),
        date=ID(stored=True, sortable=True),
        url=STORED(),
        language=STORED(),
        source=STORED(),
    )


def year_term(year: int | None) -> str:
    return str(year) if year is not None else UNDATED


def to_document(item: Item) -> dict[str, Any]:
    doc = {
        "id": item.id,
        "title": item.title,
        "summary": item.summary,
        "organisation": item.organisation,
        "type": item.type,
        "year": year_term(item.year),
        "date": item.date.isoformat() if item.date else "",
        "url": item.url or "",
        "language": item.language,
        "source": item.source,
    }
    if not item.date:
        del doc["date"]  # no term at all, rather than an empty one
    return doc


def from_stored(fields: Mapping[str, Any]) -> Item:
    return Item(
        id=fields["id"],
        organisation=fields["organisation"],
        title=fields["title"],
        summary=fields.get("summary", ""),
        date=dt.date.fromisoformat(fields["date"]) if fields.get("date") else None,
        type=fields["type"],
        url=fields.get("url") or None,
        language=fields.get("language", "en"),
        source=fields.get("source", ""),
    )
