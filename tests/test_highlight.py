"""Highlights mark exactly the words the analyzer would match, however they are found."""

from __future__ import annotations

import random
import re
from html import escape

import pytest
from conftest import SAMPLES
from nltk.stem.snowball import SnowballStemmer
from whoosh.support.charset import accent_map

from searchapp import importers
from searchapp.analysis import TOKEN_PATTERN, analyzer, compile, terms, tongue
from searchapp.highlight import _NOT_PLAIN, PLAIN_PUNCTUATION, head, highlight, spans

TEXTS = [
    "Özge Berber-Agtaş won’t say the co-op’s “news” — ELECTIONS, elected, electing",
    "Yearly yields: dying, lying, tying, skies, skis, news, innings, proceeded, ugly",
    "The the THE a of and; １２３ ＡＢＣ naïve café ünïcödé",
    # Where a word stands as a whole token: apostrophes join the parts of one word.
    "aa'bb aa bb 'aa' bb'aa aa''bb aa’ aa’bb_cc aa_ _aa 1aa aa1 aa's's aa'",
    ("cooperative cooperatives co-operative's cooperative'' 'cooperative' cooperative’s’"
     " xcooperative"),
    "",
]


def by_the_chain(text: str, wanted: set[str]) -> list[tuple[int, int]]:
    return [(t.startchar, t.endchar) for t in analyzer()(text, chars=True) if t.text in wanted]


def sample_texts() -> list[str]:
    parsed = importers.collect([SAMPLES])
    return [f"{r.item.title} {r.item.summary}" for p in parsed for r in p.records] + TEXTS


def test_spans_are_the_chains_spans() -> None:
    assert compile().keeps_initial  # the shortcut below is taken
    for text in sample_texts():
        vocabulary = sorted(set(terms(text)))
        for k in range(0, len(vocabulary), 3):
            wanted = set(vocabulary[k:k + 3]) | {"elect", "year", "die"}
            tagged = {f"en:{t}" for t in wanted}
            assert spans(text, tagged) == by_the_chain(text, wanted), (text, wanted)
            # The same words wanted in another language mark nothing in English text.
            assert spans(text, {f"fr:{t}" for t in wanted}) == []
        assert spans(text, set()) == []


def test_english_stems_keep_the_first_character() -> None:
    # What the fast path relies on to skip stemming words that cannot match.
    stem = SnowballStemmer("english").stem
    words = {w.lower() for text in sample_texts() for w in re.findall(TOKEN_PATTERN, text)}
    words |= {"y", "yy", "ying", "yearly", "'tis", "ıstanbul", "éclair", "1990s", "_x"}
    assert all(stem(w)[:1] == w[:1] for w in words if w[:1] != "'")


def test_an_english_term_begins_as_its_word_does() -> None:
    # The stronger form the highlighter uses (`head`): the first two letters, "y" read
    # as "i"; checked on the samples, the Snowball special words and the rules' edges
    # (also on the 55,000 words of bench's 100k corpus, with no exception, #13).
    chain = compile()
    words = {w for text in sample_texts() for w in re.findall(TOKEN_PATTERN, text)}
    words |= {"dying", "lying", "tying", "skies", "skis", "idly", "gently", "ugly", "early",
              "only", "singly", "news", "innings", "proceeded", "cry", "cries", "ties", "by",
              "ay", "aing", "aed", "eed", "bye", "c's", "A's", "7's", "yearly", "y", "yy",
              "Yves", "generously", "communism", "arsenal", "œuvre", "naïvely", "O’Brien",
              "d’Souza", "o'brien", "l’"}
    for word in words:
        folded = chain.fold(word)
        if folded is None:
            continue
        term = chain.stem(folded)
        assert head(term) == head(folded) or (len(term) < 2 and term == head(folded)[:1]), \
            (word, term)
    assert head("dying") == head("die") and head("c's")[:1] == "c"
    assert highlight("Dying, lying and tying", {"en:die", "en:lie"}) == \
        "<mark>Dying</mark>, <mark>lying</mark> and tying"
    assert highlight("The C's and the c", {"en:c"}) == \
        "The <mark>C&#x27;s</mark> and the <mark>c</mark>"
    # nltk's stemmer reads a typographic apostrophe as "'": "O’Brien" is "o'brien".
    assert highlight("O’Brien, O'Brien and the O’Briens", {"en:o'brien"}) == (
        "<mark>O’Brien</mark>, <mark>O&#x27;Brien</mark> and the <mark>O’Briens</mark>")


def test_marks_are_placed_on_the_text_as_written() -> None:
    text = "Elections: <b>elected</b> & ELECTING"
    assert highlight(text, {"en:elect"}) == ("<mark>Elections</mark>: &lt;b&gt;<mark>elected"
                                          "</mark>&lt;/b&gt; &amp; <mark>ELECTING</mark>")


def whole_then_cut(text: str, wanted: set[str], fragment: int | None,
                   language: str = "en") -> str:
    """Highlighting as it was done before a fragment stopped the analysis (#14): every
    match found first, then the fragment cut around the first one."""
    from html import escape

    from searchapp.highlight import _LEAD, _word_end, _word_start

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
        out += [escape(text[pos:a]), f"<mark>{escape(text[a:b])}</mark>"]
        pos = b
    out.append(escape(text[pos:end]))
    if end < len(text):
        out.append("…")
    return "".join(out)


