"""The OpenAPI description is true: real responses validate against it, and schemathesis
finds no server error, undocumented status, content type or body shape."""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import OpenAPIV31SpecValidator
from openapi_support import ApiDescription, error_shape
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from searchapp.search import MAX_QUERY_CHARS


@pytest.fixture(scope="module")
def api(read_only_app: Flask) -> ApiDescription:
    return ApiDescription.of(read_only_app.test_client())


@pytest.fixture(scope="module")
def reader(read_only_app: Flask) -> FlaskClient:
    return read_only_app.test_client()


# The description itself ---------------------------------------------------


def test_the_description_is_valid_openapi_3_1(api: ApiDescription) -> None:
    assert api.document["openapi"].startswith("3.1.")
    errors = [e.message for e in OpenAPIV31SpecValidator(api.document).iter_errors()]
    assert errors == []


# The HTML pages and their assets are for people; everything else is described.
PAGES = ("/", "/items/<path:item_id>", "/static/<path:filename>")


def test_the_description_covers_every_route_but_the_pages(read_only_app: Flask,
                                                          api: ApiDescription) -> None:
    """A program needs nothing but the description to use the API, admin and feed included."""
    for rule in read_only_app.url_map.iter_rules():
        path = rule.rule
        if path in PAGES:
            continue
        template = api.template(re.sub(r"<(?:\w+:)?\w+>", "some-id", path))
        documented = api.document["paths"][template]
        assert {m.lower() for m in rule.methods or ()} - {"head", "options"} <= set(documented)
    for operation in (op for item in api.document["paths"].values() for op in item.values()):
        assert operation["operationId"] and operation["summary"]


# Real responses against it ------------------------------------------------


@pytest.mark.parametrize("query", [
    "", "q=refugees", "q=elections&organisation=CECOP&year=2016", "q=cooperatves", "q=what+is+the",
    "q=refugees+zebra", "q=refugees+zebra&match=any", "year=undated&organisation=ILO",
    "sort=oldest&per_page=100", "page=1000", "q=title:elections", "q=%22social+economy%22",
    "q=coop*+-italy", "year_from=2016&year_to=2017&type=News&type=Event", "q=cooperatives+OR+x",
    "organisation=Nobody&year=1999", "q=" + "word+" * 50,
])
def test_search_responses_match_the_description(reader: FlaskClient, api: ApiDescription,
                                                query: str) -> None:
    response = reader.get(f"/api/search?{query}")
    assert response.status_code == 200
    body = api.check("/api/search", response)
    assert body["total"] >= len(body["hits"])


def test_hits_and_facets_as_described(reader: FlaskClient, api: ApiDescription) -> None:
    body = api.check("/api/search", reader.get("/api/search?organisation=ILO&per_page=100"))
    undated = [h for h in body["hits"] if h["date"] is None]
    assert len(undated) == 1 and undated[0]["year"] is None and undated[0]["score"] is None
    assert {"value": None, "label": "Undated", "count": 1, "selected": False} in body["facets"]["year"]
    body = api.check("/api/search", reader.get("/api/search?q=refugees"))
    assert all(isinstance(h["score"], float) for h in body["hits"])
    assert "<mark>" in body["hits"][0]["highlights"]["title"]


def test_items_match_the_description(reader: FlaskClient, api: ApiDescription) -> None:
    ids = [h["id"] for h in reader.get("/api/search?per_page=100").get_json()["hits"]]
    assert len(ids) == 35
    for item_id in ids:
        body = api.check(f"/api/items/{item_id}", reader.get(f"/api/items/{item_id}"))
        assert body["id"] == item_id and item_id not in {r["id"] for r in body["related"]}


def test_suggestions_in_both_formats(reader: FlaskClient, api: ApiDescription) -> None:
    body = api.check("/api/suggest", reader.get("/api/suggest?q=coo"))
    assert body == {"query": "coo", "suggestions": body["suggestions"]}
    assert "cooperatives" in body["suggestions"]
    body = api.check("/api/suggest", reader.get("/api/suggest?q=ref&format=opensearch"))
    assert body == ["ref", ["reform", "refugee", "refugees"]]
    assert api.check("/api/suggest", reader.get("/api/suggest")) == {"query": "",
                                                                     "suggestions": []}


