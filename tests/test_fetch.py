"""The fetcher against a real HTTP server on 127.0.0.1: limits, politeness, and errors in
our own words."""

from __future__ import annotations

import gzip
import itertools
import threading
import time
from dataclasses import replace

import pytest
from fetch_support import OPTIONS, closed_port, gzipped, requests_to, site, site_server
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from searchapp.config import Settings
from searchapp.errors import (
    BadURL,
    ConfigError,
    FetchTimeout,
    HTTPStatusError,
    RobotsDisallowed,
    TooLarge,
    TooManyRedirects,
    Unreachable,
)
from searchapp.fetch import Fetcher, FetchOptions

__all__ = ["site", "site_server"]  # fixtures, imported for pytest


def test_a_plain_answer_with_our_user_agent(site: HTTPServer) -> None:
    site.expect_request("/news.jsonl").respond_with_data(
        '{"title": "x"}\n', content_type="application/x-ndjson; charset=utf-8",
        headers={"ETag": '"v1"', "Last-Modified": "Tue, 01 Dec 2026 10:00:00 GMT"})
    with Fetcher(OPTIONS) as fetcher:
        got = fetcher.get(site.url_for("/news.jsonl"))
    assert (got.status, got.body, got.content_type) == (200, b'{"title": "x"}\n',
                                                        "application/x-ndjson")
    assert (got.etag, got.last_modified) == ('"v1"', "Tue, 01 Dec 2026 10:00:00 GMT")
    sent = requests_to(site, "/news.jsonl")[0]
    assert sent.headers["User-Agent"] == OPTIONS.user_agent
    assert "gzip" in sent.headers["Accept-Encoding"]


