from __future__ import annotations

import pickle

import pytest
from whoosh.analysis import LowercaseFilter, RegexTokenizer

from searchapp import analysis
from searchapp.analysis import (
    AnalysisError,
    Multilingual,
    Recipe,
    chain_for,
    compile,
    make_analyzer,
    marked,
    terms,
)
from searchapp.schema import schema


def test_stems_and_drops_stop_words() -> None:
    assert terms("The Elections of the elected") == ["elect", "elect"]
    assert terms("cooperatives cooperative") == ["cooper", "cooper"]


def test_folds_accents_and_case() -> None:
    assert terms("Özge Berber-Agtaş") == terms("ozge berber-agtas")
    assert terms("coopératives") == terms("cooperatives")


def test_keeps_possessives_with_their_word() -> None:
    assert terms("world’s world's") == ["world", "world"]


def test_analyzer_survives_pickling_with_a_working_stemmer() -> None:
    analyzer = pickle.loads(pickle.dumps(make_analyzer()))
    assert [t.text for t in analyzer("refugees elected")] == ["refuge", "elect"]
    assert analyzer == make_analyzer()


def test_the_products_analyzer_compiles_and_agrees_with_itself() -> None:
    chain = compile()
    # What the writer and reader use: each text in its language, terms tagged with it.
    assert isinstance(chain_for(schema()["title"].analyzer), Multilingual)
    assert isinstance(chain_for(pickle.loads(pickle.dumps(schema()))["summary"].analyzer),
                      Multilingual)
    product = schema()["title"].analyzer
    english = Multilingual().analyser()
    for text in ("The Elections of the elected", "Özge Berber-Agtaş won’t say co-op’s",
                 "a of the and", ""):
        stems, first, _ = chain.analyse(text)
        expected = [(t.text, t.pos) for t in make_analyzer()(text, positions=True)]
        assert [(s, first + k) for k, s in enumerate(stems)] == expected
        assert [t for w in chain.tokens.findall(text) if (t := chain.term(w))] == terms(text)
        # English through the product's analyzer: the same terms, tagged "en:".
        tagged = [(f"en:{s}", p) for s, p in expected]
        assert [(t.text, t.pos) for t in product(text, positions=True)] == tagged
        assert [(t.text, t.pos) for t in product(marked(text, "en"), positions=True)] == tagged
        stems, first, _, extra = english(text, "en")
        assert [(s, first + k) for k, s in enumerate(stems)] == tagged and extra == []


def test_an_analyzer_that_is_not_a_compiled_chain_is_not_taken_for_one() -> None:
    assert chain_for(RegexTokenizer() | LowercaseFilter()) is None
    chain = make_analyzer()
    chain.items.insert(2, LowercaseFilter())  # a pass-through filter: still another chain
    assert chain_for(chain) is None


def test_a_chain_that_cannot_be_compiled_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(analysis.CHAINS, "xx", Recipe("xx", "english", frozenset(["The"])))
    with pytest.raises(AnalysisError, match="stop words must be lowercase"):
        compile("xx")
    monkeypatch.setitem(analysis.CHAINS, "yy", Recipe("yy", "english", frozenset(),
                                                      token_pattern=r"(\w)\w*"))
    with pytest.raises(AnalysisError, match="token pattern has groups"):
        compile("yy")
    with pytest.raises(AnalysisError, match="no analysis chain for language 'zz'"):
        compile("zz")
