"""The languages searchapp analyses, and how each one turns a word into an index term.

Each language has an nltk Snowball stemmer (no data download), the Snowball
project's stop list (as shipped in ``whoosh.lang.stopwords``), a name in its own
words for the facet, and the elided articles to strip ("l'économie" is indexed
as "économie"). :func:`analyse_word` is the per-word step of the analysis chain:
lowercase, elision, stop word check, stem, accent folding. :func:`detect` picks
an item's language from its title and summary with the lingua detector.

English keeps the product's chain as it was: accents are folded before stemming
(accents in English text are incidental: "résumés" and "resumes" should meet),
and its stop list is Snowball's less "who". The other Snowball stemmers have
rules written with their accented letters (French "-ées", German "ä"/"ß",
Portuguese "-ção", Russian "й"), so those stem the word as typed and fold
the stem afterwards (Dutch's drops accents itself; the order makes no difference).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import re
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nltk.stem.snowball import SnowballStemmer
from whoosh.lang.stopwords import stoplists
from whoosh.support.charset import accent_map

if TYPE_CHECKING:
    from lingua import LanguageDetector

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_LANGUAGE",
    "DETECTION_THRESHOLD",
    "LANGUAGES",
    "Language",
    "analyse_word",
    "detect",
    "fold",
    "index_terms",
    "language_for_tag",
    "word_analyser",
]

DEFAULT_LANGUAGE = "en"

# Below this confidence the detector's answer is not trusted and the item is taken as
# English. Chosen on tests/data/language_titles.jsonl (bench/RESULTS.md, "Language
# detection"): the highest that turns none of the right answers on the titles there
# into English. With a summary, every right answer there scored 0.63 or more.
DETECTION_THRESHOLD = 0.2

STEM_CACHE_SIZE = 100_000


@dataclass(frozen=True)
class Language:
    """One analysed language: what the facet shows and what the analyser needs."""

    code: str  # ISO 639-1, as stored on items
    name: str  # in the language itself, for readers ("Français")
    stemmer: str  # nltk SnowballStemmer name
    stop_words: frozenset[str]
    # Whether the stemmer is given the word with its accents (then the stem is folded).
    stem_with_accents: bool = True
    # Articles and pronouns written against the next word with an apostrophe.
    elisions: frozenset[str] = frozenset()


# Whoosh's accent map, with the letters people type as two when they have no key for
# them: "Strasse" for "Straße" (the map alone gives "Strase"), "oeuvre" for "œuvre".
_FOLDS = {**accent_map, ord("ß"): "ss", ord("œ"): "oe", ord("æ"): "ae"}


def fold(text: str) -> str:
    """Accents off: "coopératives" → "cooperatives", "Straße" → "Strasse"."""
    return text.translate(_FOLDS)


# The copy of Snowball's lists in Whoosh (and PostgreSQL, and NLTK) lost French "les"
# and "ils", which the Snowball project's own list has (nltk/nltk_data issue #16).
_STOP_ADDITIONS = {"fr": frozenset({"les", "ils"})}
# "who": news readers search for the WHO (bench/RESULTS.md, relevance).
_STOP_REMOVALS = {"en": frozenset({"who"})}


def _stop_list(code: str) -> frozenset[str]:
    words = (stoplists[code] | _STOP_ADDITIONS.get(code, frozenset())) - _STOP_REMOVALS.get(
        code, frozenset())
    # Folded forms too, so "ete" typed for "été" is dropped like it.
    return frozenset(words | {fold(word) for word in words})


# Lucene's ElisionFilter article sets for French and Italian, plus Italian's
# contracted prepositions ("dell'Alleanza", "sull'energia").
_FRENCH_ELISIONS = frozenset(
    ["l", "m", "t", "qu", "n", "s", "j", "d", "c", "jusqu", "quoiqu", "lorsqu", "puisqu"])
_ITALIAN_ELISIONS = frozenset(
    ["c", "l", "all", "dall", "dell", "nell", "sull", "coll", "pell", "gl", "agl", "dagl",
     "degl", "negl", "sugl", "un", "m", "t", "s", "v", "d", "quell", "quest", "bell", "sant",
     "anch"])

_SPECS: tuple[tuple[str, str, str], ...] = (
    # code, name, nltk stemmer
    ("en", "English", "english"),
    ("fr", "Français", "french"),
    ("es", "Español", "spanish"),
    ("it", "Italiano", "italian"),
    ("de", "Deutsch", "german"),
    ("pt", "Português", "portuguese"),
    ("nl", "Nederlands", "dutch"),
    ("da", "Dansk", "danish"),
    ("sv", "Svenska", "swedish"),
    ("no", "Norsk", "norwegian"),
    ("fi", "Suomi", "finnish"),
    ("hu", "Magyar", "hungarian"),
    ("ru", "Русский", "russian"),
)

LANGUAGES: dict[str, Language] = {
    code: Language(
        code=code,
        name=name,
        stemmer=stemmer,
        stop_words=_stop_list(code),
        stem_with_accents=code != "en",
        elisions={"fr": _FRENCH_ELISIONS, "it": _ITALIAN_ELISIONS}.get(code, frozenset()),
    )
    for code, name, stemmer in _SPECS
}

_APOSTROPHE = re.compile(r"['’]")


def word_analyser(code: str) -> Callable[[str], str | None]:
    """The per-word analysis of one language, built once: a word → its term, or None.

    Raises KeyError for a language that is not in :data:`LANGUAGES`.
    """
    return _word_analyser(code)


@functools.cache
def _word_analyser(code: str) -> Callable[[str], str | None]:
    language = LANGUAGES[code]
    stem: Callable[[str], str] = SnowballStemmer(language.stemmer).stem
    stop_words = language.stop_words
    elisions = language.elisions
    with_accents = language.stem_with_accents

    @functools.lru_cache(maxsize=STEM_CACHE_SIZE)
    def analyse(word: str) -> str | None:
        word = word.lower()
        apostrophe = _APOSTROPHE.search(word) if elisions else None
        if apostrophe and word[:apostrophe.start()] in elisions and apostrophe.end() < len(word):
            word = word[apostrophe.end():]
        if word in stop_words:
            return None
        if with_accents:
            return fold(stem(word))
        return stem(word.translate(accent_map))  # the English chain as it was, ß → s included

    return analyse


def analyse_word(word: str, language: str) -> str | None:
    """The index term of one word in one language; None for a stop word."""
    return _word_analyser(language)(word)


def index_terms(word: str, language: str) -> tuple[str, ...]:
    """The terms to index for a word: its term, and the term its accentless spelling gets.

    Where a stemmer's rules need the accents, "salariés" and "salaries" stem apart
    ("salari", "salar"); indexing both lets a query typed without accents find the
    item. Empty for a stop word.
    """
    term = analyse_word(word, language)
    if term is None:
        return ()
    plain = fold(word)
    if plain == word.lower() or not LANGUAGES[language].stem_with_accents:
        return (term,)
    other = analyse_word(plain, language)
    return (term,) if other is None or other == term else (term, other)


# Codes other software uses for the languages above (BCP 47 primary subtags).
_ALIASES = {"nb": "no", "nn": "no"}
# lingua knows Norwegian as Bokmål and Nynorsk; Bokmål is what most news is written in.
_ALIAS_BACK = {"no": "nb"}


def language_for_tag(tag: str | None) -> str | None:
    """The analysed language a BCP 47 tag names ("fr-CA", "pt_BR", "NB"), or None."""
    if not tag:
        return None
    primary = re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()
    primary = _ALIASES.get(primary, primary)
    return primary if primary in LANGUAGES else None


_detector_lock = threading.Lock()
# lingua's detectors, built on first use: "all" (high-accuracy mode: 1- to 5-grams on
# short texts) and "trigrams" (its low-accuracy mode, trigrams only).
_detector_built: dict[str, LanguageDetector] = {}


def _detector(mode: str = "all") -> LanguageDetector:
    # Built on first use: the models of the 13 languages take 1–6 s and about 340 MB
    # (bench/RESULTS.md), which a process that only searches never pays; the trigram
    # models alone about 1 s and 25 MB. The lock keeps two threads from loading them
    # twice.
    with _detector_lock:
        if mode not in _detector_built:
            from lingua import IsoCode639_1, LanguageDetectorBuilder
            from lingua import Language as LinguaLanguage

            wanted = [_ALIAS_BACK.get(code, code) for code in LANGUAGES]
            languages = [LinguaLanguage.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
                         for code in wanted]
            builder = LanguageDetectorBuilder.from_languages(*languages)
            if mode == "trigrams":
                builder = builder.with_low_accuracy_mode()
            _detector_built[mode] = builder.build()
        return _detector_built[mode]


# The stop-word shortcut. A text is taken to be in the language whose stop words it
# holds most of, without asking lingua, when they are at least QUICK_LEAST words, and
# against each other language with a stop word in the text, the words only the
# winner's list has are at least QUICK_OWN and at least QUICK_MARGIN times the words
# only the other's list has. A word on both lists ("in" is English, German, Dutch and
# Italian) tells the two apart no better than no word. lingua costs about 0.6 ms of CPU
# an item (13 languages, high accuracy); this check about 0.01 ms. Chosen on
# tests/data/language_titles.jsonl (no wrong answer among its 300 titles with
# summaries; 231 of them settled, 160 by the rule before) and checked on every other
# collection at hand (bench/RESULTS.md, "Language detection: the import's cost").
QUICK_LEAST = 3
QUICK_OWN = 2
QUICK_MARGIN = 3.0

# A text the shortcut leaves is first given to lingua's trigram models (about a quarter
# of the CPU of its high-accuracy mode on short texts). English there with at least
# half the confidence (more likely than all the other languages together) is the
# answer; any other answer, or a less confident one, is asked again in the
# high-accuracy mode. On the judged titles no answer changes (the one title the
# trigrams call English wrongly, "Workers buyout" in an Italian feed, the
# high-accuracy mode calls English too); on the English collections more are right
# than with the high-accuracy mode alone (bench/RESULTS.md, "Language detection: the
# import's cost").
TRIGRAMS_ENGLISH_AT = 0.5

_WORD = re.compile(r"\w+")
# Each stop word → the languages whose list has it (as written, accents kept).
_STOP_OWNERS: dict[str, tuple[str, ...]] = {}
for _code, _language in LANGUAGES.items():
    for _word in _language.stop_words:
        _STOP_OWNERS[_word] = (*_STOP_OWNERS.get(_word, ()), _code)

# How items' languages were settled in this process: "stop words" or "lingua"; of those
# that went to lingua, "lingua, high accuracy" were asked again in that mode.
DETECTIONS: Counter[str] = Counter()


def _words(text: str) -> list[str]:
    """`_WORD`'s words of `text`, lowercased; ASCII text split by `str.split` once its
    bytes are lowercased and its other characters made spaces (the same words, in a
    fraction of the time)."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_WORDS).decode("ascii").split()
    return _WORD.findall(text.lower())


