"""Feeds and HTML pages imported as an operator would: saved files, `searchapp import`."""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, Cli

from searchapp import create_app
from searchapp.catalog import Catalog
from searchapp.config import Settings
from searchapp.importers import FORMATS, Hints, Parsed, guess_format, parse_bytes
from searchapp.importers.htmlpage import selectors_from_options
from searchapp.urls import url_id

FEEDS = ROOT / "tests" / "data" / "feeds"
SELECTORS = {"item": "div.news-row", "title": ".headline", "date": ".iso",
             "summary": ".abstract", "type": ".kind"}


def read(name: str, **hints: Any) -> Parsed:
    path = FEEDS / name
    return parse_bytes(path.read_bytes(), name=name, hints=Hints(organisation="Coop", **hints))


def fields(parsed: Parsed, *names: str) -> list[tuple[Any, ...]]:
    return [tuple(getattr(r.item, n) for n in names) for r in parsed.records]


def problems(parsed: Parsed) -> list[str]:
    return [str(p) for p in parsed.problems]


def items(cli: Cli) -> list[dict[str, Any]]:
    found = json.loads(cli("search", "--json", "--limit", "100").stdout)
    return sorted(found["hits"], key=lambda hit: hit["title"])


# --- feeds ------------------------------------------------------------------------


def test_rss_2_relative_and_absolute_links_dates_html_summaries_language() -> None:
    parsed = read("rss2.xml")
    assert problems(parsed) == []
    assert fields(parsed, "title", "url", "date", "summary", "language", "type") == [
        ("Worker cooperatives meet in Brussels",
         # relative to the channel's <link>, tracking parameters gone
         "https://cecop.example/news/2017/brussels-meeting/", dt(2017, 3, 16),
         "Delegates from twelve countries met.", "fr", "News"),
        ("Social cooperatives and refugees",
         # absolute, host case, default port and fragment cleaned
         "https://cecop.example/news/2016/refugees", dt(2016, 4, 11),
         "A declaration on migrants & refugees.", "fr", "News"),
    ]
    assert [r.line for r in parsed.records] == [8, 16]
    assert [r.item.id for r in parsed.records] == [
        url_id("https://cecop.example/news/2017/brussels-meeting"),
        url_id("https://cecop.example/news/2016/refugees")]


def test_rss_relative_links_resolve_against_the_feed_address_when_given() -> None:
    parsed = read("rss2.xml", url="https://feeds.cecop.example/rss/all.xml")
    assert parsed.records[0].item.url == "https://feeds.cecop.example/news/2017/brussels-meeting/"
    assert {r.item.source_url for r in parsed.records} == {
        "https://feeds.cecop.example/rss/all.xml"}


def test_categories_become_the_type_only_when_asked() -> None:
    assert fields(read("rss2.xml"), "type") == [("News",), ("News",)]
    assert fields(read("rss2.xml", type_from_category=True), "type") == [
        ("Press release",), ("Position paper",)]


def test_atom_with_xml_base_and_xml_lang() -> None:
    parsed = read("atom.xml", type_from_category=True)
    assert problems(parsed) == []
    assert fields(parsed, "title", "url", "date", "summary", "language", "type") == [
        ("COOP Champions announced", "https://ilo.example/coop/news/champions.htm",
         dt(2017, 9, 27), "Ten cooperators are named COOP Champions.", "en", "COOP Champions"),
        # the entry's own xml:base and xml:lang; content when there is no summary
        ("Cooperativas y empleo", "https://ilo.example/other/empleo.htm", dt(2017, 6, 1),
         "Un informe sobre el empleo.", "es", "News"),
    ]


def test_rss_1_0_rdf() -> None:
    parsed = read("rdf.xml", type_from_category=True)
    assert problems(parsed) == []
    assert fields(parsed, "title", "url", "date", "type", "language") == [
        ("General Assembly in Kuala Lumpur", "https://ica.example/news/general-assembly",
         dt(2017, 11, 14), "Events", "en")]


def test_language_option_beats_the_feed_or_page_but_not_an_item_that_says() -> None:
    # The first entry inherits the feed's xml:lang="en"; the second says xml:lang="es".
    assert fields(read("atom.xml", language="pt"), "language") == [("pt",), ("es",)]
    assert fields(read("rss2.xml", language="nl"), "language") == [("nl",), ("nl",)]
    page = (b'<html lang="en"><body>\n<article><h2><a href="https://t.example/a">A</a></h2>'
            b'</article>\n<article lang="de"><h2><a href="https://t.example/b">B</a></h2>'
            b'</article></body></html>')
    assert fields(parse_bytes(page, name="p", hints=Hints(organisation="C")), "language") == [
        ("en",), ("de",)]
    assert fields(parse_bytes(page, name="p", hints=Hints(organisation="C", language="fr")),
                  "language") == [("fr",), ("de",)]


