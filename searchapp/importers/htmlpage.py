"""HTML listing pages: the news items a page marks up, read with a real HTML parser.

Tried in order, the first that finds items wins:

1. schema.org JSON-LD: ``NewsArticle``, ``BlogPosting``, ``Article`` (and their
   kin), directly, in an ``ItemList`` or in an ``@graph``;
2. microformats2 ``h-entry`` (read by mf2py);
3. repeated ``<article>`` blocks (else list items) holding a heading with a link,
   usually a ``<time datetime>`` and a paragraph.

Any other page needs CSS selectors from the operator (`Hints.selectors`), which
then replace the three guesses. Relative links resolve against ``<base href>``,
else the page's address (`Hints.url`). The charset comes from a byte-order mark
or the page's ``<meta charset>`` (legacy labels read as the WHATWG Encoding
standard says: ``iso-8859-1`` means windows-1252), else detection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import soupsieve
from bs4 import BeautifulSoup, Tag
from bs4.dammit import EncodingDetector, UnicodeDammit

from searchapp.importers import articles

if TYPE_CHECKING:
    from searchapp.importers import Hints, Parsed

SELECTOR_FIELDS = ("item", "title", "link", "date", "summary", "type")
REQUIRED_SELECTORS = ("item", "title")
ARTICLE_TYPES = frozenset({
    "Article", "NewsArticle", "BlogPosting", "ReportageNewsArticle", "AnalysisNewsArticle",
    "OpinionNewsArticle", "BackgroundNewsArticle", "ReviewNewsArticle", "Report",
    "ScholarlyArticle", "TechArticle", "SocialMediaPosting", "LiveBlogPosting",
})
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# WHATWG Encoding: labels that mean windows-1252 when a page declares them.
_WINDOWS_1252 = frozenset({"ascii", "us-ascii", "iso-8859-1", "iso8859-1", "latin1", "latin-1",
                           "l1", "cp819", "ibm819", "iso-ir-100", "csisolatin1", "cp1252",
                           "windows-1252", "x-cp1252", "iso_8859-1", "iso_8859-1:1987"})


def selectors_from_options(options: Sequence[str]) -> dict[str, str]:
    """``["item=div.news", "title=h3 a"]`` (repeated ``--select FIELD=CSS``) as a mapping.

    Raises `ValueError` with every problem, one per line, when it cannot be used.
    """
    selectors: dict[str, str] = {}
    problems: list[str] = []
    for option in options:
        name, equals, css = option.partition("=")
        name, css = name.strip().lower(), css.strip()
        if not equals or not name or not css:
            problems.append(f"{option!r} is not FIELD=CSS (e.g. title='h3 a')")
        elif name in selectors:
            problems.append(f"selector {name!r} is given twice")
        else:
            selectors[name] = css
    problems += check_selectors(selectors) if selectors and not problems else []
    if problems:
        raise ValueError("\n".join(problems))
    return selectors


def check_selectors(selectors: Mapping[str, str]) -> list[str]:
    """What is wrong with a selector configuration (empty when it can be used)."""
    problems = [f"unknown selector field {name!r}; expected some of {', '.join(SELECTOR_FIELDS)}"
                for name in selectors if name not in SELECTOR_FIELDS]
    problems += [f"selector {name!r} is required when selectors are given"
                 for name in REQUIRED_SELECTORS if not selectors.get(name)]
    for name, css in selectors.items():
        try:
            soupsieve.compile(css)
        except soupsieve.SelectorSyntaxError as exc:
            problems.append(f"selector {name}={css!r} is not valid CSS: "
                            f"{str(exc).splitlines()[0]}")
    return problems


def decode_html(data: bytes) -> str:
    """The page's text, decoded as its byte-order mark or ``<meta charset>`` says."""
    declared = EncodingDetector.find_declared_encoding(data, is_html=True)
    known = ["windows-1252"] if declared and declared.lower() in _WINDOWS_1252 else []
    dammit = UnicodeDammit(data, known_definite_encodings=known, is_html=True)
    return dammit.unicode_markup or data.decode("utf-8", errors="replace")


