"""Per-language analysis and language detection (searchapp.languages).

The items are news sentences written for these tests; each query word is a
different inflected form of one of the item's words (plural for singular,
feminine for masculine, another tense), typed with or without accents. A query
word finds the item when its term is one of the terms the item is indexed under.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.stem.snowball import SnowballStemmer
from whoosh.lang.stopwords import stoplists

from searchapp import analysis, languages
from searchapp.languages import LANGUAGES, analyse_word, detect, index_terms, language_for_tag

TITLES = Path(__file__).parent / "data" / "language_titles.jsonl"
WORDS = re.compile(analysis.TOKEN_PATTERN)


def item_terms(text: str, language: str) -> set[str]:
    return {term for word in WORDS.findall(text) for term in index_terms(word, language)}


def query_terms(text: str, language: str) -> list[str]:
    return [term for word in WORDS.findall(text) if (term := analyse_word(word, language))]


def finds(query: str, text: str, language: str) -> bool:
    wanted = query_terms(query, language)
    return bool(wanted) and set(wanted) <= item_terms(text, language)


FR_SCOP = "Les coopératives sociales ont créé 300 emplois en Bretagne"
FR_ELUE = "Une salariée élue présidente de la Scop"
FR_REPRISE = "Les ouvriers reprennent l'entreprise familiale"
FR_ESS = "Économie sociale : les régions s'engagent"
ES_CREADO = "La cooperativa ha creado veinte puestos de trabajo"
ES_JOVENES = "Las trabajadoras jóvenes lideran la economía social"
ES_SEQUIA = "Once cooperativas agrarias frente a la sequía"
IT_RIFORMA = "Le cooperative chiedono una riforma degli appalti"
IT_AZIENDA = "I lavoratori hanno salvato l'azienda e la città"
IT_BORGHI = "Nuove cooperative sociali nei borghi"
IT_ALLEANZA = "Comunicato stampa dell'Alleanza delle Cooperative"
DE_GRUENDEN = "Genossenschaften gründen sich wieder häufiger"
DE_ENERGIE = "Energiegenossenschaften investieren in Windparks"
DE_AERZTE = "Die Ärzte der Gesundheitsgenossenschaft an der Straße"
PT_SAUDE = "As cooperativas de saúde ampliam o atendimento"
PT_CRIARAM = "Trabalhadoras criaram uma nova ação coletiva"
PT_FAMILIAS = "Famílias cooperadas e economia solidária"

FOUND = [
    # French: plural/singular, feminine/masculine, participles, elision.
    ("fr", FR_SCOP, "coopérative sociale"),
    ("fr", FR_SCOP, "cooperative"),
    ("fr", FR_SCOP, "créée"),
    ("fr", FR_SCOP, "creer"),
    ("fr", FR_ELUE, "salariés"),
    ("fr", FR_ELUE, "président"),
    ("fr", FR_ELUE, "president"),
    ("fr", FR_ELUE, "élu"),
    ("fr", FR_REPRISE, "entreprises"),
    ("fr", FR_REPRISE, "ouvrière"),
    ("fr", FR_REPRISE, "familiaux"),
    ("fr", FR_ESS, "économique"),
    ("fr", FR_ESS, "economie"),
    ("fr", FR_ESS, "région"),
    # Spanish
    ("es", ES_CREADO, "cooperativas"),
    ("es", ES_CREADO, "crear"),
    ("es", ES_CREADO, "crearon"),
    ("es", ES_CREADO, "trabajos"),
    ("es", ES_JOVENES, "trabajador"),
    ("es", ES_JOVENES, "jovenes"),
    ("es", ES_JOVENES, "economia"),
    ("es", ES_JOVENES, "económica"),
    ("es", ES_JOVENES, "sociales"),
    ("es", ES_JOVENES, "liderar"),
    ("es", ES_SEQUIA, "sequias"),
    ("es", ES_SEQUIA, "agraria"),
    ("es", ES_SEQUIA, "once"),  # "eleven": an English stop word, a Spanish word
    # Italian
    ("it", IT_RIFORMA, "riforme"),
    ("it", IT_RIFORMA, "cooperativa"),
    ("it", IT_RIFORMA, "appalto"),
    ("it", IT_RIFORMA, "chiede"),
    ("it", IT_AZIENDA, "lavoratrici"),
    ("it", IT_AZIENDA, "aziende"),
    ("it", IT_AZIENDA, "citta"),
    ("it", IT_AZIENDA, "salvare"),
    ("it", IT_ALLEANZA, "alleanza"),
    ("it", IT_BORGHI, "nuova"),
    ("it", IT_BORGHI, "sociale"),
    ("it", IT_BORGHI, "borgo"),
    # German: the stemmer sees umlauts and ß as typed; compounds stem as a whole.
    ("de", DE_GRUENDEN, "Genossenschaft"),
    ("de", DE_GRUENDEN, "grunden"),
    ("de", DE_GRUENDEN, "häufig"),
    ("de", DE_GRUENDEN, "haufig"),
    ("de", DE_ENERGIE, "Energiegenossenschaft"),
    ("de", DE_ENERGIE, "Windpark"),
    ("de", DE_AERZTE, "Arzt"),
    ("de", DE_AERZTE, "Ärzten"),
    ("de", DE_AERZTE, "Strasse"),
    ("de", DE_AERZTE, "Gesundheitsgenossenschaften"),
    # Portuguese
    ("pt", PT_SAUDE, "cooperativa"),
    ("pt", PT_SAUDE, "saude"),
    ("pt", PT_SAUDE, "ampliar"),
    ("pt", PT_SAUDE, "atendimentos"),
    ("pt", PT_CRIARAM, "trabalhador"),
    ("pt", PT_CRIARAM, "criou"),
    ("pt", PT_CRIARAM, "coletivo"),
    ("pt", PT_FAMILIAS, "família"),
    ("pt", PT_FAMILIAS, "familia"),
    ("pt", PT_FAMILIAS, "cooperado"),
    ("pt", PT_FAMILIAS, "econômica"),
]


@pytest.mark.parametrize(("language", "text", "query"), FOUND)
def test_other_inflected_forms_find_the_item(language: str, text: str, query: str) -> None:
    assert finds(query, text, language), (
        f"{query!r} → {query_terms(query, language)}, item has {sorted(item_terms(text, language))}")


# Where the English chain the product runs today would miss (the issue's own examples
# among them): the item's language finds these, English analysis does not.
ENGLISH_MISSES = [
    ("de", DE_GRUENDEN, "Genossenschaft"),
    ("de", DE_ENERGIE, "Energiegenossenschaft"),
    ("it", IT_RIFORMA, "riforme"),
    ("es", ES_CREADO, "crear"),
    ("fr", FR_SCOP, "créée"),
    ("fr", FR_ELUE, "salariés"),
    ("fr", FR_REPRISE, "entreprises"),
    ("it", IT_AZIENDA, "aziende"),
    ("it", IT_ALLEANZA, "alleanza"),
    ("pt", PT_CRIARAM, "criou"),
    ("de", DE_AERZTE, "Ärzten"),
]


@pytest.mark.parametrize(("language", "text", "query"), ENGLISH_MISSES)
def test_the_items_language_finds_what_english_analysis_misses(
        language: str, text: str, query: str) -> None:
    english_item = set(analysis.terms(text))
    assert not set(analysis.terms(query)) <= english_item
    assert finds(query, text, language)


def test_english_stop_words_are_words_elsewhere() -> None:
    assert analysis.terms("once") == []  # English drops it
    assert finds("once", ES_SEQUIA, "es")  # Spanish "eleven"


def test_accentless_query_needs_the_items_second_term() -> None:
    # "economía" stems to "econom", "economia" (typed without the accent) to "economi".
    assert analyse_word("economía", "es") == "econom"
    assert analyse_word("economia", "es") == "economi"
    assert index_terms("economía", "es") == ("econom", "economi")
    assert finds("economia", ES_JOVENES, "es")


def test_letters_typed_as_two() -> None:
    assert index_terms("Schließung", "de") == ("schliessung",)
    assert finds("Schliessung", "Nach der Schließung des Supermarkts", "de")
    assert finds("oeuvre", "Une œuvre collective", "fr")


def test_words_without_accents_index_one_term() -> None:
    assert index_terms("cooperativa", "es") == ("cooper",)
    assert index_terms("Genossenschaften", "de") == ("genossenschaft",)
    assert index_terms("les", "fr") == ()


def test_stop_words_are_the_languages_own() -> None:
    french = query_terms("Les ouvriers et les ouvrières de la coopérative", "fr")
    assert french == ["ouvri", "ouvri", "cooper"]
    # English analysis keeps the French articles.
    assert analysis.terms("Les ouvriers de la coopérative") == ["les", "ouvrier", "de", "la", "cooper"]
    # A stop word typed without its accent is still a stop word.
    assert analyse_word("été", "fr") is None
    assert analyse_word("ete", "fr") is None
    assert analyse_word("für", "de") is None
    assert analyse_word("fur", "de") is None


def test_elided_articles_are_stripped() -> None:
    assert analyse_word("l'économie", "fr") == analyse_word("économie", "fr") == "econom"
    assert analyse_word("qu’il", "fr") is None  # "il" is a stop word
    assert analyse_word("dell'Alleanza", "it") == analyse_word("Alleanza", "it")
    assert analyse_word("un'impresa", "it") == analyse_word("imprese", "it")
    # Not an article: the word stays whole, as English keeps "world's".
    assert analyse_word("aujourd'hui", "fr") == "aujourd'hui"


def test_english_is_the_products_chain_unchanged() -> None:
    samples = Path(__file__).parent.parent / "data" / "samples"
    text = "\n".join(path.read_text(encoding="utf-8") for path in sorted(samples.glob("*.txt")))
    text += "\nRésumés, cafés and the WHO’s world-wide naïve coöperation"
    ours = [term for word in WORDS.findall(text) if (term := analyse_word(word, "en"))]
    assert len(ours) > 500
    assert ours == analysis.terms(text)
    assert LANGUAGES["en"].stop_words == analysis.STOP_WORDS


def test_stop_lists_are_snowballs() -> None:
    for code, language in LANGUAGES.items():
        original = stoplists[code] - ({"who"} if code == "en" else set())
        assert original <= language.stop_words
        assert language.stop_words - original <= {"les", "ils"} | {
            languages.fold(word) for word in original}
        assert {languages.fold(word) for word in language.stop_words} <= language.stop_words
        assert language.stemmer in SnowballStemmer.languages


def test_every_snowball_stemmer_with_a_stop_list_is_supported() -> None:
    with_stop_lists = {code for code in stoplists if code != "tr"}  # nltk has no Turkish stemmer
    assert set(LANGUAGES) == with_stop_lists
    assert {language.name for language in LANGUAGES.values()} >= {
        "English", "Français", "Español", "Italiano", "Deutsch", "Português"}


@pytest.mark.parametrize(("language", "sentence", "other_form"), [
    ("nl", "Werknemers nemen hun bedrijf over", "werknemer"),
    ("sv", "Kooperativen i Sverige växer", "kooperativ"),
    ("da", "Andelsselskaber i Danmark vokser", "andelsselskab"),
    ("no", "Samvirkene i Norge vokser raskt", "samvirke"),
    ("fi", "Työntekijät perustavat osuuskunnan", "tyontekija"),
    ("hu", "A szövetkezetek száma nő", "szövetkezetnek"),
    ("ru", "Кооперативы в России растут", "кооперативов"),
])
def test_the_other_snowball_languages(language: str, sentence: str, other_form: str) -> None:
    assert detect(sentence)[0] == language
    assert finds(other_form, sentence, language)


def test_unknown_language_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        analyse_word("cooperativa", "xx")


@pytest.mark.parametrize(("tag", "code"), [
    ("fr", "fr"), ("fr-CA", "fr"), ("pt_BR", "pt"), ("EN-gb", "en"), ("nb", "no"),
    ("nn-NO", "no"), (" de ", "de"), ("tr", None), ("x-klingon", None), ("", None), (None, None),
])
def test_language_tags(tag: str | None, code: str | None) -> None:
    assert language_for_tag(tag) == code


def _titles() -> list[dict[str, str]]:
    with TITLES.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def test_detector_on_short_titles() -> None:
    items = _titles()
    assert len(items) == 300
    right = sum(detect(item["title"])[0] == item["language"] for item in items)
    # Measured with bench/language_detection.py (bench/RESULTS.md): 295 of 300.
    assert right >= 295


def test_detector_on_title_and_summary() -> None:
    items = _titles()
    right = sum(detect(item["title"], item["summary"])[0] == item["language"] for item in items)
    assert right == 300


def test_detector_falls_back_to_english() -> None:
    assert detect("") == ("en", 0.0)
    assert detect("2025 — 1/2", "") == ("en", 0.0)
    # German "dates", an Italian plural too: too unsure to say.
    language, confidence = detect("Termine")
    assert language == "en"
    assert 0 < confidence < languages.DETECTION_THRESHOLD
    assert detect("Genossenschaften gründen sich wieder häufiger")[0] == "de"


def test_the_detector_loads_on_first_use_only() -> None:
    # A process that only searches must not pay for the models (~340 MB).
    code = ("import sys, searchapp.languages as l; l.analyse_word('Genossenschaften', 'de'); "
            "print('lingua' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_each_language_is_built_once() -> None:
    assert languages.word_analyser("fr") is languages.word_analyser("fr")
    assert languages.word_analyser("fr") is not languages.word_analyser("it")


def test_threads_share_one_detector() -> None:
    from concurrent.futures import ThreadPoolExecutor

    titles = ["Les Scop ont créé 3 000 emplois", "Genossenschaften gründen sich",
              "Cooperativas de vivienda", "Le cooperative sociali firmano il contratto"] * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = [code for code, _ in pool.map(detect, titles)]
    assert found == ["fr", "de", "es", "it"] * 4
    assert languages._detector() is languages._detector()


def test_stop_words_settle_clear_texts_without_lingua() -> None:
    # A long text dominated by one language's stop words never loads lingua's models.
    code = ("import sys, searchapp.languages as l; "
            "print(l.detect('Worker cooperatives weather the crisis', 'A survey of the members"
            " of the federation finds that most of them kept their staff through the winter')[0],"
            " 'lingua' in sys.modules, dict(l.DETECTIONS))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "en False {'stop words': 1}"


def test_the_stop_word_shortcut_agrees_with_the_right_answers() -> None:
    items = _titles()
    taken = 0
    for item in items:
        quick = languages._by_stop_words(f"{item['title']}\n{item['summary']}")
        if quick is not None:
            taken += 1
            assert quick[0] == item["language"], item
            assert 3 / 4 <= quick[1] <= 1
    # Measured: 231 of the 300 (160 before only the words one list has counted against
    # the winner); the rest go to lingua.
    assert taken >= 220


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)) | st.text())
def test_ascii_text_splits_into_the_words_the_pattern_finds(text: str) -> None:
    # The shortcut splits ASCII text with str.split (faster); the words are the pattern's.
    assert languages._words(text) == re.findall(r"\w+", text.lower())


def _by_stop_words_plainly(text: str) -> tuple[str, float] | None:
    """The shortcut's rule written word by word (as it was before it counted all
    languages in one sum): what `_by_stop_words` must answer, to the last bit."""
    owners: dict[str, set[str]] = {}
    for code, language in LANGUAGES.items():
        for word in language.stop_words:
            owners.setdefault(word, set()).add(code)
    found = Counter(w for w in re.findall(r"\w+", text.lower()) if w in owners)
    counts = Counter(code for word, n in found.items() for code in owners[word] for _ in range(n))
    if not counts:
        return None
    code, hits = max(counts.items(), key=lambda pair: pair[1])
    if hits < languages.QUICK_LEAST:
        return None
    share = 1.0
    for other, other_hits in counts.items():
        if other == code:
            continue
        both = sum(n for word, n in found.items() if {code, other} <= owners[word])
        own, theirs = hits - both, other_hits - both
        if own < languages.QUICK_OWN or own < languages.QUICK_MARGIN * theirs:
            return None
        share = min(share, own / (own + theirs))
    return code, share


_MIXED_WORDS = st.sampled_from(sorted({w for language in LANGUAGES.values()
                                       for w in language.stop_words}))


@settings(max_examples=500, deadline=None)
@given(st.lists(_MIXED_WORDS | st.sampled_from(["Cooperative", "Straße", "2024", "ÉTÉ", "_"])
                | st.text(max_size=8), max_size=60),
       st.sampled_from([" ", ", ", "\n", "'", " - "]), st.booleans())
def test_the_shortcut_counts_as_the_rule_says(words: list[str], glue: str, upper: bool) -> None:
    # Mixtures of every list's stop words put the margins to work as real news rarely
    # does; the languages' counts, the winner and its share must be the rule's.
    text = glue.join(w.upper() if upper else w for w in words)
    assert languages._by_stop_words(text) == _by_stop_words_plainly(text)


@pytest.mark.parametrize("text", [
    "Cooperatives in the news",  # too few stop words to say
    # Spanish and Portuguese share "de", "a", "que": close counts go to lingua.
    "de la que a de los que da",
])
def test_thin_or_close_evidence_goes_to_lingua(text: str) -> None:
    assert languages._by_stop_words(text) is None
    before = languages.DETECTIONS["lingua"]
    detect(text)
    assert languages.DETECTIONS["lingua"] == before + 1


def test_stop_words_both_languages_have_do_not_tell_them_apart() -> None:
    # "in" and "a" are English, Italian, German and Dutch stop words: only the words a
    # single list has count against the winner (the old rule, 7 against 4, gave up).
    text = "Sales of the cooperative in Turin fell in October after a strike in September"
    assert languages._by_stop_words(text) == ("en", 1.0)
    # One word of its own is too few, however many shared ones there are.
    assert languages._by_stop_words("Auto sales in Italy fell in October, after a rise") is None


@pytest.mark.parametrize(("text", "language", "asked_again"), [
    # Confidently English on lingua's trigrams: settled there.
    ("Worker cooperatives weather the energy crisis", "en", 0),
    ("Workers buyout", "en", 0),
    # Anything else is asked again in lingua's high-accuracy mode.
    ("Genossenschaften wachsen", "de", 1),
    ("Legacoop reçue à Lyon", "fr", 1),
    ("Termine", "en", 1),  # unsure there too (under DETECTION_THRESHOLD): English
])
def test_lingua_trigrams_settle_confident_english(text: str, language: str,
                                                  asked_again: int) -> None:
    before = Counter(languages.DETECTIONS)
    assert detect(text)[0] == language
    done = languages.DETECTIONS - before
    assert done["lingua"] == 1
    assert done["lingua, high accuracy"] == asked_again


def test_an_import_says_how_languages_were_detected(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from searchapp import operations
    from searchapp.config import Settings

    records = [{"id": "a", "organisation": "CECOP", "title": "Cooperatives and the crisis",
                "summary": "Most of the members of the federation said that they had kept all"
                           " of their staff through the winter."},
               {"id": "b", "organisation": "CECOP", "title": "Genossenschaften wachsen"}]
    data = tmp_path / "items.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    settings = Settings(catalog=tmp_path / "catalog.sqlite3", index_dir=tmp_path / "index")
    with caplog.at_level("INFO", logger="searchapp.operations"):
        operations.import_paths(settings, [data])
    assert ("languages detected: 1 by their stop words, 1 by lingua (1 of them in its"
            " high-accuracy mode)") in caplog.text
    # A small import keeps lingua's models for the next one in the same process.
    assert languages._detector_built != {}
    # A big one (here: lowered to 2 items) lets them go before the catalog and index
    # are written, as the rebuild that follows needs the memory.
    monkeypatch.setattr(operations, "RELEASE_MODELS_FROM", 2)
    operations.import_paths(settings, [data])
    assert languages._detector_built == {}
    assert detect("Genossenschaften wachsen")[0] == "de"  # and load again when needed


def test_the_models_memory_goes_back_to_the_system() -> None:
    # Resident memory of a fresh process before lingua's models are loaded, with them,
    # and after release_detector: most of what they took is given back (glibc kept a
    # third of it before malloc_trim was called; an import's rebuild needs it).
    code = ("import os, lingua, searchapp.languages as l\n"
            "def rss():\n"
            "    status = open(f'/proc/{os.getpid()}/status').read()\n"
            "    return int(status.split('VmRSS:')[1].split()[0])\n"
            "base = rss(); l.detect('Genossenschaften wachsen'); loaded = rss()\n"
            "l.release_detector(); print(base, loaded, rss(), l._give_back_memory())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    base, loaded, released, trims = done.stdout.split()
    assert trims == "True"  # glibc
    assert int(loaded) - int(base) > 100_000  # kB: the models were loaded
    assert int(released) - int(base) <= (int(loaded) - int(base)) / 4


def test_imports_one_after_another_detect_alike_after_the_models_are_given_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A big import gives the detector's models back once it has read its files
    # (languages.release_detector, before storing and indexing); the next import in the
    # same process (a refresh loop) loads them again and detects as before.
    from searchapp import operations
    from searchapp.catalog import Catalog
    from searchapp.config import Settings

    settings = Settings(catalog=tmp_path / "catalog.sqlite3", index_dir=tmp_path / "index")
    monkeypatch.setattr(operations, "RELEASE_MODELS_FROM", 1)  # every import lets them go
    for k, title in enumerate(["Genossenschaften wachsen", "Coopératives agricoles unies"]):
        data = tmp_path / f"items{k}.jsonl"
        data.write_text(json.dumps({"id": f"i{k}", "organisation": "CECOP", "title": title}),
                        encoding="utf-8")
        before = languages.DETECTIONS["lingua"]
        operations.import_paths(settings, [data])
        assert languages.DETECTIONS["lingua"] == before + 1
    with Catalog(settings.catalog) as catalog:
        found = {item.id: item.language for item in catalog.iter_items()}
    assert found == {"i0": "de", "i1": "fr"}
