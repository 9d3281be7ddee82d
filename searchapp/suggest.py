"""Completions for search-as-you-type, from the words the items use.

The last word being typed is completed from the unstemmed words of titles and
summaries, most used first; the words before it are kept as typed.
"""

from __future__ import annotations

import re
from typing import Any

from whoosh.support.charset import accent_map

from searchapp.query import TEXT_FIELDS

MIN_PREFIX = 2
MAX_SCAN = 5_000  # words looked at per field, whatever the prefix
_LAST_WORD = re.compile(r"(\w+)$")


def complete(reader: Any, text: str, *, limit: int = 8) -> list[str]:
    """Whole queries that complete `text`, best first."""
    match = _LAST_WORD.search(text)
    if not match or len(match[1]) < MIN_PREFIX:
        return []
    head, partial = text[:match.start()], match[1]
    prefix = partial.lower().translate(accent_map)
    counts: dict[str, int] = {}
    schema = reader.schema
    for name in TEXT_FIELDS:
        if not schema[name].separate_spelling():
            continue
        spell = schema[name].spelling_fieldname(name)
        for n, raw in enumerate(reader.expand_prefix(spell, prefix)):
            if n >= MAX_SCAN:
                break
            word = raw.decode("utf-8")
            counts[word] = counts.get(word, 0) + reader.doc_frequency(spell, raw)
    best = sorted(counts, key=lambda w: (-counts[w], w))[:limit]
    return [head + word for word in best]
