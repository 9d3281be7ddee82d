"""Every field of an item, declared once: how it is indexed, stored, filtered and shown.

`FIELDS` lists the index fields in one place. From it come the Whoosh schema
(`searchapp.schema`), the document written for an item, and, for the fields
that are facets (`FACETS`), the `SearchQuery` parameters and their parsing
(`searchapp.request`), the facet columns and counts (`searchapp.facets`), the
sidebar of the search page, the `searchapp search` options (`searchapp.cli`)
and the OpenAPI description (`searchapp.web.openapi`).

Adding a facet is one `Facet` entry here, the attribute of the same name on
`Item` (if it is new) and on `SearchQuery`, and its tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from searchapp.errors import BadParameter
from searchapp.languages import LANGUAGES
from searchapp.models import Item

# The `year` term of items without a date, so they can be counted and filtered.
UNDATED = "undated"
_LANGUAGE = re.compile(r"^[a-z]{2}$")

# What a field is in the index.
ID, TEXT, KEYWORD, STORED = "id", "text", "keyword", "stored"


@dataclass(frozen=True, slots=True)
class Facet:
    """A keyword field people filter by and count: one index term per item."""

    heading: str  # in the sidebar and the CLI
    plural: str  # what its values are ("Show all 12 organisations")
    option: str  # the `searchapp search` option (repeatable)
    help: str  # the CLI help, and the OpenAPI description of the parameter
    parameter: dict[str, Any]  # OpenAPI schema of one request value
    value: dict[str, Any]  # OpenAPI schema of one value in responses
    # One request value → the SearchQuery value (raises BadParameter); and back.
    parse: Callable[[str], Any]
    param: Callable[[Any], str]
    term: Callable[[Any], str]  # a SearchQuery value → its index term
    from_term: Callable[[str], Any]  # an index term → the value in JSON
    label: Callable[[Any], str]  # a value as a reader sees it
    newest_first: bool = False  # order values newest first (else most items first)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str  # ID, TEXT, KEYWORD or STORED
    of_item: Callable[[Item], Any]  # the item's value (None: no term at all)
    facet: Facet | None = None
    column: bool = False  # a per-document column kept in memory (facets, sorting)
    spelling: bool = False  # keep the unstemmed words (suggestions, completion)
    title_boost: bool = False  # the BM25F field boost (Settings.title_boost) applies


def year_term(year: int | None) -> str:
    return str(year) if year is not None else UNDATED


def _text(value: str) -> str:
    return value.strip()


def _year(raw: str) -> int | None:
    text = raw.strip()
    if text.lower() in ("null", "none", UNDATED):
        return None
    # A date's years (Python's, 1 to 9999): any other number names no item, and a
    # huge one would be listed, charted and written back as given.
    if not (text.isascii() and text.isdigit() and 1 <= len(text.lstrip("0")) <= 4):
        raise BadParameter("year", f"must be a year from 1 to 9999 like 2017, or 'undated',"
                                   f" not {raw[:40]!r}")
    return int(text)


def _language(raw: str) -> str:
    code = raw.strip().lower()
    if not _LANGUAGE.match(code):
        raise BadParameter("language", f"must be a two-letter language code like en or fr,"
                                       f" not {raw!r}")
    return code


def language_name(code: str) -> str:
    """A language in its own words ("English", "Français"; searchapp.languages), else
    its code."""
    known = LANGUAGES.get(code)
    return known.name if known is not None else code


def _same(value: Any) -> Any:
    return value


_STRING = {"type": "string"}

ORGANISATION = Facet(
    heading="Organisation", plural="organisations", option="--org", help="Only these organisations (repeatable).",
    parameter=_STRING, value=_STRING, parse=_text, param=str, term=str, from_term=_same,
    label=str)
TYPE = Facet(
    heading="Type", plural="types", option="--type", help="Only these item types (repeatable).",
    parameter=_STRING, value=_STRING, parse=_text, param=str, term=str, from_term=_same,
    label=str)
YEAR = Facet(
    heading="Year", plural="years", option="--year",
    help="Only these years; `undated` selects items without a date (repeatable).",
    parameter={"type": "string", "pattern": r"^\s*(0*[1-9][0-9]{0,3}|undated|null|none)\s*$"},
    value={"type": ["integer", "null"]}, parse=_year, param=year_term, term=year_term,
    from_term=lambda t: None if t == UNDATED else int(t),
    label=lambda v: "Undated" if v is None else str(v), newest_first=True)
LANGUAGE = Facet(
    heading="Language", plural="languages", option="--language",
    help="Only items in these languages, as two-letter codes like en or fr (repeatable);"
         " the words are then analysed in these languages only.",
    parameter={"type": "string", "pattern": "^[A-Za-z]{2}$"},
    value={"type": "string", "pattern": "^[a-z]{2}$"}, parse=_language, param=str, term=str,
    from_term=_same, label=language_name)

FIELDS: tuple[Field, ...] = (
    Field("id", ID, lambda item: item.id),
    Field("title", TEXT, lambda item: item.title, spelling=True, title_boost=True),
    Field("summary", TEXT, lambda item: item.summary, spelling=True),
    Field("organisation", KEYWORD, lambda item: item.organisation, facet=ORGANISATION,
          column=True),
    Field("type", KEYWORD, lambda item: item.type, facet=TYPE, column=True),
    Field("year", KEYWORD, lambda item: year_term(item.year), facet=YEAR, column=True),
    Field("language", KEYWORD, lambda item: item.language, facet=LANGUAGE, column=True),
    # The date sorts (ISO dates sort as text); undated items have no term at all.
    Field("date", KEYWORD, lambda item: item.date.isoformat() if item.date else None,
          column=True),
    Field("url", STORED, lambda item: item.url or ""),
    Field("source", STORED, lambda item: item.source),
    # Stored so that the index holds every field of every item: `searchapp recover`
    # rebuilds a lost catalog from it.
    Field("source_url", STORED, lambda item: item.source_url or ""),
    Field("language_origin", STORED, lambda item: item.language_origin),
    Field("language_confidence", STORED, lambda item: item.language_confidence),
)

BY_NAME = {f.name: f for f in FIELDS}
# Facets in the order they are counted and returned.
FACETS: dict[str, Facet] = {f.name: f.facet for f in FIELDS if f.facet is not None}
FACET_FIELDS = tuple(FACETS)
# Per-document columns kept in memory: the facets, and the date for sorting.
COLUMN_FIELDS = tuple(f.name for f in FIELDS if f.column)
TEXT_FIELDS = tuple(f.name for f in FIELDS if f.kind == TEXT)
