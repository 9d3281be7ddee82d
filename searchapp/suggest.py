"""Completions for search-as-you-type, from the words the items use.

The last word being typed is completed from the unstemmed words of titles and
summaries, most used first; the words before it are kept as typed.
"""

from __future__ import annotations

import re

from searchapp.analysis import fold
from searchapp.engine import Vocabulary
from searchapp.fields import TEXT_FIELDS

MIN_PREFIX = 2
_LAST_WORD = re.compile(r"(\w+)$")


def complete(vocabulary: Vocabulary, text: str, *, limit: int = 8) -> list[str]:
    """Whole queries that complete `text`, best first: the last word's completions are
    the spelling words of the text fields starting with it (folded), most used first
    (`Vocabulary.top_words`: a word table searched by bisection)."""
    match = _LAST_WORD.search(text)
    if not match or len(match[1]) < MIN_PREFIX:
        return []
    head, partial = text[:match.start()], match[1]
    return [head + word for word in vocabulary.top_words(TEXT_FIELDS, fold(partial), limit)]
