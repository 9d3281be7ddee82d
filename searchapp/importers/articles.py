"""Articles found in feeds and web pages, made into records.

Feeds and pages describe an article by its link, title, summary (often HTML),
date, categories and language. What they have in common is done here once: the
link made absolute and cleaned (and refused unless it is http(s)), the item id
taken from the normalised link, HTML turned into text with a real parser, dates
in the forms feeds and pages use read into dates, languages cut to two letters.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from bs4.element import (
    CData,
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    PageElement,
    ProcessingInstruction,
    Tag,
)

from searchapp.importers.listing import to_date
from searchapp.models import MAX_SUMMARY, InvalidItem, parse_date
from searchapp.urls import BadUrl, clean_url, url_id

if TYPE_CHECKING:
    from searchapp.importers import Hints, Parsed

# Elements that start a new line of text (and so separate words).
_BREAKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
})
_SKIPPED = frozenset({"script", "style", "template", "noscript"})
_HIDDEN = (Comment, Declaration, Doctype, CData, ProcessingInstruction)
_LANGUAGE = re.compile(r"^([A-Za-z]{2})(?:[-_][A-Za-z0-9]+)*$")


def add(parsed: Parsed, line: int, hints: Hints, *, title: str | None, link: str | None,
        base: str | None, summary: str | None = None, date: Any = None,
        categories: Sequence[str] = (), kind: str | None = None,
        language: str | None = None, page_language: str | None = None) -> None:
    """Validate one article and add it to `parsed` as a record, or a problem at `line`.

    `summary` may be HTML. `kind` is an explicit item type (a selector); the first
    of `categories` becomes the type only when the operator asked for it.
    `language` is what the article declares itself, `page_language` what its feed
    or page declares (see `choose_language`).
    """
    fields: dict[str, Any] = {"title": html_to_text(title or "")}
    if not fields["title"]:
        parsed.problem(line, "item has no title")
        return
    if link and link.strip():
        try:
            url = clean_url(link, base)
        except BadUrl as exc:
            parsed.problem(line, f"{exc}; item {fields['title'][:60]!r} not imported")
            return
        fields["url"] = url
        fields["id"] = url_id(url)
    text = html_to_text(summary or "")
    if len(text) > MAX_SUMMARY:  # a feed that carries whole articles: keep an excerpt
        text = text[:MAX_SUMMARY - 1].rsplit(" ", 1)[0] + "…"
    fields["summary"] = text
    try:
        fields["date"] = read_date(date)
    except InvalidItem as exc:
        parsed.problem(line, str(exc))
        return
    chosen = kind or (categories[0] if hints.type_from_category and categories else None)
    if chosen:
        fields["type"] = html_to_text(chosen)
    fields["language"] = choose_language(language, hints.language, page_language)
    parsed.add(line, fields, organisation=hints.organisation)


def drop_repeats(parsed: Parsed) -> None:
    """Keep the first of the records that link to the same article.

    Pages often show one article twice (a featured block and the list); that is
    one item, not a duplicate to complain about.
    """
    seen: set[str] = set()
    kept = []
    for record in parsed.records:
        if record.item.url is None or record.item.id not in seen:
            seen.add(record.item.id)
            kept.append(record)
    parsed.records = kept


def html_to_text(markup: str) -> str:
    """The text of an HTML fragment, as a reader sees it (tags gone, entities decoded)."""
    if "<" not in markup and "&" not in markup:
        return " ".join(markup.split())
    reader = _TextReader()
    reader.feed(markup)
    reader.close()
    return " ".join("".join(reader.pieces).split())


class _TextReader(HTMLParser):
    """The standard library's HTML tokenizer, keeping only what a reader sees: a
    summary needs no tree, and this is several times faster than building one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag in _BREAKS:
            self.pieces.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(self._skipping - 1, 0)
        elif tag in _BREAKS:
            self.pieces.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.pieces.append(data)


def text_of(tag: Tag) -> str:
    """The text of an element: block elements and line breaks separate words, inline
    elements do not (``<em>COOP</em>.`` stays ``COOP.``)."""
    pieces: list[str] = []
    stack: list[PageElement | None] = list(reversed(list(tag.children)))
    while stack:
        node = stack.pop()
        if node is None:  # the end of a block element
            pieces.append(" ")
        elif isinstance(node, Tag):
            if node.name in _SKIPPED:
                continue
            if node.name in _BREAKS:
                pieces.append(" ")
                stack.append(None)
            stack.extend(reversed(list(node.children)))
        elif isinstance(node, NavigableString) and not isinstance(node, _HIDDEN):
            pieces.append(str(node))
    return " ".join("".join(pieces).split())


def read_date(value: Any) -> dt.date | None:
    """A date as feeds and pages write them: ISO 8601, RFC 822, or ``16 Mar 2017``."""
    if value is None or isinstance(value, dt.date):
        return value.date() if isinstance(value, dt.datetime) else value
    text = " ".join(str(value).split())
    if not text:
        return None
    try:
        return parse_date(text)
    except InvalidItem as exc:
        if "does not exist" in str(exc):
            raise
    try:
        return email.utils.parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return to_date(text)
    except InvalidItem:
        raise InvalidItem(f"date {text!r} is not understood (expected ISO 8601 like "
                          "2017-09-27, RFC 822 like 'Wed, 27 Sep 2017 10:00:00 GMT' or "
                          "'27 September 2017')") from None


def choose_language(own: str | None, operator: str | None, page: str | None) -> str | None:
    """An item's own declared language, else the operator's (``--language``), else the
    feed's or page's. Page templates often declare one language for every page, so the
    operator's word beats the page; an item that says otherwise than its page wins."""
    mine, whole = two_letters(own), two_letters(page)
    if mine == whole:
        mine = None  # inherited from the page (feedparser and mf2py pass it down)
    return mine or operator or whole


def two_letters(language: str | None) -> str | None:
    """``en-GB`` → ``en``; None for anything that is not a language tag."""
    match = _LANGUAGE.match((language or "").strip())
    return match[1].lower() if match else None
