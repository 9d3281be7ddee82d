"""Mark matched words in text: HTML-escaped text with `<mark>` around matches.

Words are compared after the same analysis as the index (so `elected` is
marked for a search on `elections`), and the marks are placed at the original
characters, so the text reads exactly as stored.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from html import escape

from searchapp.analysis import TOKEN_PATTERN, tongue
from searchapp.analysis import compile as compile_chain

TOKENS = re.compile(TOKEN_PATTERN)
FRAGMENT_CHARS = 240
_LEAD = 60  # characters of context kept before the first match in a fragment
_CACHE_LIMIT = 200_000
# Each distinct word is folded once (None: a stop word) and stemmed once.
_FOLDED: dict[str, str | None] = {}
_STEMS: dict[str, str] = {}


def spans(text: str, wanted: Collection[str], *, language: str = "en") -> list[tuple[int, int]]:
    """Character ranges of the words in `text` whose terms are in `wanted`.

    `wanted` holds language-tagged terms ("fr:cooper", `searchapp.analysis.tag`);
    the text is analysed in its item's `language`. A word's term does not depend on
    its neighbours, so each word goes through its language's per-word function
    (`searchapp.analysis.Tongue.terms`, cached) rather than a token generator.
    """
    if not wanted or not text:
        return []
    if language == "en":
        return _english_spans(text, wanted)
    terms_of = tongue(language).terms
    found = []
    for match in TOKENS.finditer(text):
        if any(term in wanted for term in terms_of(match.group(0))):
            found.append(match.span())
    return found


def _english_spans(text: str, wanted: Collection[str]) -> list[tuple[int, int]]:
    """English, through the compiled chain's steps: words whose first letter starts no
    wanted term are not stemmed (the stemmer keeps a word's first letter)."""
    chain = compile_chain("en")
    english = {t[3:] for t in wanted if t.startswith("en:")}
    if not english:
        return []
    initials = {t[:1] for t in english} if chain.keeps_initial else None
    folds, stems = _FOLDED, _STEMS
    found = []
    for match in chain.tokens.finditer(text):
        word = match.group(0)
        if word in folds:
            folded = folds[word]
        else:
            if len(folds) >= _CACHE_LIMIT:
                folds.clear()
            folded = folds[word] = chain.fold(word)
        if folded is None:
            continue  # a stop word
        if initials is not None and folded[:1] not in initials:
            continue  # cannot stem to a wanted term
        term = stems.get(folded)
        if term is None:
            if len(stems) >= _CACHE_LIMIT:
                stems.clear()
            term = stems[folded] = chain.stem(folded)
        if term in english:
            found.append(match.span())
    return found


def highlight(text: str, wanted: Collection[str], *, fragment: int | None = None,
              language: str = "en") -> str:
    """`text` escaped, matches marked (the text read in its item's `language`); cut to
    about `fragment` characters if given."""
    found = spans(text, wanted, language=language)
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
