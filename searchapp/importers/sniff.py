"""What markup an input holds, told from its first bytes: a feed, an HTML page, or neither.

This follows the WHATWG MIME Sniffing standard's rule for telling a feed from
HTML: skip whitespace, comments, processing instructions and the doctype, then
look at the first element's name. An input whose first character is not ``<``
is not markup, and the text formats decide.
"""

from __future__ import annotations

import codecs

FEED = "feed"
HTML = "html"
XML = "xml"  # XML, but neither a feed nor XHTML

_HEAD = 16384
_FEED_ROOTS = ("rss", "feed", "rdf:rdf")
_HTML_ROOTS = ("html", "head", "body")
_NAME_END = b" \t\r\n/>"


def sniff(data: bytes) -> str | None:
    """`FEED`, `HTML`, `XML` or None (not markup) for the start of `data`."""
    head = _ascii_head(data)
    position = 0
    declared_xml = False
    while True:
        while position < len(head) and head[position] in b" \t\r\n\x0c":
            position += 1
        rest = head[position:]
        if not rest.startswith(b"<"):
            return None if position == 0 or not declared_xml else XML
        if rest.startswith(b"<!--"):
            end = head.find(b"-->", position + 4)
            if end < 0:
                return HTML if not declared_xml else XML
            position = end + 3
        elif rest.startswith(b"<?"):
            declared_xml = declared_xml or rest[2:5].lower() == b"xml"
            end = head.find(b">", position)
            if end < 0:
                return XML
            position = end + 1
        elif rest.startswith(b"<!"):
            if rest[2:14].lower() == b"doctype html":
                return HTML
            end = head.find(b">", position)
            subset = head.find(b"[", position, end if end >= 0 else len(head))
            if subset >= 0:  # an internal subset: its declarations hold ">" too
                end = head.find(b"]", subset)
                end = head.find(b">", end) if end >= 0 else -1
            if end < 0:
                return XML if declared_xml else HTML
            position = end + 1
        else:
            name = _name(rest[1:]).lower()
            if name in _FEED_ROOTS:
                return FEED
            if name in _HTML_ROOTS or not declared_xml:
                return HTML
            return XML


def root_name(data: bytes) -> str:
    """The first element's name, for messages (``svg``, ``urlset``)."""
    head = _ascii_head(data)
    for position in range(len(head)):
        if head[position:position + 1] == b"<" and head[position + 1:position + 2].isalpha():
            return _name(head[position + 1:])
    return "?"


def _ascii_head(data: bytes) -> bytes:
    """The first bytes as an ASCII-compatible string (UTF-16/32 with a BOM re-encoded)."""
    sample = data[:_HEAD]
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if sample.startswith(bom):
            text = codecs.getincrementaldecoder(codec)(errors="replace").decode(sample)
            return text.encode("utf-8", errors="replace")
    return sample.removeprefix(codecs.BOM_UTF8)


def _name(after_bracket: bytes) -> str:
    end = len(after_bracket)
    for index, byte in enumerate(after_bracket):
        if byte in _NAME_END:
            end = index
            break
    return after_bracket[:end].decode("ascii", errors="replace")
