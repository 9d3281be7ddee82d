"""Mark matched words in text: HTML-escaped text with `<mark>` around matches.

Words are compared after the same analysis as the index (so `elected` is
marked for a search on `elections`), and the marks are placed at the original
characters, so the text reads exactly as stored.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from html import escape
from typing import Any

from searchapp.analysis import TOKEN_PATTERN, head, tongue
from searchapp.analysis import compile as compile_chain

TOKENS = re.compile(TOKEN_PATTERN)
FRAGMENT_CHARS = 240
_LEAD = 60  # characters of context kept before the first match in a fragment
_CACHE_LIMIT = 200_000
# Each distinct word as written → its English term (None: a stop word), found once; or,
# for a word not stemmed yet, `_HEAD` and its `head` (no term begins with `_HEAD`).
_TERMS: dict[str, str | None] = {}
_UNSEEN: Any = object()
_HEAD = "\x00"
_APOSTROPHES = "'’"  # what joins the parts of one token (TOKEN_PATTERN)
# How a head's characters are matched (`_finder`), where not as themselves.
_HEAD_CHARS = {"i": "[iy]", **{a: f"[{_APOSTROPHES}](?=\\w)" for a in _APOSTROPHES}}
# Characters besides ASCII that leave a text to the regex path (`_plain_spans`): typographic
# punctuation and spaces, none of them a word character nor changed by lowercasing or
# accent folding (tests/test_highlight.py checks it), so the text lowercased keeps its
# length and tokens, and each token lowercased is its folded word.
PLAIN_PUNCTUATION = "’‘‚‛“”„‟–—―…«»‹›•·°€£¥§¶©®™′″\u00a0\u2009\u200a\u202f"
_ESCAPED = re.compile("[&<>\"']")  # what `html.escape` changes
_NOT_PLAIN = re.compile(f"[^\\x00-\\x7f{PLAIN_PUNCTUATION}]")


class Marks:
    """The terms a search wants marked (language-tagged), sorted out once for every
    text of its page."""

    __slots__ = ("english", "find", "heads", "wanted")

    def __init__(self, wanted: Collection[str]) -> None:
        self.wanted = wanted
        self.english = frozenset(t[3:] for t in wanted if t.startswith("en:"))
        # The English stemmer rewrites only the end of a word (`Chain.keeps_initial`):
        # a term begins as its folded word does (`head`), so a word whose head is no
        # wanted term's is never stemmed. The heads are marked as `_TERMS` keeps a word
        # not yet stemmed (`_HEAD` before its head).
        self.heads = (frozenset(_HEAD + head(t) for t in self.english)
                      if compile_chain("en").keeps_initial else None)
        self.find = _finder(self.heads) if self.heads else None


def _finder(heads: Collection[str]) -> Callable[[str], Iterator[re.Match[str]]]:
    """What finds, in a lowercased plain text (`_plain_spans`), the tokens a search may
    want marked: every token whose head is one of `heads` (`Marks.heads`, a one-letter
    head for a one-letter term), in order, as whole tokens; and some tokens that follow
    an apostrophe inside a longer token, which the caller passes over. Since a term
    begins as its folded word does, no token a search wants is missed. A token two
    heads find (a one-letter head and a longer one) is found twice, one after the
    other: the caller passes over the second.

    Each head has its regex (`_head_pattern`), kept for the process: a search compiles
    nothing once its heads have been seen, where one regex per search would compile
    one for every new query (0.07-0.15 ms). A search with several heads sorts their
    matches by position (the regexes' part is done in C; the words found are still
    looked up only as they are asked for)."""
    finders = [_head_pattern(marked[len(_HEAD):]) for marked in sorted(heads)]
    if len(finders) == 1:
        return finders[0]

    def merged(text: str) -> Iterator[re.Match[str]]:
        return iter(sorted(itertools.chain.from_iterable(find(text) for find in finders),
                           key=_START))

    return merged


_START = operator.methodcaller("start")
_PATTERNS: dict[str, Callable[[str], Iterator[re.Match[str]]]] = {}
# Compiled regexes kept at most (about 1 kB each): the heads of ASCII words are about 1,400;
# heads in other scripts could be many more, and queries choose them.
_PATTERN_LIMIT = 4096


def _head_pattern(text: str) -> Callable[[str], Iterator[re.Match[str]]]:
    """The `finditer` of the regex that finds the tokens beginning with a head `text`.

    The head may begin a token (no word character just before it: the lookbehind is
    checked after the head, so the regex scans for the head's letters in C); the match
    then runs to the token's end (`TOKEN_PATTERN`). An "i" in a head is matched by "i"
    or "y" (`head` reads "y" as "i"); an apostrophe by either apostrophe (`head` reads
    "’" as "'"), only where a word character follows (where it joins two parts of one
    token)."""
    found = _PATTERNS.get(text)
    if found is None:
        if len(_PATTERNS) >= _PATTERN_LIMIT:
            _PATTERNS.clear()
        start = "".join(_HEAD_CHARS.get(c) or re.escape(c) for c in text)
        found = _PATTERNS[text] = re.compile(
            f"{start}(?<!\\w{'.' * len(text)})\\w*(?:[{_APOSTROPHES}]\\w+)*",
            re.DOTALL).finditer
    return found


def prepare(terms: Iterable[str]) -> int:
    """Make ahead the regexes that highlighting finds the heads of `terms` with (English
    terms, untagged: what `Marks.heads` are made of), so that no search compiles one for
    a head of the index's words (a new head cost a search 0.1-0.2 ms; a third of the
    bench's queries met one). Run by the engine's warm-up over the index's English
    terms (840 heads at 100,000 items, made in about 0.13 s); it fills at most half of
    `_PATTERN_LIMIT`, leaving room for what searches meet. How many it made."""
    if not compile_chain("en").keeps_initial:
        return 0  # (no `Marks.heads`: the regexes are never asked for)
    made = 0
    for found in {head(term) for term in terms}:
        if len(_PATTERNS) >= _PATTERN_LIMIT // 2:
            break
        if found not in _PATTERNS:
            _head_pattern(found)
            made += 1
    return made


def spans(text: str, wanted: Collection[str] | Marks, *, language: str = "en"
          ) -> list[tuple[int, int]]:
    """Character ranges of the words in `text` whose terms are in `wanted`.

    `wanted` holds language-tagged terms ("fr:cooper", `searchapp.analysis.tag`);
    the text is analysed in its item's `language`. A word's term does not depend on
    its neighbours, so each word goes through its language's per-word function
    (`searchapp.analysis.Tongue.terms`, cached) rather than a token generator.
    """
    return list(_spans(text, wanted, language))


def _spans(text: str, wanted: Collection[str] | Marks, language: str
           ) -> Iterator[tuple[int, int]]:
    """`spans`, in order, found as they are asked for (a fragment stops asking)."""
    marks = wanted if isinstance(wanted, Marks) else Marks(wanted)
    if not marks.wanted or not text:
        return iter(())
    if language == "en":
        if marks.find is not None and (text.isascii() or not _NOT_PLAIN.search(text)):
            return _plain_spans(text, marks)
        return _english_spans(text, marks.english, marks.heads)
    return _other_spans(text, marks.wanted, language)


def _other_spans(text: str, wanted: Collection[str], language: str
                 ) -> Iterator[tuple[int, int]]:
    terms_of = tongue(language).terms
    hits = [word for word in set(TOKENS.findall(text))
            if any(term in wanted for term in terms_of(word))]
    return _occurrences(text, hits)


def _plain_spans(text: str, marks: Marks) -> Iterator[tuple[int, int]]:
    """English spans of a text in ASCII (and `PLAIN_PUNCTUATION`), where a token
    lowercased is its folded word: the regex of `marks` (`_finder`) finds the few
    tokens whose heads are wanted, in C, and only those are looked up (`_wanted`); the
    rest of the text is never split into words in Python."""
    lowered = text.lower()  # (the same length, the same characters are `\\w`)
    english, heads = marks.english, marks.heads
    done = 0
    for found in marks.find(lowered):  # type: ignore[misc]
        at = found.start()
        if at < done:
            continue  # found by a second head
        if at > 1 and lowered[at - 1] in _APOSTROPHES and _wordy(lowered[at - 2]):
            continue  # the end of a longer token ("o'clock"), found from its apostrophe
        done = found.end()
        if _wanted(found.group(), english, heads):
            yield found.span()


def _english_spans(text: str, english: Collection[str],
                   heads: Collection[str] | None = None) -> Iterator[tuple[int, int]]:
    """English (`english`: the wanted terms untagged) in any text: its distinct words
    (the regex finds the tokens in C, rather than a match object per word in Python)
    each looked up once (`_wanted`); only the few that match are then placed
    (`_occurrences`)."""
    if not english:
        return iter(())
    hits = [word for word in set(TOKENS.findall(text)) if _wanted(word, english, heads)]
    return _occurrences(text, hits)


def _wanted(word: str, english: Collection[str], heads: Collection[str] | None) -> bool:
    """Whether an English word as written has a wanted term, through the compiled chain's
    steps, each distinct word folded and stemmed once (`_TERMS`), and not stemmed at
    all when its `head` is none of the wanted terms' `heads` (`Marks.heads`): `_TERMS`
    then keeps the head, marked, and stems the word the first time a search wants a
    term with that head."""
    known = _TERMS
    term = known.get(word, _UNSEEN)
    if term in english:
        return True
    if term is None:  # a stop word
        return False
    chain = compile_chain("en")
    if term is _UNSEEN:
        folded = chain.fold(word)
        if len(known) >= _CACHE_LIMIT:
            known.clear()
        if folded is None:
            known[word] = None
            return False
        if heads is not None:
            term = known[word] = _HEAD + head(folded)
    elif term[:1] != _HEAD:
        return False  # stemmed already, and not wanted
    else:
        folded = None
    if heads is not None and term not in heads and term[:2] not in heads:
        return False  # cannot stem to a wanted term (nor to a wanted one-letter term)
    if folded is None:  # its head was kept, so it is no stop word
        folded = chain.fold(word)
        assert folded is not None
    term = known[word] = chain.stem(folded)
    return term in english


def _occurrences(text: str, words: list[str]) -> Iterator[tuple[int, int]]:
    """Where `words` (tokens of `text`) stand in it as whole tokens, in order.

    A token (`TOKEN_PATTERN`: word characters, joined by single apostrophes) starts
    where no word character, nor a word character and an apostrophe, comes before
    it, and ends where no word character, nor an apostrophe and a word character,
    follows: each place `str.find` gives that passes both checks is one of the
    regex's tokens, and tokens never overlap."""
    if not words:
        return iter(())
    found = []
    size = len(text)
    for word in words:
        at = text.find(word)
        while at >= 0:
            end = at + len(word)
            if not (at and (_wordy(text[at - 1]) or (
                    text[at - 1] in _APOSTROPHES and at > 1 and _wordy(text[at - 2])))) \
                    and not (end < size and (_wordy(text[end]) or (
                        text[end] in _APOSTROPHES and end + 1 < size
                        and _wordy(text[end + 1])))):
                found.append((at, end))
            at = text.find(word, at + 1)
    found.sort()
    return iter(found)


def _wordy(char: str) -> bool:
    """Whether `char` is what the regex's `\\w` matches in a str pattern."""
    return char.isalnum() or char == "_"


def highlight(text: str, wanted: Collection[str] | Marks, *, fragment: int | None = None,
              language: str = "en") -> str:
    """`text` escaped, matches marked (the text read in its item's `language`); cut to
    about `fragment` characters if given. `wanted`: the tagged terms, or their `Marks`
    (made once for the texts of a page).

    A cut text is analysed only as far as it is shown: up to its first match (where
    the fragment starts), then to the fragment's end."""
    found = _spans(text, wanted, language)
    start, end = 0, len(text)
    shown: list[tuple[int, int]] = []
    if fragment is not None and len(text) > fragment:
        first = next(found, None)
        if first is not None:
            if first[0] > _LEAD:
                start = _word_start(text, first[0] - _LEAD)
            shown.append(first)
        end = _word_end(text, start + fragment)
    for span in found:
        if span[1] > end:
            break  # (the spans come in order: no later one ends within the text shown)
        shown.append(span)
    out = ["…"] if start > 0 else []
    pos = start
    # (Most texts shown have nothing to escape: one search rather than five replaces
    # for each piece.)
    esc = escape if _ESCAPED.search(text, start, end) else str
    for a, b in shown:
        if a < start or b > end:
            continue
        out.append(esc(text[pos:a]))
        out.append(f"<mark>{esc(text[a:b])}</mark>")
        pos = b
    out.append(esc(text[pos:end]))
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
