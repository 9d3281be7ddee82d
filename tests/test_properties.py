"""Properties of the API under arbitrary input: never a server error; every 200 is what
the OpenAPI description says; every 4xx is the JSON error shape."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from openapi_support import ApiDescription, error_shape

from searchapp.fields import FACETS
from searchapp.search import MAX_QUERY_CHARS

PARAMETERS = ("q", "page", "per_page", "year", "year_from", "year_to", "sort", "match",
              "organisation", "type", "language", "date_from", "date_to", "past", "facet_size")
OPERATORS = ["AND", "OR", "NOT", "-", "+", '"', "(", ")", "*", "?", "title:", "summary:", ":",
             "^", "~", "[", "]", "{", "}", "TO", "\\", "/", "'", "<", ">", "&", "%", "#", "=",
             "<mark>", "&amp;", "\u201c", "\u201d"]
WORDS = ["cooperatives", "refugees", "elections", "ILO", "CECOP", "social", "économie",
         "Özge", "coop", "a", "the", "z", "2017"]
NEAR_MISSES = ["", " ", "0", "1", "-1", "10", "100", "101", "1000", "1001", "2016", "2017",
               "9999", "10000", "999", "undated", "UNDATED", "null", "None", "NaN", "inf",
               "1e3", "0x10", "1_0", "+5", " 7 ", "\uff11\uff12", "\u0669", "2017.0", "9" * 5000,
               "relevance", "newest", "oldest", "all", "any", "ILO", "CECOP", "News",
               "Press release"]

# Text with control characters, quotes, operators, any script (no lone surrogates: a URL
# cannot carry them).
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
queries = st.one_of(
    any_text,
    st.lists(st.one_of(st.sampled_from(OPERATORS), st.sampled_from(WORDS), any_text),
             max_size=12).map(" ".join),
    st.lists(st.sampled_from(OPERATORS + WORDS), max_size=8).map("".join),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=MAX_QUERY_CHARS - 5,
            max_size=MAX_QUERY_CHARS + 5),
)
values = st.one_of(st.sampled_from(NEAR_MISSES), any_text,
                   st.integers(-10**12, 10**12).map(str))
# Values a client would send: most requests should get through to a search.
plausible: dict[str, st.SearchStrategy[str]] = {
    "q": queries,
    "page": st.integers(1, 15).map(str),
    "per_page": st.integers(1, 100).map(str),
    "year": st.sampled_from(["2015", "2016", "2017", "undated", "1999"]),
    "year_from": st.integers(2000, 2016).map(str),
    "year_to": st.integers(2016, 2030).map(str),
    "sort": st.sampled_from(["relevance", "newest", "oldest"]),
    "match": st.sampled_from(["all", "any"]),
    "organisation": st.sampled_from(["ILO", "CECOP", "Nobody"]),
    "type": st.sampled_from(["News", "Press release", "Event", "COOP Champions"]),
    "language": st.sampled_from(["en", "fr", "EN", "xx"]),
    "date_from": st.dates(dt.date(2014, 1, 1), dt.date(2018, 1, 1)).map(dt.date.isoformat),
    "date_to": st.dates(dt.date(2016, 1, 1), dt.date(2030, 1, 1)).map(dt.date.isoformat),
    "past": st.sampled_from(["week", "month", "year", "Year"]),
    "facet_size": st.integers(1, 1000).map(str),
}


def parameter(name: str) -> st.SearchStrategy[list[str]]:
    # One value in six is junk, so that most requests get as far as a search.
    one = st.integers(0, 5).flatmap(lambda n: values if n == 0 else plausible[name])
    return st.lists(one, min_size=1, max_size=3)  # a repeated single parameter: the last wins


requests = st.lists(st.sampled_from(PARAMETERS), unique=True).flatmap(
    lambda names: st.fixed_dictionaries({name: parameter(name)
                                         for name in sorted({*names, "q"})}))

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def reader(read_only_app: Flask) -> FlaskClient:
    return read_only_app.test_client()


@pytest.fixture(scope="module")
def api(reader: FlaskClient) -> ApiDescription:
    return ApiDescription.of(reader)


def as_query_string(params: dict[str, list[str]]) -> str:
    return urlencode([(name, v) for name, vs in params.items() for v in vs])


def check_api(api: ApiDescription, path: str, response: Any) -> Any:
    event(f"status {response.status_code}")
    assert response.status_code < 500, response.get_data(as_text=True)
    body = api.check(path, response)
    if response.status_code >= 400:
        error_shape(response)
    return body


@SETTINGS
@given(params=requests)
def test_search_never_fails_and_always_answers_as_described(
        reader: FlaskClient, api: ApiDescription, params: dict[str, list[str]]) -> None:
    response = reader.get("/api/search?" + as_query_string(params))
    body = check_api(api, "/api/search", response)
    if response.status_code == 200:
        assert body["query"] == params.get("q", [""])[-1]
        assert len(body["hits"]) <= body["per_page"] and body["total"] >= len(body["hits"])
        for name in FACETS:  # selected values are always listed
            selected = [v["value"] for v in body["facets"][name] if v["selected"]]
            assert sorted(map(str, selected)) == sorted(map(str, body["filters"][name]))
    else:
        assert response.status_code == 400
        assert error_shape(response)["message"].split(":")[0] in PARAMETERS


@SETTINGS
@given(params=requests)
def test_the_html_page_and_feed_never_fail(reader: FlaskClient,
                                           params: dict[str, list[str]]) -> None:
    query = as_query_string(params)
    page = reader.get(f"/?{query}")
    assert page.status_code in (200, 400) and page.mimetype == "text/html"
    feed = reader.get(f"/feed.atom?{query}")
    assert (feed.status_code, feed.mimetype) in ((200, "application/atom+xml"),
                                                 (400, "application/json"))
    if feed.status_code == 400:  # a feed reader is a program: it gets the API's error shape
        assert error_shape(feed)["code"] == "bad_parameter"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(q=queries, fmt=st.one_of(st.none(), st.sampled_from(["json", "opensearch"]), any_text))
def test_suggest_never_fails(reader: FlaskClient, api: ApiDescription, q: str,
                             fmt: str | None) -> None:
    params = {"q": q} if fmt is None else {"q": q, "format": fmt}
    response = reader.get("/api/suggest?" + urlencode(params))
    body = check_api(api, "/api/suggest", response)
    if response.status_code == 200:
        assert (body[0] if fmt == "opensearch" else body["query"]) == q


@pytest.fixture(scope="module")
def item_ids(reader: FlaskClient) -> list[str]:
    return [h["id"] for h in reader.get("/api/search?per_page=100").get_json()["hits"]]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_item_id_is_an_item_or_a_404(reader: FlaskClient, api: ApiDescription,
                                         item_ids: list[str], data: st.DataObject) -> None:
    item_id = data.draw(st.one_of(
        st.sampled_from(item_ids),
        st.sampled_from(item_ids).flatmap(lambda i: st.sampled_from([i[:-1], i + "x", i.upper()])),
        # Not from a "/": Werkzeug redirects /api/items//x to /api/items/x (known limitation).
        st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=60).filter(
            lambda i: not i.startswith("/"))))
    path = "/api/items/" + quote(item_id, safe="")
    response = reader.get(path)
    assert response.status_code in (200, 404), (item_id, response.status_code)
    check_api(api, path, response)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.text(st.sampled_from("q=&%+;#?/ab01fFzZ\u00e9_-.~[]\"'\\"), max_size=40))
def test_raw_query_strings_never_fail(reader: FlaskClient, api: ApiDescription,
                                      raw: str) -> None:
    for path in ("/api/search", "/api/suggest"):
        response = reader.get(f"{path}?{raw}")
        check_api(api, path, response)