# Each ASCII byte as `_words` reads it: a letter lowercased, a digit or "_" (what `\w`
# matches) kept, anything else a space.
_ASCII_WORDS = bytes(ord(chr(c).lower()) if chr(c).isalnum() or chr(c) == "_" else ord(" ")
                     for c in range(128)) + bytes(128)

# The shortcut counts a text's stop words for all languages at once. Each stop word
# stands for an integer holding one 32-bit counter per language (the k-th of `_CODES`
# from bit 32·k on), 1 in the counter of each language whose list has the word: the
# sum of a text's stop words' integers holds every language's count (`_counts` reads
# them out). A counter would need 2**32 words in one text, over 8 GB, to run over.
_CODES = tuple(LANGUAGES)
_COUNTERS = struct.Struct(f"<{len(_CODES)}I")
_STOP_COUNTS = {word: sum(1 << 32 * _CODES.index(code) for code in codes)
                for word, codes in _STOP_OWNERS.items()}
# Per language (in `_CODES` order), the same for the words of its own list only: summed
# over a text's stop words, how many of that language's words each list has too.
_SHARED_COUNTS = tuple({word: _STOP_COUNTS[word] for word in LANGUAGES[code].stop_words}
                       for code in _CODES)


def _counts(total: int) -> tuple[int, ...]:
    """The counter of each language of `_CODES` in a sum of `_STOP_COUNTS` values."""
    return _COUNTERS.unpack(total.to_bytes(_COUNTERS.size, "little"))


