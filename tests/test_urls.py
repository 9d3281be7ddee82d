from __future__ import annotations

import pytest

from searchapp.urls import BadUrl, absolute_url, clean_url, host, normalise_url, site, url_id


def test_clean_url_keeps_the_address_but_drops_tracking_fragment_and_default_port() -> None:
    assert (clean_url("HTTP://Example.ORG:80/news/A/?utm_source=rss&q=a+b&fbclid=x&p=2#top")
            == "http://example.org/news/A/?q=a+b&p=2")
    assert clean_url("https://www.ilo.org:443") == "https://www.ilo.org/"
    assert clean_url("https://ilo.org:8443/x?gclid=1") == "https://ilo.org:8443/x"


def test_relative_links_resolve_against_the_page() -> None:
    assert clean_url("../b/c.htm", "https://ex.org/news/a/") == "https://ex.org/news/b/c.htm"
    assert clean_url("//cdn.ex.org/x", "https://ex.org/") == "https://cdn.ex.org/x"
    assert clean_url("?page=2", "https://ex.org/list") == "https://ex.org/list?page=2"


@pytest.mark.parametrize("variant", [
    "http://example.org/news/a",
    "HTTP://EXAMPLE.org:80/news/a/",
    "http://example.org/news/a#comments",
    "http://example.org/news/a?utm_source=feed&utm_medium=rss",
    "http://example.org/news/%61",
])
def test_variants_of_one_article_get_one_id(variant: str) -> None:
    assert normalise_url(variant) == "http://example.org/news/a"
    assert url_id(variant) == url_id("http://example.org/news/a")


def test_query_order_does_not_matter_but_values_do() -> None:
    assert url_id("https://ex.org/a?x=1&y=2") == url_id("https://ex.org/a?y=2&x=1")
    assert url_id("https://ex.org/a?x=1") != url_id("https://ex.org/a?x=2")
    assert url_id("https://ex.org/a") != url_id("https://ex.org/b")
    assert url_id("http://ex.org/a") != url_id("https://ex.org/a")  # another scheme, kept apart


@pytest.mark.parametrize(("link", "message"), [
    ("javascript:alert(1)", "is not an http(s) address (javascript: links are not imported)"),
    ("data:text/html,<b>x</b>", "is not an http(s) address (data: links are not imported)"),
    ("mailto:a@b.org", "mailto: links are not imported"),
    ("news/a", "is relative and there is no page address to resolve it against"),
    ("http:///a", "has no host"),
    ("http://ex.org:port/", "has an invalid port"),
    ("", "link is empty"),
])
def test_links_that_cannot_be_articles_are_refused_with_a_reason(link: str, message: str) -> None:
    with pytest.raises(BadUrl) as caught:
        absolute_url(link)
    assert message in str(caught.value)


def test_host_is_for_people() -> None:
    assert host("https://www.ilo.org/global/coop") == "ilo.org"
    assert host("javascript:alert(1)") == ""
    assert host(None) == ""


def test_site_is_the_home_page() -> None:
    assert site("HTTPS://www.ILO.org:443/feeds/news.rss?x=1") == "https://www.ilo.org/"
    assert site("http://127.0.0.1:8080/feed.xml") == "http://127.0.0.1:8080/"
    assert site("javascript:alert(1)") == ""
