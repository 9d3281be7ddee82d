"""The relevance benchmark's metrics (bench/relevance.py), on rankings worked out by hand."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "relevance.py"
    spec = importlib.util.spec_from_file_location("bench_relevance", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


relevance = _load()


def test_gain_reverses_cranfield_grades_and_counts_minus_one_as_a_complete_answer() -> None:
    assert [relevance.gain(g) for g in (1, 2, 3, 4, -1)] == [4.0, 3.0, 2.0, 1.0, 4.0]
    with pytest.raises(ValueError):
        relevance.gain(5)


def test_dcg_discounts_by_log2_of_rank_plus_one() -> None:
    # 3/1 + 2/log2(3) + 0/2 + 1/log2(5) = 3 + 1.2618595 + 0 + 0.4306766
    assert relevance.dcg([3, 2, 0, 1], 10) == pytest.approx(4.6925361)
    assert relevance.dcg([3, 2, 0, 1], 2) == pytest.approx(4.2618595)


def test_ndcg_takes_the_ideal_from_every_judged_document() -> None:
    judged = {"a": 4.0, "b": 2.0, "c": 1.0}
    # DCG of b, x, a: 2/1 + 0 + 4/log2(4) = 4; ideal a, b, c: 4 + 2/log2(3) + 1/2 = 5.7618595
    assert relevance.ndcg(["b", "x", "a"], judged) == pytest.approx(4 / 5.7618595)
    assert relevance.ndcg(["a", "b", "c"], judged) == pytest.approx(1.0)
    assert relevance.ndcg([], judged) == 0.0


def test_ndcg_stops_at_the_cutoff_on_both_sides() -> None:
    judged = {f"r{i}": 1.0 for i in range(12)}
    ranking = [f"n{i}" for i in range(10)] + ["r0"]  # the only hit is at rank 11
    assert relevance.ndcg(ranking, judged) == 0.0
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, 11))
    assert relevance.ndcg(["r0"], judged) == pytest.approx(1 / ideal)


def test_average_precision_divides_by_all_relevant_documents() -> None:
    # Hits at ranks 1 and 3, c never found: (1/1 + 2/3) / 3 = 5/9
    assert relevance.average_precision(["a", "x", "b", "y"], {"a", "b", "c"}) == pytest.approx(5 / 9)
    assert relevance.average_precision(["x", "y"], {"a"}) == 0.0


def test_precision_at_ten_does_not_excuse_a_short_list() -> None:
    assert relevance.precision(["a", "b"], {"a", "b", "c"}) == pytest.approx(0.2)
    ranking = ["a"] + [f"x{i}" for i in range(9)] + ["b"]
    assert relevance.precision(ranking, {"a", "b"}) == pytest.approx(0.1)


def test_recall_at_100_ignores_documents_found_later() -> None:
    ranking = ["a", "b"] + [f"x{i}" for i in range(97)] + ["c", "d"]  # c at 100, d at 101
    assert relevance.recall(ranking, {"a", "b", "c", "d"}) == pytest.approx(0.75)


def test_minus_one_grade_is_relevant_with_the_top_gain() -> None:
    scores = relevance.score_query(["b", "a"], {"a": -1, "b": 2})
    # DCG 3 + 4/log2(3) = 5.5237190; ideal 4 + 3/log2(3) = 5.8927893
    assert scores.ndcg10 == pytest.approx(5.5237190 / 5.8927893)
    assert scores.map == pytest.approx(1.0)
    assert scores.p10 == pytest.approx(0.2)
    assert scores.r100 == pytest.approx(1.0)


def test_a_query_without_results_counts_as_zero_in_the_means() -> None:
    qrels = {"1": {"a": 1}, "2": {"b": 2}}
    per_query = relevance.evaluate({"1": ["a"]}, qrels)
    assert set(per_query) == {"1", "2"}
    mean = relevance.Scores.mean(per_query.values())
    assert (mean.ndcg10, mean.map, mean.p10, mean.r100) == pytest.approx((0.5, 0.5, 0.05, 0.5))


def test_reads_judgments_with_their_grades(tmp_path: Path) -> None:
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("qid\tdocid\trel\n1\tcran-184\t2\n1\tcran-486\t-1\n2\tcran-12\t3\n",
                     encoding="utf-8")
    assert relevance.load_qrels(qrels) == {"1": {"cran-184": 2, "cran-486": -1},
                                           "2": {"cran-12": 3}}


def test_binary_judgments_gain_one_per_relevant_document() -> None:
    scores = relevance.score_query(["x", "a", "b"], {"a": 1, "b": 1}, graded=False)
    # DCG 0 + 1/log2(3) + 1/2 = 1.1309298; ideal 1 + 1/log2(3) = 1.6309298
    assert scores.ndcg10 == pytest.approx(1.1309298 / 1.6309298)
    assert scores.map == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert scores.r100 == pytest.approx(1.0)


def test_reads_binary_judgments_under_a_gain_header(tmp_path: Path) -> None:
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("qid\tdocid\tgain\n1\tcisi-28\t1\n1\tcisi-35\t1\n", encoding="utf-8")
    assert relevance.load_qrels(qrels) == {"1": {"cisi-28": 1, "cisi-35": 1}}


def test_queries_are_the_words_joined_by_or_without_punctuation() -> None:
    assert relevance.api_query('the "Electronic Mail," nutrition: world\u2019s ?slip?') == (
        "the OR Electronic OR Mail OR nutrition OR world\u2019s OR slip")


def test_randomisation_test_on_hand_checkable_cases() -> None:
    assert relevance.randomisation_test([0.5, 0.2], [0.5, 0.2]) == 1.0
    # Three queries all better by the same amount: 2 of the 8 sign patterns are as extreme.
    p = relevance.randomisation_test([0.0, 0.0, 0.0], [0.1, 0.1, 0.1])
    assert p == pytest.approx(0.25, abs=0.02)
    # Twelve: 2 / 4096, floored at one in (permutations + 1) by counting the observed one.
    p = relevance.randomisation_test([0.0] * 12, [0.3] * 12)
    assert p < 0.002
    assert p == relevance.randomisation_test([0.0] * 12, [0.3] * 12)  # seeded


def test_bootstrap_of_a_constant_is_that_constant() -> None:
    low, high, below = relevance.bootstrap_below([0.4] * 20, 0.5)
    assert (low, high, below) == (pytest.approx(0.4), pytest.approx(0.4), 1.0)
    assert relevance.bootstrap_below([0.4] * 20, 0.3)[2] == 0.0


def test_repeated_query_words_weigh_linearly_once_or_saturated() -> None:
    assert relevance.qtf_weight("linear", 3) == 3.0
    assert relevance.qtf_weight("once", 3) == 1.0
    assert relevance.qtf_weight("k3:8", 1) == pytest.approx(1.0)
    assert relevance.qtf_weight("k3:8", 2) == pytest.approx(9 * 2 / 10)


def test_variants_read_back_what_they_describe() -> None:
    variant = relevance.Variant(b=0.75, k1=1.2, qtf="k3:8", stop="small", prf_docs=5)
    assert relevance.Variant.parse(variant.describe()) == variant
    assert relevance.Variant.parse("product") == relevance.Variant()
    with pytest.raises(ValueError):
        relevance.Variant.parse("bogus=1")


def test_empty_records_are_imported_with_a_title_the_analysis_drops(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "docs.jsonl").write_text(
        '{"id": "d1", "title": "heat", "summary": ""}\n'
        '{"id": "d2", "title": "", "summary": ""}\n', encoding="utf-8")
    target = tmp_path / "import.jsonl"
    tiny = relevance.Judged("tiny", folder, "docs.jsonl", graded=False)
    assert relevance.write_import_file(tiny, target) == 2
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["title"] for r in rows] == ["heat", relevance.EMPTY_TITLE]
    from searchapp.analysis import terms
    assert terms(relevance.EMPTY_TITLE) == []


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A four-document collection (one empty) registered as a judged collection."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "docs.jsonl").write_text(
        '{"id": "d1", "title": "heat conduction in composite slabs", "summary": "slabs"}\n'
        '{"id": "d2", "title": "supersonic wings", "summary": "the wings of aircraft"}\n'
        '{"id": "d3", "title": "", "summary": ""}\n'
        '{"id": "d4", "title": "heat transfer", "summary": "heating of a wing"}\n',
        encoding="utf-8")
    (folder / "queries.jsonl").write_text(
        '{"qid": 1, "text": "what problems of heat conduction in composite slabs?"}\n'
        '{"qid": 2, "text": "wings wings heat"}\n', encoding="utf-8")
    (folder / "qrels.tsv").write_text("qid\tdocid\tgain\n1\td1\t1\n1\td4\t1\n2\td2\t1\n",
                                      encoding="utf-8")
    monkeypatch.setitem(relevance.COLLECTIONS, "tiny",
                        relevance.Judged("tiny", folder, "docs.jsonl", graded=False))
    return "tiny"


def test_ranks_a_tiny_collection_through_the_products_search(tiny: str) -> None:
    from searchapp import query, service
    from searchapp.engine import scoring
    from searchapp.engine.arrays import ArraysSnapshot

    product = relevance.Variant()
    once = relevance.Variant(qtf="once", b=0.75, k1=1.2)
    outcomes = relevance.run_collection((tiny, [product, once], False))
    assert [o.variant for o in outcomes] == ["product", once.describe()]
    scores = outcomes[0].per_query
    assert scores["1"].ndcg10 == pytest.approx(1.0)  # d1 (every word) then d4 (heat)
    assert scores["1"].r100 == pytest.approx(1.0)
    # "wings" typed twice weighs 1.8 (k3 8); d4, with "heat" and "wing", comes first,
    # d2 (wings only) second.
    assert scores["2"].ndcg10 == pytest.approx(1 / math.log2(3))
    assert outcomes[0].refused == 0
    # The patches are gone once the run is over.
    assert ArraysSnapshot.match is relevance._PRODUCT_MATCH
    assert ArraysSnapshot.rescore is relevance._PRODUCT_RESCORE
    assert scoring.term_scores is relevance._PRODUCT_TERM_SCORES
    assert scoring.unsupported is relevance._PRODUCT_UNSUPPORTED
    assert query.build is relevance._PRODUCT_BUILD
    assert query.query_weight is relevance._PRODUCT_QUERY_WEIGHT
    assert service.highlight is relevance._PRODUCT_HIGHLIGHT


def test_the_product_run_is_the_products_own_engine(tmp_path: Path) -> None:
    from searchapp.config import Settings

    app = Settings(catalog=tmp_path / "c.sqlite3", index_dir=tmp_path / "index")
    assert relevance.variant_settings(relevance.Variant(), app) == app
    assert relevance.variant_settings(relevance.Variant(fields="sum"), app).scoring == "fields"
    tuned = relevance.variant_settings(relevance.Variant(b=0.75, k1=2.0, title_boost=1.5), app)
    assert (tuned.bm25_b, tuned.bm25_k1, tuned.title_boost) == (0.75, 2.0, 1.5)
    assert relevance.product_bm25() == (app.bm25_b, app.bm25_k1)


def test_variants_change_the_products_analysis_only_while_they_run(tiny: str) -> None:
    from searchapp.analysis import terms

    none = relevance.Variant(stop="none", stemmer="porter")
    with relevance.index_patches(none):
        assert terms("What Elections") == ["what", "elect"]
    assert terms("What Elections") == ["elect"]
    outcomes = relevance.run_collection((tiny, [none], False))
    assert outcomes[0].per_query["1"].r100 == pytest.approx(1.0)


def test_saved_runs_compare_query_by_query(tiny: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert relevance.main(["--collections", tiny, "--jobs", "1", "--save", str(a)]) == 0
    assert relevance.main(["--collections", tiny, "--jobs", "1", "--variant", "qtf=once",
                           "--save", str(b)]) == 0
    assert relevance.load(a)[0] == "product"
    assert relevance.load(b)[0] == "qtf=once"
    capsys.readouterr()
    assert relevance.main(["--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| A: product |" in out and "| B: qtf=once |" in out


def test_bm25f_proper_scores_one_saturated_term_over_both_fields(tmp_path: Path) -> None:
    """Worked by hand: 'heat' in d1's title (length 1) and summary (length 2)."""
    from searchapp import operations
    from searchapp.config import Settings
    from searchapp.search import SearchQuery

    source = tmp_path / "docs.jsonl"
    source.write_text('{"id": "d1", "title": "heat", "summary": "heat flow"}\n'
                      '{"id": "d2", "title": "flow", "summary": "cold cold cold cold"}\n',
                      encoding="utf-8")
    variant = relevance.Variant.parse(  # the product's own settings, spelled out
        "fields=bm25f idf=robertson b=0.75 k1=2.0 title_boost=1.5")
    app = Settings(catalog=tmp_path / "c.sqlite3", index_dir=tmp_path / "index")
    with relevance.index_patches(variant):
        operations.import_paths(relevance.variant_settings(variant, app), [source],
                                fmt="jsonl", organisation="t")
        with relevance.search_patches(variant):
            engine = relevance.open_engine(variant, app)
            try:
                assert engine.stats()["kind"] == "arrays"
                hits = engine.search(SearchQuery(q="heat", per_page=10)).hits
            finally:
                engine.close()
    # Title lengths 1, 1 (mean 1); summary lengths 2, 4 (mean 3); the title's
    # frequency carries its boost 1.5. tf~ = 1.5 / (0.25 + 0.75 * 1/1)
    # + 1 / (0.25 + 0.75 * 2/3) = 1.5 + 4/3; one IDF for df 1 of N 2.
    tf = 1.5 + 4 / 3
    idf = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5))
    assert [h.item.id for h in hits] == ["d1"]
    assert hits[0].score == pytest.approx(idf * tf * 3 / (tf + 2))