def _by_stop_words(text: str) -> tuple[str, float] | None:
    """The language whose stop words clearly dominate `text`, with the winner's share
    of the words that tell it from its closest rival; None when the evidence is thin
    or close."""
    found = list(filter(_STOP_COUNTS.__contains__, _words(text)))
    if len(found) < QUICK_LEAST:
        return None
    counts = _counts(sum(map(_STOP_COUNTS.__getitem__, found)))
    hits = max(counts)
    if hits < QUICK_LEAST:
        return None
    # A tie at the top goes to lingua whatever the order: the two have as many words
    # of their own, which QUICK_MARGIN refuses.
    winner = counts.index(hits)
    shared = _counts(sum(filter(None, map(_SHARED_COUNTS[winner].get, found))))
    share = 1.0
    for other, (other_hits, both) in enumerate(zip(counts, shared, strict=True)):
        if not other_hits or other == winner:
            continue
        own, theirs = hits - both, other_hits - both
        if own < QUICK_OWN or own < QUICK_MARGIN * theirs:
            return None
        if (part := own / (own + theirs)) < share:
            share = part
    return _CODES[winner], share


def release_detector() -> None:
    """Let lingua's models go (about 340 MB) once a batch of items has been read: an
    import's rebuild, which follows, needs the memory more. The next `detect` that
    needs lingua loads them again (1–6 s).

    The C library keeps most of the memory the models held unless told to give it back
    (`_give_back_memory`): in an import, the importing process stayed at about the
    size it had with the models loaded through the whole rebuild."""
    with _detector_lock:
        if not _detector_built:
            return
        while _detector_built:
            # lingua's stub leaves out this method's `-> None`
            _detector_built.popitem()[1].unload_language_models()  # type: ignore[no-untyped-call]
        _give_back_memory()


