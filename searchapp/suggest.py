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
MAX_SCAN = 5_000  # words looked at per field, whatever the prefix
_LAST_WORD = re.compile(r"(\w+)$")


def complete(vocabulary: Vocabulary, text: str, *, limit: int = 8) -> list[str]:
    """Whole queries that complete `text`, best first."""
    match = _LAST_WORD.search(text)
    if not match or len(match[1]) < MIN_PREFIX:
        return []
    head, partial = text[:match.start()], match[1]
    prefix = fold(partial)
    counts: dict[str, int] = {}
    for name in TEXT_FIELDS:
        for n, word in enumerate(vocabulary.words(name, prefix)):
            if n >= MAX_SCAN:
                break
            counts[word] = counts.get(word, 0) + vocabulary.word_count(name, word)
    best = sorted(counts, key=lambda w: (-counts[w], w))[:limit]
    return [head + word for word in best]
