from __future__ import annotations

import pickle

from searchapp.analysis import make_analyzer, terms


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