def _give_back_memory() -> bool:
    """Ask glibc to return the free memory at the top of the heap and in its arenas to
    the system (`malloc_trim`); False where the C library has no such call (it then
    keeps it for the process's own later use, as before)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        log.info("this C library cannot give freed memory back (no malloc_trim):"
                 " lingua's models' memory stays with the process")
        return False
    trim(0)
    return True


def _lingua(text: str, mode: str) -> tuple[str, float]:
    top = _detector(mode).compute_language_confidence_values(text)[0]
    code = top.language.iso_code_639_1.name.lower()
    return _ALIASES.get(code, code), float(top.value)


def detect(title: str, summary: str = "") -> tuple[str, float]:
    """The language of an item from its title and summary, with the confidence.

    A text dominated by one language's stop words is settled by them
    (`_by_stop_words`); any other goes to the lingua detector: its trigram models
    first, which settle a confident English answer (`TRIGRAMS_ENGLISH_AT`), then
    its high-accuracy mode. Falls back to English (with the low confidence) when
    the detector is unsure or the text has no letters. `DETECTIONS` counts which
    way each item went.
    """
    text = f"{title.strip()}\n{summary.strip()}".strip()
    if not any(ch.isalpha() for ch in text):
        return DEFAULT_LANGUAGE, 0.0
    quick = _by_stop_words(text)
    if quick is not None:
        DETECTIONS["stop words"] += 1
        return quick
    DETECTIONS["lingua"] += 1
    code, confidence = _lingua(text, "trigrams")
    if code == DEFAULT_LANGUAGE and confidence >= TRIGRAMS_ENGLISH_AT:
        return code, confidence
    DETECTIONS["lingua, high accuracy"] += 1
    code, confidence = _lingua(text, "all")
    if confidence < DETECTION_THRESHOLD or code not in LANGUAGES:
        return DEFAULT_LANGUAGE, confidence
    return code, confidence
