"""Links out to the articles: the search page, the item page, the Atom feed, the CLI."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import ROOT, SAMPLES, Cli, app_over
from flask import Flask
from flask.testing import FlaskClient

from searchapp import create_app, operations
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.importers import Hints
from searchapp.urls import url_id

FEEDS = ROOT / "tests" / "data" / "feeds"
ATOM = "{http://www.w3.org/2005/Atom}"
ARTICLE = "https://cecop.example/news/2016/refugees"


@pytest.fixture
def linked(settings: Settings) -> Iterator[Flask]:
    """The samples (no links) and a feed whose items link to their articles."""
    operations.import_paths(settings, [SAMPLES])
    operations.import_paths(settings, [FEEDS / "rss2.xml"], organisation="CECOP",
                            hints=Hints(url="https://cecop.example/feed.rss"))
    with app_over(settings) as app:
        yield app


@pytest.fixture
def web(linked: Flask) -> FlaskClient:
    return linked.test_client()


def page(client: FlaskClient, url: str) -> BeautifulSoup:
    response = client.get(url)
    assert response.status_code == 200
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def test_hit_title_goes_to_the_article_marked_as_leaving_the_site(web: FlaskClient) -> None:
    hit = page(web, "/?q=social+cooperatives+refugees").select("ol.hits li.hit")[0]
    title = hit.select_one("h3 a")
    assert title is not None and title["href"] == ARTICLE
    assert "noopener" in title["rel"]
    assert title.select_one(".out-host").get_text(" ", strip=True) == (
        "↗ cecop.example (the article, on another site)")
    details = hit.select_one("a.details")
    assert details is not None  # the item page, carrying the search to go back to
    assert details["href"] == (f"/items/{url_id(ARTICLE)}"
                               "?back=q%3Dsocial%2Bcooperatives%2Brefugees")


def test_hit_without_a_url_still_goes_to_its_item_page(web: FlaskClient) -> None:
    hits = page(web, "/?q=refugees&organisation=CECOP").select("ol.hits li.hit")
    titles = {h.select_one("h3 a").get_text(): h for h in hits}
    plain = titles["Declaration on migrants and refugees"]
    assert plain.select_one("h3 a")["href"].startswith("/items/")
    assert plain.select_one("a.details") is None and plain.select_one(".out-host") is None


def test_item_page_shows_the_publisher_and_the_original_never_a_file_path(
        web: FlaskClient) -> None:
    soup = page(web, f"/items/{url_id(ARTICLE)}")
    assert soup.select_one("dd.publisher").get_text(" ", strip=True) == "CECOP · cecop.example"
    assert soup.select_one("dd.publisher a")["href"] == "https://cecop.example/"  # not the feed
    original = soup.select_one("p.original a")
    assert original.get_text(" ", strip=True) == "Read the original on cecop.example ↗"
    assert original["href"] == ARTICLE
    assert "rss2.xml" not in str(soup) and "tests/data" not in str(soup)


def test_item_page_names_the_articles_site_not_the_feeds_host(settings: Settings) -> None:
    """A feed served from elsewhere (a proxy, a feed service) is not the publisher."""
    operations.import_paths(settings, [FEEDS / "rss2.xml"], organisation="CECOP",
                            hints=Hints(url="http://127.0.0.1:8077/cecop.rss"))
    with app_over(settings) as app:
        soup = page(app.test_client(), f"/items/{url_id(ARTICLE)}")
    assert soup.select_one("dd.publisher").get_text(" ", strip=True) == "CECOP · cecop.example"
    assert soup.select_one("dd.publisher a")["href"] == "https://cecop.example/"
    assert soup.select_one("p.original a").get_text(" ", strip=True) == (
        "Read the original on cecop.example ↗")


def test_item_page_keeps_the_search_it_was_opened_from_in_its_box(web: FlaskClient) -> None:
    details = page(web, "/?q=refugees&organisation=CECOP").select_one("ol.hits a.details")
    assert details["href"].endswith("?back=q%3Drefugees%26organisation%3DCECOP")
    assert page(web, details["href"]).select_one("input#q")["value"] == "refugees"
    assert page(web, f"/items/{url_id(ARTICLE)}").select_one("input#q")["value"] == ""


def test_item_page_of_a_sample_shows_no_file_path(web: FlaskClient) -> None:
    sample = page(web, "/?q=Declaration+migrants&organisation=CECOP").select_one("ol.hits h3 a")
    assert sample.get_text() == "Declaration on migrants and refugees"
    soup = page(web, sample["href"])
    assert soup.select_one("dd.publisher").get_text(strip=True) == "CECOP"
    assert soup.select_one("p.original") is None
    assert "cecop-news.txt" not in str(soup) and "data/samples" not in str(soup)


def test_atom_entry_links_to_the_article_and_to_the_item_page(web: FlaskClient) -> None:
    feed = ET.fromstring(web.get("/feed.atom?q=refugees&organisation=CECOP").data)
    entries = {e.findtext(f"{ATOM}title"): e for e in feed.iter(f"{ATOM}entry")}
    linked = entries["Social cooperatives and refugees"]
    links = {link.get("rel"): link.get("href") for link in linked.iter(f"{ATOM}link")}
    assert links == {"alternate": ARTICLE,
                     "related": f"http://localhost/items/{url_id(ARTICLE)}"}
    plain = entries["Declaration on migrants and refugees"]
    assert [(link.get("rel"), link.get("href").startswith("http://localhost/items/"))
            for link in plain.iter(f"{ATOM}link")] == [("alternate", True)]


def test_api_item_carries_the_source_url(web: FlaskClient) -> None:
    item = web.get(f"/api/items/{url_id(ARTICLE)}").get_json()
    assert item["url"] == ARTICLE and item["source_url"] == "https://cecop.example/feed.rss"


def test_cli_search_prints_the_article_link(cli: Cli) -> None:
    cli("import", FEEDS / "rss2.xml", "--org", "CECOP")
    out = cli("search", "refugees").stdout
    assert "1. Social cooperatives and refugees\n" in out
    assert f"\n     {ARTICLE}\n" in out


def test_a_script_url_from_a_json_import_is_never_a_link(cli: Cli, client: FlaskClient,
                                                         tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"id": "js", "title": "Scripted cooperative", "url": "javascript:alert(1)"}\n')
    cli("import", bad, "--org", "ILO")
    client.application.extensions["searchapp.engine"].close()
    fresh = create_app({"catalog": client.application.config["SEARCHAPP"].catalog,
                        "index_dir": client.application.config["SEARCHAPP"].index_dir})
    web = fresh.test_client()
    hit = page(web, "/?q=scripted").select_one("ol.hits h3 a")
    assert hit["href"] == "/items/js?back=q%3Dscripted"
    item = page(web, "/items/js").select_one("article.item")
    assert [a["href"] for a in item.select("a") if "javascript" in a["href"]] == []
    assert item.select_one("p.original") is None
    fresh.extensions["searchapp.engine"].close()


def test_catalog_made_before_source_url_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE items (id TEXT PRIMARY KEY, organisation TEXT NOT NULL,
              title TEXT NOT NULL, summary TEXT NOT NULL DEFAULT '', date TEXT, year INTEGER,
              type TEXT NOT NULL, url TEXT, language TEXT NOT NULL DEFAULT 'en',
              source TEXT NOT NULL DEFAULT '', added_at TEXT NOT NULL, updated_at TEXT NOT NULL);
            INSERT INTO items VALUES ('a', 'ILO', 'Old item', '', NULL, NULL, 'News', NULL, 'en',
              'old.txt', '2020-01-01', '2020-01-01');
        """)
    db.close()
    with Catalog(path) as catalog:
        old = catalog.get("a")
        assert old is not None and old.title == "Old item" and old.source_url is None