def test_billion_laughs_is_refused_quickly_with_a_clear_problem() -> None:
    started = time.perf_counter()
    parsed = read("bomb.xml")
    assert time.perf_counter() - started < 5  # refused up front, never expanded
    assert parsed.records == []
    assert problems(parsed) == [
        ("bomb.xml:3: the document declares the XML entity 'lol'; feeds with entity declarations"
        " are refused (they can be XML bombs or read local files)")]


def test_external_entity_is_refused_and_nothing_is_read_from_disk() -> None:
    parsed = read("xxe.xml")
    assert parsed.records == []
    assert problems(parsed) == [
        ("xxe.xml:3: the document declares the XML entity 'secret'; feeds with entity"
        " declarations are refused (they can be XML bombs or read local files)")]


def test_external_dtd_reference_is_not_fetched_and_the_feed_still_reads(tmp_path: Path) -> None:
    data = (b'<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS'
            b' 0.91//EN" "http://127.0.0.1:9/rss-0.91.dtd">\n<rss version="0.91"><channel>'
            b'<title>Old</title><link>https://old.example/</link><description>d</description>'
            b'<language>en-us</language><item><title>Still here</title>'
            b'<link>https://old.example/a</link></item></channel></rss>\n')
    parsed = parse_bytes(data, name="old.rss", hints=Hints(organisation="Coop"))
    assert problems(parsed) == []
    assert fields(parsed, "title", "url") == [("Still here", "https://old.example/a")]


def test_malformed_xml_is_refused_with_its_line() -> None:
    parsed = read("malformed.xml")
    assert parsed.records == []
    assert problems(parsed) == [
        "malformed.xml:5: malformed XML: mismatched tag (column 28); the feed was not read"]


def test_feed_with_no_items_is_a_problem() -> None:
    assert problems(read("empty-feed.xml")) == ["empty-feed.xml:2: feed 'Quiet news' has no items"]


def test_xml_that_is_not_a_feed_is_named_as_such() -> None:
    parsed = parse_bytes(b'<?xml version="1.0"?>\n<urlset><url><loc>https://x.example/</loc>'
                         b'</url></urlset>\n', name="sitemap.xml", hints=Hints(organisation="C"))
    assert problems(parsed) == [
        ("sitemap.xml:1: an XML document with root element <urlset> is not a feed (expected"
        " <rss>, <feed> or <rdf:RDF>) nor an HTML page")]


def test_feed_items_with_script_links_are_problems_not_items() -> None:
    data = (b'<rss version="2.0"><channel><title>T</title><link>https://t.example/</link>'
            b'<description>d</description>\n<item><title>Bad</title>'
            b'<link>javascript:alert(1)</link></item>\n<item><title>Good</title>'
            b'<link>https://t.example/good</link></item></channel></rss>')
    parsed = parse_bytes(data, name="t.xml", hints=Hints(organisation="C"))
    assert fields(parsed, "title") == [("Good",)]
    assert problems(parsed) == [
        ("t.xml:2: link 'javascript:alert(1)' is not an http(s) address (javascript: links are"
        " not imported); item 'Bad' not imported")]


# --- HTML pages ---------------------------------------------------------------------


def test_html_json_ld_item_list_in_a_graph() -> None:
    parsed = read("jsonld.html", url="https://coopseurope.example/news/")
    assert problems(parsed) == []
    assert fields(parsed, "title", "url", "date", "summary", "language") == [
        ("Cooperatives Europe elects a new board", "https://coopseurope.example/news/new-board",
         dt(2018, 6, 5), "The general assembly in Brussels elected nine members.", "en"),
        ("Youth and cooperatives", "https://coopseurope.example/blog/youth", dt(2018, 5, 20),
         "Young people start cooperatives.", "en"),
    ]
    assert {r.line for r in parsed.records} == {6}  # the <script> holding them


