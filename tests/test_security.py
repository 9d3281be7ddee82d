"""Headers on every response, escaping of hostile items, request limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import app_over
from flask import Flask
from flask.testing import FlaskClient

from searchapp import create_app, operations
from searchapp.config import Settings
from searchapp.query import MAX_CLAUSES, MAX_PREFIX_TERMS, parse
from searchapp.request import MAX_QUERY_CHARS

HOSTILE = [
    {"id": "h1", "title": "<script>alert('t')</script> cooperative",
     "summary": '<img src=x onerror="alert(1)"> cooperative'},
    {"id": "h2", "title": '" onmouseover="alert(2)" cooperative', "url": "javascript:alert(3)"},
    {"id": "h3", "title": "Safe cooperative link", "url": "https://example.org/news?a=1&b=<2>"},
]


@pytest.fixture
def hostile(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in HOSTILE))
    operations.import_paths(settings, [path], organisation='<b>Org</b>')
    with app_over(settings) as app:
        yield app


@pytest.mark.parametrize("path", ["/", "/?q=cooperative", "/items/h1", "/api/search",
                                  "/api/items/h1", "/api/suggest?q=co", "/healthz",
                                  "/feed.atom", "/opensearch.xml", "/nowhere", "/api/nowhere"])
def test_security_headers_everywhere(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_pages_have_no_inline_script_or_style(client: FlaskClient) -> None:
    for path in ("/", "/?q=refugees", "/nowhere"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert "onclick=" not in html


def test_hostile_items_are_text_everywhere(hostile: Flask) -> None:
    client = hostile.test_client()
    for path in ("/?q=cooperative", "/items/h1", "/items/h2", "/feed.atom?q=cooperative"):
        body = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in body and "<img src=x" not in body
        assert '" onmouseover="alert(2)"' not in body
        assert "<b>Org</b>" not in body
    page = client.get("/items/h2").get_data(as_text=True)
    assert 'href="javascript:' not in page and "javascript:alert(3)" in page  # shown, not linked
    safe = client.get("/items/h3").get_data(as_text=True)
    assert 'href="https://example.org/news?a=1&amp;b=&lt;2&gt;"' in safe


def test_no_debug_pages_or_tracebacks(hostile: Flask) -> None:
    assert not hostile.debug
    client = hostile.test_client()
    for path in ("/?page=zz", "/api/search?page=zz", "/items/%00", "/api/items/..%2F..%2Fetc"):
        body = client.get(path).get_data(as_text=True)
        assert "Traceback" not in body and "werkzeug" not in body.lower()


def test_expensive_queries_are_bounded(client: FlaskClient) -> None:
    many = " ".join(f"w{n}" for n in range(400))
    assert len(parse(many).groups) == MAX_CLAUSES
    assert client.get("/api/search", query_string={"q": many}).status_code == 200
    assert client.get("/api/search?q=c*").status_code == 200
    pasted = client.get("/api/search", query_string={"q": "cooperatives " * 1_500})
    assert pasted.status_code == 200 and pasted.get_json()["shortened"] is True
    huge = client.get("/api/search", query_string={"q": "x" * (MAX_QUERY_CHARS + 1)})
    assert huge.status_code == 400 and huge.get_json()["error"]["message"].startswith("q: ")


def test_a_prefix_matches_at_most_its_cap_of_words(settings: Settings, tmp_path: Path) -> None:
    """100 items, each with its own word starting "zq": a prefix search reaches only the
    first MAX_PREFIX_TERMS of those words (all equally frequent: ties go by the word)."""
    path = tmp_path / "words.jsonl"
    path.write_text("".join(json.dumps({"id": f"w{n:03d}", "title": f"report zq{n:03d}"}) + "\n"
                            for n in range(100)))
    operations.import_paths(settings, [path], organisation="ICA")
    app = create_app({"catalog": settings.catalog, "index_dir": settings.index_dir})
    try:
        data = app.test_client().get("/api/search?q=zq*&per_page=100").get_json()
    finally:
        app.extensions["searchapp.engine"].close()
    assert data["total"] == MAX_PREFIX_TERMS < 100
    assert sorted(h["id"] for h in data["hits"]) == [f"w{n:03d}" for n in range(MAX_PREFIX_TERMS)]