def test_conditional_get_sends_the_validators_and_reads_a_304(site: HTTPServer) -> None:
    def answer(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response("{}", headers={"ETag": '"v1"'})

    site.expect_request("/feed").respond_with_handler(answer)
    with Fetcher(OPTIONS) as fetcher:
        got = fetcher.get(site.url_for("/feed"), etag='"v1"',
                          last_modified="Tue, 01 Dec 2026 10:00:00 GMT")
    assert got.not_modified and got.body == b""
    sent = requests_to(site, "/feed")[0]
    assert sent.headers["If-None-Match"] == '"v1"'
    assert sent.headers["If-Modified-Since"] == "Tue, 01 Dec 2026 10:00:00 GMT"


def test_gzip_answers_are_decoded(site: HTTPServer) -> None:
    body = b"16 Mar 2017\nA title\n" * 50
    site.expect_request("/page.txt").respond_with_response(gzipped(body, "text/plain"))
    with Fetcher(OPTIONS) as fetcher:
        assert fetcher.get(site.url_for("/page.txt")).body == body


def test_the_size_limit_counts_decompressed_bytes(site: HTTPServer) -> None:
    """A small gzip that unpacks past the limit (a gzip bomb) is stopped while reading."""
    bomb = b"\0" * (OPTIONS.max_bytes * 20)
    assert len(gzip.compress(bomb)) < OPTIONS.max_bytes
    site.expect_request("/bomb").respond_with_response(gzipped(bomb, "text/plain"))
    with Fetcher(OPTIONS) as fetcher, pytest.raises(TooLarge, match="over the limit of 65,536"):
        fetcher.get(site.url_for("/bomb"))


def test_a_declared_length_over_the_limit_is_refused_before_reading(site: HTTPServer) -> None:
    site.expect_request("/big").respond_with_data(b"x" * (OPTIONS.max_bytes + 1))
    with Fetcher(OPTIONS) as fetcher, pytest.raises(TooLarge, match="65,537 bytes; the limit"):
        fetcher.get(site.url_for("/big"))


def test_an_undeclared_length_over_the_limit_is_cut_off(site: HTTPServer) -> None:
    def chunks() -> object:
        for _ in range(100):
            yield b"y" * 4096

    site.expect_request("/stream").respond_with_response(
        Response(chunks(), direct_passthrough=True))  # type: ignore[arg-type]
    with Fetcher(OPTIONS) as fetcher, pytest.raises(TooLarge, match="over the limit"):
        fetcher.get(site.url_for("/stream"))


def test_redirects_are_followed_to_the_end(site: HTTPServer) -> None:
    site.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/mid"})
    site.expect_request("/mid").respond_with_data(
        "", status=302, headers={"Location": site.url_for("/new")})
    site.expect_request("/new").respond_with_data("fine")
    with Fetcher(OPTIONS) as fetcher:
        got = fetcher.get(site.url_for("/old"))
    assert (got.body, got.url) == (b"fine", site.url_for("/new"))


def test_a_redirect_loop_is_named(site: HTTPServer) -> None:
    site.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    site.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
    with Fetcher(OPTIONS) as fetcher, pytest.raises(TooManyRedirects) as caught:
        fetcher.get(site.url_for("/a"))
    assert str(caught.value) == (f"redirect loop: {site.url_for('/a')} → {site.url_for('/b')}"
                                 f" → {site.url_for('/a')}")
    assert len(requests_to(site, "/a")) == 1  # not retried


def test_too_many_redirects(site: HTTPServer) -> None:
    for n in range(10):
        site.expect_request(f"/r{n}").respond_with_data(
            "", status=307, headers={"Location": f"/r{n + 1}"})
    with Fetcher(OPTIONS) as fetcher, pytest.raises(TooManyRedirects, match="more than 4"):
        fetcher.get(site.url_for("/r0"))
    assert len(requests_to(site, "/r4")) == 1 and not requests_to(site, "/r5")


def test_only_http_and_https(site: HTTPServer) -> None:
    site.expect_request("/away").respond_with_data(
        "", status=302, headers={"Location": "file:///etc/passwd"})
    with Fetcher(OPTIONS) as fetcher:
        for url in ("file:///etc/passwd", "ftp://example.org/feed", "http://", "news"):
            with pytest.raises(BadURL):
                fetcher.get(url)
        with pytest.raises(BadURL, match="not an http or https URL"):
            fetcher.get(site.url_for("/away"))


def test_a_404_is_not_retried(site: HTTPServer) -> None:
    site.expect_request("/missing").respond_with_data("no", status=404)
    with Fetcher(OPTIONS) as fetcher, pytest.raises(HTTPStatusError) as caught:
        fetcher.get(site.url_for("/missing"))
    assert str(caught.value) == f"HTTP 404 NOT FOUND from {site.url_for('/missing')}"
    assert len(requests_to(site, "/missing")) == 1


def test_a_500_is_retried_then_fails(site: HTTPServer) -> None:
    site.expect_request("/broken").respond_with_data("oops", status=500)
    with Fetcher(OPTIONS) as fetcher, pytest.raises(HTTPStatusError,
                                                    match=r"HTTP 500 .*\(after 3 tries\)$"):
        fetcher.get(site.url_for("/broken"))
    assert len(requests_to(site, "/broken")) == 3


def test_a_503_then_a_200_succeeds(site: HTTPServer) -> None:
    answers = iter([Response("busy", status=503), Response("ok")])
    site.expect_request("/flaky").respond_with_handler(lambda request: next(answers))
    with Fetcher(OPTIONS) as fetcher:
        assert fetcher.get(site.url_for("/flaky")).body == b"ok"


def test_a_slow_answer_times_out_and_is_retried(site: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(OPTIONS.timeout + 0.5)
        return Response("late")

    site.expect_request("/slow").respond_with_handler(slow)
    options = replace(OPTIONS, retries=1)
    started = time.monotonic()
    with Fetcher(options) as fetcher, pytest.raises(FetchTimeout) as caught:
        fetcher.get(site.url_for("/slow"))
    assert str(caught.value) == (f"could not get an answer from {site.url_for('/slow')}"
                                 " within 1.5 s (after 2 tries)")
    assert len(requests_to(site, "/slow")) in (1, 2)  # the second may still be sleeping
    assert time.monotonic() - started < 2 * (OPTIONS.timeout + 0.5) + 1.5


def test_a_trickling_answer_is_bounded_by_the_total_timeout(site: HTTPServer) -> None:
    def trickle() -> object:
        for _ in range(40):
            time.sleep(0.1)
            yield b"z"

    site.expect_request("/trickle").respond_with_response(
        Response(trickle(), direct_passthrough=True))  # type: ignore[arg-type]
    with Fetcher(replace(OPTIONS, retries=0)) as fetcher, \
            pytest.raises(FetchTimeout, match="within 1.5 s$"):
        fetcher.get(site.url_for("/trickle"))


def test_robots_txt_is_honoured_and_read_once_per_host(site: HTTPServer) -> None:
    site.clear()
    site.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /private/\n\nUser-agent: searchapp\nDisallow: /mine/\n")
    site.expect_request("/news").respond_with_data("ok")
    with Fetcher(OPTIONS) as fetcher:
        assert fetcher.get(site.url_for("/news")).body == b"ok"
        assert fetcher.get(site.url_for("/news")).body == b"ok"
        with pytest.raises(RobotsDisallowed, match="does not allow searchapp to fetch"):
            fetcher.get(site.url_for("/mine/feed"))
    assert len(requests_to(site, "/robots.txt")) == 1
    assert not requests_to(site, "/mine/feed")


def test_a_robots_txt_answering_500_keeps_us_out(site: HTTPServer) -> None:
    site.clear()
    site.expect_request("/robots.txt").respond_with_data("", status=500)
    site.expect_request("/news").respond_with_data("ok")
    with Fetcher(OPTIONS) as fetcher, pytest.raises(RobotsDisallowed, match="HTTP 500"):
        fetcher.get(site.url_for("/news"))
    assert not requests_to(site, "/news")


def test_a_refused_connection() -> None:
    port = closed_port()
    with Fetcher(OPTIONS) as fetcher, pytest.raises(Unreachable) as caught:
        fetcher.get(f"http://127.0.0.1:{port}/feed")
    assert str(caught.value) == f"connection refused by 127.0.0.1:{port}"


def test_an_unresolvable_host() -> None:
    with Fetcher(OPTIONS) as fetcher, pytest.raises(Unreachable) as caught:
        fetcher.get("http://no-such-host.invalid/feed")
    assert str(caught.value) == "cannot resolve host no-such-host.invalid"


def test_one_request_at_a_time_per_host(site: HTTPServer) -> None:
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def timed(request: Request) -> Response:
        start = time.monotonic()
        time.sleep(0.1)
        with lock:
            spans.append((start, time.monotonic()))
        return Response("ok")

    site.expect_request("/p").respond_with_handler(timed)
    with Fetcher(OPTIONS) as fetcher:
        threads = [threading.Thread(target=fetcher.get, args=(site.url_for("/p"),))
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(spans) == 4
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end + OPTIONS.host_delay * 0.9  # never overlapping, a pause between


def test_fetch_settings_come_from_the_environment_and_bad_ones_are_named() -> None:
    settings = Settings.load(environ={"SEARCHAPP_FETCH_TIMEOUT": "4.5",
                                      "SEARCHAPP_FETCH_RETRIES": "0",
                                      "SEARCHAPP_USER_AGENT": "coop-news/2 (+https://x.example)"})
    options = FetchOptions.from_settings(settings)
    assert (options.timeout, options.retries, options.user_agent) == (
        4.5, 0, "coop-news/2 (+https://x.example)")
    assert Settings.load(environ={}).user_agent.startswith("searchapp/")
    with pytest.raises(ConfigError, match="SEARCHAPP_FETCH_MAX_BYTES: must be a whole number,"
                                          " not '20MB'"):
        Settings.load(environ={"SEARCHAPP_FETCH_MAX_BYTES": "20MB"})
    with pytest.raises(ConfigError, match="SEARCHAPP_FETCH_TIMEOUT: must be at least 0.001"):
        Settings.load(environ={"SEARCHAPP_FETCH_TIMEOUT": "0"})


def test_waiting_for_a_turn_at_the_host_does_not_count_against_the_timeout(
        site: HTTPServer) -> None:
    """Sources on one busy host queue; the timeout starts when the request does."""
    site.expect_request("/quick").respond_with_data("x" * 10_000)
    with Fetcher(OPTIONS) as fetcher:
        assert fetcher.get(site.url_for("/quick")).status == 200  # robots.txt read now
        held = threading.Event()

        def busy_host() -> None:
            with fetcher._hosts.turn(f"http://127.0.0.1:{site.port}"):
                held.set()
                time.sleep(OPTIONS.timeout + 0.5)

        other = threading.Thread(target=busy_host)
        other.start()
        held.wait(5)
        started = time.monotonic()
        got = fetcher.get(site.url_for("/quick"))
        other.join()
    assert len(got.body) == 10_000
    assert time.monotonic() - started > OPTIONS.timeout  # it did wait its turn
    assert len(requests_to(site, "/quick")) == 2  # and then got its answer at the first try
