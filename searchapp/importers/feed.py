"""RSS 0.9x/2.0, RSS 1.0 (RDF) and Atom 1.0 feeds, read with feedparser.

Before feedparser sees a byte, the document is parsed once by expat through
defusedxml with entity declarations and external references forbidden: an
XML bomb or an external-entity document is refused there, with its line,
instead of being left to feedparser's forgiving fallback parser. The same
pass checks the XML is well-formed (a malformed feed is refused, not guessed
at) and notes the line each ``<item>``/``<entry>`` starts on, so problems
point at them.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import xml.sax
import xml.sax.xmlreader
from typing import TYPE_CHECKING, Any

import defusedxml
import defusedxml.sax
import feedparser

from searchapp.importers import articles
from searchapp.importers.sniff import root_name
from searchapp.models import InvalidItem

if TYPE_CHECKING:
    from searchapp.importers import Hints, Parsed

_ENTRY_ELEMENTS = ("item", "entry")


class _Outline(xml.sax.handler.ContentHandler):
    """Where the root and each entry element start."""

    def __init__(self) -> None:
        super().__init__()
        self.root: str | None = None
        self.root_line = 1
        self.entry_lines: list[int] = []
        self.locator: xml.sax.xmlreader.Locator | None = None

    def setDocumentLocator(self, locator: xml.sax.xmlreader.Locator) -> None:
        self.locator = locator

    def startElement(self, name: str, attrs: Any) -> None:
        line = (self.locator.getLineNumber() or 1) if self.locator else 1
        if self.root is None:
            self.root, self.root_line = name, line
        if name.rpartition(":")[2].lower() in _ENTRY_ELEMENTS:
            self.entry_lines.append(line)


def screen(data: bytes) -> tuple[_Outline | None, int, str]:
    """Parse `data` safely: the outline, or None with the line and the problem."""
    outline = _Outline()
    parser = defusedxml.sax.make_parser()
    # A doctype is harmless (old RSS 0.91 feeds name Netscape's DTD) and is never
    # fetched: external entities and parameter entities stay off. Any entity
    # declaration at all, internal or external, is refused.
    parser.forbid_dtd = False
    parser.forbid_entities = True
    parser.forbid_external = False
    parser.setFeature(xml.sax.handler.feature_external_ges, False)
    parser.setFeature(xml.sax.handler.feature_external_pes, False)
    parser.setContentHandler(outline)
    try:
        parser.parse(io.BytesIO(data))
    except defusedxml.EntitiesForbidden as exc:
        return None, _line(parser), (
            f"the document declares the XML entity {exc.name!r}; feeds with entity"
            " declarations are refused (they can be XML bombs or read local files)")
    except defusedxml.DefusedXmlException as exc:
        return None, _line(parser), f"the document was refused: {exc}"
    except xml.sax.SAXParseException as exc:
        return None, exc.getLineNumber() or 1, (
            f"malformed XML: {exc.getMessage()} (column {(exc.getColumnNumber() or 0) + 1});"
            " the feed was not read")
    return outline, 0, ""


def parse(data: bytes, parsed: Parsed, hints: Hints) -> None:
    outline, line, message = screen(data)
    if outline is None:
        parsed.problem(line, message)
        return
    root = (outline.root or root_name(data)).rpartition(":")[2].lower()
    if root not in ("rss", "feed", "rdf"):
        parsed.problem(outline.root_line, f"an XML document with root element <{outline.root}>"
                                          " is not a feed (expected <rss>, <feed> or <rdf:RDF>)")
        return
    headers = {"content-location": hints.url} if hints.url else {}
    result = feedparser.parse(io.BytesIO(data), response_headers=headers,
                              resolve_relative_uris=True, sanitize_html=True)
    channel = result.get("feed", {})
    entries = result.get("entries", [])
    if not entries:
        title = articles.html_to_text(channel.get("title", ""))
        parsed.problem(outline.root_line, f"feed {title!r} has no items" if title
                       else "feed has no items")
        return
    lines = outline.entry_lines
    if len(lines) != len(entries):
        lines = [outline.root_line] * len(entries)
    feed_language = channel.get("language") or _entry_language(channel)
    # feedparser resolves links against xml:base and `hints.url`; what it leaves relative
    # (an RSS feed with neither) is taken as relative to the channel's own <link>.
    base = hints.url or channel.get("link")
    for entry, entry_line in zip(entries, lines, strict=True):
        articles.add(
            parsed, entry_line, hints,
            title=_as_html(entry, "title"),
            link=_link(entry),
            base=base,
            summary=_as_html(entry, "summary") or _first_content(entry),
            date=_date(entry),
            categories=[tag.get("term") or tag.get("label") or ""
                        for tag in entry.get("tags", []) if tag.get("term") or tag.get("label")],
            language=_entry_language(entry), page_language=feed_language,
        )
    articles.drop_repeats(parsed)


def _date(entry: Any) -> Any:
    """The published (else updated) date as written, or as feedparser read it when it
    knows a form we do not; the text as written otherwise, to be reported."""
    for key in ("published", "updated"):
        raw = entry.get(key)
        if not raw:
            continue
        try:
            return articles.read_date(raw)
        except InvalidItem as exc:
            parsed = entry.get(f"{key}_parsed")
            # feedparser rolls 30 February over into March: an impossible date is reported.
            usable = parsed and "does not exist" not in str(exc)
            return dt.date(*parsed[:3]) if usable else raw
    return None


def _line(parser: Any) -> int:
    try:
        return int(parser.getLineNumber()) or 1
    except Exception:  # noqa: BLE001 - the parser may already be torn down
        return 1


def _link(entry: Any) -> str | None:
    """The entry's article: its alternate link, else its first link, else a permalink guid."""
    links = entry.get("links", [])
    for link in links:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return str(link["href"])
    if entry.get("link"):
        return str(entry["link"])
    guid = entry.get("id")
    if guid and entry.get("guidislink") and str(guid).startswith(("http://", "https://")):
        return str(guid)
    return None


def _as_html(entry: Any, key: str) -> str:
    """A text construct as HTML: plain text escaped, so ``<3`` in a title stays text."""
    value = str(entry.get(key) or "")
    kind = (entry.get(f"{key}_detail") or {}).get("type", "text/html")
    return html.escape(value, quote=False) if kind == "text/plain" else value


def _first_content(entry: Any) -> str | None:
    contents = entry.get("content") or []
    return str(contents[0].get("value", "")) if contents else None


def _entry_language(entry: Any) -> str | None:
    for key in ("title_detail", "summary_detail"):
        detail = entry.get(key) or {}
        if detail.get("language"):
            return str(detail["language"])
    return None

