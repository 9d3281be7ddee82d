"""Refreshing over HTTP (POST /api/admin/refresh) and freshness where people look: the
search page footer and `searchapp stats`."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator

import pytest
from conftest import Cli
from fetch_support import OPTIONS, fast_env, jsonl, requests_to, site, site_server
from flask import Flask
from flask.testing import FlaskClient
from openapi_support import ApiDescription
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from searchapp import create_app, importers, operations
from searchapp import refresh as refreshing
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.sources import new_source

__all__ = ["site", "site_server"]  # fixtures, imported for pytest

TOKEN = "refresh-token-for-tests"
WAIT = 60  # seconds a test waits for a job it started
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FETCH = {"user_agent": OPTIONS.user_agent, "fetch_timeout": OPTIONS.timeout,
         "fetch_connect_timeout": OPTIONS.connect_timeout, "fetch_retries": OPTIONS.retries,
         "fetch_backoff": OPTIONS.backoff, "fetch_host_delay": OPTIONS.host_delay,
         "fetch_max_bytes": OPTIONS.max_bytes}


def _follow(settings: Settings, name: str, url: str, org: str = "ICA") -> None:
    with Catalog(settings.catalog) as catalog:
        catalog.add_source(new_source(name=name, url=url, organisation=org))


def _app(settings: Settings, **extra: object) -> Flask:
    app = create_app({"catalog": settings.catalog, "index_dir": settings.index_dir, **FETCH,
                      **extra})
    app.config["TESTING"] = True
    return app


@pytest.fixture
def admin_app(samples: Settings) -> Iterator[Flask]:
    app = _app(samples, admin_token=TOKEN)
    yield app
    app.extensions["searchapp.engine"].close()


@pytest.fixture
def admin(admin_app: Flask) -> FlaskClient:
    return admin_app.test_client()


def test_refresh_needs_the_token(samples: Settings, site: HTTPServer) -> None:
    site.expect_request("/news.jsonl").respond_with_data(jsonl("Alpha"))
    _follow(samples, "ica-news", site.url_for("/news.jsonl"))
    off = _app(samples)
    try:
        response = off.test_client().post("/api/admin/refresh", headers=AUTH)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
    finally:
        off.extensions["searchapp.engine"].close()
    on = _app(samples, admin_token=TOKEN)
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = on.test_client().post("/api/admin/refresh", headers=headers)
            assert response.status_code == 401
            assert response.get_json()["error"]["code"] == "unauthorised"
    finally:
        on.extensions["searchapp.engine"].close()
    assert not requests_to(site, "/news.jsonl")


def test_refresh_over_http_is_a_job(admin: FlaskClient, samples: Settings, site: HTTPServer,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in fast_env().items():  # the job's own process reads the environment
        monkeypatch.setenv(name, value)

    def news(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"one"':
            return Response(status=304)
        return Response(jsonl("Platform cooperatives in Lisbon"), headers={"ETag": '"one"'})

    site.expect_request("/news.jsonl").respond_with_handler(news)
    site.expect_request("/gone").respond_with_data("", status=404)
    _follow(samples, "ica-news", site.url_for("/news.jsonl"))
    _follow(samples, "gone", site.url_for("/gone"))
    api = ApiDescription.of(admin)
    refresh_result = api.validator("components", "schemas", "RefreshResponse")

    response = admin.post(f"/api/admin/refresh?wait={WAIT}", headers=AUTH)
    job = api.check("/api/admin/refresh", response, method="post")
    assert response.status_code == 200
    assert (job["kind"], job["state"], job["error"]) == ("refresh", "succeeded", None)
    refresh_result.validate(job["result"])
    assert job["result"]["failed"] == 1 and job["result"]["index"] == "updated"
    assert [(s["name"], s["result"], s["summary"]) for s in job["result"]["sources"]] == [
        ("gone", "failed", f"failed: HTTP 404 NOT FOUND from {site.url_for('/gone')}"),
        ("ica-news", "imported", "1 added, 0 updated, 0 unchanged")]
    hits = admin.get("/api/search?q=lisbon").get_json()["hits"]
    assert [h["organisation"] for h in hits] == ["ICA"]
    sent = requests_to(site, "/news.jsonl")[-1]
    assert sent.headers["User-Agent"] == OPTIONS.user_agent  # the job used the settings

    started = admin.post("/api/admin/refresh?source=ica-news", headers=AUTH)
    assert started.status_code == 202
    location = started.headers["Location"]
    again = admin.get(f"{location}?wait={WAIT}", headers=AUTH)
    assert api.check("/api/admin/jobs/some-id", again)["result"]["sources"] == [
        {"name": "ica-news", "result": "not modified", "added": 0, "updated": 0,
         "unchanged": 0, "skipped": 0, "error": None, "problems": [],
         "problems_left_out": 0, "summary": "not modified"}]
    assert requests_to(site, "/news.jsonl")[-1].headers["If-None-Match"] == '"one"'

    unknown = admin.post("/api/admin/refresh", data={"source": "nope"}, headers=AUTH)
    assert unknown.status_code == 404
    assert api.check("/api/admin/refresh", unknown, method="post")["error"]["message"] == (
        "no source named 'nope' (`searchapp sources list` shows them)")


def test_the_footer_says_how_current_the_catalog_is(samples: Settings,
                                                    site: HTTPServer) -> None:
    site.expect_request("/news.jsonl").respond_with_handler(
        lambda request: Response(status=304) if request.headers.get("If-None-Match") == '"v"'
        else Response(jsonl("Alpha", "Beta"), headers={"ETag": '"v"'}))
    site.expect_request("/ilo.xml").respond_with_data("File not found", status=404)
    _follow(samples, "ica-news", site.url_for("/news.jsonl"))
    _follow(samples, "ilo-news", site.url_for("/ilo.xml"), org="ILO")
    first = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    refreshing.refresh(samples, ["ica-news"], now=first)
    assert len(refreshing.refresh(samples, ["ilo-news"], now=first).failed) == 1
    app = _app(samples)
    try:
        client = app.test_client()
        client.get("/")  # Engine.version() reads "None.1" before its first open
        page = client.get("/")
        html = page.get_data(as_text=True)
        with Catalog(samples.catalog) as catalog:
            changed = catalog.freshness().changed_at
        assert changed is not None
        assert f'Catalog last changed:\n    <time datetime="{changed.isoformat()}">' in html
        rows = html[html.index("<tbody>"):html.index("</tbody>")]
        assert [line.strip() for line in rows.splitlines() if "<th scope" in line] == [
            '<th scope="row">CECOP</th>', '<th scope="row">ICA</th>',
            '<th scope="row">ILO</th>']
        assert ('<time datetime="2024-01-02">2 Jan 2024</time></td>\n        <td><time'
                ' datetime="2026-12-01T09:30:00+00:00">1 Dec 2026, 09:30 UTC</time>') in rows
        # CECOP came from files; ILO's items did too, but a source of it is followed,
        # and its one refresh failed.
        assert [line.strip() for line in rows.splitlines() if "followed" in line
                or "refreshed" in line] == ["<td>not followed</td>", "<td>never refreshed</td>"]

        # A refresh that finds nothing new changes the footer, so the ETag changes too.
        tag = page.headers["ETag"]
        assert client.get("/", headers={"If-None-Match": tag}).status_code == 304
        result = refreshing.refresh(samples, ["ica-news"], now=first + dt.timedelta(hours=1))
        assert result.results[0].summary() == "not modified"
        fresh = client.get("/", headers={"If-None-Match": tag})
        assert fresh.status_code == 200
        assert "1 Dec 2026, 10:30 UTC" in fresh.get_data(as_text=True)
    finally:
        app.extensions["searchapp.engine"].close()


def test_stats_say_how_current_the_catalog_is(samples: Settings, site: HTTPServer) -> None:
    site.expect_request("/news.jsonl").respond_with_data(jsonl("Alpha", "Beta"))
    _follow(samples, "ica-news", site.url_for("/news.jsonl"))
    when = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    refreshing.refresh(samples, now=when)
    _follow(samples, "new-one", site.url_for("/new"), org="Nobody yet")
    cli = Cli(samples)
    cli.env.update(fast_env())

    data = json.loads(cli("stats", "--json").stdout)["freshness"]
    with Catalog(samples.catalog) as catalog:
        assert data == catalog.freshness().to_dict()
        assert data["changed_at"] == catalog.imports(limit=1)[0]["at"]
    assert data["organisations"] == [
        {"organisation": "CECOP", "has_items": True, "newest": "2017-03-16",
         "last_refresh": None, "followed": False},
        {"organisation": "ICA", "has_items": True, "newest": "2024-01-02",
         "last_refresh": "2026-12-01T09:30:00+00:00", "followed": True},
        {"organisation": "ILO", "has_items": True, "newest": "2017-09-27",
         "last_refresh": None, "followed": False},
        {"organisation": "Nobody yet", "has_items": False, "newest": None,
         "last_refresh": None, "followed": True}]
    text = cli("stats").stdout
    assert text.endswith("by organisation: newest item, last successful refresh\n"
                         "  CECOP: 2017-03-16, never refreshed\n"
                         "  ICA: 2024-01-02, 2026-12-01 09:30 UTC\n"
                         "  ILO: 2017-09-27, never refreshed\n"
                         "  Nobody yet: no items yet, never refreshed\n")
    assert f"catalog last changed: {data['changed_at'][:10]}" in text


def test_the_change_stamp_moves_with_every_change_freshness_shows(samples: Settings,
                                                                 site: HTTPServer) -> None:
    """The web layer keeps freshness until this stamp moves: it must move with imports,
    removals and refreshes, and only then."""
    site.expect_request("/news.jsonl").respond_with_data(jsonl("Alpha"))

    def stamp() -> tuple[object, ...]:
        with Catalog(samples.catalog) as catalog:
            return catalog.change_stamp()

    stamps = [stamp()]
    assert stamp() == stamps[0]  # nothing changed, nothing moved
    _follow(samples, "ica-news", site.url_for("/news.jsonl"))
    stamps.append(stamp())
    refreshing.refresh(samples, now=dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC))
    stamps.append(stamp())
    refreshing.refresh(samples, ["ica-news"], now=dt.datetime(2026, 12, 1, 10, 30,
                                                              tzinfo=dt.UTC))
    stamps.append(stamp())  # nothing new, but the last refresh time moved
    newer = importers.parse_bytes(
        b'{"title": "Next year", "date": "2027-01-04", "organisation": "ICA"}\n',
        name="late.jsonl")
    operations.import_parsed(samples, [newer])
    stamps.append(stamp())
    with Catalog(samples.catalog) as catalog:
        catalog.remove_source("ica-news", delete_items=True)
    stamps.append(stamp())
    assert len(set(stamps)) == len(stamps) == 6


def test_freshness_counts_removed_items_as_a_change(samples: Settings,
                                                    site: HTTPServer) -> None:
    site.expect_request("/news.jsonl").respond_with_data(jsonl("Alpha"))
    _follow(samples, "ica-news", site.url_for("/news.jsonl"))
    refreshing.refresh(samples)
    db = sqlite3.connect(samples.catalog)
    with db:
        db.execute("UPDATE imports SET at = '2020-01-01T00:00:00+00:00'")
    db.close()
    with Catalog(samples.catalog) as catalog:
        assert catalog.freshness().changed_at == dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        catalog.remove_source("ica-news", delete_items=True)
        after = catalog.freshness()
    assert after.changed_at is not None and after.changed_at.year >= 2026
    assert [o.organisation for o in after.organisations] == ["CECOP", "ILO"]
