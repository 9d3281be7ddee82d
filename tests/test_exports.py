"""A search to take away: /search.csv and /search.jsonl, streamed, capped, spreadsheet-safe."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import app_over
from flask import Flask
from flask.testing import FlaskClient

from searchapp import operations
from searchapp.config import Settings
from searchapp.export import FIELDS
from searchapp.web import exports


def rows_of(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_csv_has_every_match_in_the_page_order(client: FlaskClient) -> None:
    page = client.get("/api/search?q=cooperatives&per_page=100").get_json()
    response = client.get("/search.csv?q=cooperatives&page=2&per_page=3")  # page aside
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv" and response.mimetype_params["charset"] == "utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = rows_of(response)
    assert [r["id"] for r in rows] == [h["id"] for h in page["hits"]]
    assert len(rows) == page["total"] == int(response.headers["X-Total-Count"])
    assert response.headers["X-Export-Rows"] == str(len(rows))
    assert response.headers["X-Export-Capped"] == "false"
    assert list(rows[0]) == list(FIELDS)
    assert rows[0]["score"] == str(page["hits"][0]["score"])


def test_json_lines_carry_the_same_fields(client: FlaskClient) -> None:
    response = client.get("/search.jsonl?organisation=ilo&year=undated")
    assert response.status_code == 200 and response.mimetype == "application/jsonl"
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) == 1
    item = json.loads(lines[0])
    assert list(item) == list(FIELDS)
    assert item["organisation"] == "ILO" and item["date"] is None and item["score"] is None


def test_the_export_is_capped_and_says_so(client: FlaskClient,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "MAX_EXPORT_ROWS", 4)
    response = client.get("/search.csv")
    assert len(rows_of(response)) == 4
    assert response.headers["X-Total-Count"] == "35"
    assert response.headers["X-Export-Rows"] == "4"
    assert response.headers["X-Export-Capped"] == "true"


def test_bad_and_unknown_parameters_are_json_400s(client: FlaskClient) -> None:
    response = client.get("/search.csv?org=ILO")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "unknown_parameter" and error["unknown"] == ["org"]
    response = client.get("/search.jsonl?date_from=tomorrow")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("date_from: must be a date")


@pytest.fixture
def hostile(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    records = [
        {"id": "f1", "title": "=HYPERLINK(\"http://evil.example\",\"click\")",
         "summary": "+1+cmd|' /C calc'!A0", "date": "2020-01-02"},
        {"id": "f2", "title": "@SUM(1+1)", "summary": "-2+3", "date": "2020-01-01"},
        {"id": "f3", "title": "Plain, with \"quotes\" and a comma", "summary": "line one\nline two",
         "date": "2019-12-31"},
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    operations.import_paths(settings, [path], organisation="Test")
    with app_over(settings) as app:
        yield app


def test_cells_a_spreadsheet_would_run_are_neutralised(hostile: Flask) -> None:
    response = hostile.test_client().get("/search.csv")
    rows = {r["id"]: r for r in rows_of(response)}
    assert rows["f1"]["title"] == "'=HYPERLINK(\"http://evil.example\",\"click\")"
    assert rows["f1"]["summary"] == "'+1+cmd|' /C calc'!A0"
    assert rows["f2"]["title"] == "'@SUM(1+1)" and rows["f2"]["summary"] == "'-2+3"
    assert rows["f3"]["title"] == "Plain, with \"quotes\" and a comma"
    assert rows["f3"]["summary"] == "line one line two"
    # JSON Lines is data, not a spreadsheet: the text is kept as it is.
    lines = hostile.test_client().get("/search.jsonl").get_data(as_text=True).splitlines()
    assert json.loads(lines[0])["title"].startswith("=HYPERLINK")


def test_the_page_links_both_next_to_the_feed(client: FlaskClient) -> None:
    html = client.get("/?q=refugees&organisation=ilo&page=1").get_data(as_text=True)
    assert 'class="take-away">Download this item:' in html
    assert '<a href="/search.csv?q=refugees&amp;organisation=ILO" download>CSV</a>' in html
    assert '<a href="/search.jsonl?q=refugees&amp;organisation=ILO" download>JSON Lines</a>' in html
    assert '<a href="/feed.atom?q=refugees&amp;organisation=ILO">Atom feed</a>' in html
    html = client.get("/").get_data(as_text=True)
    assert "Download all 35 items:" in html


def test_the_export_is_compressed_as_it_streams(client: FlaskClient) -> None:
    response = client.get("/search.jsonl", headers={"Accept-Encoding": "br"})
    assert response.headers["Content-Encoding"] == "br"
    import brotli  # flask-compress's own dependency

    lines = brotli.decompress(response.get_data()).decode().splitlines()
    assert len(lines) == 35


def test_an_export_reads_on_while_a_new_generation_is_swapped_in(samples: Settings,
                                                                 tmp_path: Path) -> None:
    """The export is of the index as it was when it started; the snapshot it reads is
    closed once it is done, not when the engine moves on."""
    from searchapp.search import Engine, SearchQuery

    engine = Engine.from_settings(samples)
    try:
        export = engine.export(SearchQuery(), limit=100, batch=5)
        first = [next(export.rows) for _ in range(5)]
        extra = tmp_path / "more.jsonl"
        extra.write_text(json.dumps({"id": "new", "title": "A new item", "date": "2030-01-01"})
                         + "\n", encoding="utf-8")
        operations.import_paths(samples, [extra], organisation="Test")
        operations.rebuild(samples)
        assert engine.search(SearchQuery()).total == 36  # the engine has moved on
        rest = list(export.rows)
        assert export.total == export.count == 35 and len(first) + len(rest) == 35
        assert "new" not in {item.id for item, _ in first + rest}
        assert engine.search(SearchQuery(q="new item")).hits[0].item.id == "new"
    finally:
        engine.close()