def test_html_relative_link_without_a_page_address_is_a_problem() -> None:
    parsed = read("jsonld.html")
    assert problems(parsed) == [
        ("jsonld.html:6: link '/news/new-board' is relative and there is no page address to"
        " resolve it against (give the page's address with --url); item 'Cooperatives Europe"
        " elects a new board' not imported")]


def test_html_h_entries_with_base_href() -> None:
    parsed = read("hentry.html")
    assert problems(parsed) == []
    assert fields(parsed, "title", "url", "date", "summary", "language") == [
        ("Genossenschaftstag 2019", "https://geno.example/aktuell/genossenschaftstag-2019",
         dt(2019, 10, 2), "Über 500 Gäste kamen nach Berlin.", "de"),
        ("Energiegenossenschaften wachsen", "https://geno.example/aktuell/energie",
         dt(2019, 8, 15), "Mehr Bürgerinnen investieren.", "de"),
    ]
    assert [r.line for r in parsed.records] == [6, 11]


def test_html_article_blocks_and_a_script_link_refused() -> None:
    parsed = read("articles.html", url="https://coop.example/en/")
    assert fields(parsed, "title", "url", "date", "summary") == [
        ("Statement on COVID-19 and cooperatives",
         "https://coop.example/en/press/2020/covid-statement", dt(2020, 3, 20),
         "Cooperatives keep essential services running."),
        ("Cooperative women lead", "https://coop.example/press/2020/women-day", dt(2020, 3, 8),
         "On International Women's Day we celebrate cooperative women."),
    ]
    assert problems(parsed) == [
        ("articles.html:17: link \"javascript:alert('x')\" is not an http(s) address (javascript:"
        " links are not imported); item 'A link that runs code' not imported")]


def test_html_page_with_nothing_recognisable_asks_for_selectors() -> None:
    parsed = read("unknown.html", url="https://it.example/notizie/")
    assert parsed.records == []
    assert problems(parsed) == [
        ("unknown.html:1: no news items recognised on this HTML page: no schema.org JSON-LD"
        " articles, no microformats h-entry, no repeated <article> blocks with a linked heading;"
        " give CSS selectors for it, e.g. --select item='div.news' --select title='h3 a'")]


def test_html_page_read_with_selectors() -> None:
    parsed = read("unknown.html", url="https://it.example/notizie/", selectors=SELECTORS)
    assert problems(parsed) == []
    assert fields(parsed, "title", "url", "date", "summary", "type", "language") == [
        ("Assemblea generale 2021", "https://it.example/notizie/assemblea-2021", dt(2021, 5, 12),
         "L'assemblea ha approvato il bilancio.", "Comunicato", "it"),
        ("Premio cooperazione", "https://it.example/notizie/premio", dt(2021, 4, 1),
         "Tre cooperative premiate.", "Evento", "it"),
    ]


def test_selectors_that_match_nothing_say_which() -> None:
    parsed = read("unknown.html", url="https://it.example/", selectors={
        "item": "div.news-row", "title": "h2"})
    assert problems(parsed) == [
        "unknown.html:6: selector title='h2' matches nothing in this item",
        "unknown.html:12: selector title='h2' matches nothing in this item"]
    parsed = read("unknown.html", selectors={"item": "li.news", "title": "h2"})
    assert problems(parsed) == [("unknown.html:1: selector item='li.news' matches nothing on"
                                " this page")]


def test_selector_options_are_checked() -> None:
    assert selectors_from_options(["item=div.x", "title = h3 a"]) == {
        "item": "div.x", "title": "h3 a"}
    with pytest.raises(ValueError, match="selector 'item' is required") as caught:
        selectors_from_options(["title=h3", "colour=.c", "date=time["])
    assert str(caught.value).splitlines() == [
        ("unknown selector field 'colour'; expected some of item, title, link, date, summary,"
        " type"),
        "selector 'item' is required when selectors are given",
        "selector date='time[' is not valid CSS: Malformed attribute selector at position 4"]


def test_windows_1252_page_declared_as_iso_8859_1_decodes_right() -> None:
    parsed = read("latin1.html")
    assert problems(parsed) == []
    assert fields(parsed, "title", "summary", "language") == [
        ("L’économie sociale en région", "Les coopératives – un modèle “durable”.", "fr")]


def test_utf8_checks_for_text_formats_are_not_loosened() -> None:
    latin1 = "title\nCoopératives\n".encode("latin-1")
    parsed = parse_bytes(latin1, name="x.csv", hints=Hints(organisation="C"))
    assert problems(parsed) == [
        ("x.csv:2: not UTF-8: byte 0xE9 in column 5 cannot be decoded (is the file Latin-1 or"
        " Windows-1252? save it as UTF-8)")]


