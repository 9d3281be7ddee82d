"""The Whoosh schema and the item ↔ document mapping, both from `searchapp.fields`."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

from whoosh.fields import ID, STORED, TEXT, FieldType, Schema

from searchapp import fields
from searchapp.analysis import marked, multilingual_analyzer
from searchapp.engine.scoring import TITLE_BOOST
from searchapp.fields import COLUMN_FIELDS, FACET_FIELDS, UNDATED, year_term
from searchapp.models import GIVEN, Item

__all__ = ["COLUMN_FIELDS", "FACET_FIELDS", "UNDATED", "from_stored", "schema", "to_document",
           "year_term"]


def schema(*, title_boost: float = TITLE_BOOST) -> Schema:
    """The schema, built from code; indexes are always opened with it. The title
    boost (`Settings.title_boost`) is applied when documents are written."""
    return _schema(title_boost)


def _field_type(field: fields.Field, title_boost: float) -> FieldType:
    if field.kind == fields.ID:
        return ID(stored=True, unique=True)
    if field.kind == fields.TEXT:
        # spelling=True keeps the unstemmed words too, for "did you mean".
        return TEXT(analyzer=multilingual_analyzer(), stored=True, spelling=field.spelling,
                    field_boost=title_boost if field.title_boost else 1.0)
    if field.kind == fields.KEYWORD:
        return ID(stored=True)
    return STORED()


@functools.cache
def _schema(title_boost: float) -> Schema:
    return Schema(**{f.name: _field_type(f, title_boost) for f in fields.FIELDS})


def to_document(item: Item) -> dict[str, Any]:
    """The fields `add_document` takes for an item (a field without a value is left out:
    no term at all, rather than an empty one)."""
    doc = {}
    for field in fields.FIELDS:
        value = field.of_item(item)
        if value is not None:
            doc[field.name] = value
    return doc


def for_whoosh(item: Item) -> dict[str, Any]:
    """`to_document` for Whoosh's own writer (incremental updates): each text marked
    with the item's language for the analyzer, stored as it is."""
    doc = to_document(item)
    for field in fields.FIELDS:
        if field.kind == fields.TEXT and field.name in doc:
            doc[f"_stored_{field.name}"] = doc[field.name]
            doc[field.name] = marked(doc[field.name], item.language)
    return doc


def from_stored(stored: Mapping[str, Any]) -> Item:
    return Item(
        id=stored["id"],
        organisation=stored["organisation"],
        title=stored["title"],
        summary=stored.get("summary", ""),
        date=dt.date.fromisoformat(stored["date"]) if stored.get("date") else None,
        type=stored["type"],
        url=stored.get("url") or None,
        language=stored.get("language", "en"),
        source=stored.get("source", ""),
        source_url=stored.get("source_url") or None,
        language_origin=stored.get("language_origin") or GIVEN,
        language_confidence=stored.get("language_confidence"),
    )
