"""Sources that refresh themselves, as the operator sees them: `searchapp sources ...` and
`searchapp refresh` against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Cli
from fetch_support import closed_port, fast_env, gzipped, jsonl, requests_to, site, site_server
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from searchapp.catalog import Catalog
from searchapp.config import Settings

__all__ = ["site", "site_server"]  # fixtures, imported for pytest

LISTING = """News

16 Mar 2017
Workers buy out their factory
Press release
The workers of a closed plant formed a cooperative.
Read more

2 Feb 2017
A new federation of social cooperatives
Read more
"""


@pytest.fixture
def cli(settings: Settings) -> Cli:
    runner = Cli(settings)
    runner.env.update(fast_env())
    return runner


def _items(settings: Settings) -> dict[str, tuple[str, str]]:
    """id → (title, source) of every item in the catalog."""
    with Catalog(settings.catalog) as catalog:
        return {item.id: (item.title, item.source) for item in catalog.iter_items()}


def _written(settings: Settings) -> tuple[object, ...]:
    """What a refresh that writes nothing leaves alone: the import log, every item's
    update time, and the index files."""
    db = sqlite3.connect(settings.catalog)
    try:
        log = db.execute("SELECT count(*) FROM imports").fetchone()
        stamps = db.execute("SELECT id, updated_at FROM items ORDER BY id").fetchall()
    finally:
        db.close()
    files = sorted((str(p.relative_to(settings.index_dir)), p.stat().st_size)
                   for p in settings.index_dir.rglob("*") if p.is_file() and p.name != ".lock")
    return log, stamps, files


def _versioned(versions: dict[str, str]) -> object:
    """A handler serving versions['body'] with an ETag and Last-Modified, and a 304 when
    the request carries them."""

    def answer(request: Request) -> Response:
        etag = f'"{hash(versions["body"]) & 0xFFFFFF:x}"'
        headers = {"ETag": etag, "Last-Modified": versions["modified"]}
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers=headers)
        return Response(versions["body"], content_type="application/x-ndjson", headers=headers)

    return answer


def test_add_refresh_and_list(cli: Cli, settings: Settings, site: HTTPServer) -> None:
    site.expect_request("/news.jsonl").respond_with_data(jsonl("Alpha", "Beta", "Gamma"),
                                                         content_type="application/x-ndjson")
    site.expect_request("/news.txt").respond_with_response(
        gzipped(LISTING.encode(), "text/plain; charset=utf-8"))
    added = cli("sources", "add", "ica-news", site.url_for("/news.jsonl"), "--org", "ICA",
                "--every", "6h")
    assert added.exit_code == 0
    assert added.stdout.startswith("added source ica-news (kind from its first answer,"
                                   " every 6h)")
    assert cli("sources", "add", "cecop-news", site.url_for("/news.txt"), "--org", "CECOP",
               "--kind", "listing").exit_code == 0

    first = cli("refresh")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == ["cecop-news: 2 added, 0 updated, 0 unchanged",
                                         "ica-news: 3 added, 0 updated, 0 unchanged"]
    items = _items(settings)
    assert sorted(items.values()) == [
        ("A new federation of social cooperatives", "cecop-news"), ("Alpha", "ica-news"),
        ("Beta", "ica-news"), ("Gamma", "ica-news"),
        ("Workers buy out their factory", "cecop-news")]
    found = json.loads(cli("search", "federation", "--json").stdout)
    assert [h["organisation"] for h in found["hits"]] == ["CECOP"]

    listed = cli("sources", "list").stdout
    assert "ica-news  ICA  listing  every 6h" in listed  # kind seen in the first answer
    assert f"  url: {site.url_for('/news.jsonl')}" in listed
    assert ": 3 added, 0 updated, 0 unchanged" in listed
    assert "  items: 3   next due: " in listed and "last error" not in listed
    rows = {row["name"]: row for row in json.loads(cli("sources", "list", "--json").stdout)}
    assert rows["ica-news"]["items"] == 3 and rows["cecop-news"]["items"] == 2
    assert rows["ica-news"]["kind"] == "listing" and rows["ica-news"]["every"] == "6h"
    assert rows["ica-news"]["last_ok"] == rows["ica-news"]["last_fetched"]
    assert rows["ica-news"]["next_due"] > rows["ica-news"]["last_fetched"]

    assert cli("refresh").stdout == "no source is due\n"  # nothing due for six hours


def test_an_unchanged_source_costs_one_304_and_writes_nothing(cli: Cli, settings: Settings,
                                                              site: HTTPServer) -> None:
    versions = {"body": jsonl("Alpha", "Beta"), "modified": "Tue, 01 Dec 2026 10:00:00 GMT"}
    site.expect_request("/news.jsonl").respond_with_handler(_versioned(versions))
    cli("sources", "add", "ica-news", site.url_for("/news.jsonl"), "--org", "ICA")
    assert cli("refresh", "ica-news").stdout == "ica-news: 2 added, 0 updated, 0 unchanged\n"
    before = _written(settings)

    again = cli("refresh", "ica-news")
    assert (again.exit_code, again.stdout) == (0, "ica-news: not modified\n")
    second = requests_to(site, "/news.jsonl")[-1]
    assert second.headers["If-None-Match"].startswith('"')
    assert second.headers["If-Modified-Since"] == "Tue, 01 Dec 2026 10:00:00 GMT"
    assert len(requests_to(site, "/news.jsonl")) == 2
    assert _written(settings) == before

    versions["body"] = jsonl("Alpha", "Beta, revised", "Gamma")
    changed = cli("refresh", "ica-news")
    assert changed.stdout == "ica-news: 1 added, 1 updated, 1 unchanged\n"
    assert "Beta, revised" in {title for title, _ in _items(settings).values()}


ROBOTS = "User-agent: *\nDisallow: /private/\n"


def _serve_every_failure(site: HTTPServer) -> dict[str, str]:
    """One source per way of failing, plus one that works; name → URL."""
    site.clear()
    site.expect_request("/robots.txt").respond_with_data(ROBOTS)
    site.expect_request("/good.jsonl").respond_with_data(jsonl("Fine"))
    site.expect_request("/missing").respond_with_data("no", status=404)
    site.expect_request("/broken").respond_with_data("oops", status=500)

    def slow(request: Request) -> Response:
        time.sleep(2.0)
        return Response("late")

    site.expect_request("/slow").respond_with_handler(slow)
    site.expect_request("/big").respond_with_data("x" * 70_000)
    site.expect_request("/private/feed").respond_with_data("secret")
    site.expect_request("/page.html").respond_with_data(
        "<!doctype html><html><body><p>Welcome</p></body></html>", content_type="text/html")
    site.expect_request("/bad.jsonl").respond_with_data('{not json\n')
    site.expect_request("/logo.png").respond_with_data(b"\x89PNG\r\n\x1a\n\0\0\0",
                                                       content_type="image/png")
    site.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    site.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
    return {
        "good": site.url_for("/good.jsonl"), "missing": site.url_for("/missing"),
        "broken": site.url_for("/broken"), "slow": site.url_for("/slow"),
        "big": site.url_for("/big"), "private": site.url_for("/private/feed"),
        "not-a-feed": site.url_for("/page.html"), "malformed": site.url_for("/bad.jsonl"),
        "image": site.url_for("/logo.png"), "loop": site.url_for("/a"),
        "refused": f"http://127.0.0.1:{closed_port()}/feed",
        "nowhere": "http://news.nowhere.invalid/feed",
    }


def test_every_failure_is_reported_and_the_others_imported(cli: Cli, settings: Settings,
                                                           site: HTTPServer) -> None:
    urls = _serve_every_failure(site)
    for name, url in urls.items():
        kind = ["--kind", "feed"] if name == "not-a-feed" else []
        assert cli("sources", "add", name, url, "--org", "ICA", *kind).exit_code == 0
    cli.env["SEARCHAPP_FETCH_RETRIES"] = "1"  # keeps the slow source's two tries short

    result = cli("refresh")
    assert result.exit_code == 1
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    port = urls["good"].split(":")[2].split("/")[0]
    base = f"http://127.0.0.1:{port}"
    assert lines == {
        "big": f"failed: the answer from {base}/big is 70,000 bytes; the limit is 65,536"
               " (SEARCHAPP_FETCH_MAX_BYTES)",
        "broken": f"failed: HTTP 500 INTERNAL SERVER ERROR from {base}/broken (after 2 tries)",
        "good": "1 added, 0 updated, 0 unchanged",
        "image": f"failed: {base}/logo.png answered with image/png, not a feed, page or"
                 " listing",
        "loop": f"failed: redirect loop: {base}/a → {base}/b → {base}/a",
        "malformed": "failed: malformed:1: invalid JSON: Expecting property name enclosed in"
                     " double quotes (column 2)",
        "missing": f"failed: HTTP 404 NOT FOUND from {base}/missing",
        "not-a-feed": f"failed: expected a feed but {base}/page.html answered with an HTML"
                      " page (text/html)",
        "nowhere": "failed: cannot resolve host news.nowhere.invalid",
        "private": f"failed: robots.txt of {base} does not allow searchapp to fetch"
                   f" {base}/private/feed",
        "refused": f"failed: connection refused by {urls['refused'].split('/')[2]}",
        "slow": f"failed: could not get an answer from {base}/slow within 1.5 s"
                " (after 2 tries)",
    }
    assert "11 sources failed; the other one was imported" in result.stderr
    alone = cli("refresh", "image")
    assert alone.exit_code == 1
    assert alone.stderr.endswith("Error: 1 source failed\n"), alone.stderr
    assert sorted(_items(settings).values()) == [("Fine", "good")]
    assert not requests_to(site, "/private/feed")

    listed = {row["name"]: row for row in json.loads(cli("sources", "list", "--json").stdout)}
    assert listed["missing"]["last_result"] == "failed"
    assert listed["missing"]["last_error"] == f"HTTP 404 NOT FOUND from {base}/missing"
    assert listed["missing"]["last_error_at"] == listed["missing"]["last_fetched"]
    assert listed["good"]["last_error"] is None
    text = cli("sources", "list").stdout
    assert f": HTTP 500 INTERNAL SERVER ERROR from {base}/broken (after 2 tries)" in text


def test_a_failing_source_keeps_its_earlier_items(cli: Cli, settings: Settings,
                                                  site: HTTPServer) -> None:
    versions = {"body": jsonl("Alpha", "Beta"), "modified": "Tue, 01 Dec 2026 10:00:00 GMT"}
    site.expect_request("/news.jsonl").respond_with_handler(_versioned(versions))
    cli("sources", "add", "ica-news", site.url_for("/news.jsonl"), "--org", "ICA")
    assert cli("refresh").exit_code == 0
    kept = _items(settings)
    assert len(kept) == 2

    versions["body"] = "[]"  # the page still answers, but lists nothing
    emptied = cli("refresh", "ica-news")
    assert emptied.exit_code == 1
    assert emptied.stdout == (f"ica-news: failed: found no items at"
                              f" {site.url_for('/news.jsonl')} (there were 2 last time);"
                              " earlier items kept\n")
    versions["body"] = '{"title": \n'
    broken = cli("refresh", "ica-news")
    assert broken.stdout.startswith("ica-news: failed: ica-news:1: invalid JSON")
    site.clear()
    site.expect_request("/robots.txt").respond_with_data("", status=404)
    site.expect_request("/news.jsonl").respond_with_data("gone", status=410)
    assert "HTTP 410" in cli("refresh", "ica-news").stdout
    assert _items(settings) == kept
    found = json.loads(cli("search", "alpha", "--json").stdout)
    assert found["total"] == 1
    row = json.loads(cli("sources", "list", "--json").stdout)[0]
    assert row["items"] == 2 and "HTTP 410" in row["last_error"]
    assert row["last_ok"] < row["last_error_at"] or row["last_ok"] == row["last_error_at"]


def test_after_an_unusable_answer_the_next_refresh_is_not_conditional(
        cli: Cli, site: HTTPServer) -> None:
    """A 304 must never hide an answer that was fetched but not imported."""
    versions = {"body": jsonl("Alpha"), "modified": "Tue, 01 Dec 2026 10:00:00 GMT"}
    site.expect_request("/news.jsonl").respond_with_handler(_versioned(versions))
    cli("sources", "add", "ica-news", site.url_for("/news.jsonl"), "--org", "ICA")
    cli("refresh")
    versions["body"] = "{broken\n"
    assert cli("refresh", "ica-news").exit_code == 1
    versions["body"] = jsonl("Alpha", "Beta")
    again = cli("refresh", "ica-news")
    assert again.stdout == "ica-news: 1 added, 0 updated, 1 unchanged\n"
    assert "If-None-Match" not in requests_to(site, "/news.jsonl")[-1].headers


def test_invalid_records_are_skipped_and_the_rest_imported(cli: Cli, settings: Settings,
                                                           site: HTTPServer) -> None:
    """One broken entry in someone else's feed does not hold back the rest of it."""
    site.expect_request("/news.jsonl").respond_with_data(
        jsonl("Alpha") + '{"title": ""}\n{not json\n')
    cli("sources", "add", "ica-news", site.url_for("/news.jsonl"), "--org", "ICA")
    result = cli("refresh")
    assert (result.exit_code, result.stdout) == (
        0, "ica-news: 1 added, 0 updated, 0 unchanged, 2 skipped\n")
    assert result.stderr.splitlines() == [
        "  skipped ica-news:2: title is missing or blank",
        ("  skipped ica-news:3: invalid JSON: Expecting property name enclosed in double quotes"
        " (column 2)")]
    assert [t for t, _ in _items(settings).values()] == ["Alpha"]