def test_formats_are_told_by_content_not_by_name() -> None:
    assert {"feed", "html"} <= set(FORMATS)
    rss = (FEEDS / "rss2.xml").read_text()
    assert guess_format("news.txt", rss) == "feed"
    assert guess_format("news.json", rss) == "feed"
    assert guess_format("page.txt", (FEEDS / "hentry.html").read_text()) == "html"
    assert guess_format("feed.atom", "id,title\n1,x\n") == "csv"
    parsed = parse_bytes((FEEDS / "atom.xml").read_bytes(), name="download",
                         hints=Hints(organisation="ILO"))
    assert len(parsed.records) == 2


def test_same_article_in_a_feed_and_on_a_page_is_one_id(tmp_path: Path) -> None:
    feed = (b'<rss version="2.0"><channel><title>T</title><link>https://t.example/</link>'
            b'<description>d</description><item><title>Same story</title>'
            b'<link>https://T.example/news/same/?utm_campaign=x</link></item></channel></rss>')
    page = (b'<html><body><article><h2><a href="/news/same#top">Same story</a></h2>'
            b'<time datetime="2020-01-02">2 Jan</time><p>Text.</p></article></body></html>')
    from_feed = parse_bytes(feed, name="f", hints=Hints(organisation="C"))
    from_page = parse_bytes(page, name="p", hints=Hints(organisation="C",
                                                        url="https://t.example/news/"))
    assert from_feed.records[0].item.id == from_page.records[0].item.id


# --- what the operator sees ------------------------------------------------------------


def test_cli_imports_saved_rss_atom_rdf_and_html(cli: Cli) -> None:
    result = cli("import", FEEDS / "rss2.xml", FEEDS / "atom.xml", FEEDS / "rdf.xml",
                 FEEDS / "hentry.html", FEEDS / "latin1.html", "--org", "Coop")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "imported: 8 added, 0 updated, 0 unchanged; index rebuilt"
    again = cli("import", FEEDS / "rss2.xml", "--org", "Coop")
    assert "0 added, 0 updated, 2 unchanged" in again.stdout
    titles = [hit["title"] for hit in items(cli)]
    assert "Genossenschaftstag 2019" in titles and "L’économie sociale en région" in titles


def test_cli_url_and_selectors_for_a_page_it_cannot_read_alone(cli: Cli) -> None:
    page = FEEDS / "unknown.html"
    refused = cli("import", page, "--org", "Coop")
    assert refused.exit_code == 1
    assert f"{page}:1: no news items recognised on this HTML page" in refused.stderr
    assert "nothing was written" in refused.stderr
    result = cli("import", page, "--org", "Coop", "--url", "https://it.example/notizie/",
                 *[f"--select={name}={css}" for name, css in SELECTORS.items()])
    assert result.exit_code == 0, result.output
    assert "2 added" in result.stdout
    assert [(h["title"], h["url"], h["type"]) for h in items(cli)] == [
        ("Assemblea generale 2021", "https://it.example/notizie/assemblea-2021", "Comunicato"),
        ("Premio cooperazione", "https://it.example/notizie/premio", "Evento")]


def test_cli_rejects_bad_options_as_usage_errors(cli: Cli) -> None:
    page = FEEDS / "unknown.html"
    bad_select = cli("import", page, "--org", "C", "--select", "title")
    assert bad_select.exit_code == 2
    assert "Invalid value for --select: 'title' is not FIELD=CSS" in bad_select.stderr
    bad_url = cli("import", page, "--org", "C", "--url", "notizie/")
    assert bad_url.exit_code == 2
    assert "Invalid value for --url: link 'notizie/' is relative" in bad_url.stderr
    bad_language = cli("import", page, "--org", "C", "--language", "ita")
    assert bad_language.exit_code == 2
    assert "'ita' is not a two-letter ISO 639-1 code" in bad_language.stderr