def test_a_fragment_is_the_same_as_cutting_the_whole_highlighted_text() -> None:
    texts = sample_texts()
    long = " ".join(texts[:12])  # matches far from the start, and near the end
    for text in [*texts, long, "Le vote des coopératives, " * 40]:
        vocabulary = sorted(set(terms(text)))
        choices = [set(vocabulary[k:k + 2]) for k in range(0, len(vocabulary), 7)]
        for wanted in [*choices[:12], choices[-1] if choices else set(), {"nothing"}]:
            tagged = {f"en:{t}" for t in wanted}
            for fragment in (None, 20, 80, 240, len(text)):
                assert highlight(text, tagged, fragment=fragment) == whole_then_cut(
                    text, tagged, fragment), (text[:60], wanted, fragment)
            french = {f"fr:{t}" for t in wanted} | {"fr:vot", "fr:cooper"}
            assert highlight(text, french, fragment=80, language="fr") == whole_then_cut(
                text, french, 80, "fr")


def test_spans_in_other_languages_are_the_tokens_whose_terms_are_wanted() -> None:
    texts = {
        "fr": "L’économie sociale: l'économie des coopératives, économies d’énergie; "
              "aujourd'hui l'“économie” d'économie'",
        "it": "dell'Alleanza dell’economia sull'energia; Alleanza' alleanze, l'alleanza",
        "de": "Energiegenossenschaften und Genossenschaft; Straße, Strasse, Genossenschafts_x",
    }
    for language, text in texts.items():
        terms_of = tongue(language).terms
        tokens = [(m.span(), m.group()) for m in re.finditer(TOKEN_PATTERN, text)]
        every = sorted({t for _, word in tokens for t in terms_of(word)})
        for k in range(len(every)):
            wanted = set(every[k:k + 2])
            expected = [span for span, word in tokens if wanted & set(terms_of(word))]
            assert expected and spans(text, wanted, language=language) == expected, wanted
        assert spans(text, {"en:econom"}, language=language) == []


def test_a_word_passed_over_once_is_marked_when_a_later_search_wants_it() -> None:
    # The first search wants no term beginning as these words do: they are kept unstemmed
    # (their heads only), then stemmed when a search wants one of them.
    text = "Quokkas quibbled, quietly; a quokka's quibble"
    assert highlight(text, {"en:elect"}) == escape(text)
    assert highlight(text, {"en:quokka"}) == (
        "<mark>Quokkas</mark> quibbled, quietly; a <mark>quokka&#x27;s</mark> quibble")
    assert highlight(text, {"en:quibbl"}) == (
        "Quokkas <mark>quibbled</mark>, quietly; a quokka&#x27;s <mark>quibble</mark>")
    # A one-letter term is wanted: every word beginning with its letter is looked at.
    assert highlight("Q quietly", {"en:q"}) == "<mark>Q</mark> quietly"


def test_marks_in_generated_texts_are_the_chains() -> None:
    # Texts made of the pieces where tokens, heads and stems are tricky: apostrophes
    # inside, between and around words, "y" read as "i", one-letter terms, underscores,
    # digits, case, stop words, accents and typographic punctuation (texts in ASCII and
    # typographic punctuation take the highlighter's regex path, the others its
    # word-by-word path).
    pieces = ["co", "op", "coop", "y", "i", "ie", "yi", "dying", "skies", "'", "''", " ",
              "_", "1", "x", "C", "Y", "I", "-", "s", "e", "ly", "ed", "ing", "\n", "the",
              "O'", "don't", "it's", "'s", "é", "’", "Éc", "c’", "ﬁ", "“", "”", "—", "…",
              "\u00a0", "O’"]
    rng = random.Random(14)
    checked = {"plain": 0, "other": 0}
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 25)))
        chained = [(t.text, t.startchar, t.endchar) for t in analyzer()(text, chars=True)]
        vocabulary = sorted({t for t, _, _ in chained})
        if not vocabulary:
            continue
        wanted = set(rng.sample(vocabulary, min(len(vocabulary), rng.randint(1, 2))))
        if rng.random() < 0.3:
            wanted.add(rng.choice(["c", "i", "y", "co", "coop", "die", "x", "1", "s"]))
        expected = [(a, b) for t, a, b in chained if t in wanted]
        assert spans(text, {f"en:{t}" for t in wanted}) == expected, (text, wanted)
        checked["other" if _NOT_PLAIN.search(text) else "plain"] += 1
    assert min(checked.values()) > 500


def test_the_plain_punctuation_keeps_tokens_and_folds_to_itself() -> None:
    # What lets a text with typographic punctuation take the regex path (`_plain_spans`).
    chain = compile()
    for char in PLAIN_PUNCTUATION:
        assert not re.match(r"\w", char) and char.lower() == char, char
        assert char.translate(accent_map) == char, char
    text = "The co‑op’s “elections” — O’Brien… elected\u00a0again"
    assert not _NOT_PLAIN.search(text.replace("‑", "-"))
    assert highlight(text.replace("‑", "-"), {"en:elect", "en:o'brien", "en:co"}) == (
        "The <mark>co</mark>-op’s “<mark>elections</mark>” — <mark>O’Brien</mark>…"
        " <mark>elected</mark>\u00a0again")
    assert chain.fold("O’Brien") == "o’brien"


def test_the_regexes_kept_for_heads_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Queries choose the heads (any script): the regexes kept for them stay bounded,
    # and a head whose regex was let go is compiled again, marking the same.
    from searchapp import highlight as module

    monkeypatch.setattr(module, "_PATTERNS", {})
    monkeypatch.setattr(module, "_PATTERN_LIMIT", 8)
    words = [f"{a}{b}x" for a in "bcdfgh" for b in "aeou"]  # 24 heads
    text = " ".join(words)
    for word in words + words[:3]:
        assert highlight(text, {f"en:{word}"}).count("<mark>") == 1
        assert len(module._PATTERNS) <= 8
