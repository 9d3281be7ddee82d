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
from searchapp.query import (
    ParsedQuery,
    absent,
    language_heads,
    most_documents,
    term_if_present,
)

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
    """The known word closest to `word` (fewest edits, then most documents, then the
    first in alphabetical order).

    Stemming a candidate in every small language is the dear part, and those add
    little: a candidate's documents in the other languages are counted first, and
    what the small languages could add is bounded (`most_documents`), so the
    candidates are looked at most promising first and the rest are left as soon as
    none of them could come first. The answer is the one counting them all gives."""
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
    small = [language for language in languages
             if language_heads(vocabulary, language) is not None]
    large = [language for language in languages if language not in small]
    by_distance: dict[int, list[str]] = {}
    for candidate in candidates:
        by_distance.setdefault(distance(word, candidate), []).append(candidate)
    for edits in sorted(by_distance):
        known = {c: _frequency(vocabulary, c, large) for c in by_distance[edits]}
        most = {c: known[c] + sum(most_documents(vocabulary, c, language) or 0
                                  for language in small if not absent(vocabulary, c, language))
                for c in known}
        best, best_count = None, 0
        for candidate in sorted(known, key=lambda c: (-most[c], c)):
            if best is not None and (most[candidate] < best_count or (
                    most[candidate] == best_count and candidate > best)):
                break  # neither this candidate nor any after it can come first
            count = known[candidate] + _frequency(vocabulary, candidate, small)
            if count > best_count or (count == best_count and count and best is not None
                                      and candidate < best):
                best, best_count = candidate, count
        if best is not None:
            return best
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
