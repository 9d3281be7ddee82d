"""The search page in headless Chromium, against the app served by gunicorn.

Each test gets a fresh browser context; after it, the page must have logged no
console error and requested nothing outside the app's own origin.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    ROOT,
    Watch,
    chromium,
    chromium_path,
    gunicorn,
    in_ci,
    missing,
)

from searchapp import operations
from searchapp.config import Settings

try:
    from playwright.sync_api import Browser, Locator, Page, expect
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # pragma: no cover - the [test] extra installs it
    if in_ci():
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

SAMPLES = ROOT / "data" / "samples"
# The README's screenshots are refreshed only on request (`make screenshots`); a test
# run writes them to a temporary folder so it never changes tracked files.
SCREENSHOTS_ENV = "SEARCHAPP_SCREENSHOTS"
ATOM = "{http://www.w3.org/2005/Atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
TIMEOUT_MS = 5_000
AXE = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """data/samples in a temporary catalog and index, served by gunicorn; the base URL."""
    chromium_path()  # no server to start when there is no browser to drive
    root = tmp_path_factory.mktemp("served")
    settings = Settings.load({"catalog": root / "catalog.sqlite3", "index_dir": root / "index"},
                             environ={})
    operations.import_paths(settings, [SAMPLES])
    with gunicorn(settings, root / "gunicorn.log") as base:
        yield base


ORGANISATIONS = 200
KINDS = ("Cooperative Bank", "Housing Co-operative", "Farmers' Cooperative", "Credit Union",
         "Workers' Co-op", "Consumer Cooperative", "Fishers' Cooperative", "Dairy Cooperative")
PLACES = ("Aarhus", "Bologna", "Córdoba", "Dublin", "Espoo", "Freiburg", "Gdańsk", "Helsinki",
          "Izmir", "Jaén", "Kraków", "Lyon", "Málaga", "Nantes", "Oslo", "Porto", "Québec",
          "Rennes", "São Paulo", "Tampere", "Utrecht", "Valencia", "Wrocław", "York", "Zürich")
TOPICS = ("annual report", "member assembly", "new housing scheme", "fair prices for producers",
          "youth employment", "climate plan", "credit for small farms", "elections to the board")
TYPES = ("News", "Press release", "Report", "Statement", "Event")


def many_organisations(path: Path) -> Path:
    """Items from 200 organisations over 31 years (1995–2025), as JSON Lines."""
    lines = []
    for number, (kind, place) in enumerate((k, p) for p in PLACES for k in KINDS):
        organisation = f"{kind} of {place}"
        for n in range(1 + number * 7 % 5):
            year = 1995 + (number * 3 + n * 11) % 31
            topic = TOPICS[(number + n) % len(TOPICS)]
            lines.append(json.dumps({
                "id": f"org{number:03d}-{n}", "organisation": organisation,
                "title": f"{organisation}: {topic}",
                "summary": f"The {kind.lower()} in {place} on its {topic}, a cooperative answer.",
                "date": f"{year}-{1 + (number + n) % 12:02d}-{1 + n * 5:02d}",
                "type": TYPES[(number + n) % len(TYPES)]}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def served_many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Items of 200 organisations over 31 years, served by gunicorn; the base URL."""
    chromium_path()
    root = tmp_path_factory.mktemp("served-many")
    settings = Settings.load({"catalog": root / "catalog.sqlite3", "index_dir": root / "index"},
                             environ={})
    operations.import_paths(settings, [many_organisations(root / "many.jsonl")])
    with gunicorn(settings, root / "gunicorn.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def watch(served: str) -> Watch:
    return Watch(served)


def open_page(browser: Browser, served: str, watch: Watch, **options: Any) -> Iterator[Page]:
    context = browser.new_context(base_url=served, **options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch.attach(page)
    yield page
    context.close()
    assert watch.unexpected_errors() == [], "the page logged errors"
    assert watch.foreign_requests() == [], "the page reached outside the app"


@pytest.fixture
def page(browser: Browser, served: str, watch: Watch) -> Iterator[Page]:
    yield from open_page(browser, served, watch, viewport={"width": 1280, "height": 1000})


@pytest.fixture
def many(browser: Browser, served_many: str) -> Iterator[Page]:
    """A desktop page on the 200-organisation search."""
    yield from open_page(browser, served_many, Watch(served_many),
                         viewport={"width": 1280, "height": 1000})


@pytest.fixture
def page_without_js(browser: Browser, served: str, watch: Watch) -> Iterator[Page]:
    yield from open_page(browser, served, watch, java_script_enabled=False,
                         viewport={"width": 1280, "height": 1000})


def params(url: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)


def arrived(page: Page, expected: dict[str, list[str]]) -> None:
    """Wait until the page has loaded a URL with exactly these query parameters."""
    try:
        page.wait_for_url(lambda url: params(url) == expected)
    except PlaywrightTimeout:
        raise AssertionError(f"expected {expected}, the page is at {page.url}") from None


def hit_titles(page: Page) -> list[str]:
    return page.locator("ol.hits h3").all_inner_texts()


def facet_link(page: Page, facet: str, label: str) -> Locator:
    section = page.locator(f"section.facet:has(h3#facet-{facet})")
    return section.locator("a.facet-value, a.year-row").filter(
        has=page.locator("span.label", has_text=re.compile(f"^{re.escape(label)}$")))


# Finding ------------------------------------------------------------------


def test_typing_a_query_shows_highlighted_hits(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#count")).to_have_text("35 items")
    page.locator("#q").fill("refugees")
    page.locator("#q").press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=refugees$"))
    expect(page.locator("#count")).to_have_text("2 items for “refugees”")
    expect(page).to_have_title("refugees – Cooperative news search")
    expect(page.locator("#q")).to_have_value("refugees")  # the box keeps the query
    marks = page.locator("ol.hits mark").all_inner_texts()
    assert marks and all(m.lower().startswith("refugee") for m in marks)
    first = page.locator("ol.hits li.hit").first
    expect(first.locator("h3")).to_have_text("Declaration on migrants and refugees")
    expect(first.locator(".meta .org")).to_have_text("CECOP")
    expect(first.locator(".meta .type")).to_have_text("Position paper")
    expect(first.locator(".meta time")).to_have_attribute("datetime", "2016-04-11")
    expect(first.locator(".summary")).to_be_visible()


def test_clicking_facets_narrows_marks_and_removes(page: Page) -> None:
    page.goto("/?q=elections")
    expect(page.locator("#count")).to_have_text("3 items for “elections”")
    clear = page.get_by_role("link", name="Clear all filters")
    expect(clear).to_have_count(0)  # nothing to clear yet
    cecop = facet_link(page, "organisation", "CECOP")
    expect(cecop.locator(".count")).to_have_text("2")
    cecop.click()
    arrived(page, {"q": ["elections"], "organisation": ["CECOP"]})
    expect(page.locator("#count")).to_have_text("2 items for “elections” (filters: CECOP)")
    assert len(hit_titles(page)) == 2
    selected = facet_link(page, "organisation", "CECOP")
    expect(selected).to_have_attribute("aria-current", "true")
    expect(selected.locator(".check")).to_have_text("✓")
    # Disjunctive counts: the other organisation is still offered, with its count.
    expect(facet_link(page, "organisation", "ILO").locator(".count")).to_have_text("1")
    # The type facet counts what is left.
    types = page.locator("section.facet:has(h3#facet-type) .count").all_inner_texts()
    assert sum(int(c) for c in types) == 2
    # A second facet ANDs; then "clear all filters" drops both and keeps the words.
    facet_link(page, "year", "2016").click()
    arrived(page, {"q": ["elections"], "organisation": ["CECOP"], "year": ["2016"]})
    expect(page.locator("#count")).to_have_text("1 item for “elections” (filters: CECOP, 2016)")
    clear.click()
    arrived(page, {"q": ["elections"]})
    expect(page.locator("#count")).to_have_text("3 items for “elections”")
    expect(clear).to_have_count(0)
    # Clicking a selected value removes it.
    facet_link(page, "organisation", "ILO").click()
    expect(page.locator("#count")).to_have_text("1 item for “elections” (filters: ILO)")
    expect(facet_link(page, "organisation", "ILO")).to_have_attribute("aria-current", "true")
    facet_link(page, "organisation", "ILO").click()
    arrived(page, {"q": ["elections"]})


def test_year_histogram_and_range(page: Page) -> None:
    page.goto("/")
    rows = page.locator("section.facet:has(h3#facet-year) ul.years a.year-row")
    expect(rows).to_have_count(4)  # 2017, 2016, 2015, undated: one link (one tab stop) each
    expect(rows.locator(".label")).to_have_text(["2017", "2016", "2015", "Undated"])
    page.get_by_role("link", name="2015 5 items").click()
    arrived(page, {"year": ["2015"]})
    expect(page.locator("#count")).to_have_text("5 items (filters: 2015)")
    selected = page.get_by_role("link", name="2015 5 items (selected; remove)")
    expect(selected).to_have_attribute("aria-current", "true")
    selected.click()
    arrived(page, {})
    page.locator("#year_from").fill("2016")
    page.locator("#year_to").fill("2017")
    page.locator("form.year-range").get_by_role("button", name="Apply").click()
    arrived(page, {"year_from": ["2016"], "year_to": ["2017"]})
    expect(page.locator("#count")).to_have_text("29 items (filters: 2016–2017)")  # 17 + 12
    dates = page.locator("ol.hits time").evaluate_all("ts => ts.map(t => t.dateTime)")
    assert dates and all(d[:4] in ("2016", "2017") for d in dates)


def test_a_reversed_year_range_is_swapped(page: Page) -> None:
    page.goto("/")
    page.locator("#year_from").fill("2017")
    page.locator("#year_to").fill("2016")
    page.locator("form.year-range").get_by_role("button", name="Apply").click()
    expect(page.locator(".notice.set-right")).to_have_text(
        "The year range 2017–2016 was reversed: showing 2016–2017.")
    expect(page.locator("#count")).to_have_text("29 items (filters: 2016–2017)")
    expect(page.locator("#year_from")).to_have_value("2016")
    expect(page.locator("#year_to")).to_have_value("2017")
    # The chip removes the range; the links on the page carry it the right way round.
    chip = page.locator("ul.chips a.chip")
    assert "year_from=2016" in str(facet_link(page, "type", "News").get_attribute("href"))
    chip.click()
    arrived(page, {})
    expect(page.locator("#count")).to_have_text("35 items")


def test_dates_by_preset_and_by_range(page: Page) -> None:
    page.goto("/?q=cooperatives")
    dates = page.locator("section.facet:has(h3#facet-date)")
    expect(dates.locator("a.facet-value .label")).to_have_text(
        ["Past week", "Past month", "Past year"])
    dates.get_by_role("link", name="Past year").click()
    arrived(page, {"q": ["cooperatives"], "past": ["year"]})  # the samples are from 2015-2017
    expect(page.locator("#count")).to_have_text("0 items for “cooperatives” (filters: Past year)")
    expect(dates.get_by_role("link", name="Past year (selected; remove)")).to_have_attribute(
        "aria-current", "true")
    page.locator("#date_from").fill("2017-01-01")
    page.locator("#date_to").fill("2017-06-30")
    page.locator("form.date-range").get_by_role("button", name="Apply").click()
    arrived(page, {"q": ["cooperatives"], "date_from": ["2017-01-01"], "date_to": ["2017-06-30"]})
    expect(page.locator("ul.chips .chip-label")).to_have_text(["1 Jan 2017 – 30 Jun 2017"])
    shown = page.locator("ol.hits time").evaluate_all("ts => ts.map(t => t.dateTime)")
    assert shown and all("2017-01-01" <= d <= "2017-06-30" for d in shown)
    expect(page.locator("#date_from")).to_have_value("2017-01-01")
    page.locator("ul.chips a.chip").click()
    arrived(page, {"q": ["cooperatives"]})
    expect(page.locator("#count")).to_have_text("26 items for “cooperatives”")


def test_a_date_range_without_javascript(page_without_js: Page) -> None:
    page = page_without_js
    page.goto("/?organisation=ILO")
    page.locator("#date_from").fill("2017-06-30")  # reversed: set right, not refused
    page.locator("#date_to").fill("2017-01-01")
    page.locator("form.date-range").get_by_role("button", name="Apply").click()
    arrived(page, {"organisation": ["ILO"], "date_from": ["2017-06-30"],
                   "date_to": ["2017-01-01"]})
    expect(page.locator(".notice.set-right")).to_have_text(
        "The date range 2017-06-30 to 2017-01-01 was reversed: showing 2017-01-01 to 2017-06-30.")
    expect(page.locator("#count")).to_have_text(
        re.compile(r"^\d+ items? \(filters: ILO, 1 Jan 2017 – 30 Jun 2017\)$"))


def test_a_search_downloads_as_csv_and_json_lines(page: Page) -> None:
    page.goto("/?q=refugees")
    links = page.locator("p.take-away")
    expect(links).to_contain_text("Download all 2 items: CSV · JSON Lines · Atom feed")
    with page.expect_download() as caught:
        links.get_by_role("link", name="CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(caught.value.path()).read_text("utf-8"))))
    assert [r["title"] for r in rows] == hit_titles(page)
    with page.expect_download() as caught:
        links.get_by_role("link", name="JSON Lines").click()
    lines = Path(caught.value.path()).read_text("utf-8").splitlines()
    assert [json.loads(line)["title"] for line in lines] == hit_titles(page)


def test_sort_applies_on_submit_not_on_arrow_keys(page: Page) -> None:
    page.goto("/?q=cooperatives")
    sort = page.locator("#sort")
    expect(sort).to_have_value("relevance")
    sort.focus()
    page.keyboard.press("ArrowDown")  # WCAG 3.2.2: choosing is not submitting
    expect(sort).to_have_value("newest")
    page.wait_for_timeout(300)
    assert params(page.url) == {"q": ["cooperatives"]}
    sort.select_option("oldest")
    page.wait_for_timeout(300)
    assert params(page.url) == {"q": ["cooperatives"]}
    page.get_by_role("button", name="Sort").click()
    arrived(page, {"q": ["cooperatives"], "sort": ["oldest"]})
    expect(sort).to_have_value("oldest")
    expect(page.locator("#count")).to_be_focused()
    dates = page.locator("ol.hits time").evaluate_all("ts => ts.map(t => t.dateTime)")
    assert dates == sorted(dates) and dates[0].startswith("2015")


def test_numbered_pagination_has_no_dead_links(page: Page) -> None:
    page.goto("/?per_page=3")  # 35 items: 12 pages
    nav = page.get_by_role("navigation", name="Result pages")
    expect(nav.locator("a[aria-current=page]")).to_have_text("1")
    expect(nav.get_by_role("link", name="‹ Previous")).to_have_count(0)
    expect(nav.locator("li.gap")).to_have_count(1)
    first_page = hit_titles(page)
    nav.get_by_role("link", name="Next ›").click()
    arrived(page, {"per_page": ["3"], "page": ["2"]})
    assert set(hit_titles(page)).isdisjoint(first_page)
    expect(page.locator("ol.hits")).to_have_attribute("start", "4")
    nav.get_by_role("link", name="Page 12").click()
    expect(nav.locator("a[aria-current=page]")).to_have_text("12")
    expect(nav.get_by_role("link", name="Next ›")).to_have_count(0)
    expect(page.locator("ol.hits li.hit")).to_have_count(2)
    for href in nav.locator("a").evaluate_all("as => as.map(a => a.href)"):
        number = int(params(href)["page"][0])
        assert 1 <= number <= 12, href
    nav.get_by_role("link", name="‹ Previous").click()
    arrived(page, {"per_page": ["3"], "page": ["11"]})
    # Past the end: a way back, not an empty list of links.
    page.goto("/?per_page=3&page=40")
    expect(page.locator(".notice")).to_contain_text("There is no page 40")
    page.get_by_role("link", name="Go to the last page").click()
    arrived(page, {"per_page": ["3"], "page": ["12"]})


def test_no_results_offers_the_spelling_and_any_words(page: Page) -> None:
    # Typo tolerance answers a word it can reach, and says so ...
    page.goto("/?q=econmy")
    expect(page.locator("#count")).to_have_text("12 items for “econmy”")
    expect(page.locator(".typos")).to_have_text(
        "No item has “econmy”, so close spellings were searched too: economy.")
    expect(page.locator("ol.hits mark").first).to_have_text(re.compile("^[Ee]conomy$"))
    # ... and "Did you mean" is left for what it cannot (two edits in five letters).
    page.goto("/?q=ecnmy")
    expect(page.locator("#count")).to_have_text("0 items for “ecnmy”")
    expect(page.locator(".empty")).to_contain_text("Nothing matches “ecnmy”")
    page.locator(".suggestion").get_by_role("link", name="economy").click()
    arrived(page, {"q": ["economy"]})
    assert len(hit_titles(page)) == 10
    page.goto("/?q=refugees+zebra")
    page.get_by_role("link", name="Show the 2 items with any of them").click()
    arrived(page, {"q": ["refugees zebra"], "match": ["any"]})
    expect(page.locator("#count")).to_have_text("2 items for “refugees zebra”")
    page.get_by_role("link", name="Require all words").click()
    arrived(page, {"q": ["refugees zebra"]})


# Reading ------------------------------------------------------------------


def test_open_an_item_and_its_related_items(page: Page) -> None:
    page.goto("/?q=refugees")
    page.locator("ol.hits h3 a").first.click()
    expect(page).to_have_url(re.compile(r"/items/"))
    expect(page.locator("article.item h1")).to_have_text("Declaration on migrants and refugees")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("CECOP")
    expect(facts.locator("time")).to_have_text("11 April 2016")
    related = page.get_by_role("region", name="Related items").locator("li a")
    expect(related.first).to_be_visible()
    titles = related.all_inner_texts()
    assert 1 <= len(titles) <= 5 and "Declaration on migrants and refugees" not in titles
    related.first.click()
    expect(page.locator("article.item h1")).to_have_text(titles[0])
    # The organisation in the facts is a search for that organisation.
    facts_org = page.locator("dl.facts dd a").first
    org = facts_org.inner_text()
    facts_org.click()
    arrived(page, {"organisation": [org]})
    expect(facet_link(page, "organisation", org)).to_have_attribute("aria-current", "true")


# Keyboard -----------------------------------------------------------------


def test_suggestions_by_keyboard(page: Page) -> None:
    page.goto("/")
    box = page.get_by_role("combobox", name="Search cooperative news")
    listbox = page.get_by_role("listbox", name="Suggestions")
    expect(box).to_have_attribute("aria-expanded", "false")
    box.press_sequentially("ele", delay=30)
    expect(listbox).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    options = listbox.get_by_role("option")
    expect(options).to_have_text(["elected", "election", "elections"])
    box.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", "q-suggestions-0")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    box.press("ArrowDown")
    box.press("ArrowDown")
    box.press("ArrowDown")  # wraps round to the first
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    box.press("ArrowUp")  # and back to the last
    expect(options.nth(2)).to_have_attribute("aria-selected", "true")
    expect(box).to_be_focused()
    box.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    expect(box).not_to_have_attribute("aria-activedescendant", re.compile(".*"))
    expect(box).to_have_value("ele")  # Escape closes the list, not the text
    box.press_sequentially("cti", delay=30)
    expect(options).to_have_text(["election", "elections"])
    box.press("ArrowDown")
    box.press("ArrowDown")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=elections$"))
    expect(page.locator("#count")).to_have_text("3 items for “elections”")
    expect(page.locator("#q")).to_have_value("elections")


def test_suggestion_by_mouse(page: Page) -> None:
    page.goto("/?organisation=CECOP")
    page.locator("#q").press_sequentially("refu", delay=30)
    page.get_by_role("option", name="refugees").click()
    arrived(page, {"q": ["refugees"], "organisation": ["CECOP"]})  # filters kept: refining
    expect(page.locator("#count")).to_have_text("1 item for “refugees” (filters: CECOP)")


def test_find_narrow_and_read_with_the_keyboard_alone(page: Page) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past the site name, into the search box
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("cooperatives")
    page.keyboard.press("Enter")  # no suggestion chosen: Enter searches for the words
    expect(page.locator("#count")).to_have_text("26 items for “cooperatives”")
    ilo = facet_link(page, "organisation", "ILO")
    tabs = 0
    while not ilo.evaluate("a => a === document.activeElement"):
        page.keyboard.press("Tab")
        tabs += 1
        assert tabs < 60, "the ILO filter cannot be reached with Tab"
    page.keyboard.press("Enter")
    heading = page.locator("#count")
    expect(heading).to_have_text("8 items for “cooperatives” (filters: ILO)")
    expect(heading).to_be_focused()  # not back at the top, 16 Tabs away
    page.keyboard.press("Tab")  # on from the heading: the sort control, then the chip
    expect(page.locator("#sort")).to_be_focused()
    first = page.locator("ol.hits h3 a").first
    title = first.inner_text()
    page.locator("#q").focus()
    while not first.evaluate("a => a === document.activeElement"):
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("article.item h1")).to_have_text(title)


# Without JavaScript, links and metadata -----------------------------------


def test_find_narrow_paginate_and_read_without_javascript(page_without_js: Page) -> None:
    page = page_without_js
    page.goto("/")
    page.locator("#q").fill("cooperatives")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#count")).to_have_text("26 items for “cooperatives”")
    facet_link(page, "organisation", "CECOP").click()
    arrived(page, {"q": ["cooperatives"], "organisation": ["CECOP"]})
    expect(page.locator("#count")).to_have_text("18 items for “cooperatives” (filters: CECOP)")
    page.locator("#sort").select_option("newest")  # nothing submits it without scripts
    page.get_by_role("button", name="Sort").click()
    arrived(page, {"q": ["cooperatives"], "organisation": ["CECOP"], "sort": ["newest"]})
    dates = page.locator("ol.hits time").evaluate_all("ts => ts.map(t => t.dateTime)")
    assert dates == sorted(dates, reverse=True)
    page.get_by_role("link", name="Next ›").click()
    arrived(page, {"q": ["cooperatives"], "organisation": ["CECOP"], "sort": ["newest"],
                   "page": ["2"]})
    expect(page.locator("ol.hits li.hit")).to_have_count(8)
    title = page.locator("ol.hits h3 a").first.inner_text()
    page.locator("ol.hits h3 a").first.click()
    expect(page.locator("article.item h1")).to_have_text(title)


def test_every_page_links_its_json_twin_and_the_opensearch_description(
        page: Page, watch: Watch) -> None:
    watch.allowed.append("404")  # the not-found page is, rightly, a 404
    page.goto("/?q=refugees")
    item = page.locator("ol.hits h3 a").first.get_attribute("href")
    for path, kind in [("/?q=refugees&organisation=CECOP", "search"), (item, "item"),
                       ("/no/such/page", None)]:
        page.goto(str(path))
        search = page.locator('head link[rel=search][type="application/opensearchdescription+xml"]')
        expect(search).to_have_attribute("href", "/opensearch.xml")
        if kind is None:
            continue
        twin = page.locator('head link[rel=alternate][type="application/json"]')
        href = twin.get_attribute("href")
        assert href and href.startswith("/api/")
        expect(page.locator("footer a", has_text="as JSON")).to_have_attribute("href", href)
        response = page.request.get(href)
        assert response.ok and response.headers["content-type"] == "application/json"
        body = response.json()
        if kind == "search":
            assert body["total"] == 1 and body["filters"]["organisation"] == ["CECOP"]
        else:
            assert body["title"] == page.locator("article.item h1").inner_text()

    description = page.request.get("/opensearch.xml")
    assert description.headers["content-type"].startswith("application/opensearchdescription+xml")
    root = ET.fromstring(description.body())
    assert root.tag == f"{OPENSEARCH}OpenSearchDescription"
    assert root.findtext(f"{OPENSEARCH}ShortName") == "Co-op news"
    templates = {u.get("type"): u.get("template") for u in root.iter(f"{OPENSEARCH}Url")}
    html = str(templates["text/html"]).replace("{searchTerms}", "elections")
    page.goto(html)
    expect(page.locator("#count")).to_have_text("3 items for “elections”")
    suggestions = str(templates["application/x-suggestions+json"]).replace("{searchTerms}", "ele")
    assert page.request.get(suggestions).json() == ["ele", ["elected", "election", "elections"]]


def test_the_atom_feed_of_a_search(page: Page) -> None:
    page.goto("/?q=cooperatives&organisation=ILO")
    href = page.locator('head link[rel=alternate][type="application/atom+xml"]').get_attribute(
        "href")
    assert href and href.startswith("/feed.atom?")
    expect(page.locator("footer a", has_text="Atom feed")).to_have_attribute("href", href)
    response = page.request.get(href)
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.body())
    assert feed.tag == f"{ATOM}feed" and feed.findtext(f"{ATOM}title")
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 8  # as many as the page lists: all eight are dated
    for entry in entries:
        assert entry.findtext(f"{ATOM}author/{ATOM}name") == "ILO"
        assert entry.findtext(f"{ATOM}id") and entry.findtext(f"{ATOM}updated")
        link = entry.find(f"{ATOM}link[@rel='alternate']")
        assert link is not None and "/items/" in str(link.get("href"))
    page.goto(str(entries[0].find(f"{ATOM}link").get("href")))  # type: ignore[union-attr]
    expect(page.locator("dl.facts")).to_contain_text("ILO")


def test_pages_load_nothing_from_elsewhere(page: Page, watch: Watch) -> None:
    for path in ("/", "/?q=ecnmy", "/?q=cooperatives&organisation=ILO"):
        page.goto(path)
    page.locator("ol.hits h3 a").first.click()
    expect(page.locator("#q")).to_have_value("cooperatives")  # the search it came from
    page.locator("#q").fill("")
    page.locator("#q").press_sequentially("coo", delay=30)
    expect(page.get_by_role("listbox")).to_be_visible()
    kinds = {urllib.parse.urlsplit(u).path for u in watch.requests}
    assert {"/static/app.css", "/static/app.js", "/api/suggest"} <= kinds
    assert watch.foreign_requests() == []
    assert watch.errors == []


def test_the_watch_would_catch_errors_and_foreign_requests(browser: Browser, served: str) -> None:
    """The checks every test ends with can fail."""
    watch = Watch(served)
    pages = open_page(browser, served, watch)
    page = next(pages)
    page.goto("/")
    page.evaluate("() => { console.error('boom'); setTimeout(() => { throw new Error('bang'); }); }")
    page.evaluate("() => fetch('https://elsewhere.invalid/x').catch(() => null)")
    page.wait_for_timeout(100)
    assert any("boom" in e for e in watch.errors) and any("bang" in e for e in watch.errors)
    assert any("elsewhere.invalid" in e for e in watch.errors)  # refused by the page's CSP
    with pytest.raises(AssertionError, match="the page logged errors"):
        next(pages)
    watch.requests = [f"{served}/static/app.js", "data:,", f"{served}.evil/x", "https://cdn.x/y"]
    assert watch.foreign_requests() == [f"{served}.evil/x", "https://cdn.x/y"]


# Filters in sight ---------------------------------------------------------


def test_active_filters_are_chips_in_the_heading_and_the_title(page: Page) -> None:
    page.goto("/?q=cooperatives&organisation=CECOP&type=Press+release&year=2016")
    chips = page.get_by_role("list", name="Active filters").locator("a.chip")
    expect(chips.locator(".chip-label")).to_have_text(["CECOP", "Press release", "2016"])
    expect(chips).to_contain_text(["CECOP ×", "Press release ×", "2016 ×"])
    heading = page.locator("#count")
    expect(heading).to_contain_text("(filters: CECOP, Press release, 2016)")
    expect(page).to_have_title(
        "cooperatives (CECOP, Press release, 2016) – Cooperative news search")
    total = int(heading.inner_text().split()[0])
    # A chip removes its filter alone, and focus lands on the new results heading.
    page.get_by_role("link", name="Press release (remove filter)").click()
    arrived(page, {"q": ["cooperatives"], "organisation": ["CECOP"], "year": ["2016"]})
    expect(chips.locator(".chip-label")).to_have_text(["CECOP", "2016"])
    expect(heading).to_be_focused()
    assert int(heading.inner_text().split()[0]) >= total
    page.goto("/?year_from=2015&year_to=2016&organisation=ILO&organisation=CECOP")
    expect(chips.locator(".chip-label")).to_have_text(["ILO", "CECOP", "2015–2016"])
    expect(heading).to_have_text("22 items (filters: ILO or CECOP, 2015–2016)")
    expect(page).to_have_title("ILO or CECOP, 2015–2016 – Cooperative news search")
    page.get_by_role("list", name="Active filters").get_by_role("link", name="Clear all").click()
    arrived(page, {})
    expect(page.get_by_role("list", name="Active filters")).to_have_count(0)


def test_a_new_query_keeps_the_filters_only_when_asked(page: Page) -> None:
    page.goto("/?q=cooperatives&organisation=ILO")
    within = page.get_by_role("checkbox", name="Search within these filters: ILO")
    expect(within).to_be_checked()  # refining is the default on a filtered search
    box = page.locator("#q")
    box.fill("cooperatives employment")  # more words: still refining
    expect(within).to_be_checked()
    box.fill("elections")  # a new search: the filters are let go, visibly
    expect(within).not_to_be_checked()
    box.press("Enter")
    arrived(page, {"q": ["elections"]})
    expect(page.locator("#count")).to_have_text("3 items for “elections”")
    # Ticking the box is the visitor's choice, and the script leaves it alone.
    page.goto("/?q=cooperatives&organisation=ILO")
    box.fill("elections")
    within.check()
    box.press("Enter")
    arrived(page, {"q": ["elections"], "organisation": ["ILO"]})
    expect(page.locator("#count")).to_have_text("1 item for “elections” (filters: ILO)")


def test_within_these_filters_without_javascript(page_without_js: Page) -> None:
    page = page_without_js
    page.goto("/?q=cooperatives&organisation=ILO&sort=newest")
    within = page.get_by_role("checkbox", name="Search within these filters: ILO")
    page.locator("#q").fill("elections")
    page.get_by_role("button", name="Search").click()  # ticked: the filters stay
    arrived(page, {"q": ["elections"], "organisation": ["ILO"], "sort": ["newest"]})
    within.uncheck()
    page.locator("#q").fill("refugees")
    page.get_by_role("button", name="Search").click()
    arrived(page, {"q": ["refugees"], "sort": ["newest"]})
    expect(page.locator("#count")).to_have_text("2 items for “refugees”")
    expect(within).to_have_count(0)  # nothing to keep


def test_on_a_phone_the_filters_are_one_tap_away(browser: Browser, served: str) -> None:
    watch = Watch(served)
    for page in open_page(browser, served, watch, java_script_enabled=False,
                          viewport={"width": 390, "height": 844}, is_mobile=True,
                          has_touch=True):
        page.goto("/?q=cooperatives&organisation=CECOP&year=2016")
        control = page.get_by_role("link", name="Filters (2)")
        expect(control).to_be_in_viewport()  # on the first screen, above the results
        expect(page.locator("ul.chips")).to_be_in_viewport()
        panel = page.locator("aside#filters")
        expect(panel).not_to_be_in_viewport()
        box = control.bounding_box()
        assert box and box["height"] >= 24 and box["width"] >= 24
        control.tap()
        expect(panel).to_be_in_viewport()
        expect(page).to_have_url(re.compile("#filters$"))
        page.get_by_role("link", name="Back to the results").tap()
        expect(page.locator("#count")).to_be_in_viewport()


# Errors keep the search ---------------------------------------------------


def test_bad_parameters_are_shown_on_the_search_page(page: Page, watch: Watch) -> None:
    watch.allowed.append("400")  # the page says 400 Bad Request, rightly
    response = page.goto("/?q=refugees&organisation=CECOP&page=abc&year_from=20x6")
    assert response and response.status == 400
    expect(page.get_by_role("heading", name="Something went wrong")).to_have_count(0)
    expect(page).to_have_title("Check the search: refugees (CECOP) – Cooperative news search")
    expect(page.locator("#q")).to_have_value("refugees")  # the box as it was
    expect(page.locator("ul.chips .chip-label")).to_have_text(["CECOP"])  # the filters too
    expect(page.locator("#count")).to_have_text("1 item for “refugees” (filters: CECOP)")
    problems = page.locator(".notice.problem")
    expect(problems).to_have_text([
        "The first year must be a whole number, not '20x6'. It was left out of this search.",
        "The page number must be a whole number, not 'abc'. It was left out of this search."])
    year_from = page.locator("#year_from")
    expect(year_from).to_have_value("20x6")  # as typed, marked, and explained
    expect(year_from).to_have_attribute("aria-invalid", "true")
    expect(year_from).to_have_accessible_description(re.compile("^The first year must be"))
    expect(page.locator("#year_to")).not_to_have_attribute("aria-invalid", "true")
    # Mending it is one more try at the same form.
    year_from.fill("2016")
    page.locator("form.year-range").get_by_role("button", name="Apply").click()
    arrived(page, {"q": ["refugees"], "organisation": ["CECOP"], "year_from": ["2016"]})
    expect(problems).to_have_count(0)


def test_unknown_parameters_are_ignored_with_a_notice(page: Page) -> None:
    page.goto("/?org=ILO&q=elections")
    expect(page.locator(".notice.set-right")).to_have_text(
        "?org=ILO was ignored: did you mean organisation?")
    expect(page.locator("#count")).to_have_text("3 items for “elections”")
    facet_link(page, "organisation", "ILO").click()  # links drop what was ignored
    arrived(page, {"q": ["elections"], "organisation": ["ILO"]})
    expect(page.locator(".notice.set-right")).to_have_count(0)


def test_back_to_search_returns_to_the_search_it_came_from(page: Page, watch: Watch) -> None:
    search = "/?q=refugees&organisation=CECOP&sort=newest&per_page=1"
    page.goto(search)
    first = page.locator("ol.hits h3 a").first
    first.click()
    expect(page.locator("article.item h1")).to_be_visible()
    page.get_by_role("region", name="Related items").locator("li a").first.click()
    page.get_by_role("link", name="← Back to search").click()  # from a related item, too
    arrived(page, params(search))
    expect(page.locator("#count")).to_have_text("1 item for “refugees” (filters: CECOP)")
    # The error page: the search named by a same-origin Referer, never another site's.
    watch.allowed.append("404")
    page.goto("/items/no-such-item", referer=f"{watch.origin}/?q=refugees&organisation=CECOP")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("#q")).to_be_visible()  # a search box to carry on with
    page.get_by_role("link", name="← Back to search").click()
    arrived(page, {"q": ["refugees"], "organisation": ["CECOP"]})
    page.goto("/items/no-such-item", referer="https://elsewhere.example/?q=refugees")
    expect(page.get_by_role("link", name="← Back to search")).to_have_attribute("href", "/")


# Small things ---------------------------------------------------------------


def test_a_year_in_the_query_is_offered_as_the_year_filter(page: Page) -> None:
    page.goto("/?q=2017")
    expect(page.locator("#count")).to_have_text("1 item for “2017”")
    offer = page.locator(".notice.offer")
    expect(offer).to_contain_text("Items from 2017?")
    offer.get_by_role("link", name="Show the 12 items from 2017").click()
    arrived(page, {"year": ["2017"]})
    expect(page.locator("#count")).to_have_text("12 items (filters: 2017)")
    expect(page.locator(".notice.offer")).to_have_count(0)  # already applied
    page.goto("/?q=cooperatives+2016&organisation=CECOP")
    page.locator(".notice.offer").get_by_role("link").click()
    arrived(page, {"q": ["cooperatives"], "organisation": ["CECOP"], "year": ["2016"]})


def test_pages_describe_themselves_and_are_compressed(page: Page) -> None:
    response = page.goto("/?q=refugees")
    assert response is not None
    assert response.headers.get("content-encoding") in ("br", "gzip")
    description = page.locator('head meta[name="description"]')
    expect(description).to_have_attribute("content", re.compile(r"^2 items .* “refugees”"))
    page.locator("ol.hits h3 a").first.click()
    expect(description).to_have_attribute("content", re.compile("CECOP"))


def test_the_suggestion_list_announces_its_length(page: Page) -> None:
    page.goto("/")
    page.locator("#q").press_sequentially("ele", delay=30)
    status = page.get_by_role("status").filter(has_text="suggestion")
    expect(status).to_have_text("3 suggestions: use the up and down arrows to choose")
    page.locator("#q").press_sequentially("ctions", delay=30)
    expect(status).to_have_text("1 suggestion: use the up and down arrows to choose")


# Two hundred organisations ----------------------------------------------------


def test_long_facets_show_their_top_values_and_all_on_request(many: Page) -> None:
    page = many
    page.goto("/")
    orgs = page.locator("section.facet:has(h3#facet-organisation) a.facet-value")
    expect(orgs.filter(visible=True)).to_have_count(10)
    show_all = page.get_by_role("link", name=f"Show all {ORGANISATIONS} organisations")
    show_all.click()
    arrived(page, {"show": ["organisation"]})
    expect(orgs.filter(visible=True)).to_have_count(ORGANISATIONS)
    page.get_by_role("link", name="Show fewer organisations").click()
    arrived(page, {})
    # A value chosen from the long list stays in sight after the list folds again.
    page.goto("/?organisation=Workers%27+Co-op+of+Zürich")
    expect(orgs.filter(visible=True)).to_have_count(11)
    expect(orgs.filter(visible=True).last).to_have_attribute("aria-current", "true")


def test_long_facets_filter_as_you_type(many: Page) -> None:
    page = many
    page.goto("/")
    box = page.get_by_role("searchbox", name="Filter organisations")
    orgs = page.locator("section.facet:has(h3#facet-organisation) a.facet-value")
    box.fill("zurich")  # accents need not be typed
    expect(orgs.filter(visible=True)).to_have_count(8)
    assert all("Zürich" in t for t in orgs.filter(visible=True).locator(".label").all_inner_texts())
    expect(page.get_by_role("status").filter(has_text="match")).to_have_text(
        f"8 of {ORGANISATIONS} organisations match")
    orgs.filter(visible=True).first.click()
    expect(page.locator("ul.chips a.chip")).to_have_count(1)
    box.fill("")
    expect(orgs.filter(visible=True)).to_have_count(10)


def test_many_years_are_binned_and_readable(many: Page) -> None:
    page = many
    page.goto("/")
    year = page.locator("section.facet:has(h3#facet-year)")
    expect(year.locator(".hint")).to_have_text("In groups of five years")
    labels = year.locator(".year-row .label").all_inner_texts()
    assert labels == ["2025–2029", "2020–2024", "2015–2019", "2010–2014", "2005–2009",
                      "2000–2004", "1995–1999"]
    links = year.locator("a.year-row")
    for link in links.all():
        box = link.bounding_box()
        assert box and box["height"] >= 24 and box["width"] >= 24  # WCAG 2.5.8 target size
        font = link.locator(".label").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        assert font >= 14
    # One tab stop per bin: no second list of the same years.
    stops = year.locator("a").count()
    assert stops == links.count() == 7
    page.get_by_role("link", name=re.compile("^2015–2019 ")).click()
    arrived(page, {"year_from": ["2015"], "year_to": ["2019"]})
    expect(year.locator(".year-row .label")).to_have_text(
        ["2019", "2018", "2017", "2016", "2015"])  # five years: one bar each
    expect(page.get_by_role("link", name="2015–2019 (remove filter)")).to_be_visible()


def test_year_bars_show_in_forced_colours(browser: Browser, served_many: str) -> None:
    watch = Watch(served_many)
    for page in open_page(browser, served_many, watch, forced_colors="active",
                          viewport={"width": 1280, "height": 1000}):
        page.goto("/")
        assert page.evaluate("matchMedia('(forced-colors: active)').matches")
        canvas = page.evaluate("""() => {
            const probe = document.body.appendChild(document.createElement("div"));
            probe.style.backgroundColor = "Canvas";
            return getComputedStyle(probe).backgroundColor;
        }""")
        bars = page.locator("a.year-row .bar")
        expect(bars).to_have_count(7)
        for bar in bars.all():
            colour = bar.evaluate("e => getComputedStyle(e).backgroundColor")
            box = bar.bounding_box()
            assert colour not in (canvas, "rgba(0, 0, 0, 0)"), "the bar is drawn in the background"
            assert box and box["width"] > 0 and box["height"] > 0


# Accessibility: axe-core on every kind of page -------------------------------


SIZES = {"desktop": {"viewport": {"width": 1280, "height": 1000}},
         "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                   "has_touch": True}}
AXE_PAGES = {
    "home": ("samples", "/"),
    "two filters": ("samples", "/?q=cooperatives&organisation=CECOP&year=2016"),
    "no results": ("samples", "/?q=zebra+unicorn&organisation=ILO"),
    "item": ("samples", None),  # the first hit for "refugees"
    "error": ("samples", "/items/no-such-item"),
    "bad parameter": ("samples", "/?q=refugees&page=abc&year_from=x"),
    "200 organisations": ("many", "/?q=cooperative"),
    "200 organisations, all shown": ("many", "/?show=organisation&year_from=2015"),
    "dates": ("samples", "/?q=cooperatives&organisation=ilo&date_from=2016-01-01&date_to=2017-06-30"),
    "date preset": ("many", "/?past=year"),
    "bad date": ("samples", "/?q=refugees&date_from=2017-02-30&org=ILO"),
}


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core from the npm registry (`make tests/node_modules/axe-core/axe.min.js`)."""
    path = AXE
    if not path.is_file():
        missing(f"no axe-core at {path} (npm ci --prefix tests)")
    return path.read_text(encoding="utf-8")


def axe_violations(page: Page, source: str) -> list[str]:
    """axe-core's default rules run inside the page, under the page's own CSP.

    `page.add_script_tag` would add an inline script, which the CSP refuses;
    evaluating the source through the DevTools protocol is not subject to it,
    so the page is checked exactly as served.
    """
    page.evaluate(source)
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map(v => v.id + " (" + v.impact + "): "
            + v.nodes.map(n => n.target.join(" ")).slice(0, 5).join(", "));
    }""")
    return list(found)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("which", AXE_PAGES)
def test_axe_finds_no_violations(browser: Browser, served: str, served_many: str,
                                 axe_source: str, which: str, size: str) -> None:
    data, path = AXE_PAGES[which]
    base = served if data == "samples" else served_many
    watch = Watch(base)
    watch.allowed += ["404", "400"]
    for page in open_page(browser, base, watch, **SIZES[size]):
        if path is None:
            page.goto("/?q=refugees")
            page.locator("ol.hits h3 a").first.click()
            expect(page.locator("article.item h1")).to_be_visible()
        else:
            page.goto(path)
        assert page.evaluate("typeof axe") == "undefined"  # nothing of axe's is served
        assert axe_violations(page, axe_source) == []


def test_axe_would_report_a_violation(page: Page, axe_source: str) -> None:
    """The check above can fail: an image without a text alternative is reported."""
    page.goto("/")
    page.evaluate("""() => {
        const img = document.createElement("img");
        img.src = "/static/favicon.svg";
        document.querySelector("main").appendChild(img);
    }""")
    assert any(v.startswith("image-alt") for v in axe_violations(page, axe_source))


# Screenshots for the README -----------------------------------------------


def test_screenshots_for_the_readme(browser: Browser, served_many: str,
                                    tmp_path: Path) -> None:
    """The README's pictures: two filters as chips, long facets folded, the phone's control."""
    docs = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    docs.mkdir(exist_ok=True)
    shots: list[tuple[str, tuple[int, int], dict[str, Any]]] = [
        ("screenshot.png", (1280, 1280), {"viewport": {"width": 1280, "height": 1280}}),
        ("screenshot-phone.png", (780, 1688), {
            "viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
            "is_mobile": True, "has_touch": True})]
    for name, size, options in shots:
        watch = Watch(served_many)
        for page in open_page(browser, served_many, watch, **options):
            page.goto("/?q=housing&type=News&type=Report&date_from=2010-01-01")
            expect(page.locator("#count")).to_contain_text(
                "(filters: News or Report, From 1 Jan 2010)")
            expect(page.get_by_role("link", name=re.compile("^Show all"))).to_be_attached()
            page.screenshot(path=docs / name, animations="disabled", caret="initial")
        assert png_size(docs / name) == size


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), path
    header = data[16:24]
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
