"""The exact `/api/search` response a program receives: key order, value types, the JSON
text itself and the headers, for answers that use every optional part of the shape.

Speeding the request up (#14) must not change any of it; the query semantics are
tested in test_search_api.py and the description in test_openapi.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from searchapp import operations
from searchapp.config import Settings

TOP = ["query", "total", "page", "per_page", "sort", "match", "filters", "dates", "hits",
       "facets", "facet_size", "facets_truncated", "suggestion", "shortened", "any_words",
       "too_common", "typos", "partial", "warnings", "unmatched"]
FACETS = ["organisation", "type", "year", "language"]
FILTERS = [*FACETS, "year_from", "year_to", "date_from", "date_to", "past"]
HIT = ["id", "title", "summary", "organisation", "date", "year", "type", "url", "language",
       "score", "highlights"]
FACET_VALUE = ["value", "label", "count", "selected"]


def get(client: FlaskClient, **params: Any) -> tuple[Any, dict[str, Any]]:
    response = client.get("/api/search", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response, response.get_json()


def test_a_page_of_hits_has_every_key_in_order_with_its_type(client: FlaskClient) -> None:
    _, body = get(client, q="cooperative", organisation="ILO", per_page=3, facet_size=1)
    assert list(body) == TOP
    assert (body["query"], body["page"], body["per_page"], body["sort"], body["match"]) == (
        "cooperative", 1, 3, "relevance", "all")
    assert list(body["filters"]) == FILTERS
    assert body["filters"]["organisation"] == ["ILO"]
    assert body["filters"]["type"] == [] and body["filters"]["past"] is None
    assert body["dates"] is None and body["any_words"] is None
    assert isinstance(body["total"], int) and body["total"] > 3
    assert len(body["hits"]) == 3
    for hit in body["hits"]:
        assert list(hit) == HIT
        assert hit["organisation"] == "ILO"
        assert isinstance(hit["score"], float) and round(hit["score"], 4) == hit["score"]
        assert isinstance(hit["year"], int) and hit["date"].startswith(str(hit["year"]))
        assert list(hit["highlights"]) == ["title", "summary"]
        assert "<mark>" in hit["highlights"]["title"] + hit["highlights"]["summary"]
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert list(body["facets"]) == FACETS and list(body["facets_truncated"]) == FACETS
    assert body["facet_size"] == 1
    for name, values in body["facets"].items():
        for value in values:
            assert list(value) == FACET_VALUE
            assert isinstance(value["count"], int) and isinstance(value["selected"], bool)
        assert len([v for v in values if not v["selected"]]) <= 1, name
    # The selected organisation is listed although another one counts more.
    organisations = body["facets"]["organisation"]
    assert organisations[0]["selected"] is False and organisations[0]["count"] > body["total"]
    assert organisations[1] == {"value": "ILO", "label": "ILO", "count": body["total"],
                                "selected": True}
    assert all(isinstance(v["value"], int) for v in body["facets"]["year"])
    assert body["facets_truncated"]["year"] is True
    assert (body["suggestion"], body["shortened"], body["too_common"], body["typos"],
            body["partial"], body["warnings"], body["unmatched"]) == (
                None, False, [], [], False, [], [])


def test_optional_parts_have_their_shapes(client: FlaskClient) -> None:
    _, typo = get(client, q="cooperatve")
    assert typo["typos"] and all(list(t) == ["word", "matched"] for t in typo["typos"])
    assert typo["typos"][0]["word"] == "cooperatve"
    assert all(isinstance(m, str) for m in typo["typos"][0]["matched"])
    _, some = get(client, q="cooperative xyzzyq")
    assert some["total"] == 0 and some["hits"] == []
    assert some["any_words"] == {"match": "any", "total": some["any_words"]["total"]}
    assert some["any_words"]["total"] > 0
    _, dated = get(client, q="cooperative", date_from="2015-01-01", sort="newest")
    assert dated["dates"] == {"from": "2015-01-01", "to": None}
    assert dated["filters"]["date_from"] == "2015-01-01" and dated["sort"] == "newest"
    assert all(h["score"] is None for h in dated["hits"])
    _, common = get(client, q="the and")
    assert common["too_common"] == ["the", "and"] and common["total"] == 0


def test_the_body_is_compact_utf8_json_and_the_headers_are_the_apis(client: FlaskClient) -> None:
    response, body = get(client, q="cooperative", per_page=20)
    text = response.get_data(as_text=True)
    # Compact, keys in the order above, non-ASCII characters as themselves, a final newline.
    assert text == json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n"
    assert any(ord(ch) > 127 for ch in text)
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.data)
    assert response.headers["Cache-Control"] == "public, no-cache"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    etag = response.headers["ETag"]
    again = client.get("/api/search", query_string={"q": "cooperative", "per_page": 20},
                       headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag


def test_a_settled_index_is_not_listed_per_request_and_a_commit_is_still_seen(
        app: Flask, client: FlaskClient, samples: Settings, tmp_path: Path) -> None:
    """Once the generation's folder has gone unchanged a while, a request checks it for
    new commits by its modification time alone (no listing of its files); an import
    adds files to it, and the next request answers from it."""
    import os
    import time

    engine = app.extensions["searchapp.engine"]
    folder = engine.store.current().path
    an_hour_ago = time.time() - 3600
    os.utime(folder, (an_hour_ago, an_hour_ago))  # as an index left alone for an hour
    get(client, q="kingfisher")  # opens the snapshot
    ix = engine._snapshot.searcher._ix
    listed = []
    listing = ix.latest_generation

    def counted() -> Any:  # Whoosh's look for a newer table of contents, counted
        listed.append(1)
        return listing()

    ix.latest_generation = counted
    before, body = get(client, q="kingfisher")
    again, _ = get(client, q="kingfisher")
    assert body["total"] == 0 and len(listed) == 1  # the first look lists, and settles
    assert again.headers["ETag"] == before.headers["ETag"]
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"id": "bird", "title": "Kingfisher cooperative",
                                 "date": "2024-05-01", "language": "en"}) + "\n",
                     encoding="utf-8")
    operations.import_paths(samples, [extra], organisation="Test")
    assert engine.store.current().path == folder  # a commit to the same generation
    after, body = get(client, q="kingfisher")
    assert [h["id"] for h in body["hits"]] == ["bird"]
    assert after.headers["ETag"] != before.headers["ETag"]


def test_a_request_looks_at_the_index_once_and_the_next_one_sees_an_import(
        app: Flask, client: FlaskClient, samples: Settings, tmp_path: Path) -> None:
    """The ETag and the answer come from one look at the index (one check for a new
    generation or new commits, not one for each); the next request looks again."""
    store = app.extensions["searchapp.engine"].store
    looks = []
    check = store.pointer_stamp

    def counted() -> Any:  # the real check, counted
        looks.append(1)
        return check()

    store.pointer_stamp = counted
    before, body = get(client, q="kingfisher")
    assert body["total"] == 0 and len(looks) == 1
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"id": "bird", "title": "Kingfisher cooperative",
                                 "date": "2024-05-01", "language": "en"}) + "\n",
                     encoding="utf-8")
    operations.import_paths(samples, [extra], organisation="Test")
    after = client.get("/api/search", query_string={"q": "kingfisher"},
                       headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and len(looks) == 2
    assert [h["id"] for h in after.get_json()["hits"]] == ["bird"]
    assert after.headers["ETag"] != before.headers["ETag"]
