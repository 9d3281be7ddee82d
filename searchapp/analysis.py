"""The text analysis chain, used for indexing, queries and highlighting alike.

Unicode word tokens → lowercase → accents folded → English stop words dropped
→ nltk's Snowball stemmer (behind a cache). The chain is declared once per
language (`CHAINS`) and made into two things from the same pieces: a Whoosh
analyzer (`analyzer`, kept in the schema, used to parse queries) and a
compiled `Chain` (`compile`): one function per word (word → term, or None
for a stop word) and one per text, which the segment writer (word by word,
`word_entries`) and the highlighter use instead of Whoosh's token generators. `compile` checks the
two agree on a probe text and raises `AnalysisError` when they do not, so a
chain change that the compiled form does not follow fails at start-up
instead of quietly slowing indexing down or marking the wrong words.

Whoosh pickles the schema into the index, so every piece here must pickle;
the stemmer and its cache are rebuilt after unpickling instead of being stored.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
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

from searchapp.errors import SearchappError

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


class AnalysisError(SearchappError):
    """An analysis chain that cannot be compiled (a start-up error, not a slow path)."""

    code = "analysis_error"


@dataclass(frozen=True, slots=True)
class Recipe:
    """One language's chain: its tokens, stop words and Snowball stemmer."""

    language: str  # two letters, as items carry it
    stemmer: str  # nltk's Snowball name
    stop_words: frozenset[str]
    token_pattern: str = TOKEN_PATTERN


CHAINS = {"en": Recipe("en", "english", STOP_WORDS)}
PROBE = ("The Elections of the elected: Özge Berber-Agtaş won’t say co-op’s “news”;"
         " cooperatives COOPERATIVE, naïve café, ＡＢＣ １２３, yearly dying skies a of")


def make_analyzer(language: str = "en") -> Analyzer:
    recipe = _recipe(language)
    return (
        RegexTokenizer(recipe.token_pattern)
        | LowercaseFilter()
        | CharsetFilter(accent_map)
        | StopFilter(stoplist=recipe.stop_words, minsize=1)
        | SnowballStemFilter(recipe.stemmer)
    )


def analyzer(language: str = "en") -> Analyzer:
    """The process-wide analyzer (one stem cache shared by index and queries)."""
    return _analyzer(language)


@functools.cache
def _analyzer(language: str) -> Analyzer:
    return make_analyzer(language)


def head(word: str) -> str:
    """What a term shares with its folded word, as the Snowball stemmers change only a
    word's end: the first two letters, a "y" read as "i" ("dying" → "die", "cry" →
    "cri"); a one-letter term ("c's" → "c") shares the first; a typographic apostrophe
    read as "'" (nltk's English stemmer writes "o’brien" as "o'brien"). The highlighter
    leans on it."""
    return word[:2].replace("y", "i").replace("’", "'")


def fold(word: str) -> str:
    """A word lowercased and its accents folded, as the chain does before stop words
    (spelling words are kept this way)."""
    return word.lower().translate(accent_map)


def terms(text: str) -> list[str]:
    """The index terms a text produces, in order (stop words removed)."""
    return [t.text for t in analyzer()(text)]


def _recipe(language: str) -> Recipe:
    try:
        return CHAINS[language]
    except KeyError:
        raise AnalysisError(f"no analysis chain for language {language!r}"
                            f" (known: {', '.join(sorted(CHAINS))})") from None


class _Stems(dict[str, str]):
    """A word's stem, computed once (the stemmer is the costly step)."""

    def __init__(self, stem: Callable[[str], str]) -> None:
        super().__init__()
        self._stem = stem

    def __missing__(self, word: str) -> str:
        found = self[word] = self._stem(word)
        return found


