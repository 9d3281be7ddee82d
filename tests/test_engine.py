"""The engine seam: the arrays path gives Whoosh's own matches and scores, the path is
chosen once per reader and said, and leaving the fast path is counted, never silent."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from whoosh import index as whoosh_index
from whoosh import scoring

from searchapp import query as parser
from searchapp.config import Settings
from searchapp.engine import (
    FALLBACKS,
    EngineUnavailable,
    Or,
    Phrase,
    Query,
    Snapshot,
    Term,
    Word,
    open_snapshot,
)
from searchapp.engine.arrays import ArraysSnapshot
from searchapp.engine.plain import WhooshSnapshot, make_close_words, reserve_close_words, to_whoosh
from searchapp.engine.scoring import Ranking, WordBM25F
from searchapp.fields import TEXT_FIELDS
from searchapp.indexer import IndexStore
from searchapp.models import Item, build_item
from searchapp.schema import schema, to_document
from searchapp.search import Engine, SearchQuery

WORDS = ["cooperative", "workers", "social", "economy", "refugees", "platform", "union",
         "housing", "energy", "elections", "solidarity", "youth", "women", "bank"]

QUERIES = [
    "cooperative", "social economy", '"social economy"', "refugees OR housing",
    "platform workers union", "co-op", "coop housing", "title:energy", "solid*",
    '"workers union" bank', "cooperative -housing", "cooperative NOT bank",
    "economy youth women elections", "nothingmatchesthis", "bank OR union OR energy OR youth",
]


def corpus(n: int = 400, *, word: str = "") -> Iterator[Item]:
    for k in range(n):
        title = " ".join(WORDS[(k * j + 3) % len(WORDS)] for j in range(1, 2 + k % 5))
        summary = " ".join(WORDS[(k + j * 5) % len(WORDS)] for j in range(k % 11))
        yield build_item({"id": f"d{k:04d}", "title": f"{word} {title}".strip(),
                          "summary": summary, "date": f"{2001 + k % 20}-0{1 + k % 9}-11",
                          "language": "en"},
                         organisation=("ILO", "CECOP", "ICA")[k % 3])


def whoosh_scores(snapshot: WhooshSnapshot, q: Query) -> dict[int, float]:
    """Every match and score, the textbook Whoosh way."""
    return {hit.docnum: hit.score
            for hit in snapshot.searcher.search(to_whoosh(q), limit=None)}


def check(fast: ArraysSnapshot, plain: WhooshSnapshot) -> None:
    vocabulary = plain.vocabulary()
    for text in QUERIES:
        built = parser.build(parser.parse(text), vocabulary)
        assert built is not None
        for q in (built.query, *([built.exclude] if built.exclude is not None else [])):
            expected = whoosh_scores(plain, q)
            matched = fast.match(q)
            assert matched.scores is not None
            got = dict(zip(matched.ids.tolist(), matched.scores.tolist(), strict=True))
            assert got.keys() == expected.keys(), text
            if matched.exact:
                assert got == expected, text
            else:
                assert all(got[d] == pytest.approx(s, rel=1e-12) for d, s in expected.items())
                assert fast.rescore(q, list(expected)) == expected, text
            assert fast.match(q, scored=False).ids.tolist() == sorted(expected)
            reference = plain.match(q)
            assert reference.scores is not None
            assert dict(zip(reference.ids.tolist(), reference.scores.tolist(),
                            strict=True)) == expected
    assert fast.live().tolist() == plain.live().tolist()
    # Stored fields read from the segments' columns directly: Whoosh's, in its order.
    for doc in range(int(plain.reader.doc_count_all())):
        found = fast.stored(doc)
        assert found == plain.stored(doc) and list(found) == list(plain.stored(doc))


def both(store: IndexStore) -> tuple[ArraysSnapshot, WhooshSnapshot]:
    fast = open_snapshot(store.open_index(), choice="arrays")
    plain = open_snapshot(store.open_index(), choice="whoosh")
    assert isinstance(fast, ArraysSnapshot) and isinstance(plain, WhooshSnapshot)
    assert (fast.kind, plain.kind) == ("arrays", "whoosh")
    return fast, plain


def test_same_matches_and_scores_with_posting_arrays(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.rebuild(corpus(), expected=400)
    assert list(tmp_path.glob("gen-*/*.arrays"))
    fast, plain = both(store)
    # Made ahead, as the Engine's warm-up does (a typo query would count its building).
    assert make_close_words(plain.reader, reserve_close_words(plain.reader, TEXT_FIELDS))
    before = FALLBACKS.snapshot()
    check(fast, plain)
    assert FALLBACKS.snapshot() == before  # every query of the product's kinds, on arrays
    fast.close()
    plain.close()


def test_same_without_arrays_with_deletions_and_several_segments(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.rebuild(corpus(300), expected=300)
    # Whoosh's own writer: new segments without arrays; replaced documents deleted.
    store.update_with_whoosh(list(corpus(320, word="bank"))[250:], expected=320)
    fast, plain = both(store)
    assert len(plain.reader.leaf_readers()) == 2
    assert plain.reader.has_deletions()
    check(fast, plain)
    fast.close()
    plain.close()


def test_boosted_terms_stay_on_the_arrays_path(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.rebuild(corpus(200), expected=200)
    fast, plain = both(store)
    q = Or((Term("title", "en:bank", boost=2.5), Term("summary", "en:union", boost=0.7)))
    before = FALLBACKS.snapshot()
    matched = fast.match(q)
    assert FALLBACKS.snapshot() == before
    assert matched.scores is not None and len(matched) > 0
    assert dict(zip(matched.ids.tolist(), matched.scores.tolist(), strict=True)) == \
        whoosh_scores(plain, q)
    fast.close()
    plain.close()


def test_what_the_arrays_path_hands_to_whoosh_is_counted(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.rebuild(corpus(200), expected=200)
    fast, plain = both(store)
    phrase = Phrase("title", ("en:bank",))  # never built by searchapp.query: a Term is
    reason = "phrase: of one word, or in a field without positions"
    before = FALLBACKS.snapshot().get(reason, 0)
    got = fast.match(phrase)
    assert FALLBACKS.snapshot()[reason] == before + 1
    expected = whoosh_scores(plain, phrase)
    assert expected and got.ids.tolist() == sorted(expected)
    assert got.scores is not None and got.scores.tolist() == [expected[d] for d in sorted(expected)]
    fast.close()
    plain.close()


def test_stored_fields_through_whoosh_when_the_segment_reader_is_unknown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from searchapp.engine import segments

    store = IndexStore(tmp_path)
    store.rebuild(corpus(50), expected=50)
    reason = "stored fields: not the known segment reader, read through Whoosh"
    before = FALLBACKS.snapshot().get(reason, 0)

    class Other:
        """Stands for a per-document reader of a codec the direct read does not know."""

    monkeypatch.setattr(segments, "W3PerDocReader", Other)
    with caplog.at_level(logging.WARNING, logger="searchapp.engine"):
        fast, plain = both(store)
    assert FALLBACKS.snapshot()[reason] == before + 1
    assert "reading the stored fields through Whoosh's reader" in caplog.text
    assert [fast.stored(d) for d in range(50)] == [plain.stored(d) for d in range(50)]
    assert fast.stored(7)["id"] == "d0007"
    fast.close()
    plain.close()


def test_a_stored_column_of_another_kind_is_read_through_whoosh_and_counted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from searchapp.engine import segments

    store = IndexStore(tmp_path)
    store.rebuild(corpus(50), expected=50)
    before = FALLBACKS.snapshot().get(segments.STORED_THROUGH_WHOOSH, 0)

    class Other:
        """Stands for a column type the direct read does not know."""

        class Reader:
            pass

    monkeypatch.setattr(segments, "PickleColumn", Other)
    fast, plain = both(store)
    try:
        with caplog.at_level(logging.WARNING, logger="searchapp.engine"):
            assert [fast.stored(d) for d in range(50)] == [plain.stored(d) for d in range(50)]
        assert FALLBACKS.snapshot()[segments.STORED_THROUGH_WHOOSH] == before + 1
        assert "reading it through Whoosh's reader" in caplog.text
        assert fast.stored(7)["id"] == "d0007"
    finally:
        fast.close()
        plain.close()


def test_stored_fields_read_directly_from_an_index_in_memory() -> None:
    # A column in Whoosh's memory (an index in memory, or a compound segment) is read
    # from Whoosh's buffer; nothing falls back.
    from whoosh.filedb.filestore import RamStorage

    from searchapp.engine import segments

    ix = RamStorage().create_index(schema())
    with ix.writer() as writer:
        for item in corpus(30):
            writer.add_document(**to_document(item))
    before = FALLBACKS.snapshot()
    fast = open_snapshot(ix, choice="arrays")
    plain = open_snapshot(ix, choice="whoosh")
    try:
        assert isinstance(fast._read_stored, segments.StoredFields)
        assert not any(k.startswith("stored fields") and v != before.get(k)
                       for k, v in FALLBACKS.snapshot().items())
        assert [fast.stored(d) for d in range(30)] == [plain.stored(d) for d in range(30)]
        assert fast.stored(7)["id"] == "d0007"
    finally:
        fast.close()
        plain.close()


def test_stored_fields_read_directly_are_whooshs_and_let_go_on_close(tmp_path: Path) -> None:
    # Several segments, one with deletions, a summary longer than a zlib stored block,
    # empty optional fields: each document's fields as Whoosh reads them, in its order.
    from searchapp.engine import segments

    store = IndexStore(tmp_path)
    items = list(corpus(60))
    long = dataclasses.replace(items[3], summary="cooperative " * 7000)
    store.rebuild([*items[:3], long, *items[4:]], expected=60)
    ix = store.open_index()
    writer = ix.writer()  # a second segment, written by Whoosh, and a deletion in the first
    writer.delete_by_term("id", items[5].id)
    for item in list(corpus(70))[60:]:
        writer.add_document(**to_document(item))
    writer.commit(merge=False)
    ix.close()
    fast, plain = both(store)
    try:
        assert len(fast.reader.leaf_readers()) >= 2
        assert isinstance(fast._read_stored, segments.StoredFields)
        for doc in range(int(plain.reader.doc_count_all())):
            found = fast.stored(doc)
            assert found == plain.stored(doc) and list(found) == list(plain.stored(doc))
        assert fast.stored(3)["summary"] == long.summary
    finally:
        fast.close()
        plain.close()
    with pytest.raises(ValueError, match="after their snapshot was closed"):
        fast._read_stored(0)  # (its descriptors are closed, and may be another file's now)


class MyBM25F(WordBM25F):
    """A ranking model the arrays path cannot know it reproduces."""


def test_another_ranking_model_is_served_by_whoosh_and_said(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = IndexStore(tmp_path)
    store.rebuild(corpus(100), expected=100)
    with caplog.at_level(logging.WARNING, logger="searchapp.engine"):
        engine = Engine(store, weighting=MyBM25F())
        page = engine.search(SearchQuery(q="cooperative"))
    stats = engine.stats()
    assert stats["kind"] == "whoosh" and "MyBM25F" in stats["reason"]
    assert stats["fallbacks"]["reader opened on plain Whoosh"] >= 1
    assert "plain Whoosh" in caplog.text and "MyBM25F" in caplog.text
    # The same answer the tuned model gives on the arrays path (the subclass changes nothing).
    tuned = Engine(store)
    assert tuned.stats()["kind"] == "arrays"
    assert tuned.search(SearchQuery(q="cooperative")) == page
    with pytest.raises(EngineUnavailable, match="SEARCHAPP_ENGINE=arrays.*MyBM25F"):
        Engine(store, engine="arrays", weighting=MyBM25F()).search(SearchQuery(q="x"))
    engine.close()
    tuned.close()


def test_the_products_index_opens_on_the_arrays_path(settings: Settings) -> None:
    from conftest import SAMPLES

    from searchapp import operations

    operations.import_paths(settings, [SAMPLES])
    engine = Engine.from_settings(settings)
    assert engine.stats()["kind"] == "arrays"
    engine.close()


def test_the_engine_setting_forces_a_path(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.rebuild(corpus(50), expected=50)
    settings = Settings.load({"index_dir": tmp_path}, environ={"SEARCHAPP_ENGINE": "whoosh"})
    engine = Engine.from_settings(settings)
    assert engine.stats()["kind"] == "whoosh"
    assert engine.stats()["reason"] == "SEARCHAPP_ENGINE=whoosh"
    engine.close()
    with pytest.raises(EngineUnavailable, match="must be one of auto, arrays, whoosh"):
        Engine(store, engine="numpy")


def test_other_weighting_models_score_as_whoosh_does(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    ix = whoosh_index.create_in(str(tmp_path), schema())
    writer = ix.writer()
    for item in corpus(100):
        writer.add_document(**to_document(item))
    writer.commit()
    # Both kinds with other knobs (per-field BM25F with a per-field B too) stay on
    # the arrays path.
    per_field = Ranking(kind="fields", b=0.5, k1=2.0).weighting()
    per_field._field_B["title"] = 0.9
    for model in (per_field, Ranking(b=0.5, k1=1.2).weighting()):
        fast = open_snapshot(ix, choice="arrays", weighting=model)
        plain = open_snapshot(ix, choice="whoosh", weighting=model)
        assert isinstance(fast, ArraysSnapshot) and isinstance(plain, WhooshSnapshot)
        check(fast, plain)
        for snapshot in (fast, plain):
            snapshot.close()
    tfidf: Snapshot = open_snapshot(ix, weighting=scoring.TF_IDF())
    assert tfidf.kind == "whoosh"
    tfidf.close()


def test_a_word_is_scored_once_across_its_fields_on_both_paths(tmp_path: Path) -> None:
    """BM25F proper, computed by hand: the word's normalised frequencies in title
    (boosted) and summary are added, then saturated once, with one IDF."""
    store = IndexStore(tmp_path)
    items = [build_item({"id": "a", "title": "flutter", "summary": "wing flutter flutter",
                         "language": "en"}, organisation="ILO"),
             build_item({"id": "b", "title": "wing", "summary": "flutter", "language": "en"},
                        organisation="ILO"),
             build_item({"id": "c", "title": "engine", "summary": "noise", "language": "en"},
                        organisation="ILO")]
    store.rebuild(iter(items), expected=3)
    fast, plain = both(store)
    word = Word((("title", "en:flutter"), ("summary", "en:flutter")))
    b, k1, boost = 0.75, 2.0, 1.5
    idf = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # N 3, two documents have the word

    def bm25f(tf: float) -> float:
        return idf * tf * (k1 + 1) / (tf + k1)

    # Title lengths 1, 1, 1 (mean 1); summary lengths 3, 1, 1 (mean 5/3).
    a = bm25f(boost / ((1 - b) + b * 1 / 1) + 2 / ((1 - b) + b * 3 / (5 / 3)))
    only_summary = bm25f(1 / ((1 - b) + b * 1 / (5 / 3)))
    for snapshot in (fast, plain):
        got = snapshot.match(word)
        assert got.ids.tolist() == [0, 1]
        assert got.scores is not None
        assert got.scores.tolist() == pytest.approx([a, only_summary], rel=1e-12)
        assert got.exact
    expected = whoosh_scores(plain, word)
    matched = fast.match(word)
    assert matched.scores is not None
    assert dict(zip(matched.ids.tolist(), matched.scores.tolist(), strict=True)) == expected
    boosted = fast.match(Word(word.terms, boost=1.8))
    assert boosted.scores is not None
    assert boosted.scores.tolist() == [s * 1.8 for s in matched.scores.tolist()]
    assert whoosh_scores(plain, Word(word.terms, boost=1.8)) == {
        d: s * 1.8 for d, s in expected.items()}
    fast.close()
    plain.close()


def test_the_per_field_kind_scores_a_word_as_an_or_of_its_terms(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.rebuild(corpus(200), expected=200)
    ix = store.open_index()
    model = Ranking(kind="fields").weighting()
    fast = open_snapshot(ix, choice="arrays", weighting=model)
    plain = open_snapshot(ix, choice="whoosh", weighting=model)
    assert isinstance(fast, ArraysSnapshot) and isinstance(plain, WhooshSnapshot)
    word = Word((("title", "en:bank"), ("summary", "en:bank")), boost=2.0)
    terms = Or((Term("title", "en:bank", 2.0), Term("summary", "en:bank", 2.0)))
    for snapshot in (fast, plain):
        got, want = snapshot.match(word), snapshot.match(terms)
        assert len(got) > 0 and got.ids.tolist() == want.ids.tolist()
        assert got.scores is not None and want.scores is not None
        assert got.scores.tolist() == want.scores.tolist()
    check(fast, plain)
    fast.close()
    plain.close()
    with pytest.raises(ValueError, match="scoring kind must be one of bm25f, fields"):
        Ranking(kind="bm25")


def test_each_snapshot_keeps_one_vocabulary_on_both_paths(tmp_path: Path) -> None:
    # The query build keeps per-vocabulary data (the small languages' word heads,
    # `query.language_heads`): a snapshot that made a new vocabulary per search would
    # work it out again on every search (about 20 ms at 100k items in 12 languages).
    store = IndexStore(tmp_path)
    store.rebuild(corpus(50), expected=50)
    for snapshot in both(store):
        words = snapshot.vocabulary()
        assert parser.build(parser.parse("cooperative housing"), words) is not None
        assert snapshot.vocabulary() is words
        snapshot.close()