def test_a_source_cannot_take_another_organisations_item(cli: Cli, settings: Settings,
                                                         site: HTTPServer) -> None:
    """Ids come from article URLs; one already stored for another organisation stays its."""
    site.expect_request("/a.jsonl").respond_with_data(jsonl("Alpha"))
    site.expect_request("/b.jsonl").respond_with_data(jsonl("Alpha again", "Beta"))
    cli("sources", "add", "a", site.url_for("/a.jsonl"), "--org", "ICA")
    cli("sources", "add", "b", site.url_for("/b.jsonl"), "--org", "ILO")
    assert cli("refresh", "a").exit_code == 0
    result = cli("refresh", "b")
    assert result.exit_code == 0
    assert result.stdout == "b: 1 added, 0 updated, 0 unchanged, 1 skipped\n"
    assert result.stderr == ("  skipped b:1: id 'https://news.example.org/1' already belongs"
                             " to an item of ICA; an import cannot move it to ILO (give this"
                             " organisation's items ids of their own)\n")
    assert sorted(_items(settings).values()) == [("Alpha", "a"), ("Beta", "b")]


def test_sources_are_backed_up_with_the_catalog(cli: Cli, settings: Settings,
                                                site: HTTPServer, tmp_path: Path) -> None:
    site.expect_request("/news.jsonl").respond_with_data(jsonl("Alpha"),
                                                         headers={"ETag": '"v1"'})
    cli("sources", "add", "ica-news", site.url_for("/news.jsonl"), "--org", "ICA", "--every",
        "2h")
    assert cli("refresh").exit_code == 0
    before = json.loads(cli("sources", "list", "--json").stdout)
    assert cli("backup", tmp_path / "saved.sqlite3").exit_code == 0
    cli("sources", "remove", "ica-news")
    assert cli("restore", tmp_path / "saved.sqlite3").exit_code == 0
    assert json.loads(cli("sources", "list", "--json").stdout) == before
    assert before[0]["etag"] == '"v1"' and before[0]["items"] == 1


