"""Fetching sources over HTTP, politely and within limits.

One `Fetcher` serves one refresh run. It asks robots.txt first (once per host
per run), sends at most one request at a time to a host with a pause between
them, sends the validators of the last answer so an unchanged source costs a
304, follows a bounded number of redirects (never in a circle, never off
http/https), gives up on a body past the size limit, and retries only 5xx
answers and timeouts, a bounded number of times. Everything that goes wrong
leaves as one of the `FetchError` subclasses of `searchapp.errors`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Self
from urllib.parse import urlsplit

import httpx
from protego import Protego

from searchapp.config import Settings
from searchapp.errors import (
    BadURL,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    RobotsDisallowed,
    TooLarge,
    TooManyRedirects,
    Unreachable,
)

__all__ = ["ROBOTS_TOKEN", "FetchOptions", "Fetched", "Fetcher", "check_url"]

# The name robots.txt rules address us by (a `User-agent: searchapp` group).
ROBOTS_TOKEN = "searchapp"
ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309 asks crawlers to read at least 500 KiB
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """The limits of one fetcher; `from_settings` takes them from the configuration."""

    user_agent: str
    connect_timeout: float = 10.0
    timeout: float = 30.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 2
    backoff: float = 2.0
    host_delay: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchOptions:
        return cls(user_agent=settings.user_agent,
                   connect_timeout=settings.fetch_connect_timeout,
                   timeout=settings.fetch_timeout, max_bytes=settings.fetch_max_bytes,
                   max_redirects=settings.fetch_max_redirects, retries=settings.fetch_retries,
                   backoff=settings.fetch_backoff, host_delay=settings.fetch_host_delay)


@dataclass(frozen=True, slots=True)
class Fetched:
    """One answer: 200 with its body, or 304 (the source has not changed)."""

    url: str  # after redirects
    status: int
    body: bytes = b""
    content_type: str = ""  # media type only, lower case ("application/rss+xml")
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def check_url(url: str) -> str:
    """The URL if it is absolute http(s) with a host; `BadURL` otherwise."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise BadURL(f"{url!r} is not a valid URL: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise BadURL(f"{url!r} is not an http or https URL")
    if not parts.hostname:
        raise BadURL(f"{url!r} has no host")
    return url.strip()


