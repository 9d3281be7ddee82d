"""Mark matched words in text: HTML-escaped text with `<mark>` around matches.

Words are compared after the same analysis as the index (so `elected` is
marked for a search on `elections`), and the marks are placed at the original
characters, so the text reads exactly as stored.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterator
from html import escape

from whoosh.analysis import (
    CharsetFilter,
    CompositeAnalyzer,
    LowercaseFilter,
    RegexTokenizer,
    StopFilter,
)

from searchapp.analysis import SnowballStemFilter, analyzer

FRAGMENT_CHARS = 240
_LEAD = 60  # characters of context kept before the first match in a fragment


def spans(text: str, wanted: Collection[str]) -> list[tuple[int, int]]:
    """Character ranges of the words in `text` whose terms are in `wanted`."""
    if not wanted or not text:
        return []
    per_token = _per_token()
    if per_token is None:
        return [(t.startchar, t.endchar) for t in analyzer()(text, chars=True)
                if t.text in wanted]
    words, before_stem, stem = per_token
    initials = {t[:1] for t in wanted}
    found = []
    for match in words(text):
        word = match.group(0)
        if word in _FOLDED:
            folded = _FOLDED[word]
        else:
            if len(_FOLDED) >= _CACHE_LIMIT:
                _FOLDED.clear()
            folded = _FOLDED[word] = before_stem(word)
        if folded is None:
            continue  # a stop word
        if stem is not None:
            if folded[:1] not in initials:
                continue  # cannot stem to a wanted term
            term = _STEMS.get(folded)
            if term is None:
                if len(_STEMS) >= _CACHE_LIMIT:
                    _STEMS.clear()
                term = _STEMS[folded] = stem(folded)
        else:
            term = folded
        if term in wanted:
            found.append(match.span())
    return found


# Analysing a page of text token by token through the analyzer's generator
# chain costs more than the rest of a search. When every stage after the
# tokenizer looks at one token alone (the chain in searchapp.analysis), a
# word's term does not depend on its neighbours: each stage is applied to the
# word directly, and each distinct word's term is remembered.
_FOLDED: dict[str, str | None] = {}  # word as written → text before stemming (None: stopped)
_STEMS: dict[str, str] = {}  # text before stemming → term
_CACHE_LIMIT = 200_000


@functools.cache
def _per_token() -> tuple[Callable[[str], Iterator[re.Match[str]]],
                          Callable[[str], str | None],
                          Callable[[str], str] | None] | None:
    """The tokenizer's matches, a word's text before stemming (None: stopped), and
    the stemmer (None: none; it must come last); None for other chains."""
    chain = analyzer()
    items = list(getattr(chain, "items", ()))
    if (type(chain) is not CompositeAnalyzer or not items
            or type(items[0]) is not RegexTokenizer or items[0].gaps):
        return None
    steps: list[Callable[[str], str | None]] = []
    stem = None
    for item in items[1:]:
        kind = type(item)
        if stem is not None:
            return None  # anything after the stemmer: use the chain itself
        if kind is LowercaseFilter:
            steps.append(str.lower)
        elif kind is CharsetFilter:
            steps.append(functools.partial(_translate, charmap=item.charmap))
        elif kind is StopFilter:
            steps.append(functools.partial(_stop, stops=item.stops, low=item.min,
                                           high=item.max))
        elif kind is SnowballStemFilter and item.language == "english":
            # nltk's English Snowball stemmer only rewrites the end of a word (a
            # leading "y" is marked and restored), so a stem starts with the
            # word's first character: words whose first character starts no
            # wanted term need no stemming (tests/test_highlight.py checks it).
            stem = item.stem
        else:
            return None

    def before_stem(word: str) -> str | None:
        text: str | None = word
        for step in steps:
            text = step(text)  # type: ignore[arg-type]
            if text is None:
                return None
        return text

    return items[0].expression.finditer, before_stem, stem


def _translate(word: str, *, charmap: dict[int, str]) -> str:
    return word.translate(charmap)


def _stop(word: str, *, stops: frozenset[str], low: int, high: int | None) -> str | None:
    if len(word) < low or (high is not None and len(word) > high) or word in stops:
        return None
    return word


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