@dataclass(frozen=True, slots=True)
class Chain:
    """One language's chain as plain functions, equal in effect to its analyzer."""

    language: str
    tokens: re.Pattern[str]  # what a word is
    stop_words: frozenset[str]
    stem: Callable[[str], str]
    # The stemmer only rewrites the end of a word, so a term starts with its word's
    # first (folded) character (true of nltk's English Snowball; a leading "y" is
    # marked and restored): words whose first character starts no wanted term need
    # no stemming when highlighting (tests/test_highlight.py checks it).
    keeps_initial: bool
    _stems: _Stems = field(repr=False, compare=False)

    def fold(self, word: str) -> str | None:
        """A word as written → its text before stemming; None for a stop word."""
        text = word.lower().translate(accent_map)
        return None if text in self.stop_words else text

    def stem_of(self, folded: str) -> str:
        """A folded word's term (remembered)."""
        if len(self._stems) >= STEM_CACHE_SIZE:
            self._stems.clear()
        return self._stems[folded]

    def term(self, word: str) -> str | None:
        """A word as written → its index term; None for a stop word."""
        folded = self.fold(word)
        return None if folded is None else self.stem_of(folded)

    def analyse(self, text: str) -> tuple[list[str], int, list[str]]:
        """A text's terms in order, the position of the first one (stop words before it
        count, as Whoosh's StopFilter numbers kept tokens), and the kept words before
        stemming (the spelling words)."""
        if len(self._stems) >= STEM_CACHE_SIZE:
            self._stems.clear()
        return self.analyser(self._stems)(text)

    def analyser(self, stems: dict[str, str] | None = None
                 ) -> Callable[[str], tuple[list[str], int, list[str]]]:
        """`analyse` with a stem cache of its own that is never cleared (default: a new
        one), for a caller whose vocabulary may outgrow any bound for as long as it
        runs (the segment writer takes the same steps word by word, `word_entries`)."""
        findall, stops = self.tokens.findall, self.stop_words
        cache = stems if stems is not None else _Stems(self.stem)

        def analyse(text: str) -> tuple[list[str], int, list[str]]:
            words = [w.lower() for w in findall(text)]
            if not text.isascii():
                words = [w.translate(accent_map) for w in words]
            kept = [i for i, w in enumerate(words) if w not in stops]
            if not kept:
                return [], 0, []
            surface = [words[i] for i in kept] if len(kept) < len(words) else words
            return [cache[w] for w in surface], kept[0], surface

        return analyse


def compile(language: str = "en") -> Chain:
    """The language's chain as functions, checked against its Whoosh analyzer."""
    return _compile(language)


@functools.cache
def _compile(language: str) -> Chain:
    recipe = _recipe(language)
    pattern = re.compile(recipe.token_pattern)
    if pattern.groups:
        raise AnalysisError(f"the {language} token pattern has groups; findall would"
                            " return them instead of words")
    if any(not w or w != w.lower().translate(accent_map) for w in recipe.stop_words):
        raise AnalysisError(f"the {language} stop words must be lowercase and unaccented")
    stemmer = analyzer(language).items[-1]
    ascii_lower = "".join(chr(c) for c in range(128)).lower()
    if ascii_lower.translate(accent_map) != ascii_lower:
        raise AnalysisError("accent folding changes ASCII text; the chain's shortcut"
                            " for ASCII texts would be wrong")
    chain = Chain(language, pattern, recipe.stop_words, stemmer.stem,
                  keeps_initial=recipe.stemmer == "english", _stems=_Stems(stemmer.stem))
    expected = [(t.text, t.pos) for t in analyzer(language)(PROBE, positions=True)]
    stems, first, _ = chain.analyse(PROBE)
    if [(s, first + k) for k, s in enumerate(stems)] != expected:
        raise AnalysisError(f"the compiled {language} chain disagrees with its analyzer on"
                            f" {PROBE!r}")
    by_word = [chain.term(m.group(0)) for m in pattern.finditer(PROBE)]
    if [t for t in by_word if t is not None] != [t for t, _ in expected]:
        raise AnalysisError(f"the {language} chain's per-word function disagrees with its"
                            " analyzer")
    return chain


def chain_for(candidate: Any) -> Chain | Multilingual | None:
    """The compiled chain equal to a (Whoosh) analyzer; None for any other analyzer."""
    if isinstance(candidate, MultilingualAnalyzer):
        return Multilingual()
    for language in CHAINS:
        if candidate == analyzer(language):
            return compile(language)
    return None


# Languages ------------------------------------------------------------------
#
# Each item is analysed in its own language (`Item.language`), and its terms are
# indexed under that language's tag: "en:cooper", "fr:cooper" (docs/languages.md,
# option C). Terms of different languages never meet, and a query is expanded into
# each language searched (`searchapp.query.build`). English keeps the chain above
# (accents folded before stemming); the other Snowball languages use
# `searchapp.languages` (stemmed as typed, the stem folded, and a second term at
# the same position for the accentless spelling when it stems otherwise); a
# language searchapp has no stemmer for is indexed as folded words.

# What an analysed text gives: its terms in order, the position of the first, the
# spelling words (unstemmed, folded), and the extra (term, position) pairs indexed
# beside a word (its accentless spelling's term).
Analysed = tuple[list[str], int, list[str], list[tuple[str, int]]]
# What one word as written gives: its index terms (none for a stop word; a second one
# is indexed at the same position) and its spelling word.
WordEntry = tuple[tuple[str, ...], str]

MARK = "\x1e"  # around a language code before a text handed to Whoosh's writer
TAG_CACHE_SIZE = 200_000