def test_rm3_weighs_terms_by_the_hits_score_shares() -> None:
    from types import SimpleNamespace

    def hit(title: str, score: float) -> SimpleNamespace:
        return SimpleNamespace(item=SimpleNamespace(title=title, summary=""), score=score)

    hits = [hit("heat flow", 3.0), hit("heat heat cold", 1.0), hit("ignored", 9.0)]
    variant = relevance.Variant(prf="rm3-or", prf_docs=2, prf_terms=2, prf_weight=0.5)
    # Shares 3/4 and 1/4: heat 3/4 * 1/2 + 1/4 * 2/3 = 13/24, flow 3/8, cold 1/12.
    found = relevance.expansion_terms(None, hits, variant)  # type: ignore[arg-type]
    assert [t for t, _ in found] == ["en:heat", "en:flow"]
    assert [w for _, w in found] == pytest.approx([0.5, 0.5 * (3 / 8) / (13 / 24)])


def test_every_lever_runs_through_the_products_search(tiny: str) -> None:
    from searchapp import analysis, query
    from searchapp.engine.arrays import ArraysSnapshot

    levers = [v for _, v in relevance.experiments()]
    assert len(levers) > 20
    outcomes = relevance.run_collection((tiny, levers, False))
    # Grouped by the index each needs, so not in the order given.
    assert sorted(o.variant for o in outcomes) == sorted(v.describe() for v in levers)
    for o in outcomes:
        # Every lever still finds every judged answer (d1 and d4; d2), whatever order
        # it gives them (BM25F proper puts d4, with both "wing" and "heat", above d2).
        assert o.per_query["1"].r100 == pytest.approx(1.0), o.variant
        assert o.per_query["2"].r100 == pytest.approx(1.0), o.variant
        assert o.per_query["2"].ndcg10 > 0.6, o.variant
        assert o.refused == 0
    assert ArraysSnapshot.match is relevance._PRODUCT_MATCH
    assert query.build is relevance._PRODUCT_BUILD
    assert analysis.CHAINS["en"] is relevance._PRODUCT_CHAIN
    assert analysis.terms("What Elections") == ["elect"]


