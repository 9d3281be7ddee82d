"""Sources: the feeds and pages the operator asked us to follow.

A `Source` is stored in the catalog (table ``sources``) beside the items it
brought. This module holds the value object and the rules for what an
operator may give (`new_source`), how long between refreshes (`parse_duration`)
and what kind of document an answer is (`sniff_kind`). It never touches the
network or the database.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from searchapp.errors import BadParameter, FetchError
from searchapp.importers.htmlpage import SELECTOR_FIELDS, selectors_from_options
from searchapp.importers.sniff import FEED, HTML, XML, sniff
from searchapp.models import InvalidItem, check_organisation

__all__ = [
    "DEFAULT_EVERY",
    "KINDS",
    "MIN_EVERY",
    "SELECTOR_FIELDS",
    "Source",
    "describe_kind",
    "format_duration",
    "new_source",
    "parse_duration",
    "parse_selectors",
    "sniff_kind",
]

# feed: RSS 2.0, RSS 1.0/RDF or Atom; page: an HTML page listing articles;
# listing: a file in one of the import formats (plain-text listing, JSON Lines, CSV).
KINDS = ("feed", "page", "listing")
DEFAULT_EVERY = 3600
MIN_EVERY = 60  # a site is not asked more often than once a minute

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LANGUAGE = re.compile(r"^[a-z]{2}$")


@dataclass(slots=True)
class Source:
    """One followed URL, with what the last refresh found."""

    name: str
    organisation: str
    url: str
    kind: str | None = None  # None until the first answer shows it
    language: str | None = None
    every: int = DEFAULT_EVERY  # seconds between refreshes
    selectors: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    last_fetched: dt.datetime | None = None
    last_ok: dt.datetime | None = None
    last_result: str | None = None
    last_error: str | None = None
    last_error_at: dt.datetime | None = None
    items_seen: int = 0  # items found in the last answer that was read
    added_at: dt.datetime | None = None

    def next_due(self) -> dt.datetime | None:
        """When the next refresh is due; None means now (never fetched)."""
        if self.last_fetched is None:
            return None
        return self.last_fetched + dt.timedelta(seconds=self.every)

    def is_due(self, now: dt.datetime) -> bool:
        due = self.next_due()
        return due is None or due <= now

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, dt.datetime):
                data[key] = value.isoformat(timespec="seconds")
        data["every"] = format_duration(self.every)
        due = self.next_due()
        data["next_due"] = due.isoformat(timespec="seconds") if due else None
        return data


def new_source(*, name: str, url: str, organisation: str, kind: str | None = None,
               language: str | None = None, every: str | None = None,
               selectors: Iterable[str] = ()) -> Source:
    """A source from what the operator typed; `BadParameter` names what is wrong."""
    if not _NAME.match(name):
        raise BadParameter("NAME", f"{name!r} must be 1-64 lower-case letters, digits, '.',"
                                   " '_' or '-', starting with a letter or digit")
    from searchapp.fetch import check_url  # httpx only loads when sources are edited

    try:
        url = check_url(url)
    except FetchError as exc:
        raise BadParameter("URL", str(exc)) from None
    try:
        org = check_organisation(organisation)
    except InvalidItem as exc:
        raise BadParameter("--org", str(exc)) from None
    if not org:
        raise BadParameter("--org", "the organisation must not be blank")
    if kind is not None and kind not in KINDS:
        raise BadParameter("--kind", f"must be one of {', '.join(KINDS)}, not {kind!r}")
    if language is not None:
        language = language.strip().lower()
        if not _LANGUAGE.match(language):
            raise BadParameter("--language", f"{language!r} is not a two-letter ISO 639-1 code")
    seconds = parse_duration(every) if every else DEFAULT_EVERY
    chosen = parse_selectors(selectors)
    if chosen and kind in ("feed", "listing"):
        raise BadParameter("--select", f"selectors apply to pages, not to a {kind}")
    return Source(name=name, organisation=org, url=url, kind=kind, language=language,
                  every=seconds, selectors=chosen)


def parse_duration(text: str) -> int:
    """Seconds in ``90s``, ``30m``, ``6h``, ``1d``, ``1w`` or combinations (``1h30m``)."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or _DURATION.sub("", compact).strip():
        raise BadParameter("--every", f"{text!r} is not a duration like 30m, 6h, 1d or 1h30m")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in parts)
    if seconds < MIN_EVERY:
        raise BadParameter("--every", f"{text!r} is shorter than the minimum of"
                                      f" {format_duration(MIN_EVERY)}")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest reading of a duration: 3600 → ``1h``, 5400 → ``1h30m``."""
    out = []
    rest = seconds
    for unit in "wdhms":
        size = _UNITS[unit]
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out) or "0s"


def parse_selectors(given: Iterable[str]) -> dict[str, str]:
    """``FIELD=CSS`` pairs, checked as ``import --select`` checks them (CSS compiled too)."""
    try:
        return selectors_from_options(list(given))
    except ValueError as exc:
        raise BadParameter("--select", str(exc).replace("\n", "; ")) from None


_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml")
_PAGE_TYPES = ("text/html", "application/xhtml+xml")
_LISTING_TYPES = ("text/plain", "text/csv", "application/csv", "application/json",
                  "application/x-ndjson", "application/jsonl", "application/x-jsonlines",
                  "application/octet-stream", "")
_XML_TYPES = ("application/xml", "text/xml")


def sniff_kind(content_type: str, body: bytes) -> str | None:
    """feed, page or listing, read from the body first (servers often mislabel feeds),
    with the importers' own sniffer, then from the Content-Type; None for anything
    else (an image, a PDF, binary data)."""
    markup = sniff(body)
    if markup == FEED:
        return "feed"
    if markup == HTML:
        return "page"
    if markup == XML:  # XML, but neither a feed nor XHTML: trust only a feed's type
        if content_type in _FEED_TYPES:
            return "feed"
        return "page" if content_type in _PAGE_TYPES else None
    if b"\x00" in body[:4096]:
        return None
    if content_type in _FEED_TYPES or content_type in _XML_TYPES:
        return "feed"
    if content_type in _PAGE_TYPES:
        return "page"
    if content_type in _LISTING_TYPES or content_type.startswith("text/"):
        return "listing"
    return None


def describe_kind(kind: str | None) -> str:
    return {"feed": "a feed", "page": "an HTML page", "listing": "a listing file"}.get(
        kind or "", "something else")