def test_refresh_of_an_unknown_source(cli: Cli) -> None:
    assert cli("sources", "add", "news", "http://127.0.0.1:9/feed", "--org", "ICA").exit_code == 0
    result = cli("refresh", "nope")
    assert result.exit_code == 1
    assert "no source named 'nope'" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["Bad Name", "http://example.org/feed"], "NAME: 'Bad Name' must be"),
    (["news", "ftp://example.org/feed"], ("URL: 'ftp://example.org/feed' is not an http or"
                                         " https URL")),
    (["news", "http://example.org/feed", "--every", "soon"], ("--every: 'soon' is not a"
                                                             " duration")),
    (["news", "http://example.org/feed", "--every", "10s"], "shorter than the minimum of 1m"),
    (["news", "http://example.org/feed", "--language", "english"], "not a two-letter"),
    (["news", "http://example.org/", "--select", "title"], "'title' is not FIELD=CSS"),
    (["news", "http://example.org/", "--select", "colour=b"], "unknown selector field 'colour'"),
    (["news", "http://example.org/", "--select", "title=h2"], "selector 'item' is required"),
    (["news", "http://example.org/", "--select", "item=li"], "selector 'title' is required"),
    (["news", "http://example.org/", "--select", "item=li", "--select", "title=h2["],
     "--select: selector title='h2[' is not valid CSS"),
    (["news", "http://example.org/feed", "--kind", "feed", "--select", "item=li",
      "--select", "title=a"],
     "selectors apply to pages, not to a feed"),
])
def test_sources_add_refuses_what_it_cannot_use(cli: Cli, settings: Settings, args: list[str],
                                                message: str) -> None:
    result = cli("sources", "add", *args, "--org", "ICA")
    assert result.exit_code != 0
    assert message in result.stderr
    assert not settings.catalog.exists()  # (nothing made for it on a new install)
    with Catalog(settings.catalog):
        pass
    assert "no sources" in cli("sources", "list").stdout