def test_near_finds_two_words_within_the_slop_and_scores_their_sum(tmp_path: Path) -> None:
    from searchapp import operations
    from searchapp.config import Settings
    from searchapp.engine import Or, Term

    source = tmp_path / "docs.jsonl"
    source.write_text('{"id": "d1", "title": "heat flow", "summary": "", "language": "en"}\n'
                      '{"id": "d2", "title": "flow of cold heat", "summary": "",'
                      ' "language": "en"}\n'
                      '{"id": "d3", "title": "heat", "summary": "flow", "language": "en"}\n',
                      encoding="utf-8")
    app = Settings(catalog=tmp_path / "c.sqlite3", index_dir=tmp_path / "index")
    variant = relevance.Variant(proximity=0.2, slop=1)
    operations.import_paths(app, [source], fmt="jsonl", organisation="t")
    with relevance.search_patches(variant):
        engine = relevance.open_engine(variant, app)
        try:
            snapshot = engine._current()
            ids = {snapshot.find(d): d for d in ("d1", "d2", "d3")}
            # "of" is a stop word and leaves no gap: in d2 heat is 2 after flow.
            near = snapshot.match(relevance.Near("title", "en:heat", "en:flow", 1, 0.2))
            assert [ids[int(d)] for d in near.ids] == ["d1"]
            wide = snapshot.match(relevance.Near("title", "en:heat", "en:flow", 3, 0.2))
            assert sorted(ids[int(d)] for d in wide.ids) == ["d1", "d2"]
            both = snapshot.match(Or((Term("title", "en:heat"), Term("title", "en:flow"))))
            d1 = next(d for d, name in ids.items() if name == "d1")
            expected = 0.2 * both.scores[list(both.ids).index(d1)]
            assert near.scores[0] == pytest.approx(expected)
            # Whoosh cannot rescore the bench's node; the arrays do.
            rescored = snapshot.rescore(relevance.Near("title", "en:heat", "en:flow", 1, 0.2),
                                        near.ids)
            assert rescored == {d1: pytest.approx(expected)}
        finally:
            engine.close()


