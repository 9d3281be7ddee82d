"""The relevance benchmark's metrics (bench/relevance.py), on rankings worked out by hand."""

from __future__ import annotations

import importlib.util
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


def test_ranks_a_tiny_collection_with_the_product_chain(tmp_path: Path) -> None:
    collection = tmp_path / "docs.jsonl"
    collection.write_text(
        '{"id": "d1", "title": "heat conduction in composite slabs", "summary": "slabs"}\n'
        '{"id": "d2", "title": "supersonic wings", "summary": "the wings of aircraft"}\n'
        '{"id": "d3", "title": "", "summary": ""}\n'
        '{"id": "d4", "title": "heat transfer", "summary": "heating of a wing"}\n',
        encoding="utf-8")
    items = relevance.load_items(collection)
    assert [item.id for item in items] == ["d1", "d2", "d3", "d4"]  # the empty one is kept
    queries = {"1": "what problems of heat conduction in composite slabs"}
    qrels = {"1": {"d1": 1, "d4": 3}}
    with relevance.Bench(items, queries, qrels) as bench:
        runs = bench.run(relevance.Settings())
        assert runs["1"][:2] == ["d1", "d4"]  # "heat" stems alike; d2 shares no word
        assert "d2" not in runs["1"]
        scores = relevance.Scores.mean(bench.evaluate(relevance.PROPOSED).values())
    assert scores.ndcg10 == pytest.approx(1.0)


def test_variants_swap_the_stop_list_or_the_stemmer_of_the_product_chain() -> None:
    def words(analyzer: object, text: str) -> list[str]:
        return [t.text for t in analyzer(text)]  # type: ignore[operator]

    assert words(relevance.make_variant_analyzer("none", "none"), "What Elections") == [
        "what", "elections"]
    assert words(relevance.make_variant_analyzer("nltk", "product"), "What Elections") == [
        "elect"]
    assert relevance.make_schema(relevance.Settings()) is relevance.product_schema()