def test_names_and_urls_are_unique(cli: Cli) -> None:
    assert cli("sources", "add", "news", "http://example.org/a", "--org", "X").exit_code == 0
    again = cli("sources", "add", "news", "http://example.org/b", "--org", "X")
    assert "NAME: source 'news' already has this name" in again.stderr
    same_url = cli("sources", "add", "other", "http://example.org/a", "--org", "X")
    assert "URL: source 'news' already has this url (http://example.org/a)" in same_url.stderr


def test_page_selectors_are_kept(cli: Cli) -> None:
    cli("sources", "add", "coop-page", "https://example.org/news", "--org", "X", "--kind",
        "page", "--select", "item=div.post", "--select", "title=h3 a", "--language", "FR")
    row = json.loads(cli("sources", "list", "--json").stdout)[0]
    assert row["selectors"] == {"item": "div.post", "title": "h3 a"}
    assert (row["kind"], row["language"], row["every"]) == ("page", "fr", "1h")


def test_remove_keeps_items_unless_asked(cli: Cli, settings: Settings, site: HTTPServer) -> None:
    site.expect_request("/a.jsonl").respond_with_data(jsonl("Alpha", "Beta"))
    site.expect_request("/b.jsonl").respond_with_data(jsonl("Gamma", org="ILO").replace(
        "news.example.org", "ilo.example.org"))
    cli("sources", "add", "a", site.url_for("/a.jsonl"), "--org", "ICA")
    cli("sources", "add", "b", site.url_for("/b.jsonl"), "--org", "ILO")
    assert cli("refresh").exit_code == 0

    kept = cli("sources", "remove", "a")
    assert kept.stdout == "removed source a; its 2 items stay (--delete-items removes them)\n"
    assert len(_items(settings)) == 3
    gone = cli("sources", "remove", "b", "--delete-items")
    assert gone.stdout == "removed source b and its 1 items; index rebuilt\n"
    assert sorted(t for t, _ in _items(settings).values()) == ["Alpha", "Beta"]
    assert json.loads(cli("search", "gamma", "--json").stdout)["total"] == 0
    assert "no sources" in cli("sources", "list").stdout
    assert "no source named 'b'" in cli("sources", "remove", "b").stderr