@pytest.mark.parametrize(("name", "message"), [
    ("bomb.xml", "bomb.xml:3: the document declares the XML entity 'lol'"),
    ("xxe.xml", "xxe.xml:3: the document declares the XML entity 'secret'"),
    ("malformed.xml", "malformed.xml:5: malformed XML: mismatched tag"),
    ("empty-feed.xml", "empty-feed.xml:2: feed 'Quiet news' has no items"),
])
def test_cli_refuses_hostile_and_broken_feeds_and_writes_nothing(cli: Cli, name: str,
                                                                message: str) -> None:
    cli("import", FEEDS / "rdf.xml", "--org", "ICA")
    result = cli("import", FEEDS / "rss2.xml", FEEDS / name, "--org", "Coop")
    assert result.exit_code == 1
    assert message in result.stderr
    assert "import rejected: 1 problem; nothing was written" in result.stderr
    assert "Traceback" not in result.output
    assert [hit["title"] for hit in items(cli)] == ["General Assembly in Kuala Lumpur"]


def test_cli_skip_invalid_imports_the_good_items_of_a_page(cli: Cli) -> None:
    result = cli("import", FEEDS / "articles.html", "--org", "C", "--url",
                 "https://coop.example/en/", "--skip-invalid")
    assert result.exit_code == 0
    assert "2 added" in result.stdout and "1 skipped" in result.stdout
    assert "articles.html:17: link \"javascript:alert('x')\"" in result.stderr


def test_directory_with_a_manifest_keeps_the_source_url(cli: Cli, tmp_path: Path,
                                                        settings: Settings) -> None:
    shutil.copy(FEEDS / "jsonld.html", tmp_path / "news.html")
    (tmp_path / "manifest.toml").write_text(
        '[[file]]\npath = "news.html"\norganisation = "Cooperatives Europe"\n'
        'source_url = "https://coopseurope.example/news/"\n')
    result = cli("import", tmp_path)
    assert result.exit_code == 0, result.output
    found = json.loads(cli("search", "board", "--json").stdout)["hits"]
    assert found[0]["url"] == "https://coopseurope.example/news/new-board"
    with Catalog(settings.catalog) as catalog:
        item = catalog.get(found[0]["id"])
    assert item is not None and item.source_url == "https://coopseurope.example/news/"
    assert item.organisation == "Cooperatives Europe"


def dt(year: int, month: int, day: int) -> Any:
    import datetime

    return datetime.date(year, month, day)


# --- over HTTP: the admin upload -----------------------------------------------------------


def test_admin_upload_of_a_page_with_its_address_and_of_a_bomb(samples: Settings) -> None:
    app = create_app({"catalog": samples.catalog, "index_dir": samples.index_dir,
                      "admin_token": "t0ken"})
    client = app.test_client()

    def upload(name: str, **form: str) -> Any:
        data = {"file": (io.BytesIO((FEEDS / name).read_bytes()), name), **form}
        return client.post("/api/admin/imports?wait=60",
                           headers={"Authorization": "Bearer t0ken"},
                           data=data, content_type="multipart/form-data")

    try:
        bad_url = upload("jsonld.html", organisation="CE", url="javascript:void(0)")
        assert bad_url.status_code == 400
        assert bad_url.get_json()["error"]["message"].startswith(
            "url: must be an absolute http(s) address: link 'javascript:void(0)'")
        bomb = upload("bomb.xml", organisation="CE").get_json()
        assert bomb["state"] == "failed"
        assert bomb["error"]["problems"] == [
            {"source": "upload:bomb.xml", "line": 3, "message":
             "the document declares the XML entity 'lol'; feeds with entity declarations are"
             " refused (they can be XML bombs or read local files)"}]
        page = upload("jsonld.html", organisation="CE", url="https://coopseurope.example/news/")
        assert page.status_code == 200 and page.get_json()["result"]["added"] == 2
        hit = client.get("/api/search?q=board&organisation=CE").get_json()["hits"][0]
        assert hit["url"] == "https://coopseurope.example/news/new-board"
        item = client.get(f"/api/items/{hit['id']}").get_json()
        assert item["source_url"] == "https://coopseurope.example/news/"
    finally:
        app.extensions["searchapp.engine"].close()