def tag(language: str, term: str) -> str:
    """A term in a language's namespace: ("fr", "cooper") → "fr:cooper"."""
    return f"{language}:{term}"


def untag(term: str) -> tuple[str, str]:
    """ "fr:cooper" → ("fr", "cooper")."""
    language, _, stem = term.partition(":")
    return language, stem


def marked(text: str, language: str) -> str:
    """A text as Whoosh's writer is given it: its language in front, between two
    MARK characters (which the importers never let into a text)."""
    return f"{MARK}{language}{MARK}{text}"


def unmark(value: str) -> tuple[str, str | None]:
    """A text and the language `marked` put in front of it (None when unmarked)."""
    if value.startswith(MARK):
        end = value.find(MARK, 1)
        if end > 0:
            return value[end + 1:], value[1:end]
    return value, None


class Tongue:
    """One language's analysis as plain functions, its terms tagged with the language."""

    def __init__(self, language: str) -> None:
        from searchapp import languages

        self.language = language
        self.known = language in languages.LANGUAGES
        self._words: dict[str, tuple[tuple[str, ...], str]] = {}
        if language == "en":
            chain = compile("en")
            self._english = chain
            self._english_stems = _Stems(lambda folded: "en:" + chain.stem(folded))
        self._languages = languages

    def _entry(self, lowered: str) -> tuple[tuple[str, ...], str]:
        """A lowercased word → (its tagged index terms, its spelling word); no terms for
        a stop word."""
        folded = self._languages.fold(lowered)
        if self.language == "en":
            english = lowered.translate(accent_map)
            if english in self._english.stop_words:
                return (), english
            return (self._english_stems[english],), english
        if not self.known:
            return (tag(self.language, folded),), folded
        found = self._languages.index_terms(lowered, self.language)
        return tuple(tag(self.language, t) for t in found), folded

    def terms(self, word: str) -> tuple[str, ...]:
        """A word as written → its tagged index terms (empty for a stop word): what the
        highlighter compares with a query's."""
        lowered = word.lower()
        found = self._words.get(lowered)
        if found is None:
            if len(self._words) >= TAG_CACHE_SIZE:
                self._words.clear()
            found = self._words[lowered] = self._entry(lowered)
        return found[0]

    def cached(self, word: str) -> tuple[str, ...] | None:
        """`terms(word)` if already worked out, else None (nothing is computed)."""
        found = self._words.get(word.lower())
        return None if found is None else found[0]

    def query_term(self, word: str) -> str | None:
        """A query word → the tagged term it looks for (None: a stop word). Only the
        main term: a word typed without its accents meets the accentless spelling's
        term, indexed beside the word."""
        found = self.terms(word)
        return found[0] if found else None

    def analyser(self) -> Callable[[str], Analysed]:
        """`analyse` with caches of its own, never cleared (the segment writer takes the
        same steps word by word, `word_entries`)."""
        if self.language == "en":
            # The English chain's own analysis, its stems tagged as they are cached.
            chain = self._english
            single = chain.analyser(_Stems(lambda folded: "en:" + chain.stem(folded)))

            def analyse_english(text: str) -> Analysed:
                stems, first, words = single(text)
                return stems, first, words, []

            return analyse_english

        findall = re.compile(TOKEN_PATTERN).findall
        entries: dict[str, tuple[tuple[str, ...], str]] = {}
        entry = self._entry

        def analyse(text: str) -> Analysed:
            terms: list[str] = []
            surface: list[str] = []
            extra: list[tuple[str, int]] = []
            first = 0
            for i, raw in enumerate(findall(text)):
                lowered = raw.lower()
                found = entries.get(lowered)
                if found is None:
                    found = entries[lowered] = entry(lowered)
                if not found[0]:
                    continue
                if not terms:
                    first = i
                if len(found[0]) > 1:
                    extra.append((found[0][1], first + len(terms)))
                terms.append(found[0][0])
                surface.append(found[1])
            return terms, first, surface, extra

        return analyse

    def word_entries(self, known: dict[str, str] | None = None
                     ) -> Callable[[str], WordEntry]:
        """A word as written → (its tagged index terms, its spelling word), with a stem
        cache of its own, never cleared: what the segment writer's batched analysis
        uses (word by word what `analyser` does to a text's words). English takes
        `known` stems (see `word_entries`); other languages ignore them."""
        if self.language == "en":
            chain = self._english
            return WordEntries(lambda folded: "en:" + chain.stem(folded), chain.stop_words,
                               known)
        entry = self._entry
        return lambda word: entry(word.lower())

    def analyse(self, text: str) -> Analysed:
        """A text's analysis (process-wide caches)."""
        if self._shared is None:
            self._shared = self.analyser()
        return self._shared(text)

    _shared: Callable[[str], Analysed] | None = None