def test_the_sources_table_is_added_to_an_existing_catalog(settings: Settings,
                                                           cli: Cli) -> None:
    """A catalog made before sources existed gains the table and keeps its items."""
    settings.catalog.parent.mkdir(parents=True)
    db = sqlite3.connect(settings.catalog)
    db.executescript("""
        CREATE TABLE items (id TEXT PRIMARY KEY, organisation TEXT NOT NULL,
            title TEXT NOT NULL, summary TEXT NOT NULL DEFAULT '', date TEXT, year INTEGER,
            type TEXT NOT NULL, url TEXT, language TEXT NOT NULL DEFAULT 'en',
            source TEXT NOT NULL DEFAULT '', added_at TEXT NOT NULL, updated_at TEXT NOT NULL);
        CREATE TABLE imports (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
            sources TEXT NOT NULL, added INTEGER NOT NULL, updated INTEGER NOT NULL,
            unchanged INTEGER NOT NULL, skipped INTEGER NOT NULL);
        INSERT INTO items VALUES ('old-1', 'ICA', 'Kept', '', '2015-05-05', 2015, 'News', NULL,
            'en', 'old.jsonl', '2020-01-01T00:00:00+00:00', '2020-01-01T00:00:00+00:00');
    """)
    db.close()
    assert cli("sources", "add", "news", "http://example.org/feed", "--org", "ICA").exit_code == 0
    assert [row["name"] for row in json.loads(cli("sources", "list", "--json").stdout)] == [
        "news"]
    assert _items(settings) == {"old-1": ("Kept", "old.jsonl")}