def test_a_long_query_is_answered_with_its_first_terms(tiny: str) -> None:
    from searchapp import query

    long_text = " ".join(["wings"] * 500 + ["heat"])
    assert len(long_text) > 2_000  # refused by the product before #12
    queries = relevance.COLLECTIONS[tiny].queries
    queries.write_text('{"qid": 1, "text": "heat conduction"}\n'
                       + json.dumps({"qid": 2, "text": long_text}) + "\n", encoding="utf-8")
    product, few = relevance.Variant(), relevance.Variant(terms=1)
    outcomes = {o.variant: o for o in relevance.run_collection((tiny, [product, few], False))}
    assert outcomes["product"].refused == 0
    assert outcomes["product"].per_query["2"].ndcg10 == pytest.approx(1.0)  # wings: d2
    # With one term kept, "heat conduction" is searched as "heat", which both judged
    # answers (d1, d4) have.
    assert outcomes["terms=1"].per_query["1"].r100 == pytest.approx(1.0)
    assert query.MAX_QUERY_TERMS == relevance._PRODUCT_MAX_TERMS  # the limit is back


@pytest.mark.parametrize("stemmer", ["porter", "nltk-porter"])
def test_porter_stemmers_replace_the_products_english_stemmer_while_they_run(
        stemmer: str) -> None:
    from searchapp import analysis

    variant = relevance.Variant(stemmer=stemmer)
    with relevance.index_patches(variant):
        # Porter cuts "generously" to "gener"; the product's English Snowball keeps "generous".
        assert analysis.terms("generously elections") == ["gener", "elect"]
        chain = analysis.compile()  # what the segment writer and highlighter use
        assert chain.term("generously") == "gener"
        assert isinstance(analysis.analyzer().items[-1], relevance.PorterStemFilter) == (
            stemmer == "nltk-porter")
    assert analysis.terms("generously elections") == ["generous", "elect"]
    assert analysis.compile().term("generously") == "generous"
