"""Mark matched words in text: HTML-escaped text with `<mark>` around matches.

Words are compared after the same analysis as the index (so `elected` is
marked for a search on `elections`), and the marks are placed at the original
characters, so the text reads exactly as stored.
"""

from __future__ import annotations

from collections.abc import Collection
from html import escape

from searchapp.analysis import analyzer

FRAGMENT_CHARS = 240
_LEAD = 60  # characters of context kept before the first match in a fragment


def spans(text: str, wanted: Collection[str]) -> list[tuple[int, int]]:
    """Character ranges of the words in `text` whose terms are in `wanted`."""
    if not wanted or not text:
        return []
    return [(t.startchar, t.endchar) for t in analyzer()(text, chars=True) if t.text in wanted]


def highlight(text: str, wanted: Collection[str], *, fragment: int | None = None) -> str:
    """`text` escaped, matches marked; cut to about `fragment` characters if given."""
    found = spans(text, wanted)
    start, end = 0, len(text)
    if fragment is not None and len(text) > fragment:
        if found and found[0][0] > _LEAD:
            start = _word_start(text, found[0][0] - _LEAD)
        end = _word_end(text, start + fragment)
    out = ["…"] if start > 0 else []
    pos = start
    for a, b in found:
        if a < start or b > end:
            continue
        out.append(escape(text[pos:a]))
        out.append(f"<mark>{escape(text[a:b])}</mark>")
        pos = b
    out.append(escape(text[pos:end]))
    if end < len(text):
        out.append("…")
    return "".join(out)


def _word_start(text: str, at: int) -> int:
    space = text.find(" ", max(at, 0))
    return space + 1 if 0 <= space < len(text) - 1 else max(at, 0)


def _word_end(text: str, at: int) -> int:
    if at >= len(text):
        return len(text)
    space = text.rfind(" ", 0, at)
    return space if space > 0 else at
