"""The search page in headless Chromium, against the app served by gunicorn.

Each test gets a fresh browser context; after it, the page must have logged no
console error and requested nothing outside the app's own origin.
"""

from __future__ import annotations

import os
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    CHROMIUM_ARGS,
    ROOT,
    Watch,
    chromium_path,
    gunicorn,
    in_ci,
    missing,
)

from searchapp import operations
from searchapp.config import Settings

try:
    from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
    from playwright.sync_api import Error as PlaywrightError
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:  # a broken install: say so, fail in CI
            missing(f"Chromium at {executable} did not start: {exc}")
        yield launched
        launched.close()


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
    return section.locator("a.facet-value").filter(
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
    expect(page.locator("#count")).to_have_text("2 items for “elections”")
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
    expect(page.locator("#count")).to_have_text("1 item for “elections”")
    clear.click()
    arrived(page, {"q": ["elections"]})
    expect(page.locator("#count")).to_have_text("3 items for “elections”")
    expect(clear).to_have_count(0)
    # Clicking a selected value removes it.
    facet_link(page, "organisation", "ILO").click()
    expect(page.locator("#count")).to_have_text("1 item for “elections”")
    expect(facet_link(page, "organisation", "ILO")).to_have_attribute("aria-current", "true")
    facet_link(page, "organisation", "ILO").click()
    arrived(page, {"q": ["elections"]})


def test_year_histogram_and_range(page: Page) -> None:
    page.goto("/")
    bars = page.locator("ul.histogram a.bar-link")
    expect(bars).to_have_count(3)  # 2015, 2016, 2017
    page.get_by_role("link", name="2015: 5 items").click()
    arrived(page, {"year": ["2015"]})
    expect(page.locator("#count")).to_have_text("5 items")
    expect(page.get_by_role("link", name="2015: 5 items (selected; remove)")).to_have_attribute(
        "aria-current", "true")
    page.get_by_role("link", name="2015: 5 items (selected; remove)").click()
    arrived(page, {})
    page.locator("#year_from").fill("2016")
    page.locator("#year_to").fill("2017")
    page.locator("form.year-range").get_by_role("button", name="Apply").click()
    arrived(page, {"year_from": ["2016"], "year_to": ["2017"]})
    expect(page.locator("#count")).to_have_text("29 items")  # 17 + 12; no 2015, no undated
    dates = page.locator("ol.hits time").evaluate_all("ts => ts.map(t => t.dateTime)")
    assert dates and all(d[:4] in ("2016", "2017") for d in dates)


def test_sort_control_reorders(page: Page) -> None:
    page.goto("/?q=cooperatives")
    expect(page.locator("#sort")).to_have_value("relevance")
    page.locator("#sort").select_option("oldest")  # the page submits on change
    expect(page).to_have_url(re.compile(r"sort=oldest"))
    expect(page.locator("#sort")).to_have_value("oldest")
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
    page.goto("/?q=cooperatves")
    expect(page.locator("#count")).to_have_text("0 items for “cooperatves”")
    expect(page.locator(".empty")).to_contain_text("Nothing matches “cooperatves”")
    page.locator(".suggestion").get_by_role("link", name="cooperatives").click()
    arrived(page, {"q": ["cooperatives"]})
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
    arrived(page, {"q": ["refugees"], "organisation": ["CECOP"]})  # filters kept
    expect(page.locator("#count")).to_have_text("1 item for “refugees”")


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
    expect(page.locator("#count")).to_have_text("8 items for “cooperatives”")
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
    expect(page.locator("#count")).to_have_text("18 items for “cooperatives”")
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
    for path in ("/", "/?q=cooperatves", "/?q=cooperatives&organisation=ILO"):
        page.goto(path)
    page.locator("ol.hits h3 a").first.click()
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


# Screenshots for the README -----------------------------------------------


def test_screenshots_for_the_readme(browser: Browser, served: str,
                                    tmp_path: Path) -> None:
    docs = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    docs.mkdir(exist_ok=True)
    shots: list[tuple[str, tuple[int, int], dict[str, Any]]] = [
        ("screenshot.png", (1280, 1000), {"viewport": {"width": 1280, "height": 1000}}),
        ("screenshot-phone.png", (780, 1688), {
            "viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
            "is_mobile": True, "has_touch": True})]
    for name, size, options in shots:
        watch = Watch(served)
        for page in open_page(browser, served, watch, **options):
            page.goto("/?q=cooperatives&organisation=ILO")
            expect(page.locator("#count")).to_have_text("8 items for “cooperatives”")
            page.screenshot(path=docs / name, animations="disabled", caret="initial")
        assert png_size(docs / name) == size


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), path
    header = data[16:24]
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