@pytest.mark.parametrize(("written", "read", "problem"), [
    ("Thu, 16 Mar 2017 09:30:00 +0100", dt(2017, 3, 16), None),
    ("2017-03-16T23:30:00-05:00", dt(2017, 3, 16), None),  # the day as the publisher wrote it
    ("2017-03-16 09:30:00 CET", dt(2017, 3, 16), None),  # a form only feedparser knows
    ("2017-02-30", None, ("f.xml:2: date '2017-02-30' does not exist (day is out of range for"
                         " month)")),
    ("next Tuesday", None, ("f.xml:2: date 'next Tuesday' is not understood (expected ISO 8601"
                           " like 2017-09-27, RFC 822 like 'Wed, 27 Sep 2017 10:00:00 GMT' or"
                           " '27 September 2017')")),
])
def test_feed_dates(written: str, read: Any, problem: str | None) -> None:
    data = ('<rss version="2.0"><channel><title>T</title><link>https://t.example/</link>'
            f'<description>d</description>\n<item><title>A</title><link>https://t.example/a'
            f'</link><pubDate>{written}</pubDate></item></channel></rss>').encode()
    parsed = parse_bytes(data, name="f.xml", hints=Hints(organisation="C"))
    assert fields(parsed, "date") == ([(read,)] if read else [])
    assert problems(parsed) == ([problem] if problem else [])


def test_an_article_shown_twice_on_a_page_is_one_item() -> None:
    page = (b'<html><body>\n<article class="featured"><h2><a href="https://t.example/a?utm_medium=x">'
            b'Big story</a></h2><p>Featured.</p></article>\n'
            b'<article><h3><a href="https://t.example/a">Big story</a></h3><p>Listed.</p></article>\n'
            b'<article><h3><a href="https://t.example/b">Small story</a></h3></article>\n'
            b'</body></html>')
    parsed = parse_bytes(page, name="p.html", hints=Hints(organisation="C"))
    assert problems(parsed) == []
    assert fields(parsed, "title", "summary") == [("Big story", "Featured."),
                                                  ("Small story", "")]


def test_plain_text_titles_stay_text_and_html_ones_lose_their_tags() -> None:
    rss = (b'<rss version="2.0"><channel><title>T</title><link>https://t.example/</link>'
           b'<description>d</description><item><title>Co-ops &lt;3 members &amp; you</title>'
           b'<link>https://t.example/a</link></item></channel></rss>')
    atom = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry>'
            b'<title type="html">A &lt;em&gt;big&lt;/em&gt; day</title>'
            b'<link href="https://t.example/b"/><summary>1 &lt; 2</summary></entry></feed>')
    assert fields(parse_bytes(rss, name="r", hints=Hints(organisation="C")), "title") == [
        ("Co-ops <3 members & you",)]
    assert fields(parse_bytes(atom, name="a", hints=Hints(organisation="C")),
                  "title", "summary") == [("A big day", "1 < 2")]


def test_feed_in_a_legacy_charset_declared_by_its_xml_declaration() -> None:
    data = ('<?xml version="1.0" encoding="windows-1252"?>\n<rss version="2.0"><channel>'
            '<title>T</title><link>https://t.example/</link><description>d</description>\n'
            '<item><title>Coopératives “durables” – été</title><link>https://t.example/a</link>'
            '</item></channel></rss>').encode("windows-1252")
    parsed = parse_bytes(data, name="f.xml", hints=Hints(organisation="C"))
    assert problems(parsed) == []
    assert fields(parsed, "title") == [("Coopératives “durables” – été",)]


def test_a_manifest_source_url_that_is_no_web_address_is_a_problem(cli: Cli,
                                                                   tmp_path: Path) -> None:
    shutil.copy(FEEDS / "rss2.xml", tmp_path / "feed.xml")
    (tmp_path / "manifest.toml").write_text(
        '[[file]]\npath = "feed.xml"\norganisation = "CECOP"\nsource_url = "ftp://cecop.example/"\n')
    result = cli("import", tmp_path)
    assert result.exit_code == 1
    assert (f"{tmp_path / 'feed.xml'}:1: the page address is not usable: link"
            " 'ftp://cecop.example/' is not an http(s) address (ftp: links are not imported)"
            in result.stderr)


def test_source_url_is_filled_in_later_but_an_article_keeps_its_first_source(
        cli: Cli, settings: Settings) -> None:
    feed = FEEDS / "rss2.xml"
    cli("import", feed, "--org", "CECOP")
    later = cli("import", feed, "--org", "CECOP", "--url", "https://cecop.example/news/")
    other = cli("import", feed, "--org", "CECOP", "--url", "https://cecop.example/feeds/all.rss")
    assert "0 added, 0 updated, 2 unchanged" in later.stdout
    assert "0 added, 0 updated, 2 unchanged" in other.stdout
    with Catalog(settings.catalog) as catalog:
        kept = {item.source_url for item in catalog.iter_items()}
    assert kept == {"https://cecop.example/news/"}