def tongue(language: str) -> Tongue:
    """A language's tagged analysis, built once per process."""
    return _tongue(language)


@functools.cache
def _tongue(language: str) -> Tongue:
    return Tongue(language)


def word_entries(chain: Chain | Multilingual, language: str,
                 known: dict[str, str] | None = None) -> Callable[[str], WordEntry]:
    """A compiled chain word by word, in a document language (ignored by a single
    language's chain), with caches of its own: the per-word half of `analyser`, for
    the segment writer, which tokenises whole batches of texts itself
    (`token_pattern`) and keeps each distinct word's entry.

    Where the entry is a `WordEntries` (a single chain, and English), `known` is
    stems already worked out (folded word → term, as its `stems` holds them after
    a build), taken instead of calling the stemmer."""
    if isinstance(chain, Multilingual):
        return tongue(language).word_entries(known)
    return WordEntries(chain.stem, chain.stop_words, known)


class WordEntries:
    """A single chain's words as written → (terms, spelling word): lowered and
    folded, a stop word has no term, any other its stem, each stemmed once (or
    taken from `known`); `stems` holds every stem looked up, `computed` counts the
    stemmer's calls."""

    def __init__(self, stem: Callable[[str], str], stops: Collection[str],
                 known: dict[str, str] | None = None) -> None:
        self.stems = _KnownStems(stem, known or {})
        self.stops = stops

    @property
    def computed(self) -> int:
        return self.stems.computed

    def __call__(self, word: str) -> WordEntry:
        folded = word.lower().translate(accent_map)
        return ((), folded) if folded in self.stops else ((self.stems[folded],), folded)


class _KnownStems(_Stems):
    """`_Stems` that takes a word's stem from `known` when it is there."""

    def __init__(self, stem: Callable[[str], str], known: dict[str, str]) -> None:
        super().__init__(stem)
        self._known = known
        self.computed = 0

    def __missing__(self, word: str) -> str:
        found = self._known.pop(word, None)  # moved here: held once, not twice
        if found is None:
            found = self._stem(word)
            self.computed += 1
        self[word] = found
        return found


def token_pattern(chain: Chain | Multilingual) -> re.Pattern[str]:
    """What a word is for a compiled chain (every language's texts alike)."""
    return chain.tokens if isinstance(chain, Chain) else _TOKENS


_TOKENS = re.compile(TOKEN_PATTERN)


class Multilingual:
    """What `compile` makes of `MultilingualAnalyzer`: per document, its language's
    analysis (the segment writer takes it word by word, `word_entries`)."""

    def analyser(self) -> Callable[[str, str], Analysed]:
        by_language: dict[str, Callable[[str], Analysed]] = {}

        def analyse(text: str, language: str) -> Analysed:
            found = by_language.get(language)
            if found is None:
                found = by_language[language] = tongue(language).analyser()
            return found(text)

        return analyse


class MultilingualAnalyzer(Analyzer):  # type: ignore[misc]
    """The text fields' Whoosh analyzer: each text in the language `marked` in front
    of it (English when unmarked), through the same per-language steps as the segment
    writer (`word_entries`), so Whoosh's own writer (incremental updates) indexes the
    same terms."""

    def __init__(self, default: str = "en") -> None:
        self.default = default

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MultilingualAnalyzer) and other.default == self.default

    def __hash__(self) -> int:
        return hash((type(self), self.default))

    def has_morph(self) -> bool:
        return True  # stems: Whoosh keeps the spelling words apart

    def __call__(self, value: str, positions: bool = False, chars: bool = False,
                 keeporiginal: bool = False, removestops: bool = True, start_pos: int = 0,
                 start_char: int = 0, tokenize: bool = True, mode: str = "",
                 **kwargs: Any) -> Iterator[Token]:
        text, language = unmark(value)
        terms, first, words, extra = tongue(language or self.default).analyse(text)
        token = Token(positions, chars, removestops=removestops, mode=mode)
        token.stopped = False
        token.boost = 1.0
        if kwargs.get("no_morph") or kwargs.get("nomorph"):
            for word in words:
                token.text = word
                yield token
            return
        for k, term in enumerate(terms):
            token.text = term
            if positions:
                token.pos = start_pos + first + k
            yield token
        for term, pos in extra:
            token.text = term
            if positions:
                token.pos = start_pos + pos
            yield token


def multilingual_analyzer() -> MultilingualAnalyzer:
    return MultilingualAnalyzer()
