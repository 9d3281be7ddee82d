"""The text analysis chain, used for indexing and for queries alike.

Unicode word tokens → lowercase → accents folded → English stop words dropped
→ nltk's Snowball stemmer (behind a cache). Whoosh pickles the schema into the
index, so every piece here must pickle; the stemmer and its cache are rebuilt
after unpickling instead of being stored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from nltk.stem.snowball import SnowballStemmer
from whoosh.analysis import (
    Analyzer,
    CharsetFilter,
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StopFilter,
    Token,
)
from whoosh.support.charset import accent_map

# Words; an apostrophe inside a word keeps it whole ("world’s" stems to "world").
TOKEN_PATTERN = r"\w+(?:['’]\w+)*"

# Snowball's English stop list (the one PostgreSQL, NLTK and whoosh.lang.stopwords
# ship) less "who", which news readers search for as WHO. Function words only: it
# keeps "us" and "new". On Cranfield it lifts nDCG@10 and MAP (bench/RESULTS.md).
STOP_WORDS = frozenset(["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "did", "do", "does", "doing", "don", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "s", "same", "she", "should", "so", "some", "such", "t", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "whom", "why", "will", "with", "you", "your", "yours", "yourself", "yourselves"])

STEM_CACHE_SIZE = 100_000


class SnowballStemFilter(Filter):  # type: ignore[misc]
    """Replaces each token's text with its nltk Snowball stem."""

    is_morph = True

    def __init__(self, language: str = "english", *, cachesize: int = STEM_CACHE_SIZE) -> None:
        self.language = language
        self.cachesize = cachesize
        self._stem: Callable[[str], str] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"language": self.language, "cachesize": self.cachesize}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.language = state["language"]
        self.cachesize = state["cachesize"]
        self._stem = None

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, SnowballStemFilter)
                and (self.language, self.cachesize) == (other.language, other.cachesize))

    def __hash__(self) -> int:
        return hash((type(self), self.language, self.cachesize))

    def stem(self, word: str) -> str:
        if self._stem is None:
            stemmer = SnowballStemmer(self.language)
            self._stem = functools.lru_cache(maxsize=self.cachesize)(stemmer.stem)
        return self._stem(word)

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        stem = self.stem
        for token in tokens:
            if not token.stopped:
                token.text = stem(token.text)
            yield token


def make_analyzer() -> Analyzer:
    return (
        RegexTokenizer(TOKEN_PATTERN)
        | LowercaseFilter()
        | CharsetFilter(accent_map)
        | StopFilter(stoplist=STOP_WORDS, minsize=1)
        | SnowballStemFilter()
    )


@functools.cache
def analyzer() -> Analyzer:
    """The process-wide analyzer (one stem cache shared by index and queries)."""
    return make_analyzer()


def terms(text: str) -> list[str]:
    """The index terms a text produces, in order (stop words removed)."""
    return [t.text for t in analyzer()(text)]
