"""In headless Chromium: a hit's title leads to the article on its own site.

The articles live on a second local HTTP server (another origin), as they would
on the publisher's site; the feed that names them is imported from a saved file.
"""

from __future__ import annotations

import http.server
import re
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import CHROMIUM_ARGS, ROOT, Watch, chromium_path, gunicorn, in_ci, missing

from searchapp import operations
from searchapp.config import Settings
from searchapp.importers import Hints
from searchapp.urls import url_id

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # pragma: no cover - the [test] extra installs it
    if in_ci():
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

TIMEOUT_MS = 5_000
ARTICLE_PAGE = (b"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                b"<link rel='icon' href='data:,'>"
                b"<title>Worker cooperatives meet in Brussels - CECOP</title></head>"
                b"<body><h1>Worker cooperatives meet in Brussels</h1></body></html>")


class _Article(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = self.path.startswith("/news/")
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(ARTICLE_PAGE) if found else 0))
        self.end_headers()
        if found:
            self.wfile.write(ARTICLE_PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def publisher() -> Iterator[str]:
    """The publisher's site on 127.0.0.1; its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Article)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, publisher: str) -> Iterator[str]:
    chromium_path()
    root = tmp_path_factory.mktemp("linked")
    feed = root / "feed.xml"
    feed.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>CECOP</title>'
        f'<link>{publisher}/</link><description>d</description>\n'
        '<item><title>Worker cooperatives meet in Brussels</title>'
        '<link>/news/2017/brussels?utm_source=rss</link>'
        '<description>Delegates from twelve countries met.</description>'
        '<pubDate>Thu, 16 Mar 2017 09:30:00 +0100</pubDate></item></channel></rss>\n',
        encoding="utf-8")
    settings = Settings.load({"catalog": root / "catalog.sqlite3", "index_dir": root / "index"},
                             environ={})
    operations.import_paths(settings, [ROOT / "data" / "samples"])
    operations.import_paths(settings, [feed], organisation="CECOP",
                            hints=Hints(url=f"{publisher}/feed.xml"))
    with gunicorn(settings, root / "gunicorn.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            missing(f"Chromium at {executable} did not start: {exc}")
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, served: str) -> Iterator[tuple[Page, Watch]]:
    context = browser.new_context(base_url=served, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    watch = Watch(served)
    watch.attach(tab)
    yield tab, watch
    context.close()
    assert watch.unexpected_errors() == [], "the page logged errors"


def test_hit_title_goes_to_the_article(page: tuple[Page, Watch], publisher: str) -> None:
    tab, watch = page
    article = f"{publisher}/news/2017/brussels"
    tab.goto("/?q=brussels")
    title = tab.locator("ol.hits li.hit h3 a").first
    expect(title).to_have_attribute("href", article)
    expect(title).to_contain_text("Worker cooperatives meet in Brussels")
    expect(title.locator(".out-host")).to_contain_text("127.0.0.1")
    # Screen readers hear where the link goes.
    assert "on another site" in title.evaluate("a => a.textContent")
    title.click()
    tab.wait_for_url(article)
    expect(tab).to_have_title("Worker cooperatives meet in Brussels - CECOP")
    assert [u for u in watch.foreign_requests() if not u.startswith(publisher)] == []


def test_details_link_still_reaches_the_item_page(page: tuple[Page, Watch],
                                                  publisher: str) -> None:
    tab, watch = page
    tab.goto("/?q=brussels")
    tab.locator("ol.hits li.hit a.details").first.click()
    # The item link carries the search to return to (`?back=…`).
    tab.wait_for_url(re.compile(
        rf"/items/{url_id(publisher + '/news/2017/brussels')}(\?back=[^#]*)?$"))
    expect(tab.locator("dd.publisher")).to_have_text("CECOP · 127.0.0.1")
    original = tab.locator("p.original a")
    expect(original).to_have_text("Read the original on 127.0.0.1 ↗")
    expect(original).to_have_attribute("href", f"{publisher}/news/2017/brussels")
    assert watch.foreign_requests() == []


def test_hits_without_a_link_keep_going_to_the_item_page(page: tuple[Page, Watch]) -> None:
    tab, _ = page
    tab.goto("/?q=refugees&organisation=ILO")
    first = tab.locator("ol.hits li.hit h3 a").first
    first.click()
    tab.wait_for_url(re.compile(r"/items/[^/?]+(\?back=[^#]*)?$"))
    assert Path(urllib.parse.urlsplit(tab.url).path).parent.name == "items"
