"""Every declared facet reaches every surface: request, schema, CLI, OpenAPI, README."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields

from conftest import ROOT

from searchapp.cli import search as search_command
from searchapp.fields import BY_NAME, FACETS, FIELDS, language_name
from searchapp.models import Item
from searchapp.request import SearchQuery
from searchapp.schema import schema
from searchapp.web.openapi import SCHEMAS, SEARCH_PARAMETERS


def test_every_facet_reaches_every_surface() -> None:
    attributes = {f.name for f in dataclass_fields(SearchQuery)}
    options = {p.name: p for p in search_command.params}
    parameters = {p["name"] for p in SEARCH_PARAMETERS}
    response = SCHEMAS["SearchResponse"]["properties"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, facet in FACETS.items():
        assert name in attributes and hasattr(Item, name)
        assert schema()[name].indexed and BY_NAME[name].column
        assert facet.option in options[name].opts and options[name].multiple
        assert name in parameters
        assert name in response["facets"]["required"]
        assert name in response["filters"]["required"]
        assert f"`{name}`" in readme and facet.option in readme


def test_the_schema_has_exactly_the_declared_fields() -> None:
    declared = {f.name for f in FIELDS}
    spelling = {f"spell_{f.name}" for f in FIELDS if f.spelling}
    assert set(schema().names()) == declared | spelling


def test_languages_are_named_in_their_own_words() -> None:
    assert [language_name(c) for c in ("en", "fr", "es", "de")] == [
        "English", "Français", "Español", "Deutsch"]
    assert language_name("zz") == "zz"  # unknown to the CLDR: the code itself
