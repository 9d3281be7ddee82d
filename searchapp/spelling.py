""""Did you mean": corrections from the index's own vocabulary.

The title and summary fields keep their unstemmed words beside the stems
(Whoosh's separate spelling words), so suggestions are words people wrote,
never stems. A word is corrected only when the index does not know it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from whoosh.support.levenshtein import distance

from searchapp.engine import Vocabulary
from searchapp.fields import TEXT_FIELDS
from searchapp.query import ParsedQuery, term_if_present

MAX_CANDIDATES = 200


def _frequency(vocabulary: Vocabulary, word: str, languages: Sequence[str] = ("en",)) -> int:
    """Documents using the word, in any of the languages searched."""
    total = 0
    for language in languages:
        term = term_if_present(vocabulary, word, language)
        if term is not None:
            total += sum(vocabulary.doc_frequency(f, term) for f in TEXT_FIELDS)
    return total


def best_word(vocabulary: Vocabulary, word: str, languages: Sequence[str] = ("en",)
              ) -> str | None:
    """The known word closest to `word` (fewest edits, then most documents)."""
    word = word.lower()
    maxdist = 1 if len(word) <= 4 else 2
    candidates: set[str] = set()
    for f in TEXT_FIELDS:
        # The spelling words (unstemmed, of every language) near it.
        for found in vocabulary.near(f, word, distance=maxdist, prefix=1):
            candidates.add(found)
            if len(candidates) >= MAX_CANDIDATES:
                break
    candidates.discard(word)
    ranked = sorted((distance(word, c), -_frequency(vocabulary, c, languages), c)
                    for c in candidates)
    for _, negative_frequency, candidate in ranked:
        if negative_frequency < 0:
            return candidate
    return None


def suggest(vocabulary: Vocabulary, parsed: ParsedQuery, text: str, *,
            languages: Sequence[str] = ("en",), tolerated: Collection[str] = ()
            ) -> str | None:
    """The query with unknown words replaced by known ones, or None. Words that typo
    tolerance already matched (`tolerated`, folded) are left as typed."""
    corrected = text
    changed = False
    for clause in parsed.positives:
        if not clause.plain or _frequency(vocabulary, clause.text, languages):
            continue
        if len(clause.words) == 1 and clause.words[0] in tolerated:
            continue
        better = best_word(vocabulary, clause.text, languages)
        if better is None:
            continue
        pattern = re.compile(rf"(?<!\w){re.escape(clause.text)}(?!\w)", re.IGNORECASE)
        corrected, n = pattern.subn(better, corrected, count=1)
        changed = changed or n > 0
    return corrected if changed else None