class _Hosts:
    """One request at a time per host, with `delay` seconds between the end of one and the
    start of the next."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._last: dict[str, float] = {}

    @contextmanager
    def turn(self, host: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(host, threading.Lock())
        with lock:
            wait = self._last.get(host, -float("inf")) + self.delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                yield
            finally:
                self._last[host] = time.monotonic()


class Fetcher:
    """An HTTP client for one refresh run; use as a context manager.

    Thread-safe: sources on different hosts may be fetched in parallel, while
    requests to one host wait for each other.
    """

    def __init__(self, options: FetchOptions, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.options = options
        self._sleep = sleep
        self._hosts = _Hosts(options.host_delay)
        self._robots: dict[str, Protego] = {}
        self._robots_guard = threading.Lock()
        self._robots_locks: dict[str, threading.Lock] = {}
        # Redirects are followed here, one hop at a time, to check each hop. The
        # environment's HTTP(S)_PROXY, NO_PROXY and SSL_CERT_FILE apply.
        self._client = httpx.Client(
            headers={"User-Agent": options.user_agent},
            timeout=httpx.Timeout(options.timeout, connect=options.connect_timeout),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the one public request ----------------------------------------------------

    def get(self, url: str, *, etag: str | None = None,
            last_modified: str | None = None) -> Fetched:
        """GET `url` conditionally; a 304 comes back as `Fetched(status=304)`.

        Retries after a 5xx answer or a timeout (`retries` times, waiting
        `backoff`, then twice as long each time); any other failure is final.
        """
        check_url(url)
        conditional: dict[str, str] = {}
        if etag:
            conditional["If-None-Match"] = etag
        if last_modified:
            conditional["If-Modified-Since"] = last_modified
        tries = self.options.retries + 1
        for attempt in range(tries):
            try:
                return self._follow(url, conditional)
            except (FetchTimeout, HTTPStatusError) as exc:
                retryable = isinstance(exc, FetchTimeout) or exc.status_code >= 500
                if not retryable:
                    raise
                if attempt + 1 == tries:
                    if tries == 1:
                        raise
                    message = f"{exc} (after {tries} tries)"
                    if isinstance(exc, HTTPStatusError):
                        raise HTTPStatusError(message, status_code=exc.status_code) from exc
                    raise FetchTimeout(message) from exc
                self._sleep(self.options.backoff * 2 ** attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- redirects, robots.txt and one hop -----------------------------------------

    def _follow(self, url: str, conditional: dict[str, str]) -> Fetched:
        seen = [url]
        current = url
        while True:
            self._require_allowed(current)
            hop = self._hop(current, conditional, self.options.max_bytes)
            if not isinstance(hop, str):
                return hop
            target = check_url(hop)
            if target in seen:
                chain = " → ".join([*seen[seen.index(target):], target])
                raise TooManyRedirects(f"redirect loop: {chain}")
            if len(seen) > self.options.max_redirects:
                raise TooManyRedirects(f"more than {self.options.max_redirects} redirects"
                                       f" from {url} (last to {target})")
            seen.append(target)
            current = target

    def _hop(self, url: str, headers: dict[str, str], limit: int) -> Fetched | str:
        """One request: an answer, or the absolute URL a redirect points to."""
        host = _host_key(url)
        with self._hosts.turn(host), _translated(url, self.options):
            # The clock starts once it is our turn at this host, not while we queue.
            deadline = time.monotonic() + self.options.timeout
            with self._client.stream("GET", url, headers=headers) as response:
                if response.status_code in REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise HTTPStatusError(f"HTTP {response.status_code} redirect from {url}"
                                              " without a Location", status_code=502)
                    return str(response.url.join(location))
                if response.status_code == 304:
                    return self._answer(url, response, b"")
                if response.status_code >= 400 or response.status_code < 200:
                    phrase = response.reason_phrase or ""
                    raise HTTPStatusError(f"HTTP {response.status_code} {phrase} from {url}"
                                          .replace("  ", " "),
                                          status_code=response.status_code)
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise TooLarge(f"the answer from {url} is {int(declared):,} bytes; the"
                                   f" limit is {limit:,} (SEARCHAPP_FETCH_MAX_BYTES)")
                body = bytearray()
                # Decompressed bytes are counted, so a small gzip bomb is stopped too.
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise TooLarge(f"the answer from {url} is over the limit of"
                                       f" {limit:,} bytes (SEARCHAPP_FETCH_MAX_BYTES)")
                    if time.monotonic() > deadline:
                        raise FetchTimeout(f"no complete answer from {url} within"
                                           f" {self.options.timeout:g} s")
                return self._answer(url, response, bytes(body))

    @staticmethod
    def _answer(url: str, response: httpx.Response, body: bytes) -> Fetched:
        media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return Fetched(url=url, status=response.status_code, body=body, content_type=media,
                       etag=response.headers.get("ETag"),
                       last_modified=response.headers.get("Last-Modified"))

    def _require_allowed(self, url: str) -> None:
        rules = self._robots_for(url)
        if not rules.can_fetch(url, ROBOTS_TOKEN):
            raise RobotsDisallowed(f"robots.txt of {_host_key(url)} does not allow"
                                   f" {ROBOTS_TOKEN} to fetch {url}")

    def _robots_for(self, url: str) -> Protego:
        """The host's robots.txt rules, fetched once per run (RFC 9309's reading of
        answers: 4xx means no rules, 5xx means keep out)."""
        host = _host_key(url)
        with self._robots_guard:
            lock = self._robots_locks.setdefault(host, threading.Lock())
        with lock:
            if host in self._robots:
                return self._robots[host]
            robots_url = f"{host}/robots.txt"
            text = ""
            current = robots_url
            for _ in range(self.options.max_redirects + 1):
                try:
                    hop = self._hop(current, {}, ROBOTS_MAX_BYTES)
                except HTTPStatusError as exc:
                    if exc.status_code >= 500:
                        raise RobotsDisallowed(
                            f"robots.txt of {host} answered HTTP {exc.status_code}; the site"
                            " is treated as closed until it answers") from exc
                    break  # 4xx: the site sets no rules
                except TooLarge:
                    break
                if isinstance(hop, str):
                    current = check_url(hop)
                    continue
                text = hop.body.decode("utf-8", errors="replace")
                break
            rules = Protego.parse(text)
            self._robots[host] = rules
            return rules


def _host_key(url: str) -> str:
    """scheme://host[:port], lower case: the unit of politeness and of robots.txt."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


@contextmanager
def _translated(url: str, options: FetchOptions) -> Iterator[None]:
    """httpx's exceptions become ours, with a message an operator can act on."""
    try:
        yield
    except httpx.TimeoutException as exc:
        what = "connect to" if isinstance(exc, httpx.ConnectTimeout) else "get an answer from"
        limit = options.connect_timeout if isinstance(exc, httpx.ConnectTimeout) else \
            options.timeout
        raise FetchTimeout(f"could not {what} {url} within {limit:g} s") from exc
    except httpx.ConnectError as exc:
        host = urlsplit(url).netloc
        if _caused_by(exc, socket.gaierror):
            raise Unreachable(f"cannot resolve host {urlsplit(url).hostname}") from exc
        if _caused_by(exc, ConnectionRefusedError):
            raise Unreachable(f"connection refused by {host}") from exc
        raise Unreachable(f"cannot connect to {host}: {exc}") from exc
    except httpx.DecodingError as exc:
        raise FetchError(f"the answer from {url} is not decodable ({exc})") from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise BadURL(f"cannot fetch {url}: {exc}") from exc
    except httpx.TransportError as exc:
        raise Unreachable(f"the connection to {urlsplit(url).netloc} failed: "
                          f"{exc or type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"fetching {url} failed: {exc or type(exc).__name__}") from exc


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