def test_health_and_the_description_itself(reader: FlaskClient, api: ApiDescription) -> None:
    body = api.check("/healthz", reader.get("/healthz"))
    assert body["status"] == "ok" and body["items"] == body["documents"] == 35
    assert api.check("/api/openapi.json", reader.get("/api/openapi.json")) == api.document


def test_conditional_get_is_described(reader: FlaskClient, api: ApiDescription) -> None:
    for path in ("/api/search?q=refugees", "/api/items/"
                 + reader.get("/api/search?q=refugees").get_json()["hits"][0]["id"]):
        first = reader.get(path)
        tag = first.headers["ETag"]
        again = reader.get(path, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.headers["ETag"] == tag
        api.check(path.split("?")[0], again)


@pytest.mark.parametrize(("path", "parameter"), [
    ("/api/search?page=abc", "page"), ("/api/search?page=0", "page"),
    ("/api/search?page=1001", "page"), ("/api/search?per_page=101", "per_page"),
    ("/api/search?per_page=-1", "per_page"), ("/api/search?sort=random", "sort"),
    ("/api/search?match=some", "match"), ("/api/search?year=soon", "year"),
    ("/api/search?year_from=99", "year_from"), ("/api/search?year_to=10000", "year_to"),
    ("/api/search?year_from=2017&year_to=2016", "year_from"),
    ("/api/search?q=" + "x" * (MAX_QUERY_CHARS + 1), "q"),
    ("/api/suggest?q=" + "x" * (MAX_QUERY_CHARS + 1), "q"),
    ("/api/suggest?q=co&format=xml", "format"),
])
def test_bad_parameters_are_described_400s(reader: FlaskClient, api: ApiDescription,
                                           path: str, parameter: str) -> None:
    response = reader.get(path)
    assert response.status_code == 400
    api.check(path.split("?")[0], response)
    error = error_shape(response)
    assert error["code"] == "bad_parameter" and error["message"].startswith(parameter)


def test_not_found_and_wrong_method_are_described(reader: FlaskClient,
                                                  api: ApiDescription) -> None:
    response = reader.get("/api/items/no-such-id")
    assert response.status_code == 404
    api.check("/api/items/no-such-id", response)
    assert error_shape(response)["code"] == "not_found"
    for method, path in [("post", "/api/search"), ("delete", "/api/items/x"),
                         ("put", "/api/suggest")]:
        response = reader.open(path, method=method.upper())
        assert response.status_code == 405, path
        api.check(path, response, method=method)
        assert error_shape(response)["code"] == "method_not_allowed"
    response = reader.get("/api/no-such-thing")
    assert response.status_code == 404 and error_shape(response)["code"] == "not_found"


# Schemathesis -------------------------------------------------------------
#
# Driven through hypothesis directly, as schemathesis' lazy pytest loader does
# not run on pytest 9. Operations with query parameters also get invalid ones.
# (Schemathesis leaves out the operation that serves the description itself.)

RUNS = [("search", GenerationMode.POSITIVE), ("search", GenerationMode.NEGATIVE),
        ("getItem", GenerationMode.POSITIVE), ("suggest", GenerationMode.POSITIVE),
        ("suggest", GenerationMode.NEGATIVE), ("health", GenerationMode.POSITIVE),
        ("feed", GenerationMode.POSITIVE),
        ("refreshSources", GenerationMode.POSITIVE)]
EXAMPLES = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(read_only_app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", read_only_app)


def test_schemathesis_sees_every_operation(api_schema: Any) -> None:
    found = {result.ok().label for result in api_schema.get_all_operations()}
    assert found == {"GET /api/search", "GET /api/items/{id}", "GET /api/suggest",
                     "GET /healthz", "GET /feed.atom", "GET /opensearch.xml",
                     "POST /api/admin/imports", "POST /api/admin/reindex", "GET /api/admin/jobs",
                     "GET /api/admin/jobs/{id}",
                     "POST /api/admin/refresh"}


@pytest.mark.parametrize(("operation_id", "mode"), RUNS,
                         ids=[f"{op}-{mode.value}" for op, mode in RUNS])
def test_schemathesis_finds_nothing_wrong(api_schema: Any, operation_id: str,
                                          mode: GenerationMode) -> None:
    operation = api_schema.find_operation_by_id(operation_id)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def conforms(case: Any) -> None:
        # The WSGI transport does not decode bodies, and the app compresses for any
        # client that accepts it; the schema describes the decoded body.
        case.call_and_validate(checks=CHECKS, headers={"Accept-Encoding": "identity"})

    conforms()