def parse(data: bytes, parsed: Parsed, hints: Hints) -> None:
    markup = decode_html(data)
    soup = BeautifulSoup(markup, "html.parser")
    base = _base_url(soup, hints.url)
    root = soup.find("html")
    page_language = root.get("lang") if isinstance(root, Tag) else None
    page_language = page_language if isinstance(page_language, str) else None
    if hints.selectors:
        problems = check_selectors(hints.selectors)
        for problem in problems:
            parsed.problem(1, problem)
        if not problems:
            _by_selectors(soup, hints.selectors, parsed, hints, base, page_language)
            articles.drop_repeats(parsed)
        return
    broken: list[int] = []
    for reader in (_json_ld, _h_entries, _article_blocks):
        found = reader(soup, markup, base, broken)
        if found:
            for line, fields in found:
                articles.add(parsed, line, hints, base=base,
                             page_language=page_language, **fields)
            articles.drop_repeats(parsed)
            return
    note = ""
    if broken:
        note = (f" (the JSON-LD on line{'s' * (len(broken) > 1)} "
                f"{', '.join(map(str, broken))} is not valid JSON)")
    parsed.problem(1, "no news items recognised on this HTML page: no schema.org JSON-LD"
                      " articles, no microformats h-entry, no repeated <article> blocks with"
                      f" a linked heading{note}; give CSS selectors for it, e.g."
                      " --select item='div.news' --select title='h3 a'")


Found = list[tuple[int, dict[str, Any]]]


def _base_url(soup: BeautifulSoup, url: str | None) -> str | None:
    tag = soup.find("base", href=True)
    if isinstance(tag, Tag):
        href = str(tag["href"]).strip()
        if href:
            return urljoin(url or "", href)
    return url


# --- 1. schema.org JSON-LD ---------------------------------------------------------


def _json_ld(soup: BeautifulSoup, markup: str, base: str | None, broken: list[int]) -> Found:
    found: Found = []
    for script in soup.find_all("script"):
        kind = str(script.get("type") or "").split(";")[0].strip().lower()
        if kind != "application/ld+json":
            continue
        line = script.sourceline or 1
        try:
            data = json.loads(script.string or script.get_text())
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            broken.append(line)
            continue
        for node in _ld_articles(data, depth=0):
            found.append((line, _ld_fields(node)))
    return found


def _types(node: Mapping[str, Any]) -> set[str]:
    kinds = node.get("@type")
    values = kinds if isinstance(kinds, list) else [kinds]
    return {str(value).rpartition("/")[2] for value in values if value}


def _ld_articles(node: Any, *, depth: int) -> Iterator[Mapping[str, Any]]:
    if depth > 8:
        return
    if isinstance(node, list):
        for child in node:
            yield from _ld_articles(child, depth=depth + 1)
        return
    if not isinstance(node, Mapping):
        return
    yield from _ld_articles(node.get("@graph"), depth=depth + 1)
    kinds = _types(node)
    if kinds & ARTICLE_TYPES:
        yield node
    elif "ItemList" in kinds:
        elements = node.get("itemListElement")
        for element in elements if isinstance(elements, list) else [elements]:
            if not isinstance(element, Mapping):
                continue
            inner = element.get("item")
            if isinstance(inner, Mapping) and (_types(inner) & ARTICLE_TYPES
                                               or inner.get("headline") or inner.get("name")):
                yield inner
            elif _types(element) & ARTICLE_TYPES:
                yield element
            elif element.get("name") and (element.get("url") or isinstance(inner, str)):
                yield {"name": element["name"], "url": element.get("url") or inner}


def _ld_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, Mapping):
        value = value.get("@value") or value.get("@id") or value.get("name")
    return None if value is None else str(value)


def _ld_fields(node: Mapping[str, Any]) -> dict[str, Any]:
    link = _ld_text(node.get("url")) or _ld_text(node.get("mainEntityOfPage"))
    if not link and str(node.get("@id", "")).startswith(("http://", "https://")):
        link = str(node["@id"]).partition("#")[0]
    sections = node.get("articleSection") or node.get("genre") or []
    language = node.get("inLanguage")
    if isinstance(language, Mapping):
        language = language.get("alternateName") or language.get("name")
    return {
        "title": _ld_text(node.get("headline")) or _ld_text(node.get("name")),
        "link": link,
        "summary": _ld_text(node.get("description")) or _ld_text(node.get("abstract")),
        "date": (_ld_text(node.get("datePublished")) or _ld_text(node.get("dateCreated"))
                 or _ld_text(node.get("dateModified"))),
        "categories": [str(s) for s in (sections if isinstance(sections, list) else [sections])],
        "language": _ld_text(language),
    }


# --- 2. microformats2 h-entry --------------------------------------------------------


def _h_entries(soup: BeautifulSoup, markup: str, base: str | None, broken: list[int]) -> Found:
    elements = soup.select(".h-entry")
    if not elements:
        return []
    # Imported here, not with this module: mf2py brings requests and urllib3, which keep
    # ssl's classes, and `searchapp serve` (whose gevent workers patch ssl as they start,
    # forked from a process that imported the importers) would warn in every worker.
    import mf2py

    try:
        document = mf2py.parse(doc=markup, url=base, html_parser="html.parser")
    except RecursionError:  # mf2py walks the tree recursively; a page nested absurdly deep
        return []
    entries = [item for item in _mf_items(document.get("items", []))
               if "h-entry" in item.get("type", [])]
    lines = [element.sourceline or 1 for element in elements]
    if len(lines) != len(entries):
        lines = [lines[0]] * len(entries)
    return [(line, _mf_fields(entry)) for line, entry in zip(lines, entries, strict=True)]


