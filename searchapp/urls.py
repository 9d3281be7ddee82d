"""Article addresses: made absolute, cleaned, normalised, and turned into item ids.

Feeds and pages give the same article under slightly different addresses
(``HTTP://Example.org:80/news/a/?utm_source=rss#top`` and
``http://example.org/news/a``). `clean_url` gives the address kept on the item;
`normalise_url` folds the remaining harmless differences, and `url_id` is the
item id derived from it, so one article is one item however it was found.
"""

from __future__ import annotations

import hashlib
from urllib.parse import (
    SplitResult,
    parse_qsl,
    quote,
    unquote,
    urlencode,
    urljoin,
    urlsplit,
    urlunsplit,
)

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that say how a reader arrived, not what they read.
_TRACKING_PREFIXES = ("utm_", "mtm_", "pk_")
_TRACKING = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
    "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok", "oly_enc_id", "oly_anon_id", "vero_id",
    "ref_src", "s_cid", "wt_mc",
})


class BadUrl(ValueError):
    """An address that cannot be an article link; the message says why, for a person."""


def absolute_url(link: str, base: str | None = None) -> str:
    """`link` resolved against `base`, checked to be an http(s) address with a host."""
    text = link.strip()
    if not text:
        raise BadUrl("link is empty")
    scheme = urlsplit(text).scheme.lower()
    if scheme and scheme not in SCHEMES:
        raise BadUrl(f"link {_shown(text)} is not an http(s) address ({scheme}: links are"
                     " not imported)")
    if not scheme:
        text = urljoin(base, text) if base else text
        if not urlsplit(text).scheme:
            raise BadUrl(f"link {_shown(link.strip())} is relative and there is no page address"
                         " to resolve it against (give the page's address with --url)")
    parts = urlsplit(text)
    if parts.scheme.lower() not in SCHEMES:
        raise BadUrl(f"link {_shown(text)} is not an http(s) address")
    if not parts.hostname:
        raise BadUrl(f"link {_shown(text)} has no host")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise BadUrl(f"link {_shown(text)} has an invalid port") from None
    return text


def clean_url(link: str, base: str | None = None) -> str:
    """The address kept on an item: absolute, lower-case scheme and host, no default
    port, no fragment, no tracking parameters. Path and parameter order stay as given."""
    parts = urlsplit(absolute_url(link, base))
    scheme = parts.scheme.lower()
    # Kept as written (not decoded and re-encoded): only tracking pairs are dropped.
    query = "&".join(pair for pair in parts.query.split("&")
                     if pair and not _is_tracking(unquote(pair.partition("=")[0])))
    return urlunsplit((scheme, _netloc(parts, scheme), parts.path or "/", query, ""))


def normalise_url(link: str, base: str | None = None) -> str:
    """`clean_url`, plus what never tells two articles apart: a trailing slash,
    percent-encoding of characters that need none, the order of query parameters."""
    parts = urlsplit(clean_url(link, base))
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=~-._")
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = sorted(parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, parts.netloc, path,
                       urlencode(query, quote_via=quote, safe="/:@!$'()*,;"), ""))


def url_id(link: str, base: str | None = None) -> str:
    """The item id of the article at `link`: 16 hex digits of its normalised address."""
    return hashlib.sha256(normalise_url(link, base).encode("utf-8")).hexdigest()[:16]


def host(link: str | None) -> str:
    """The host of an http(s) address without ``www.``, or "" for anything else."""
    if not link:
        return ""
    try:
        parts = urlsplit(link)
        name = parts.hostname or ""
    except ValueError:
        return ""
    if parts.scheme.lower() not in SCHEMES:
        return ""
    return name.removeprefix("www.")


def site(link: str | None) -> str:
    """The home page of the site an http(s) address is on (``https://ilo.org/``), or ""."""
    if not host(link):
        return ""
    parts = urlsplit(link or "")
    return urlunsplit((parts.scheme.lower(), _netloc(parts, parts.scheme.lower()), "/", "", ""))


def _netloc(split: SplitResult, scheme: str) -> str:
    hostname = (split.hostname or "").lower()
    try:
        hostname = hostname.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # keep it as given: the address still works as a link
    if ":" in hostname:
        hostname = f"[{hostname}]"  # an IPv6 literal
    port = split.port
    userinfo = split.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{hostname}" if userinfo else hostname
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return netloc


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING or lowered.startswith(_TRACKING_PREFIXES)


def _shown(link: str, limit: int = 80) -> str:
    return repr(link if len(link) <= limit else link[:limit] + "…")