def test_loop_refreshes_until_sigterm(settings: Settings, site: HTTPServer) -> None:
    site.expect_request("/news.jsonl").respond_with_data(jsonl("Alpha"))
    with Catalog(settings.catalog):
        pass
    env = {**os.environ, **fast_env(), "SEARCHAPP_CATALOG": str(settings.catalog),
           "SEARCHAPP_INDEX_DIR": str(settings.index_dir)}
    searchapp = [sys.executable, "-m", "searchapp.cli"]
    # The source states its language: the loop process need not load lingua's models
    # (7 CPU-seconds, over the deadline below on a machine under load 15).
    subprocess.run([*searchapp, "sources", "add", "news", site.url_for("/news.jsonl"), "--org",
                    "ICA", "--every", "1m", "--language", "en"],
                   env=env, check=True, capture_output=True)
    loop = subprocess.Popen([*searchapp, "refresh", "--loop"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _items(settings) and time.monotonic() < deadline and loop.poll() is None:
            time.sleep(0.1)
        assert _items(settings), "the loop never imported the source"
        loop.send_signal(signal.SIGTERM)
        out, err = loop.communicate(timeout=30)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.communicate()  # closes its pipes: no warnings left for the next test
    assert loop.returncode == 0, err
    assert out.splitlines() == ["refreshing due sources until stopped",
                                "news: 1 added, 0 updated, 0 unchanged", "stopped"]
    assert len(requests_to(site, "/news.jsonl")) == 1  # not due again for a minute


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
  <title>Co-op news</title><link>https://coop.example.org/</link>
  <item><title>Housing cooperatives grow</title><link>/news/housing</link>
    <pubDate>Mon, 30 Nov 2026 09:00:00 GMT</pubDate>
    <description>&lt;p&gt;Three new &lt;b&gt;housing&lt;/b&gt; cooperatives.&lt;/p&gt;</description></item>
  <item><title>Worker buyouts in Spain</title><link>https://other.example.org/buyouts</link>
    <pubDate>Sun, 29 Nov 2026 09:00:00 GMT</pubDate></item>
</channel></rss>
"""


def test_an_rss_feed_refreshes_itself(cli: Cli, settings: Settings, site: HTTPServer) -> None:
    """End to end with the feed reader of #9 part A, once it is merged."""
    from searchapp import importers

    if "feed" not in importers.FORMATS:
        pytest.skip("reading RSS arrives with the feeds branch (#9 part A)")

    def feed(request: Request) -> Response:
        if request.headers.get("If-Modified-Since") == "Mon, 30 Nov 2026 10:00:00 GMT":
            return Response(status=304)
        return Response(RSS, content_type="application/rss+xml",
                        headers={"Last-Modified": "Mon, 30 Nov 2026 10:00:00 GMT"})

    site.expect_request("/feed.xml").respond_with_handler(feed)
    cli("sources", "add", "coop-feed", site.url_for("/feed.xml"), "--org", "CECOP")
    assert cli("refresh").stdout == "coop-feed: 2 added, 0 updated, 0 unchanged\n"
    with Catalog(settings.catalog) as catalog:
        urls = sorted(item.url or "" for item in catalog.iter_items())
    assert urls == [site.url_for("/news/housing"), "https://other.example.org/buyouts"]
    row = json.loads(cli("sources", "list", "--json").stdout)[0]
    assert (row["kind"], row["items"]) == ("feed", 2)
    assert cli("refresh", "coop-feed").stdout == "coop-feed: not modified\n"


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>News</title></head><body>
<div class="post"><h3><a href="/n/1">Solar cooperative opens</a></h3>
  <span class="d">2026-11-02</span><p>Power to the people.</p></div>
<div class="post"><h3><a href="/n/2">Bakery becomes worker-owned</a></h3>
  <span class="d">2026-11-05</span></div>
</body></html>"""

ARTICLES = """<!doctype html><html><body>
<article><h2><a href="/a/1">Credit unions meet</a></h2><time datetime="2026-10-01">1 Oct</time>
  <p>Summary one.</p></article>
<article><h2><a href="/a/2">Fair trade week</a></h2><time datetime="2026-10-03">3 Oct</time>
  <p>Summary two.</p></article>
</body></html>"""


def test_html_pages_refresh_themselves(cli: Cli, settings: Settings, site: HTTPServer) -> None:
    """A page read by its markup and one read by the source's selectors, once part A's
    page reader is merged."""
    from searchapp import importers

    if "html" not in importers.FORMATS:
        pytest.skip("reading HTML pages arrives with the feeds branch (#9 part A)")
    site.expect_request("/news").respond_with_data(PAGE, content_type="text/html")
    site.expect_request("/articles").respond_with_data(ARTICLES, content_type="text/html")
    cli("sources", "add", "chosen", site.url_for("/news"), "--org", "X", "--select",
        "item=div.post", "--select", "title=h3 a", "--select", "link=h3 a", "--select",
        "date=span.d", "--select", "summary=p")
    cli("sources", "add", "marked-up", site.url_for("/articles"), "--org", "Y")
    assert cli("refresh").stdout == ("chosen: 2 added, 0 updated, 0 unchanged\n"
                                     "marked-up: 2 added, 0 updated, 0 unchanged\n")
    with Catalog(settings.catalog) as catalog:
        found = sorted((i.source, i.title, i.url, str(i.date)) for i in catalog.iter_items())
    assert found == [
        ("chosen", "Bakery becomes worker-owned", site.url_for("/n/2"), "2026-11-05"),
        ("chosen", "Solar cooperative opens", site.url_for("/n/1"), "2026-11-02"),
        ("marked-up", "Credit unions meet", site.url_for("/a/1"), "2026-10-01"),
        ("marked-up", "Fair trade week", site.url_for("/a/2"), "2026-10-03")]
    kinds = {r["name"]: r["kind"] for r in json.loads(cli("sources", "list", "--json").stdout)}
    assert kinds == {"chosen": "page", "marked-up": "page"}


def test_a_refresh_stored_but_not_indexed_exits_3(cli: Cli, settings: Settings,
                                                  site: HTTPServer, tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"id": f"b{k}", "title": f"Cooperative report {k}"})
                           + "\n" for k in range(40)))
    site.expect_request("/news.jsonl").respond_with_data(jsonl("Alpha"),
                                                         content_type="application/x-ndjson")
    # A catalog following the source and holding nothing, kept aside (a new install may
    # start by following a source)...
    assert cli("sources", "add", "ica-news", site.url_for("/news.jsonl"),
               "--org", "ICA").exit_code == 0
    small = tmp_path / "small.sqlite3"
    shutil.copyfile(settings.catalog, small)
    assert cli("import", big, "--org", "ICA", "-q").exit_code == 0
    # ...put back in place of the one the index was built from: much smaller than it.
    shutil.copyfile(small, settings.catalog)
    result = cli("refresh")
    assert result.exit_code == 3  # stored, not indexed: neither a success nor nothing done
    assert result.stdout == "ica-news: 1 added, 0 updated, 0 unchanged\n"
    assert "Error: stored, but the index was not updated: refusing to rebuild" in result.stderr
    assert list(_items(settings).values()) == [("Alpha", "ica-news")]
    assert json.loads(cli("stats", "--json").stdout)["index_documents"] == 40  # the index kept