def _mf_items(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Items and their children, in document order."""
    for item in items:
        yield item
        yield from _mf_items(item.get("children", []))


def _mf_value(properties: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        for value in properties.get(name, []):
            if isinstance(value, Mapping):
                value = value.get("value") or value.get("html")
            if value:
                return str(value)
    return None


def _mf_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    properties = entry.get("properties", {})
    return {
        "title": _mf_value(properties, "name"),
        "link": _mf_value(properties, "url", "uid"),
        "summary": _mf_value(properties, "summary", "content"),
        "date": _mf_value(properties, "published", "updated"),
        "categories": [str(v if not isinstance(v, Mapping) else v.get("value", ""))
                       for v in properties.get("category", [])],
        "language": entry.get("lang"),
    }


# --- 3. repeated <article> or list-item blocks -----------------------------------------


def _article_blocks(soup: BeautifulSoup, markup: str, base: str | None,
                    broken: list[int]) -> Found:
    blocks = [tag for tag in soup.find_all("article") if _heading_link(tag)]
    if not blocks:
        blocks = [tag for tag in soup.find_all("li")
                  if _heading_link(tag) and tag.find("time", datetime=True)]
    marked = {id(tag) for tag in blocks}
    # A block holding other blocks is a wrapper (a list inside an <article>): keep the inner ones.
    chosen = [tag for tag in blocks
              if not any(id(inner) in marked for inner in tag.find_all(tag.name))]
    found: Found = []
    for block in chosen:
        heading, anchor = _heading_link(block) or (None, None)
        if heading is None or anchor is None:
            continue
        time = block.find("time")
        paragraph = next((p for p in block.find_all("p")
                          if heading not in p.parents and p.find("time") is None
                          and p.get_text(strip=True)), None)
        found.append((block.sourceline or 1, {
            "title": articles.text_of(heading),
            "link": str(anchor["href"]),
            "summary": articles.text_of(paragraph) if paragraph else None,
            "date": _tag_date(time) if isinstance(time, Tag) else None,
            "language": _attribute(block, "lang"),
        }))
    return found


def _heading_link(block: Tag) -> tuple[Tag, Tag] | None:
    for heading in block.find_all(_HEADINGS):
        anchor = heading.find("a", href=True)
        if isinstance(anchor, Tag):
            return heading, anchor
    return None


def _tag_date(tag: Tag) -> str:
    for name in ("datetime", "content"):
        value = _attribute(tag, name)
        if value:
            return value
    return articles.text_of(tag)


def _attribute(tag: Tag, name: str) -> str | None:
    value = tag.get(name)
    if isinstance(value, list):
        value = " ".join(value)
    return value.strip() if isinstance(value, str) and value.strip() else None


# --- 4. the operator's CSS selectors -------------------------------------------------


def _by_selectors(soup: BeautifulSoup, selectors: Mapping[str, str], parsed: Parsed,
                  hints: Hints, base: str | None, page_language: str | None) -> None:
    blocks = soup.select(selectors["item"])
    if not blocks:
        parsed.problem(1, f"selector item={selectors['item']!r} matches nothing on this page")
        return
    for block in blocks:
        line = block.sourceline or 1
        title = block.select_one(selectors["title"])
        if title is None:
            parsed.problem(line, f"selector title={selectors['title']!r} matches nothing in"
                                 " this item")
            continue
        link_tag = block.select_one(selectors["link"]) if selectors.get("link") else None
        date_tag = block.select_one(selectors["date"]) if selectors.get("date") else None
        summary = block.select_one(selectors["summary"]) if selectors.get("summary") else None
        kind = block.select_one(selectors["type"]) if selectors.get("type") else None
        articles.add(
            parsed, line, hints, base=base,
            title=articles.text_of(title),
            link=_href(link_tag) if link_tag is not None else _href(title) or _href(block),
            summary=articles.text_of(summary) if summary is not None else None,
            date=_tag_date(date_tag) if date_tag is not None else None,
            kind=articles.text_of(kind) if kind is not None else None,
            language=_attribute(block, "lang"), page_language=page_language,
        )


def _href(tag: Tag) -> str | None:
    """The link of a tag: its own ``href``, else the first link inside it."""
    own = _attribute(tag, "href")
    if own:
        return own
    anchor = tag.find("a", href=True)
    return _attribute(anchor, "href") if isinstance(anchor, Tag) else None
