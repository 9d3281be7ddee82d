"""A real HTTP server on 127.0.0.1 for the fetch and refresh tests, and short limits.

pytest-httpserver runs werkzeug's server in a thread (threaded, so a slow
answer does not hold up the others); one for the session, cleared for each test, with a
robots.txt that allows everything unless the test says otherwise.
"""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from searchapp.config import Settings
from searchapp.fetch import FetchOptions

# Short enough to keep the suite quick, long enough for a loaded machine.
OPTIONS = FetchOptions(user_agent="searchapp-tests/1 (+https://example.org/searchapp)",
                       connect_timeout=2.0, timeout=1.5, max_bytes=64 * 1024, max_redirects=4,
                       retries=2, backoff=0.01, host_delay=0.05)


def fast(settings: Settings) -> Settings:
    """Settings with the test limits above."""
    return replace(settings, user_agent=OPTIONS.user_agent,
                   fetch_connect_timeout=OPTIONS.connect_timeout,
                   fetch_timeout=OPTIONS.timeout, fetch_max_bytes=OPTIONS.max_bytes,
                   fetch_max_redirects=OPTIONS.max_redirects, fetch_retries=OPTIONS.retries,
                   fetch_backoff=OPTIONS.backoff, fetch_host_delay=OPTIONS.host_delay)


@pytest.fixture(scope="session")
def site_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def site(site_server: HTTPServer) -> Iterator[HTTPServer]:
    """The server with no handlers but a robots.txt answering 404 (no rules)."""
    site_server.clear()
    site_server.expect_request("/robots.txt").respond_with_data("", status=404)
    yield site_server
    site_server.clear()


def requests_to(server: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in server.log if request.path == path]


def gzipped(body: bytes, content_type: str) -> Response:
    return Response(gzip.compress(body), headers={"Content-Encoding": "gzip",
                                                  "Content-Type": content_type})


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jsonl(*titles: str, org: str | None = None) -> str:
    """JSON Lines records with dated titles (one a day from 2024-01-01)."""
    lines = []
    for day, title in enumerate(titles, start=1):
        extra = f', "organisation": "{org}"' if org else ""
        lines.append(f'{{"title": "{title}", "date": "2024-01-{day:02d}",'
                     f' "url": "https://news.example.org/{day}"{extra}}}')
    return "\n".join(lines) + "\n"


def fast_env() -> dict[str, str]:
    """The test limits above as SEARCHAPP_* variables, for the command line."""
    return {"SEARCHAPP_USER_AGENT": OPTIONS.user_agent,
            "SEARCHAPP_FETCH_CONNECT_TIMEOUT": str(OPTIONS.connect_timeout),
            "SEARCHAPP_FETCH_TIMEOUT": str(OPTIONS.timeout),
            "SEARCHAPP_FETCH_MAX_BYTES": str(OPTIONS.max_bytes),
            "SEARCHAPP_FETCH_MAX_REDIRECTS": str(OPTIONS.max_redirects),
            "SEARCHAPP_FETCH_RETRIES": str(OPTIONS.retries),
            "SEARCHAPP_FETCH_BACKOFF": str(OPTIONS.backoff),
            "SEARCHAPP_FETCH_HOST_DELAY": str(OPTIONS.host_delay)}
