"""Date filters: `date_from` / `date_to` and the past week / month / year presets, through
the API, the page, the Atom feed and the CLI, on the engine's fast path."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, app_over
from flask import Flask
from flask.testing import FlaskClient

from searchapp import operations
from searchapp.config import Settings
from searchapp.engine import FALLBACKS
from searchapp.request import preset_start, utc_today

TODAY = utc_today()
AGO = {"today": 0, "3 days": 3, "8 days": 8, "20 days": 20, "40 days": 40, "200 days": 200,
       "400 days": 400}


def day(label: str) -> dt.date:
    return TODAY - dt.timedelta(days=AGO[label])


@pytest.fixture
def dated(settings: Settings, tmp_path: Path) -> Settings:
    """One item per distance from today, one from 2017, and one undated."""
    records: list[dict[str, Any]] = [
        {"id": label, "title": f"Cooperative news from {label} ago", "date": day(label).isoformat(),
         "organisation": "ILO" if n % 2 else "CECOP", "type": "News"}
        for n, label in enumerate(AGO)]
    records.append({"id": "2017", "title": "Cooperative news of 2017", "date": "2017-03-05",
                    "organisation": "ILO", "type": "News"})
    records.append({"id": "undated", "title": "Cooperative news of no date",
                    "organisation": "ILO", "type": "News"})
    path = tmp_path / "dated.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    operations.import_paths(settings, [path], organisation="Test")
    return settings


@pytest.fixture
def app(dated: Settings) -> Iterator[Flask]:
    with app_over(dated, engine="arrays") as app:
        yield app


def found(client: FlaskClient, **params: Any) -> list[str]:
    response = client.get("/api/search", query_string={"per_page": 100, **params})
    assert response.status_code == 200, response.get_json()
    return sorted(h["id"] for h in response.get_json()["hits"])


def test_a_date_range_keeps_the_days_at_both_ends_and_leaves_out_undated_items(
        client: FlaskClient) -> None:
    assert found(client, date_from=day("40 days").isoformat(),
                 date_to=day("8 days").isoformat()) == ["20 days", "40 days", "8 days"]
    assert found(client, date_to="2017-03-05") == ["2017"]
    assert found(client, date_to="2017-03-04") == []
    everything_dated = found(client, date_from="1000-01-01")
    assert "undated" not in everything_dated and len(everything_dated) == len(AGO) + 1
    body = client.get("/api/search?date_from=2017-01-01&date_to=2017-12-31").get_json()
    assert body["filters"]["date_from"] == "2017-01-01" and body["filters"]["date_to"] == "2017-12-31"
    assert body["dates"] == {"from": "2017-01-01", "to": "2017-12-31"}
    assert {v["value"]: v["count"] for v in body["facets"]["year"]} == {2017: 1}


def test_presets_count_back_from_today(client: FlaskClient) -> None:
    assert found(client, past="week") == ["3 days", "today"]
    assert found(client, past="month") == ["20 days", "3 days", "8 days", "today"]
    assert found(client, past="year") == ["20 days", "200 days", "3 days", "40 days",
                                          "8 days", "today"]
    body = client.get("/api/search?past=month").get_json()
    assert body["filters"]["past"] == "month"
    assert body["dates"] == {"from": preset_start("month", TODAY).isoformat(),
                             "to": TODAY.isoformat()}
    # With a range too, both hold.
    assert found(client, past="year", date_to=day("40 days").isoformat()) == ["200 days",
                                                                            "40 days"]


def test_preset_windows_on_the_calendar() -> None:
    assert preset_start("week", dt.date(2026, 3, 3)) == dt.date(2026, 2, 24)
    assert preset_start("month", dt.date(2026, 3, 31)) == dt.date(2026, 2, 28)
    assert preset_start("month", dt.date(2026, 1, 15)) == dt.date(2025, 12, 15)
    assert preset_start("year", dt.date(2028, 2, 29)) == dt.date(2027, 2, 28)


@pytest.mark.parametrize(("query", "name", "says"), [
    ("date_from=2017", "date_from", "must be a date like 2017-05-31"),
    ("date_to=2017-02-30", "date_to", "is not a date on the calendar"),
    ("date_to=31/12/2017", "date_to", "must be a date like"),
    ("date_from=0999-12-31", "date_from", "years 1000 to 9999"),
    ("date_from=2018-01-01&date_to=2017-01-01", "date_from", "2018-01-01 is after date_to"),
    ("past=decade", "past", "must be one of week, month, year"),
])
def test_bad_dates_are_400s_that_say_what_is_wrong(client: FlaskClient, query: str, name: str,
                                                   says: str) -> None:
    response = client.get(f"/api/search?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_parameter"
    assert error["message"].startswith(f"{name}: ") and says in error["message"]


def test_date_filters_stay_on_the_arrays_path(app: Flask, client: FlaskClient) -> None:
    before = FALLBACKS.snapshot()
    assert found(client, q="cooperative", past="year", organisation="ilo") == [
        "20 days", "200 days", "3 days"]
    assert found(client, q="news", date_from="2017-01-01", sort="oldest") != []
    health = client.get("/healthz").get_json()
    assert health["engine"]["kind"] == "arrays"
    assert FALLBACKS.snapshot() == before  # nothing handed to plain Whoosh


def test_the_page_has_presets_a_range_form_and_chips(client: FlaskClient) -> None:
    html = client.get("/?past=month").get_data(as_text=True)
    assert "4 items" in html
    assert 'class="chip-label">Past month</span>' in html
    assert '<span class="label">Past week</span>' in html and 'href="/?past=week"' in html
    assert 'aria-current="true"' in html and "Undated items are left out" in html
    assert 'type="date"' in html and 'name="date_from"' in html
    html = client.get("/?date_from=2017-01-01&date_to=2017-12-31").get_data(as_text=True)
    assert '"chip-label">1 Jan 2017 – 31 Dec 2017</span>' in html
    assert 'value="2017-01-01"' in html and 'value="2017-12-31"' in html
    assert "1 item" in html and "of 2017" in html


def test_the_page_swaps_a_reversed_range_and_marks_a_bad_date(client: FlaskClient) -> None:
    response = client.get("/?date_from=2017-12-31&date_to=2017-01-01")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The date range 2017-12-31 to 2017-01-01 was reversed" in html
    assert '"chip-label">1 Jan 2017 – 31 Dec 2017</span>' in html
    response = client.get("/?q=cooperative&date_from=yesterday")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The first date must be a date like 2017-05-31" in html
    assert 'value="yesterday"' in html and 'aria-invalid="true"' in html
    assert 'value="cooperative"' in html  # the search is kept


def test_the_feed_takes_dates(client: FlaskClient) -> None:
    response = client.get("/feed.atom?past=week")
    assert response.status_code == 200
    atom = "{http://www.w3.org/2005/Atom}"
    titles = [e.findtext(f"{atom}title") for e in ET.fromstring(response.data).iter(f"{atom}entry")]
    assert titles == ["Cooperative news from today ago", "Cooperative news from 3 days ago"]
    assert client.get("/feed.atom?date_to=soon").status_code == 400


def test_the_cli_takes_from_to_and_past(dated: Settings) -> None:
    cli = Cli(dated)
    result = cli("search", "--from", day("40 days"), "--to", day("8 days"), "--json")
    assert result.exit_code == 0
    assert sorted(h["id"] for h in json.loads(result.stdout)["hits"]) == ["20 days", "40 days",
                                                                          "8 days"]
    result = cli("search", "--past", "week")
    assert result.stdout.startswith("2 items (sorted by newest)\ndated from"
                                    f" {day('today') - dt.timedelta(days=7)} to {TODAY}"
                                    " (undated items left out)")
    bad = cli("search", "--from", "2017-02-30")
    assert bad.exit_code == 2 and "Invalid value for '--from'" in bad.stderr
    assert "not a date on the calendar" in bad.stderr
    bad = cli("search", "--from", "2018-01-01", "--to", "2017-01-01")
    assert bad.exit_code == 2 and "2018-01-01 is after --to 2017-01-01" in bad.stderr
